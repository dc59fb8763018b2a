//! `growpart` and `resize_rootfs`: what turns them off, what is refused and named, and that
//! wisp never plans for disks it was not shown (`--disks`, with --dry-run only).

use std::path::{Path, PathBuf};

mod common;

fn disks(name: &str) -> PathBuf {
    common::manifest_path(&format!("tests/fixtures/disks/{name}.yaml"))
}

fn grow_root() -> PathBuf {
    common::manifest_path("tests/fixtures/roots/grow")
}

/// The `--dry-run --format json` plan of `doc` for `platform` with the disks of `fixture`, as
/// a boot plans it (an instance: cloud-init's defaults apply).
fn plan(platform: &str, root: &Path, doc: &str, fixture: Option<&str>) -> serde_json::Value {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("u.yaml");
    std::fs::write(&file, format!("#cloud-config\nusers: []\n{doc}")).unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wisp"));
    c.args(["--platform", platform, "--dry-run", "--format", "json"]);
    if let Some(d) = fixture.map(disks) {
        c.arg("--disks").arg(d);
    }
    c.arg("--root")
        .arg(root)
        .arg("--config")
        .arg(common::manifest_path("tests/fixtures/no-config.yaml"))
        .args(["apply", "--instance-id", "i-test", "--user-data"])
        .arg(&file);
    let o = c.output().unwrap();
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// The growpart actions of a plan, one line each (argv, or the path written).
fn actions(plan: &serde_json::Value) -> Vec<String> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["module"] == "growpart")
        .map(|a| match a["argv"].as_array() {
            Some(argv) => argv
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(" "),
            None => format!("write {}", a["path"].as_str().unwrap()),
        })
        .collect()
}

fn problems(plan: &serde_json::Value) -> String {
    format!("{} {}", plan["warnings"], plan["errors"])
}

#[test]
fn on_by_default_and_off_when_asked() {
    let root = grow_root();
    // No growpart key at all: cloud-init grows the root by default, and so does wisp.
    let p = plan("freebsd", &root, "", Some("root-last"));
    assert_eq!(
        actions(&p),
        [
            "gpart recover vtbd0",
            "gpart resize -i 3 vtbd0",
            "growfs -y /dev/vtbd0p3"
        ]
    );
    for off in [
        "growpart: {mode: off}\n",
        "growpart: {mode: false}\n",
        "growpart: {devices: []}\n",
    ] {
        for os in ["freebsd", "netbsd"] {
            let p = plan(os, &root, off, Some("root-last"));
            assert!(actions(&p).is_empty(), "{os} {off}: {p}");
            assert_eq!(problems(&p), "[] []", "{os} {off}");
        }
    }
    // resize_rootfs: false grows the partition only.
    let p = plan(
        "freebsd",
        &root,
        "resize_rootfs: false\n",
        Some("root-last"),
    );
    assert_eq!(
        actions(&p),
        ["gpart recover vtbd0", "gpart resize -i 3 vtbd0"]
    );
    let p = plan("netbsd", &root, "resize_rootfs: false\n", Some("root-last"));
    assert_eq!(actions(&p), ["gpt resizedisk wd0", "gpt resize -i 2 wd0"]);
    let p = plan(
        "netbsd",
        &root,
        "resize_rootfs: noblock\n",
        Some("root-last"),
    );
    assert_eq!(
        actions(&p),
        [
            "write /etc/rc.conf",
            "gpt resizedisk wd0",
            "gpt resize -i 2 wd0"
        ]
    );
}

/// Last review (3): the growing tools are not killed at the system tools' 600 s (growfs on a
/// huge slow disk; killed half-way, a rerun finds the partition grown and never grows the file
/// system): each carries a limit of a day.
#[test]
fn the_growing_tools_have_a_days_limit() {
    let root = grow_root();
    for (os, n) in [("freebsd", 3), ("netbsd", 2)] {
        let p = plan(os, &root, "", Some("root-last"));
        let execs: Vec<&serde_json::Value> = p["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["module"] == "growpart" && a["argv"].is_array())
            .collect();
        assert_eq!(execs.len(), n, "{os}: {p}");
        for a in execs {
            assert_eq!(a["timeout"], 86400, "{os}: {a}");
        }
    }
}

#[test]
fn bad_values_are_named_and_the_rest_is_applied() {
    let root = grow_root();
    let rest = "write_files: [{path: /etc/motd, content: hi}]\n";
    for (doc, field, grows) in [
        ("growpart: {mode: sideways}\n", "growpart.mode", false),
        ("growpart: {devices: /}\n", "growpart.devices", false),
        ("growpart: [auto]\n", "growpart", false),
        ("resize_rootfs: maybe\n", "resize_rootfs", true),
    ] {
        let p = plan("freebsd", &root, &format!("{doc}{rest}"), Some("root-last"));
        let shown = problems(&p);
        assert!(shown.contains(field), "{doc}: {shown}");
        assert_eq!(!actions(&p).is_empty(), grows, "{doc}: {p}");
        assert!(
            p["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["path"] == "/etc/motd"),
            "{doc}: the rest is not applied: {p}"
        );
    }
    // A resize_rootfs it cannot read grows the partition only, as in cloud-init.
    let p = plan(
        "freebsd",
        &root,
        "resize_rootfs: maybe\n",
        Some("root-last"),
    );
    assert_eq!(actions(&p).len(), 2, "{p}");
    // Another mount point than / is named, / still grows.
    let p = plan(
        "freebsd",
        &root,
        "growpart: {devices: [/, /home]}\n",
        Some("root-last"),
    );
    assert!(problems(&p).contains("/home"), "{p}");
    assert_eq!(actions(&p).len(), 3, "{p}");
}

#[test]
fn a_root_that_is_not_last_is_an_error_when_asked_and_a_full_one_plans_nothing() {
    let root = grow_root();
    for (os, device) in [("freebsd", "/dev/gpt/rootfs"), ("netbsd", "/dev/dk1")] {
        // Only the default (bsdinstall puts swap after the root): skipped, a note in the log.
        let p = plan(os, &root, "", Some("root-not-last"));
        assert!(actions(&p).is_empty(), "{os}: {p}");
        assert_eq!(problems(&p), "[] []", "{os}");
        // Asked for: an error.
        let p = plan(os, &root, "growpart: {mode: auto}\n", Some("root-not-last"));
        assert!(actions(&p).is_empty(), "{os}: {p}");
        let e = p["errors"].to_string();
        assert!(
            e.contains("growpart") && e.contains(device) && e.contains("not the last partition"),
            "{os}: {e}"
        );
        // The second run, once the partition fills the disk: nothing at all.
        let p = plan(os, &root, "", Some("root-full"));
        assert!(actions(&p).is_empty(), "{os}: {p}");
        assert_eq!(problems(&p), "[] []", "{os}");
    }
}

#[test]
fn fake_roots_need_a_disks_file_and_the_file_is_for_dry_runs() {
    let root = grow_root();
    // A fake root and no --disks: the host's disks are never probed for it.
    let p = plan("freebsd", &root, "growpart: {mode: auto}\n", None);
    assert!(actions(&p).is_empty(), "{p}");
    assert!(problems(&p).contains("no --disks"), "{p}");
    let p = plan("freebsd", &root, "", None);
    assert_eq!(problems(&p), "[] []", "only the default: {p}");
    // A real run with --disks would run the commands on this machine's disks.
    let t = tempfile::tempdir().unwrap();
    let doc = t.path().join("u.yaml");
    std::fs::write(&doc, "#cloud-config\n").unwrap();
    let d = disks("root-last");
    let o = common::apply(
        "freebsd",
        &root,
        &["--disks", d.to_str().unwrap()],
        &doc,
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--disks"),
        "{o:?}"
    );
    // A --disks file that cannot be read is named (growpart named: a trial apply grows the
    // root only when asked).
    std::fs::write(&doc, "#cloud-config\ngrowpart: {mode: auto}\n").unwrap();
    let bad = t.path().join("disks.yaml");
    std::fs::write(&bad, "netbsd: {}\n").unwrap();
    let o = common::apply(
        "freebsd",
        &root,
        &[
            "--dry-run",
            "--format",
            "json",
            "--disks",
            bad.to_str().unwrap(),
        ],
        &doc,
        None,
    );
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let e = p["errors"].to_string();
    assert!(
        e.contains("--disks") && e.contains("no map for freebsd"),
        "{e}"
    );
}

/// A copy of the grow root with `fstab` and, if given, the growroot-disabled marker.
fn root_with(fstab: &str, marker: bool) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("etc")).unwrap();
    for f in ["passwd", "group", "rc.conf"] {
        std::fs::copy(
            grow_root().join("etc").join(f),
            t.path().join("etc").join(f),
        )
        .unwrap();
    }
    std::fs::write(t.path().join("etc/fstab"), fstab).unwrap();
    if marker {
        std::fs::write(t.path().join("etc/growroot-disabled"), "").unwrap();
    }
    t
}

#[test]
fn the_growroot_disabled_marker_holds_unless_ignored() {
    let t = root_with("ROOT. / ffs rw 1 1\n", true);
    let p = plan("freebsd", t.path(), "", Some("root-last"));
    assert!(actions(&p).is_empty(), "{p}");
    let p = plan(
        "freebsd",
        t.path(),
        "growpart: {ignore_growroot_disabled: true}\n",
        Some("root-last"),
    );
    assert_eq!(actions(&p).len(), 3, "{p}");
}

#[test]
fn netbsd_says_when_resize_root_cannot_grow_the_file_system() {
    let t = root_with("NAME=wisp-root / ffs rw,log 1 1\n", false);
    let p = plan("netbsd", t.path(), "", Some("root-last"));
    assert_eq!(actions(&p).len(), 3, "{p}");
    let w = p["warnings"].to_string();
    assert!(
        w.contains("growpart") && w.contains("NAME=wisp-root"),
        "{w}"
    );
    let t = root_with("/dev/dk1 / ffs rw,log 1 1\n", false);
    let p = plan("netbsd", t.path(), "", Some("root-last"));
    assert!(p["warnings"].to_string().contains("with log"), "{p}");
    // resize_root alone is not enough: rc.d/resize_root must reboot at once after resize_ffs
    // (the kernel still holds the old superblock of the root), as NetBSD's own images say.
    let t = root_with("ROOT. / ffs rw 1 1\n", false);
    std::fs::write(t.path().join("etc/rc.conf"), "resize_root=YES\n").unwrap();
    let p = plan("netbsd", t.path(), "", Some("root-last"));
    assert_eq!(
        actions(&p),
        [
            "write /etc/rc.conf",
            "gpt resizedisk wd0",
            "gpt resize -i 2 wd0"
        ],
        "{p}"
    );
    // The rc.conf knobs are set once: the written rc.conf asks for all of them.
    std::fs::write(
        t.path().join("etc/rc.conf"),
        "resize_root=YES\nresize_root_flags=\"-p\"\nresize_root_postcmd=\"/sbin/reboot -n\"\n",
    )
    .unwrap();
    let p = plan("netbsd", t.path(), "", Some("root-last"));
    assert_eq!(
        actions(&p),
        ["gpt resizedisk wd0", "gpt resize -i 2 wd0"],
        "{p}"
    );
    assert_eq!(problems(&p), "[] []");
}

/// Done for an instance (its mark in the state directory), growpart plans nothing for it again;
/// a new instance (a redeployment) grows again.
#[test]
fn once_per_instance() {
    let t = root_with("ROOT. / ffs rw 1 1\n", false);
    std::fs::create_dir_all(t.path().join("var/db/wisp")).unwrap();
    std::fs::write(
        t.path().join("var/db/wisp/sem.growpart.json"),
        r#"{"instance_id":"i-1"}"#,
    )
    .unwrap();
    let doc = t.path().join("u.yaml");
    std::fs::write(&doc, "#cloud-config\nusers: []\n").unwrap();
    let d = disks("root-last");
    for (id, n) in [("i-1", 0), ("i-2", 3)] {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wisp"));
        c.args([
            "--platform",
            "freebsd",
            "--dry-run",
            "--format",
            "json",
            "--disks",
        ])
        .arg(&d)
        .arg("--root")
        .arg(t.path())
        .arg("--config")
        .arg(common::manifest_path("tests/fixtures/no-config.yaml"))
        .args(["apply", "--instance-id", id, "--user-data"])
        .arg(&doc);
        let o = c.output().unwrap();
        let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(actions(&p).len(), n, "{id}: {p}");
    }
}

/// `wisp apply` without `--instance-id` tries a document on a live system: the root is grown
/// only when the document asks for it.
#[test]
fn a_trial_apply_grows_the_root_only_when_asked() {
    let root = grow_root();
    let t = tempfile::tempdir().unwrap();
    let doc = t.path().join("u.yaml");
    let d = disks("root-last");
    let trial = |text: &str| {
        std::fs::write(&doc, text).unwrap();
        let o = common::apply(
            "freebsd",
            &root,
            &[
                "--dry-run",
                "--format",
                "json",
                "--disks",
                d.to_str().unwrap(),
            ],
            &doc,
            None,
        );
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let p = trial("#cloud-config\nusers: []\n");
    assert!(actions(&p).is_empty(), "{p}");
    for named in ["growpart: {mode: auto}\n", "resize_rootfs: true\n"] {
        let p = trial(&format!("#cloud-config\nusers: []\n{named}"));
        assert_eq!(actions(&p).len(), 3, "{named}: {p}");
    }
}
