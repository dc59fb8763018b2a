//! Seeds found on the machine's own disks, in the local stage: the MAAS seed the curtin hook
//! left on the EFI partition, and NoCloud (`cidata`) or ConfigDrive (`config-2`) volumes found
//! by label. Only on the running system (never under `--root`, never in a dry run): each is
//! imported root-only into /var/db/wisp, where the datasources find it.

use std::path::Path;
use std::process::Command;

use crate::config::Config;
use crate::platform::{self, Platform};
use crate::root::Root;
use crate::sources;
use crate::volumes::{self, FsKind};

/// Where volumes are mounted while their seed is copied.
const MOUNT_POINT: &str = "/var/db/wisp/mnt";

fn run_tool(argv: &[String]) -> bool {
    let Some((prog, args)) = argv.split_first() else {
        return false;
    };
    tracing::info!(command = %argv.join(" "), "mounting");
    Command::new(prog)
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
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

/// The MAAS seed: from `esp` when given, else from the FAT partitions of the disks (running
/// system only), mounted read-write because the seed is deleted from there once imported.
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
    for dev in platform::disks(backend.as_ref()) {
        if !matches!(volumes::read_label(&dev), Some((FsKind::Fat, _))) {
            continue;
        }
        let Some(mnt) = mount_point(root) else {
            return;
        };
        if !run_tool(&backend.mount_esp(&dev, &mnt.display().to_string())) {
            continue;
        }
        let imported = crate::curtin::import_from_esp(&mnt, root);
        unmount(&mnt);
        match imported {
            Ok(true) => {
                tracing::info!(device = %dev.display(), "MAAS seed imported from the EFI partition");
                return;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(device = %dev.display(), error = %e, "importing the MAAS seed")
            }
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
