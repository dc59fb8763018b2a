//! The modules of issue 11: power_state's plans per OS (shutdown(8)'s argv, from each system's
//! manual page) and named errors; random_seed fed to a device in a fake root (a FIFO stands in
//! for /dev/urandom) and never to anything put in its place; what the report says of keys wisp
//! does not apply.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{apply, fresh_root, json_plan, manifest_path};

fn plan(platform: &str, doc: &str) -> serde_json::Value {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("u.yaml");
    std::fs::write(&path, doc).unwrap();
    let root = manifest_path("tests/fixtures/roots/fresh");
    json_plan(platform, &root, &path, None).0
}

/// The power_state actions: (argv after `chroot ROOT`, condition after `chroot ROOT`).
fn power(plan: &serde_json::Value) -> Vec<(Vec<String>, Option<Vec<String>>)> {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .skip(2)
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["module"] == "power_state")
        .map(|a| {
            assert_eq!(a["argv"][0], "chroot", "{a}");
            (strings(&a["argv"]), a.get("condition").map(strings))
        })
        .collect()
}

#[test]
fn shutdown_flags_per_os() {
    // NetBSD and FreeBSD shutdown(8): -p powers off, -r reboots, -h halts; OpenBSD's -p only
    // passes on to halt(8), so power off is -h -p; Linux (cloud-init's map) -P and -H.
    let cases: &[(&str, &str, &[&str])] = &[
        ("netbsd", "poweroff", &["-p"]),
        ("netbsd", "reboot", &["-r"]),
        ("netbsd", "halt", &["-h"]),
        ("freebsd", "poweroff", &["-p"]),
        ("freebsd", "reboot", &["-r"]),
        ("freebsd", "halt", &["-h"]),
        ("openbsd", "poweroff", &["-h", "-p"]),
        ("openbsd", "reboot", &["-r"]),
        ("openbsd", "halt", &["-h"]),
        ("linux", "poweroff", &["-P"]),
        ("linux", "reboot", &["-r"]),
        ("linux", "halt", &["-H"]),
    ];
    for (os, mode, flags) in cases {
        let p = plan(
            os,
            &format!("#cloud-config\nusers: []\npower_state: {{mode: {mode}, delay: 10, message: Bye now}}\n"),
        );
        let mut want = vec!["/sbin/shutdown".to_string()];
        want.extend(flags.iter().map(|f| f.to_string()));
        want.extend(["+10".to_string(), "Bye now".to_string()]);
        assert_eq!(power(&p), vec![(want, None)], "{os} {mode}");
        assert!(
            p["modules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["name"] == "power_state" && m["frequency"] == "per-instance"),
            "{os}: {}",
            p["modules"]
        );
    }
}

#[test]
fn conditions_run_in_the_root_and_false_plans_nothing() {
    let p = plan(
        "netbsd",
        "#cloud-config\nusers: []\npower_state: {mode: reboot, condition: test -f /x}\n",
    );
    assert_eq!(
        power(&p),
        vec![(
            vec!["/sbin/shutdown".into(), "-r".into(), "now".into()],
            Some(vec!["/bin/sh".into(), "-c".into(), "test -f /x".into()])
        )]
    );
    let p = plan(
        "freebsd",
        "#cloud-config\nusers: []\npower_state: {mode: reboot, condition: [test, -f, /x]}\n",
    );
    assert_eq!(
        power(&p)[0].1,
        Some(vec!["test".into(), "-f".into(), "/x".into()])
    );
    let p = plan(
        "openbsd",
        "#cloud-config\nusers: []\npower_state: {mode: reboot, condition: false}\n",
    );
    assert!(power(&p).is_empty());
}

#[test]
fn a_delay_of_later_is_a_named_error_and_nothing_is_planned() {
    for os in ["netbsd", "freebsd", "openbsd", "linux"] {
        let p = plan(
            os,
            "#cloud-config\nusers: []\npower_state: {mode: reboot, delay: later}\n",
        );
        assert!(power(&p).is_empty(), "{os}");
        // A document error, under the module that reads the key (as `wisp schema` calls it).
        let errors = p["errors"].to_string();
        assert!(
            errors.contains("power_state.delay")
                && errors.contains("\\\"later\\\"")
                && errors.contains("\"module\":\"power_state\""),
            "{os}: {errors}"
        );
    }
}

#[test]
fn keys_not_applied_say_why() {
    let p = plan(
        "netbsd",
        "#cloud-config\nusers: []\nsnap: {commands: [x]}\nyum_repos: {}\npuppet: {}\n\
         mounts: [[sdb, /mnt]]\n",
    );
    let warnings: Vec<String> = p["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    // Linux-only modules: noted in the log, not a warning of the report.
    for key in ["snap", "yum_repos"] {
        assert!(
            !warnings.iter().any(|w| w.contains(&format!(": {key}:"))),
            "{key}: {warnings:?}"
        );
    }
    // Modules cloud-init runs on the BSDs too: a warning that wisp does not apply them.
    for key in ["puppet", "mounts"] {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&format!(": {key}: not supported by wisp"))),
            "{key}: {warnings:?}"
        );
    }
    assert!(
        !warnings
            .iter()
            .any(|w| w.contains("no meaning on the BSDs")),
        "{warnings:?}"
    );
}

/// `wisp apply` of `doc` for real under `root` (as instance `i-1`): exit code and output.
fn apply_doc(root: &Path, doc: &str, flags: &[&str]) -> (Option<i32>, String) {
    let path = root.join("seed-doc.yaml");
    std::fs::write(&path, doc).unwrap();
    let mut all = flags.to_vec();
    all.extend(["--format", "json"]);
    let o = apply("netbsd", root, &all, &path, None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code(), text)
}

const SEED: &str =
    "#cloud-config\nusers: []\nrandom_seed:\n  data: c2VlZC1ieXRlcw==\n  encoding: b64\n";

#[test]
fn the_seed_is_fed_to_the_device_and_a_dry_run_feeds_nothing() {
    let t = fresh_root();
    let r = t.path();
    std::fs::create_dir_all(r.join("dev")).unwrap();
    let fifo = r.join("dev/urandom");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // A reader that never blocks, open before wisp writes (a FIFO with no reader is refused).
    use std::os::unix::fs::OpenOptionsExt;
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let read_all = |reader: &mut std::fs::File| {
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = std::io::Read::read(reader, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    };
    let (code, out) = apply_doc(r, SEED, &["--dry-run"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("feed_device") || out.contains("\"path\": \"/dev/urandom\""),
        "{out}"
    );
    assert!(
        !out.contains("c2VlZC1ieXRlcw") && !out.contains("seed-bytes"),
        "{out}"
    );
    assert!(read_all(&mut reader).is_empty());
    let (code, out) = apply_doc(r, SEED, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(read_all(&mut reader), b"seed-bytes");
    assert!(!out.contains("seed-bytes"), "{out}");
}

#[test]
fn only_a_device_is_fed_never_what_stands_in_its_place() {
    // A regular file, a link to /etc/passwd, nothing: refused, named, nothing created or changed.
    for case in ["file", "link", "missing"] {
        let t = fresh_root();
        let r = t.path();
        std::fs::create_dir_all(r.join("dev")).unwrap();
        let dev = r.join("dev/urandom");
        match case {
            "file" => std::fs::write(&dev, "not a device").unwrap(),
            "link" => std::os::unix::fs::symlink("/etc/passwd", &dev).unwrap(),
            _ => {}
        }
        let passwd = std::fs::read(r.join("etc/passwd")).unwrap();
        let (code, out) = apply_doc(r, SEED, &[]);
        assert_eq!(code, Some(1), "{case}: {out}");
        assert!(out.contains("/dev/urandom"), "{case}: {out}");
        assert_eq!(
            std::fs::read(r.join("etc/passwd")).unwrap(),
            passwd,
            "{case}"
        );
        match case {
            "file" => assert_eq!(std::fs::read(&dev).unwrap(), b"not a device"),
            "missing" => assert!(!dev.exists()),
            _ => assert!(dev.is_symlink()),
        }
    }
}

#[test]
fn a_seed_file_gets_the_data_appended_once_per_instance() {
    let t = fresh_root();
    let r = t.path();
    std::fs::create_dir_all(r.join("var/tmp")).unwrap();
    std::fs::write(r.join("var/tmp/seed"), "old:").unwrap();
    let doc = "#cloud-config\nusers: []\nrandom_seed: {file: /var/tmp/seed, data: new}\n";
    std::fs::write(r.join("seed-doc.yaml"), doc).unwrap();
    for _ in 0..2 {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_wisp"))
            .args(["--platform", "netbsd", "--root"])
            .arg(r)
            .arg("--config")
            .arg(manifest_path("tests/fixtures/no-config.yaml"))
            .args(["apply", "--instance-id", "i-1", "--user-data"])
            .arg(r.join("seed-doc.yaml"))
            .output()
            .unwrap();
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // chown to root:wheel may fail where there is no wheel group: the content is what counts.
    assert_eq!(std::fs::read(r.join("var/tmp/seed")).unwrap(), b"old:new");
    let mode = std::fs::metadata(r.join("var/tmp/seed"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_required_command_that_is_missing_is_an_error_and_one_present_runs_with_the_file() {
    let p = plan(
        "freebsd",
        "#cloud-config\nusers: []\nrandom_seed: {command: [pollinate, -q], command_required: true}\n",
    );
    assert!(p["errors"].to_string().contains("pollinate"), "{p:#}");
    let p = plan(
        "freebsd",
        "#cloud-config\nusers: []\nrandom_seed: {command: [pollinate, -q]}\n",
    );
    assert!(p["errors"].as_array().unwrap().is_empty(), "{p:#}");
    assert!(p["actions"].as_array().unwrap().is_empty(), "{p:#}");
    // Present in the root: run there, with RANDOM_SEED_FILE set by env(1), no shell.
    let t = fresh_root();
    let r = t.path();
    std::fs::create_dir_all(r.join("usr/local/bin")).unwrap();
    std::fs::write(r.join("usr/local/bin/pollinate"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        r.join("usr/local/bin/pollinate"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let doc = r.join("d.yaml");
    std::fs::write(
        &doc,
        "#cloud-config\nusers: []\nrandom_seed: {command: [pollinate, -q], command_required: true}\n",
    )
    .unwrap();
    let (p, _) = json_plan("freebsd", r, &doc, None);
    let argv: Vec<String> = p["actions"][0]["argv"]
        .as_array()
        .unwrap()
        .iter()
        .skip(2)
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        argv,
        [
            "/usr/bin/env",
            "RANDOM_SEED_FILE=/dev/urandom",
            "pollinate",
            "-q"
        ]
    );
}

#[test]
fn a_seed_is_never_written_to_a_disk() {
    for (platform, disk) in [("freebsd", "/dev/ada0"), ("netbsd", "/dev/rwd0d")] {
        let p = plan(
            platform,
            &format!("#cloud-config\nusers: []\nrandom_seed: {{file: {disk}, data: x}}\n"),
        );
        let e = p["errors"].to_string();
        assert!(e.contains("random_seed") && e.contains(disk), "{p:#}");
        assert!(
            !p["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["module"] == "random_seed"),
            "{p:#}"
        );
    }
    // The random devices are fed.
    let p = plan(
        "freebsd",
        "#cloud-config\nusers: []\nrandom_seed: {file: /dev/random, data: x}\n",
    );
    assert!(p["errors"].as_array().unwrap().is_empty(), "{p:#}");
    assert_eq!(p["actions"][0]["path"], "/dev/random", "{p:#}");
}

/// The command is looked up inside the root: a directory that is a link to a host directory
/// (absolute, so outside the root once chrooted) does not make a host tool count.
#[test]
fn the_seed_command_is_looked_up_inside_the_root_only() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("pollinate"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        host.path().join("pollinate"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let t = fresh_root();
    let r = t.path();
    std::fs::create_dir_all(r.join("usr/local")).unwrap();
    std::os::unix::fs::symlink(host.path(), r.join("usr/local/bin")).unwrap();
    let doc = r.join("d.yaml");
    std::fs::write(
        &doc,
        "#cloud-config\nusers: []\nrandom_seed: {command: [pollinate, -q], command_required: true}\n",
    )
    .unwrap();
    let (p, _) = json_plan("freebsd", r, &doc, None);
    assert!(p["errors"].to_string().contains("pollinate"), "{p:#}");
    assert!(p["actions"].as_array().unwrap().is_empty(), "{p:#}");
}
