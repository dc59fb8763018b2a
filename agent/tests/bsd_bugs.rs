//! Each known cloud-init bug on the BSDs (cloud-config.md, "Known cloud-init bugs") has a test
//! here showing wisp does not repeat it. Plans are made with --dry-run against a fresh root.

mod common;

fn plan(platform: &str, doc: &str) -> serde_json::Value {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/passwd"), "root:*:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "wheel:*:0:root\n").unwrap();
    let file = dir.join("user-data");
    std::fs::write(&file, doc).unwrap();
    common::json_plan(platform, &dir, &file, None).0
}

fn useradd_argv(plan: &serde_json::Value, user: &str) -> Vec<String> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["argv"].as_array())
        .map(|argv| {
            argv.iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .find(|argv| {
            argv.iter().any(|a| a == "useradd") && argv.last().map(String::as_str) == Some(user)
                || argv.iter().any(|a| a == "useradd") && argv.contains(&user.to_string())
        })
        .unwrap_or_else(|| panic!("no useradd for {user} in {plan}"))
}

const BUGS: &str = "#cloud-config\nusers:\n  - {name: sysonly, system: true}\n  - {name: nohome, no_create_home: true}\n  - {name: both, system: true, no_create_home: true}\n  - {name: normal}\n  - {name: aged, uid: 1500, inactive: '5', expiredate: '2032-09-01', sudo: 'ALL=(ALL) NOPASSWD:ALL'}\n";

#[test]
fn netbsd_adds_no_home_unless_wanted() {
    // cloud-init added -m unless *both* system and no_create_home were set.
    let p = plan("netbsd", BUGS);
    for user in ["sysonly", "nohome", "both"] {
        assert!(
            !useradd_argv(&p, user).contains(&"-m".to_string()),
            "{user} gets a home"
        );
    }
    assert!(useradd_argv(&p, "normal").contains(&"-m".to_string()));
}

#[test]
fn netbsd_and_openbsd_keep_uid_inactive_and_expiredate() {
    for os in ["netbsd", "openbsd"] {
        let argv = useradd_argv(&plan(os, BUGS), "aged");
        for (flag, value) in [("-u", "1500"), ("-f", "5"), ("-e", "2032-09-01")] {
            let i = argv
                .iter()
                .position(|a| a == flag)
                .unwrap_or_else(|| panic!("{os}: no {flag} in {argv:?}"));
            assert_eq!(argv[i + 1], value, "{os}: {argv:?}");
        }
    }
}

#[test]
fn no_gnu_long_options_reach_a_bsd_tool() {
    for os in ["netbsd", "freebsd", "openbsd"] {
        let p = plan(os, BUGS);
        for a in p["actions"].as_array().unwrap() {
            if let Some(argv) = a["argv"].as_array() {
                assert!(
                    !argv.iter().any(|s| s.as_str().unwrap().starts_with("--")),
                    "{os}: long option in {argv:?}"
                );
            }
        }
    }
}

#[test]
fn freebsd_does_not_map_inactive_to_dash_e() {
    let p = plan("freebsd", BUGS);
    let argv = useradd_argv(&p, "aged");
    assert!(!argv.contains(&"-E".to_string()), "{argv:?}");
    // -e is the account expiry in pw(8), the right place for expiredate.
    let i = argv.iter().position(|a| a == "-e").unwrap();
    assert_eq!(argv[i + 1], "2032-09-01");
    assert!(p["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("inactive is not supported")));
}

#[test]
fn sudoers_rules_go_under_localbase_not_etc() {
    for (os, want) in [
        ("netbsd", "/usr/pkg/etc/sudoers.d/90-wisp-users"),
        ("freebsd", "/usr/local/etc/sudoers.d/90-wisp-users"),
        ("openbsd", "/usr/local/etc/sudoers.d/90-wisp-users"),
    ] {
        let p = plan(os, BUGS);
        let writes: Vec<&str> = p["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["action"] == "write")
            .map(|a| a["path"].as_str().unwrap())
            .collect();
        assert_eq!(writes, vec![want], "{os}");
        assert!(!writes.iter().any(|w| w.starts_with("/etc/sudoers")));
        let w = p["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["action"] == "write")
            .unwrap();
        assert_eq!(w["mode"], "0440");
    }
}

#[test]
fn no_tool_is_run_through_a_shell() {
    for os in ["netbsd", "freebsd", "openbsd", "linux"] {
        let p = plan(os, BUGS);
        for a in p["actions"].as_array().unwrap() {
            if let Some(argv) = a["argv"].as_array() {
                let prog = argv
                    .iter()
                    .map(|s| s.as_str().unwrap())
                    .find(|s| !["chroot"].contains(s) && !s.starts_with('/'))
                    .unwrap();
                assert!(
                    !["sh", "bash", "ksh", "csh", "tcsh"].contains(&prog),
                    "{os}: {argv:?}"
                );
                assert!(!argv.iter().any(|s| s == "-c"), "{os}: {argv:?}");
            }
        }
    }
}

const PASSWORDS: &str = "#cloud-config\nusers:\n  - {name: pat, plain_text_passwd: 'x; reboot #Pw1', lock_passwd: false}\nchpasswd:\n  users:\n    - {name: pat, password: 'Another$(id)Pw', type: text}\n";

fn argvs(p: &serde_json::Value) -> Vec<Vec<String>> {
    p["actions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            [
                a["argv"].as_array(),
                a["db"].as_array(),
                a["hasher"].as_array(),
            ]
        })
        .flatten()
        .map(|argv| {
            argv.iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn password_expiry_uses_each_systems_own_way_not_passwd_expire() {
    for (os, expect) in [
        ("netbsd", vec!["usermod", "-F", "pat"]),
        ("freebsd", vec!["usermod", "pat", "-p", "1"]),
        ("openbsd", vec!["pwd_mkdb", "-u", "pat", "/etc/ptmp"]),
    ] {
        let p = plan(os, PASSWORDS);
        let all = argvs(&p);
        assert!(
            !all.iter().any(|a| a.iter().any(|s| s == "--expire")),
            "{os}: {all:?}"
        );
        assert!(
            !all.iter().any(|a| a.first().is_some_and(|s| s == "passwd")),
            "{os}: {all:?}"
        );
        let found = all
            .iter()
            .any(|a| a.windows(expect.len()).any(|w| w == expect.as_slice()));
        assert!(found, "{os}: no {expect:?} in {all:?}");
    }
    // OpenBSD forces the change through master.passwd's change field.
    let p = plan("openbsd", PASSWORDS);
    assert!(p["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["field"]["change"] == 1));
}

#[test]
fn plain_text_passwords_never_reach_argv_or_a_shell() {
    for os in ["netbsd", "freebsd", "openbsd", "linux"] {
        let p = plan(os, PASSWORDS);
        // The module table names keys (package_reboot_if_required): the secrets are looked
        // for in the rest.
        let mut data = p.clone();
        if let Some(m) = data.as_object_mut() {
            m.remove("modules");
        }
        let text = data.to_string();
        for secret in ["x; reboot #Pw1", "Another$(id)Pw", "reboot", "$(id)"] {
            assert!(!text.contains(secret), "{os}: {secret} in the plan");
        }
        for argv in argvs(&p) {
            assert!(
                !argv
                    .iter()
                    .any(|a| a == "-c" || a == "sh" || a == "/bin/sh"),
                "{os}: {argv:?}"
            );
        }
    }
}
