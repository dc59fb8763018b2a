//! Carrying out a plan under `--root`. Every action is tried; a failure is recorded with its
//! module and item, and the others still run. Tools run with argv, never through a shell;
//! secrets go on their standard input.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::accounts::Accounts;
use crate::fsutil::{ensure_dir, write_atomic};
use crate::plan::{Action, PasswdField};
use crate::root::Root;

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub module: &'static str,
    pub item: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn execute(actions: &[Action], root: &Root) -> Vec<Outcome> {
    let mut accounts = Accounts::load(root);
    let mut out = Vec::new();
    for a in actions {
        let result = match a {
            Action::Exec { argv, stdin, .. } => {
                let r = run(argv, stdin.as_ref().map(|s| s.0.as_bytes()));
                // Users and groups may have changed.
                accounts = Accounts::load(root);
                r
            }
            Action::Write {
                path,
                mode,
                owner,
                group,
                in_home,
                content,
                ..
            } => write(
                root, &accounts, path, content, *mode, owner, group, *in_home,
            ),
            Action::Mkdir {
                path,
                mode,
                owner,
                group,
                in_home,
                ..
            } => mkdir(root, &accounts, path, *mode, owner, group, *in_home),
            Action::Symlink { path, target, .. } => symlink(root, path, target),
            Action::MasterPasswd {
                user,
                field,
                hasher,
                db,
                ..
            } => master_passwd(root, user, field, hasher, db),
        };
        let item = match a {
            Action::Exec { item, .. }
            | Action::Write { item, .. }
            | Action::Mkdir { item, .. }
            | Action::Symlink { item, .. } => item.clone(),
            Action::MasterPasswd { user, .. } => user.clone(),
        };
        if let Err(e) = &result {
            tracing::warn!(module = a.module(), item, error = %e, "failed");
        }
        out.push(Outcome {
            module: a.module(),
            item,
            action: a.describe(),
            error: result.err(),
        });
    }
    out
}

fn run(argv: &[String], stdin: Option<&[u8]>) -> Result<(), String> {
    run_capture(argv, stdin).map(|_| ())
}

/// Runs a tool and returns its standard output.
fn run_capture(argv: &[String], stdin: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{prog}: {e}"))?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data)
            .map_err(|e| format!("{prog}: writing its input: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("{prog}: {e}"))?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "{prog} failed ({}): {}",
        output.status,
        tail.join(" / ").trim()
    ))
}

fn ids(accounts: &Accounts, owner: &str, group: &str) -> Result<(u32, u32), String> {
    let user = accounts
        .user(owner)
        .ok_or_else(|| format!("no user {owner}"))?;
    let gid = if group.is_empty() {
        user.gid
    } else {
        accounts
            .group(group)
            .ok_or_else(|| format!("no group {group}"))?
            .gid
    };
    Ok((user.uid, gid))
}

/// In a user's home nothing may be followed: the directory that holds the file must be a real
/// directory, and the file is replaced by rename, which never writes through a link.
fn refuse_symlinked_parent(host: &std::path::Path) -> Result<(), String> {
    if let Some(parent) = host.parent() {
        match std::fs::symlink_metadata(parent) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!("{} is a symbolic link: refused", parent.display()))
            }
            Ok(m) if !m.is_dir() => return Err(format!("{} is not a directory", parent.display())),
            Ok(_) => {}
            Err(e) => return Err(format!("{}: {e}", parent.display())),
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write(
    root: &Root,
    accounts: &Accounts,
    path: &str,
    content: &[u8],
    mode: u32,
    owner: &str,
    group: &str,
    in_home: bool,
) -> Result<(), String> {
    let host = root.path(path);
    let (uid, gid) = ids(accounts, owner, group)?;
    if in_home {
        refuse_symlinked_parent(&host)?;
    } else if let Some(parent) = host.parent() {
        // wisp's own state (scripts among it) stays root-only.
        if path.starts_with(crate::state::STATE_DIR) {
            ensure_dir(parent, 0o700).map_err(|e| format!("{}: {e}", parent.display()))?;
        } else {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
    }
    write_atomic(&host, content, mode).map_err(|e| format!("{}: {e}", host.display()))?;
    std::os::unix::fs::chown(&host, Some(uid), Some(gid))
        .map_err(|e| format!("chown {}: {e}", host.display()))
}

fn mkdir(
    root: &Root,
    accounts: &Accounts,
    path: &str,
    mode: u32,
    owner: &str,
    group: &str,
    in_home: bool,
) -> Result<(), String> {
    let host = root.path(path);
    let (uid, gid) = ids(accounts, owner, group)?;
    if in_home {
        refuse_symlinked_parent(&host)?;
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!("{} is a symbolic link: refused", host.display()))
            }
            Ok(_) => std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("{}: {e}", host.display()))?,
            Err(_) => {
                std::fs::create_dir(&host).map_err(|e| format!("{}: {e}", host.display()))?;
                std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| format!("{}: {e}", host.display()))?;
            }
        }
    } else {
        ensure_dir(&host, mode).map_err(|e| format!("{}: {e}", host.display()))?;
    }
    std::os::unix::fs::chown(&host, Some(uid), Some(gid))
        .map_err(|e| format!("chown {}: {e}", host.display()))
}

/// A new link beside the old path, renamed over it: never a moment without one.
fn symlink(root: &Root, path: &str, target: &str) -> Result<(), String> {
    let host = root.path(path);
    let name = host
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = host.with_file_name(format!(".{name}.wisp-tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &host).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", host.display())
    })
}

/// vipw(8)'s way: the changed file as `/etc/ptmp` (created exclusively: another editor holding
/// it means the file is busy), then pwd_mkdb installs it as master.passwd and updates the
/// databases. The hash travels through files and pipes only, never argv.
fn master_passwd(
    root: &Root,
    user: &str,
    field: &PasswdField,
    hasher: &[String],
    db: &[String],
) -> Result<(), String> {
    let (index, value) = match field {
        PasswdField::Password { secret, plain } => {
            let hash = if *plain {
                let out = run_capture(hasher, Some(format!("{}\n", secret.0).as_bytes()))?;
                String::from_utf8_lossy(&out).trim().to_string()
            } else {
                secret.0.clone()
            };
            if hash.is_empty() || hash.contains([':', '\n']) {
                return Err("the hashing tool gave no usable hash".into());
            }
            (1, hash)
        }
        PasswdField::Change(v) => (5, v.to_string()),
    };
    let master = root.path("/etc/master.passwd");
    let text =
        std::fs::read_to_string(&master).map_err(|e| format!("{}: {e}", master.display()))?;
    let mut found = false;
    let mut out = String::with_capacity(text.len() + value.len());
    for line in text.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.first() == Some(&user) && fields.len() == 10 && !found {
            found = true;
            fields[index] = &value;
            out.push_str(&fields.join(":"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !found {
        return Err(format!("no user {user} in /etc/master.passwd"));
    }
    let ptmp = root.path("/etc/ptmp");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&ptmp)
            .map_err(|e| format!("{}: {e} (the password file is busy)", ptmp.display()))?;
        let written = f.write_all(out.as_bytes()).and_then(|()| f.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&ptmp);
            return Err(format!("{}: {e}", ptmp.display()));
        }
    }
    run(db, None).inspect_err(|_| {
        let _ = std::fs::remove_file(&ptmp);
    })
}
