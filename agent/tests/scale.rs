//! Many users: planning stays cheap. (The executor's side — the account files read O(1) times
//! for N creations — is a unit test in `src/apply.rs`; `cargo bench -p wisp --bench users`
//! times plan + apply at 100, 300 and 1,000 users.)

use std::time::{Duration, Instant};

mod common;

#[test]
fn planning_a_thousand_users_stays_within_a_generous_bound() {
    let t = tempfile::tempdir().unwrap();
    let doc = t.path().join("users.yaml");
    let mut text = String::from("#cloud-config\nusers:\n");
    for i in 0..1000 {
        text.push_str(&format!(
            "  - {{name: u{i:04}, groups: [staff], ssh_authorized_keys: [ssh-ed25519 AAAAC3Nz{i:04} u{i:04}@x]}}\n"
        ));
    }
    std::fs::write(&doc, text).unwrap();
    let root = common::manifest_path("tests/fixtures/roots/fresh");
    let start = Instant::now();
    let (plan, o) = common::json_plan("linux", &root, &doc, None);
    let took = start.elapsed();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let useradds = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["argv"][0] == "useradd")
        .count();
    assert_eq!(useradds, 1000);
    // About 0.05 s in a release build and well under a second in a debug one: a bound this
    // generous fails only on a quadratic (or worse) plan, not on a busy machine.
    assert!(took < Duration::from_secs(15), "planning took {took:?}");
}
