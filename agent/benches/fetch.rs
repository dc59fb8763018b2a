//! `cargo bench -p wisp`: how fast and small wisp is on the boot path.
//!
//! Runs the real binary against the mock MAAS on loopback and reports, over many runs:
//! - startup (`wisp --version`),
//! - a full `wisp fetch` (metadata, vendor-data, user-data, decoding, state writes),
//! - peak RSS of a fetch (the largest child's `ru_maxrss`),
//! - the binary's size,
//!
//! against the budgets of the design (fetch < 15 ms, < 10 MiB). It prints; it does not fail:
//! timings depend on the machine, and CI is not the place to judge them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 50;
const FETCH_BUDGET: Duration = Duration::from_millis(15);
const RSS_BUDGET_KIB: i64 = 10 * 1024;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn time_runs(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v
}

fn report(name: &str, v: &[Duration], budget: Option<Duration>) {
    let median = percentile(v, 0.5);
    let verdict = match budget {
        Some(b) if median <= b => format!("  (budget {b:?}: within)"),
        Some(b) => format!("  (budget {b:?}: OVER)"),
        None => String::new(),
    };
    println!(
        "{name:<22} median {:>9.3?}  p90 {:>9.3?}  min {:>9.3?}{verdict}",
        median,
        percentile(v, 0.9),
        v[0]
    );
}

fn max_child_rss_kib() -> i64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    // KiB on Linux and the BSDs.
    usage.ru_maxrss
}

fn main() {
    // `cargo bench` passes harness flags such as `--bench`; nothing to parse.
    let wisp = env!("CARGO_BIN_EXE_wisp");
    let machines =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/demo-machines.yaml");
    let file = mock_maas::MachinesFile::load(&machines).expect("demo machines");
    let m = &file.machines[0];
    let (ck, tk, ts) = (
        m.consumer_key.clone(),
        m.token_key.clone(),
        m.token_secret.clone(),
    );
    let mock = mock_maas::MockMaas::start(file).expect("mock");
    let root = std::env::temp_dir().join(format!("wisp-bench-{}", std::process::id()));
    std::fs::create_dir_all(root.join("etc/wisp")).unwrap();
    std::fs::write(
        root.join("etc/wisp/wisp.yaml"),
        format!(
            "datasource:\n  MAAS:\n    metadata_url: {}\n    consumer_key: {ck}\n    token_key: {tk}\n    token_secret: {ts}\n",
            mock.metadata_url()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let status = Command::new(wisp)
            .arg("--root")
            .arg(&root)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("wisp runs");
        assert!(status.success(), "wisp {args:?} failed");
    };

    println!("wisp benchmark: {RUNS} runs each, mock MAAS on loopback");
    let startup = time_runs(RUNS, || run(&["--version"]));
    report("startup (--version)", &startup, None);
    run(&["fetch"]);
    let fetch = time_runs(RUNS, || run(&["-q", "fetch"]));
    report("full fetch", &fetch, Some(FETCH_BUDGET));
    let rss = max_child_rss_kib();
    println!(
        "{:<22} {} KiB ({:.1} MiB)  (budget {} MiB: {})",
        "peak RSS",
        rss,
        rss as f64 / 1024.0,
        RSS_BUDGET_KIB / 1024,
        if rss <= RSS_BUDGET_KIB {
            "within"
        } else {
            "OVER"
        }
    );
    let size = std::fs::metadata(wisp).map(|m| m.len()).unwrap_or(0);
    println!(
        "{:<22} {} bytes ({:.2} MiB) — {}",
        "binary size",
        size,
        size as f64 / 1048576.0,
        wisp
    );
    let _ = std::fs::remove_dir_all(&root);
}
