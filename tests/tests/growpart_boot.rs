//! growpart runs early, once per instance: in the boot, the local modules are marked done for
//! the instance as they finish (needs root and shadow-utils, as CI has).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// A NoCloud seed whose user-data asks for growpart: under a fake root (no `--disks`) it is
/// not grown and says so, which is all a boot outside a real machine can show.
fn machine() -> tempfile::TempDir {
    let t = linux_root();
    let r = t.path();
    std::fs::write(
        r.join("etc/wisp/wisp.yaml"),
        "datasource_list: [NoCloud]\ndatasource:\n  NoCloud:\n    seedfrom: /var/lib/seed/\n",
    )
    .unwrap();
    let seed = r.join("var/lib/seed");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(seed.join("meta-data"), "instance-id: i-grow-1\n").unwrap();
    std::fs::write(
        seed.join("user-data"),
        "#cloud-config\nusers: []\ngrowpart: {mode: auto}\n",
    )
    .unwrap();
    t
}

fn init(root: &Path) -> Output {
    Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(root)
        .arg("init")
        .output()
        .unwrap()
}

#[test]
fn growpart_is_marked_done_for_the_instance_in_the_local_stage() {
    if !can_apply_linux() {
        return;
    }
    let t = machine();
    let r = t.path();
    let o = init(r);
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert!(log.contains("local"), "{log}");
    let mark = std::fs::read_to_string(r.join("var/db/wisp/sem.growpart.json"))
        .unwrap_or_else(|e| panic!("growpart not marked done: {e}\n{log}"));
    assert!(mark.contains("i-grow-1"), "{mark}");
    // The next boot (the OS empties /var/run): growpart is not due, its note is not repeated.
    std::fs::remove_dir_all(r.join("var/run/wisp")).unwrap();
    let o = init(r);
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert!(log.contains("local SUCCESS"), "{log}");
    assert!(!log.contains("growpart"), "{log}");
}
