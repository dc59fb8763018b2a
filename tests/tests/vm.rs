//! A real machine: tests/vm/wisp-vm boots the Linux guest it builds (Debian's cloud kernel,
//! busybox, dropbear, the shadow tools, the static wisp) under QEMU against the mock MAAS, and
//! checks the deployment over ssh; and its bad paths. The runs share one built guest and go one
//! at a time (the machines have two cores). Skipped when QEMU cannot be had at all (the harness
//! exits 4: not installed and nothing to install it with) — except under CI, where a skip fails
//! unless WISP_VM_SKIP=1 says it is meant.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static ONE_VM_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How long `wisp-vm --prepare` may take: a cold cache cross-builds the static wisp and
/// downloads and packs the guest.
const PREPARE_LIMIT: Duration = Duration::from_secs(45 * 60);

/// Beyond its own `--timeout`, how long a warm run may take (starting the mock, writing the
/// seed, the ssh checks): the "a run takes under two minutes" promise of a warm cache.
const RUN_OVERHEAD: Duration = Duration::from_secs(120);

/// A work directory that is kept, and its path printed, when the test using it fails: the
/// console log and the mock's state say why.
struct Work(Option<tempfile::TempDir>);

impl Work {
    fn new() -> Work {
        Work(Some(tempfile::tempdir().unwrap()))
    }
    fn path(&self) -> &Path {
        self.0
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/nonexistent"))
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(d) = self.0.take() {
                eprintln!("wisp-vm work directory kept: {}", d.keep().display());
            }
        }
    }
}

struct Run {
    code: i32,
    out: String,
    /// How long the harness ran.
    took: Duration,
}

fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vm/wisp-vm")
}

/// What a harness that says "QEMU cannot be had" (exit 4) means: a skip, or, under CI (`ci` is
/// the CI variable) a failure unless `skip` (WISP_VM_SKIP) is "1".
fn may_skip(ci: Option<&str>, skip: Option<&str>) -> bool {
    ci.is_none_or(str::is_empty) || skip == Some("1")
}

/// Whether a process whose command line mentions `needle` runs.
fn process_mentioning(needle: &str) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|p| {
        std::fs::read(p.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(needle))
            .unwrap_or(false)
    })
}

/// Runs the harness with `args` and `env` in `work`, killed outright after `limit`; None when
/// QEMU cannot run here (and that may be skipped).
fn run_in(
    work: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> Option<(Run, bool)> {
    let mut all: Vec<&str> = args.to_vec();
    let w = work.to_str().unwrap();
    all.extend(["--work", w]);
    run_logged(work, &all, env, limit)
}

/// Runs the harness with exactly `args`, its output in `log_dir`/harness.log, killed outright
/// after `limit`.
fn run_logged(
    log_dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> Option<(Run, bool)> {
    let log = log_dir.join("harness.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(harness())
        .args(args)
        .env("WISP_VM_MOCK", env!("CARGO_BIN_EXE_mock-maas"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let (status, killed) = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break (s, false);
        }
        if started.elapsed() > limit {
            // SIGKILL: the harness runs no trap; QEMU and the mock must go with it anyway.
            child.kill().unwrap();
            break (child.wait().unwrap(), true);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    let code = status.code().unwrap_or(-1);
    if code == 4 {
        println!("SKIPPED: QEMU cannot run here: {out}");
        let ci = std::env::var("CI").ok();
        let skip = std::env::var("WISP_VM_SKIP").ok();
        assert!(
            may_skip(ci.as_deref(), skip.as_deref()),
            "QEMU cannot run under CI (set WISP_VM_SKIP=1 to skip): {out}"
        );
        return None;
    }
    let took = started.elapsed();
    Some((Run { code, out, took }, killed))
}

/// Builds what the runs need, once for all the tests (`wisp-vm --prepare`, within
/// [`PREPARE_LIMIT`]), so that no timed run pays for a cold cache. False when QEMU cannot be
/// had (a skip). Called with [`ONE_VM_AT_A_TIME`] held.
fn prepared() -> bool {
    static PREPARED: OnceLock<bool> = OnceLock::new();
    *PREPARED.get_or_init(|| {
        let log = tempfile::tempdir().unwrap();
        let Some((run, killed)) = run_logged(log.path(), &["--prepare"], &[], PREPARE_LIMIT) else {
            return false;
        };
        assert!(
            !killed,
            "wisp-vm --prepare overran {PREPARE_LIMIT:?}: {}",
            run.out
        );
        assert_eq!(run.code, 0, "wisp-vm --prepare failed: {}", run.out);
        true
    })
}

/// Runs the harness with `args` (and `--timeout SECS` among them) on a prepared cache; killed
/// when it overruns its own timeout by [`RUN_OVERHEAD`].
fn wisp_vm_env(args: &[&str], env: &[(&str, &str)]) -> Option<(Run, Work)> {
    let _one = ONE_VM_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    if !prepared() {
        return None;
    }
    let work = Work::new();
    let timeout: u64 = args
        .iter()
        .position(|a| *a == "--timeout")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(90);
    let limit = Duration::from_secs(timeout) + RUN_OVERHEAD;
    let (run, killed) = run_in(work.path(), args, env, limit)?;
    assert!(!killed, "the harness overran {limit:?}: {}", run.out);
    Some((run, work))
}

fn wisp_vm(args: &[&str]) -> Option<(Run, Work)> {
    wisp_vm_env(args, &[])
}

#[test]
fn the_linux_guest_deploys_and_the_key_maas_served_logs_in() {
    let Some((r, _work)) = wisp_vm(&["--timeout", "100"]) else {
        return;
    };
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("Deployed after"), "{}", r.out);
    // The seed is on the EFI partition of a GPT disk, as a deployment leaves it: the agent
    // finds it on the partition, not on the whole disk.
    assert!(
        r.out.contains("PASS: Deployed")
            && r.out.contains("seed found on /dev/vda1;")
            && r.out.contains("ssh as ubuntu (MAAS's key) and wispvm")
            && r.out.contains("hostname vmnode")
            && r.out.contains("runcmd ran"),
        "{}",
        r.out
    );
    // Warm (prepared before): the whole run, boot and checks, is under two minutes.
    println!("{}\n(whole run: {:?})", r.out, r.took);
    assert!(
        r.took < Duration::from_secs(120),
        "a warm run took {:?}: {}",
        r.took,
        r.out
    );
}

#[test]
fn kvm_that_cannot_start_falls_back_to_tcg() {
    // A QEMU whose KVM cannot start, as on a host whose /dev/kvm is refused: alone, `-accel
    // kvm` fails at once; with `-accel tcg` after it, QEMU goes on with TCG (as QEMU does).
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("qemu-no-kvm");
    std::fs::write(
        &fake,
        r#"#!/usr/bin/env bash
args=() kvm=0 tcg=0
while [ $# -gt 0 ]; do
    if [ "$1" = -accel ]; then
        case $2 in kvm) kvm=1 ;; tcg) tcg=1; args+=(-accel tcg) ;; esac
        shift 2
        continue
    fi
    args+=("$1")
    shift
done
if [ $kvm = 1 ]; then
    echo "qemu-system-x86_64: -accel kvm: failed to initialize kvm: Permission denied" >&2
    [ $tcg = 1 ] || exit 1
fi
exec qemu-system-x86_64 "${args[@]}"
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Some((r, _work)) = wisp_vm_env(
        &["--timeout", "100"],
        &[
            ("WISP_VM_QEMU", fake.to_str().unwrap()),
            ("WISP_VM_ACCEL", "auto"),
        ],
    ) else {
        return;
    };
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        r.out.contains("booting (auto)") && r.out.contains("PASS: Deployed"),
        "{}",
        r.out
    );
}

#[test]
fn an_unreachable_metadata_service_is_a_failed_deployment_with_the_reason() {
    let Some((r, _work)) = wisp_vm(&["--fault", "unreachable", "--timeout", "100"]) else {
        return;
    };
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(
        r.out
            .contains("FAIL: MAAS marked the machine Failed deployment")
            && r.out.contains("10.0.2.2:9"),
        "{}",
        r.out
    );
}

#[test]
fn a_wrong_token_is_refused_and_the_harness_says_so() {
    let Some((r, _work)) = wisp_vm(&["--fault", "wrong-token", "--timeout", "100"]) else {
        return;
    };
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(
        r.out.contains("MAAS never saw Deployed: it refused"),
        "{}",
        r.out
    );
}

#[test]
fn a_guest_that_never_boots_times_out_with_the_console_tail() {
    // No init where the kernel looks for one: it panics and, without panic=, stays there.
    let Some((r, _work)) = wisp_vm(&["--append", "rdinit=/no-such-init", "--timeout", "25"]) else {
        return;
    };
    assert_eq!(r.code, 3, "{}", r.out);
    assert!(
        r.out
            .contains("TIMEOUT: the guest did not finish booting in 25 s")
            && r.out.contains("console tail")
            && r.out.contains("Kernel panic"),
        "{}",
        r.out
    );
}

#[test]
fn a_key_that_does_not_log_in_fails_the_check() {
    // MAAS serves another key than the harness's: the deployment succeeds, the login must not,
    // and for the key's sake (sshd refused it), not for another reason.
    let Some((r, _work)) = wisp_vm(&["--fault", "foreign-key", "--timeout", "100"]) else {
        return;
    };
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(
        r.out.contains("Deployed after")
            && r.out
                .contains("FAIL: ssh as ubuntu with the harness's key failed")
            && r.out.contains("Permission denied"),
        "{}",
        r.out
    );
}

#[test]
fn a_killed_harness_takes_qemu_and_the_mock_with_it() {
    let _one = ONE_VM_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // Warm first: the 8 s below are for QEMU to start, not for a build.
    if !prepared() {
        return;
    }
    let work = Work::new();
    let path = work.path().to_str().unwrap().to_string();
    // A guest that never finishes, and a harness killed outright once QEMU runs.
    let Some((r, killed)) = run_in(
        work.path(),
        &["--append", "rdinit=/no-such-init", "--timeout", "60"],
        &[],
        Duration::from_secs(8),
    ) else {
        return;
    };
    assert!(killed, "{}", r.out);
    assert!(r.out.contains("booting ("), "{}", r.out);
    let gone = Instant::now();
    while process_mentioning(&path) && gone.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !process_mentioning(&path),
        "QEMU or the mock outlived the harness: {}",
        r.out
    );
}

#[test]
fn set_up_errors_exit_2_with_the_reason() {
    let _one = ONE_VM_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let work = Work::new();
    // This host's wisp (it runs the curtin hook here): the image case must fail on the image,
    // never wait for a cross build of the guest's.
    let host_wisp = common::wisp_bin();
    let logs = work.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let run = |args: &[&str]| {
        let limit = Duration::from_secs(120);
        let (r, killed) = run_logged(&logs, args, &[], limit)
            .map(|(r, k)| (Some(r), k))
            .unwrap_or((None, false));
        let Some(r) = r else {
            return (Some(4), String::new());
        };
        assert!(
            !killed,
            "a set-up error took more than {limit:?}: {}",
            r.out
        );
        (Some(r.code), r.out)
    };
    // An option without its value.
    let (code, out) = run(&["--timeout"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--timeout needs a value"), "{out}");
    // A work directory QEMU's option syntax cannot take.
    let (code, out) = run(&["--work", "/tmp/a\nb"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("comma or a newline"), "{out}");
    // An image with no EFI partition: nowhere for the seed.
    let image = work.path().join("blank.img");
    std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    let w = work.path().join("w");
    let (code, out) = run(&[
        "--image",
        image.to_str().unwrap(),
        "--os",
        "freebsd",
        "--wisp",
        host_wisp.to_str().unwrap(),
        "--work",
        w.to_str().unwrap(),
    ]);
    if code == Some(4) {
        return;
    }
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("has no EFI system partition"), "{out}");
}

#[test]
fn a_missing_qemu_is_exit_4_and_a_skip_only_outside_ci() {
    let o = Command::new(harness())
        .args(["--timeout", "10"])
        .env("WISP_VM_QEMU", "/no/such/qemu")
        .env("WISP_VM_MOCK", env!("CARGO_BIN_EXE_mock-maas"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(may_skip(None, None));
    assert!(may_skip(Some(""), None));
    assert!(!may_skip(Some("true"), None));
    assert!(!may_skip(Some("1"), Some("0")));
    assert!(may_skip(Some("true"), Some("1")));
}
