//! The boot pipeline's safety rules, end to end against the mock MAAS: a dry run changes nothing
//! (no file, no event, no user-data GET), a run that cannot keep its state makes no request, the
//! results of a boot are queryable, and a default user the user-data leaves out does not stay.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use mock_maas::{MachineStatus, MockMaas};

fn wisp(root: &Path, platform: &str, args: &[&str]) -> Output {
    Command::new(wisp_bin())
        .args(["--platform", platform, "--root"])
        .arg(root)
        .args(args)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .unwrap()
}

/// wisp configured for `mock`, with reporting, under `root`.
fn configure(mock: &MockMaas, root: &Path) {
    let cfg = format!(
        "{}reporting:\n  maas:\n    type: webhook\n    endpoint: {status}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\n",
        config_for(mock, 3.0),
        status = mock.status_url(SYSTEM_ID),
    );
    std::fs::create_dir_all(root.join("etc/wisp")).unwrap();
    std::fs::write(root.join("etc/wisp/wisp.yaml"), cfg).unwrap();
}

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_dry_run_boot_changes_nothing_in_maas_or_on_disk() {
    let mock = mock();
    let t = tempfile::tempdir().unwrap();
    configure(&mock, t.path());
    let before = files(t.path());
    for platform in ["netbsd", "freebsd", "openbsd", "linux"] {
        let o = wisp(t.path(), platform, &["--dry-run", "init"]);
        let err = stderr(&o);
        // A fresh machine: nothing cached, yet the stages plan from what was fetched.
        assert_ne!(o.status.code(), Some(1), "{platform}: {err}");
        assert!(!err.contains("could not be read back"), "{err}");
        assert!(err.contains("would report start init-network"), "{err}");
        assert_eq!(files(t.path()), before, "{platform}: a dry run wrote files");
    }
    assert!(mock.events(SYSTEM_ID).is_empty(), "a dry run sent events");
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deploying));
    let requests = mock.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.method, "GET", "{} {}", r.method, r.path);
        assert!(
            !r.path.ends_with("/user-data"),
            "a dry run fetched user-data"
        );
    }
}

/// As an unprivileged user (uid 65534), `wisp fetch` and `wisp init` refuse before any request:
/// MAAS must not see the user-data GET (it would say Deployed) from a run that then cannot save.
#[test]
fn without_root_nothing_is_requested() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run wisp as another user");
        return;
    }
    let mock = mock();
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    configure(&mock, r);
    // The user may read the configuration, not write the state.
    std::fs::set_permissions(r, std::fs::Permissions::from_mode(0o755)).unwrap();
    for d in ["etc", "etc/wisp"] {
        std::fs::set_permissions(r.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(
        r.join("etc/wisp/wisp.yaml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::create_dir_all(r.join("var/db/wisp")).unwrap();
    std::fs::set_permissions(
        r.join("var/db/wisp"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    for args in [&["fetch"][..], &["init", "--stage", "network"]] {
        let o = Command::new(wisp_bin())
            .args(["--platform", "netbsd", "--root"])
            .arg(r)
            .args(args)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("needs root"), "{args:?}: {err}");
    }
    assert!(mock.requests().is_empty(), "requests were made");
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deploying));
}

const WITHOUT_DEFAULT: &str = "#cloud-config\nusers:\n  - name: ops\n    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOp3 ops@bastion]\n";

/// cloud-init creates no default user when `users` leaves `default` out; wisp creates it before
/// the user-data GET (for the metadata keys) and must then remove it again, and say so.
#[test]
fn users_without_default_leave_no_default_account() {
    if !can_apply_linux() {
        return;
    }
    let mock = mock_with(|f| f.machines[0].user_data = Some(WITHOUT_DEFAULT.into()));
    let t = linux_root();
    let r = t.path();
    configure(&mock, r);
    let o = wisp(r, "linux", &["init"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deployed));
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    // MAAS's vendor-data names the default user `ubuntu`.
    assert!(!passwd.contains("ubuntu:"), "{passwd}");
    assert!(passwd.contains("ops:"), "{passwd}");
    assert!(!r.join("home/ubuntu").exists());
    let sudoers =
        std::fs::read_to_string(r.join("etc/sudoers.d/90-wisp-users")).unwrap_or_default();
    assert!(!sudoers.contains("ubuntu"), "{sudoers}");
    assert!(err.contains("leaves out the default user"), "{err}");
    // The log says what was done: each command, each file with its mode and owner, each MAAS
    // request — and the removal.
    let log = std::fs::read_to_string(r.join("var/log/wisp.log")).unwrap();
    for want in [
        "users_groups: ran useradd",
        "users_groups: ran userdel",
        "ssh: wrote /home/ops/.ssh/authorized_keys",
        "mode 0600",
        "MAAS GET",
        "/user-data",
        "MAAS POST",
    ] {
        assert!(log.contains(want), "the log lacks {want:?}:\n{log}");
    }
    // The same instance again: nothing is created or removed.
    let o = wisp(r, "linux", &["init"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(r.join("etc/passwd")).unwrap(),
        passwd
    );
}

#[test]
fn query_results_after_a_boot() {
    if !can_apply_linux() {
        return;
    }
    let mock = mock_with(|f| {
        f.machines[0].user_data = Some("#cloud-config\nruncmd:\n  - [false]\n".into())
    });
    let t = linux_root();
    let r = t.path();
    configure(&mock, r);
    let o = wisp(r, "linux", &["init"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let q = wisp(r, "linux", &["query", "--results"]);
    assert!(q.status.success(), "{}", stderr(&q));
    let results: serde_json::Value = serde_json::from_slice(&q.stdout).unwrap();
    assert_eq!(results["command"], "init");
    assert_eq!(results["result"], "FAIL");
    assert_eq!(results["instance_id"], SYSTEM_ID);
    assert_eq!(results["stages"]["final"]["result"], "FAIL");
    assert_eq!(results["modules"]["runcmd"]["result"], "FAIL");
    assert!(
        results["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["module"] == "runcmd"),
        "{results:#}"
    );
}

/// Events left by an earlier run go first; one MAAS refuses for good (a line cut short by a
/// power loss) is dropped instead of holding back every event after it, boot after boot.
#[test]
fn a_refused_queued_event_does_not_block_the_others() {
    let mock = mock();
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    configure(&mock, r);
    let state = r.join("var/db/wisp");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let old = r#"{"description":"left from the last boot","event_type":"finish","name":"modules-final","origin":"cloudinit","result":"SUCCESS","timestamp":1.5}"#;
    std::fs::write(
        state.join("events.queue"),
        format!("old-1\t{{\"name\":\"cut short\n old-2\t{old}\n"),
    )
    .unwrap();
    // Only the network stage (NetBSD under a fake root cannot run its tools: the modules fail,
    // which does not matter here); its events and the old one must all arrive.
    let o = wisp(r, "netbsd", &["init", "--stage", "network"]);
    let events = mock.events(SYSTEM_ID);
    assert!(
        events
            .iter()
            .any(|e| e["description"] == "left from the last boot"),
        "{}\n{events:?}",
        stderr(&o)
    );
    assert!(events
        .iter()
        .any(|e| e["name"] == "modules-config" && e["event_type"] == "finish"));
    assert!(
        stderr(&o).contains("refused the event; dropped"),
        "{}",
        stderr(&o)
    );
    assert!(
        !state.join("events.queue").exists(),
        "the queue is not empty"
    );
}

/// What `wisp schema` calls an error is reported as one at boot too: under the module that
/// reads the key (its MAAS event and results), or, for a key no module reads, in the results'
/// errors under the documents' class (`cloud_config`), not among the warnings.
#[test]
fn document_errors_are_reported_with_their_module() {
    if !can_apply_linux() {
        return;
    }
    let mock = mock_with(|f| {
        f.machines[0].user_data =
            Some("#cloud-config\nhostname: 12345\nmounts: vim\nruncmd:\n  - [true]\n".into())
    });
    let t = linux_root();
    let r = t.path();
    configure(&mock, r);
    let o = wisp(r, "linux", &["init"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let q = wisp(r, "linux", &["query", "--results"]);
    let results: serde_json::Value = serde_json::from_slice(&q.stdout).unwrap();
    assert_eq!(results["result"], "WARN", "{results:#}");
    let hostname = &results["modules"]["hostname"];
    assert_eq!(hostname["result"], "WARN", "{results:#}");
    assert!(
        hostname["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("hostname: expected a string")),
        "{results:#}"
    );
    // No module reads `mounts`: its shape error is the documents', and an error.
    assert!(
        results["errors"].as_array().unwrap().iter().any(|e| {
            e["module"] == "cloud_config"
                && e["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("user-data: mounts: expected a list")
        }),
        "{results:#}"
    );
    assert!(
        !results["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("expected a list")),
        "{results:#}"
    );
    // There is no such module in MAAS's view of the boot.
    let events = format!("{:?}", mock.events(SYSTEM_ID));
    assert!(!events.contains("config-cloud_config"), "{events}");
}

/// User-data that is not YAML is an error, as `wisp schema` says: the boot goes on without it
/// (as cloud-init does), ends WARN, and the results' errors name the part and the problem.
#[test]
fn unreadable_user_data_is_an_error_of_the_boot() {
    if !can_apply_linux() {
        return;
    }
    let mock =
        mock_with(|f| f.machines[0].user_data = Some("#cloud-config\nhostname: [a\n".into()));
    let t = linux_root();
    let r = t.path();
    configure(&mock, r);
    let o = wisp(r, "linux", &["init"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let q = wisp(r, "linux", &["query", "--results"]);
    let results: serde_json::Value = serde_json::from_slice(&q.stdout).unwrap();
    assert_eq!(results["result"], "WARN", "{results:#}");
    assert!(
        results["errors"].as_array().unwrap().iter().any(|e| {
            e["module"] == "user-data"
                && e["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("user-data: part-001: invalid YAML")
        }),
        "{results:#}"
    );
    assert!(
        !results["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("invalid YAML")),
        "{results:#}"
    );
}
