//! Issue 16 follow-up, end to end: a second `wisp init` while one runs a stage does nothing and
//! exits 75 (the stage lock is held), so two runs never edit the accounts at the same time
//! (needs root and shadow-utils, as CI has).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// bootcmd says it started, then holds the stage for a while.
const USER_DATA: &str = "#cloud-config\nbootcmd:\n  - ': > /var/tmp/first-started; sleep 3'\n";

/// The host's sleep(1) with its libraries in the root (which has only /bin/sh).
fn add_sleep(r: &Path) {
    let sleep = std::fs::canonicalize("/bin/sleep").unwrap();
    let out = Command::new("ldd").arg(&sleep).output().unwrap();
    let mut files = vec![(sleep, std::path::PathBuf::from("bin/sleep"))];
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(p) = l.split_whitespace().find(|w| w.starts_with('/')) {
            let p = std::path::PathBuf::from(p);
            let rel = p.strip_prefix("/").unwrap().to_path_buf();
            files.push((std::fs::canonicalize(&p).unwrap(), rel));
        }
    }
    for (from, rel) in files {
        let dest = r.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from, dest).unwrap();
    }
}

fn init(root: &Path) -> Command {
    let mut c = Command::new(wisp_bin());
    c.args(["--platform", "linux", "--root"])
        .arg(root)
        .arg("init")
        .stdin(Stdio::null());
    c
}

#[test]
fn a_second_init_while_a_stage_runs_does_nothing() {
    if !can_apply_linux() {
        return;
    }
    let mock = mock_with(|f| f.machines[0].user_data = Some(USER_DATA.into()));
    let t = linux_root();
    let r = t.path();
    let cfg = format!(
        "datasource_list: [MAAS]\ndatasource:\n  MAAS:\n    metadata_url: {url}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\n    max_wait: 3\n    timeout: 2\n",
        url = mock.metadata_url(),
    );
    std::fs::write(r.join("etc/wisp/wisp.yaml"), cfg).unwrap();
    add_sleep(r);
    let first = init(r)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !r.join("var/tmp/first-started").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the first init never ran bootcmd"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = init(r).output().unwrap();
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(75), "{err}");
    assert!(err.contains("another wisp init is running"), "{err}");
    // It asked MAAS nothing and ran nothing.
    assert!(
        !err.contains("MAAS GET") && !err.contains("bootcmd"),
        "{err}"
    );
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0));
    let status = Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(r)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
}
