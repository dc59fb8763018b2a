//! Finding a seed volume by its label (NoCloud `cidata`, ConfigDrive `config-2`), the same way
//! on every system: the label is read from the device itself — the ISO 9660 primary volume
//! descriptor, or a FAT boot sector — so no per-OS label service is needed. Listing the disks and
//! mounting what is found is the backend's part.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Iso9660,
    Fat,
}

/// The largest sector size a disk has (4Kn): reads of raw devices (BSD character devices) must
/// be whole sectors at sector offsets, so every read here is this size at a multiple of it.
const SECTOR: usize = 4096;

/// The filesystem and label of a device or image, if it is ISO 9660 or FAT.
pub fn read_label(dev: &Path) -> Option<(FsKind, String)> {
    let mut f = std::fs::File::open(dev).ok()?;
    label_of(&mut f)
}

/// Reads up to one [`SECTOR`] at `offset` (a multiple of it); how many bytes came (fewer at
/// the end of an image file).
fn read_sector(f: &mut (impl Read + Seek), offset: u64, buf: &mut [u8; SECTOR]) -> usize {
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return 0;
    }
    let mut got = 0;
    while got < SECTOR {
        match f.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

fn label_of(f: &mut (impl Read + Seek)) -> Option<(FsKind, String)> {
    let mut sector = [0u8; SECTOR];
    // ISO 9660: the primary volume descriptor is sector 16 (2048-byte sectors), byte 32768.
    if read_sector(f, 16 * 2048, &mut sector) >= 2048 && sector[0] == 1 && &sector[1..6] == b"CD001"
    {
        return Some((FsKind::Iso9660, text(&sector[40..72])));
    }
    if read_sector(f, 0, &mut sector) < 512 {
        return None;
    }
    let boot = &sector[..512];
    let jump = boot[0] == 0xEB || boot[0] == 0xE9;
    if !jump || boot[510] != 0x55 || boot[511] != 0xAA {
        return None;
    }
    // FAT32 keeps the extended boot record further on than FAT12/16.
    let (sig, label) = if &boot[82..87] == b"FAT32" {
        (66, 71)
    } else {
        (38, 43)
    };
    if boot[sig] != 0x29 {
        return None;
    }
    Some((FsKind::Fat, text(&boot[label..label + 11])))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

/// The first of `devices` whose label is one of `labels` (case does not matter: FAT labels
/// are upper case).
pub fn find(devices: &[PathBuf], labels: &[&str]) -> Option<(PathBuf, FsKind, String)> {
    devices.iter().find_map(|d| {
        let (kind, label) = read_label(d)?;
        labels
            .iter()
            .any(|l| l.eq_ignore_ascii_case(&label))
            .then(|| (d.clone(), kind, label))
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A minimal ISO 9660 image: just enough for the volume descriptor.
    pub fn iso(label: &str) -> Vec<u8> {
        let mut img = vec![0u8; 17 * 2048];
        let pvd = &mut img[16 * 2048..];
        pvd[0] = 1;
        pvd[1..6].copy_from_slice(b"CD001");
        let mut id = [b' '; 32];
        id[..label.len()].copy_from_slice(label.as_bytes());
        pvd[40..72].copy_from_slice(&id);
        img
    }

    /// A FAT boot sector with a label (FAT16 or FAT32 layout).
    pub fn fat(label: &str, fat32: bool) -> Vec<u8> {
        let mut img = vec![0u8; 4096];
        img[0] = 0xEB;
        img[510] = 0x55;
        img[511] = 0xAA;
        let (sig, at) = if fat32 { (66, 71) } else { (38, 43) };
        if fat32 {
            img[82..90].copy_from_slice(b"FAT32   ");
        }
        img[sig] = 0x29;
        let mut l = [b' '; 11];
        l[..label.len()].copy_from_slice(label.as_bytes());
        img[at..at + 11].copy_from_slice(&l);
        img
    }

    /// A raw device as the BSDs have them: reads that are not whole 4096-byte sectors at
    /// sector offsets fail (EINVAL).
    struct RawDevice {
        data: std::io::Cursor<Vec<u8>>,
    }

    impl Read for RawDevice {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if buf.len() % SECTOR != 0 || self.data.position() % SECTOR as u64 != 0 {
                return Err(std::io::Error::from_raw_os_error(22));
            }
            self.data.read(buf)
        }
    }

    impl Seek for RawDevice {
        fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
            self.data.seek(to)
        }
    }

    #[test]
    fn labels_of_raw_devices_are_read_in_whole_sectors() {
        let raw = |mut b: Vec<u8>| {
            b.resize(64 * 1024, 0);
            RawDevice {
                data: std::io::Cursor::new(b),
            }
        };
        assert_eq!(
            label_of(&mut raw(fat("ESP", false))),
            Some((FsKind::Fat, "ESP".into()))
        );
        assert_eq!(
            label_of(&mut raw(fat("CIDATA", true))),
            Some((FsKind::Fat, "CIDATA".into()))
        );
        assert_eq!(
            label_of(&mut raw(iso("cidata"))),
            Some((FsKind::Iso9660, "cidata".into()))
        );
    }

    #[test]
    fn labels_of_iso_and_fat_images() {
        let d = tempfile_dir();
        let write = |n: &str, b: Vec<u8>| {
            let p = d.join(n);
            std::fs::write(&p, b).unwrap();
            p
        };
        let iso = write("seed.iso", iso("cidata"));
        let fat16 = write("fat16.img", fat("CIDATA", false));
        let fat32 = write("fat32.img", fat("config-2", true));
        let junk = write("junk", vec![7u8; 70_000]);
        let empty = write("empty", Vec::new());
        assert_eq!(read_label(&iso), Some((FsKind::Iso9660, "cidata".into())));
        assert_eq!(read_label(&fat16), Some((FsKind::Fat, "CIDATA".into())));
        assert_eq!(read_label(&fat32), Some((FsKind::Fat, "config-2".into())));
        assert_eq!(read_label(&junk), None);
        assert_eq!(read_label(&empty), None);
        assert_eq!(read_label(&d.join("missing")), None);
        let devices = vec![junk.clone(), fat16.clone(), iso.clone()];
        assert_eq!(find(&devices, &["cidata"]).unwrap().0, fat16);
        assert_eq!(find(&devices, &["config-2"]), None);
        std::fs::remove_dir_all(d).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("wisp-vol-{}", wisp_datasources::oauth::new_nonce()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

/// Copies a mounted seed into `dest` (created 0700): the NoCloud files, or ConfigDrive's
/// `openstack/` tree. Files over 16 MiB and links are skipped.
pub fn import_seed(mounted: &Path, dest: &Path) -> std::io::Result<usize> {
    crate::fsutil::ensure_dir(dest, 0o700)?;
    let mut copied = 0;
    let names = ["meta-data", "user-data", "vendor-data", "network-config"];
    for n in names {
        copied += copy_file(&mounted.join(n), &dest.join(n))?;
    }
    let os = mounted.join("openstack");
    if os.is_dir() {
        copied += copy_tree(&os, &dest.join("openstack"), 0)?;
    }
    Ok(copied)
}

fn copy_file(from: &Path, to: &Path) -> std::io::Result<usize> {
    match std::fs::symlink_metadata(from) {
        Ok(m) if m.is_file() && m.len() <= 16 * 1024 * 1024 => {
            let data = std::fs::read(from)?;
            crate::fsutil::write_atomic(to, &data, 0o600)?;
            Ok(1)
        }
        _ => Ok(0),
    }
}

fn copy_tree(from: &Path, to: &Path, depth: usize) -> std::io::Result<usize> {
    if depth > 4 {
        return Ok(0);
    }
    crate::fsutil::ensure_dir(to, 0o700)?;
    let mut n = 0;
    for e in std::fs::read_dir(from)?.flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        let m = std::fs::symlink_metadata(&p)?;
        if m.is_dir() {
            n += copy_tree(&p, &t, depth + 1)?;
        } else {
            n += copy_file(&p, &t)?;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod import_tests {
    use super::*;

    #[test]
    fn imports_nocloud_and_configdrive_seeds_root_only() {
        use std::os::unix::fs::PermissionsExt;
        let d =
            std::env::temp_dir().join(format!("wisp-imp-{}", wisp_datasources::oauth::new_nonce()));
        let m = d.join("mnt");
        std::fs::create_dir_all(m.join("openstack/latest")).unwrap();
        std::fs::write(m.join("meta-data"), "instance-id: i\n").unwrap();
        std::fs::write(m.join("user-data"), "#cloud-config\n").unwrap();
        std::fs::write(m.join("openstack/latest/meta_data.json"), "{}").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", m.join("vendor-data")).unwrap();
        let dest = d.join("seed");
        assert_eq!(
            import_seed(&m, &dest).unwrap(),
            3,
            "the symlink is not followed"
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("meta-data")).unwrap(),
            "instance-id: i\n"
        );
        assert!(!dest.join("vendor-data").exists());
        let mode = std::fs::metadata(dest.join("user-data"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(mode, 0o600);
        assert!(dest.join("openstack/latest/meta_data.json").exists());
        std::fs::remove_dir_all(d).unwrap();
    }
}
