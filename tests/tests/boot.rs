//! `wisp init` end to end against the mock MAAS, applied for real on Linux in a throwaway root
//! (needs root and shadow-utils, as CI has): the events MAAS receives, Deployed only after the
//! metadata keys are in place, a fatal error failing the deployment with its reason, events
//! queued while MAAS is down delivered later, no secret in the log, and a quiet rerun.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use mock_maas::{MachineStatus, MockMaas};

const USER_DATA: &str = "#cloud-config\nusers:\n  - default\n  - name: ops\n    plain_text_passwd: 'Op3rator-Pw!'\n    lock_passwd: false\n    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOp3 ops@bastion]\nruncmd:\n  - echo ran > /var/tmp/ran\n";

fn skip() -> bool {
    !can_apply_linux()
}

/// A Linux root with account files, sudoers and a shell (for runcmd), and wisp configured for
/// the mock with reporting.
fn machine(mock: &MockMaas, token_secret: &str) -> tempfile::TempDir {
    let t = linux_root();
    let r = t.path();
    let cfg = format!(
        "datasource_list: [MAAS]\ndatasource:\n  MAAS:\n    metadata_url: {url}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {token_secret}\n    max_wait: 3\n    timeout: 2\nreporting:\n  maas:\n    type: webhook\n    endpoint: {status}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\n",
        url = mock.metadata_url(),
        status = mock.status_url(SYSTEM_ID),
    );
    std::fs::write(r.join("etc/wisp/wisp.yaml"), cfg).unwrap();
    t
}

fn wisp(root: &Path, args: &[&str]) -> Output {
    Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

/// The top-level events as MAAS shows them: by their own timestamps (they are sent by several
/// senders at once, so they may arrive in another order). Checks on the way the order that
/// arrival must keep: a finish after its start, a stage's finish after all of its children.
fn top_level(mock: &MockMaas) -> Vec<(String, String, String)> {
    let mut events = mock.events(SYSTEM_ID);
    for (i, e) in events.iter().enumerate() {
        let name = e["name"].as_str().unwrap_or("");
        if e["event_type"] == "finish" {
            assert!(
                events[..i]
                    .iter()
                    .any(|s| s["name"] == name && s["event_type"] == "start"),
                "{name}: finish arrived before its start"
            );
            if !name.contains('/') {
                let child = format!("{name}/");
                assert!(
                    !events[i + 1..]
                        .iter()
                        .any(|c| c["name"].as_str().unwrap_or("").starts_with(&child)),
                    "{name}: a child arrived after the stage's finish"
                );
            }
        }
    }
    events.sort_by(|a, b| {
        a["timestamp"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&b["timestamp"].as_f64().unwrap_or(0.0))
    });
    events
        .iter()
        .filter(|e| !e["name"].as_str().unwrap_or("").contains('/'))
        .map(|e| {
            (
                e["event_type"].as_str().unwrap_or("").to_string(),
                e["name"].as_str().unwrap_or("").to_string(),
                e["result"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn ev(t: &str, n: &str, r: &str) -> (String, String, String) {
    (t.into(), n.into(), r.into())
}

#[test]
fn a_boot_reports_each_stage_and_deploys_only_once_the_keys_are_in_place() {
    if skip() {
        return;
    }
    let mock = mock_with(|f| f.machines[0].user_data = Some(USER_DATA.into()));
    let t = machine(&mock, TOKEN_SECRET);
    let r = t.path().to_path_buf();
    let keys_then = Arc::new(AtomicBool::new(false));
    {
        let keys_then = keys_then.clone();
        let r = r.clone();
        mock.on_user_data(Arc::new(move |_| {
            // The default user's metadata key must be there before MAAS says Deployed.
            // (MAAS's vendor-data names the default user `ubuntu`.)
            let keys = std::fs::read_to_string(r.join("home/ubuntu/.ssh/authorized_keys"))
                .unwrap_or_default();
            keys_then.store(keys.contains("jane@laptop"), Ordering::SeqCst);
        }));
    }
    let o = wisp(&r, &["init"]);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        keys_then.load(Ordering::SeqCst),
        "user-data was fetched before the keys were written"
    );
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deployed));
    assert_eq!(
        top_level(&mock),
        vec![
            ev("start", "init-local", ""),
            ev("finish", "init-local", "SUCCESS"),
            ev("start", "init-network", ""),
            ev("finish", "init-network", "SUCCESS"),
            ev("start", "modules-config", ""),
            ev("finish", "modules-config", "SUCCESS"),
            ev("start", "modules-final", ""),
            ev("finish", "modules-final", "SUCCESS"),
        ]
    );
    let children: Vec<String> = mock
        .events(SYSTEM_ID)
        .iter()
        .filter(|e| e["event_type"] == "finish")
        .filter_map(|e| {
            e["name"]
                .as_str()
                .filter(|n| n.contains('/'))
                .map(str::to_string)
        })
        .collect();
    for want in [
        "modules-config/config-users_groups",
        "modules-config/config-set_passwords",
        "modules-final/config-runcmd",
    ] {
        assert!(
            children.iter().any(|c| c == want),
            "{want} missing in {children:?}"
        );
    }
    assert!(mock
        .events(SYSTEM_ID)
        .iter()
        .all(|e| e["timestamp"].is_number()));
    assert_eq!(
        std::fs::read_to_string(r.join("var/tmp/ran")).unwrap(),
        "ran\n"
    );
    // The log: root-only, and no secret in it.
    let log = r.join("var/log/wisp.log");
    assert_eq!(
        std::fs::metadata(&log).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.is_empty());
    for secret in [TOKEN_SECRET, "Op3rator-Pw!"] {
        assert!(
            !text.contains(secret) && !stderr.contains(secret),
            "{secret} leaked"
        );
    }
    assert!(String::from_utf8_lossy(&o.stdout)
        .contains("wisp: local SUCCESS, network SUCCESS, final SUCCESS"));
    // wisp status says done (and --wait returns at once when the boot is over).
    assert_eq!(wisp(&r, &["status", "--wait"]).status.code(), Some(0));
    let s = wisp(&r, &["status", "--long"]);
    assert_eq!(
        s.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&s.stdout)
    );
    assert!(String::from_utf8_lossy(&s.stdout).starts_with("status: done"));

    // The same instance again: nothing changes, and MAAS hears SUCCESS.
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    let shadow = std::fs::read_to_string(r.join("etc/shadow")).unwrap();
    let before = mock.events(SYSTEM_ID).len();
    let o = wisp(&r, &["init"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(r.join("etc/passwd")).unwrap(),
        passwd
    );
    assert_eq!(
        std::fs::read_to_string(r.join("etc/shadow")).unwrap(),
        shadow,
        "the password is not set again"
    );
    let again: Vec<_> = mock.events(SYSTEM_ID)[before..].to_vec();
    assert!(
        again
            .iter()
            .all(|e| !e["name"].as_str().unwrap().contains('/')),
        "no module ran: {again:?}"
    );
    assert_eq!(again.last().unwrap()["result"], "SUCCESS");
    assert_eq!(again.last().unwrap()["name"], "modules-final");
}

#[test]
fn a_fatal_error_fails_the_deployment_with_the_reason() {
    if skip() {
        return;
    }
    let mock = mock();
    // The datasource's secret is wrong (the reporting one is right): metadata is refused.
    let t = machine(&mock, "WrongSecret0000000000000000000000");
    let o = wisp(t.path(), &["init"]);
    assert_eq!(o.status.code(), Some(1));
    let m = mock.machine(SYSTEM_ID).unwrap();
    let names: Vec<String> = m
        .events
        .iter()
        .map(|e| format!("{} {} {}", e["event_type"], e["name"], e["result"]))
        .collect();
    assert_eq!(
        m.status,
        MachineStatus::FailedDeployment,
        "{names:?}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let reason = m.failure_reason.unwrap();
    assert!(
        reason.contains("HTTP 401") && reason.contains("instance-id"),
        "{reason}"
    );
    assert!(!reason.contains("WrongSecret"));
    let fail = m.events.iter().find(|e| e["result"] == "FAIL").unwrap();
    assert_eq!(fail["name"], "init-network");
    assert_eq!(fail["files"][0]["path"], "/var/log/wisp.log");
    // Nothing after the failure: the final stage did not run.
    assert!(!m.events.iter().any(|e| e["name"] == "modules-final"));
    let s = wisp(t.path(), &["status"]);
    assert_eq!(s.status.code(), Some(1));
}

#[test]
fn events_queued_while_maas_is_down_are_delivered_when_it_is_back() {
    if skip() {
        return;
    }
    let mut mock = mock();
    let t = machine(&mock, TOKEN_SECRET);
    let r = t.path();
    mock.stop();
    let o = wisp(r, &["init", "--stage", "local"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let queue = r.join("var/db/wisp/events.queue");
    assert_eq!(
        std::fs::read_to_string(&queue).unwrap().lines().count(),
        2,
        "start and finish of init-local"
    );
    assert_eq!(std::fs::metadata(&queue).unwrap().mode() & 0o7777, 0o600);
    // MAAS is back; a new wisp process (as after a reboot) delivers the queue first, in order.
    mock.restart().unwrap();
    let o = wisp(r, &["init", "--stage", "network"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let names: Vec<(String, String, String)> = top_level(&mock);
    assert_eq!(
        &names[..3],
        &[
            ev("start", "init-local", ""),
            ev("finish", "init-local", "SUCCESS"),
            ev("start", "init-network", "")
        ]
    );
    assert!(!queue.exists());
}

#[test]
fn clean_forgets_the_instance() {
    if skip() {
        return;
    }
    let mock = mock_with(|f| f.machines[0].user_data = Some(USER_DATA.into()));
    let t = machine(&mock, TOKEN_SECRET);
    let r = t.path();
    assert_eq!(wisp(r, &["init"]).status.code(), Some(0));
    std::fs::create_dir_all(r.join("var/db/wisp/seed/nocloud")).unwrap();
    let o = wisp(r, &["clean", "--logs"]);
    assert_eq!(o.status.code(), Some(0));
    let left: Vec<String> = std::fs::read_dir(r.join("var/db/wisp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["seed"], "only the seed stays");
    assert!(!r.join("var/log/wisp.log").exists());
    assert_eq!(wisp(r, &["status"]).status.code(), Some(0));
    assert!(String::from_utf8_lossy(&wisp(r, &["status"]).stdout).contains("not run"));
}

#[test]
fn an_include_is_fetched_once_per_boot_not_once_per_stage() {
    if skip() {
        return;
    }
    let files = mock_with(|f| {
        f.files
            .insert("extra.cfg".into(), "#cloud-config\ntimezone: UTC\n".into());
        f.machines[0].user_data = None;
    });
    let url = format!("http://{}/files/extra.cfg", files.addr());
    let mock = mock_with(|f| f.machines[0].user_data = Some(format!("#include\n{url}\n")));
    let t = machine(&mock, TOKEN_SECRET);
    let zoneinfo = t.path().join("usr/share/zoneinfo");
    std::fs::create_dir_all(&zoneinfo).unwrap();
    std::fs::write(zoneinfo.join("UTC"), "TZif").unwrap();
    let o = wisp(t.path(), &["init"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&wisp(t.path(), &["status", "--long"]).stdout)
    );
    // The included document was applied...
    assert_eq!(
        std::fs::read_link(t.path().join("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/UTC")
    );
    // ...and fetched once: the final stage used what the network stage decoded.
    let fetches = files
        .requests()
        .iter()
        .filter(|r| r.path == "/files/extra.cfg")
        .count();
    assert_eq!(fetches, 1);
}
