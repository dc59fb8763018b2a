//! wisp's state under `/var/db/wisp` (0700, files 0600): the fetched data that `wisp query`
//! reads, and the OAuth clock skew per `host:port` that later stages and boots reuse.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use wisp_datasources::oauth::SkewStore;

use crate::fsutil::{ensure_dir, write_atomic_with, Durability};
use crate::root::Root;

pub const STATE_DIR: &str = "/var/db/wisp";
pub const INSTANCE_DATA: &str = "instance-data.json";
pub const USER_DATA: &str = "user-data";
pub const VENDOR_DATA: &str = "vendor-data";
pub const SKEW_FILE: &str = "oauth-skew.json";

/// How durably each state file is written (a one-user boot wrote 26 files with two fsyncs
/// each). Only what a crash would lose for good pays for both fsyncs; everything not named here
/// does, so a new file is safe until someone decides otherwise:
/// - the instance id and the previous one: a lost one makes the next boot think the instance new
///   and run every per-instance module again (users, runcmd…);
/// - the module markers (`sem.*.json`): the same, module by module;
/// - `results.json`: the only record of what the run did;
/// - the event queue: events MAAS has not received yet, which nothing else remembers.
fn durability(name: &str) -> Durability {
    match name {
        // Fetched again in every boot's network stage. The file's own fsync stays: after a
        // crash the local stage (which runs from the cache) then finds an old or a new
        // document, never an empty one under the new name.
        INSTANCE_DATA | USER_DATA | VENDOR_DATA => Durability::Contents,
        // The clock skew is measured again at the cost of one refused request; the stage
        // progress (`status.json`, written at every stage and module change) is rewritten by
        // the next boot's first stage. Both readers take an empty or unreadable file as unknown.
        SKEW_FILE | "status.json" => Durability::None,
        _ => Durability::Full,
    }
}

#[derive(Debug, Clone)]
pub struct StateDir {
    root: Root,
    dir: PathBuf,
    /// `--dry-run`: read, never write.
    read_only: bool,
}

impl StateDir {
    pub fn new(root: &Root, read_only: bool) -> StateDir {
        StateDir {
            root: root.clone(),
            dir: root.path(STATE_DIR),
            read_only,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `--dry-run`: nothing is written.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Makes the directory root-only, each of its components a real directory under the root:
    /// the files below are then written by host path without any link to follow out of it.
    pub(crate) fn ensure(&self) -> io::Result<()> {
        crate::fsutil::create_dirs(&self.root.path("/"), 0o755)?;
        crate::rootfs::real_dirs(&self.root, STATE_DIR).map_err(io::Error::other)?;
        ensure_dir(&self.dir, 0o700)
    }

    /// Writes a state file atomically, root-only, as durably as [`durability`] says for its
    /// name. A no-op under `--dry-run`.
    pub fn write(&self, name: &str, data: &[u8]) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.ensure()?;
        write_atomic_with(&self.path(name), data, 0o600, durability(name))
    }

    /// Appends to a state file (created root-only), without fsync: for journals whose loss in a
    /// power cut costs a duplicate at worst. A no-op under `--dry-run`.
    pub fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if self.read_only {
            return Ok(());
        }
        self.ensure()?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.path(name))?;
        f.write_all(data)
    }

    /// Fails unless wisp can keep state here (a real run needs root). Checked before any request
    /// that changes something remote: on MAAS the user-data GET marks the machine Deployed, and
    /// a run that then cannot save what it fetched must not get that far.
    pub fn check_writable(&self) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.ensure()?;
        // One name, so that a probe a crash left is removed here, not piled up.
        let probe = self.path(".probe");
        match std::fs::remove_file(&probe) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&probe)?;
        }
        std::fs::remove_file(probe)
    }

    pub fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(name)) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn remove(&self, name: &str) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        match std::fs::remove_file(self.path(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Caches what a datasource returned, for `wisp query` and the later stages. `user_data`:
/// `None` when it was not fetched (the cached one is kept), `Some(None)` when there is none.
pub fn save_fetched(
    state: &StateDir,
    md: &wisp_datasources::Metadata,
    user_data: Option<Option<&[u8]>>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut instance = md.instance_data();
    instance["datasource"] = serde_json::json!(md.datasource);
    instance["network_config"] = serde_json::json!(md.network_config);
    let ctx = |what: &str| format!("saving {what} in {}", state.dir().display());
    state
        .write(INSTANCE_DATA, &serde_json::to_vec_pretty(&instance)?)
        .with_context(|| ctx(INSTANCE_DATA))?;
    match &md.vendor_data {
        Some(v) => state.write(VENDOR_DATA, v),
        None => state.remove(VENDOR_DATA),
    }
    .with_context(|| ctx(VENDOR_DATA))?;
    if let Some(user_data) = user_data {
        match user_data {
            Some(u) => state.write(USER_DATA, u),
            None => state.remove(USER_DATA),
        }
        .with_context(|| ctx(USER_DATA))?;
    }
    Ok(())
}

/// The instance-data document of the last fetch and its instance id.
pub fn cached_instance_data(state: &StateDir) -> Option<(serde_json::Value, String)> {
    let data: serde_json::Value = serde_json::from_slice(&state.read(INSTANCE_DATA).ok()??).ok()?;
    let instance_id = data["v1"]["instance_id"].as_str()?.to_string();
    Some((data, instance_id))
}

/// The instance id of the last fetch, without decoding its user-data (which may fetch).
pub fn cached_instance_id(state: &StateDir) -> Option<String> {
    cached_instance_data(state).map(|(_, id)| id)
}

/// The user-data of the last fetch, if any.
pub fn read_cached_user_data(state: &StateDir) -> Option<Vec<u8>> {
    state.read(USER_DATA).ok().flatten()
}

/// The clock skew per `host:port`, kept in `oauth-skew.json` so the next stage or boot starts
/// with the right time instead of paying a refused request again.
pub struct FileSkewStore {
    state: StateDir,
    skews: Mutex<BTreeMap<String, i64>>,
}

impl FileSkewStore {
    pub fn load(state: StateDir) -> FileSkewStore {
        let skews = state
            .read(SKEW_FILE)
            .ok()
            .flatten()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default();
        FileSkewStore {
            state,
            skews: Mutex::new(skews),
        }
    }
}

impl SkewStore for FileSkewStore {
    fn get(&self, host_port: &str) -> Option<i64> {
        self.skews.lock().ok()?.get(host_port).copied()
    }

    fn set(&self, host_port: &str, skew: i64) {
        let Ok(mut skews) = self.skews.lock() else {
            return;
        };
        skews.insert(host_port.to_string(), skew);
        let data = serde_json::to_vec_pretty(&*skews).unwrap_or_default();
        if let Err(e) = self.state.write(SKEW_FILE, &data) {
            tracing::warn!(error = %e, "cannot save the clock skew; it will be measured again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn state_is_root_only_and_skew_persists() {
        let d = std::env::temp_dir().join(format!(
            "wisp-state-{}",
            wisp_datasources::oauth::new_nonce()
        ));
        let root = Root::new(&d);
        let s = StateDir::new(&root, false);
        let store = FileSkewStore::load(s.clone());
        store.set("10.0.0.2:5248", 3600);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(s.dir()), 0o700);
        assert_eq!(mode(&s.path(SKEW_FILE)), 0o600);
        let again = FileSkewStore::load(StateDir::new(&root, false));
        assert_eq!(again.get("10.0.0.2:5248"), Some(3600));
        // --dry-run: the saved skew is used, a new one is kept in memory only.
        let dry = FileSkewStore::load(StateDir::new(&root, true));
        assert_eq!(dry.get("10.0.0.2:5248"), Some(3600));
        dry.set("10.0.0.2:5248", -20);
        assert_eq!(dry.get("10.0.0.2:5248"), Some(-20));
        let after = FileSkewStore::load(StateDir::new(&root, false));
        assert_eq!(after.get("10.0.0.2:5248"), Some(3600));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn what_a_crash_would_lose_stays_fully_durable() {
        for name in [
            "instance-id",
            "previous-instance-id",
            "sem.users_groups.json",
            "results.json",
            crate::boot::events::QUEUE,
        ] {
            assert_eq!(durability(name), Durability::Full, "{name}");
        }
        for name in [INSTANCE_DATA, USER_DATA, VENDOR_DATA] {
            assert_eq!(durability(name), Durability::Contents, "{name}");
        }
        assert_eq!(durability(SKEW_FILE), Durability::None);
        assert_eq!(
            durability(crate::boot::record::STATUS),
            Durability::None,
            "the stage progress"
        );
    }

    #[test]
    fn a_linked_state_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("var/db")).unwrap();
        let s = StateDir::new(&Root::new(d.path()), false);
        let e = s.write("instance-id", b"i").unwrap_err().to_string();
        assert!(e.contains("/var/db is a symbolic link: refused"), "{e}");
        assert!(s.append("events", b"e").is_err());
        assert!(s.check_writable().is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn dry_run_writes_nothing() {
        let d = std::env::temp_dir().join(format!(
            "wisp-state-{}",
            wisp_datasources::oauth::new_nonce()
        ));
        let s = StateDir::new(&Root::new(&d), true);
        s.write("x", b"y").unwrap();
        assert!(!d.exists());
    }
}
