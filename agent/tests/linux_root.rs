//! A real run on Linux: wisp creates users, groups, keys and sudoers in a throwaway root with
//! shadow-utils (`useradd --root`), then the files are checked. Needs root and shadow-utils, as CI
//! has; elsewhere it says so and returns.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

use mock_maas::roots::have_tool as have;

/// A minimal Linux root: the account files shadow-utils needs and a /home.
fn make_root() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    mock_maas::roots::make_account_root(r).unwrap();
    std::fs::write(r.join("etc/sudoers"), "root ALL=(ALL) ALL\n").unwrap();
    t
}

fn wisp(root: &Path, extra: &[&str], doc: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["--platform", "linux", "--root"])
        .arg(root)
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/no-config.yaml"))
        .args(extra)
        .args(["apply", "--user-data"])
        .arg(doc)
        .output()
        .unwrap()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/users.yaml")
}

fn skip() -> bool {
    if !is_root() || !have("useradd") {
        eprintln!("skipped: needs root and shadow-utils (CI has both)");
        return true;
    }
    false
}

fn line<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.split(':').next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn creates_users_groups_keys_and_sudoers_and_a_rerun_plans_nothing() {
    if skip() {
        return;
    }
    let t = make_root();
    let r = t.path();
    let o = wisp(r, &[], &example());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("result: SUCCESS"), "{out}");

    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    assert!(
        line(&passwd, "operator").contains(":Site Operator:/home/operator:/bin/sh"),
        "{passwd}"
    );
    assert!(line(&passwd, "linux").ends_with(":/home/linux:/bin/sh"));
    assert!(line(&passwd, "app").starts_with("app:x:2001:"));
    let backup: Vec<&str> = line(&passwd, "backup").split(':').collect();
    assert!(
        backup[2].parse::<u32>().unwrap() < 1000,
        "system uid: {backup:?}"
    );
    assert!(
        !r.join("home/backup").exists(),
        "a system user gets no home"
    );

    let group = std::fs::read_to_string(r.join("etc/group")).unwrap();
    assert!(
        line(&group, "wheel").ends_with(":linux,operator"),
        "{group}"
    );
    assert!(line(&group, "admins").ends_with(":operator"));
    assert!(line(&group, "staff").ends_with(":operator"));
    let deploy_gid = line(&group, "deploy").split(':').nth(2).unwrap();
    assert_eq!(
        line(&passwd, "app").split(':').nth(3).unwrap(),
        deploy_gid,
        "primary group"
    );

    let shadow = std::fs::read_to_string(r.join("etc/shadow")).unwrap();
    for u in ["linux", "operator", "backup", "app"] {
        assert!(
            line(&shadow, u).split(':').nth(1).unwrap().starts_with('!'),
            "{u} not locked"
        );
    }

    let uid = |name: &str| {
        line(&passwd, name)
            .split(':')
            .nth(2)
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    let ssh = r.join("home/operator/.ssh");
    let keys = ssh.join("authorized_keys");
    let md = std::fs::metadata(&ssh).unwrap();
    assert_eq!((md.mode() & 0o7777, md.uid()), (0o700, uid("operator")));
    let mk = std::fs::metadata(&keys).unwrap();
    assert_eq!((mk.mode() & 0o7777, mk.uid()), (0o600, uid("operator")));
    assert_eq!(
        std::fs::read_to_string(&keys).unwrap(),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOp3 ops@bastion\n"
    );
    let default_keys = std::fs::read_to_string(r.join("home/linux/.ssh/authorized_keys")).unwrap();
    assert_eq!(
        default_keys,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn0 jane@laptop\n"
    );
    let root_keys = std::fs::read_to_string(r.join("root/.ssh/authorized_keys")).unwrap();
    assert!(root_keys.starts_with("no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command=\"echo 'Please login as the user \\\"linux\\\" rather than the user \\\"root\\\".';echo;sleep 10;exit 142\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn0 jane@laptop"), "{root_keys}");

    let sudoers = r.join("etc/sudoers.d/90-wisp-users");
    assert_eq!(std::fs::metadata(&sudoers).unwrap().mode() & 0o7777, 0o440);
    let rules = std::fs::read_to_string(&sudoers).unwrap();
    assert_eq!(rules, "# Written by wisp from cloud-config.\nlinux ALL=(ALL) NOPASSWD:ALL\noperator ALL=(ALL) NOPASSWD:ALL\n");
    assert!(std::fs::read_to_string(r.join("etc/sudoers"))
        .unwrap()
        .ends_with("@includedir /etc/sudoers.d\n"));
    assert_eq!(
        std::fs::read_to_string(r.join("etc/doas.conf")).unwrap(),
        "# Written by wisp from cloud-config.\npermit nopass app as root cmd /usr/sbin/rcctl\n"
    );

    // The same document again: nothing to do, nothing changed.
    let before = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    let o = wisp(r, &["--dry-run", "--format", "json"], &example());
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["actions"], serde_json::json!([]), "{plan}");
    let o = wisp(r, &[], &example());
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(r.join("etc/passwd")).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read_to_string(&keys).unwrap().lines().count(),
        1,
        "each key once"
    );
}

#[test]
fn a_dot_ssh_symlink_is_refused_and_the_rest_applied() {
    if skip() {
        return;
    }
    let t = make_root();
    let r = t.path();
    // An existing user whose ~/.ssh points at /etc: writing keys there would replace files
    // of the system.
    std::fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nmallory:x:1005:1005::/home/mallory:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(r.join("etc/group"), "root:x:0:\nmallory:x:1005:\n").unwrap();
    std::fs::write(
        r.join("etc/shadow"),
        "root:*:19000:0:99999:7:::\nmallory:!:19000:0:99999:7:::\n",
    )
    .unwrap();
    std::fs::create_dir_all(r.join("home/mallory")).unwrap();
    std::os::unix::fs::symlink(r.join("etc"), r.join("home/mallory/.ssh")).unwrap();
    let doc = r.join("ud.yaml");
    std::fs::write(&doc, "#cloud-config\nusers:\n  - name: mallory\n    ssh_authorized_keys: [ssh-rsa AAAA m@x]\n  - name: honest\n    ssh_authorized_keys: [ssh-rsa BBBB h@x]\n").unwrap();
    let o = wisp(r, &[], &doc);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("error: ssh: mallory: /home/mallory/.ssh is a symbolic link: refused"),
        "{out}"
    );
    assert!(
        !r.join("etc/authorized_keys").exists(),
        "nothing written through the link"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("home/honest/.ssh/authorized_keys")).unwrap(),
        "ssh-rsa BBBB h@x\n"
    );
}

#[test]
fn passwords_go_through_stdin_and_are_never_shown() {
    if skip() || !have("chpasswd") {
        return;
    }
    let t = make_root();
    let r = t.path();
    let hash = "$6$wispsalt$0vYyrNq2O8eJ6t0O8Rq2pJt5l5HmHqZ7q4zP8a1lq6kB2l6oQ4b9Jm3nH1Xy7eJ2u9w3Kx1cV5sD8fG0hJ2kL.";
    let doc = r.join("pw.yaml");
    std::fs::write(
        &doc,
        format!(
            "#cloud-config\nusers:\n  - {{name: pia, hashed_passwd: '{hash}', lock_passwd: false}}\n  - {{name: tex, plain_text_passwd: 'Pl41n-Text-Pw', lock_passwd: false}}\n  - {{name: rnd, lock_passwd: false}}\nchpasswd:\n  expire: false\n  users:\n    - {{name: rnd, type: RANDOM}}\n"
        ),
    )
    .unwrap();
    let o = wisp(r, &["-vv"], &doc);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    let shadow = std::fs::read_to_string(r.join("etc/shadow")).unwrap();
    let field = |u: &str| line(&shadow, u).split(':').nth(1).unwrap().to_string();
    assert_eq!(field("pia"), hash);
    assert!(
        field("tex").starts_with('$') && !field("tex").contains("Pl41n"),
        "{}",
        field("tex")
    );
    assert!(field("rnd").starts_with('$'));
    // The generated password is shown once, on the console; neither secret is in the log.
    let shown: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("random password:"))
        .collect();
    assert_eq!(shown.len(), 1, "{stdout}");
    let random = shown[0].rsplit(' ').next().unwrap();
    assert_eq!(random.len(), 20);
    assert!(
        !stderr.contains(random) && !stderr.contains("Pl41n-Text-Pw"),
        "{stderr}"
    );
    assert!(!stdout.contains("Pl41n-Text-Pw"));
    // A hash already in place is not set again.
    let o = wisp(r, &["--dry-run", "--format", "json"], &doc);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let items: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["item"].as_str().unwrap_or(""))
        .collect();
    assert!(!items.contains(&"pia"), "{plan}");
}

/// Puts the host's /bin/sh and the libraries it needs into the root, so commands can run there.
fn add_shell(r: &Path) {
    let out = Command::new("ldd").arg("/bin/sh").output().unwrap();
    let mut files = vec![PathBuf::from("/bin/sh")];
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(p) = l.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(PathBuf::from(p));
        }
    }
    for f in files {
        let real = std::fs::canonicalize(&f).unwrap();
        let dest = r.join(f.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&real, &dest).unwrap();
    }
    std::fs::create_dir_all(r.join("var/tmp")).unwrap();
}

#[test]
fn commands_scripts_and_boothooks_run_in_the_root_and_failures_are_reported() {
    if skip() || !have("ldd") {
        return;
    }
    let t = make_root();
    let r = t.path();
    add_shell(r);
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus/commands.yaml");
    let o = wisp(r, &[], &doc);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let read =
        |p: &str| std::fs::read_to_string(r.join(p)).unwrap_or_else(|e| panic!("{p}: {e}\n{out}"));
    assert!(
        read("var/tmp/boot").starts_with("booting local-"),
        "INSTANCE_ID is set"
    );
    assert_eq!(read("var/tmp/hook"), "hook\n");
    assert_eq!(
        read("var/tmp/ran"),
        "done\n",
        "runcmd is one script: cd holds"
    );
    assert_eq!(
        read("var/tmp/quoted"),
        "it's $(here)\n",
        "argv items are quoted, not evaluated"
    );
    assert_eq!(read("var/tmp/setup"), "setup\n");
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(r.join("var/db/wisp/scripts/runcmd-runcmd")).unwrap();
    assert_eq!((md.mode() & 0o7777, md.uid()), (0o700, 0));

    // A failing command: reported with its status and output; what comes after still runs.
    let bad = r.join("bad.yaml");
    std::fs::write(&bad, "#cloud-config\nusers: []\nruncmd:\n  - echo about to fail >&2\n  - exit 3\nwrite_files:\n  - {path: /var/tmp/after, content: ok, defer: true}\n").unwrap();
    let o = wisp(r, &[], &bad);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAIL") && out.contains("exit status: 3") && out.contains("about to fail"),
        "{out}"
    );
    assert!(out.contains("result: FAIL"));
    assert_eq!(read("var/tmp/after"), "ok");
}

/// The log says what was done: each command with its argv, each file with its path, mode and
/// owner, each directory; never a password, never a file's content.
#[test]
fn the_log_lists_every_action_and_no_secret() {
    if skip() || !have("chpasswd") {
        return;
    }
    let t = make_root();
    let r = t.path();
    let doc = r.join("log.yaml");
    std::fs::write(
        &doc,
        "#cloud-config\nusers:\n  - name: lena\n    plain_text_passwd: 'Pl41n-Log-S3cret'\n    lock_passwd: false\n    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOp3 lena@host]\nwrite_files:\n  - {path: /etc/motd.d/wisp, content: 'F1le-C0ntent-S3cret', permissions: '0640'}\n",
    )
    .unwrap();
    let o = wisp(r, &[], &doc);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let root = r.display();
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    let gid = line(&passwd, "lena").split(':').nth(3).unwrap().to_string();
    let group = std::fs::read_to_string(r.join("etc/group")).unwrap();
    let gid = group
        .lines()
        .find(|l| l.split(':').nth(2) == Some(gid.as_str()))
        .map(|l| l.split(':').next().unwrap().to_string())
        .unwrap_or(gid);
    for want in [
        format!("INFO users_groups: ran useradd --root {root} --create-home lena"),
        format!("INFO set_passwords: ran chpasswd --root {root}"),
        // The login group by name, or by number when /etc/group has none (this root has no
        // login.defs: useradd gives gid 100).
        format!("INFO ssh: made directory /home/lena/.ssh (mode 0700, owner lena:{gid})"),
        format!(
            "INFO ssh: wrote /home/lena/.ssh/authorized_keys (51 bytes, mode 0600, owner lena:{gid})"
        ),
        "INFO write_files: wrote /etc/motd.d/wisp (19 bytes, mode 0640, owner root:root)"
            .to_string(),
    ] {
        assert!(stderr.contains(&want), "no {want:?} in\n{stderr}");
    }
    for secret in ["Pl41n-Log-S3cret", "F1le-C0ntent-S3cret"] {
        assert!(!stderr.contains(secret), "{secret} in the log:\n{stderr}");
    }
}
