//! `wisp status` against a state directory written by hand: the disable marker, and how long
//! `--wait` waits.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn wisp(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wisp"));
    c.arg("--root").arg(root).args(args);
    c
}

/// Runs `c`, killing it after `limit`: a `--wait` that never returns fails the test instead of
/// hanging it.
fn run_within(mut c: Command, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}; stdout: {}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), start.elapsed())
}

const RUNNING: &str = r#"{"current": "network", "stages": {"local": {"result": "SUCCESS"}, "network": {"result": "running"}}}"#;
const DONE: &str = r#"{"current": "final", "stages": {"local": {"result": "SUCCESS"}, "network": {"result": "SUCCESS"}, "final": {"result": "SUCCESS"}}}"#;

fn root_with(status: Option<&str>, disabled: bool) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let state = t.path().join("var/db/wisp");
    std::fs::create_dir_all(&state).unwrap();
    if let Some(s) = status {
        std::fs::write(state.join("status.json"), s).unwrap();
    }
    if disabled {
        std::fs::create_dir_all(t.path().join("etc/wisp")).unwrap();
        std::fs::write(t.path().join("etc/wisp/disabled"), "").unwrap();
    }
    t
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_disable_marker_is_a_status_of_its_own() {
    // Never run, and after a run: disabled either way, exit 0 (cloud-init's semantics).
    for status in [None, Some(DONE)] {
        let t = root_with(status, true);
        let (o, _) = run_within(wisp(t.path(), &["status"]), Duration::from_secs(30));
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
        assert_eq!(stdout(&o), "status: disabled\n");
        let (o, _) = run_within(
            wisp(t.path(), &["--format", "json", "status"]),
            Duration::from_secs(30),
        );
        assert_eq!(o.status.code(), Some(0));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["status"], "disabled", "{v}");
        let (o, _) = run_within(
            wisp(t.path(), &["status", "--long"]),
            Duration::from_secs(30),
        );
        assert!(
            stdout(&o).contains("/etc/wisp/disabled exists"),
            "{}",
            stdout(&o)
        );
    }
}

#[test]
fn wait_returns_at_once_when_disabled() {
    // A boot that stopped midway, then the marker: nothing will ever finish the stages.
    let t = root_with(Some(RUNNING), true);
    let (o, took) = run_within(
        wisp(t.path(), &["status", "--wait"]),
        Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "status: disabled\n");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn wait_gives_up_after_the_timeout_with_exit_124() {
    let t = root_with(Some(RUNNING), false);
    let (o, took) = run_within(
        wisp(t.path(), &["status", "--wait", "--timeout", "1"]),
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(124), "{err}");
    assert!(
        err.contains("timed out after 1 s waiting for the final stage"),
        "{err}"
    );
    assert_eq!(stdout(&o), "status: running\n");
    assert!(took >= Duration::from_secs(1), "{took:?}");
}

#[test]
fn wait_with_a_timeout_returns_when_the_boot_finishes() {
    let t = root_with(Some(RUNNING), false);
    let status = t.path().join("var/db/wisp/status.json");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        std::fs::write(status, DONE).unwrap();
    });
    let (o, took) = run_within(
        wisp(t.path(), &["status", "--wait", "--timeout", "60"]),
        Duration::from_secs(30),
    );
    writer.join().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout(&o), "status: done\n");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn timeout_needs_wait() {
    let t = root_with(Some(DONE), false);
    let (o, _) = run_within(
        wisp(t.path(), &["status", "--timeout", "5"]),
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--wait"));
}

/// Issue 16 (8): a stage recorded as running whose process is gone (here: a status.json of an
/// older wisp, without the stage lock, naming a process that has ended) is an error, and
/// `--wait` returns.
#[test]
fn a_running_stage_whose_process_is_gone_is_a_crash() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let record = format!(
        r#"{{"current": "network", "stages": {{"local": {{"result": "SUCCESS"}}, "network": {{"result": "running", "pid": {pid}}}}}}}"#
    );
    let t = root_with(Some(&record), false);
    let why = format!("stage init-network crashed: process {pid} is gone");
    let (o, _) = run_within(wisp(t.path(), &["status"]), Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(stdout(&o), format!("status: error\nerror: {why}\n"));
    let (o, took) = run_within(
        wisp(t.path(), &["status", "--wait", "--long"]),
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("error: {why}")),
        "{}",
        stdout(&o)
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// Issue 16 (8): a stage killed with SIGKILL while it waits for MAAS: `wisp status` says
/// running while it runs (its lock is held), an error once it is gone, and a `--wait` begun
/// before the kill returns after it.
#[test]
fn a_stage_killed_mid_run_is_reported_crashed() {
    // A "MAAS" that takes connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("etc/wisp")).unwrap();
    std::fs::write(
        t.path().join("etc/wisp/wisp.yaml"),
        format!(
            "datasource_list: [MAAS]\ndatasource:\n  MAAS:\n    metadata_url: http://127.0.0.1:{port}/MAAS/metadata/\n    consumer_key: C\n    token_key: T\n    token_secret: S\n    max_wait: 120\n    timeout: 60\n"
        ),
    )
    .unwrap();
    let mut stage = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["--platform", "freebsd", "--root"])
        .arg(t.path())
        .args(["init", "--stage", "network"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status_file = t.path().join("var/db/wisp/status.json");
    let start = Instant::now();
    while !std::fs::read_to_string(&status_file).is_ok_and(|s| s.contains("running")) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the stage never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (o, _) = run_within(wisp(t.path(), &["status"]), Duration::from_secs(30));
    assert_eq!(stdout(&o), "status: running\n");
    assert_eq!(o.status.code(), Some(0));
    let waiting = wisp(t.path(), &["status", "--wait"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = stage.id();
    stage.kill().unwrap();
    stage.wait().unwrap();
    let mut waiting = waiting;
    let killed = Instant::now();
    while waiting.try_wait().unwrap().is_none() {
        if killed.elapsed() > Duration::from_secs(10) {
            waiting.kill().unwrap();
            let o = waiting.wait_with_output().unwrap();
            panic!("--wait did not return after the kill: {}", stdout(&o));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = waiting.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        format!("status: error\nerror: stage init-network crashed: process {pid} is gone\n")
    );
}

/// Issue 16 (8): the stage lock, not the pid, decides: a free lock with "running" recorded is a
/// crash even when the recorded pid has been taken by another live process since.
#[test]
fn a_free_stage_lock_is_a_crash_even_if_the_pid_lives_again() {
    let pid = std::process::id();
    let record = format!(
        r#"{{"current": "local", "stages": {{"local": {{"result": "running", "pid": {pid}}}}}}}"#
    );
    let t = root_with(Some(&record), false);
    std::fs::write(t.path().join("var/db/wisp/stage.lock"), "").unwrap();
    let (o, _) = run_within(wisp(t.path(), &["status"]), Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(
        stdout(&o),
        format!("status: error\nerror: stage init-local crashed: process {pid} is gone\n")
    );
}
