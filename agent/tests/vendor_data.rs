//! Vendor-data as MAAS serves it, under user-data: the default user from
//! `system_info.default_user`, MAAS's NTP server, Linux-only keys ignored on the BSDs.

use std::path::{Path, PathBuf};

mod common;

fn shared_vendor_data() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/vendor-data.yaml");
    assert!(
        p.exists(),
        "{} is missing (shared/ sits beside the repository)",
        p.display()
    );
    p
}

fn plan(platform: &str, user: &str, vendor: &Path) -> serde_json::Value {
    plan_and_log(platform, user, vendor).0
}

fn plan_and_log(platform: &str, user: &str, vendor: &Path) -> (serde_json::Value, String) {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("etc")).unwrap();
    std::fs::write(t.path().join("etc/group"), "wheel:*:0:root\n").unwrap();
    let ud = t.path().join("user-data");
    std::fs::write(&ud, user).unwrap();
    let (v, o) = common::json_plan(platform, t.path(), &ud, Some(vendor));
    (v, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn maas_vendor_data_sets_the_default_user_and_ntp() {
    let (p, log) = plan_and_log(
        "netbsd",
        "#cloud-config
hostname: web1
",
        &shared_vendor_data(),
    );
    let users = p["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["name"], "ubuntu");
    assert_eq!(users[0]["gecos"], "Jane Admin");
    assert_eq!(users[0]["default"], true);
    assert!(p["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["path"] == "/etc/ntp.conf"));
    // MAAS always sends Linux-only keys: logged as ignored, not a warning that would make every
    // deployment WARN.
    assert!(
        log.contains("snap") && log.contains("no meaning on the BSDs"),
        "{log}"
    );
    assert!(!p["warnings"].to_string().contains("snap"), "{p}");
}

#[test]
fn user_data_wins_and_vendor_runcmd_is_dropped_on_bsd_only() {
    let t = tempfile::tempdir().unwrap();
    let vendor = t.path().join("vendor");
    std::fs::write(&vendor, "#cloud-config\nruncmd: [netplan apply]\ntimezone: UTC\nsystem_info: {default_user: {name: vend}}\n").unwrap();
    let user = "#cloud-config\nsystem_info: {default_user: {name: mine}}\n";
    let bsd = plan("freebsd", user, &vendor);
    assert_eq!(bsd["users"][0]["name"], "mine");
    assert!(!bsd["actions"].to_string().contains("runcmd"), "{bsd}");
    assert!(bsd["warnings"]
        .to_string()
        .contains("vendor-data runcmd ignored"));
    let linux = plan("linux", user, &vendor);
    assert!(linux["actions"].to_string().contains("runcmd"), "{linux}");
    let off = plan(
        "openbsd",
        "#cloud-config\nvendor_data: {enabled: false}\n",
        &vendor,
    );
    assert_eq!(off["users"][0]["name"], "openbsd");
}
