//! `wisp apply --root FAKE` against a root built to mislead it: links to directories outside
//! the root, FIFOs and `/dev/zero` where files are read, homes in system directories, rules
//! with line breaks, set-id modes, a relative root, a temp file a crash left, all under
//! `umask 000`. Each run has a time and memory limit: a wisp that blocks or reads without end
//! fails the test instead of hanging it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

/// The wisp under test (`WISP_TEST_BIN` runs the same tests against another build, e.g. one
/// from before a fix, to see them fail).
fn wisp_bin() -> String {
    std::env::var("WISP_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_wisp").to_string())
}

struct Run {
    code: Option<i32>,
    out: String,
}

/// `wisp --platform P FLAGS --root ROOT_ARG apply --user-data DOC` in `cwd`, under `umask 000`
/// and a 3 GiB address-space limit, killed after 30 s.
fn wisp_in(cwd: &Path, root_arg: &Path, platform: &str, flags: &[&str], doc: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let ud = dir.path().join("user-data");
    std::fs::write(&ud, doc).unwrap();
    let out_file = dir.path().join("out");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 3145728 && umask 000 && exec \"$0\" \"$@\"")
        .arg(wisp_bin())
        .args(["--platform", platform])
        .args(flags)
        .arg("--root")
        .arg(root_arg)
        .arg("--config")
        .arg(common::manifest_path("tests/fixtures/no-config.yaml"))
        .args(["apply", "--user-data"])
        .arg(&ud)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wisp did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = std::fs::read_to_string(&out_file).unwrap();
    out.push_str(&std::fs::read_to_string(dir.path().join("err")).unwrap());
    Run {
        code: status.code(),
        out,
    }
}

fn wisp(root: &Path, doc: &str) -> Run {
    wisp_in(root, root, "freebsd", &[], doc)
}

/// A fresh root with an existing user alice (so no account tool runs) and her home.
fn root() -> tempfile::TempDir {
    let t = common::fresh_root();
    let r = t.path();
    std::fs::write(
        r.join("etc/passwd"),
        "root:*:0:0:Charlie &:/root:/bin/sh\nalice:*:1001:1001::/home/alice:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        r.join("etc/master.passwd"),
        "alice:*:1001:1001::0:0::/home/alice:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(r.join("etc/group"), "wheel:*:0:root\nalice:*:1001:\n").unwrap();
    std::fs::create_dir_all(r.join("home/alice")).unwrap();
    t
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "{}",
        p.display()
    );
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[test]
fn linked_directories_never_lead_out_of_the_root() {
    let t = root();
    let r = t.path();
    let outside = tempfile::tempdir().unwrap();
    let o = outside.path();
    std::fs::create_dir_all(o.join("alice")).unwrap();
    // ROOT/usr/local/etc/sudoers.d, ROOT/var/tmp and ROOT/home all point outside.
    std::fs::create_dir_all(r.join("usr/local/etc")).unwrap();
    std::fs::write(r.join("usr/local/etc/sudoers"), "root ALL=(ALL) ALL\n").unwrap();
    std::os::unix::fs::symlink(o, r.join("usr/local/etc/sudoers.d")).unwrap();
    std::fs::create_dir_all(r.join("var")).unwrap();
    std::os::unix::fs::symlink(o, r.join("var/tmp")).unwrap();
    std::fs::remove_dir_all(r.join("home")).unwrap();
    std::os::unix::fs::symlink(o, r.join("home")).unwrap();
    let run = wisp(
        r,
        "#cloud-config\nusers:\n  - name: alice\n    lock_passwd: false\n    sudo: 'ALL=(ALL) NOPASSWD:ALL'\n    ssh_authorized_keys: [ssh-ed25519 AAAA a@x]\nwrite_files:\n  - {path: /var/tmp/x, content: x}\n",
    );
    assert_eq!(
        entries(o),
        vec![o.join("alice")],
        "written outside the root:\n{}",
        run.out
    );
    assert!(entries(&o.join("alice")).is_empty(), "{}", run.out);
    // As the target system sees them, the links lead inside the root: the rules and the file
    // are there; alice's home (ROOT/OUTSIDE/alice) did not exist there, so it was made there
    // as a missing home, her keys in it.
    let inside = r.join(o.strip_prefix("/").unwrap());
    assert!(inside.join("90-wisp-users").exists(), "{}", run.out);
    assert!(inside.join("x").exists(), "{}", run.out);
    assert!(
        inside.join("alice/.ssh/authorized_keys").exists(),
        "{}",
        run.out
    );
}

#[test]
fn fifos_are_refused_without_blocking_and_the_rest_is_applied() {
    let t = root();
    let r = t.path();
    std::fs::create_dir_all(r.join("home/alice/.ssh")).unwrap();
    mkfifo(&r.join("home/alice/.ssh/authorized_keys"));
    mkfifo(&r.join("etc/pipe"));
    let run = wisp(
        r,
        "#cloud-config\nusers:\n  - name: alice\n    lock_passwd: false\n    ssh_authorized_keys: [ssh-ed25519 AAAA a@x]\nwrite_files:\n  - {path: /etc/pipe, content: x, append: true}\n  - {path: /etc/pipe2, content: y}\n",
    );
    assert!(
        run.out
            .contains("error: ssh: alice: /home/alice/.ssh/authorized_keys is a FIFO: refused"),
        "{}",
        run.out
    );
    assert!(
        run.out
            .contains("error: write_files: /etc/pipe: /etc/pipe is a FIFO: refused"),
        "{}",
        run.out
    );
    assert_eq!(std::fs::read(r.join("etc/pipe2")).unwrap(), b"y");
    assert_eq!(run.code, Some(2), "{}", run.out);
}

#[test]
fn planned_content_is_never_read_through_a_link() {
    let t = root();
    let r = t.path();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "TOP SECRET\n").unwrap();
    std::fs::remove_file(r.join("etc/hosts")).unwrap();
    std::os::unix::fs::symlink(&secret, r.join("etc/hosts")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", r.join("etc/zero")).unwrap();
    std::os::unix::fs::symlink(&secret, r.join("home/alice/.profile")).unwrap();
    std::fs::write(r.join("etc/big"), vec![b'#'; 9 << 20]).unwrap();
    let run = wisp(
        r,
        "#cloud-config\nusers:\n  - name: alice\n    lock_passwd: false\nhostname: web1\nmanage_etc_hosts: true\nwrite_files:\n  - {path: /etc/zero, content: z, append: true}\n  - {path: /home/alice/.profile, content: 'export A=1', append: true, owner: 'alice:alice'}\n  - {path: /etc/big, content: b, append: true}\n  - {path: /etc/motd, content: hi}\n",
    );
    let out = &run.out;
    assert!(
        out.contains("error: write_files: /etc/big: /etc/big is larger than 8 MiB: refused"),
        "{out}"
    );
    assert_eq!(std::fs::metadata(r.join("etc/big")).unwrap().len(), 9 << 20);
    assert!(
        out.contains(
            "error: hostname: /etc/hosts: not changed: /etc/hosts is a symbolic link: refused"
        ),
        "{out}"
    );
    assert!(
        out.contains("error: write_files: /etc/zero: /etc/zero is a symbolic link: refused"),
        "{out}"
    );
    assert!(
        out.contains("error: write_files: /home/alice/.profile: /home/alice/.profile is a symbolic link: refused"),
        "{out}"
    );
    for p in ["etc/hosts", "etc/zero", "home/alice/.profile"] {
        assert!(
            std::fs::symlink_metadata(r.join(p))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{p} replaced by a copy"
        );
    }
    assert_eq!(std::fs::read(r.join("etc/motd")).unwrap(), b"hi");
}

#[test]
fn homes_and_files_in_system_or_state_directories_are_refused() {
    let t = root();
    let r = t.path();
    let doc = "#cloud-config\nusers:\n  - {name: bob, homedir: /var/db/wisp}\n  - {name: carol, homedir: /home/../etc, ssh_authorized_keys: [ssh-ed25519 AAAA c@x]}\n  - {name: dave, homedir: /}\n  - {name: erin, homedir: /usr/home/erin}\nwrite_files:\n  - {path: /var/db/wisp/instance-id, content: forged}\n  - {path: /etc/wisp/wisp.yaml, content: 'datasource_list: [None]'}\n  - {path: /etc/motd, content: hi}\n";
    let run = wisp_in(r, r, "freebsd", &["--dry-run", "--format", "json"], doc);
    let plan: serde_json::Value =
        serde_json::from_str(&run.out[..run.out.rfind('}').map_or(0, |i| i + 1)])
            .unwrap_or_else(|e| panic!("{e}: {}", run.out));
    let errors: Vec<String> = plan["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}: {}: {}", e["module"], e["item"], e["reason"]))
        .collect();
    let has = |what: &str| errors.iter().any(|e| e.contains(what));
    assert!(has("\"users_groups\": \"bob\": \"not applied: homedir: home /var/db/wisp is in the system directory /var/db/wisp: refused\""), "{errors:#?}");
    assert!(has("\"users_groups\": \"carol\": \"not applied: homedir: home /etc is in the system directory /etc: refused\""), "{errors:#?}");
    assert!(has("\"users_groups\": \"dave\": \"not applied: homedir: home / is a system directory: refused\""), "{errors:#?}");
    assert!(has("\"write_files\": \"/var/db/wisp/instance-id\": \"/var/db/wisp/instance-id is in wisp's own directory /var/db/wisp: refused\""), "{errors:#?}");
    assert!(
        has("\"write_files\": \"/etc/wisp/wisp.yaml\""),
        "{errors:#?}"
    );
    let actions = plan["actions"].to_string();
    for bad in [
        "bob",
        "carol",
        "dave",
        "/var/db/wisp/",
        "/etc/wisp/",
        "/etc/.ssh",
    ] {
        assert!(!actions.contains(bad), "{bad} planned: {actions}");
    }
    // /usr/home is where FreeBSD's homes are; /etc is fine for write_files.
    assert!(actions.contains("erin"), "{actions}");
    assert!(actions.contains("/etc/motd"), "{actions}");
}

#[test]
fn a_line_break_in_a_rule_is_refused_and_the_other_rules_apply() {
    let t = root();
    let r = t.path();
    std::fs::create_dir_all(r.join("usr/local/etc")).unwrap();
    std::fs::write(r.join("usr/local/etc/sudoers"), "root ALL=(ALL) ALL\n").unwrap();
    let run = wisp(
        r,
        "#cloud-config\nusers:\n  - name: alice\n    lock_passwd: false\n    sudo: [\"ALL=(ALL) /bin/ls\\nALL ALL=(ALL) NOPASSWD: ALL\", \"ALL=(ALL) /bin/date\"]\n    doas: [\"permit alice as root cmd /bin/ls\\npermit nopass :staff\", \"permit alice cmd /bin/date\"]\n",
    );
    let out = &run.out;
    assert!(out.contains("error: users_groups: alice: sudo rule \"ALL=(ALL) /bin/ls\\nALL ALL=(ALL) NOPASSWD: ALL\" refused: it contains the control character '\\n'"), "{out}");
    assert!(
        out.contains("error: users_groups: alice: doas rule"),
        "{out}"
    );
    let sudo = std::fs::read_to_string(r.join("usr/local/etc/sudoers.d/90-wisp-users")).unwrap();
    assert!(sudo.contains("alice ALL=(ALL) /bin/date\n"), "{sudo}");
    assert!(!sudo.contains("ALL ALL="), "{sudo}");
    let doas = std::fs::read_to_string(r.join("usr/local/etc/doas.conf")).unwrap();
    assert!(doas.contains("permit alice cmd /bin/date\n"), "{doas}");
    assert!(!doas.contains("nopass"), "{doas}");
}

#[test]
fn directories_wisp_makes_have_exact_modes_whatever_the_umask() {
    let t = root();
    let r = t.path();
    // The runs are under umask 000.
    std::fs::create_dir_all(r.join("usr/local/etc")).unwrap();
    std::fs::write(r.join("usr/local/etc/sudoers"), "root ALL=(ALL) ALL\n").unwrap();
    let run = wisp(
        r,
        "#cloud-config\nusers:\n  - name: alice\n    lock_passwd: false\n    sudo: 'ALL=(ALL) ALL'\nwrite_files:\n  - {path: /opt/a/b/f, content: x, permissions: '0640'}\n",
    );
    assert_eq!(run.code, Some(0), "{}", run.out);
    for d in ["opt", "opt/a", "opt/a/b", "usr/local/etc/sudoers.d"] {
        assert_eq!(mode(&r.join(d)), 0o755, "{d}");
    }
    assert_eq!(mode(&r.join("opt/a/b/f")), 0o640);
    assert_eq!(
        mode(&r.join("usr/local/etc/sudoers.d/90-wisp-users")),
        0o440
    );
}

#[test]
fn set_id_bits_survive_the_owner_change() {
    let t = root();
    let r = t.path();
    let run = wisp(
        r,
        "#cloud-config\nusers: []\nwrite_files:\n  - {path: /opt/tool, content: x, permissions: '4755', owner: 'root:wheel'}\n  - {path: /opt/shared, content: x, permissions: '2750', owner: 'alice:alice'}\n",
    );
    assert_eq!(run.code, Some(0), "{}", run.out);
    assert_eq!(mode(&r.join("opt/tool")), 0o4755);
    assert_eq!(mode(&r.join("opt/shared")), 0o2750);
}

#[test]
fn a_relative_root_is_made_absolute() {
    let t = root();
    let r = t.path();
    let parent = r.parent().unwrap();
    let rel = Path::new(r.file_name().unwrap());
    // Linux's tools take the root as an argument: it must be absolute.
    let run = wisp_in(
        parent,
        rel,
        "linux",
        &["--dry-run", "--format", "json"],
        "#cloud-config\nusers: [{name: frank}]\n",
    );
    let plan: serde_json::Value =
        serde_json::from_str(&run.out[..run.out.rfind('}').map_or(0, |i| i + 1)])
            .unwrap_or_else(|e| panic!("{e}: {}", run.out));
    let abs = std::fs::canonicalize(r).unwrap().display().to_string();
    let argv = plan["actions"][0]["argv"].to_string();
    assert!(argv.contains(&format!("\"--root\",\"{abs}\"")), "{argv}");
    let missing = wisp_in(
        parent,
        Path::new("no-such-root"),
        "linux",
        &[],
        "#cloud-config\n",
    );
    assert_eq!(missing.code, Some(1));
    assert!(
        missing
            .out
            .contains("error: --root no-such-root: No such file or directory"),
        "{}",
        missing.out
    );
}

#[test]
fn a_temp_file_a_crash_left_is_removed_not_followed() {
    let t = root();
    let r = t.path();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    std::os::unix::fs::symlink(&victim, r.join("etc/.motd.wisp-tmp")).unwrap();
    std::fs::create_dir_all(r.join("home/alice/.ssh")).unwrap();
    std::fs::write(r.join("home/alice/.ssh/.authorized_keys.wisp-tmp"), "stale").unwrap();
    let run = wisp(
        r,
        "#cloud-config\nusers:\n  - name: alice\n    lock_passwd: false\n    ssh_authorized_keys: [ssh-ed25519 AAAA a@x]\nwrite_files:\n  - {path: /etc/motd, content: hi}\n",
    );
    assert_eq!(run.code, Some(0), "{}", run.out);
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    assert_eq!(std::fs::read(r.join("etc/motd")).unwrap(), b"hi");
    let left: Vec<PathBuf> = entries(&r.join("etc"))
        .into_iter()
        .chain(entries(&r.join("home/alice/.ssh")))
        .filter(|p| p.to_string_lossy().contains("wisp-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_rule_that_would_join_or_comment_lines_is_refused_and_the_other_rules_apply() {
    let t = root();
    let r = t.path();
    std::fs::create_dir_all(r.join("usr/local/etc")).unwrap();
    std::fs::write(r.join("usr/local/etc/sudoers"), "root ALL=(ALL) ALL\n").unwrap();
    let run = wisp(
        r,
        "#cloud-config\nusers:\n  - name: alice\n    lock_passwd: false\n    sudo: [\"ALL=(ALL) /bin/ls \\\\\", \"ALL=(ALL) /bin/date\"]\n    doas: [\"permit alice cmd /bin/ls \\\\ \", \"# permit nopass alice\", \"permit alice cmd \\\"/bin/x\", \"permit alice cmd /bin/date\"]\n",
    );
    let out = &run.out;
    for refused in [
        "sudo rule \"ALL=(ALL) /bin/ls \\\\\" refused: it ends in a backslash",
        "doas rule \"permit alice cmd /bin/ls \\\\ \" refused: it ends in a backslash",
        "doas rule \"# permit nopass alice\" refused: it starts with #",
        "doas rule \"permit alice cmd \\\"/bin/x\" refused: its double quote is not closed",
    ] {
        assert!(
            out.contains(&format!("error: users_groups: alice: {refused}")),
            "{refused}\n{out}"
        );
    }
    let sudo = std::fs::read_to_string(r.join("usr/local/etc/sudoers.d/90-wisp-users")).unwrap();
    let rules = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect()
    };
    assert_eq!(rules(&sudo), ["alice ALL=(ALL) /bin/date"]);
    let doas = std::fs::read_to_string(r.join("usr/local/etc/doas.conf")).unwrap();
    assert_eq!(rules(&doas), ["permit alice cmd /bin/date"]);
}

#[test]
fn a_hard_linked_authorized_keys_is_refused_and_the_rest_is_applied() {
    let t = root();
    let r = t.path();
    let ssh = r.join("home/alice/.ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    // `ln /etc/master.passwd ~/.ssh/authorized_keys` by alice.
    std::fs::hard_link(r.join("etc/master.passwd"), ssh.join("authorized_keys")).unwrap();
    let run = wisp(
        r,
        "#cloud-config\nusers:\n  - name: alice\n    lock_passwd: false\n    ssh_authorized_keys: [ssh-ed25519 AAAA a@x]\nwrite_files:\n  - {path: /etc/motd, content: hi}\n",
    );
    assert!(
        run.out.contains(
            "error: ssh: alice: /home/alice/.ssh/authorized_keys has 2 hard links (another file's content): refused"
        ),
        "{}",
        run.out
    );
    // Neither read into her file nor replaced: the account file is as it was.
    assert_eq!(
        std::fs::read_to_string(ssh.join("authorized_keys")).unwrap(),
        "alice:*:1001:1001::0:0::/home/alice:/bin/sh\n"
    );
    assert_eq!(std::fs::read(r.join("etc/motd")).unwrap(), b"hi");
    assert_eq!(run.code, Some(2), "{}", run.out);
}

#[test]
fn a_system_accounts_home_is_an_ordinary_directory_for_write_files() {
    let t = root();
    let r = t.path();
    // OpenBSD's www (uid 67, home /var/www): write_files makes the missing parents there as
    // anywhere else; alice's home stays hers (no parent made in it).
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    std::fs::write(
        r.join("etc/passwd"),
        format!("{passwd}www:*:67:67:HTTP Server:/var/www:/sbin/nologin\n"),
    )
    .unwrap();
    std::fs::create_dir_all(r.join("var/www")).unwrap();
    let run = wisp(
        r,
        "#cloud-config\nwrite_files:\n  - {path: /var/www/htdocs/new/index.html, content: hello}\n  - {path: /home/alice/new/f, content: x}\n",
    );
    assert_eq!(
        std::fs::read(r.join("var/www/htdocs/new/index.html")).unwrap(),
        b"hello",
        "{}",
        run.out
    );
    assert!(
        run.out
            .contains("/home/alice/new/f: its directory does not exist"),
        "{}",
        run.out
    );
}
