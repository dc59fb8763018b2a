//! `bootcmd` (cloud-init's cc_bootcmd): commands run early on every boot, as one shell script
//! with `INSTANCE_ID` in its environment. Stage local, every boot.

use super::{script, Frequency, Inputs, Planned, Stage};

pub const NAME: &str = "bootcmd";
pub const STAGE: Stage = Stage::Local;
pub const FREQUENCY: Frequency = Frequency::PerBoot;

pub fn plan(inp: &Inputs<'_>, instance_id: &str, out: &mut Planned) {
    if inp.config.bootcmd.is_empty() {
        return;
    }
    let mut text = script::to_script(&inp.config.bootcmd);
    text.insert_str(
        "#!/bin/sh\n".len(),
        &format!(
            "INSTANCE_ID={}\nexport INSTANCE_ID\n",
            script::quote(instance_id)
        ),
    );
    script::write_and_run(
        inp,
        out,
        NAME,
        "bootcmd",
        text.into_bytes(),
        Some("/bin/sh"),
    );
}

/// The module in the registry ([`super::MODULES`]).
pub struct Bootcmd;

impl super::Module for Bootcmd {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["bootcmd"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        plan(inp, run.extras.instance_id, out)
    }
}
