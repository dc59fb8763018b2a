//! The stages run as separate processes, as the BSDs' rc.d scripts run them (`wisp init
//! --stage local`, then `network`, then `final`): each saves its results, and the modules
//! that act only on a new instance (host keys, phone_home) still run in the instance's first
//! boot — up to the end of its final stage (final review of issue 13, 2). Needs root,
//! shadow-utils and ssh-keygen, as CI has.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// The image's key (every machine made from the image would have it).
const IMAGE_PUB: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIABNZtRAVa0mXZze7RbywGAB+DisQtxMKqzv5e7gmwpW root@image\n";

/// A loopback server answering 200, keeping the requests it received.
fn serve() -> (std::net::SocketAddr, mock_maas::post_sink::Received) {
    mock_maas::post_sink::start(mock_maas::post_sink::OK).unwrap()
}

/// A NoCloud machine (its data found in the local stage) with the image's host key, whose
/// user-data asks for new host keys and a phone_home POST to `addr`.
fn machine(addr: std::net::SocketAddr) -> tempfile::TempDir {
    let t = linux_root();
    let r = t.path();
    std::fs::write(
        r.join("etc/wisp/wisp.yaml"),
        "datasource_list: [NoCloud]\ndatasource:\n  NoCloud:\n    seedfrom: /var/lib/seed/\n",
    )
    .unwrap();
    let seed = r.join("var/lib/seed");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(seed.join("meta-data"), "instance-id: i-stages-1\n").unwrap();
    std::fs::write(
        seed.join("user-data"),
        format!(
            "#cloud-config\nusers: []\nssh_genkeytypes: [ed25519]\n\
             phone_home: {{url: 'http://{addr}/booted', post: [instance_id]}}\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(r.join("etc/ssh")).unwrap();
    std::fs::write(
        r.join("etc/ssh/ssh_host_ed25519_key"),
        "image private key\n",
    )
    .unwrap();
    std::fs::write(r.join("etc/ssh/ssh_host_ed25519_key.pub"), IMAGE_PUB).unwrap();
    t
}

fn stage(root: &Path, stage: &str) -> Output {
    Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(root)
        .args(["init", "--stage", stage])
        .output()
        .unwrap()
}

fn public(root: &Path) -> String {
    std::fs::read_to_string(root.join("etc/ssh/ssh_host_ed25519_key.pub")).unwrap_or_default()
}

/// The next boot: the OS empties /var/run.
fn reboot(root: &Path) {
    let _ = std::fs::remove_dir_all(root.join("var/run/wisp"));
}

fn usable() -> bool {
    can_apply_linux() && Command::new("ssh-keygen").arg("-?").output().is_ok()
}

#[test]
fn a_first_boot_in_separate_processes_replaces_the_host_keys_and_phones_home() {
    if !usable() {
        return;
    }
    let (addr, posts) = serve();
    let t = machine(addr);
    let r = t.path();
    let mut log = String::new();
    for s in ["local", "network", "final"] {
        let o = stage(r, s);
        log.push_str(&stderr(&o));
    }
    let first = public(r);
    assert!(first.starts_with("ssh-ed25519 "), "{first:?}\n{log}");
    assert_ne!(first, IMAGE_PUB, "the image's host key was kept\n{log}");
    assert_eq!(posts.lock().unwrap().len(), 1, "{log}");
    // The next boot of the same instance: neither again.
    reboot(r);
    for s in ["local", "network", "final"] {
        stage(r, s);
    }
    assert_eq!(public(r), first);
    assert_eq!(posts.lock().unwrap().len(), 1);
}

#[test]
fn a_first_boot_whose_final_stage_did_not_end_phones_home_on_the_next_boot() {
    if !usable() {
        return;
    }
    let (addr, posts) = serve();
    let t = machine(addr);
    let r = t.path();
    // The final stage never ran (the machine went down before it).
    for s in ["local", "network"] {
        stage(r, s);
    }
    assert_eq!(posts.lock().unwrap().len(), 0);
    reboot(r);
    let mut log = String::new();
    for s in ["local", "network", "final"] {
        log.push_str(&stderr(&stage(r, s)));
    }
    assert_eq!(posts.lock().unwrap().len(), 1, "{log}");
}
