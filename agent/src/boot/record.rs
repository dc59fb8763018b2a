//! What a boot leaves for `wisp status` (`status.json`: each stage and module, how it went, and
//! the process running it) and for `wisp query --results` (`results.json`, the same record
//! `wisp apply` writes).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::instance::InstanceState;
use crate::report::Outcome;
use crate::state::StateDir;

#[cfg(test)]
#[path = "record_dir_tests.rs"]
mod dir_tests;

pub const STATUS: &str = "status.json";
/// Locked (flock, exclusive) by the process running a stage, for as long as it runs. The kernel
/// drops the lock when that process ends, however it ends (kill -9, a panic, a power cut), so
/// `wisp status` tells a running stage from a crashed one without trusting a pid, which another
/// process may have taken since.
pub const STAGE_LOCK: &str = "stage.lock";

/// Says that this boot's local modules (bootcmd, boothooks: every boot, once) have run. Under
/// /var/run, which the BSDs' rc empties at every boot (FreeBSD's cleanvar, NetBSD's
/// clearcritlocal, OpenBSD's /etc/rc; Linux's /run is a tmpfs): so its presence means "this
/// boot", with no boot id to compare.
pub const LOCAL_MODULES_RAN: &str = "/var/run/wisp/local-modules-ran";

/// Whether this boot's local modules have run (or been given to a stage to run).
pub fn local_modules_ran(root: &crate::root::Root) -> bool {
    crate::rootfs::entry(root, LOCAL_MODULES_RAN, None).is_ok_and(|e| e.is_some())
}

/// Records that this boot's local modules run now: written before they run, so that a stage
/// that crashes in them does not have them run again in this boot.
pub fn note_local_modules_run(root: &crate::root::Root) -> std::io::Result<()> {
    // Inside the root (Linux's /var/run -> /run resolved there, never on the host).
    let dir = LOCAL_MODULES_RAN.rsplit_once('/').map_or("/", |(d, _)| d);
    crate::rootfs::mkdir(root, dir, 0o700, None, None).map_err(std::io::Error::other)?;
    crate::rootfs::write(
        root,
        LOCAL_MODULES_RAN,
        format!("{}\n", std::process::id()).as_bytes(),
        0o600,
        None,
        None,
        false,
    )
    .map_err(std::io::Error::other)
}

/// Takes the stage lock. `Ok(None)` under `--dry-run` (nothing is written).
fn lock_stage(state: &StateDir) -> std::io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    if state.is_read_only() {
        return Ok(None);
    }
    // Each component a real directory under the root before the lock is opened by host path.
    state.ensure()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(state.path(STAGE_LOCK))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Some(file))
}

/// Whether some process holds the stage lock. None when that cannot be told (no lock file: a
/// status.json from an older wisp, or one written by hand; or no permission to open it).
pub fn stage_lock_held(state: &StateDir) -> Option<bool> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(state.path(STAGE_LOCK))
        .ok()?;
    // SAFETY: flock on a descriptor this function owns; a lock taken is dropped with it.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        return Some(false);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EWOULDBLOCK) => Some(true),
        _ => None,
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The progress of the boot, saved as it changes.
pub struct Record {
    state: StateDir,
    status: Value,
    /// The stage lock, held while a stage runs.
    lock: Option<File>,
    /// The lock is held for the whole run ([`Record::lock_run`]), not let go after a stage.
    locked_for_run: bool,
}

/// The exit status of `wisp init` when another process holds the stage lock (sysexits'
/// EX_TEMPFAIL): it did nothing, and may be run again once the other one has ended.
pub const LOCK_HELD_EXIT: u8 = 75;

/// Reads `status.json` (empty when there is none).
pub fn read_status(state: &StateDir) -> Value {
    state
        .read(STATUS)
        .ok()
        .flatten()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_else(|| json!({}))
}

impl Record {
    pub fn load(state: StateDir) -> Record {
        let status = read_status(&state);
        Record {
            state,
            status,
            lock: None,
            locked_for_run: false,
        }
    }

    /// Takes the stage lock for every stage of this run, before any of them starts. An error
    /// of kind `WouldBlock` means another process holds it (another `wisp init` is running a
    /// stage): two runs at once would edit the accounts together.
    pub fn lock_run(&mut self) -> std::io::Result<()> {
        self.lock = lock_stage(&self.state)?;
        self.locked_for_run = true;
        Ok(())
    }

    /// A stage starts (`running`, with this process's id) or ends with its result.
    pub fn stage(&mut self, stage: &str, result: &str, errors: Vec<String>) {
        if result == "running" && self.lock.is_none() {
            // Taken before "running" is recorded, and let go after the result is: a free lock
            // with "running" recorded means the process is gone.
            match lock_stage(&self.state) {
                Ok(lock) => self.lock = lock,
                Err(e) => tracing::warn!(
                    error = %e,
                    "cannot lock {STAGE_LOCK}: `wisp status` cannot tell if this stage crashes"
                ),
            }
        }
        let entry = &mut self.status["stages"][stage];
        if result == "running" {
            *entry = json!({"started": now(), "result": "running", "pid": std::process::id()});
        } else {
            entry["finished"] = json!(now());
            entry["result"] = json!(result);
            entry["errors"] = json!(errors);
            if let Some(e) = entry.as_object_mut() {
                e.remove("pid");
            }
        }
        self.status["current"] = json!(stage);
        self.save();
        if result != "running" && !self.locked_for_run {
            self.lock = None;
        }
    }

    pub fn module(&mut self, name: &str, result: Outcome, errors: &[String]) {
        self.status["modules"][name] = json!({"result": result.as_str(), "errors": errors});
    }

    /// The result a stage ended with, if it ended.
    pub fn stage_result(&self, stage: &str) -> Option<&str> {
        self.status["stages"][stage]["result"].as_str()
    }

    fn save(&self) {
        let data = serde_json::to_vec_pretty(&self.status).unwrap_or_default();
        if let Err(e) = self.state.write(STATUS, &data) {
            tracing::warn!(error = %e, "cannot save the status");
        }
    }

    /// The results record of the boot so far (`wisp query --results`).
    pub fn save_results(
        &self,
        instance: &InstanceState,
        instance_id: Option<&str>,
        result: Outcome,
        warnings: &[String],
    ) {
        let mut errors: Vec<Value> = Vec::new();
        if let Some(modules) = self.status["modules"].as_object() {
            for (m, v) in modules {
                for e in v["errors"].as_array().into_iter().flatten() {
                    errors.push(json!({"module": m, "error": e}));
                }
            }
        }
        for (s, v) in self.status["stages"].as_object().into_iter().flatten() {
            for e in v["errors"].as_array().into_iter().flatten() {
                errors.push(json!({"stage": s, "error": e}));
            }
        }
        let record = json!({
            "command": "init",
            "instance_id": instance_id,
            "previous_instance_id": instance.previous_instance_id(),
            "result": result.as_str(),
            "stages": self.status["stages"],
            "modules": self.status["modules"],
            "errors": errors,
            "warnings": warnings,
        });
        if let Err(e) = instance.write_results(&record) {
            tracing::warn!(error = %e, "cannot record the results");
        }
    }
}
