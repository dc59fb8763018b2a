//! A far MAAS (100 ms an answer) must not multiply the boot: metadata items are asked at once
//! and events go from background senders, so a whole `wisp init` pays a handful of round trips,
//! not one per request (it paid 21, 2.2 s, when everything waited in turn). The exact figure is
//! measured by `cargo bench -p wisp --bench boot`; this test only guards against a relapse.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use mock_maas::{MachineStatus, MockMaas};

const USER_DATA: &str = "#cloud-config\nusers:\n  - default\n  - name: ops\nruncmd:\n  - [true]\n";

fn boot(delay_ms: u64) -> Duration {
    let mock = mock_with(|f| f.machines[0].user_data = Some(USER_DATA.into()));
    mock.update_faults(|f| f.delay_ms = delay_ms);
    let t = linux_root();
    let r = t.path();
    configure(&mock, r);
    let started = Instant::now();
    let o = Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(r)
        .arg("init")
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deployed));
    // The final event reached MAAS before wisp exited.
    let events = mock.events(SYSTEM_ID);
    assert!(
        events
            .iter()
            .any(|e| e["name"] == "modules-final" && e["event_type"] == "finish"),
        "the final event is missing"
    );
    assert!(!r.join("var/db/wisp/events.queue").exists());
    took
}

fn configure(mock: &MockMaas, root: &Path) {
    let cfg = format!(
        "{}reporting:\n  maas:\n    type: webhook\n    endpoint: {status}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\n",
        config_for(mock, 10.0),
        status = mock.status_url(SYSTEM_ID),
    );
    std::fs::write(root.join("etc/wisp/wisp.yaml"), cfg).unwrap();
}

#[test]
fn a_far_maas_adds_a_few_round_trips_not_one_per_request() {
    if !can_apply_linux() {
        return;
    }
    let near = boot(0);
    let far = boot(100);
    let added = far.saturating_sub(near);
    eprintln!("near {near:?}, far {far:?}: added {added:?}");
    // The budget is 6 round trips (0.6 s); the margin is for a loaded CI machine.
    assert!(
        added < Duration::from_millis(1200),
        "100 ms per answer added {added:?}"
    );
}
