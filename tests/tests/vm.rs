//! A real machine: tests/vm/wisp-vm boots the Linux guest it builds (Debian's cloud kernel,
//! busybox, dropbear, the shadow tools, the static wisp) under QEMU against the mock MAAS, and
//! checks the deployment over ssh; and its bad paths. The runs share one built guest and go one
//! at a time (the machines have two cores). Skipped only when QEMU cannot be had at all (the
//! harness exits 4: not installed and nothing to install it with).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static ONE_VM_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Run {
    code: i32,
    out: String,
}

fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vm/wisp-vm")
}

/// Runs the harness with `args`; None when QEMU cannot run here.
fn wisp_vm(args: &[&str]) -> Option<Run> {
    let _one = ONE_VM_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let work = tempfile::tempdir().unwrap();
    let o = Command::new(harness())
        .args(args)
        .arg("--work")
        .arg(work.path())
        .env("WISP_VM_MOCK", env!("CARGO_BIN_EXE_mock-maas"))
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let code = o.status.code().unwrap_or(-1);
    if code == 4 {
        eprintln!("SKIPPED: QEMU cannot run here: {out}");
        return None;
    }
    Some(Run { code, out })
}

#[test]
fn the_linux_guest_deploys_and_the_key_maas_served_logs_in() {
    let started = std::time::Instant::now();
    let Some(r) = wisp_vm(&["--timeout", "100"]) else {
        return;
    };
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("Deployed after"), "{}", r.out);
    assert!(
        r.out.contains("PASS: Deployed")
            && r.out.contains("ssh as ubuntu (MAAS's key) and operator")
            && r.out.contains("hostname vmnode"),
        "{}",
        r.out
    );
    eprintln!("{}\n(whole run: {:?})", r.out, started.elapsed());
}

#[test]
fn an_unreachable_metadata_service_is_a_failed_deployment_with_the_reason() {
    let Some(r) = wisp_vm(&["--fault", "unreachable", "--timeout", "100"]) else {
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
    let Some(r) = wisp_vm(&["--fault", "wrong-token", "--timeout", "100"]) else {
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
    let Some(r) = wisp_vm(&["--append", "rdinit=/no-such-init", "--timeout", "25"]) else {
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
    // MAAS serves another key than the harness's: the deployment succeeds, the login must not.
    let Some(r) = wisp_vm(&["--fault", "foreign-key", "--timeout", "100"]) else {
        return;
    };
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(
        r.out.contains("Deployed after")
            && r.out
                .contains("FAIL: ssh as ubuntu with the harness's key failed"),
        "{}",
        r.out
    );
}
