//! `runcmd` (cloud-init's cc_runcmd and scripts-user): all commands as one shell script, run in
//! the final stage, so that a `cd` in one line holds for the next as in cloud-init. A failure
//! is reported with the exit status and the end of its output. Once per instance.

use super::{script, Frequency, Inputs, Planned, Stage};

pub const NAME: &str = "runcmd";
pub const STAGE: Stage = Stage::Final;
pub const FREQUENCY: Frequency = Frequency::PerInstance;

pub fn plan(inp: &Inputs<'_>, out: &mut Planned) {
    if inp.config.runcmd.is_empty() {
        return;
    }
    let text = script::to_script(&inp.config.runcmd);
    script::write_and_run(inp, out, NAME, "runcmd", text.into_bytes(), Some("/bin/sh"));
}

/// The module in the registry ([`super::MODULES`]).
pub struct Runcmd;

impl super::Module for Runcmd {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["runcmd"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let _ = run;
        plan(inp, out)
    }
}
