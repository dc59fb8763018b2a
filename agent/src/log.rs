//! The log: `/var/log/wisp.log` (0600, appended) beside a short console output, for the
//! commands that change the system. Nothing secret is ever logged: secrets are not formatted
//! anywhere but into the tools' standard input.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::sync::{Arc, Mutex};

use crate::root::Root;

pub const LOG_FILE: &str = "/var/log/wisp.log";

/// Opens the log for appending, creating it root-only; a symlink in its place is refused.
pub fn open(root: &Root) -> io::Result<File> {
    let path = root.path(LOG_FILE);
    // Each component a real directory under the root: ROOT/var/log as a link would put the
    // log outside it.
    if let Some((dir, _)) = LOG_FILE.rsplit_once('/') {
        crate::rootfs::real_dirs(root, dir).map_err(io::Error::other)?;
    }
    // Not blocking on a FIFO (no reader: an error at once), and only a regular file is kept.
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

/// Writes to standard error and, when open, to the log file.
#[derive(Clone)]
pub struct Tee {
    file: Option<Arc<Mutex<File>>>,
}

impl Tee {
    pub fn new(file: Option<File>) -> Tee {
        Tee {
            file: file.map(|f| Arc::new(Mutex::new(f))),
        }
    }
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        if let Some(f) = &self.file {
            if let Ok(mut f) = f.lock() {
                let _ = f.write_all(buf);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(f) = &self.file {
            if let Ok(mut f) = f.lock() {
                let _ = f.flush();
            }
        }
        io::stderr().flush()
    }
}

/// The end of the log (at most `max` bytes), to attach to a final FAIL or WARN event.
pub fn tail(root: &Root, max: usize) -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(root.path(LOG_FILE))
        .ok()?;
    let len = f.metadata().ok().filter(|m| m.is_file())?.len();
    // Only the end is read, however long the log has grown.
    f.seek(SeekFrom::Start(len.saturating_sub(max as u64)))
        .ok()?;
    let mut data = Vec::with_capacity(max.min(len as usize));
    f.take(max as u64).read_to_end(&mut data).ok()?;
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_as_the_log_is_refused_at_once_and_the_tail_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/log")).unwrap();
        let p = d.path().join("var/log/wisp.log");
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let root = Root::new(d.path());
        assert!(open(&root).is_err());
        assert_eq!(tail(&root, 10), None);
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, "0123456789abc").unwrap();
        assert_eq!(tail(&root, 3).unwrap(), b"abc");
        assert_eq!(tail(&root, 100).unwrap(), b"0123456789abc");
    }

    #[test]
    fn the_log_is_not_opened_through_a_linked_directory() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("var/log")).unwrap();
        let e = open(&Root::new(d.path())).unwrap_err();
        assert!(e.to_string().contains("/var/log is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
