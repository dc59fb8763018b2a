//! The final stage, after logins: deferred files, runcmd, user scripts, and the final report,
//! whose result is the whole boot's (with the log attached when it is not SUCCESS).

use super::{Boot, StageEnd, StageName, LOG_TAIL};
use crate::modules::Stage;
use crate::report::Outcome;

const EVENT: &str = "modules-final";

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
    let planned = boot.plan_stage(Stage::Final, false, &[]).planned;
    let mut outcome = boot.run_modules_marking(&planned, EVENT, Some(Stage::Final));
    boot.mark_stage(Stage::Final);
    // The whole boot's result: the worst of the stages.
    for s in ["local", "network"] {
        match boot.record.stage_result(s) {
            Some("FAIL") => outcome = outcome.worst(Outcome::Fail),
            Some("WARN") => outcome = outcome.worst(Outcome::Warn),
            _ => {}
        }
    }
    boot.record.stage("final", outcome.as_str(), Vec::new());
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
