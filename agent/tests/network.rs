//! Network configuration through the built binary: `wisp --platform P --root R apply
//! --network-config FILE --interfaces NICS`, on a fake root per BSD. Golden cases: every
//! fixture of the shared tree (`<clone>/../shared/fixtures/netcfg`) and this crate's own
//! (`tests/netcfg`), compared file by file; then the rules around them (reruns, stale files,
//! modes, hostile input, the Linux platform, wisp.yaml's switch, `wisp schema`).

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;

const BSDS: [&str; 3] = ["netbsd", "freebsd", "openbsd"];

fn shared_fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/netcfg"
    ))
}

/// A fresh root; NetBSD's has the image's global `dhcpcd=YES`, which static interfaces turn off.
fn fake_root(os: &str) -> tempfile::TempDir {
    let t = common::fresh_root();
    if os == "netbsd" {
        let rc = t.path().join("etc/rc.conf");
        let mut text = std::fs::read_to_string(&rc).unwrap();
        text.push_str("dhcpcd=YES\n");
        std::fs::write(&rc, text).unwrap();
    }
    t
}

fn wisp_net(os: &str, root: &Path, flags: &[&str], input: &Path, nics: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wisp"));
    c.args(["--platform", os])
        .args(flags)
        .arg("--root")
        .arg(root)
        .arg("--config")
        .arg(common::manifest_path("tests/fixtures/no-config.yaml"))
        .args(["apply", "--network-config"])
        .arg(input);
    if let Some(n) = nics {
        c.arg("--interfaces").arg(n);
    }
    c.output().unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Renders `input` of fixture `dir` for `os` and lists every difference from what `dir`
/// expects.
fn check(dir: &Path, input: &Path, os: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let t = fake_root(os);
    let root = t.path();
    let rc_before = lines(&root.join("etc/rc.conf"));
    let nics = dir.join("nics.yaml");
    let o = wisp_net(os, root, &["--format", "json"], input, Some(&nics));
    let report = json(&o);
    let exp = dir.join("expected").join(os);
    let mut expected_files = BTreeSet::new();
    for e in std::fs::read_dir(exp.join("etc")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name == "rc.conf.vars" {
            continue;
        }
        let want = std::fs::read_to_string(exp.join("etc").join(&name)).unwrap();
        let path = root.join("etc").join(&name);
        match std::fs::read_to_string(&path) {
            Ok(got) if got == want => {}
            Ok(got) => bad.push(format!("/etc/{name}:\n--- want\n{want}--- got\n{got}")),
            Err(e) => bad.push(format!("/etc/{name}: {e}")),
        }
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0);
        // hostname.if(5) files may hold keys: OpenBSD keeps them 0640.
        let want_mode = if name.starts_with("hostname.") {
            0o640
        } else {
            0o644
        };
        if mode != want_mode {
            bad.push(format!("/etc/{name}: mode {mode:o}, want {want_mode:o}"));
        }
        expected_files.insert(format!("/etc/{name}"));
    }
    for o in report["outcomes"].as_array().into_iter().flatten() {
        let action = o["action"].as_str().unwrap_or_default();
        if let Some(e) = o.get("error") {
            bad.push(format!("{action}: failed: {e}"));
        }
        let path = action.split_whitespace().nth(1).unwrap_or_default();
        if path != "/etc/rc.conf" && !expected_files.contains(path) {
            bad.push(format!("unexpected: {action}"));
        }
    }
    let added: BTreeSet<String> = lines(&root.join("etc/rc.conf"))
        .into_iter()
        .filter(|l| !rc_before.contains(l))
        .collect();
    let want_vars: BTreeSet<String> = lines(&exp.join("etc/rc.conf.vars")).into_iter().collect();
    if added != want_vars {
        bad.push(format!("rc.conf: added {added:?}, want {want_vars:?}"));
    }
    // Warnings: wording is free; each names what the expected line names before its first ": ".
    let warnings = strings(&report["warnings"]);
    let want_warnings = lines(&exp.join("warnings.txt"));
    if warnings.len() != want_warnings.len() {
        bad.push(format!(
            "warnings: got {warnings:#?}, want {want_warnings:#?}"
        ));
    }
    for w in &want_warnings {
        let subject = w.split(": ").next().unwrap_or(w);
        if !warnings.iter().any(|g| g.contains(subject)) {
            bad.push(format!("no warning about {subject:?} in {warnings:#?}"));
        }
    }
    let errors: Vec<String> = report["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}: {}",
                e["item"].as_str().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let want_errors = lines(&dir.join("errors.txt"));
    if errors.len() != want_errors.len() {
        bad.push(format!("errors: got {errors:#?}, want {want_errors:#?}"));
    }
    for e in &want_errors {
        if !errors.iter().any(|g| g.contains(e.as_str())) {
            bad.push(format!("no error containing {e:?} in {errors:#?}"));
        }
    }
    // The same config again changes nothing.
    let again = json(&wisp_net(
        os,
        root,
        &["--dry-run", "--format", "json"],
        input,
        Some(&nics),
    ));
    if again["actions"] != serde_json::json!([]) {
        bad.push(format!("a rerun plans {}", again["actions"]));
    }
    bad.into_iter()
        .map(|b| format!("{} ({os}): {b}", input.display()))
        .collect()
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("input"))
        })
        .collect();
    v.sort();
    v
}

fn check_all(base: &Path) -> usize {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(base)
        .unwrap_or_else(|e| panic!("{}: {e}", base.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut bad = Vec::new();
    let mut n = 0;
    for d in &dirs {
        for input in inputs(d) {
            for os in BSDS {
                bad.extend(check(d, &input, os));
                n += 1;
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
    n
}

#[test]
fn shared_fixtures_render_exactly_on_every_bsd() {
    let n = check_all(&shared_fixtures());
    assert!(n >= 9, "only {n} cases found");
}

#[test]
fn own_cases_render_exactly_on_every_bsd() {
    let n = check_all(&common::manifest_path("tests/netcfg"));
    assert!(n >= 50, "only {n} cases found");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const ONE_NIC: &str = "version: 2\nethernets:\n  eth0:\n    match: {macaddress: '52:54:00:00:00:01'}\n    addresses: [10.0.0.5/24]\n";

#[test]
fn a_stale_interface_file_is_replaced_and_others_are_left_alone() {
    let t = fake_root("openbsd");
    let r = t.path();
    std::fs::write(r.join("etc/hostname.vio0"), "dhcp\n").unwrap();
    std::fs::write(r.join("etc/hostname.em5"), "inet autoconf\n").unwrap();
    let input = write(r, "net.yaml", ONE_NIC);
    let nics = write(r, "nics.yaml", "'52:54:00:00:00:01': vio0\n");
    let o = wisp_net("openbsd", r, &[], &input, Some(&nics));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(r.join("etc/hostname.vio0")).unwrap(),
        "inet 10.0.0.5 255.255.255.0\n"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("etc/hostname.em5")).unwrap(),
        "inet autoconf\n"
    );
}

#[test]
fn ten_thousand_entries_are_cut_with_a_named_error_in_bounded_time() {
    let t = fake_root("freebsd");
    let r = t.path();
    let mut doc = String::from("network:\n  version: 2\n  ethernets:\n");
    let mut nics = String::new();
    for i in 0..10_000u32 {
        let mac = format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256);
        doc.push_str(&format!(
            "    e{i}: {{match: {{macaddress: '{mac}'}}, dhcp4: true}}\n"
        ));
        if i < 2 {
            nics.push_str(&format!("'{mac}': em{i}\n"));
        }
    }
    let input = write(r, "net.yaml", &doc);
    let nics = write(r, "nics.yaml", &nics);
    let start = std::time::Instant::now();
    let o = wisp_net(
        "freebsd",
        r,
        &["--dry-run", "--format", "json"],
        &input,
        Some(&nics),
    );
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
    let plan = json(&o);
    let errors = plan["errors"].to_string();
    assert!(errors.contains("10000 entries, more than 256"), "{errors}");
    // The entries read are still rendered (those whose MAC is on the machine).
    assert!(
        plan["actions"].to_string().contains("/etc/rc.conf"),
        "{plan}"
    );
}

#[test]
fn linux_renders_nothing_and_says_so_once() {
    let t = fake_root("linux");
    let r = t.path();
    let input = write(r, "net.yaml", ONE_NIC);
    let nics = write(r, "nics.yaml", "'52:54:00:00:00:01': eth0\n");
    let plan = json(&wisp_net(
        "linux",
        r,
        &["--dry-run", "--format", "json"],
        &input,
        Some(&nics),
    ));
    assert_eq!(plan["actions"], serde_json::json!([]));
    let w = strings(&plan["warnings"]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("for the BSDs"), "{w:?}");
}

#[test]
fn wisp_yaml_can_turn_network_config_off() {
    let t = fake_root("netbsd");
    let r = t.path();
    let input = write(r, "net.yaml", ONE_NIC);
    let nics = write(r, "nics.yaml", "'52:54:00:00:00:01': wm0\n");
    let conf = write(r, "wisp.yaml", "network: {config: disabled}\n");
    let o = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args([
            "--platform",
            "netbsd",
            "--dry-run",
            "--format",
            "json",
            "--root",
        ])
        .arg(r)
        .arg("--config")
        .arg(&conf)
        .args(["apply", "--network-config"])
        .arg(&input)
        .arg("--interfaces")
        .arg(&nics)
        .output()
        .unwrap();
    let plan = json(&o);
    assert_eq!(plan["actions"], serde_json::json!([]));
    assert!(plan["warnings"].to_string().contains("disabled"), "{plan}");
}

#[test]
fn the_dry_run_plan_lists_writes_and_warnings_in_text_and_json() {
    let dir = shared_fixtures().join("09-maas-v2-source-routing");
    let t = fake_root("openbsd");
    let r = t.path();
    let input = dir.join("input.yaml");
    let nics = dir.join("nics.yaml");
    let o = wisp_net("openbsd", r, &["--dry-run"], &input, Some(&nics));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("network       write /etc/hostname.vio0 (72 bytes, 0640 root:wheel)"),
        "{text}"
    );
    assert!(
        text.contains("warning: network: eth1: routing-policy (3 rules)"),
        "{text}"
    );
    assert_eq!(o.status.code(), Some(2), "warnings make the result WARN");
    // Nothing was written.
    assert!(!r.join("etc/hostname.vio0").exists());
    let plan = json(&wisp_net(
        "openbsd",
        r,
        &["--dry-run", "--format", "json"],
        &input,
        Some(&nics),
    ));
    let writes: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        writes,
        [
            "/etc/hostname.vio0",
            "/etc/hostname.vio1",
            "/etc/mygate",
            "/etc/resolv.conf"
        ]
    );
    assert_eq!(plan["warnings"].as_array().unwrap().len(), 4);
}

#[test]
fn interfaces_must_be_a_map_of_macs() {
    let t = fake_root("freebsd");
    let r = t.path();
    let input = write(r, "net.yaml", ONE_NIC);
    let nics = write(r, "nics.yaml", "- em0\n");
    let o = wisp_net("freebsd", r, &[], &input, Some(&nics));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nics.yaml"));
}

#[test]
fn schema_checks_network_configs_with_positions() {
    let hostile = common::manifest_path("tests/netcfg/19-hostile/input-v2.yaml");
    let o = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .arg("schema")
        .arg(&hostile)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("input-v2.yaml:11:27: error: network.ethernets.badmac.match.macaddress: \"not-a-mac\" is not a MAC address"),
        "{text}"
    );
    let good = shared_fixtures().join("01-static-single/input.yaml");
    let o = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .arg("schema")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).ends_with(": valid network config\n"));
    let cd = common::manifest_path("tests/netcfg/18-configdrive/input.json");
    let o = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .arg("schema")
        .arg(&cd)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn user_data_is_still_required_without_a_network_config() {
    let o = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["--platform", "netbsd", "--root", "/nonexistent", "apply"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--user-data"));
}
