//! Atomic, permission-exact file writes: temp file in the same directory (created exclusively,
//! never through a symlink), fsync, rename, fsync of the directory — the fsyncs as durable as
//! the data needs ([`Durability`]).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// How hard a write insists on reaching the disk before it returns. Each fsync costs a disk
/// round trip (tens of milliseconds on a slow or virtual disk), so only what a crash would lose
/// for good pays for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The file, then its directory: after a crash the new file is there, whole.
    Full,
    /// The file only: after a crash there is the old file or the new one, each whole, but the
    /// rename itself may be lost. For data that the next run fetches or derives again.
    Contents,
    /// Neither: after a crash the file may be the old one, or even empty. For caches whose
    /// readers take a missing or unreadable file as "not known yet".
    None,
}

/// Writes `data` to `path` atomically with `mode`. A crash leaves either the old or the new file.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_with(path, data, mode, Durability::Full)
}

/// [`write_atomic`] with a chosen [`Durability`]: the file is still replaced by rename, so a
/// reader never sees half of it while the system runs.
pub fn write_atomic_with(
    path: &Path,
    data: &[u8],
    mode: u32,
    durability: Durability,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    // One name per target: a temp file a crash left is found and removed here (remove_file
    // removes a link itself, never what it points to).
    let tmp = dir.join(format!(
        ".{}{}",
        name.to_string_lossy(),
        crate::rootfs::TMP_SUFFIX
    ));
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        // The umask may have narrowed the mode; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        if durability != Durability::None {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durability == Durability::Full {
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `dir` and its missing parents one by one, each with its mode set explicitly (the
/// umask plays no part): `mode` for `dir`, 0755 for the parents. Existing ones are left alone.
pub fn create_dirs(dir: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && fs::symlink_metadata(d).is_err())
        .collect();
    for d in missing.into_iter().rev() {
        // Root-only until its mode is set.
        match fs::DirBuilder::new().mode(0o700).create(d) {
            Ok(()) => {
                let m = if d == dir { mode } else { 0o755 };
                fs::set_permissions(d, fs::Permissions::from_mode(m))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Creates `dir` (and parents, see [`create_dirs`]) and sets its mode exactly.
pub fn ensure_dir(dir: &Path, mode: u32) -> io::Result<()> {
    create_dirs(dir, mode)?;
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    if meta.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "wisp-fsutil-{}",
            wisp_datasources::oauth::new_nonce()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn writes_with_exact_mode_and_replaces() {
        let d = tmpdir();
        let p = d.join("f");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o640).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "no temp file left");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn replaces_a_symlink_instead_of_writing_through_it() {
        let d = tmpdir();
        let target = d.join("target");
        fs::write(&target, b"keep").unwrap();
        let link = d.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert!(!fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn every_durability_writes_the_same_file() {
        let d = tmpdir();
        for (i, durability) in [Durability::Full, Durability::Contents, Durability::None]
            .into_iter()
            .enumerate()
        {
            let p = d.join(format!("f{i}"));
            write_atomic_with(&p, b"old", 0o600, durability).unwrap();
            write_atomic_with(&p, b"new", 0o640, durability).unwrap();
            assert_eq!(fs::read(&p).unwrap(), b"new");
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
                0o640
            );
        }
        assert_eq!(fs::read_dir(&d).unwrap().count(), 3, "no temp file left");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_stale_temp_file_is_removed_not_followed() {
        let d = tmpdir();
        let victim = d.join("victim");
        fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, d.join(".f.wisp-tmp")).unwrap();
        write_atomic(&d.join("f"), b"new", 0o600).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(fs::read(d.join("f")).unwrap(), b"new");
        assert_eq!(
            fs::read_dir(&d).unwrap().count(),
            2,
            "the stale temp file is gone"
        );
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn ensure_dir_sets_mode() {
        let d = tmpdir();
        let s = d.join("a/b");
        ensure_dir(&s, 0o700).unwrap();
        assert_eq!(
            fs::metadata(&s).unwrap().permissions().mode() & 0o7777,
            0o700
        );
        fs::remove_dir_all(d).unwrap();
    }
}
