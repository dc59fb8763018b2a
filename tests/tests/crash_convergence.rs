//! Crash convergence (issue 16): `wisp init` is killed at many points of a boot against the mock
//! MAAS — inside the account tools (before, halfway through and after their work) and inside
//! runcmd — and run again to completion. Whatever the point, the second run converges: the users
//! exist with their homes, keys and groups, the group files agree, runcmd ran exactly once, MAAS
//! has every module's finish exactly once and the boot's final result, and `wisp status` says done.
//!
//! The crash points are deterministic: wrappers of useradd, groupadd, usermod and chpasswd put
//! first in PATH do their part of the work, say so, and wait to be killed; the test then waits
//! until every queued event has reached MAAS (an event in flight when wisp dies may arrive twice:
//! see the guarantee in agent/src/boot/events.rs) and kills wisp with SIGKILL.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mock_maas::{MachineStatus, MockMaas};

const USER_DATA: &str = r#"#cloud-config
hostname: node1
groups:
  - devs: [ubuntu]
users:
  - default
  - name: operator
    groups: [wheel]
    shell: /bin/sh
    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOp3 ops@bastion]
  - name: alice
    plain_text_passwd: correct-Horse-9
    lock_passwd: false
write_files:
  - path: /etc/wisp-crash-test
    content: hello
runcmd:
  - echo ran >> /var/tmp/runcmd-count
  - if [ -e /var/tmp/crash-here ]; then echo $$ > /var/tmp/runcmd-pid; read x < /var/tmp/block; fi
"#;

const TOOLS: &[&str] = &["useradd", "groupadd", "usermod", "chpasswd"];

/// Where a run is killed.
#[derive(Debug, Clone)]
enum Point {
    /// Inside the n-th account tool call (1-based): `before` its work, `partial` (useradd: the
    /// account without its home; groupadd: the group without its gshadow line), or `after` it.
    Tool {
        n: usize,
        tool: String,
        mode: &'static str,
    },
    /// Inside runcmd, once its command has counted itself.
    Runcmd,
}

/// A wrapper of `tool`: counts the call, and at the chosen one does its part of the work, says
/// so (its pid in `reached`) and waits to be killed.
fn wrapper(tool: &str, real: &Path, ctl: &Path, root: &Path) -> String {
    let partial = match tool {
        // The passwd, shadow and group lines, not the home.
        "useradd" => {
            "first=1\n    for a in \"$@\"; do\n      if [ $first = 1 ]; then set --; first=0; fi\n      [ \"$a\" = --create-home ] && a=--no-create-home\n      set -- \"$@\" \"$a\"\n    done\n    \"$REAL\" \"$@\""
        }
        // The group line, not its gshadow one.
        "groupadd" => {
            "\"$REAL\" \"$@\"\n    eval g=\\${$#}\n    sed -i \"/^$g:/d\" \"$ROOT/etc/gshadow\""
        }
        _ => ":",
    };
    format!(
        r#"#!/bin/sh
CTL='{ctl}'
REAL='{real}'
ROOT='{root}'
echo {tool} >> "$CTL/calls"
n=$(wc -l < "$CTL/calls")
if [ -f "$CTL/crash-at" ] && [ "$(cat "$CTL/crash-at")" = "$n" ]; then
  case "$(cat "$CTL/mode")" in
  before) ;;
  partial)
    {partial}
    ;;
  after) "$REAL" "$@" ;;
  esac
  echo $$ > "$CTL/reached.tmp" && mv "$CTL/reached.tmp" "$CTL/reached"
  exec sleep 60
fi
exec "$REAL" "$@"
"#,
        ctl = ctl.display(),
        real = real.display(),
        root = root.display(),
    )
}

fn find_tool(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(tool))
        .find(|p| p.exists())
}

/// wisp configured for `mock`, its events going to `status`.
fn configure(mock: &MockMaas, r: &Path, status: &str) {
    let cfg = format!(
        "{}reporting:\n  maas:\n    type: webhook\n    endpoint: {status}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\n",
        config_for(mock, 3.0),
    );
    std::fs::create_dir_all(r.join("etc/wisp")).unwrap();
    std::fs::write(r.join("etc/wisp/wisp.yaml"), cfg).unwrap();
}

/// One machine: the mock, a Linux root configured for it, and the wrappers.
struct Setup {
    mock: MockMaas,
    /// When the crashed run was killed (seconds since the epoch; 0: no crash).
    killed_at: std::cell::Cell<f64>,
    /// Events (`name type timestamp`) whose POST was in flight when the run was killed: MAAS may
    /// have them twice (the guarantee in agent/src/boot/events.rs).
    in_doubt: std::cell::RefCell<BTreeSet<String>>,
    /// The rerun said runcmd had been cut short: it may not have counted itself.
    runcmd_interrupted: std::cell::Cell<bool>,
    root: tempfile::TempDir,
    ctl: tempfile::TempDir,
    path: String,
}

impl Setup {
    fn new() -> Setup {
        let mock = mock_with(|f| f.machines[0].user_data = Some(USER_DATA.into()));
        let root = linux_root();
        let r = root.path();
        configure(&mock, r, &mock.status_url(SYSTEM_ID));
        std::fs::create_dir_all(r.join("etc/skel")).unwrap();
        std::fs::write(r.join("etc/skel/.profile"), "PATH=/bin:/usr/bin\n").unwrap();
        let ctl = tempfile::tempdir().unwrap();
        let bin = ctl.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for tool in TOOLS {
            let real = find_tool(tool).unwrap();
            let w = bin.join(tool);
            std::fs::write(&w, wrapper(tool, &real, ctl.path(), r)).unwrap();
            std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Setup {
            mock,
            killed_at: std::cell::Cell::new(0.0),
            in_doubt: Default::default(),
            runcmd_interrupted: std::cell::Cell::new(false),
            root,
            ctl,
            path,
        }
    }

    fn r(&self) -> &Path {
        self.root.path()
    }

    fn wisp(&self, args: &[&str]) -> Command {
        let mut c = Command::new(wisp_bin());
        c.args(["--platform", "linux", "--root"])
            .arg(self.r())
            .args(args)
            .env("PATH", &self.path)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// The account tools a run called, in order.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.ctl.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until every event queued so far has been delivered (none is in flight); how many
    /// are left if that takes too long.
    fn settle(&self) -> usize {
        let state = self.r().join("var/db/wisp");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let queue = std::fs::read_to_string(state.join("events.queue")).unwrap_or_default();
            let sent = std::fs::read_to_string(state.join("events.sent")).unwrap_or_default();
            let sent: BTreeSet<&str> = sent.lines().collect();
            let pending = queue
                .lines()
                .filter_map(|l| l.split_once('\t').map(|(id, _)| id))
                .filter(|id| *id != "open" && !sent.contains(id))
                .count();
            if pending == 0 || Instant::now() >= deadline {
                return pending;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `wisp init` and kills it (SIGKILL) at `point`; `settle`: once the events queued by
    /// then have reached MAAS.
    fn crash_at_with(&self, point: &Point, settle: bool) {
        let ctl = self.ctl.path();
        let _ = std::fs::remove_file(ctl.join("calls"));
        let reached = match point {
            Point::Tool { n, mode, .. } => {
                std::fs::write(ctl.join("crash-at"), n.to_string()).unwrap();
                std::fs::write(ctl.join("mode"), mode).unwrap();
                ctl.join("reached")
            }
            Point::Runcmd => {
                let fifo = self.r().join("var/tmp/block");
                let c = std::ffi::CString::new(fifo.display().to_string()).unwrap();
                // SAFETY: a valid C string; mkfifo has no other preconditions.
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
                std::fs::write(self.r().join("var/tmp/crash-here"), "").unwrap();
                self.r().join("var/tmp/runcmd-pid")
            }
        };
        let mut child = self.wisp(&["init"]).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        // The pid of the process that waits there, once it is written in full.
        let read_pid =
            || -> Option<i32> { std::fs::read_to_string(&reached).ok()?.trim().parse().ok() };
        let pid = loop {
            if let Some(pid) = read_pid() {
                break pid;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let o = child.wait_with_output().unwrap();
                panic!(
                    "{point:?}: wisp ended ({status}) before the crash point; calls {:?}\n{}",
                    self.calls(),
                    stderr(&o)
                );
            }
            assert!(Instant::now() < deadline, "{point:?} never reached");
            std::thread::sleep(Duration::from_millis(10));
        };
        let pending = if settle { self.settle() } else { 0 };
        self.killed_at.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64(),
        );
        child.kill().unwrap();
        child.wait().unwrap();
        // The tool (or runcmd's shell) that waited is killed too: the machine went down.
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert_eq!(
            pending, 0,
            "{point:?}: events never delivered before the crash"
        );
        for f in ["crash-at", "mode", "reached"] {
            let _ = std::fs::remove_file(ctl.join(f));
        }
        let _ = std::fs::remove_file(self.r().join("var/tmp/crash-here"));
    }

    /// After a kill without waiting for delivery: waits until MAAS has handled every request
    /// the killed run had written, then notes the events in doubt (queued, never recorded as
    /// delivered, yet MAAS has them: they may come twice). Returns how many queued events the
    /// run had not recorded as delivered when it died.
    fn note_in_doubt(&self) -> usize {
        let mut seen = self.mock.requests().len();
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.mock.requests().len();
            if now == seen {
                break;
            }
            seen = now;
        }
        let state = self.r().join("var/db/wisp");
        let queue = std::fs::read_to_string(state.join("events.queue")).unwrap_or_default();
        let sent = std::fs::read_to_string(state.join("events.sent")).unwrap_or_default();
        let sent: BTreeSet<&str> = sent.lines().collect();
        let at_maas: BTreeSet<String> = self.mock.events(SYSTEM_ID).iter().map(event_key).collect();
        let mut unsent = 0;
        for (id, body) in queue.lines().filter_map(|l| l.split_once('\t')) {
            if id == "open" || sent.contains(id) {
                continue;
            }
            unsent += 1;
            if let Ok(e) = serde_json::from_str::<serde_json::Value>(body) {
                let key = event_key(&e);
                if at_maas.contains(&key) {
                    self.in_doubt.borrow_mut().insert(key);
                }
            }
        }
        unsent
    }

    /// The finish events MAAS has, by name.
    fn finishes(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in self.mock.events(SYSTEM_ID) {
            if e["event_type"] == "finish" {
                out.entry(e["name"].as_str().unwrap_or("").to_string())
                    .or_default()
                    .push(e["result"].as_str().unwrap_or("").to_string());
            }
        }
        out
    }

    fn starts(&self) -> BTreeSet<String> {
        self.mock
            .events(SYSTEM_ID)
            .iter()
            .filter(|e| e["event_type"] == "start")
            .filter_map(|e| e["name"].as_str().map(str::to_string))
            .collect()
    }
}

/// Module finishes (`parent/config-x`) of `finishes`.
fn module_finishes(finishes: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, usize> {
    finishes
        .iter()
        .filter(|(n, _)| n.contains('/'))
        .map(|(n, v)| (n.clone(), v.len()))
        .collect()
}

/// No event reached MAAS twice (a resent one carries its first timestamp); every module of the
/// boot finished, once per run of it: once, or — when the crash left it work the rerun did (a
/// repair) — once in each run, the second after a start of its own.
fn check_module_events(s: &Setup, what: &str, reference: &BTreeMap<String, usize>) {
    let all = s.mock.events(SYSTEM_ID);
    let in_doubt = s.in_doubt.borrow();
    let mut events = Vec::new();
    let mut seen = BTreeSet::new();
    for e in all {
        let key = event_key(&e);
        if !seen.insert(key.clone()) {
            assert!(in_doubt.contains(&key), "{what}: delivered twice: {key}");
            continue;
        }
        events.push(e);
    }
    let killed = s.killed_at.get();
    let count = |name: &str, kind: &str, after: bool| {
        events
            .iter()
            .filter(|e| e["name"] == name && e["event_type"] == kind)
            .filter(|e| (e["timestamp"].as_f64().unwrap_or(0.0) > killed) == after)
            .count()
    };
    let finished = module_finishes(&s.finishes());
    assert_eq!(
        finished.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>(),
        "{what}: modules that finished"
    );
    for name in finished.keys() {
        let (before, after) = (count(name, "finish", false), count(name, "finish", true));
        assert!(
            before <= 1 && after <= 1,
            "{what}: {name} finished {before} + {after} times"
        );
        if before == 1 && after == 1 {
            assert_eq!(
                count(name, "start", true),
                1,
                "{what}: {name} finished again without running again"
            );
        }
    }
}

/// An event as MAAS stores it: a resent one has the same key.
fn event_key(e: &serde_json::Value) -> String {
    format!("{} {} {}", e["name"], e["event_type"], e["timestamp"])
}

fn passwd_entry(r: &Path, user: &str) -> Option<Vec<String>> {
    std::fs::read_to_string(r.join("etc/passwd"))
        .unwrap()
        .lines()
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f[0] == user)
}

fn group_members(r: &Path, group: &str) -> Vec<String> {
    std::fs::read_to_string(r.join("etc/group"))
        .unwrap()
        .lines()
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f[0] == group)
        .map(|f| f[3].split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

fn names(r: &Path, file: &str) -> BTreeSet<String> {
    std::fs::read_to_string(r.join(file))
        .unwrap()
        .lines()
        .filter_map(|l| l.split(':').next().map(str::to_string))
        .collect()
}

/// What a converged machine has, whatever happened before.
fn assert_converged(s: &Setup, what: &str, reference: &BTreeMap<String, usize>, result: &str) {
    let r = s.r();
    let metadata_key = "jane@laptop";
    for (user, key) in [
        ("ubuntu", metadata_key),
        ("operator", "ops@bastion"),
        ("alice", ""),
    ] {
        let f = passwd_entry(r, user).unwrap_or_else(|| panic!("{what}: no user {user}"));
        let home = r.join(f[5].trim_start_matches('/'));
        let meta = std::fs::metadata(&home)
            .unwrap_or_else(|e| panic!("{what}: {user}: home {}: {e}", home.display()));
        assert!(meta.is_dir(), "{what}: {user}");
        assert_eq!(meta.uid().to_string(), f[2], "{what}: {user}: home owner");
        assert_eq!(meta.mode() & 0o777, 0o755, "{what}: {user}: home mode");
        assert!(
            home.join(".profile").exists(),
            "{what}: {user}: no skeleton"
        );
        if !key.is_empty() {
            let keys = std::fs::read_to_string(home.join(".ssh/authorized_keys"))
                .unwrap_or_else(|e| panic!("{what}: {user}: keys: {e}"));
            assert!(keys.contains(key), "{what}: {user}: {keys}");
        }
    }
    // alice's password, set at her creation, is set whatever the crash interrupted.
    let shadow = std::fs::read_to_string(r.join("etc/shadow")).unwrap();
    let hash = shadow
        .lines()
        .find_map(|l| l.strip_prefix("alice:"))
        .and_then(|rest| rest.split(':').next())
        .unwrap_or("");
    assert!(
        hash.starts_with('$'),
        "{what}: alice has no password: {hash:?}"
    );
    assert!(
        group_members(r, "wheel").contains(&"operator".to_string()),
        "{what}"
    );
    assert!(
        group_members(r, "wheel").contains(&"ubuntu".to_string()),
        "{what}"
    );
    assert!(
        group_members(r, "devs").contains(&"ubuntu".to_string()),
        "{what}"
    );
    assert_eq!(
        names(r, "etc/group"),
        names(r, "etc/gshadow"),
        "{what}: /etc/group and /etc/gshadow disagree"
    );
    let count = std::fs::read_to_string(r.join("var/tmp/runcmd-count")).unwrap_or_default();
    // Cut short before it counted itself, runcmd is not run again (at most once).
    let runs = count.lines().count();
    assert!(
        runs == 1 || (runs == 0 && s.runcmd_interrupted.get()),
        "{what}: runcmd ran {count:?}"
    );
    // Every module's finish exactly once, none missing; the boot's final result.
    check_module_events(s, what, reference);
    let finishes = s.finishes();
    let last = finishes["modules-final"].last().cloned();
    assert_eq!(last.as_deref(), Some(result), "{what}: final result");
    assert_eq!(
        s.mock.status(SYSTEM_ID),
        Some(MachineStatus::Deployed),
        "{what}"
    );
    let o = s.wisp(&["status"]).output().unwrap();
    let want = if result == "SUCCESS" {
        "status: done"
    } else {
        "status: degraded done"
    };
    assert!(stdout(&o).contains(want), "{what}: {}", stdout(&o));
}

#[test]
fn a_boot_killed_anywhere_converges_on_rerun_with_every_event_once() {
    if !can_apply_linux() || !TOOLS.iter().all(|t| find_tool(t).is_some()) {
        eprintln!("skipped: needs root and shadow-utils");
        return;
    }
    // A boot that is not interrupted: the tool calls to crash in, and the module finishes.
    let clean = Setup::new();
    let o = clean.wisp(&["init"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let calls = clean.calls();
    let reference = module_finishes(&clean.finishes());
    assert!(reference.values().all(|n| *n == 1), "{reference:?}");
    assert!(
        reference.contains_key("modules-final/config-runcmd"),
        "{reference:?}"
    );
    assert_converged(&clean, "no crash", &reference, "SUCCESS");
    for tool in ["useradd", "groupadd", "usermod", "chpasswd"] {
        assert!(
            calls.iter().any(|c| c == tool),
            "{tool} never called: {calls:?}"
        );
    }

    let mut points: Vec<Point> = Vec::new();
    for (i, tool) in calls.iter().enumerate() {
        let modes: &[&'static str] = match tool.as_str() {
            "useradd" | "groupadd" => &["before", "partial", "after"],
            _ => &["before", "after"],
        };
        for mode in modes {
            points.push(Point::Tool {
                n: i + 1,
                tool: tool.clone(),
                mode,
            });
        }
    }
    points.push(Point::Runcmd);
    assert!(points.len() >= 10, "{points:?}");
    let mut failed: Vec<String> = Vec::new();
    for point in &points {
        let r = std::panic::catch_unwind(|| trial(point, &reference));
        if let Err(e) = r {
            failed.push(format!(
                "{point:?}: {}",
                e.downcast_ref::<String>().cloned().unwrap_or_default()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} crash points did not converge:\n{}",
        failed.len(),
        points.len(),
        failed.join("\n")
    );
}

/// One crash at `point`, the rerun, and the checks.
fn trial(point: &Point, reference: &BTreeMap<String, usize>) {
    trial_with(point, reference, true);
}

/// As [`trial`]; `settle`: wait for the queued events to reach MAAS before the kill. Returns how
/// many queued events the killed run had not recorded as delivered.
fn trial_with(point: &Point, reference: &BTreeMap<String, usize>, settle: bool) -> usize {
    {
        let s = Setup::new();
        if !settle {
            // MAAS refuses the events (503) until the kill: they are queued and not sent.
            let status = format!("status/{SYSTEM_ID}");
            s.mock.update_faults(|f| f.fail_paths = vec![status]);
        }
        s.crash_at_with(point, settle);
        s.mock.update_faults(|f| f.fail_paths.clear());
        let unsent = if settle { 0 } else { s.note_in_doubt() };
        let what = format!("{point:?} (settled: {settle})");
        // Before the rerun: the module the crash hit had said it started (item 17).
        let crashed_module = match point {
            Point::Tool { tool, .. } if tool == "chpasswd" => "config-set_passwords",
            Point::Tool { .. } => "config-users_groups",
            Point::Runcmd => "modules-final/config-runcmd",
        };
        if settle {
            assert!(
                s.starts().iter().any(|n| n.ends_with(crashed_module)),
                "{what}: MAAS never heard {crashed_module} start: {:?}",
                s.starts()
            );
        } else {
            // Not sent: queued, for the next run to send.
            let queue =
                std::fs::read_to_string(s.r().join("var/db/wisp/events.queue")).unwrap_or_default();
            assert!(
                queue.contains(&format!("{crashed_module}\",\"event_type\":\"start")),
                "{what}: {crashed_module}'s start is not queued: {queue}"
            );
        }
        let o = s.wisp(&["init"]).output().unwrap();
        let err = stderr(&o);
        // runcmd runs at most once per instance, even when a crash cut it short (item 18).
        let count = std::fs::read_to_string(s.r().join("var/tmp/runcmd-count")).unwrap_or_default();
        assert_eq!(count.lines().count(), 1, "{what}: runcmd ran {count:?}");
        // A repaired gshadow and an interrupted runcmd are said so: the boot is degraded.
        let result = match point {
            Point::Tool { tool, mode, .. } if tool == "groupadd" && *mode == "partial" => {
                assert!(
                    err.contains("is in /etc/group but not in /etc/gshadow"),
                    "{what}: {err}"
                );
                "WARN"
            }
            Point::Runcmd => {
                assert!(
                    err.contains("config-runcmd was interrupted"),
                    "{what}: {err}"
                );
                "WARN"
            }
            _ => "SUCCESS",
        };
        let code = if result == "SUCCESS" { 0 } else { 2 };
        assert_eq!(o.status.code(), Some(code), "{what}: {err}");
        assert_converged(&s, &what, reference, result);
        unsent
    }
}

/// The account tools' crash points again, killed at once with the boot's events queued and not
/// sent (MAAS refused them until then), where the main test first waits for delivery. The rerun
/// delivers them and converges, and MAAS has every event once.
#[test]
fn a_boot_killed_in_a_tool_before_its_events_are_sent_converges() {
    if !can_apply_linux() || !TOOLS.iter().all(|t| find_tool(t).is_some()) {
        eprintln!("skipped: needs root and shadow-utils");
        return;
    }
    let clean = Setup::new();
    let o = clean.wisp(&["init"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let calls = clean.calls();
    let reference = module_finishes(&clean.finishes());
    let points: Vec<Point> = calls
        .iter()
        .enumerate()
        .flat_map(|(i, tool)| {
            ["before", "after"].map(|mode| Point::Tool {
                n: i + 1,
                tool: tool.clone(),
                mode,
            })
        })
        .collect();
    let mut failed: Vec<String> = Vec::new();
    let mut unsent = 0;
    for point in &points {
        match std::panic::catch_unwind(|| trial_with(point, &reference, false)) {
            Ok(0) => failed.push(format!("{point:?}: no event was left unsent at the kill")),
            Ok(n) => unsent += n,
            Err(e) => failed.push(format!(
                "{point:?}: {}",
                e.downcast_ref::<String>().cloned().unwrap_or_default()
            )),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} crash points did not converge:\n{}",
        failed.len(),
        points.len(),
        failed.join("\n")
    );
    eprintln!("{unsent} events were queued and not sent at the kills");
}

/// The reference boot: the module finishes of a boot that is not interrupted.
fn reference() -> BTreeMap<String, usize> {
    let clean = Setup::new();
    let o = clean.wisp(&["init"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    module_finishes(&clean.finishes())
}

/// The same boot killed after increasing delays, from its first moments to its end: the rerun
/// converges, and MAAS has each event once — or twice if, and only if, its POST was in flight at
/// the kill.
#[test]
fn a_boot_killed_at_increasing_delays_converges() {
    if !can_apply_linux() || !TOOLS.iter().all(|t| find_tool(t).is_some()) {
        eprintln!("skipped: needs root and shadow-utils");
        return;
    }
    let clean = Setup::new();
    let started = Instant::now();
    let o = clean.wisp(&["init"]).output().unwrap();
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let reference = module_finishes(&clean.finishes());
    let steps = 6;
    let mut failed: Vec<String> = Vec::new();
    for k in 1..=steps {
        let delay = took * k / (steps + 1);
        let r = std::panic::catch_unwind(|| timed_trial(delay, &reference));
        if let Err(e) = r {
            failed.push(format!(
                "after {delay:?}: {}",
                e.downcast_ref::<String>().cloned().unwrap_or_default()
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

fn timed_trial(delay: Duration, reference: &BTreeMap<String, usize>) {
    use std::os::unix::process::CommandExt;
    let s = Setup::new();
    let what = format!("killed after {delay:?}");
    let mut child = s.wisp(&["init"]).process_group(0).spawn().unwrap();
    std::thread::sleep(delay);
    s.killed_at.set(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64(),
    );
    let pgid = child.id() as i32;
    // wisp alone: a tool it runs finishes its work (the points inside the tools are the
    // wrappers' above; a tool killed between its files can leave an account half made — say, out
    // of one of its groups — which wisp, like cloud-init, does not change for an existing user).
    child.kill().unwrap();
    child.wait().unwrap();
    // The machine is down once every process of the run is gone (a tool's lock file names its
    // pid, and shadow-utils takes a lock of a live process for a held one).
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: kill with signal 0 only checks.
    while unsafe { libc::kill(-pgid, 0) } == 0 {
        assert!(
            Instant::now() < deadline,
            "{what}: the killed run's processes linger"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    s.note_in_doubt();
    let o = Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(s.r())
        .arg("init")
        .env_remove("http_proxy")
        .output()
        .unwrap();
    let err = stderr(&o);
    s.runcmd_interrupted
        .set(err.contains("config-runcmd was interrupted"));
    let result = match o.status.code() {
        Some(0) => "SUCCESS",
        Some(2) => "WARN",
        _ => panic!("{what}: {err}"),
    };
    assert_converged(&s, &what, reference, result);
}

/// Events queued but not sent when the crash came (MAAS did not answer then) are sent by the
/// next run, once each, before its own.
#[test]
fn events_queued_at_the_crash_are_delivered_once_by_the_next_run() {
    if !can_apply_linux() || !TOOLS.iter().all(|t| find_tool(t).is_some()) {
        eprintln!("skipped: needs root and shadow-utils");
        return;
    }
    let reference = reference();
    let s = Setup::new();
    // Events to a port nobody listens on: all of them stay queued.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "http://{}/MAAS/metadata/status/{SYSTEM_ID}",
        closed.local_addr().unwrap()
    );
    drop(closed);
    configure(&s.mock, s.r(), &dead);
    s.crash_at_with(&Point::Runcmd, false);
    assert!(s.mock.events(SYSTEM_ID).is_empty());
    let queued = std::fs::read_to_string(s.r().join("var/db/wisp/events.queue")).unwrap();
    assert!(
        queued.contains("modules-config/config-users_groups"),
        "{queued}"
    );
    configure(&s.mock, s.r(), &s.mock.status_url(SYSTEM_ID));
    let o = s.wisp(&["init"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_converged(&s, "queued at the crash", &reference, "WARN");
    // The crashed run's module finishes came from its queue, not from running them again.
    for (name, results) in module_finishes(&s.finishes()) {
        assert_eq!(results, 1, "{name}");
    }
}

/// A module that failed is not marked done: the next boot runs it again (here useradd fails
/// once, and the account is made at the second boot).
#[test]
fn a_module_that_failed_runs_again_at_the_next_boot() {
    if !can_apply_linux() || !TOOLS.iter().all(|t| find_tool(t).is_some()) {
        eprintln!("skipped: needs root and shadow-utils");
        return;
    }
    let s = Setup::new();
    // The wrapper of useradd fails for operator while `fail` exists.
    let bin = s.ctl.path().join("bin/useradd");
    let real = find_tool("useradd").unwrap();
    std::fs::write(
        &bin,
        format!(
            "#!/bin/sh\neval u=\\${{$#}}\nif [ \"$u\" = operator ] && [ -e '{ctl}/fail' ]; then echo refused >&2; exit 1; fi\nexec '{real}' \"$@\"\n",
            ctl = s.ctl.path().display(),
            real = real.display()
        ),
    )
    .unwrap();
    std::fs::write(s.ctl.path().join("fail"), "").unwrap();
    let o = s.wisp(&["init"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(passwd_entry(s.r(), "operator").is_none());
    std::fs::remove_file(s.ctl.path().join("fail")).unwrap();
    let o = s.wisp(&["init"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        passwd_entry(s.r(), "operator").is_some(),
        "not created again"
    );
    let keys = std::fs::read_to_string(s.r().join("home/operator/.ssh/authorized_keys")).unwrap();
    assert!(keys.contains("ops@bastion"));
    // runcmd, which ran at the first boot, did not run again.
    let count = std::fs::read_to_string(s.r().join("var/tmp/runcmd-count")).unwrap();
    assert_eq!(count.lines().count(), 1);
}
