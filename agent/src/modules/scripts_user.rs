//! User-data `#!` parts (cloud-init's scripts-user) and `#cloud-boothook` parts: each written
//! as an executable file and run by its own `#!` line. Scripts run in the final stage once per
//! instance; boothooks run early (local stage) on every boot.

use wisp_datasources::userdata::{Part, PartKind};

use super::{script, Frequency, Inputs, Planned, Stage};

pub const NAME: &str = "scripts_user";
pub const STAGE: Stage = Stage::Final;
pub const FREQUENCY: Frequency = Frequency::PerInstance;
pub const BOOTHOOK: &str = "boothook";

pub fn plan(inp: &Inputs<'_>, parts: &[Part], out: &mut Planned) {
    for p in parts.iter().filter(|p| p.kind == PartKind::Script) {
        script::write_and_run(inp, out, NAME, &p.name, p.content.clone(), None);
    }
}

/// Boothooks: the `#cloud-boothook` line is dropped; what follows is run by `/bin/sh` unless
/// it has a `#!` line of its own.
pub fn plan_boothooks(inp: &Inputs<'_>, parts: &[Part], out: &mut Planned) {
    for p in parts.iter().filter(|p| p.kind == PartKind::Boothook) {
        let body = match p.content.iter().position(|&b| b == b'\n') {
            Some(i) => p.content[i + 1..].to_vec(),
            None => Vec::new(),
        };
        let interpreter = if body.starts_with(b"#!") {
            None
        } else {
            Some("/bin/sh")
        };
        script::write_and_run(inp, out, BOOTHOOK, &p.name, body, interpreter);
    }
}

/// The module in the registry ([`super::MODULES`]).
pub struct ScriptsUser;

impl super::Module for ScriptsUser {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &[],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        plan(inp, run.extras.parts, out)
    }
}

/// The module in the registry ([`super::MODULES`]).
pub struct Boothooks;

impl super::Module for Boothooks {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: BOOTHOOK,
            stage: Stage::Local,
            frequency: Frequency::PerBoot,
            keys: &[],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        plan_boothooks(inp, run.extras.parts, out)
    }
}
