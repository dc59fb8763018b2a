//! The final stage, after logins: deferred files, runcmd, user scripts, the final message, and
//! the final report, whose result is the whole boot's (with the log attached when it is not
//! SUCCESS). power_state's shutdown is held back for the boot's very end, after the report.

use super::{Boot, StageEnd, StageName, LOG_TAIL};
use crate::modules::{final_message, power_state, Stage};
use crate::plan::Action;
use crate::report::Outcome;

pub(super) const EVENT: &str = "modules-final";

/// The event of the packages' reboot, a child of the packages module's.
pub(super) fn reboot_event(module: &str) -> String {
    format!("{EVENT}/config-{module}/reboot")
}

pub fn run(boot: &mut Boot<'_>) -> StageEnd {
    boot.record.stage("final", "running", Vec::new());
    boot.aim_events(None);
    boot.events.start(EVENT, "running modules for final");
    if boot.data.is_none() {
        boot.data = super::local::from_cache(boot);
    }
    if boot.data.is_none() {
        return boot.fatal(
            StageName::Final,
            EVENT,
            "no data: the network stage has not run".into(),
        );
    }
    let mut planned = boot.plan_stage(Stage::Final, false, &[]).planned;
    // The shutdown waits for the final report (a dry run only shows it).
    let power: Vec<Action> = if boot.ctx.dry_run {
        Vec::new()
    } else {
        let is_power = |a: &Action| matches!(a, Action::PowerState { .. });
        let power: Vec<Action> = planned
            .actions
            .iter()
            .filter(|a| is_power(a))
            .cloned()
            .collect();
        planned.retain_actions(|a| !is_power(a));
        choose_power(power)
    };
    let mut outcome = boot.run_modules_marking(&planned, EVENT, Some(Stage::Final));
    if let Some(module) = power.first().map(Action::module) {
        // power_state is marked done before it runs, as the user's commands are: a reboot
        // must not come back at every boot. The packages' reboot is the packages module's
        // (marked with it), so a power_state of the user's is not marked by it.
        if module == power_state::NAME {
            boot.mark_module(power_state::NAME);
            let child = format!("{EVENT}/config-{module}");
            boot.events
                .start(&child, &format!("running config-{module}"));
        }
        // The packages' reboot has events of its own (`…/reboot`), sent only when it is
        // scheduled or fails: the packages module itself finished with the stage.
        let what: Vec<String> = power.iter().map(Action::describe).collect();
        // Its finish, with its outcome, is sent once it has run, after the final report.
        tracing::info!("{module}: after the final report: {}", what.join("; "));
        boot.after_report = power;
    }
    boot.mark_stage(Stage::Final);
    // A cloud_final_modules list without final_message leaves it out, as in cloud-init.
    if crate::modules::is_selected(final_message::NAME) {
        print_final_message(boot);
    }
    // The whole boot's result: the worst of the stages.
    for s in ["local", "network"] {
        match boot.record.stage_result(s) {
            Some("FAIL") => outcome = outcome.worst(Outcome::Fail),
            Some("WARN") => outcome = outcome.worst(Outcome::Warn),
            _ => {}
        }
    }
    boot.record.stage("final", outcome.as_str(), Vec::new());
    // The instance's first boot is over: a later process finds it known
    // ([`crate::engine::is_new_instance`]).
    if !boot.ctx.dry_run {
        if let Some(id) = boot.data.as_ref().map(|d| d.instance_id.clone()) {
            if let Err(e) = boot.instance.set_final_finished(&id) {
                tracing::warn!(error = %e, "cannot record the end of the final stage");
            }
        }
    }
    let log = (outcome != Outcome::Success)
        .then(|| crate::log::tail(&boot.ctx.root, LOG_TAIL))
        .flatten();
    boot.events.finish(
        EVENT,
        &format!("wisp finished: {}", outcome.as_str()),
        outcome,
        log.as_deref().map(|l| (crate::log::LOG_FILE, l)),
    );
    StageEnd::ok(outcome)
}

/// The power change after the report: the user's power_state when there is one (it names
/// what the machine is to do; any restart also serves the packages' reboot-required), else the
/// packages' reboot.
pub(crate) fn choose_power(power: Vec<Action>) -> Vec<Action> {
    let (own, others): (Vec<Action>, Vec<Action>) = power
        .into_iter()
        .partition(|a| a.module() == power_state::NAME);
    if own.is_empty() {
        return others;
    }
    for a in &others {
        tracing::info!(
            "{}: {} not done: power_state's own change goes instead",
            a.module(),
            a.describe()
        );
    }
    own
}

/// cloud-init's final_message: on the console and in the log, at every boot.
fn print_final_message(boot: &mut Boot<'_>) {
    let configured = boot
        .data
        .as_ref()
        .and_then(|d| d.read.as_ref())
        .and_then(|r| r.config().final_message.clone());
    let template = final_message::template(configured.as_deref());
    let datasource = crate::state::cached_instance_data(&boot.state)
        .and_then(|(data, _)| data["datasource"].as_str().map(str::to_string))
        .map(|name| {
            let url = crate::sources::maas_config(boot.config).map(|c| c.metadata_url);
            final_message::datasource_name(&name, url.as_deref())
        })
        .unwrap_or_else(|| "unknown".into());
    let text = final_message::render(template, &final_message::Vars::now(&datasource));
    tracing::info!("{}: {text}", final_message::NAME);
    outln!("{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn power(module: &'static str, item: &str) -> Action {
        Action::PowerState {
            module,
            item: item.into(),
            argv: vec!["shutdown".into(), "-p".into(), "now".into()],
            condition: None,
            timeout: 30,
        }
    }

    #[test]
    fn the_users_power_state_wins_over_the_packages_reboot() {
        let pkg = crate::modules::packages::NAME;
        let both = choose_power(vec![
            power(pkg, "reboot"),
            power(power_state::NAME, "poweroff"),
        ]);
        assert_eq!(both.len(), 1);
        assert_eq!(both[0].module(), power_state::NAME);
        let alone = choose_power(vec![power(pkg, "reboot")]);
        assert_eq!(alone.len(), 1);
        assert_eq!(alone[0].module(), pkg);
        assert!(choose_power(Vec::new()).is_empty());
    }
}
