//! `cargo bench -p wisp --bench boot`: a whole `wisp init` against the mock MAAS, near (answers
//! at once) and far (every answer 100 ms late), for real on a throwaway Linux root (needs root
//! and shadow-utils, as CI has; otherwise it says so and stops).
//!
//! The budget: a far MAAS adds at most 6 round trips (0.6 s) to the whole boot — metadata
//! items are asked at once, events go from background senders, and only the wait for the last
//! events is paid at the end. It prints; it does not fail.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mock_maas::{MachineStatus, MockMaas};

const RUNS: usize = 5;
const DELAY_MS: u64 = 100;
const USER_DATA: &str =
    "#cloud-config\nusers:\n  - default\n  - name: ops\n    groups: [wheel]\nruncmd:\n  - [true]\n";

fn one_boot(delay_ms: u64) -> Duration {
    let machines = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/demo-machines.yaml");
    let mut file = mock_maas::MachinesFile::load(&machines).expect("demo machines");
    file.machines[0].user_data = Some(USER_DATA.into());
    let m = file.machines[0].clone();
    let mock = MockMaas::start(file).expect("mock");
    mock.update_faults(|f| f.delay_ms = delay_ms);
    let root = std::env::temp_dir().join(format!(
        "wisp-bench-boot-{}-{}",
        std::process::id(),
        wisp_datasources::oauth::new_nonce()
    ));
    mock_maas::roots::make_linux_root(&root).expect("a Linux root");
    std::fs::write(
        root.join("etc/wisp/wisp.yaml"),
        format!(
            "datasource:\n  MAAS:\n    metadata_url: {}\n    consumer_key: {}\n    token_key: {}\n    token_secret: {}\nreporting:\n  maas:\n    type: webhook\n    endpoint: {}\n    consumer_key: {}\n    token_key: {}\n    token_secret: {}\n",
            mock.metadata_url(),
            m.consumer_key,
            m.token_key,
            m.token_secret,
            mock.status_url(&m.system_id),
            m.consumer_key,
            m.token_key,
            m.token_secret,
        ),
    )
    .unwrap();
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["-q", "--platform", "linux", "--root"])
        .arg(&root)
        .arg("init")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("wisp runs");
    let took = started.elapsed();
    assert!(status.success(), "wisp init failed");
    assert_eq!(mock.status(&m.system_id), Some(MachineStatus::Deployed));
    let _ = std::fs::remove_dir_all(&root);
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if !mock_maas::roots::can_apply_linux() {
        println!("boot benchmark skipped: needs root, shadow-utils and ldd");
        return;
    }
    println!("wisp init against the mock MAAS: {RUNS} boots each, median");
    let near = median((0..RUNS).map(|_| one_boot(0)).collect());
    let far = median((0..RUNS).map(|_| one_boot(DELAY_MS)).collect());
    let added = far.saturating_sub(near);
    let trips = added.as_secs_f64() / (DELAY_MS as f64 / 1000.0);
    println!("{:<28} {near:>9.3?}", "near MAAS (0 ms)");
    println!(
        "{:<28} {far:>9.3?}",
        format!("far MAAS ({DELAY_MS} ms an answer)")
    );
    println!(
        "{:<28} {added:>9.3?} = {trips:.1} round trips (budget 6: {})",
        "added by the distance",
        if trips <= 6.0 { "within" } else { "OVER" }
    );
}
