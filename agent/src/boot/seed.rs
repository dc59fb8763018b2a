//! Seeds found on the machine's own disks, in the local stage: the MAAS seed the curtin hook
//! left on the EFI partition, and NoCloud (`cidata`) or ConfigDrive (`config-2`) volumes found
//! by label. Only on the running system (never under `--root`, never in a dry run): each is
//! imported root-only into /var/db/wisp, where the datasources find it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::Config;
use crate::platform::disks::{parse_mount_table, Mounted, Probe};
use crate::platform::{self, Platform};
use crate::root::Root;
use crate::sources;
use crate::volumes::{self, FsKind};

/// Where volumes are mounted while their seed is copied.
const MOUNT_POINT: &str = "/var/db/wisp/mnt";

/// Runs a mount tool (argv, bounded in time); a failure is logged with the command.
fn run_tool(argv: &[String]) -> bool {
    tracing::info!(command = %argv.join(" "), "mounting");
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    match Probe::Host.output(&args) {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "mounting a seed volume");
            false
        }
    }
}

fn unmount(dir: &Path) {
    let _ = Command::new("umount").arg(dir).status();
}

fn mount_point(root: &Root) -> Option<std::path::PathBuf> {
    let mnt = root.path(MOUNT_POINT);
    match crate::fsutil::ensure_dir(&mnt, 0o700) {
        Ok(()) => Some(mnt),
        Err(e) => {
            tracing::warn!(error = %e, "cannot make a mount point for seed volumes");
            None
        }
    }
}

/// Where the MAAS seed may be, in the order they are tried.
#[derive(Debug, PartialEq, Eq)]
enum EspSource {
    /// A FAT file system mounted already (bsdinstall's and the Linux installers' fstab mount
    /// the ESP on /boot/efi): it cannot be mounted a second time ("Device busy"), and the seed
    /// is read, and deleted, there.
    Mounted(PathBuf),
    /// A device that is not mounted: probed read-only, mounted read-write only to move a seed
    /// found there.
    Device(PathBuf),
}

/// The mounted FAT file systems first, then the candidate devices the mount table does not
/// show (by the name it gives them, [`platform::Backend::block_device`]).
fn esp_sources(
    backend: &dyn platform::Backend,
    table: &[Mounted],
    devices: Vec<PathBuf>,
) -> Vec<EspSource> {
    let mut out: Vec<EspSource> = table
        .iter()
        .filter(|m| m.is_fat())
        .map(|m| EspSource::Mounted(PathBuf::from(&m.point)))
        .collect();
    out.extend(
        devices
            .into_iter()
            .filter(|d| {
                let name = backend.block_device(d);
                !table.iter().any(|m| m.device == name)
            })
            .map(EspSource::Device),
    );
    out
}

/// FreeBSD mounts the ESP by its label (`/dev/gpt/efiboot0`, `/dev/msdosfs/EFISYS`) where the
/// disk list names the partition (`/dev/vtbd0p1`): each label in the table is replaced by the
/// provider `glabel status` gives for it, so that a mounted partition is not mounted a second
/// time under its other name (which would also skip [`planted_by_root`]'s check).
fn resolve_labels(table: &mut [Mounted], glabel_status: &str) {
    for m in table.iter_mut() {
        let Some(label) = m.device.strip_prefix("/dev/").filter(|l| l.contains('/')) else {
            continue;
        };
        if let Some(provider) = crate::platform::disks::parse_glabel_status(glabel_status, label) {
            m.device = format!("/dev/{provider}");
        }
    }
}

fn has_seed(esp: &Path) -> bool {
    std::fs::symlink_metadata(esp.join(crate::curtin::SEED_ON_ESP)).is_ok()
}

/// A seed on a FAT file system mounted already is taken only when root alone could have put it
/// there: the seed and its directory owned by root and not writable by group or others. FAT
/// has no owners of its own, so these are the mount's (`mount_msdosfs -u/-g/-m`, vfat's
/// `uid=`/`umask=`): a stick a user mounted, or one mounted for all to write, is not searched
/// (a seed planted there would point the machine at another MAAS).
fn planted_by_root(esp: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let seed = esp.join(crate::curtin::SEED_ON_ESP);
    let dir = seed.parent().unwrap_or(esp).to_path_buf();
    for path in [dir, seed] {
        let m = std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if m.uid() != 0 {
            return Err(format!(
                "{} is owned by uid {}, not root",
                path.display(),
                m.uid()
            ));
        }
        if m.mode() & 0o022 != 0 {
            return Err(format!(
                "{} is writable by group or others (mode {:o})",
                path.display(),
                m.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

/// Moves the seed found in `esp` (mounted at `at`); true when it is imported.
fn import_from(root: &Root, esp: &Path, at: &Path) -> bool {
    match crate::curtin::import_from_esp(at, root) {
        Ok(true) => {
            tracing::info!(from = %esp.display(), "MAAS seed imported from the EFI partition");
            true
        }
        Ok(false) => false,
        Err(e) => {
            tracing::warn!(from = %esp.display(), error = %e, "importing the MAAS seed");
            false
        }
    }
}

/// The MAAS seed: from `esp` when given, else from the FAT file systems mounted already and
/// the FAT partitions of the disks (running system only).
pub fn import_maas_seed(root: &Root, platform: Platform, esp: Option<&Path>) {
    if root.path(crate::curtin::SEED_IMPORTED).exists() {
        return;
    }
    if let Some(esp) = esp {
        match crate::curtin::import_from_esp(esp, root) {
            Ok(true) => tracing::info!(esp = %esp.display(), "MAAS seed imported"),
            Ok(false) => tracing::info!(esp = %esp.display(), "no MAAS seed on the EFI partition"),
            Err(e) => tracing::warn!(error = %e, "importing the MAAS seed"),
        }
        return;
    }
    if !root.is_host() {
        return;
    }
    let backend = platform.backend(None);
    let mut table = match Probe::Host.output(&["mount"]) {
        Ok(text) => parse_mount_table(&text),
        Err(e) => {
            tracing::warn!(error = %e, "reading the mount table");
            Vec::new()
        }
    };
    let labelled = |m: &Mounted| {
        m.device
            .strip_prefix("/dev/")
            .is_some_and(|l| l.contains('/'))
    };
    if matches!(platform, Platform::Freebsd) && table.iter().any(labelled) {
        match Probe::Host.output(&["glabel", "status"]) {
            Ok(text) => resolve_labels(&mut table, &text),
            Err(e) => tracing::warn!(error = %e, "reading the GEOM labels"),
        }
    }
    for source in esp_sources(backend.as_ref(), &table, platform::disks(backend.as_ref())) {
        let dev = match source {
            EspSource::Mounted(point) => {
                if !has_seed(&point) {
                    continue;
                }
                if let Err(e) = planted_by_root(&point) {
                    tracing::warn!(error = %e, "MAAS seed not imported from a mounted FAT file system");
                    continue;
                }
                if import_from(root, &point, &point) {
                    return;
                }
                continue;
            }
            EspSource::Device(dev) => dev,
        };
        if !matches!(volumes::read_label(&dev), Some((FsKind::Fat, _))) {
            continue;
        }
        let Some(mnt) = mount_point(root) else {
            return;
        };
        let mnt_arg = mnt.display().to_string();
        if !run_tool(&backend.mount_seed(FsKind::Fat, &dev, &mnt_arg)) {
            continue;
        }
        let found = has_seed(&mnt);
        unmount(&mnt);
        if !found {
            continue;
        }
        // Read-write only now: the seed holds credentials and is deleted once moved.
        if !run_tool(&backend.mount_esp(&dev, &mnt_arg)) {
            continue;
        }
        let imported = import_from(root, &dev, &mnt);
        unmount(&mnt);
        if imported {
            return;
        }
    }
}

/// Looks for a NoCloud or ConfigDrive volume and imports its seed, when MAAS is not configured
/// and no seed is in place already.
pub fn discover(root: &Root, platform: Platform, config: &Config) {
    if !root.is_host() || sources::maas_config(config).is_some() {
        return;
    }
    let list = config.datasource_list.clone().unwrap_or_else(|| {
        sources::DEFAULT_LIST
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let nocloud = config.datasource.nocloud.clone().unwrap_or_default();
    let mut wanted: Vec<(String, &str)> = Vec::new();
    if list.iter().any(|d| d == "NoCloud")
        && nocloud.seedfrom.is_none()
        && !root.path(sources::NOCLOUD_SEED_DIR).exists()
    {
        wanted.push((
            nocloud.fs_label.unwrap_or_else(|| "cidata".into()),
            sources::NOCLOUD_SEED_DIR,
        ));
    }
    if list.iter().any(|d| d == "ConfigDrive") && !root.path(sources::CONFIGDRIVE_SEED_DIR).exists()
    {
        wanted.push(("config-2".into(), sources::CONFIGDRIVE_SEED_DIR));
    }
    if wanted.is_empty() {
        return;
    }
    let backend = platform.backend(None);
    let devices = platform::disks(backend.as_ref());
    for (label, dest) in wanted {
        let Some((dev, kind, _)) = volumes::find(&devices, &[label.as_str()]) else {
            continue;
        };
        let Some(mnt) = mount_point(root) else {
            return;
        };
        if !run_tool(&backend.mount_seed(kind, &dev, &mnt.display().to_string())) {
            tracing::warn!(device = %dev.display(), "cannot mount the {label} volume");
            continue;
        }
        match volumes::import_seed(&mnt, &root.path(dest)) {
            Ok(n) => {
                tracing::info!(device = %dev.display(), files = n, "seed imported from the {label} volume")
            }
            Err(e) => tracing::warn!(error = %e, "importing the {label} seed"),
        }
        unmount(&mnt);
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::disks::parse_mount_table;

    /// Last review (4): a seed on a mounted FAT file system that a user owns or may write is
    /// refused; one root alone could write is taken.
    #[test]
    fn a_mounted_seed_is_taken_only_when_root_alone_could_write_it() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let esp = d.path();
        let seed = esp.join(crate::curtin::SEED_ON_ESP);
        let dir = seed.parent().unwrap().to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&seed, "x").unwrap();
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode(&dir, 0o755);
        mode(&seed, 0o644);
        // SAFETY: geteuid(2) has no preconditions.
        let as_root = unsafe { libc::geteuid() } == 0;
        assert_eq!(planted_by_root(esp).is_ok(), as_root);
        if !as_root {
            return;
        }
        mode(&seed, 0o666);
        let e = planted_by_root(esp).unwrap_err();
        assert!(
            e.contains("maas-seed.yaml is writable by group or others"),
            "{e}"
        );
        mode(&seed, 0o644);
        mode(&dir, 0o775);
        let e = planted_by_root(esp).unwrap_err();
        assert!(e.contains("wisp is writable by group or others"), "{e}");
        mode(&dir, 0o755);
        std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
        let e = planted_by_root(esp).unwrap_err();
        assert!(e.contains("wisp is owned by uid 65534, not root"), "{e}");
        std::os::unix::fs::chown(&dir, Some(0), None).unwrap();
        std::os::unix::fs::chown(&seed, Some(65534), None).unwrap();
        assert!(planted_by_root(esp).is_err());
    }

    #[test]
    fn a_mounted_esp_is_read_where_it_is_and_not_mounted_again() {
        // FreeBSD, bsdinstall's UEFI layout: the ESP is on /boot/efi by fstab.
        let freebsd = Platform::Freebsd.backend(None);
        let table = parse_mount_table(
            "/dev/vtbd0p2 on / (ufs, local, soft-updates)\n\
             devfs on /dev (devfs)\n\
             /dev/vtbd0p1 on /boot/efi (msdosfs, local)\n",
        );
        let devices = ["/dev/vtbd0", "/dev/vtbd0p1", "/dev/vtbd1p1"].map(PathBuf::from);
        assert_eq!(
            esp_sources(freebsd.as_ref(), &table, devices.to_vec()),
            [
                EspSource::Mounted("/boot/efi".into()),
                EspSource::Device("/dev/vtbd0".into()),
                EspSource::Device("/dev/vtbd1p1".into()),
            ]
        );
        // Last review (5): mounted by its GPT label, the ESP is matched through glabel(8).
        let mut table = parse_mount_table(
            "/dev/vtbd0p2 on / (ufs, local)\n/dev/gpt/efiboot0 on /boot/efi (msdosfs, local)\n",
        );
        resolve_labels(
            &mut table,
            "                                      Name  Status  Components\n\
             gptid/3f6c0e2a-0000-11ef-8000-000000000000     N/A  vtbd0p1\n\
                                          gpt/efiboot0     N/A  vtbd0p1\n",
        );
        let devices = ["/dev/vtbd0p1", "/dev/vtbd1p1"].map(PathBuf::from);
        assert_eq!(
            esp_sources(freebsd.as_ref(), &table, devices.to_vec()),
            [
                EspSource::Mounted("/boot/efi".into()),
                EspSource::Device("/dev/vtbd1p1".into()),
            ]
        );
        // NetBSD: the raw wedge the disk list names is mounted as its block device.
        let netbsd = Platform::Netbsd.backend(None);
        let table = parse_mount_table(
            "/dev/dk1 on / type ffs (log, local)\n/dev/dk0 on /boot/efi type msdos (local)\n",
        );
        let devices = ["/dev/rdk0", "/dev/rdk1", "/dev/rdk2"].map(PathBuf::from);
        assert_eq!(
            esp_sources(netbsd.as_ref(), &table, devices.to_vec()),
            [
                EspSource::Mounted("/boot/efi".into()),
                EspSource::Device("/dev/rdk2".into()),
            ]
        );
        // Nothing mounted: every device, in order.
        let linux = Platform::Linux.backend(None);
        assert_eq!(
            esp_sources(linux.as_ref(), &[], vec![PathBuf::from("/dev/vda15")]),
            [EspSource::Device("/dev/vda15".into())]
        );
    }
}
