//! `wisp apply --user-data FILE`: apply a local cloud-config (no datasource) — the quickest way
//! to try a document. With `--dry-run` the plan is printed and nothing changes.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use serde_json::json;
use wisp_datasources::userdata::{self, DecodeOptions};

use super::Context;
use crate::accounts::Accounts;
use crate::cli::Format;
use crate::cloudconfig::{CloudConfig, Reader, Severity};
use crate::config;
use crate::modules::{self, Inputs, Planned};

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The user-data to apply (#cloud-config, or any user-data format).
    #[arg(long, value_name = "FILE")]
    pub user_data: PathBuf,
    /// Vendor-data to merge under it, as a datasource would give it (MAAS's `{cloud-init: …}`
    /// map, or a user-data document).
    #[arg(long, value_name = "FILE")]
    pub vendor_data: Option<PathBuf>,
    /// Apply as this instance: modules already done for it (per their frequency) are skipped,
    /// and recorded as done when they succeed — as the boot stages do.
    #[arg(long, value_name = "ID")]
    pub instance_id: Option<String>,
}

/// 0 SUCCESS, 2 WARN (warnings or refused items), 1 FAIL (an action failed).
pub fn run(ctx: &Context, args: &ApplyArgs) -> anyhow::Result<u8> {
    let Some(platform) = ctx.platform else {
        bail!("this OS is not supported; name the target with --platform");
    };
    let loaded = config::load(&ctx.root, ctx.config_path.as_deref())?;
    let raw = std::fs::read(&args.user_data)
        .with_context(|| format!("reading {}", args.user_data.display()))?;
    let name = args.user_data.display().to_string();
    let decoded = userdata::decode(&raw, &name, &DecodeOptions::default());
    let mut planned = Planned::default();
    for p in &decoded.problems {
        planned.warnings.push(format!("{}: {}", p.part, p.message));
    }
    let vendor = match &args.vendor_data {
        None => None,
        Some(path) => {
            let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let vname = path.display().to_string();
            // MAAS serves vendor-data as a YAML map holding the document; a plain document works too.
            let doc = match serde_yaml::from_slice::<serde_yaml::Value>(&raw) {
                Ok(v @ serde_yaml::Value::Mapping(_)) if v.get("cloud-init").is_some() => {
                    wisp_datasources::convert_vendor_data(&v, &vname)?.unwrap_or_default()
                }
                _ => raw,
            };
            let d = userdata::decode(&doc, &vname, &DecodeOptions::default());
            for p in &d.problems {
                planned.warnings.push(format!("{}: {}", p.part, p.message));
            }
            Some(d)
        }
    };
    let layered = crate::cloudconfig::layers::layer(
        &loaded.config.raw,
        vendor.as_ref().map(|v| &v.cloud_config),
        &decoded.cloud_config,
        platform,
    );
    planned.warnings.extend(layered.notes);
    let mut reader = Reader::default();
    let cc = CloudConfig::read(&mut reader, &layered.config);
    let configured_default = loaded
        .config
        .default_user
        .as_ref()
        .or(loaded
            .config
            .system_info
            .as_ref()
            .and_then(|s| s.get("default_user")))
        .and_then(|v| {
            let mut map = serde_yaml::Mapping::new();
            map.insert(
                "system_info".into(),
                serde_yaml::Value::Mapping({
                    let mut inner = serde_yaml::Mapping::new();
                    inner.insert("default_user".into(), v.clone());
                    inner
                }),
            );
            CloudConfig::read(&mut reader, &map).default_user
        });
    for p in reader.problems {
        let sev = if p.severity == Severity::Error {
            "error"
        } else {
            "warning"
        };
        planned
            .warnings
            .push(format!("{name}: {sev}: {}: {}", p.path, p.message));
    }
    let root_arg = (ctx.root.path("/") != std::path::Path::new("/"))
        .then(|| ctx.root.path("/").display().to_string());
    let backend = platform.backend(root_arg);
    let accounts = Accounts::load(&ctx.root);
    let inputs = Inputs {
        config: &cc,
        metadata_keys: &[],
        configured_default_user: configured_default.as_ref(),
        backend: backend.as_ref(),
        accounts: &accounts,
        root: &ctx.root,
    };
    let modules::Plan {
        users,
        groups,
        mut planned,
    } = modules::plan_all(
        &inputs,
        &modules::Extras {
            parts: &decoded.parts,
            instance_id: &local_instance_id(&raw),
            local_hostname: None,
        },
        planned,
    );

    let instance =
        crate::instance::InstanceState::new(crate::state::StateDir::new(&ctx.root, ctx.dry_run));
    if let Some(id) = &args.instance_id {
        if !ctx.dry_run {
            instance
                .set_instance_id(id)
                .with_context(|| "recording the instance id")?;
        }
        planned.actions.retain(|a| {
            let freq = modules::frequency_of(a.module());
            instance.should_run(a.module(), freq, id)
        });
    }
    let plan = json!({
        "platform": backend.platform(),
        "modules": modules::MODULES,
        "users": users,
        "groups": groups,
        "actions": planned.actions,
        "warnings": planned.warnings,
        "errors": planned.errors,
    });
    if ctx.dry_run {
        match ctx.format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
            Format::Text => {
                for a in &planned.actions {
                    println!("{:<13} {}", a.module(), a.describe());
                }
                for w in &planned.warnings {
                    println!("warning: {w}");
                }
                for e in &planned.errors {
                    println!("error: {}: {}: {}", e.module, e.item, e.reason);
                }
                if planned.actions.is_empty() {
                    println!("nothing to do");
                }
            }
        }
        return Ok(result_code(false, &planned));
    }
    let outcomes = crate::apply::execute(&planned.actions, &ctx.root);
    let failed = outcomes.iter().any(|o| o.error.is_some());
    if let Some(id) = &args.instance_id {
        let mut ran: Vec<&str> = planned.actions.iter().map(|a| a.module()).collect();
        ran.dedup();
        for m in ran {
            if !outcomes.iter().any(|o| o.module == m && o.error.is_some()) {
                instance
                    .mark_done(m, id)
                    .with_context(|| format!("marking {m} done"))?;
            }
        }
    }
    // What happened, by module and item, for `wisp status` and for the operator.
    let state = instance;
    let record = json!({
        "command": "apply",
        "document": name,
        "instance_id": args.instance_id,
        "previous_instance_id": state.previous_instance_id(),
        "result": result_name(result_code(failed, &planned)),
        "failures": outcomes.iter().filter(|o| o.error.is_some()).collect::<Vec<_>>(),
        "errors": planned.errors,
        "warnings": planned.warnings,
    });
    if let Err(e) = state.write_results(&record) {
        tracing::warn!(error = %e, "cannot record the results");
    }
    // Generated passwords go to the console once, and only if they were really set.
    for (user, secret) in &planned.random_passwords {
        let set = outcomes.iter().any(|o| {
            o.module == modules::set_passwords::NAME && &o.item == user && o.error.is_none()
        });
        if set {
            println!("set_passwords: {user}: random password: {}", secret.0);
        }
    }
    match ctx.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "result": result_name(result_code(failed, &planned)),
                "outcomes": outcomes,
                "warnings": planned.warnings,
                "errors": planned.errors,
            }))?
        ),
        Format::Text => {
            for o in &outcomes {
                match &o.error {
                    None => println!("{:<13} ok    {}", o.module, o.action),
                    Some(e) => println!("{:<13} FAIL  {}: {e}", o.module, o.action),
                }
            }
            for w in &planned.warnings {
                println!("warning: {w}");
            }
            for e in &planned.errors {
                println!("error: {}: {}: {}", e.module, e.item, e.reason);
            }
            println!("result: {}", result_name(result_code(failed, &planned)));
        }
    }
    Ok(result_code(failed, &planned))
}

fn result_code(failed: bool, planned: &Planned) -> u8 {
    if failed {
        1
    } else if !planned.errors.is_empty() || !planned.warnings.is_empty() {
        2
    } else {
        0
    }
}

fn result_name(code: u8) -> &'static str {
    match code {
        0 => "SUCCESS",
        2 => "WARN",
        _ => "FAIL",
    }
}

/// With no datasource, the instance is the document: `local-` and the start of its sha256.
fn local_instance_id(raw: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(raw);
    let hex: String = d.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("local-{hex}")
}
