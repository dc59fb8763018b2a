//! `growpart` and `resize_rootfs` (cloud-init's cc_growpart and cc_resizefs): the root
//! partition grown to the end of its disk, then its file system — MAAS writes an image of a few
//! GiB onto a disk of hundreds. With each OS's own tools, found by the backend
//! ([`crate::platform::Backend::root_growth`]) from the mount table and the partition table:
//! FreeBSD `gpart recover`/`gpart resize` and `growfs` on the mounted root; NetBSD
//! `gpt resizedisk`/`gpt resize`, the file system by rc.d/resize_root at the next boot
//! (resize_ffs does not grow a mounted root); OpenBSD cannot grow a mounted root at all.
//! Only the disk that holds `/` is touched, and only when the root partition is its last.
//! On by default, as in cloud-init; early (local stage), once per instance.

use super::{Frequency, Inputs, Planned, Stage};
use crate::cloudconfig::lenient::{child, describe, entries, yaml11_bool, Reader};
use crate::plan::Action;
use crate::platform::disks::Probe;
use crate::platform::{FsGrowth, RootGrowth};
use serde::Serialize;
use yaml_serde::Value;

pub const NAME: &str = "growpart";
pub const STAGE: Stage = Stage::Local;
pub const FREQUENCY: Frequency = Frequency::PerInstance;
/// cloud-init's marker: while it exists, the root is not grown (unless
/// `ignore_growroot_disabled`).
pub const DISABLED_MARKER: &str = "/etc/growroot-disabled";

pub fn plan(inp: &Inputs<'_>, out: &mut Planned) {
    let configured = inp.config.growpart.is_some();
    let gp = inp.config.growpart.clone().unwrap_or_default();
    if gp.mode == Mode::Off {
        return;
    }
    if !gp.devices.iter().any(|d| d == "/") {
        return;
    }
    if !gp.ignore_growroot_disabled
        && std::fs::symlink_metadata(inp.root.path(DISABLED_MARKER)).is_ok()
    {
        tracing::info!("{DISABLED_MARKER} exists: the root is not grown");
        return;
    }
    let host;
    let probe = match inp.disks {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            out.error(NAME, "/", e.clone());
            return;
        }
        None if inp.root.is_host() => {
            host = Probe::Host;
            &host
        }
        None => {
            // Never the host's disks for a fake root. Said in the plan when the document asks
            // for growpart, in the log when it is only the default.
            let note = "--root is not this system and no --disks was given: the root is not grown";
            if configured {
                out.warnings.push(format!("{NAME}: {note}"));
            } else {
                tracing::info!("{NAME}: {note}");
            }
            return;
        }
    };
    // What cannot be grown is an error only when the document asks for growpart; for the
    // default (a root on geli or gmirror, swap after the root as bsdinstall lays it out) it is
    // a note in the log: the user asked for nothing that failed.
    let cannot = |out: &mut Planned, reason: String| {
        if configured {
            out.error(NAME, "/", reason);
        } else {
            tracing::info!("{NAME}: the root is not grown: {reason}");
        }
    };
    let growth = match inp.backend.root_growth(probe) {
        Ok(g) => g,
        Err(e) => {
            cannot(out, format!("cannot find the root partition: {e}"));
            return;
        }
    };
    match growth {
        RootGrowth::Fills { device } => {
            tracing::debug!("growpart: {device} fills its disk already");
        }
        RootGrowth::Skip(note) if configured => {
            out.warnings.push(format!("{NAME}: {note}"));
        }
        RootGrowth::Skip(note) => tracing::info!("growpart: {note}"),
        RootGrowth::NotLast { device, disk, next } => cannot(
            out,
            format!(
                "the root {device} is not the last partition of {disk} ({next} follows it): it cannot grow"
            ),
        ),
        RootGrowth::Grow {
            device,
            disk,
            partition,
            fs,
        } => {
            let resize_fs = inp.config.resize_rootfs != Some(false);
            // The rc.conf knob goes first: if the growth is cut short after the partition
            // grew, a rerun finds the partition full and plans nothing, and the knob must be
            // there already.
            if let (true, FsGrowth::NextBoot { rc_conf, vars }) = (resize_fs, &fs) {
                let current = match out.try_current_text(inp.root, rc_conf, None) {
                    Err(e) => {
                        out.error(NAME, "/", e);
                        return;
                    }
                    Ok(current) => current,
                };
                let mut text = current.clone();
                for (var, value) in vars.iter() {
                    if let Some(new) = crate::rcconf::set_var(&text, var, value) {
                        text = new;
                    }
                }
                if text != current {
                    let item: Vec<&str> = vars.iter().map(|(v, _)| *v).collect();
                    out.actions.push(Action::write(
                        NAME,
                        item.join(", "),
                        *rc_conf,
                        text.into_bytes(),
                        0o644,
                        ("root", inp.backend.wheel()),
                        false,
                    ));
                }
                check_fstab_for_resize_root(inp, out);
            }
            for argv in partition {
                out.actions.push(grow_exec(disk.clone(), argv));
            }
            if let (true, FsGrowth::Now(argv)) = (resize_fs, fs) {
                out.actions.push(grow_exec(device, argv));
            }
        }
    }
}

/// How long one growing tool (gpart/gpt resize, growfs, resize_ffs) may take: a day, not the
/// system tools' 600 s. growfs on a huge slow disk takes long, and one killed half-way is not
/// redone: a rerun finds the partition grown and plans nothing, leaving the file system small.
/// A day still ends a tool that hung for good.
pub const GROW_LIMIT_SECS: u64 = 24 * 60 * 60;

/// A growing tool's run, with its own [`GROW_LIMIT_SECS`].
fn grow_exec(item: String, argv: Vec<String>) -> Action {
    Action::Exec {
        module: NAME,
        item,
        argv,
        stdin: None,
        env: Vec::new(),
        timeout: Some(GROW_LIMIT_SECS),
    }
}

/// NetBSD's rc.d/resize_root takes the root's device from /etc/fstab, and does nothing when
/// that is a `NAME=` label (it cannot name a raw device from it) or when the root is mounted
/// with `log` (WAPBL): said here, as the partition still grows.
fn check_fstab_for_resize_root(inp: &Inputs<'_>, out: &mut Planned) {
    let fstab = match out.try_current_text(inp.root, "/etc/fstab", None) {
        Ok(t) => t,
        Err(e) => {
            out.warnings.push(format!("{NAME}: {e}"));
            return;
        }
    };
    let root = fstab.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 4 && !f[0].starts_with('#') && f[1] == "/").then(|| (f[0], f[3]))
    });
    let problem = match root {
        None => Some("/ is not in /etc/fstab".to_string()),
        Some((spec, _)) if spec.starts_with("NAME=") => Some(format!(
            "/etc/fstab names the root by label ({spec}), which rc.d/resize_root cannot read"
        )),
        Some((_, opts)) if opts.split(',').any(|o| o == "log") => {
            Some("/etc/fstab mounts / with log, which rc.d/resize_root refuses".to_string())
        }
        Some(_) => None,
    };
    if let Some(p) = problem {
        out.warnings.push(format!(
            "{NAME}: the partition grows, but its file system will not: {p} \
             (use ROOT. or the device, without log)"
        ));
    }
}

// Reading the module's part of a cloud-config document, with cloud-init's leniency
// (`cloudconfig::lenient`).

/// `growpart.mode`: cloud-init's `auto`, `growpart` and `gpart` all mean the OS's own tools
/// here; `off` (or false) turns it off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Auto,
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Growpart {
    pub mode: Mode,
    /// Mount points whose partitions grow: only `/` is grown by wisp.
    pub devices: Vec<String>,
    pub ignore_growroot_disabled: bool,
}

impl Default for Growpart {
    fn default() -> Self {
        Growpart {
            mode: Mode::Auto,
            devices: vec!["/".into()],
            ignore_growroot_disabled: false,
        }
    }
}

pub(crate) fn read_growpart(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<Growpart> {
    let map = match v {
        Value::Null => return Some(Growpart::default()),
        Value::Mapping(m) => m,
        other => {
            r.error(path, format!("expected a map, got {}", describe(other)));
            // As cloud-init: a growpart it cannot read grows nothing.
            return Some(Growpart {
                mode: Mode::Off,
                ..Growpart::default()
            });
        }
    };
    let mut gp = Growpart::default();
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        match key.as_str() {
            "mode" => {
                gp.mode = match (yaml11_bool(val), val.as_str()) {
                    (Some(false), _) => Mode::Off,
                    (None, Some("off")) => Mode::Off,
                    (None, Some("auto" | "growpart" | "gpart")) => Mode::Auto,
                    _ => {
                        r.error(
                            &p,
                            format!(
                                "unknown mode {}: expected auto, growpart, gpart or off",
                                describe(val)
                            ),
                        );
                        // Not grown on a mode no one can read: the safe side.
                        Mode::Off
                    }
                }
            }
            "devices" => match val {
                Value::Sequence(_) => {
                    gp.devices = r.string_list(&p, val);
                    for d in gp.devices.iter().filter(|d| d.as_str() != "/") {
                        r.warn(
                            &p,
                            format!("wisp grows only the root (/): {d} is not grown"),
                        );
                    }
                }
                other => {
                    r.error(&p, format!("expected a list, got {}", describe(other)));
                    gp.devices = Vec::new();
                }
            },
            "ignore_growroot_disabled" => {
                gp.ignore_growroot_disabled = r.bool(&p, val).unwrap_or(false)
            }
            _ => r.warn(&p, "unknown key (ignored)"),
        }
    }
    Some(gp)
}

/// `resize_rootfs`: true, false, or cloud-init's `noblock` (in the background: here it is as
/// quick either way, so the same as true).
pub(crate) fn read_resize_rootfs(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<bool> {
    match (yaml11_bool(v), v.as_str()) {
        (Some(b), _) => Some(b),
        (None, Some("noblock")) => Some(true),
        _ => {
            r.error(
                path,
                format!("expected true, false or noblock, got {}", describe(v)),
            );
            // As cloud-init, which reads anything else as false.
            Some(false)
        }
    }
}

/// The module in the registry ([`super::MODULES`]).
pub struct GrowpartModule;

impl super::Module for GrowpartModule {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["growpart", "resize_rootfs"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let _ = run;
        plan(inp, out)
    }
}
