//! SSH host keys over real boots (`wisp init` against the mock MAAS, applied for real on Linux in
//! a throwaway root, where wisp makes the keys itself): an image's host keys are replaced on a
//! new instance, kept on a reboot of the same instance, and their fingerprints reach the console
//! once. Needs root, shadow-utils and ssh-keygen (CI has them).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

const USER_DATA: &str = "#cloud-config\nssh_genkeytypes: [ed25519]\n";
/// The image's key (a fixed test key: every machine made from the image would have it).
const IMAGE_PUB: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIABNZtRAVa0mXZze7RbywGAB+DisQtxMKqzv5e7gmwpW root@image\n";

fn machine(mock: &mock_maas::MockMaas) -> tempfile::TempDir {
    let t = linux_root();
    let r = t.path();
    let cfg = format!(
        "datasource_list: [MAAS]\ndatasource:\n  MAAS:\n    metadata_url: {url}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\n    max_wait: 3\n    timeout: 2\n",
        url = mock.metadata_url(),
    );
    std::fs::write(r.join("etc/wisp/wisp.yaml"), cfg).unwrap();
    std::fs::create_dir_all(r.join("etc/ssh")).unwrap();
    std::fs::write(
        r.join("etc/ssh/ssh_host_ed25519_key"),
        "image private key\n",
    )
    .unwrap();
    std::fs::write(r.join("etc/ssh/ssh_host_ed25519_key.pub"), IMAGE_PUB).unwrap();
    std::fs::write(r.join("etc/ssh/ssh_host_dsa_key"), "image dsa key\n").unwrap();
    t
}

fn wisp(root: &Path, args: &[&str]) -> Output {
    Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(root)
        .args(args)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .unwrap()
}

fn public(root: &Path) -> String {
    std::fs::read_to_string(root.join("etc/ssh/ssh_host_ed25519_key.pub")).unwrap_or_default()
}

#[test]
fn image_host_keys_are_replaced_per_instance_and_kept_on_reboot() {
    if !can_apply_linux() || Command::new("ssh-keygen").arg("-?").output().is_err() {
        return;
    }
    let mock = mock_with(|f| f.machines[0].user_data = Some(USER_DATA.into()));
    let t = machine(&mock);
    let r = t.path();
    let o = wisp(r, &["init"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // New keys, not the image's; the image's other keys are gone.
    let first = public(r);
    assert!(first.starts_with("ssh-ed25519 "), "{first:?}");
    assert_ne!(first, IMAGE_PUB);
    assert!(!r.join("etc/ssh/ssh_host_dsa_key").exists());
    // Their fingerprint, as ssh-keygen computes it, on the console.
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(r.join("etc/ssh/ssh_host_ed25519_key.pub"))
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&fp.stdout).trim().to_string();
    let console = stdout(&o);
    assert!(
        console.contains(&format!(
            "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n{fp}\n-----END SSH HOST KEY FINGERPRINTS-----"
        )),
        "{fp}\n{console}"
    );
    let done: Vec<String> = mock
        .events(SYSTEM_ID)
        .iter()
        .filter(|e| e["event_type"] == "finish")
        .map(|e| format!("{} {}", e["name"], e["result"]))
        .collect();
    assert!(
        done.contains(&"\"modules-config/config-ssh_host_keys\" \"SUCCESS\"".to_string()),
        "{done:?}"
    );
    // A reboot of the same instance keeps them, and shows nothing again.
    let o = wisp(r, &["init"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(public(r), first);
    assert!(!stdout(&o).contains("FINGERPRINTS"), "{}", stdout(&o));
    // A new instance (the machine redeployed from its disk): new keys again.
    assert_eq!(wisp(r, &["clean"]).status.code(), Some(0));
    let o = wisp(r, &["init"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let second = public(r);
    assert!(second.starts_with("ssh-ed25519 "), "{second:?}");
    assert_ne!(second, first);
}
