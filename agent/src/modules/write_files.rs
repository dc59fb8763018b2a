//! `write_files` (cloud-init's cc_write_files): each file written atomically with its mode and
//! owner, parent directories created. `defer: true` files are written in the final stage, after
//! users exist. `append` adds the content unless the file already ends with it. Files inside a
//! user's home are written without following symlinks. Once per instance.

use super::{Frequency, Inputs, Planned, Stage};
use crate::plan::Action;

pub const NAME: &str = "write_files";
/// Deferred files are their own module: they run in another stage.
pub const DEFERRED_NAME: &str = "write_files_deferred";
pub const STAGE: Stage = Stage::Network;
pub const DEFERRED_STAGE: Stage = Stage::Final;
pub const FREQUENCY: Frequency = Frequency::PerInstance;

/// Plans the files with `defer == deferred`.
pub fn plan(inp: &Inputs<'_>, deferred: bool, homes: &[String], out: &mut Planned) {
    let module = if deferred { DEFERRED_NAME } else { NAME };
    for f in inp
        .config
        .write_files
        .iter()
        .filter(|f| f.defer == deferred)
    {
        if f.path.split('/').any(|c| c == "..") {
            out.error(module, &f.path, "a path with '..' is refused");
            continue;
        }
        let current = out.current(inp.root, &f.path);
        let content = if f.append {
            let mut c = current.clone().unwrap_or_default();
            if c.ends_with(&f.content) && !f.content.is_empty() {
                continue;
            }
            c.extend_from_slice(&f.content);
            c
        } else {
            f.content.clone()
        };
        let host = inp.root.path(&f.path);
        let same_mode = std::fs::metadata(&host)
            .map(|m| {
                std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777 == f.permissions
            })
            .unwrap_or(false);
        if current.as_deref() == Some(&content[..]) && same_mode {
            continue;
        }
        // cloud-init's default owner is root:root, but the BSDs have no group `root`: gid 0 is
        // `wheel` there. Writing the file and then failing to chown it would help nobody.
        let group = if f.group == "root" && inp.accounts.group("root").is_none() {
            inp.backend.wheel()
        } else {
            f.group.as_str()
        };
        let in_home = homes
            .iter()
            .any(|h| f.path.starts_with(&format!("{}/", h.trim_end_matches('/'))));
        out.actions.push(Action::write(
            module,
            f.path.as_str(),
            f.path.as_str(),
            content,
            f.permissions,
            (&f.owner, group),
            in_home,
        ));
    }
}

/// The module in the registry ([`super::MODULES`]).
pub struct WriteFiles;

impl super::Module for WriteFiles {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["write_files"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let homes = run.homes(inp);
        plan(inp, false, &homes, out)
    }
}

/// The module in the registry ([`super::MODULES`]).
pub struct WriteFilesDeferred;

impl super::Module for WriteFilesDeferred {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: DEFERRED_NAME,
            stage: DEFERRED_STAGE,
            frequency: FREQUENCY,
            keys: &["write_files"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let homes = run.homes(inp);
        plan(inp, true, &homes, out)
    }
}
