//! image-hooks/install into fake roots for each OS: files, modes, owners, the enable line the
//! OS reads; a second run changes nothing; METALOG lines parse with mtree(8); the manifest.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../image-hooks/install")
}

fn install(args: &[&str], target: &Path) -> Output {
    Command::new("sh")
        .arg(script())
        .args(args)
        .arg("--binary")
        .arg(common::wisp_bin())
        .arg(target)
        .output()
        .unwrap()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Every file under `root`: mode, owner, size and modification time.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, u32, u64, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            out.insert(
                e.path(),
                (
                    m.mode(),
                    m.uid(),
                    m.size(),
                    m.mtime_nsec() + m.mtime() * 1_000_000_000,
                ),
            );
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

#[test]
fn installs_and_enables_for_each_os_once() {
    if !is_root() {
        eprintln!("skipped: installing with owners needs root (CI has it)");
        return;
    }
    for (os, rc, enable, line) in [
        ("netbsd", "/etc/rc.d/wispnet", "/etc/rc.conf", "wisp=YES"),
        (
            "freebsd",
            "/usr/local/etc/rc.d/wispnet",
            "/etc/rc.conf.d/wisp",
            "wisp_enable=\"YES\"",
        ),
        (
            "openbsd",
            "/etc/rc.d/wisp",
            "/etc/rc.conf.local",
            "pkg_scripts=wisp",
        ),
    ] {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::set_permissions(
            r.join("etc"),
            std::os::unix::fs::PermissionsExt::from_mode(0o751),
        )
        .unwrap();
        let o = install(&["--os", os], r);
        assert!(
            o.status.success(),
            "{os}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mode = |p: &str| {
            std::fs::metadata(r.join(p.trim_start_matches('/')))
                .unwrap()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("/usr/local/sbin/wisp"), 0o555, "{os}");
        assert_eq!(mode(rc), 0o555, "{os}");
        assert_eq!(mode("/etc/wisp/wisp.yaml"), 0o644, "{os}");
        assert_eq!(mode("/usr/local/man/man8/wisp.8"), 0o444, "{os}");
        assert_eq!(
            mode("/etc"),
            0o751,
            "{os}: the image's own /etc is left alone"
        );
        assert_eq!(
            std::fs::metadata(r.join("usr/local/sbin/wisp"))
                .unwrap()
                .uid(),
            0
        );
        let enabled = std::fs::read_to_string(r.join(enable.trim_start_matches('/'))).unwrap();
        assert_eq!(
            enabled.lines().filter(|l| *l == line).count(),
            1,
            "{os}: {enabled}"
        );
        // Again: nothing changes.
        let before = snapshot(r);
        let o = install(&["--os", os], r);
        assert!(o.status.success());
        assert_eq!(
            snapshot(r),
            before,
            "{os}: the second run changed something"
        );
    }
}

#[test]
fn openbsd_keeps_other_package_scripts_and_the_image_keeps_its_config() {
    if !is_root() {
        eprintln!("skipped: needs root (CI has it)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    std::fs::create_dir_all(r.join("etc/wisp")).unwrap();
    std::fs::write(
        r.join("etc/rc.conf.local"),
        "ntpd_flags=-s\npkg_scripts=postgresql nginx\n",
    )
    .unwrap();
    std::fs::write(r.join("etc/wisp/wisp.yaml"), "# the image builder's own\n").unwrap();
    for _ in 0..2 {
        assert!(install(&["--os", "openbsd"], r).status.success());
    }
    assert_eq!(
        std::fs::read_to_string(r.join("etc/rc.conf.local")).unwrap(),
        "ntpd_flags=-s\npkg_scripts=postgresql nginx wisp\n"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("etc/wisp/wisp.yaml")).unwrap(),
        "# the image builder's own\n"
    );
}

#[test]
fn metalog_for_unprivileged_builds_parses_with_mtree() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path().join("root");
    std::fs::create_dir_all(r.join("etc")).unwrap();
    // The target's own user and group databases, as mtree -N reads them.
    std::fs::write(r.join("etc/group"), "wheel:*:0:root\n").unwrap();
    std::fs::write(
        r.join("etc/master.passwd"),
        "root:*:0:0::0:0:Charlie &:/root:/bin/sh\n",
    )
    .unwrap();
    let metalog = t.path().join("METALOG");
    let ml = metalog.to_str().unwrap();
    for _ in 0..2 {
        let o = install(&["--os", "netbsd", "--metalog", ml], &r);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let text = std::fs::read_to_string(&metalog).unwrap();
    assert!(
        text.contains("./usr/local/sbin/wisp type=file uname=root gname=wheel mode=0555\n"),
        "{text}"
    );
    assert!(text.contains("./etc/rc.d/wisplocal type=file uname=root gname=wheel mode=0555\n"));
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("./usr/local/sbin/wisp "))
            .count(),
        1,
        "once"
    );
    let o = Command::new("mtree")
        .arg("-N")
        .arg(r.join("etc"))
        .args(["-C", "-f", ml])
        .output()
        .expect("mtree (Debian's mtree-netbsd; .ci/run installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let canon = String::from_utf8_lossy(&o.stdout);
    assert!(
        canon.contains("./usr/local/sbin/wisp type=file uid=0 gid=0 mode=0555"),
        "{canon}"
    );
}

#[test]
fn manifest_lists_without_installing() {
    let t = tempfile::tempdir().unwrap();
    let o = install(&["--os", "freebsd", "--manifest"], t.path());
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("/usr/local/etc/rc.d/wisplocal 0555 root:wheel\n"),
        "{out}"
    );
    assert!(out.contains("# gen_init_cpio\n"));
    assert!(out.contains("dir /usr/local/sbin 0755 0 0\n"));
    assert!(out
        .lines()
        .any(|l| l.starts_with("file /usr/local/sbin/wisp ") && l.ends_with(" 0555 0 0")));
    assert_eq!(
        std::fs::read_dir(t.path()).unwrap().count(),
        0,
        "nothing installed"
    );
    let o = install(&["--os", "plan9"], t.path());
    assert_eq!(o.status.code(), Some(1));
}

/// The newsyslog entry is appended to a file the system shares: after a last line that lacks
/// its newline it starts a line of its own, and an entry for /var/log/wisp.log already there
/// (an operator's, with other numbers) is kept as the only one.
#[test]
fn the_newsyslog_entry_starts_its_own_line_and_is_known_by_its_log_file() {
    let entry = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/newsyslog/netbsd.conf"),
    )
    .unwrap();
    let edited = "/var/log/wisp.log\troot:wheel\t600\t9\t*\t*\tNZ\n";
    let other = "/var/log/wisp.log.old\troot:wheel\t600\t3\t*\t*\tZ\n";
    for (before, after) in [
        (
            "/var/log/messages\t644\t10\t250\t*\tZ".to_string(),
            format!("/var/log/messages\t644\t10\t250\t*\tZ\n{entry}"),
        ),
        (format!("{other}{edited}"), format!("{other}{edited}")),
        (other.to_string(), format!("{other}{entry}")),
    ] {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("root");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/newsyslog.conf"), &before).unwrap();
        // METALOG mode: no owners to set, so it runs without root.
        let ml = t.path().join("METALOG");
        for _ in 0..2 {
            let o = install(&["--os", "netbsd", "--metalog", ml.to_str().unwrap()], &r);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        assert_eq!(
            std::fs::read_to_string(r.join("etc/newsyslog.conf")).unwrap(),
            after,
            "{before:?}"
        );
    }
}
