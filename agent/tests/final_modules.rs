//! The final modules' plans per OS (power_state's shutdown(8) argv, from each system's manual
//! page), their named errors, and what the report says of keys wisp does not apply.

mod common;

use common::{json_plan, manifest_path};

fn plan(platform: &str, doc: &str) -> serde_json::Value {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("u.yaml");
    std::fs::write(&path, doc).unwrap();
    let root = manifest_path("tests/fixtures/roots/fresh");
    json_plan(platform, &root, &path, None).0
}

/// The power_state actions: (argv after `chroot ROOT`, condition after `chroot ROOT`).
fn power(plan: &serde_json::Value) -> Vec<(Vec<String>, Option<Vec<String>>)> {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .skip(2)
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["module"] == "power_state")
        .map(|a| {
            assert_eq!(a["argv"][0], "chroot", "{a}");
            (
                strings(&a["argv"]),
                a.get("condition").map(|c| strings(c)),
            )
        })
        .collect()
}

#[test]
fn shutdown_flags_per_os() {
    // NetBSD and FreeBSD shutdown(8): -p powers off, -r reboots, -h halts; OpenBSD's -p only
    // passes on to halt(8), so power off is -h -p; Linux (cloud-init's map) -P and -H.
    let cases: &[(&str, &str, &[&str])] = &[
        ("netbsd", "poweroff", &["-p"]),
        ("netbsd", "reboot", &["-r"]),
        ("netbsd", "halt", &["-h"]),
        ("freebsd", "poweroff", &["-p"]),
        ("freebsd", "reboot", &["-r"]),
        ("freebsd", "halt", &["-h"]),
        ("openbsd", "poweroff", &["-h", "-p"]),
        ("openbsd", "reboot", &["-r"]),
        ("openbsd", "halt", &["-h"]),
        ("linux", "poweroff", &["-P"]),
        ("linux", "reboot", &["-r"]),
        ("linux", "halt", &["-H"]),
    ];
    for (os, mode, flags) in cases {
        let p = plan(
            os,
            &format!("#cloud-config\nusers: []\npower_state: {{mode: {mode}, delay: 10, message: Bye now}}\n"),
        );
        let mut want = vec!["/sbin/shutdown".to_string()];
        want.extend(flags.iter().map(|f| f.to_string()));
        want.extend(["+10".to_string(), "Bye now".to_string()]);
        assert_eq!(power(&p), vec![(want, None)], "{os} {mode}");
        assert!(
            p["modules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["name"] == "power_state" && m["frequency"] == "per-instance"),
            "{os}: {}",
            p["modules"]
        );
    }
}

#[test]
fn conditions_run_in_the_root_and_false_plans_nothing() {
    let p = plan(
        "netbsd",
        "#cloud-config\nusers: []\npower_state: {mode: reboot, condition: test -f /x}\n",
    );
    assert_eq!(
        power(&p),
        vec![(
            vec!["/sbin/shutdown".into(), "-r".into(), "now".into()],
            Some(vec!["/bin/sh".into(), "-c".into(), "test -f /x".into()])
        )]
    );
    let p = plan(
        "freebsd",
        "#cloud-config\nusers: []\npower_state: {mode: reboot, condition: [test, -f, /x]}\n",
    );
    assert_eq!(power(&p)[0].1, Some(vec!["test".into(), "-f".into(), "/x".into()]));
    let p = plan(
        "openbsd",
        "#cloud-config\nusers: []\npower_state: {mode: reboot, condition: false}\n",
    );
    assert!(power(&p).is_empty());
}

#[test]
fn a_delay_of_later_is_a_named_error_and_nothing_is_planned() {
    for os in ["netbsd", "freebsd", "openbsd", "linux"] {
        let p = plan(
            os,
            "#cloud-config\nusers: []\npower_state: {mode: reboot, delay: later}\n",
        );
        assert!(power(&p).is_empty(), "{os}");
        let warnings = p["warnings"].to_string();
        assert!(
            warnings.contains("power_state.delay") && warnings.contains("\\\"later\\\""),
            "{os}: {warnings}"
        );
    }
}

#[test]
fn keys_not_applied_say_why() {
    let p = plan(
        "netbsd",
        "#cloud-config\nusers: []\nsnap: {commands: [x]}\nyum_repos: {}\nrsyslog: {remotes: {}}\n\
         packages: [nginx]\nca_certs: {trusted: [x]}\n",
    );
    let warnings: Vec<String> = p["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    // Linux-only modules: noted in the log, not a warning of the report.
    for key in ["snap", "yum_repos"] {
        assert!(
            !warnings.iter().any(|w| w.contains(&format!(": {key}:"))),
            "{key}: {warnings:?}"
        );
    }
    // Modules cloud-init runs on the BSDs too: a warning that wisp does not apply them.
    for key in ["rsyslog", "packages", "ca_certs"] {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&format!(": {key}: not supported by wisp"))),
            "{key}: {warnings:?}"
        );
    }
    assert!(
        !warnings.iter().any(|w| w.contains("no meaning on the BSDs")),
        "{warnings:?}"
    );
}
