//! The network stage, after networking and before sshd and logins: the metadata; the hostname,
//! the default user and the metadata keys; *then* the user-data GET — MAAS marks the machine
//! Deployed on it, so the keys are in place by then — and the network-stage modules.
//!
//! cloud-init creates the default user only when the user-data's `users` leaves it in (or has
//! no `users`). wisp creates it before the user-data is known, so that someone can log in the
//! moment MAAS says Deployed; when the user-data then leaves it out, the account this boot made
//! is removed again, and the log says so.

use std::time::Duration;

use wisp_datasources::Metadata;

use super::{Boot, BootData, StageEnd, StageName};
use crate::accounts::Accounts;
use crate::engine;
use crate::modules::{hostname, ssh, users_groups, Stage};
use crate::sources;
use crate::state;

/// The name of the default user this boot created before the user-data was read, kept until
/// the user-data decides (a crash in between must not leave it behind unnoticed).
const EARLY_DEFAULT_USER: &str = "early-default-user";

/// Modules that run before the user-data GET.
const EARLY: &[&str] = &[hostname::NAME, users_groups::NAME, ssh::NAME];

/// The stage's data from what a datasource returned (`user_data` raw, if any).
pub fn data_from(boot: &Boot<'_>, md: &Metadata, user_data: Option<&[u8]>) -> BootData {
    BootData::decode(boot, md, &md.instance_data(), user_data)
}

pub fn run(boot: &mut Boot<'_>) -> StageEnd {
    const EVENT: &str = "init-network";
    boot.record.stage("network", "running", Vec::new());
    // The endpoint as the configuration or the last boot's cache gives it, so that even a
    // metadata service that never answers is reported as a failure.
    boot.aim_events(None);
    boot.events
        .start(EVENT, "searching for network datasources");
    let mut ds = match sources::select(boot.config, &boot.ctx.root, &boot.client, boot.skew.clone())
    {
        Ok(ds) => ds,
        Err(e) => return boot.fatal(StageName::Network, EVENT, format!("{e:#}")),
    };
    let md = match ds.fetch_metadata() {
        Ok(md) => md,
        Err(e) => {
            return boot.fatal(
                StageName::Network,
                EVENT,
                format!("datasource {}: {e}", ds.name()),
            )
        }
    };
    boot.aim_events(Some(&md.instance_id));
    if !boot.ctx.dry_run {
        match boot.record_instance(&md.instance_id) {
            Ok(true) => tracing::info!(instance_id = %md.instance_id, "new instance"),
            Ok(false) => {}
            Err(e) => {
                return boot.fatal(
                    StageName::Network,
                    EVENT,
                    format!("recording the instance id: {e}"),
                )
            }
        }
        if let Err(e) = state::save_fetched(&boot.state, &md, None) {
            return boot.fatal(StageName::Network, EVENT, format!("{e:#}"));
        }
    }
    // First the hostname, the default user and the metadata keys: MAAS says Deployed as soon
    // as it serves user-data, and then someone may log in.
    boot.data = Some(data_from(boot, &md, None));
    let early = boot.plan_stage(Stage::Network, false, EARLY);
    let early_default = note_early_default_user(boot, &early);
    let early_outcome = boot.run_modules(&early.planned, EVENT);
    // A stage that failed must be known to MAAS before the request that marks the machine
    // Deployed.
    boot.events.deliver_failures(Duration::from_secs(10));
    // The user-data GET: the machine is Deployed now (on MAAS). A dry run never makes it.
    let user_data = if boot.ctx.dry_run {
        tracing::info!(
            "dry run: user-data not fetched (on MAAS that GET completes the deployment); \
             the cached one is used if there is one"
        );
        state::read_cached_user_data(&boot.state)
    } else {
        match ds.fetch_user_data() {
            Ok(u) => {
                let written = match &u {
                    Some(u) => boot.state.write(state::USER_DATA, u),
                    None => boot.state.remove(state::USER_DATA),
                };
                if let Err(e) = written {
                    return boot.fatal(StageName::Network, EVENT, format!("saving user-data: {e}"));
                }
                u
            }
            Err(e) => {
                return boot.fatal(
                    StageName::Network,
                    EVENT,
                    format!("datasource {}: user-data: {e}", ds.name()),
                )
            }
        }
    };
    boot.data = Some(data_from(boot, &md, user_data.as_deref()));
    // A first boot on MAAS: the local stage had no data, so bootcmd and boothooks run now,
    // before the config modules (as cloud-init's init stage runs bootcmd before them).
    let early_outcome = early_outcome.worst(super::local::run_local_modules(boot, EVENT));
    // As cloud-init does: init-network ends with the user-data in hand, and modules-config
    // follows as its own top-level event (MAAS shows them side by side, not nested).
    boot.events.finish(
        EVENT,
        &format!("network stage: {}", early_outcome.as_str()),
        early_outcome,
        None,
    );
    boot.events
        .start("modules-config", "running modules for config");
    let due = engine::stage_due(&boot.instance, &md.instance_id, Stage::Network);
    let mut plan = boot.plan_stage(Stage::Network, due, &[]);
    // Whether the documents want the default user this stage made early: decided on the users
    // they ask for, whether or not users_groups is still due.
    let unwanted = early_default
        .clone()
        .filter(|name| !boot.wanted_users().contains(name));
    let exists = |boot: &Boot<'_>, name: &str| Accounts::load(&boot.ctx.root).user(name).is_some();
    if let Some(name) = &unwanted {
        if exists(boot, name) {
            tracing::info!(
                user = %name,
                "the user-data's users list leaves out the default user: removing the account \
                 created before the user-data was read"
            );
            let backend = boot.backend();
            users_groups::plan_removal(backend.as_ref(), &boot.ctx.root, name, &mut plan.planned);
        }
    }
    let outcome = boot.run_modules_marking(&plan.planned, "modules-config", Some(Stage::Network));
    // The record goes once the account is where the documents want it (a failed removal is
    // tried again next boot).
    if !boot.ctx.dry_run && early_default.is_some() {
        let settled = unwanted.as_deref().is_none_or(|name| !exists(boot, name));
        if settled {
            let _ = boot.state.remove(EARLY_DEFAULT_USER);
        }
    }
    boot.mark_stage(Stage::Network);
    boot.events.finish(
        "modules-config",
        &format!("config modules: {}", outcome.as_str()),
        outcome,
        None,
    );
    let outcome = outcome.worst(early_outcome);
    boot.record.stage("network", outcome.as_str(), Vec::new());
    StageEnd::ok(outcome)
}

/// The default user the early modules are about to create (or an earlier, interrupted run of
/// this stage created), recorded before it exists.
fn note_early_default_user(boot: &Boot<'_>, early: &crate::modules::Plan) -> Option<String> {
    if let Some(name) = boot
        .state
        .read(EARLY_DEFAULT_USER)
        .ok()
        .flatten()
        .map(|d| String::from_utf8_lossy(&d).trim().to_string())
        .filter(|n| !n.is_empty())
    {
        return Some(name);
    }
    let accounts = Accounts::load(&boot.ctx.root);
    let user = early
        .users
        .iter()
        .find(|u| u.default && accounts.user(&u.name).is_none())?;
    if boot.ctx.dry_run {
        return Some(user.name.clone());
    }
    match boot
        .state
        .write(EARLY_DEFAULT_USER, format!("{}\n", user.name).as_bytes())
    {
        Ok(()) => Some(user.name.clone()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot record the early default user");
            None
        }
    }
}
