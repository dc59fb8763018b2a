//! Shared helpers of the end-to-end tests: a mock MAAS with the demo machine, the `wisp` binary,
//! throwaway roots.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mock_maas::{MachinesFile, MockMaas};

pub const SYSTEM_ID: &str = "8kq3dx";
pub const CONSUMER_KEY: &str = "nT2dKJuVc3H4aZy7Lq";
pub const TOKEN_KEY: &str = "ufYb2m8QwX6kPz9rEd";
pub const TOKEN_SECRET: &str = "4vGh7TnKcR2xWq9LmZp3Jd8sYb6FaE5u";

/// The example machine's OAuth credentials (MAAS leaves the consumer secret empty).
pub fn creds() -> wisp_datasources::oauth::Credentials {
    wisp_datasources::oauth::Credentials {
        consumer_key: CONSUMER_KEY.into(),
        consumer_secret: String::new(),
        token_key: TOKEN_KEY.into(),
        token_secret: TOKEN_SECRET.into(),
    }
}

pub fn demo_machines() -> MachinesFile {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo-machines.yaml");
    MachinesFile::load(&p).expect("demo machines file")
}

/// A mock with the demo machine, optionally changed.
pub fn mock_with(change: impl FnOnce(&mut MachinesFile)) -> MockMaas {
    let mut file = demo_machines();
    change(&mut file);
    MockMaas::start(file).expect("mock MAAS starts")
}

pub fn mock() -> MockMaas {
    mock_with(|_| {})
}

/// The `wisp` binary that `cargo test --workspace` built beside this test.
pub fn wisp_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WISP_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("wisp");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `sh tests/run` or `cargo test --workspace` (or set WISP_BIN)",
        bin.display()
    );
    bin
}

/// A throwaway root with a wisp configuration for `mock`.
pub struct Machine {
    pub root: tempfile::TempDir,
    pub config: PathBuf,
}

impl Machine {
    pub fn new(mock: &MockMaas, max_wait: f64) -> Machine {
        Self::with_config(&config_for(mock, max_wait))
    }

    pub fn with_config(text: &str) -> Machine {
        let root = tempfile::tempdir().expect("tempdir");
        let config = root.path().join("etc/wisp/wisp.yaml");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(&config, text).unwrap();
        Machine { root, config }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.root.path().join(p.trim_start_matches('/'))
    }

    /// Runs `wisp --root <root> ARGS…`.
    pub fn wisp(&self, args: &[&str]) -> Output {
        Command::new(wisp_bin())
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .output()
            .expect("wisp runs")
    }
}

pub fn config_for(mock: &MockMaas, max_wait: f64) -> String {
    format!(
        "datasource_list: [MAAS]\n\
         datasource:\n  MAAS:\n    metadata_url: {url}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\n    max_wait: {max_wait}\n    timeout: 2\n",
        url = mock.metadata_url()
    )
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether this machine can really apply for Linux: root, shadow-utils and ldd (CI has them).
pub fn can_apply_linux() -> bool {
    if !mock_maas::roots::can_apply_linux() {
        eprintln!("skipped: needs root, shadow-utils and ldd (CI has them)");
        return false;
    }
    true
}

/// A throwaway Linux root: account files, sudoers, and the host's /bin/sh with its libraries
/// (for runcmd).
pub fn linux_root() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    mock_maas::roots::make_linux_root(t.path()).unwrap();
    t
}
