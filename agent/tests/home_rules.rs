//! Which homes wisp makes, repairs and treats as a user's (issue 16's review): root's and the
//! system's directories are no new user's home, a system user's home is its own business, a
//! missing home is repaired only for a regular account at its passwd home with the skeleton
//! read inside the root, and a system account's home is an ordinary directory for
//! write_files. Plans come from `--dry-run --format json`; the write_files case is applied.

mod common;

use std::path::Path;

use serde_json::Value;

fn add(root: &Path, file: &str, line: &str) {
    let p = root.join(file);
    let mut text = std::fs::read_to_string(&p).unwrap_or_default();
    text.push_str(line);
    std::fs::write(&p, text).unwrap();
}

fn plan(platform: &str, root: &Path, doc: &str) -> Value {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("u.yaml");
    std::fs::write(&d, doc).unwrap();
    common::json_plan(platform, root, &d, None).0
}

/// `module: item: reason` of each error.
fn errors(plan: &Value) -> Vec<String> {
    plan["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}: {}: {}",
                e["module"].as_str().unwrap_or(""),
                e["item"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// `(module, action, path-or-argv)` of each action.
fn actions(plan: &Value) -> Vec<String> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect()
}

#[test]
fn roots_home_and_the_systems_private_directories_are_no_new_users_home() {
    let t = common::fresh_root();
    let doc = "#cloud-config\nusers:\n  - {name: mallory, homedir: /root}\n  - {name: eve, homedir: /var/empty}\n  - {name: trudy, homedir: /var/mail/trudy}\n  - {name: oscar, homedir: /var/spool/oscar}\n";
    let p = plan("freebsd", t.path(), doc);
    let errs = errors(&p);
    for (user, dir) in [
        ("mallory", "/root"),
        ("eve", "/var/empty"),
        ("trudy", "/var/mail"),
        ("oscar", "/var/spool"),
    ] {
        assert!(
            errs.iter()
                .any(|e| e.starts_with(&format!(
                    "users_groups: {user}: not applied: homedir: home "
                )) && e.ends_with(&format!("is in the system directory {dir}: refused"))),
            "{user}: {errs:#?}"
        );
    }
    let acts = actions(&p).join("\n");
    for user in ["mallory", "eve", "trudy", "oscar"] {
        assert!(!acts.contains(user), "{user}: {acts}");
    }
}

#[test]
fn a_system_or_homeless_user_may_name_a_home_in_a_system_directory() {
    let t = common::fresh_root();
    let doc = "#cloud-config\nusers:\n  - {name: pgsql, system: true, homedir: /usr/local/pgsql}\n  - {name: pkgsvc, no_create_home: true, homedir: /usr/pkg/svc}\n";
    let p = plan("netbsd", t.path(), doc);
    assert!(errors(&p).is_empty(), "{:#?}", errors(&p));
    let acts = actions(&p).join("\n");
    assert!(acts.contains("/usr/local/pgsql"), "{acts}");
    assert!(acts.contains("/usr/pkg/svc"), "{acts}");
}

#[test]
fn a_system_accounts_missing_home_is_not_made() {
    let t = common::fresh_root();
    // OpenBSD's operator: uid 2, home /operator, which does not exist.
    add(
        t.path(),
        "etc/passwd",
        "operator:*:2:5:System &:/operator:/sbin/nologin\n",
    );
    add(t.path(), "etc/group", "operator:*:5:\n");
    let p = plan(
        "openbsd",
        t.path(),
        "#cloud-config\nusers:\n  - name: operator\n",
    );
    let acts = actions(&p).join("\n");
    assert!(!acts.contains("/operator"), "{acts}");
}

#[test]
fn a_missing_home_is_made_where_passwd_says_never_in_a_system_directory() {
    let t = common::fresh_root();
    add(
        t.path(),
        "etc/passwd",
        "ops:*:1001:1001:ops:/home/ops:/bin/sh\nbad:*:1002:1002:bad:/etc/bad:/bin/sh\n",
    );
    add(t.path(), "etc/group", "ops:*:1001:\nbad:*:1002:\n");
    std::fs::create_dir_all(t.path().join("home")).unwrap();
    let doc = "#cloud-config\nusers:\n  - {name: ops, homedir: /srv/elsewhere}\n  - name: bad\n";
    let p = plan("netbsd", t.path(), doc);
    let acts = actions(&p).join("\n");
    assert!(acts.contains("\"/home/ops\""), "{acts}");
    assert!(!acts.contains("/srv/elsewhere"), "{acts}");
    assert!(!acts.contains("/etc/bad"), "{acts}");
    let errs = errors(&p);
    assert!(
        errs.iter().any(|e| e
            == "users_groups: bad: missing home not created: home /etc/bad is in the system directory /etc: refused"),
        "{errs:#?}"
    );
}

#[test]
fn the_skeleton_is_read_inside_the_root_never_through_a_link_out_of_it() {
    let t = common::fresh_root();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(outside.path().join(".hostdir")).unwrap();
    std::fs::write(outside.path().join(".hostrc"), "host\n").unwrap();
    add(
        t.path(),
        "etc/passwd",
        "ops:*:1001:1001:ops:/home/ops:/bin/sh\n",
    );
    add(t.path(), "etc/group", "ops:*:1001:\n");
    std::fs::create_dir_all(t.path().join("home")).unwrap();
    // ROOT/etc/skel -> /OUTSIDE: seen from the root, ROOT/OUTSIDE, which does not exist.
    std::os::unix::fs::symlink(outside.path(), t.path().join("etc/skel")).unwrap();
    let p = plan("netbsd", t.path(), "#cloud-config\nusers:\n  - name: ops\n");
    let acts = actions(&p).join("\n");
    assert!(acts.contains("\"/home/ops\""), "{acts}");
    assert!(!acts.contains(".host"), "{acts}");
}
