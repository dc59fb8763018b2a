//! Issue 16 (21), end to end: only the MAAS asked is believed. A redirect to another host and a
//! captive portal's HTML page fail the deployment with the reason MAAS shows, and nothing of
//! theirs reaches the machine (needs root and shadow-utils, as CI has).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use mock_maas::server::FixedServer;
use mock_maas::{Faults, MachineStatus, MockMaas};

const MALLORY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn0YbYy2CzC8tq1M6dVtT5q8Zb3K0rJmJdX9w0r2y3q mallory";

/// A Linux root with wisp configured for the mock, reporting to it.
fn machine(mock: &MockMaas) -> tempfile::TempDir {
    let t = linux_root();
    let cfg = format!(
        "datasource_list: [MAAS]\ndatasource:\n  MAAS:\n    metadata_url: {url}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\n    max_wait: 3\n    timeout: 2\nreporting:\n  maas:\n    type: webhook\n    endpoint: {status}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\n",
        url = mock.metadata_url(),
        status = mock.status_url(SYSTEM_ID),
    );
    std::fs::write(t.path().join("etc/wisp/wisp.yaml"), cfg).unwrap();
    t
}

fn init(root: &Path) -> Output {
    Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(root)
        .arg("init")
        .output()
        .unwrap()
}

/// Every `authorized_keys` under `dir`, with its content.
fn authorized_keys(dir: &Path, found: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            authorized_keys(&p, found);
        } else if p.file_name().is_some_and(|n| n == "authorized_keys") {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            found.push((p.display().to_string(), text));
        }
    }
}

/// The deployment failed, and MAAS shows `why` as the reason.
fn failed_with(mock: &MockMaas, o: &Output, why: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    let m = mock.machine(SYSTEM_ID).unwrap();
    assert_eq!(m.status, MachineStatus::FailedDeployment, "{}", stderr(o));
    let reason = m.failure_reason.unwrap_or_default();
    assert!(reason.contains(why), "{reason}");
}

#[test]
fn a_redirect_to_another_host_fails_the_deployment_and_its_keys_go_nowhere() {
    if !can_apply_linux() {
        return;
    }
    let other = FixedServer::start(vec![
        ("instance-id".into(), "i-evil".into()),
        ("local-hostname".into(), "evil.example".into()),
        ("public-keys".into(), MALLORY.into()),
        ("user-data".into(), "#cloud-config\n".into()),
    ])
    .unwrap();
    let mock = mock();
    mock.set_faults(Faults {
        redirect_to: Some(other.url()),
        ..Default::default()
    });
    let t = machine(&mock);
    let o = init(t.path());
    failed_with(&mock, &o, "redirected to");
    assert_eq!(other.requests(), 0, "the other host was asked");
    let mut keys = Vec::new();
    authorized_keys(t.path(), &mut keys);
    assert!(
        keys.iter().all(|(_, text)| !text.contains("mallory")),
        "{keys:?}"
    );
    assert!(!std::fs::read_to_string(t.path().join("etc/hostname"))
        .unwrap_or_default()
        .contains("evil"),);
}

#[test]
fn an_html_page_fails_the_deployment_with_the_reason() {
    if !can_apply_linux() {
        return;
    }
    let mock = mock();
    mock.set_faults(Faults {
        html: true,
        ..Default::default()
    });
    let t = machine(&mock);
    let o = init(t.path());
    failed_with(&mock, &o, "HTML page");
    let mut keys = Vec::new();
    authorized_keys(t.path(), &mut keys);
    assert!(keys.iter().all(|(_, text)| !text.contains('<')), "{keys:?}");
}
