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
    if let Some(dir) = path.parent() {
        crate::fsutil::create_dirs(dir, 0o755)?;
    }
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
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
    let data = std::fs::read(root.path(LOG_FILE)).ok()?;
    let start = data.len().saturating_sub(max);
    Some(data[start..].to_vec())
}
