//! SSH host keys per machine: an image's keys are deleted on a new instance and kept on a
//! reboot of the same one; `ssh_keys` installs given keys with their modes; bad entries are
//! named errors and never show a private key; the fingerprints reach the console.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

mod common;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(common::manifest_path(&format!(
        "tests/fixtures/host-keys/{name}"
    )))
    .unwrap()
}

/// A fresh root whose image carries host keys (the test keys) and an sshd_config.
fn image_root() -> tempfile::TempDir {
    let t = common::fresh_root();
    let ssh = t.path().join("etc/ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    for f in [
        "ssh_host_rsa_key",
        "ssh_host_rsa_key.pub",
        "ssh_host_ed25519_key",
        "ssh_host_ed25519_key.pub",
        "ssh_host_ed25519_key-cert.pub",
    ] {
        std::fs::write(ssh.join(f), fixture(f)).unwrap();
    }
    std::fs::write(ssh.join("sshd_config"), "Port 22\n").unwrap();
    t
}

fn run(platform: &str, root: &Path, doc: &str, id: &str, flags: &[&str]) -> Output {
    let path = root.join("user-data");
    // No users: the account tools of the BSDs are not here.
    let doc = doc.replacen("#cloud-config\n", "#cloud-config\nusers: []\n", 1);
    std::fs::write(&path, doc).unwrap();
    Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["--platform", platform, "--root"])
        .arg(root)
        .args(flags)
        .arg("--config")
        .arg(common::manifest_path("tests/fixtures/no-config.yaml"))
        .args(["apply", "--user-data"])
        .arg(&path)
        .args(["--instance-id", id])
        .output()
        .unwrap()
}

fn host_key_files(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("etc/ssh"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ssh_host_"))
        .collect();
    v.sort();
    v
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn image_keys_are_deleted_once_per_instance() {
    let t = image_root();
    let r = t.path();
    let doc = "#cloud-config\nhostname: web1\n";
    // A dry run changes nothing, and says what it would remove.
    let o = run("netbsd", r, doc, "i-1", &["--dry-run"]);
    assert!(
        text(&o).contains("rm -f /etc/ssh/ssh_host_rsa_key"),
        "{}",
        text(&o)
    );
    assert_eq!(host_key_files(r).len(), 5);
    // A new instance: the image's keys go (NetBSD's rc.d/sshd makes new ones when it starts).
    let o = run("netbsd", r, doc, "i-1", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(host_key_files(r), Vec::<String>::new());
    assert_eq!(
        std::fs::read_to_string(r.join("etc/ssh/sshd_config")).unwrap(),
        "Port 22\n"
    );
    // sshd made this machine's keys; a reboot of the same instance keeps them.
    std::fs::write(
        r.join("etc/ssh/ssh_host_ed25519_key.pub"),
        fixture("ssh_host_ed25519_key.pub"),
    )
    .unwrap();
    let o = run("netbsd", r, doc, "i-1", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(host_key_files(r), ["ssh_host_ed25519_key.pub"]);
    // Redeployed: a new instance gets new keys again.
    let o = run("netbsd", r, doc, "i-2", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(host_key_files(r), Vec::<String>::new());
}

#[test]
fn ssh_deletekeys_false_keeps_the_image_keys() {
    let t = image_root();
    let o = run(
        "freebsd",
        t.path(),
        "#cloud-config\nssh_deletekeys: false\n",
        "i-1",
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(host_key_files(t.path()).len(), 5);
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

#[test]
fn given_host_keys_are_installed_with_their_modes() {
    let t = common::fresh_root();
    let r = t.path();
    let rsa = fixture("ssh_host_rsa_key");
    let ed = fixture("ssh_host_ed25519_key");
    let doc = format!(
        "#cloud-config\nssh_keys:\n  rsa_private: |\n{}  rsa_public: {}  ed25519_private: |\n{}  ed25519_certificate: {}",
        indent(&rsa),
        fixture("ssh_host_rsa_key.pub"),
        indent(&ed),
        fixture("ssh_host_ed25519_key-cert.pub"),
    );
    let o = run("openbsd", r, &doc, "i-1", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ssh = r.join("etc/ssh");
    assert_eq!(
        std::fs::read_to_string(ssh.join("ssh_host_rsa_key")).unwrap(),
        rsa
    );
    assert_eq!(mode(&ssh.join("ssh_host_rsa_key")), 0o600);
    assert_eq!(mode(&ssh.join("ssh_host_ed25519_key")), 0o600);
    assert_eq!(mode(&ssh.join("ssh_host_rsa_key.pub")), 0o644);
    assert_eq!(mode(&ssh.join("ssh_host_ed25519_key-cert.pub")), 0o644);
    // The public half of an OpenSSH private key given alone is taken from it.
    let derived = std::fs::read_to_string(ssh.join("ssh_host_ed25519_key.pub")).unwrap();
    assert_eq!(
        derived.split_whitespace().take(2).collect::<Vec<_>>(),
        fixture("ssh_host_ed25519_key.pub")
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
    );
    // sshd presents the certificate.
    assert_eq!(
        std::fs::read_to_string(ssh.join("sshd_config")).unwrap(),
        "HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub\n"
    );
    // Given keys: nothing generated, and no private key in the output or the log.
    let out = text(&o);
    assert!(!out.contains("ssh-keygen"), "{out}");
    let secret_line = ed.lines().nth(1).unwrap();
    assert!(!out.contains(secret_line), "{out}");
    let log = std::fs::read_to_string(r.join("var/log/wisp.log")).unwrap_or_default();
    assert!(!log.contains(secret_line));
    // The fingerprints of the installed keys are shown.
    assert!(
        out.contains("-----BEGIN SSH HOST KEY FINGERPRINTS-----"),
        "{out}"
    );
    assert!(out.contains(fixture("rsa.fp").trim()), "{out}");
}

#[test]
fn bad_ssh_keys_entries_are_named_and_the_rest_applied() {
    let t = common::fresh_root();
    let r = t.path();
    let ed = fixture("ssh_host_ed25519_key");
    let doc = format!(
        "#cloud-config\nssh_keys:\n  foo_private: |\n{}  rsa_private: 'hunter2 not a key'\n  dsa_public: ssh-dss AAAA\n  ed25519_private: |\n{}",
        indent(&ed),
        indent(&ed),
    );
    let o = run("netbsd", r, &doc, "i-1", &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("ssh_keys.foo_private"), "{out}");
    assert!(out.contains("unknown host key entry"), "{out}");
    assert!(out.contains("ssh_keys.rsa_private"), "{out}");
    assert!(
        out.contains("not a private key in PEM or OpenSSH form"),
        "{out}"
    );
    assert!(out.contains("ssh_keys.dsa_public"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
    assert!(r.join("etc/ssh/ssh_host_ed25519_key").exists());
    assert!(!r.join("etc/ssh/ssh_host_rsa_key").exists());
}

#[test]
fn ssh_genkeytypes_makes_keys_where_the_os_does_not() {
    let t = common::fresh_root();
    std::fs::create_dir_all(t.path().join("etc/ssh")).unwrap();
    let o = run(
        "openbsd",
        t.path(),
        "#cloud-config\nssh_genkeytypes: [ed25519, foo]\n",
        "i-1",
        &["--dry-run", "--format", "json"],
    );
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let argvs: Vec<&serde_json::Value> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["module"] == "ssh_host_keys")
        .map(|a| &a["argv"])
        .collect();
    let root = t.path().display().to_string();
    assert_eq!(
        argvs,
        [&serde_json::json!([
            "chroot",
            root,
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            "/etc/ssh/ssh_host_ed25519_key"
        ])]
    );
    assert!(text(&o).contains("ssh_genkeytypes[1]"), "{}", text(&o));
    // NetBSD's rc.d/sshd makes them: nothing planned but a note.
    let o = run(
        "netbsd",
        t.path(),
        "#cloud-config\nssh_genkeytypes: [ed25519]\n",
        "i-1",
        &["--dry-run"],
    );
    assert!(!text(&o).contains("ssh-keygen"), "{}", text(&o));
}

#[test]
fn generated_keys_are_fingerprinted_like_ssh_keygen() {
    if Command::new("ssh-keygen").arg("-?").output().is_err() {
        eprintln!("skipped: no ssh-keygen");
        return;
    }
    let t = common::fresh_root();
    let r = t.path();
    std::fs::create_dir_all(r.join("etc/ssh")).unwrap();
    let doc =
        "#cloud-config\nssh_genkeytypes: [ed25519]\nssh_key_console_blacklist: [ssh-ed25519]\n";
    let o = run("linux", r, doc, "i-1", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let key = r.join("etc/ssh/ssh_host_ed25519_key");
    assert_eq!(mode(&key), 0o600);
    // `wisp apply` plans every stage at once: the keys made are shown by the next run.
    let o = run(
        "linux",
        r,
        "#cloud-config\nssh_deletekeys: false\nssh_key_console_blacklist: [ssh-ed25519]\n",
        "i-3",
        &[],
    );
    let out = text(&o);
    let want = Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(r.join("etc/ssh/ssh_host_ed25519_key.pub"))
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&want.stdout).trim().to_string();
    assert!(!want.is_empty());
    assert!(out.contains(&want), "{want}\n{out}");
    // The key itself is left out (blacklisted), its fingerprint is not.
    let public = std::fs::read_to_string(r.join("etc/ssh/ssh_host_ed25519_key.pub")).unwrap();
    let blob = public.split_whitespace().nth(1).unwrap();
    assert!(!out.contains(blob), "{out}");
    // no_ssh_fingerprints: nothing shown.
    let o = run(
        "linux",
        r,
        "#cloud-config\nssh_deletekeys: false\nno_ssh_fingerprints: true\n",
        "i-4",
        &[],
    );
    assert!(!text(&o).contains("FINGERPRINTS"), "{}", text(&o));
}

#[test]
fn keys_are_made_when_every_given_entry_was_refused() {
    let t = image_root();
    let o = run(
        "openbsd",
        t.path(),
        "#cloud-config\nssh_keys:\n  rsa_private: not a key\nssh_genkeytypes: [ed25519]\n",
        "i-1",
        &["--dry-run"],
    );
    let out = text(&o);
    assert!(out.contains("ssh_keys.rsa_private"), "{out}");
    assert!(out.contains("rm -f /etc/ssh/ssh_host_rsa_key"), "{out}");
    assert!(
        out.contains("ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key"),
        "{out}"
    );
}

/// `wisp apply` without `--instance-id`, as someone trying a document on a live system.
fn trial(root: &Path, doc: &str, flags: &[&str]) -> Output {
    let path = root.join("user-data");
    std::fs::write(&path, doc).unwrap();
    Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["--platform", "netbsd", "--root"])
        .arg(root)
        .args(flags)
        .arg("--config")
        .arg(common::manifest_path("tests/fixtures/no-config.yaml"))
        .args(["apply", "--user-data"])
        .arg(&path)
        .output()
        .unwrap()
}

#[test]
fn a_trial_apply_keeps_the_host_keys_and_plans_nothing_the_second_time() {
    let t = image_root();
    let r = t.path();
    let doc = "#cloud-config\nusers: []\nhostname: web1\n";
    let o = trial(r, doc, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(host_key_files(r).len(), 5, "{}", text(&o));
    let o = trial(r, doc, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The second plan is empty.
    let o = trial(r, doc, &["--dry-run"]);
    assert!(text(&o).contains("nothing to do"), "{}", text(&o));
    assert_eq!(host_key_files(r).len(), 5);
    // Named, the deletion is done.
    let o = trial(r, "#cloud-config\nusers: []\nssh_deletekeys: true\n", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(host_key_files(r), Vec::<String>::new());
}

/// A machine deployed by a wisp that had no ssh_host_keys module: its state knows the
/// instance (id and results), and has no marker for the module.
fn deployed_by_an_older_wisp(root: &Path, id: &str) {
    let state = root.join("var/db/wisp");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("instance-id"), format!("{id}\n")).unwrap();
    std::fs::write(
        state.join("results.json"),
        format!("{{\"instance_id\": \"{id}\", \"result\": \"SUCCESS\"}}"),
    )
    .unwrap();
}

#[test]
fn an_upgrade_keeps_the_host_keys_of_a_known_instance() {
    let t = image_root();
    let r = t.path();
    deployed_by_an_older_wisp(r, "i-1");
    let doc = "#cloud-config\nhostname: web1\n";
    let o = run("netbsd", r, doc, "i-1", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(host_key_files(r).len(), 5, "{}", text(&o));
    // Settled for this instance: a second run has nothing of it to do.
    assert!(r.join("var/db/wisp/sem.ssh_host_keys.json").exists());
    // Redeployed: a new instance gets new keys.
    let o = run("netbsd", r, doc, "i-2", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(host_key_files(r), Vec::<String>::new());
}

/// A directory named like a key is not a key: left alone, and the module does not fail (a
/// failed module runs again at the next boot, and would delete the new keys).
#[test]
fn a_directory_named_like_a_key_is_left_alone() {
    let t = image_root();
    let r = t.path();
    std::fs::create_dir(r.join("etc/ssh/ssh_host_keys.d")).unwrap();
    let o = run("netbsd", r, "#cloud-config\nhostname: web1\n", "i-1", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(host_key_files(r), ["ssh_host_keys.d"]);
    assert!(r.join("var/db/wisp/sem.ssh_host_keys.json").exists());
}

/// When the module was left undone for an instance whose run finished (a later action of it
/// failed), the next run does not delete the keys sshd made since: on a known instance the
/// module is settled without running, as cloud-init runs a module once per instance.
#[test]
fn keys_are_deleted_once_even_when_the_module_runs_again() {
    let t = image_root();
    let r = t.path();
    let doc = "#cloud-config\nhostname: web1\n";
    let o = run("netbsd", r, doc, "i-1", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(host_key_files(r), Vec::<String>::new());
    // As if a later action had failed: the module is not marked done. sshd made new keys.
    std::fs::remove_file(r.join("var/db/wisp/sem.ssh_host_keys.json")).unwrap();
    std::fs::write(
        r.join("etc/ssh/ssh_host_ed25519_key.pub"),
        fixture("ssh_host_ed25519_key.pub"),
    )
    .unwrap();
    let o = run("netbsd", r, doc, "i-1", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(host_key_files(r), ["ssh_host_ed25519_key.pub"]);
    // A new instance deletes them again.
    let o = run("netbsd", r, doc, "i-2", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(host_key_files(r), Vec::<String>::new());
}
