//! `timezone` (cloud-init's cc_timezone): `/etc/localtime` becomes a link to the zone in
//! `/usr/share/zoneinfo`, which must exist. Once per instance.

use super::{Frequency, Inputs, Planned, Stage};
use crate::plan::Action;

pub const NAME: &str = "timezone";
pub const STAGE: Stage = Stage::Network;
pub const FREQUENCY: Frequency = Frequency::PerInstance;
const ZONEINFO: &str = "/usr/share/zoneinfo";

pub fn plan(inp: &Inputs<'_>, out: &mut Planned) {
    let Some(tz) = &inp.config.timezone else {
        return;
    };
    let safe = !tz.is_empty()
        && !tz.starts_with('/')
        && tz
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && tz
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c));
    if !safe {
        out.error(NAME, tz, "not a zone name such as Europe/Paris");
        return;
    }
    let target = format!("{ZONEINFO}/{tz}");
    if !inp.root.path(&target).is_file() {
        out.error(
            NAME,
            tz,
            format!("unknown time zone: {target} does not exist"),
        );
        return;
    }
    let link = inp.root.path("/etc/localtime");
    if std::fs::read_link(&link).ok().as_deref() == Some(std::path::Path::new(&target)) {
        return;
    }
    out.actions.push(Action::Symlink {
        module: NAME,
        item: tz.clone(),
        path: "/etc/localtime".into(),
        target,
    });
}

/// The module in the registry ([`super::MODULES`]).
pub struct Timezone;

impl super::Module for Timezone {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["timezone"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let _ = run;
        plan(inp, out)
    }
}
