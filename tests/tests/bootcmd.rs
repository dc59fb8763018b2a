//! Issue 16 (22), end to end: bootcmd runs at every boot, once — on a MAAS machine's first boot
//! too, where the local stage has no data yet and the network stage runs it once it has the
//! user-data (needs root and shadow-utils, as CI has).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use mock_maas::{MachineStatus, MockMaas};

const USER_DATA: &str =
    "#cloud-config\nbootcmd:\n  - echo \"boot $INSTANCE_ID\" >> /var/tmp/bootcmd.log\n";

fn machine(mock: &MockMaas) -> tempfile::TempDir {
    let t = linux_root();
    let cfg = format!(
        "datasource_list: [MAAS]\ndatasource:\n  MAAS:\n    metadata_url: {url}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\n    max_wait: 3\n    timeout: 2\n",
        url = mock.metadata_url(),
    );
    std::fs::write(t.path().join("etc/wisp/wisp.yaml"), cfg).unwrap();
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

fn runs(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("var/tmp/bootcmd.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bootcmd_runs_on_a_maas_first_boot_exactly_once() {
    if !can_apply_linux() {
        return;
    }
    let mock = mock_with(|f| f.machines[0].user_data = Some(USER_DATA.into()));
    let t = machine(&mock);
    let r = t.path();
    let o = init(r);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deployed));
    assert_eq!(runs(r), vec![format!("boot {SYSTEM_ID}")], "{}", stderr(&o));
    // wisp run again in the same boot: not again.
    let o = init(r);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(runs(r).len(), 1, "{}", stderr(&o));
    // The next boot (the OS empties /var/run): once, in the local stage, from the cached data.
    std::fs::remove_dir_all(r.join("var/run/wisp")).unwrap();
    let o = init(r);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(runs(r).len(), 2, "{}", stderr(&o));
    let o = Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(r)
        .args(["init", "--stage", "local"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(runs(r).len(), 2, "{}", stderr(&o));
}
