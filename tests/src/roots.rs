//! Throwaway roots for running wisp for real on Linux (tests and benchmarks).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Fills `r` with what shadow-utils needs to manage accounts in it: the account files (the
/// shadow ones 0600), /home and /root.
pub fn make_account_root(r: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for d in ["etc", "home", "root"] {
        std::fs::create_dir_all(r.join(d))?;
    }
    std::fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    std::fs::write(r.join("etc/group"), "root:x:0:\n")?;
    std::fs::write(r.join("etc/shadow"), "root:*:19000:0:99999:7:::\n")?;
    std::fs::write(r.join("etc/gshadow"), "root:*::\n")?;
    for f in ["etc/shadow", "etc/gshadow"] {
        std::fs::set_permissions(r.join(f), std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Fills `r` as a small Linux root: account files, sudoers, and the host's /bin/sh with its
/// libraries (for runcmd). Needs `ldd`.
pub fn make_linux_root(r: &Path) -> std::io::Result<()> {
    make_account_root(r)?;
    for d in ["etc/wisp", "var/tmp"] {
        std::fs::create_dir_all(r.join(d))?;
    }
    std::fs::write(
        r.join("etc/sudoers"),
        "root ALL=(ALL) ALL\n@includedir /etc/sudoers.d\n",
    )?;
    let out = Command::new("ldd").arg("/bin/sh").output()?;
    let mut files = vec![PathBuf::from("/bin/sh")];
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(p) = l.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(PathBuf::from(p));
        }
    }
    for f in files {
        let Ok(rel) = f.strip_prefix("/") else {
            continue;
        };
        let dest = r.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(std::fs::canonicalize(&f)?, &dest)?;
    }
    Ok(())
}

/// Whether `tool` is on the PATH.
pub fn have_tool(tool: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join(tool).exists())
}

/// Whether this machine can really apply for Linux: root, shadow-utils and ldd.
pub fn can_apply_linux() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && have_tool("useradd") && have_tool("ldd")
}
