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
fn packer_provisioner_unpacks_openbsds_gzipped_archive() {
    // OpenBSD's base has gzip, not xz: cross/build gzips its archives, provision.sh reads the
    // format from the first bytes.
    let t = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let o = Command::new("bash")
        .arg(repo.join("cross/build"))
        .args(["package", "x86_64-unknown-openbsd"])
        .arg(common::wisp_bin())
        .arg("7.8")
        .env("WISP_DIST", t.path())
        .env("WISP_XZ_LEVEL", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let archive = t.path().join("wisp-0.1.0-x86_64-unknown-openbsd-7.8.tgz");
    let root = t.path().join("image");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let o = Command::new("sh")
        .arg(hook("packer/provision.sh"))
        .env("WISP_ARCHIVE", &archive)
        .env("WISP_ROOT", &root)
        .env("WISP_OS", "openbsd")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(root.join("etc/rc.d/wisp").exists());
    assert!(root.join("usr/local/sbin/wisp").exists());
    // Anything else is named, not unpacked.
    let junk = t.path().join("junk.tgz");
    std::fs::write(&junk, "not an archive").unwrap();
    let o = Command::new("sh")
        .arg(hook("packer/provision.sh"))
        .env("WISP_ARCHIVE", &junk)
        .env("WISP_ROOT", &root)
        .env("WISP_OS", "openbsd")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("neither gzip nor xz"));
}

#[test]
fn packer_provisioner_installs_from_a_release_archive_and_leaves_it_clean() {
    let t = tempfile::tempdir().unwrap();
    // A release archive made by cross/build (with this machine's binary in it).
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let o = Command::new("bash")
        .arg(repo.join("cross/build"))
        .args(["package", "x86_64-unknown-netbsd"])
        .arg(common::wisp_bin())
        .env("WISP_DIST", t.path())
        .env("WISP_XZ_LEVEL", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let archive = t.path().join("wisp-0.1.0-x86_64-unknown-netbsd.tar.xz");
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
    // The archive's manifest: the newsyslog entry too, as image-hooks/install gives it.
    assert_eq!(
        std::fs::read_to_string(root.join("etc/newsyslog.conf")).unwrap(),
        std::fs::read_to_string(repo.join("packaging/newsyslog/netbsd.conf")).unwrap()
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

#[test]
fn netbsd_image_has_a_gpt_an_esp_with_the_hook_and_an_ffs_root_with_wisp() {
    for t in ["makefs", "sgdisk", "mkfs.vfat", "mdir", "xz"] {
        assert!(have(t), "{t} is needed (.ci/run installs it)");
    }
    let t = tempfile::tempdir().unwrap();
    let w = t.path();
    // A tiny NetBSD release tree: what the builder needs of it.
    let destdir = w.join("destdir");
    for d in ["usr/mdec", "etc", "bin", "usr/bin"] {
        std::fs::create_dir_all(destdir.join(d)).unwrap();
    }
    std::fs::write(
        destdir.join("usr/mdec/bootx64.efi"),
        "the NetBSD UEFI loader",
    )
    .unwrap();
    std::fs::write(
        destdir.join("etc/master.passwd"),
        "root:*:0:0::0:0:Charlie &:/root:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(destdir.join("etc/group"), "wheel:*:0:root\n").unwrap();
    std::fs::write(destdir.join("bin/sh"), "#!/bin/sh\n").unwrap();
    std::os::unix::fs::symlink("../../bin/sh", destdir.join("usr/bin/sh")).unwrap();
    std::fs::write(w.join("kernel"), "a NetBSD kernel").unwrap();
    let stand_in = w.join("wisp-stand-in");
    std::fs::write(&stand_in, "#!/bin/sh\necho wisp\n").unwrap();
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = w.join("out");
    let o = Command::new("sh")
        .arg(hook("netbsd/mkimage"))
        .arg("--destdir")
        .arg(&destdir)
        .arg("--kernel")
        .arg(w.join("kernel"))
        .args(["--root-size", "16m", "--esp-size", "34m"])
        .arg("--wisp")
        .arg(&stand_in)
        .arg("--wisp-linux-x86_64")
        .arg(&stand_in)
        .arg("--wisp-linux-aarch64")
        .arg(&stand_in)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let raw = w.join("image.raw");
    let xz = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "xz -dc '{}' > '{}'",
            out.join("image.amd64.xz").display(),
            raw.display()
        ))
        .status()
        .unwrap();
    assert!(xz.success());
    // GPT: an EFI system partition, then a NetBSD FFS partition named wisp-root.
    let info = |n: &str| {
        String::from_utf8_lossy(
            &Command::new("sgdisk")
                .args(["-i", n])
                .arg(&raw)
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    let esp = info("1");
    assert!(
        esp.contains("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
        "{esp}"
    );
    assert!(esp.contains("First sector: 2048 "), "{esp}");
    let ffs = info("2");
    assert!(
        ffs.contains("49F48D5A-B10E-11DC-B99B-0019D1879648") && ffs.contains("'wisp-root'"),
        "{ffs}"
    );
    // The root is the last partition, so that growpart can grow it, and fstab mounts it as the
    // kernel's root device without log: what rc.d/resize_root needs to grow its file system.
    let third = info("3");
    assert!(third.contains("does not exist"), "{third}");
    let image = std::fs::read(&raw).unwrap();
    let has = |s: &[u8]| image.windows(s.len()).any(|w| w == s);
    assert!(has(b"ROOT. / ffs rw 1 1\n"), "fstab mounts ROOT.");
    assert!(!has(b"rw,log"), "fstab mounts / with log");
    // The ESP: the loader at the removable-media path, the hook and wisp for both Linux arches.
    let listing = Command::new("mdir")
        .arg("-i")
        .arg(format!("{}@@1048576", raw.display()))
        .args(["-/", "-b", "::"])
        .output()
        .unwrap();
    let files = String::from_utf8_lossy(&listing.stdout).to_lowercase();
    for f in [
        "::/efi/boot/bootx64.efi",
        "::/curtin/curtin-hooks",
        "::/curtin/wisp-x86_64-linux",
        "::/curtin/wisp-aarch64-linux",
        "::/bin/bash",
    ] {
        assert!(files.contains(f), "{f} missing in\n{files}");
    }
    let hooks = Command::new("mtype")
        .arg("-i")
        .arg(format!("{}@@1048576", raw.display()))
        .arg("::/curtin/curtin-hooks")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&hooks.stdout).contains("exec \"$bin\" curtin-hook"));
    // The FFS root: a UFS2 superblock where NetBSD looks for it, built from this spec.
    let img = std::fs::read(&raw).unwrap();
    let root_at = {
        let first: u64 = ffs
            .lines()
            .find_map(|l| l.strip_prefix("First sector: "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap();
        (first * 512) as usize
    };
    // Without NetBSD's tools, FFSv1: its superblock at 8192, FS_UFS1_MAGIC.
    let magic = u32::from_le_bytes(
        img[root_at + 8192 + 1372..root_at + 8192 + 1376]
            .try_into()
            .unwrap(),
    );
    assert_eq!(magic, 0x011954, "FS_UFS1_MAGIC");
    assert!(String::from_utf8_lossy(&o.stdout).contains("NetBSD FFSv1 root"));
    let spec = std::fs::read_to_string(out.join("image.amd64.spec")).unwrap();
    for line in [
        "./usr/local/sbin/wisp type=file uname=root gname=wheel mode=0555",
        "./etc/rc.d/wispnet type=file uname=root gname=wheel mode=0555",
        "./netbsd type=file uname=root gname=wheel mode=0644",
        "./usr/bin/sh type=link uname=root gname=wheel mode=0755 link=../../bin/sh",
    ] {
        assert!(
            spec.lines().any(|l| l == line),
            "{line} missing in the spec\n{spec}"
        );
    }
}
