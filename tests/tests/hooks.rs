//! The other image paths: a NoCloud seed volume (image-hooks/seed), the Ganeti customization
//! hook, and the Packer provisioner — each against fake roots on this machine.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn hook(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../image-hooks")
        .join(p)
}

fn have(tool: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join(tool).exists())
}

fn wisp_json(root: &Path, args: &[&str]) -> serde_json::Value {
    let o = Command::new(common::wisp_bin())
        .arg("--root")
        .arg(root)
        .args(["--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn seed_volumes_carry_the_label_and_the_files() {
    if !have("xorriso") || !have("mkfs.vfat") || !have("mtype") {
        panic!("xorriso, dosfstools and mtools are needed (.ci/run installs them)");
    }
    let t = tempfile::tempdir().unwrap();
    let ud = t.path().join("ud");
    std::fs::write(&ud, "#cloud-config\nhostname: seeded\n").unwrap();
    let iso = t.path().join("seed.iso");
    let o = Command::new("sh")
        .arg(hook("seed"))
        .arg("--user-data")
        .arg(&ud)
        .args(["--hostname", "box1"])
        .arg(&iso)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let data = std::fs::read(&iso).unwrap();
    assert_eq!(&data[32768..32774], b"\x01CD001");
    assert_eq!(
        String::from_utf8_lossy(&data[32808..32840]).trim_end(),
        "cidata"
    );
    // What the first boot would read from it: extract, and let wisp fetch from the seed.
    let root = t.path().join("root");
    let seed = root.join("var/db/wisp/seed/nocloud");
    std::fs::create_dir_all(&seed).unwrap();
    let o = Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(&iso)
        .args(["-extract", "/"])
        .arg(&seed)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = wisp_json(&root, &["fetch"]);
    assert_eq!(md["datasource"], "NoCloud");
    assert_eq!(md["local_hostname"], "box1");
    assert!(md["instance_id"].as_str().unwrap().starts_with("iid-"));
    assert_eq!(md["user_data"]["cloud_config_keys"][0], "hostname");

    let img = t.path().join("seed.img");
    let o = Command::new("sh")
        .arg(hook("seed"))
        .args(["--format", "fat", "--user-data"])
        .arg(&ud)
        .arg(&img)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let boot = std::fs::read(&img).unwrap();
    assert_eq!(String::from_utf8_lossy(&boot[43..54]).trim_end(), "CIDATA");
    let o = Command::new("mtype")
        .arg("-i")
        .arg(&img)
        .arg("::user-data")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "#cloud-config\nhostname: seeded\n"
    );
    // No user-data: a clear error.
    let o = Command::new("sh")
        .arg(hook("seed"))
        .arg(t.path().join("x.iso"))
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
}

#[test]
fn ganeti_hook_installs_wisp_and_seeds_the_instance() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the installer sets owners, which needs root (CI has it)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let target = t.path();
    let o = Command::new("sh")
        .arg(hook("ganeti/50-wisp"))
        .env("TARGET", target)
        .env("INSTANCE_NAME", "vm1.example.org")
        .env("INSTANCE_UUID", "5a1c0c0e-0000-4000-8000-000000000001")
        .env("NIC_COUNT", "2")
        .env("NIC_0_MAC", "aa:00:00:00:00:01")
        .env("NIC_0_IP", "192.0.2.10")
        .env("NIC_0_NETWORK_SUBNET", "192.0.2.0/24")
        .env("NIC_0_NETWORK_GATEWAY", "192.0.2.1")
        .env("NIC_1_MAC", "aa:00:00:00:00:02")
        .env("OSP_WISP_OS", "freebsd")
        .env(
            "OSP_WISP_SSH_KEYS",
            "ssh-ed25519 AAAA one@x\nssh-rsa BBBB \"two\"@y",
        )
        .env("OSP_WISP_USER_DATA", "#cloud-config\ntimezone: UTC")
        .env("WISP_BINARY", common::wisp_bin())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(target.join("usr/local/etc/rc.d/wispnet").exists());
    assert_eq!(
        std::fs::read_to_string(target.join("etc/rc.conf.d/wisp")).unwrap(),
        "wisp_enable=\"YES\"\n"
    );
    let seed = target.join("var/db/wisp/seed/nocloud");
    assert_eq!(
        std::fs::metadata(&seed).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(seed.join("meta-data"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let md = wisp_json(target, &["fetch"]);
    assert_eq!(md["instance_id"], "5a1c0c0e-0000-4000-8000-000000000001");
    assert_eq!(md["local_hostname"], "vm1.example.org");
    assert_eq!(
        md["public_keys"],
        serde_json::json!(["ssh-ed25519 AAAA one@x", "ssh-rsa BBBB \"two\"@y"])
    );
    let net = &md["network_config"]["config"];
    assert_eq!(net[0]["mac_address"], "aa:00:00:00:00:01");
    assert_eq!(net[0]["subnets"][0]["address"], "192.0.2.10/24");
    assert_eq!(net[0]["subnets"][0]["gateway"], "192.0.2.1");
    assert_eq!(net[1]["subnets"][0]["type"], "dhcp");
    assert_eq!(md["user_data"]["cloud_config_keys"][0], "timezone");
    // Missing Ganeti environment: a clear error.
    let o = Command::new("sh")
        .arg(hook("ganeti/50-wisp"))
        .env_remove("TARGET")
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("TARGET"));
}

#[test]
fn packer_provisioner_installs_from_a_release_archive_and_leaves_it_clean() {
    let t = tempfile::tempdir().unwrap();
    // A release archive as cross/build makes it (with this machine's binary in it).
    let pkg = t.path().join("wisp-0.1.0-x86_64-unknown-netbsd");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (from, to) in [
        (common::wisp_bin(), "sbin/wisp"),
        (repo.join("agent/man/wisp.8"), "man/man8/wisp.8"),
        (repo.join("agent/man/wisp.yaml.5"), "man/man5/wisp.yaml.5"),
        (repo.join("agent/etc/wisp.yaml"), "etc/wisp/wisp.yaml"),
        (repo.join("rc.d/netbsd/wisplocal"), "rc.d/wisplocal"),
        (repo.join("rc.d/netbsd/wispnet"), "rc.d/wispnet"),
        (repo.join("rc.d/netbsd/wispfinal"), "rc.d/wispfinal"),
    ] {
        let dest = pkg.join(to);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from, dest).unwrap();
    }
    let archive = t.path().join("wisp.tar.xz");
    let tar = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C '{}' -cf - wisp-0.1.0-x86_64-unknown-netbsd | xz -0 -T0 -c > '{}'",
            t.path().display(),
            archive.display()
        ))
        .status()
        .unwrap();
    assert!(tar.success());
    let root = t.path().join("image");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    // Leftovers of the build machine's own boot.
    std::fs::create_dir_all(root.join("var/db/wisp/seed/nocloud")).unwrap();
    std::fs::write(root.join("var/db/wisp/instance-id"), "build-vm\n").unwrap();
    let o = Command::new("sh")
        .arg(hook("packer/provision.sh"))
        .env("WISP_ARCHIVE", &archive)
        .env("WISP_ROOT", &root)
        .env("WISP_OS", "netbsd")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(root.join("etc/rc.d/wispfinal").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("etc/rc.conf")).unwrap(),
        "wisp=YES\n"
    );
    let mode = std::fs::metadata(root.join("usr/local/sbin/wisp"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o555);
    assert_eq!(
        std::fs::read_dir(root.join("var/db/wisp")).unwrap().count(),
        0,
        "wisp clean ran"
    );
}
