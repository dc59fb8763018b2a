//! The MAAS path through curtin, end to end: curtin's config (shaped as MAAS makes it, pointing
//! at the mock) → the real `curtin/curtin-hooks` on a fake EFI partition → the seed → first boot
//! (`wisp init --esp`) imports it root-only, deletes it from FAT, and deploys.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;
use mock_maas::MachineStatus;

/// A curtin config as MAAS makes it (see ../shared/fixtures/curtin-config.yaml) for the mock.
fn curtin_config(mock: &mock_maas::MockMaas) -> String {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/curtin-config.yaml");
    let text =
        std::fs::read_to_string(&fixture).unwrap_or_else(|e| panic!("{}: {e}", fixture.display()));
    text.replace(
        "http://10.20.0.2:5248/MAAS/metadata/status/8kq3dx",
        &mock.status_url(SYSTEM_ID),
    )
    .replace("http://10.20.0.2:5248/MAAS/metadata/", &mock.metadata_url())
}

#[test]
fn curtin_hook_script_writes_the_seed_and_the_first_boot_deploys() {
    let mock =
        mock_with(|f| f.machines[0].user_data = Some("#cloud-config\nhostname: fromseed\n".into()));
    let work = tempfile::tempdir().unwrap();
    let esp = work.path().join("esp");
    std::fs::create_dir_all(esp.join("curtin")).unwrap();
    // The EFI partition as the image builder lays it out: the hook and a static wisp beside it.
    let hook = Path::new(env!("CARGO_MANIFEST_DIR")).join("../image-hooks/curtin/curtin-hooks");
    std::fs::copy(&hook, esp.join("curtin/curtin-hooks")).unwrap();
    std::fs::copy(wisp_bin(), esp.join("curtin/wisp-x86_64-linux")).unwrap();
    std::fs::copy(wisp_bin(), esp.join("curtin/wisp-aarch64-linux")).unwrap();
    let config = work.path().join("curtin.yaml");
    std::fs::write(&config, curtin_config(&mock)).unwrap();
    let o = Command::new(esp.join("curtin/curtin-hooks"))
        .env("CONFIG", &config)
        .env("TARGET_MOUNT_POINT", &esp)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("seed written") && out.contains("network config version 1 (4 entries)"),
        "{out}"
    );
    assert!(
        !out.contains(TOKEN_SECRET),
        "the log of curtin must not show the secret"
    );
    let seed = std::fs::read_to_string(esp.join("wisp/maas-seed.yaml")).unwrap();
    assert!(
        seed.contains(&mock.metadata_url()) && seed.contains("mac_address: 3c:ec:ef:10:22:7a"),
        "{seed}"
    );

    if !can_apply_linux() {
        return;
    }
    // First boot: no wisp.yaml at all, only the seed on the EFI partition.
    let root = linux_root();
    let r = root.path();
    let o = Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(r)
        .args(["init", "--esp"])
        .arg(&esp)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !esp.join("wisp/maas-seed.yaml").exists(),
        "credentials must not stay on FAT"
    );
    let imported = r.join("var/db/wisp/seed/maas.yaml");
    assert_eq!(
        std::fs::metadata(&imported).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deployed));
    assert_eq!(
        std::fs::read_to_string(r.join("etc/hostname")).unwrap(),
        "fromseed\n"
    );
    assert!(mock
        .events(SYSTEM_ID)
        .iter()
        .any(|e| e["name"] == "modules-final" && e["result"] == "SUCCESS"));
}

#[test]
fn a_bad_curtin_config_fails_loudly() {
    let work = tempfile::tempdir().unwrap();
    let run = |text: &str| {
        let config = work.path().join("c.yaml");
        std::fs::write(&config, text).unwrap();
        Command::new(wisp_bin())
            .arg("curtin-hook")
            .arg("--curtin-config")
            .arg(&config)
            .arg("--target")
            .arg(work.path().join("esp"))
            .output()
            .unwrap()
    };
    let o = run("reporting: [unclosed\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not valid YAML"));
    let o = run("apt: {}\n");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no MAAS credentials") && err.contains("reporting.maas"),
        "{err}"
    );
    assert!(!work.path().join("esp/wisp").exists(), "nothing written");
    // No CONFIG at all.
    let o = Command::new(wisp_bin())
        .arg("curtin-hook")
        .env_remove("CONFIG")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("set CONFIG"));
}
