//! The local stage, before networking: seeds on the machine's disks, local datasources (NoCloud,
//! ConfigDrive: read now; MAAS needs the network), and — with data from this or an earlier
//! boot — the local modules (bootcmd, boothooks).

use super::{seed, Boot, BootData, StageEnd, StageName};
use crate::modules::{Frequency, Planned, Stage};
use crate::network;
use crate::plan::Action;
use crate::platform::Platform;
use crate::report::Outcome;
use crate::sources;
use crate::state;

const EVENT: &str = "init-local";

pub fn run(boot: &mut Boot<'_>) -> StageEnd {
    boot.record.stage("local", "running", Vec::new());
    boot.events.start(EVENT, "searching for local datasources");
    if !boot.ctx.dry_run {
        seed::discover(&boot.ctx.root, boot.platform, boot.config);
    }
    let mut ds = match sources::select(boot.config, &boot.ctx.root, &boot.client, boot.skew.clone())
    {
        Ok(ds) => ds,
        Err(e) => return boot.fatal(StageName::Local, EVENT, format!("{e:#}")),
    };
    let mut network_config = None;
    if ds.name() != "MAAS" {
        let fetched = ds
            .fetch_metadata()
            .and_then(|md| ds.fetch_user_data().map(|u| (md, u)));
        match fetched {
            Ok((md, ud)) => {
                if let Err(e) = state::save_fetched(&boot.state, &md, Some(ud.as_deref())) {
                    return boot.fatal(StageName::Local, EVENT, format!("{e:#}"));
                }
                boot.data = Some(super::network::data_from(boot, &md, ud.as_deref()));
                network_config = md.network_config.clone().map(|c| NetworkSource {
                    name: format!("{} network config", ds.name()),
                    raw: serde_json::to_vec(&c).unwrap_or_default(),
                    instance: md.instance_id.clone(),
                });
            }
            Err(e) => {
                return boot.fatal(
                    StageName::Local,
                    EVENT,
                    format!("datasource {}: {e}", ds.name()),
                )
            }
        }
    } else {
        boot.data = from_cache(boot);
    }
    // MAAS's network config came with the seed the curtin hook left (it is in wisp.yaml's
    // `network` now); NoCloud's and ConfigDrive's with their metadata.
    // It is rendered once per instance: MAAS's is keyed by the id its credentials give (known
    // before the network, the same at every boot of this deployment, new at a redeployment).
    let network_config = network_config.or_else(|| {
        let n = boot.config.raw.get("network")?;
        let instance = sources::maas_config(boot.config)
            .map(|c| wisp_datasources::maas::instance_id_from_credentials(&c.credentials))
            .or_else(|| boot.data.as_ref().map(|d| d.instance_id.clone()))
            .unwrap_or_else(|| "local".into());
        Some(NetworkSource {
            name: "the MAAS seed's network config".to_string(),
            raw: yaml_serde::to_string(n).unwrap_or_default().into_bytes(),
            instance,
        })
    });
    let mut outcome = render_network(boot, network_config);
    let Some(id) = boot.data.as_ref().map(|d| d.instance_id.clone()) else {
        boot.events.finish(
            EVENT,
            &format!(
                "local stage: {} (no data yet: the datasource needs the network)",
                outcome.as_str()
            ),
            outcome,
            None,
        );
        boot.record.stage("local", outcome.as_str(), Vec::new());
        return StageEnd::ok(outcome);
    };
    if !boot.ctx.dry_run {
        if let Err(e) = boot.record_instance(&id) {
            tracing::warn!(error = %e, "cannot record the instance id");
        }
    }
    outcome = outcome.worst(run_local_modules(boot, EVENT));
    boot.events.finish(
        EVENT,
        &format!("local stage: {}", outcome.as_str()),
        outcome,
        None,
    );
    boot.record.stage("local", outcome.as_str(), Vec::new());
    StageEnd::ok(outcome)
}

/// The local modules (bootcmd, boothooks; growpart when due) of this boot, unless they have run
/// in it already: cloud-init runs bootcmd at every boot, once. With data from a seed or an earlier boot that is
/// here, in the local stage; on a MAAS machine's first boot, the data comes only in the network
/// stage, which then runs them as soon as it has the user-data.
pub(super) fn run_local_modules(boot: &mut Boot<'_>, event: &str) -> Outcome {
    if super::record::local_modules_ran(&boot.ctx.root) {
        tracing::info!("bootcmd and boothooks have run in this boot already");
        return Outcome::Success;
    }
    // Warnings of the documents are counted once, in the network stage.
    let planned = boot.plan_stage(Stage::Local, false, &[]).planned;
    if !boot.ctx.dry_run {
        if let Err(e) = super::record::note_local_modules_run(&boot.ctx.root) {
            tracing::warn!(
                error = %e,
                "cannot record that bootcmd ran in this boot: a later stage may run it again"
            );
        }
    }
    // Marked as they succeed: growpart runs once per instance (bootcmd and boothooks run at
    // every boot whatever their mark says).
    boot.run_modules_marking(&planned, event, Some(Stage::Local))
}

/// The data an earlier boot fetched (MAAS before the network is up: bootcmd of a later boot).
pub(super) fn from_cache(boot: &Boot<'_>) -> Option<BootData> {
    let (data, instance_id) = state::cached_instance_data(&boot.state)?;
    let v1 = &data["v1"];
    let md = wisp_datasources::Metadata {
        instance_id,
        local_hostname: v1["local_hostname"].as_str().map(str::to_string),
        public_keys: v1["public_ssh_keys"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        vendor_data: boot.state.read(state::VENDOR_DATA).ok().flatten(),
        ..Default::default()
    };
    let user = state::read_cached_user_data(&boot.state);
    Some(BootData::decode(boot, &md, &data, user.as_deref()))
}

/// A network configuration to render, and the instance it belongs to.
struct NetworkSource {
    name: String,
    raw: Vec<u8>,
    instance: String,
}

/// Renders the network configuration into the system's files, once per instance, before the
/// system brings its network up (OpenBSD's rc has done that already: its changed interfaces are
/// started again with netstart). Reported as the `network` module.
fn render_network(boot: &mut Boot<'_>, config: Option<NetworkSource>) -> Outcome {
    let Some(NetworkSource {
        name: source,
        raw,
        instance: key,
    }) = config
    else {
        return Outcome::Success;
    };
    if boot.platform == Platform::Linux {
        // Linux brings its own network configuration (netplan, NetworkManager): said once in
        // the log, and the boot is not degraded for it.
        tracing::warn!("network: rendering is for the BSDs; the network config is left to Linux");
        return Outcome::Success;
    }
    if boot.config.network_config_disabled() {
        tracing::info!("network: {{config: disabled}}: the network configuration is not rendered");
        return Outcome::Success;
    }
    if !boot
        .instance
        .should_run(network::NAME, Frequency::PerInstance, &key)
    {
        return Outcome::Success;
    }
    let mut planned = Planned::default();
    let nics = match boot.interfaces {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| network::nics::parse_map(&t, boot.platform))
        {
            Ok((nics, errors)) => {
                for e in errors {
                    planned.error(
                        network::NAME,
                        "interfaces",
                        format!("{}: {e}", path.display()),
                    );
                }
                nics
            }
            Err(e) => {
                planned.error(
                    network::NAME,
                    "interfaces",
                    format!("{}: {e}", path.display()),
                );
                Default::default()
            }
        },
        None => network::system_nics(boot.platform).unwrap_or_else(|e| {
            planned.error(
                network::NAME,
                "interfaces",
                format!("cannot read this machine's interfaces: {e}"),
            );
            Default::default()
        }),
    };
    let np = network::plan(
        boot.platform,
        &boot.ctx.root,
        &source,
        &raw,
        &nics,
        &mut planned,
    );
    if boot.platform == Platform::Openbsd
        && boot.ctx.root.is_host()
        && boot.interfaces.is_none()
        && !np.changed_interfaces.is_empty()
    {
        planned.actions.push(Action::exec(
            network::NAME,
            "netstart",
            network::netstart_argv(&np.changed_interfaces),
        ));
    }
    // Warnings name their module, so that MAAS's event for it carries them.
    for w in &mut planned.warnings {
        if !w.starts_with("network: ") {
            *w = format!("{}: {w}", network::NAME);
        }
    }
    let outcome = boot.run_modules(&planned, EVENT);
    // Done for the instance unless something failed (then the next boot tries again).
    if !boot.ctx.dry_run && outcome != Outcome::Fail {
        if let Err(e) = boot.instance.mark_done(network::NAME, &key) {
            tracing::warn!(error = %e, "cannot mark the network configuration done");
        }
    }
    outcome
}
