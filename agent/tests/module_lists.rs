//! The module lists (issue 13): `cloud_*_modules` in the cloud-config or wisp.yaml leave
//! modules out, reorder them and change how often they run; an unknown module is a warning and
//! the rest goes on.

mod common;

use std::path::Path;

use common::{fresh_root, json_plan, manifest_path};

fn plan(doc: &str) -> serde_json::Value {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("u.yaml");
    std::fs::write(&path, doc).unwrap();
    json_plan(
        "netbsd",
        &manifest_path("tests/fixtures/roots/fresh"),
        &path,
        None,
    )
    .0
}

/// The modules of the plan's actions, in order, each once.
fn acting(plan: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in plan["actions"].as_array().unwrap() {
        let m = a["module"].as_str().unwrap().to_string();
        if out.last() != Some(&m) {
            out.push(m);
        }
    }
    out
}

const DOC: &str = "#cloud-config\nusers: []\nntp: {servers: [10.0.0.1]}\nruncmd: [[true]]\n\
                   write_files: [{path: /etc/late, content: x, defer: true}]\n";

#[test]
fn a_list_leaves_modules_out_and_reorders_them() {
    let p = plan(DOC);
    let a = acting(&p);
    let at = |a: &[String], m: &str| a.iter().position(|x| x == m);
    assert!(at(&a, "ntp").is_some(), "{a:?}");
    assert!(at(&a, "write_files_deferred") < at(&a, "runcmd"), "{a:?}");

    let p = plan(&format!(
        "{DOC}cloud_config_modules: [timezone]\ncloud_final_modules: [runcmd, write-files-deferred]\n"
    ));
    let a = acting(&p);
    // ntp is left out of the config stage: nothing planned for it.
    assert_eq!(at(&a, "ntp"), None, "{a:?}");
    assert!(at(&a, "runcmd") < at(&a, "write_files_deferred"), "{a:?}");
    let modules: Vec<&str> = p["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(!modules.contains(&"ntp") && !modules.contains(&"final_message"));
    assert!(modules.contains(&"users_groups"), "{modules:?}");
    assert!(p["warnings"].as_array().unwrap().is_empty(), "{p:#}");
}

#[test]
fn an_unknown_module_is_a_warning_and_the_rest_goes_on() {
    let p = plan(&format!(
        "{DOC}cloud_final_modules: [frobnicate, snap, scripts_vendor, runcmd]\n"
    ));
    let warnings = p["warnings"].to_string();
    assert!(
        warnings.contains("cloud_final_modules[0]: unknown module \\\"frobnicate\\\""),
        "{warnings}"
    );
    // Linux-only or cloud-init's own: logged, not warned about.
    assert!(!warnings.contains("snap"), "{warnings}");
    // Run on the BSDs by cloud-init, but wisp has no equivalent (final review of issue 13,
    // 10): a warning.
    assert!(
        warnings.contains(
            "cloud_final_modules[2]: module \\\"scripts_vendor\\\" is not supported by wisp"
        ),
        "{warnings}"
    );
    assert!(acting(&p).contains(&"runcmd".to_string()));
}

fn apply(root: &Path, doc: &str, config: Option<&Path>) -> (Option<i32>, String) {
    let path = root.join("u.yaml");
    std::fs::write(&path, doc).unwrap();
    let config = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest_path("tests/fixtures/no-config.yaml"));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["--platform", "netbsd", "--root"])
        .arg(root)
        .arg("--config")
        .arg(config)
        .args(["apply", "--instance-id", "i-1", "--user-data"])
        .arg(&path)
        .output()
        .unwrap();
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn a_frequency_of_always_runs_the_module_again_on_the_next_run() {
    let seed = "#cloud-config\nusers: []\nrandom_seed: {file: /var/tmp/seed, data: new}\n";
    // Per instance (its own frequency): once.
    let t = fresh_root();
    let r = t.path();
    std::fs::create_dir_all(r.join("var/tmp")).unwrap();
    std::fs::write(r.join("var/tmp/seed"), "old:").unwrap();
    for _ in 0..2 {
        let (code, out) = apply(r, seed, None);
        assert_eq!(code, Some(0), "{out}");
    }
    assert_eq!(std::fs::read(r.join("var/tmp/seed")).unwrap(), b"old:new");

    // `always`, from wisp.yaml: at every run.
    let t = fresh_root();
    let r = t.path();
    std::fs::create_dir_all(r.join("var/tmp")).unwrap();
    std::fs::write(r.join("var/tmp/seed"), "old:").unwrap();
    let conf = r.join("wisp.yaml");
    std::fs::write(&conf, "cloud_init_modules:\n  - [seed_random, always]\n").unwrap();
    for _ in 0..2 {
        let (code, out) = apply(r, seed, Some(&conf));
        assert_eq!(code, Some(0), "{out}");
    }
    assert_eq!(
        std::fs::read(r.join("var/tmp/seed")).unwrap(),
        b"old:newnew"
    );
}

/// Review of issue 13 (5): a list that puts ssh before users-groups does not get the user's
/// authorized_keys written before the user exists: users_groups still acts first, and the
/// list's order is warned about.
#[test]
fn a_list_cannot_put_ssh_before_the_users() {
    let doc = "#cloud-config\nusers:\n  - name: bob\n    ssh_authorized_keys: \
               ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f bob']\n\
               cloud_init_modules: [ssh, users-groups]\n";
    let p = plan(doc);
    let a = acting(&p);
    let at = |m: &str| a.iter().position(|x| x == m);
    assert!(at("users_groups").is_some() && at("ssh").is_some(), "{a:?}");
    assert!(at("users_groups") < at("ssh"), "{a:?}");
    let warnings = p["warnings"].to_string();
    assert!(
        warnings.contains("ssh is listed before users_groups"),
        "{warnings}"
    );
}

/// Final review of issue 13 (1): Ubuntu's stock lists (cloud-init's config/cloud.cfg.tmpl)
/// plan the packages, the deferred files and runcmd in the same order as no lists: runcmd,
/// listed in cloud_config_modules, runs where cloud-init's scripts_user runs its script.
#[test]
fn cloud_inits_stock_lists_plan_in_wisps_order() {
    let doc = "#cloud-config\npackages: [curl]\nruncmd: [[true]]\n\
               write_files: [{path: /etc/late, content: x, defer: true}]\n";
    let stock = "cloud_init_modules: [seed_random, bootcmd, write_files, growpart, resizefs, \
                 disk_setup, mounts, set_hostname, update_hostname, update_etc_hosts, ca_certs, \
                 rsyslog, users_groups, ssh]\n\
                 cloud_config_modules: [wireguard, snap, ubuntu_autoinstall, ssh_import_id, \
                 keyboard, locale, set_passwords, grub_dpkg, apt_pipelining, apt_configure, \
                 ubuntu_pro, ntp, timezone, disable_ec2_metadata, runcmd, byobu]\n\
                 cloud_final_modules: [package_update_upgrade_install, fan, landscape, lxd, \
                 ubuntu_drivers, write_files_deferred, puppet, chef, ansible, mcollective, \
                 salt_minion, reset_rmc, scripts_vendor, scripts_per_once, scripts_per_boot, \
                 scripts_per_instance, scripts_user, ssh_authkey_fingerprints, keys_to_console, \
                 install_hotplug, phone_home, final_message, power_state_change]\n";
    let plain = acting(&plan(doc));
    let listed = acting(&plan(&format!("{doc}{stock}")));
    assert_eq!(listed, plain);
    let at = |m: &str| listed.iter().position(|x| x == m);
    assert!(
        at("package_update_upgrade_install") < at("write_files_deferred")
            && at("write_files_deferred") < at("runcmd"),
        "{listed:?}"
    );
}
