//! What a crash inside the account tools leaves behind, and what the next run plans for it (as
//! `--dry-run` shows): an account without its home gets the home its OS's tool would have made,
//! with that OS's skeleton; on Linux, a group file and its shadow that disagree are repaired.

mod common;

use std::path::Path;

use serde_json::Value;

/// A root where `user` exists (its passwd line written) but its home does not.
fn root_with_homeless(user: &str) -> tempfile::TempDir {
    let t = common::fresh_root();
    let passwd = t.path().join("etc/passwd");
    let mut text = std::fs::read_to_string(&passwd).unwrap();
    text.push_str(&format!("{user}:*:1001:1001:{user}:/home/{user}:/bin/sh\n"));
    std::fs::write(&passwd, text).unwrap();
    let group = t.path().join("etc/group");
    let mut text = std::fs::read_to_string(&group).unwrap();
    text.push_str(&format!("{user}:*:1001:\n"));
    std::fs::write(&group, text).unwrap();
    std::fs::create_dir_all(t.path().join("home")).unwrap();
    t
}

fn write(root: &Path, path: &str, content: &str) {
    let p = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn plan(platform: &str, root: &Path, doc: &str) -> Value {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("u.yaml");
    std::fs::write(&d, doc).unwrap();
    common::json_plan(platform, root, &d, None).0
}

/// The actions of users_groups, as `(action, path, mode)`.
fn home_actions(plan: &Value) -> Vec<(String, String, String)> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["module"] == "users_groups" && a["path"].is_string())
        .map(|a| {
            (
                a["action"].as_str().unwrap_or("").to_string(),
                a["path"].as_str().unwrap_or("").to_string(),
                a["mode"].as_str().unwrap_or("").to_string(),
            )
        })
        .filter(|(_, p, _)| p.starts_with("/home/"))
        .collect()
}

#[test]
fn an_account_without_its_home_gets_it_with_the_skeleton_on_every_os() {
    let doc = "#cloud-config\nusers:\n  - name: ops\n";
    // FreeBSD: pw takes /usr/share/skel and installs dot.x as .x.
    let t = root_with_homeless("ops");
    write(t.path(), "/usr/share/skel/dot.cshrc", "set prompt\n");
    write(t.path(), "/usr/share/skel/dot.config/app", "x\n");
    write(t.path(), "/etc/skel/.profile", "not FreeBSD's\n");
    let got = home_actions(&plan("freebsd", t.path(), doc));
    let paths: Vec<&str> = got.iter().map(|(_, p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/home/ops",
            "/home/ops/.config",
            "/home/ops/.config/app",
            "/home/ops/.cshrc"
        ],
        "{got:?}"
    );
    assert_eq!(got[0].0, "mkdir");
    assert_eq!(got[0].2, "0755");
    // NetBSD, OpenBSD and Linux: /etc/skel, names as they are.
    for platform in ["netbsd", "openbsd", "linux"] {
        let t = root_with_homeless("ops");
        write(t.path(), "/etc/skel/.profile", "PATH=/bin\n");
        write(t.path(), "/usr/share/skel/dot.cshrc", "not this one\n");
        let got = home_actions(&plan(platform, t.path(), doc));
        let want = vec![
            (
                "mkdir".to_string(),
                "/home/ops".to_string(),
                "0755".to_string(),
            ),
            (
                "write".to_string(),
                "/home/ops/.profile".to_string(),
                "0644".to_string(),
            ),
        ];
        assert_eq!(got, want, "{platform}");
    }
}

#[test]
fn an_account_with_its_home_or_without_one_wanted_is_left_alone() {
    let t = root_with_homeless("ops");
    write(t.path(), "/etc/skel/.profile", "PATH=/bin\n");
    std::fs::create_dir_all(t.path().join("home/ops")).unwrap();
    assert!(home_actions(&plan(
        "netbsd",
        t.path(),
        "#cloud-config\nusers:\n  - name: ops\n"
    ))
    .is_empty());
    let t = root_with_homeless("svc");
    let doc = "#cloud-config\nusers:\n  - {name: svc, no_create_home: true}\n";
    assert!(home_actions(&plan("netbsd", t.path(), doc)).is_empty());
}

#[test]
fn a_group_missing_from_gshadow_is_reported_and_repaired_on_linux_only() {
    let t = common::fresh_root();
    let r = t.path();
    write(r, "/etc/group", "root:x:0:\nwheel:x:10:\n");
    write(r, "/etc/gshadow", "root:*::\nstale:!::\n");
    write(r, "/etc/shadow", "root:*:19000:0:99999:7:::\n");
    let doc = "#cloud-config\nusers:\n  - name: ops\n";
    let p = plan("linux", r, doc);
    let warnings: Vec<&str> = p["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("group wheel is in /etc/group but not in /etc/gshadow")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("group stale is in /etc/gshadow but not in /etc/group")),
        "{warnings:?}"
    );
    let actions = p["actions"].as_array().unwrap();
    let repair = actions
        .iter()
        .position(|a| a["argv"][0] == "grpconv")
        .expect("a grpconv action");
    assert_eq!(actions[repair]["argv"][1], "--root");
    // Before any other account tool.
    assert!(actions[..repair]
        .iter()
        .all(|a| a["module"] != "users_groups"));
    // The BSDs keep no group shadow.
    for bsd in ["netbsd", "freebsd", "openbsd"] {
        let p = plan(bsd, r, doc);
        assert!(
            !p["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["argv"][0] == "grpconv"),
            "{bsd}"
        );
    }
    // Files that agree: nothing to repair.
    write(r, "/etc/gshadow", "root:*::\nwheel:!::\n");
    let p = plan("linux", r, doc);
    assert!(!p["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["argv"][0] == "grpconv"));
}

/// A skeleton too big to copy whole: the rest is left out and said so, the boot goes on.
#[test]
fn a_huge_skeleton_is_copied_within_bounds() {
    let t = root_with_homeless("ops");
    for i in 0..300 {
        write(t.path(), &format!("/etc/skel/.f{i:03}"), "x\n");
    }
    let p = plan("netbsd", t.path(), "#cloud-config\nusers:\n  - name: ops\n");
    let copied = home_actions(&p)
        .iter()
        .filter(|(a, _, _)| a == "write")
        .count();
    assert_eq!(copied, 256);
    let warnings = p["warnings"].to_string();
    assert!(
        warnings.contains("ops: skeleton /etc/skel has more than 256 entries"),
        "{warnings}"
    );
}
