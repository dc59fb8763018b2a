//! Issue 16 follow-up, end to end: a per-instance module that keeps failing runs in at most
//! `MAX_RUNS` (3) boots, then is marked done with its failure recorded; and its retries leave
//! the passwords and locks of users that exist already alone (needs root and shadow-utils).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// `ops` is created with a password; `broken` fails at every boot (its uid is taken).
const USER_DATA: &str = "#cloud-config\nusers:\n  - name: ops\n    plain_text_passwd: first-password\n    lock_passwd: false\n  - name: broken\n    uid: 0\n";

fn machine(mock: &mock_maas::MockMaas) -> tempfile::TempDir {
    let t = linux_root();
    let cfg = format!(
        "datasource_list: [MAAS]\ndatasource:\n  MAAS:\n    metadata_url: {url}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\n    max_wait: 3\n    timeout: 2\n",
        url = mock.metadata_url(),
    );
    std::fs::write(t.path().join("etc/wisp/wisp.yaml"), cfg).unwrap();
    t
}

/// `wisp init` as at a boot (the OS empties /var/run first).
fn boot(root: &Path) -> Output {
    let _ = std::fs::remove_dir_all(root.join("var/run/wisp"));
    Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(root)
        .arg("init")
        .output()
        .unwrap()
}

fn hash_of(root: &Path, user: &str) -> String {
    std::fs::read_to_string(root.join("etc/shadow"))
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == user).then(|| f[1].to_string())
        })
        .unwrap_or_else(|| panic!("no {user} in /etc/shadow"))
}

fn set_hash(root: &Path, user: &str, hash: &str) {
    let p = root.join("etc/shadow");
    let text: Vec<String> = std::fs::read_to_string(&p)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(':').collect();
            if f[0] == user {
                f[1] = hash;
            }
            f.join(":")
        })
        .collect();
    std::fs::write(&p, text.join("\n") + "\n").unwrap();
}

#[test]
fn a_failing_users_groups_is_retried_in_three_boots_without_resetting_passwords() {
    if !can_apply_linux() {
        return;
    }
    let mock = mock_with(|f| f.machines[0].user_data = Some(USER_DATA.into()));
    let t = machine(&mock);
    let r = t.path();
    let o = boot(r);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(hash_of(r, "ops").starts_with('$'), "{err}");
    // The user changes the password; a retry must not set it back.
    let changed = "$6$changed$byTheUser";
    set_hash(r, "ops", changed);
    for n in 2..=3 {
        let o = boot(r);
        let err = stderr(&o);
        assert_ne!(o.status.code(), Some(0), "boot {n}: {err}");
        assert!(err.contains("users_groups"), "boot {n}: {err}");
        assert_eq!(hash_of(r, "ops"), changed, "boot {n}: {err}");
    }
    let sem = std::fs::read_to_string(r.join("var/db/wisp/sem.users_groups.json")).unwrap();
    let sem: serde_json::Value = serde_json::from_str(&sem).unwrap();
    assert_eq!(sem["done"], true, "{sem}");
    assert_eq!(sem["runs"], 3, "{sem}");
    assert!(
        sem["gave_up"]
            .as_str()
            .unwrap_or_default()
            .contains("broken"),
        "{sem}"
    );
    // Given up: the fourth boot does not run it, and succeeds.
    let o = boot(r);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("broken"), "{err}");
    assert_eq!(hash_of(r, "ops"), changed);
}

/// set_passwords' own `chpasswd:` failing is its own failure: users_groups, which includes only
/// its users' passwords, is done (and not run again); set_passwords is not.
#[test]
fn a_failing_chpasswd_entry_does_not_keep_users_groups_undone() {
    let Some(real) = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("chpasswd"))
        .find(|p| p.exists())
    else {
        return;
    };
    if !can_apply_linux() {
        return;
    }
    let doc = "#cloud-config\nusers:\n  - name: ops\n    plain_text_passwd: first-password\n    lock_passwd: false\nchpasswd:\n  expire: false\n  users:\n    - {name: root, password: root-password, type: text}\n";
    let mock = mock_with(|f| f.machines[0].user_data = Some(doc.into()));
    let t = machine(&mock);
    let r = t.path();
    // A chpasswd that refuses root's password (set_passwords' own entry) and sets the others.
    let bin = tempfile::tempdir().unwrap();
    let wrapper = bin.path().join("chpasswd");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ninput=$(cat)\ncase \"$input\" in root:*) echo refused >&2; exit 1;; esac\nprintf '%s\\n' \"$input\" | exec '{}' \"$@\"\n",
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let _ = std::fs::remove_dir_all(r.join("var/run/wisp"));
    let o = Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(r)
        .arg("init")
        .env("PATH", &path)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("refused"), "{err}");
    assert!(hash_of(r, "ops").starts_with('$'), "{err}");
    let sem = |m: &str| -> serde_json::Value {
        std::fs::read(r.join(format!("var/db/wisp/sem.{m}.json")))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default()
    };
    assert_eq!(sem("users_groups")["done"], true, "{err}");
    assert_ne!(sem("set_passwords")["done"], true, "{err}");
}
