use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;

fn setup() -> (tempfile::TempDir, tempfile::TempDir, Root) {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    let r = Root::new(root.path());
    (root, outside, r)
}

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn file_mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn normalize_resolves_dots_and_stops_at_the_top() {
    assert_eq!(normalize("/home/../etc"), "/etc");
    assert_eq!(normalize("//var/./db//wisp/"), "/var/db/wisp");
    assert_eq!(normalize("/../../"), "/");
}

#[test]
fn homes_in_system_or_state_directories_are_refused() {
    for bad in [
        "/",
        "/home/../etc",
        "/etc",
        "/etc/x",
        "/var/db/wisp",
        "/var/db/wisp/sub",
        "/var",
        "/var/db",
        "/usr",
        "/usr/local/x",
        "/dev",
        "/home",
        "/usr/home",
        "/bin/../sbin",
    ] {
        let e = check_home(bad).expect_err(bad);
        assert!(e.contains("refused"), "{bad}: {e}");
    }
    for good in [
        "/home/alice",
        "/usr/home/alice",
        "/srv/app",
        "/var/lib/svc",
        "/export/h/bob",
    ] {
        assert_eq!(check_home(good), Ok(()), "{good}");
    }
}

#[test]
fn write_targets_in_wisp_directories_are_refused() {
    for bad in [
        "/var/db/wisp/instance-id",
        "/var/db//wisp/x",
        "/var/db/wisp",
        "/etc/wisp/wisp.yaml",
        "/etc/wisp/wisp.yaml.d/10.yaml",
    ] {
        assert!(check_write_target(bad).is_err(), "{bad}");
    }
    for good in ["/etc/motd", "/etc/wispy", "/var/db/wisp2", "/var/tmp/x"] {
        assert_eq!(check_write_target(good), Ok(()), "{good}");
    }
}

#[test]
fn a_fifo_is_refused_at_once() {
    let (d, _o, r) = setup();
    mkfifo(&d.path().join("etc/hosts"));
    let t = Instant::now();
    let e = read(&r, "/etc/hosts", None).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(e.contains("/etc/hosts is a FIFO: refused"), "{e}");
}

#[test]
fn a_link_to_dev_zero_is_not_read() {
    let (d, _o, r) = setup();
    std::os::unix::fs::symlink("/dev/zero", d.path().join("etc/hosts")).unwrap();
    let e = read(&r, "/etc/hosts", None).unwrap_err();
    assert!(e.contains("symbolic link"), "{e}");
}

#[test]
fn reads_are_bounded() {
    let (d, _o, r) = setup();
    std::fs::write(d.path().join("etc/big"), vec![b'x'; (2 << 20) + 1]).unwrap();
    let e = read_max(&r, "/etc/big", None, 2 << 20).unwrap_err();
    assert!(e.contains("/etc/big is larger than 2 MiB"), "{e}");
    assert_eq!(
        read(&r, "/etc/big", None).unwrap().unwrap().len(),
        (2 << 20) + 1
    );
    assert_eq!(read(&r, "/etc/none", None), Ok(None));
    assert_eq!(read(&r, "/nodir/none", None), Ok(None));
}

#[test]
fn a_linked_directory_is_resolved_inside_the_root() {
    let (d, o, r) = setup();
    std::fs::write(o.path().join("secret"), "outside").unwrap();
    std::fs::create_dir_all(d.path().join("var")).unwrap();
    // ROOT/var/tmp -> OUTSIDE (absolute): seen from the root, that is ROOT/OUTSIDE.
    std::os::unix::fs::symlink(o.path(), d.path().join("var/tmp")).unwrap();
    assert_eq!(read(&r, "/var/tmp/secret", None), Ok(None));
    write(&r, "/var/tmp/new", b"x", 0o644, None, None, true).unwrap();
    assert!(!o.path().join("new").exists(), "written outside the root");
    let inside = d
        .path()
        .join(o.path().strip_prefix("/").unwrap())
        .join("new");
    assert_eq!(std::fs::read(inside).unwrap(), b"x");
    // A relative link climbing out stops at the root.
    std::os::unix::fs::symlink("../../../../../../..", d.path().join("etc/up")).unwrap();
    write(&r, "/etc/up/etc/x", b"y", 0o644, None, None, false).unwrap();
    assert_eq!(std::fs::read(d.path().join("etc/x")).unwrap(), b"y");
}

#[test]
fn in_a_home_no_link_is_followed_but_above_it_the_system_links_are() {
    let (d, o, r) = setup();
    // FreeBSD: /home -> usr/home.
    std::fs::create_dir_all(d.path().join("usr/home/alice/sub")).unwrap();
    std::os::unix::fs::symlink("usr/home", d.path().join("home")).unwrap();
    let home = Some("/home/alice");
    write(&r, "/home/alice/.profile", b"p", 0o644, None, home, false).unwrap();
    assert!(d.path().join("usr/home/alice/.profile").exists());
    // A link anywhere from the home down is refused, not only the file's own directory.
    std::os::unix::fs::symlink(o.path(), d.path().join("usr/home/alice/sub/deep")).unwrap();
    std::fs::create_dir_all(o.path().join("x")).unwrap();
    let e = write(
        &r,
        "/home/alice/sub/deep/x/f",
        b"p",
        0o644,
        None,
        home,
        false,
    )
    .unwrap_err();
    assert!(e.contains("/sub/deep is a symbolic link: refused"), "{e}");
    std::fs::remove_dir_all(d.path().join("usr/home/alice")).unwrap();
    std::os::unix::fs::symlink(o.path(), d.path().join("usr/home/alice")).unwrap();
    let e = read(&r, "/home/alice/.profile", home).unwrap_err();
    assert!(e.contains("alice is a symbolic link: refused"), "{e}");
    let e = mkdir(&r, "/home/alice/.ssh", 0o700, None, home).unwrap_err();
    assert!(e.contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_dir(o.path()).unwrap().count(), 1);
}

#[test]
fn parents_get_explicit_modes_whatever_the_umask() {
    let (d, _o, r) = setup();
    // Creating with a 0700 request and setting the mode after: the umask never matters.
    write(&r, "/a/b/c/f", b"x", 0o640, None, None, true).unwrap();
    for p in ["a", "a/b", "a/b/c"] {
        assert_eq!(file_mode(&d.path().join(p)), 0o755, "{p}");
    }
    assert_eq!(file_mode(&d.path().join("a/b/c/f")), 0o640);
    write(&r, "/var/db/wisp/scripts/s", b"x", 0o700, None, None, true).unwrap();
    assert_eq!(file_mode(&d.path().join("var/db")), 0o755);
    assert_eq!(file_mode(&d.path().join("var/db/wisp")), 0o700);
    assert_eq!(file_mode(&d.path().join("var/db/wisp/scripts")), 0o700);
}

#[test]
fn set_id_bits_survive_the_owner_change() {
    let (d, _o, r) = setup();
    // SAFETY: plain getters.
    let owner = unsafe { (libc::geteuid(), libc::getegid()) };
    write(&r, "/etc/tool", b"x", 0o4755, Some(owner), None, false).unwrap();
    assert_eq!(file_mode(&d.path().join("etc/tool")), 0o4755);
    mkdir(&r, "/etc/shared", 0o2775, Some(owner), None).unwrap();
    assert_eq!(file_mode(&d.path().join("etc/shared")), 0o2775);
    assert_eq!(
        std::fs::metadata(d.path().join("etc/tool")).unwrap().uid(),
        owner.0
    );
}

#[test]
fn a_stale_temp_file_is_removed_not_followed() {
    let (d, o, r) = setup();
    let victim = o.path().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    std::os::unix::fs::symlink(&victim, d.path().join("etc/.motd.wisp-tmp")).unwrap();
    write(&r, "/etc/motd", b"new", 0o644, None, None, false).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    assert_eq!(std::fs::read(d.path().join("etc/motd")).unwrap(), b"new");
    assert!(std::fs::symlink_metadata(d.path().join("etc/.motd.wisp-tmp")).is_err());
    // The same for links.
    std::fs::write(d.path().join("etc/.l.wisp-tmp"), "stale").unwrap();
    symlink(&r, "/etc/l", "motd").unwrap();
    assert_eq!(std::fs::read(d.path().join("etc/l")).unwrap(), b"new");
    let names: Vec<_> = std::fs::read_dir(d.path().join("etc"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_written_file_replaces_a_link_instead_of_writing_through_it() {
    let (d, o, r) = setup();
    let victim = o.path().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    std::os::unix::fs::symlink(&victim, d.path().join("etc/hosts")).unwrap();
    write(&r, "/etc/hosts", b"new", 0o644, None, None, false).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    assert_eq!(mode(&r, "/etc/hosts", None), Ok(Some(0o644)));
}

#[test]
fn listing_stays_in_the_root_and_removing_never_follows_a_link() {
    let (root, outside, r) = setup();
    std::fs::write(outside.path().join("secret_key"), "x").unwrap();
    assert_eq!(list(&r, "/etc/ssh").unwrap(), None);
    // An absolute link is resolved inside the root, not on the host.
    std::fs::create_dir_all(root.path().join("image/ssh")).unwrap();
    std::fs::write(root.path().join("image/ssh/b"), "").unwrap();
    std::fs::write(root.path().join("image/ssh/a"), "").unwrap();
    std::os::unix::fs::symlink("/image/ssh", root.path().join("etc/ssh")).unwrap();
    assert_eq!(
        list(&r, "/etc/ssh").unwrap(),
        Some(vec!["a".to_string(), "b".to_string()])
    );
    // A link to a file outside: the link goes, the file stays.
    std::os::unix::fs::symlink(
        outside.path().join("secret_key"),
        root.path().join("image/ssh/ssh_host_rsa_key"),
    )
    .unwrap();
    remove_file(&r, "/etc/ssh/ssh_host_rsa_key").unwrap();
    assert!(outside.path().join("secret_key").exists());
    assert!(std::fs::symlink_metadata(root.path().join("image/ssh/ssh_host_rsa_key")).is_err());
    // Missing: fine. A directory: an error naming it.
    remove_file(&r, "/etc/ssh/none").unwrap();
    let e = remove_file(&r, "/image").unwrap_err();
    assert!(e.starts_with("/image: "), "{e}");
}

#[test]
fn listing_a_huge_directory_is_refused() {
    let (root, _outside, r) = setup();
    let d = root.path().join("etc/many");
    std::fs::create_dir_all(&d).unwrap();
    for i in 0..=MAX_LIST {
        std::fs::File::create(d.join(format!("f{i}"))).unwrap();
    }
    let e = list(&r, "/etc/many").unwrap_err();
    assert!(e.contains("more than 10000 entries"), "{e}");
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
}

#[test]
fn a_hard_link_or_a_strangers_file_in_a_home_is_not_read() {
    let (d, _o, r) = setup();
    std::fs::write(d.path().join("etc/master.passwd"), "root:$2b$secret:0:0").unwrap();
    let ssh = d.path().join("home/alice/.ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::hard_link(
        d.path().join("etc/master.passwd"),
        ssh.join("authorized_keys"),
    )
    .unwrap();
    let home = Some("/home/alice");
    let e = read(&r, "/home/alice/.ssh/authorized_keys", home).unwrap_err();
    assert!(
        e.contains("authorized_keys has 2 hard links (another file's content): refused"),
        "{e}"
    );
    assert!(!e.contains("secret"), "{e}");
    // A file of another user put in alice's directory: not hers to have wisp read.
    std::fs::remove_file(ssh.join("authorized_keys")).unwrap();
    std::fs::write(ssh.join("authorized_keys"), "ssh-ed25519 AAAA x").unwrap();
    for p in [d.path().join("home/alice"), ssh.clone()] {
        chown(&p, 1001);
    }
    chown(&ssh.join("authorized_keys"), 1002);
    let e = read(&r, "/home/alice/.ssh/authorized_keys", home).unwrap_err();
    assert!(e.contains("owned by uid 1002"), "{e}");
    // Hers (or root's), one link: read.
    chown(&ssh.join("authorized_keys"), 1001);
    assert_eq!(
        read(&r, "/home/alice/.ssh/authorized_keys", home).unwrap(),
        Some(b"ssh-ed25519 AAAA x".to_vec())
    );
    // Outside homes, in root's own directories, hard links are the system's business.
    std::fs::hard_link(d.path().join("etc/master.passwd"), d.path().join("etc/x")).unwrap();
    assert!(read(&r, "/etc/x", None).unwrap().is_some());
    // In a directory anyone may write, the same rule as in a home.
    let tmp = d.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::hard_link(d.path().join("etc/master.passwd"), tmp.join("app.conf")).unwrap();
    let e = read(&r, "/tmp/app.conf", None).unwrap_err();
    assert!(e.contains("hard links"), "{e}");
}

#[test]
fn a_link_in_a_directory_others_own_or_may_write_is_not_followed() {
    let (d, _o, r) = setup();
    let tmp = d.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    // A user's `ln -s /etc /tmp/app` before a deferred write_files of /tmp/app/x.
    std::os::unix::fs::symlink("/etc", tmp.join("app")).unwrap();
    let e = write(&r, "/tmp/app/x", b"x", 0o644, None, None, true).unwrap_err();
    assert!(
        e.contains("/tmp/app is a symbolic link in /tmp, a directory that another user owns or may write: refused"),
        "{e}"
    );
    assert!(!d.path().join("etc/x").exists());
    assert_eq!(
        read(&r, "/tmp/app/passwd", None).map(|_| ()),
        Err(e.clone())
    );
    // The same in a directory another user owns, even when only they may write it.
    let srv = d.path().join("srv/app");
    std::fs::create_dir_all(&srv).unwrap();
    chown(&srv, 1001);
    std::os::unix::fs::symlink("/etc", srv.join("conf")).unwrap();
    let e = mkdir(&r, "/srv/app/conf/sub", 0o755, None, None).unwrap_err();
    assert!(
        e.contains("/srv/app/conf is a symbolic link in /srv/app"),
        "{e}"
    );
    assert!(!d.path().join("etc/sub").exists());
    // The system's links, in root's directories, are followed (FreeBSD's /home).
    std::fs::create_dir_all(d.path().join("usr/home")).unwrap();
    std::os::unix::fs::symlink("usr/home", d.path().join("home")).unwrap();
    write(&r, "/home/f", b"x", 0o644, None, None, false).unwrap();
    assert!(d.path().join("usr/home/f").exists());
}

#[test]
fn a_write_that_a_link_leads_into_wisps_state_is_refused() {
    let (d, _o, r) = setup();
    std::fs::create_dir_all(d.path().join("var/db/wisp")).unwrap();
    std::fs::create_dir_all(d.path().join("etc/wisp")).unwrap();
    std::os::unix::fs::symlink("/var/db/wisp", d.path().join("var/foo")).unwrap();
    std::os::unix::fs::symlink("wisp", d.path().join("etc/w")).unwrap();
    assert_eq!(check_write_target("/var/foo/instance-id"), Ok(()));
    let e = write(
        &r,
        "/var/foo/instance-id",
        b"forged",
        0o644,
        None,
        None,
        true,
    )
    .unwrap_err();
    assert!(
        e.contains("/var/foo/instance-id resolves to /var/db/wisp/instance-id is in wisp's own directory /var/db/wisp: refused"),
        "{e}"
    );
    let e = mkdir(&r, "/etc/w/wisp.yaml.d", 0o755, None, None).unwrap_err();
    assert!(e.contains("wisp's own directory /etc/wisp"), "{e}");
    assert!(!d.path().join("var/db/wisp/instance-id").exists());
    assert!(!d.path().join("etc/wisp/wisp.yaml.d").exists());
    // wisp's own files, by their real path, are written.
    write(
        &r,
        "/var/db/wisp/instance-id",
        b"i-1",
        0o600,
        None,
        None,
        true,
    )
    .unwrap();
}

#[test]
fn a_fifo_that_is_never_read_does_not_block_feeding() {
    let (d, _o, r) = setup();
    std::fs::create_dir_all(d.path().join("dev")).unwrap();
    let fifo = d.path().join("dev/urandom");
    mkfifo(&fifo);
    // A reader that is open but never reads.
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let t = Instant::now();
    let e = feed_device(&r, "/dev/urandom", &vec![7u8; 4 << 20]).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(
        e.contains("/dev/urandom is a FIFO that does not take the data"),
        "{e}"
    );
}
