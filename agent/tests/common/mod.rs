//! How these tests run wisp: `wisp --platform P [FLAGS] --root R --config <none> apply
//! --user-data DOC [--vendor-data V]`, so no test reads a configuration from the host.

#![allow(dead_code)] // each test binary uses its own part of this

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A path inside the agent crate.
pub fn manifest_path(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// `wisp apply` of `user_data` (and `vendor_data`) for `platform` under `root`; `flags` are
/// global flags such as `--dry-run` or `--format json`.
pub fn apply(
    platform: &str,
    root: &Path,
    flags: &[&str],
    user_data: &Path,
    vendor_data: Option<&Path>,
) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wisp"));
    c.args(["--platform", platform])
        .args(flags)
        .arg("--root")
        .arg(root)
        .arg("--config")
        .arg(manifest_path("tests/fixtures/no-config.yaml"))
        .args(["apply", "--user-data"])
        .arg(user_data);
    if let Some(v) = vendor_data {
        c.arg("--vendor-data").arg(v);
    }
    c.output().unwrap()
}

/// The `--dry-run --format json` plan of `user_data`.
pub fn json_plan(
    platform: &str,
    root: &Path,
    user_data: &Path,
    vendor_data: Option<&Path>,
) -> (serde_json::Value, Output) {
    let o = apply(
        platform,
        root,
        &["--dry-run", "--format", "json"],
        user_data,
        vendor_data,
    );
    let plan = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    (plan, o)
}

/// A fresh fake root (account files, rc.conf, sudoers) copied from `tests/fixtures/roots/fresh`.
pub fn fresh_root() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let src = manifest_path("tests/fixtures/roots/fresh");
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(t.path())
        .status()
        .unwrap();
    assert!(status.success());
    t
}
