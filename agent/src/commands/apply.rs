//! `wisp apply --user-data FILE`: apply a local cloud-config (no datasource). With `--dry-run`
//! the plan is printed and nothing changes. Without `--instance-id` it is a trial of a document
//! on a live system: what cloud-init does unasked on a new instance (delete the host keys, grow
//! the root) is done only when the document names it. power_state goes last, once the results
//! are saved, as at boot.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use serde_json::json;
use wisp_datasources::userdata::{self, DecodeOptions};

use super::Context;
use super::Format;
use crate::config;
use crate::engine::{self, Documents};
use crate::instance::InstanceState;
use crate::modules;
use crate::state::StateDir;

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The user-data to apply (#cloud-config, or any user-data format).
    #[arg(long, value_name = "FILE", required_unless_present = "network_config")]
    pub user_data: Option<PathBuf>,
    /// Vendor-data to merge under it, as a datasource would give it (MAAS's `{cloud-init: …}`
    /// map, or a user-data document).
    #[arg(long, value_name = "FILE")]
    pub vendor_data: Option<PathBuf>,
    /// Apply as this instance: modules already done for it (per their frequency) are skipped,
    /// and recorded as done when they succeed — as the boot stages do.
    #[arg(long, value_name = "ID")]
    pub instance_id: Option<String>,
    /// A network config (version 1 or 2, or ConfigDrive's network_data.json) to render as
    /// the BSD's own files.
    #[arg(long, value_name = "FILE")]
    pub network_config: Option<PathBuf>,
    /// The machine's NICs, a YAML map of MAC address to interface name (default: this
    /// system's, read with ifconfig).
    #[arg(long, value_name = "NICS", requires = "network_config")]
    pub interfaces: Option<PathBuf>,
}

/// 0 SUCCESS, 2 WARN (warnings or refused items), 1 FAIL (an action failed).
pub fn run(ctx: &Context, args: &ApplyArgs) -> anyhow::Result<u8> {
    let Some(platform) = ctx.platform else {
        bail!("this OS is not supported; name the target with --platform");
    };
    let loaded = config::load(&ctx.root, ctx.config_path.as_deref())?;
    // Typos in wisp.yaml (unknown keys) are named here as at boot.
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    // With only a network config, the network config is the document.
    let Some(document) = args.user_data.as_ref().or(args.network_config.as_ref()) else {
        bail!("give --user-data or --network-config");
    };
    let raw = std::fs::read(document).with_context(|| format!("reading {}", document.display()))?;
    let name = document.display().to_string();
    let decoded = args
        .user_data
        .as_ref()
        .map(|_| userdata::decode(&raw, &name, &DecodeOptions::default()));
    let vendor = match &args.vendor_data {
        None => None,
        Some(path) => {
            let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Some(engine::decode_vendor(&raw, &path.display().to_string())?)
        }
    };
    let instance_id = args
        .instance_id
        .clone()
        .unwrap_or_else(|| local_instance_id(&raw));
    let modules::Plan {
        users,
        groups,
        mut planned,
    } = match &decoded {
        // A network config alone plans no cloud-config module (not even the default user).
        None => modules::Plan {
            users: Vec::new(),
            groups: Default::default(),
            planned: modules::Planned::default(),
        },
        Some(decoded) => {
            let docs = Documents {
                user: Some(decoded),
                vendor: vendor.as_ref(),
                metadata_keys: &[],
                local_hostname: None,
                instance_id: &instance_id,
                source: &name,
            };
            let mut read = engine::Read::new(platform, &loaded.config, &docs);
            if args.instance_id.is_none() {
                only_what_is_named(read.config_mut());
            }
            read.plan(
                &ctx.root,
                platform,
                &docs,
                true,
                ctx.disks.as_deref(),
                |_| true,
            )
        }
    };
    if let Some(file) = &args.network_config {
        crate::network::preview(
            &ctx.root,
            platform,
            loaded.config.network_config_disabled(),
            file,
            args.interfaces.as_deref(),
            &mut planned,
        )?;
    }
    let instance = InstanceState::new(StateDir::new(&ctx.root, ctx.dry_run));
    if let Some(id) = &args.instance_id {
        if !ctx.dry_run {
            let changed = instance
                .set_instance_id(id)
                .context("recording the instance id")?;
            if !engine::is_new_instance(&instance, id, changed) {
                engine::settle_known_instance(&instance, id)
                    .context("recording the modules done")?;
            }
        }
        engine::keep_due(&mut planned, &instance, id, None);
    }
    if ctx.dry_run {
        let plan = json!({
            "platform": platform,
            "modules": modules::infos(),
            "users": users,
            "groups": groups,
            "actions": planned.actions,
            "warnings": planned.warnings,
            "errors": planned.errors,
        });
        match ctx.format {
            Format::Json => outln!("{}", serde_json::to_string_pretty(&plan)?),
            Format::Text => planned.print(),
        }
        return Ok(engine::result(&planned, &[]).exit_code());
    }
    // power_state's shutdown goes last, once the results are saved (as at boot).
    let (power, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut planned.actions)
        .into_iter()
        .partition(|a| matches!(a, crate::plan::Action::PowerState { .. }));
    planned.actions = rest;
    // One power change, as at boot: the user's power_state, else the packages' reboot.
    let power = crate::boot::final_stage::choose_power(power);
    let outcomes = crate::apply::execute(&planned.actions, &ctx.root);
    let result = engine::result(&planned, &outcomes);
    // Generated passwords go to the console once, and only if they were really set.
    for (user, secret) in &planned.random_passwords {
        let set = outcomes.iter().any(|o| {
            o.module == modules::set_passwords::NAME && &o.item == user && o.error.is_none()
        });
        if set {
            outln!("set_passwords: {user}: random password: {}", secret.0);
        }
    }
    if let Some(id) = &args.instance_id {
        engine::mark_done(&planned, &outcomes, &instance, id)?;
        if power
            .iter()
            .any(|a| a.module() == modules::power_state::NAME)
        {
            // Marked before it runs, as at boot: a reboot must not come back to it.
            instance
                .mark_done(modules::power_state::NAME, id)
                .context("recording power_state done")?;
        }
    }
    let record = json!({
        "command": "apply",
        "document": name,
        "instance_id": args.instance_id,
        "previous_instance_id": instance.previous_instance_id(),
        "result": result.as_str(),
        "failures": outcomes.iter().filter(|o| o.error.is_some()).collect::<Vec<_>>(),
        "errors": planned.errors,
        "warnings": planned.warnings,
        "after_results": power.iter().map(crate::plan::Action::describe).collect::<Vec<_>>(),
    });
    if let Err(e) = instance.write_results(&record) {
        tracing::warn!(error = %e, "cannot record the results");
    }
    // Every stage's modules ran: the instance is known from now on.
    if let Some(id) = &args.instance_id {
        if let Err(e) = instance.set_final_finished(id) {
            tracing::warn!(error = %e, "cannot record the end of the run");
        }
    }
    match ctx.format {
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "result": result.as_str(),
                "outcomes": outcomes,
                "warnings": planned.warnings,
                "errors": planned.errors,
            }))?
        ),
        Format::Text => {
            for o in &outcomes {
                match &o.error {
                    None => outln!("{:<13} ok    {}", o.module, o.action),
                    Some(e) => outln!("{:<13} FAIL  {}: {e}", o.module, o.action),
                }
            }
            planned.print_problems();
            outln!("result: {}", result.as_str());
        }
    }
    // Last, as at boot: the shutdown schedules the change and returns.
    let mut code = result.exit_code();
    for o in crate::apply::execute(&power, &ctx.root) {
        match &o.error {
            None => tracing::info!("{}: {}: done", o.module, o.action),
            Some(e) => {
                tracing::error!("{}: {}: {e}", o.module, o.action);
                outln!("{:<13} FAIL  {}: {e}", o.module, o.action);
                code = crate::report::Outcome::Fail.exit_code();
            }
        }
    }
    Ok(code)
}

/// A trial of a document (no `--instance-id`): cloud-init's defaults that change a live system
/// for good are kept only when the document names them — the host keys are deleted only when
/// it names `ssh_deletekeys`, `ssh_keys` or `ssh_genkeytypes` (and their fingerprints are then
/// shown only when `no_ssh_fingerprints` says so); the root grows only when it names `growpart`
/// or `resize_rootfs`. (power_state does nothing unless named.)
fn only_what_is_named(cc: &mut crate::cloudconfig::CloudConfig) {
    let hk = &mut cc.host_keys;
    if hk.delete.is_none() && hk.genkeytypes.is_none() && hk.keys.is_none() {
        hk.delete = Some(false);
        // The keys are left as they are: their fingerprints are not shown again at every try
        // (at boot, once per instance), unless asked for.
        hk.no_fingerprints.get_or_insert(true);
    }
    if cc.growpart.is_none() && cc.resize_rootfs.is_none() {
        cc.growpart = Some(modules::growpart::Growpart {
            mode: modules::growpart::Mode::Off,
            ..Default::default()
        });
    }
}

/// With no datasource, the instance is the document: `local-` and the start of its sha256.
fn local_instance_id(raw: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(raw);
    let hex: String = d.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("local-{hex}")
}
