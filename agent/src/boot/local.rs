//! The local stage, before networking: seeds on the machine's disks, local datasources (NoCloud,
//! ConfigDrive: read now; MAAS needs the network), and — with data from this or an earlier
//! boot — the local modules (bootcmd, boothooks).

use wisp_datasources::userdata::{self, DecodeOptions};

use super::{seed, Boot, BootData, StageEnd, StageName};
use crate::engine;
use crate::modules::Stage;
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
    let Some(id) = boot.data.as_ref().map(|d| d.instance_id.clone()) else {
        boot.events.finish(
            EVENT,
            "no data yet: the datasource needs the network",
            Outcome::Success,
            None,
        );
        boot.record.stage("local", "SUCCESS", Vec::new());
        return StageEnd::ok(Outcome::Success);
    };
    if !boot.ctx.dry_run {
        if let Err(e) = boot.instance.set_instance_id(&id) {
            tracing::warn!(error = %e, "cannot record the instance id");
        }
    }
    // Warnings of the documents are counted once, in the network stage.
    let planned = boot.plan_stage(Stage::Local, false, &[]).planned;
    let outcome = boot.run_modules(&planned, EVENT);
    boot.events.finish(
        EVENT,
        &format!("local stage: {}", outcome.as_str()),
        outcome,
        None,
    );
    boot.record.stage("local", outcome.as_str(), Vec::new());
    StageEnd::ok(outcome)
}

/// The data an earlier boot fetched (MAAS before the network is up: bootcmd of a later boot).
pub(super) fn from_cache(boot: &Boot<'_>) -> Option<BootData> {
    let (data, instance_id) = state::cached_instance_data(&boot.state)?;
    let v1 = &data["v1"];
    let user = state::read_cached_user_data(&boot.state).map(|raw| {
        let opts = DecodeOptions {
            fetcher: Some(&boot.client),
            instance_data: Some(&data),
            ..Default::default()
        };
        userdata::decode(&raw, "user-data", &opts)
    });
    let vendor = boot
        .state
        .read(state::VENDOR_DATA)
        .ok()
        .flatten()
        .and_then(|raw| engine::decode_vendor(&raw, "vendor-data").ok());
    Some(BootData {
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
        user,
        vendor,
        read: None,
    })
}
