//! Files under `--root`, confined: every path is resolved one component at a time from the
//! root's directory descriptor (`openat` with `O_NOFOLLOW`), so that no link and no `..` leads
//! out of the root. Links in system directories are resolved as the target system would see
//! them, inside the root (FreeBSD's `/home` is a link to `/usr/home`); from a user's home down,
//! no link is followed at all (the user owns those directories). Reads are bounded and refuse
//! what is not a regular file (a FIFO would block, `/dev/zero` never ends); writes go through a
//! temp file with a fixed name, so that one a crash left is found and removed by the next run.
//! Directories wisp creates get their modes set explicitly, whatever the umask.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::root::Root;
use crate::state::STATE_DIR;

/// The largest file wisp reads to plan from (configuration, account and rules files).
pub const MAX_READ: u64 = 8 << 20;
/// How many links one path may go through before it is taken for a loop.
const MAX_LINKS: usize = 32;
/// The suffix of temp files: `.NAME.wisp-tmp` beside NAME.
pub const TMP_SUFFIX: &str = ".wisp-tmp";

/// Directories that no user's home may be, be under, or contain (a home is chowned to its user,
/// keys are written in it). Under an exception in [`HOME_EXCEPTIONS`] homes are fine.
pub const SYSTEM_DIRS: &[&str] = &[
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/libexec",
    "/proc",
    "/rescue",
    // root's home: only the user root has it (the ssh module lets root write keys there).
    "/root",
    "/sbin",
    "/stand",
    "/sys",
    "/usr",
    "/var/at",
    "/var/cron",
    "/var/db/wisp",
    // sshd's privilege-separation chroot: it must stay root's and empty.
    "/var/empty",
    "/var/log",
    "/var/mail",
    "/var/run",
    "/var/spool",
];
/// Under a system directory, where homes live all the same (FreeBSD's `/home -> /usr/home`).
pub const HOME_EXCEPTIONS: &[&str] = &["/usr/home"];
/// Directories that hold homes: not a home themselves.
pub const HOME_PARENTS: &[&str] = &["/home", "/usr/home"];
/// wisp's own state and configuration: `write_files` may not write there.
pub const WISP_DIRS: &[&str] = &[STATE_DIR, "/etc/wisp"];

/// `path` with `.`, `..` and repeated slashes resolved lexically (`..` stops at `/`).
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether `path` (normalized) is `dir` or inside it.
fn within(path: &str, dir: &str) -> bool {
    path == dir || path.starts_with(&format!("{}/", dir.trim_end_matches('/')))
}

/// Refuses a home directory in, over or equal to a system directory or wisp's state.
pub fn check_home(home: &str) -> Result<(), String> {
    let n = normalize(home);
    if n == "/" || HOME_PARENTS.contains(&n.as_str()) {
        return Err(format!("home {n} is a system directory: refused"));
    }
    if HOME_EXCEPTIONS.iter().any(|e| within(&n, e)) {
        return Ok(());
    }
    for d in SYSTEM_DIRS {
        if within(&n, d) {
            return Err(format!("home {n} is in the system directory {d}: refused"));
        }
        if within(d, &n) {
            return Err(format!("home {n} holds the system directory {d}: refused"));
        }
    }
    Ok(())
}

/// Refuses a file that would land in wisp's own state or configuration.
pub fn check_write_target(path: &str) -> Result<(), String> {
    let n = normalize(path);
    match WISP_DIRS.iter().find(|d| within(&n, d)) {
        Some(d) => Err(format!("{n} is in wisp's own directory {d}: refused")),
        None => Ok(()),
    }
}

/// The first path component from which links are refused: the home's own component when
/// `path` is in `home`, else none (links resolved inside the root).
fn strict_from(path: &str, home: Option<&str>) -> usize {
    match home {
        Some(h) if within(&normalize(path), &normalize(h)) => {
            normalize(h)
                .split('/')
                .filter(|c| !c.is_empty())
                .count()
                .max(1)
                - 1
        }
        _ => usize::MAX,
    }
}

fn cstr(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in a path"))
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn openat(
    dir: &OwnedFd,
    name: &str,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: a valid descriptor and a NUL-terminated name; the result is a new descriptor.
    let fd = cvt(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            libc::c_uint::from(mode),
        )
    })?;
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_dir_at(dir: &OwnedFd, name: &str) -> io::Result<OwnedFd> {
    openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK,
        0,
    )
}

fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    // SAFETY: zeroed memory is a valid `stat`, filled by the call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a valid pointer.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// The type bits of `name` in `dir`, without following a link; `None` if it does not exist.
fn lstat_at(dir: &OwnedFd, name: &str) -> io::Result<Option<libc::stat>> {
    let c = cstr(name)?;
    // SAFETY: as in `fstat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor, a NUL-terminated name and a valid pointer.
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    match cvt(r) {
        Ok(_) => Ok(Some(st)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn is_type(st: &libc::stat, t: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == t
}

fn kind(st: &libc::stat) -> &'static str {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => "a FIFO",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFDIR => "a directory",
        libc::S_IFSOCK => "a socket",
        libc::S_IFLNK => "a symbolic link",
        libc::S_IFREG => "a regular file",
        _ => "of an unknown type",
    }
}

fn readlink_at(dir: &OwnedFd, name: &str) -> io::Result<String> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: a valid descriptor, name and buffer of the given length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn set_owner_mode(fd: &OwnedFd, owner: Option<(u32, u32)>, mode: u32) -> io::Result<()> {
    // chown first: chown clears the set-id bits, so the mode goes last.
    if let Some((uid, gid)) = owner {
        // SAFETY: a valid descriptor.
        cvt(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })?;
    }
    // SAFETY: a valid descriptor.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) })?;
    Ok(())
}

/// The mode of a directory wisp creates (the umask plays no part): wisp's state is root's only.
pub fn new_dir_mode(path: &str) -> u32 {
    if within(&normalize(path), STATE_DIR) {
        0o700
    } else {
        0o755
    }
}

/// An error for people: the target path and what went wrong.
fn err(path: &str, e: impl std::fmt::Display) -> String {
    format!("{path}: {e}")
}

fn open_root(root: &Root) -> Result<OwnedFd, String> {
    let p = root.path("/");
    let c = CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("{}: a NUL in the root", p.display()))?;
    // SAFETY: a NUL-terminated path; the result is a new descriptor.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(err(&p.display().to_string(), io::Error::last_os_error()));
    }
    // SAFETY: just opened, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens directory `dir` (a target path) under the root. Missing directories are created with
/// [`new_dir_mode`] when `create`, else the answer is `None`. Components from `strict` on
/// (counted in `dir`) must not be links; links before are resolved inside the root.
fn walk(
    root: &Root,
    dir: &str,
    strict: usize,
    create: bool,
) -> Result<Option<(OwnedFd, String)>, String> {
    let root_fd = open_root(root)?;
    let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| err(dir, e));
    let mut cur = dup(&root_fd)?;
    // Components to go, each with whether a link there is refused.
    let mut pending: std::collections::VecDeque<(String, bool)> = dir
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .enumerate()
        .map(|(i, c)| (c.to_string(), i >= strict))
        .collect();
    // The real directories walked so far, from the root: the path for messages and for `..`.
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    // Bounded even if the tree changes under the walk (a directory made and removed).
    let mut steps = 0;
    while let Some((name, no_links)) = pending.pop_front() {
        steps += 1;
        if steps > 4096 {
            return Err(format!("{dir}: the path keeps changing"));
        }
        let here = format!("/{}", resolved.join("/"));
        if name == "." {
            continue;
        }
        if name == ".." {
            resolved.pop();
            cur = dup(&root_fd)?;
            for c in &resolved {
                cur = open_dir_at(&cur, c)
                    .map_err(|e| err(&format!("/{}", resolved.join("/")), e))?;
            }
            continue;
        }
        let shown = format!("{}/{name}", here.trim_end_matches('/'));
        let open_error = match open_dir_at(&cur, &name) {
            Ok(fd) => {
                cur = fd;
                resolved.push(name);
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
                let c = cstr(&name).map_err(|e| err(&shown, e))?;
                // Only root may read it until its mode is set.
                // SAFETY: a valid descriptor and a NUL-terminated name.
                let r = unsafe { libc::mkdirat(cur.as_raw_fd(), c.as_ptr(), 0o700) };
                let made = r == 0;
                if !made {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        return Err(err(&shown, e));
                    }
                }
                // A link made in the meantime is caught by the next round.
                pending.push_front((name, no_links));
                if made {
                    let fd = open_dir_at(&cur, &pending[0].0).map_err(|e| err(&shown, e))?;
                    set_owner_mode(&fd, None, new_dir_mode(&shown)).map_err(|e| err(&shown, e))?;
                }
                continue;
            }
            Err(e) => e,
        };
        // Not a directory one can open without following: a link, or something else.
        let st = lstat_at(&cur, &name).map_err(|e| err(&shown, e))?;
        match st {
            None if create => pending.push_front((name, no_links)),
            None => return Ok(None),
            Some(st) if is_type(&st, libc::S_IFLNK) => {
                if no_links {
                    return Err(format!("{shown} is a symbolic link: refused"));
                }
                let dir_st = fstat(&cur).map_err(|e| err(&here, e))?;
                if !trusted_dir(&dir_st) {
                    return Err(format!(
                        "{shown} is a symbolic link in {here}, a directory that another user \
                         owns or may write: refused"
                    ));
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(format!("{shown}: too many levels of symbolic links"));
                }
                let target = readlink_at(&cur, &name).map_err(|e| err(&shown, e))?;
                if target.starts_with('/') {
                    resolved.clear();
                    cur = dup(&root_fd)?;
                }
                for c in target.split('/').filter(|c| !c.is_empty()).rev() {
                    pending.push_front((c.to_string(), false));
                }
            }
            // A directory that cannot be opened (permissions): the system's reason.
            Some(st) if is_type(&st, libc::S_IFDIR) => return Err(err(&shown, open_error)),
            Some(st) => return Err(format!("{shown} is {}: not a directory", kind(&st))),
        }
    }
    let real = format!("/{}", resolved.join("/"));
    Ok(Some((cur, real)))
}

/// Whether links in a directory may be followed: it is owned by the user wisp runs as (root on
/// a real system) and nobody else may write in it. The strict form of Linux's
/// protected_symlinks (which also accepts a link owned by the directory's owner): a user who can
/// put a link in `/tmp` or in their home could else send wisp's root writes anywhere, and the
/// system's own links (`/home -> /usr/home`, `/bin -> usr/bin`) are all in root's directories.
fn trusted_dir(st: &libc::stat) -> bool {
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    #[allow(clippy::useless_conversion)]
    let mode = u32::from(st.st_mode);
    st.st_uid == me && mode & 0o022 == 0
}

/// `path`'s directory and file name.
fn split(path: &str) -> Result<(String, String), String> {
    let n = path.trim_end_matches('/');
    match n.rsplit_once('/') {
        Some((dir, name)) if !name.is_empty() && name != "." && name != ".." => Ok((
            if dir.is_empty() {
                "/".into()
            } else {
                dir.into()
            },
            name.into(),
        )),
        _ => Err(format!("{path}: not a file path")),
    }
}

/// The directory that holds `path`, opened under the root (created when `create`).
fn parent(
    root: &Root,
    path: &str,
    home: Option<&str>,
    create: bool,
) -> Result<Option<(OwnedFd, String)>, String> {
    Ok(parent_real(root, path, home, create)?.map(|(fd, _, name)| (fd, name)))
}

/// As [`parent`], with the directory's real path under the root (links resolved).
fn parent_real(
    root: &Root,
    path: &str,
    home: Option<&str>,
    create: bool,
) -> Result<Option<(OwnedFd, String, String)>, String> {
    let (dir, name) = split(path)?;
    let strict = strict_from(path, home);
    Ok(walk(root, &dir, strict, create)?.map(|(fd, real)| (fd, real, name)))
}

/// Refuses a target that only through a link lands in wisp's own state or configuration
/// (`/var/x -> /var/db/wisp`): [`check_write_target`] on the path as written sees nothing.
/// wisp's own files, written there by their real path, pass.
fn check_resolved_target(path: &str, real_dir: &str, name: &str) -> Result<(), String> {
    if check_write_target(path).is_err() {
        return Ok(());
    }
    let real = format!("{}/{name}", real_dir.trim_end_matches('/'));
    check_write_target(&real).map_err(|e| format!("{path} resolves to {e}"))
}

/// Reads regular file `path` under the root, at most [`MAX_READ`] bytes; `None` if it does not
/// exist. A link (anywhere from `home` down, or as the file itself), a FIFO, a device or a file
/// too large is an error. Never blocks.
pub fn read(root: &Root, path: &str, home: Option<&str>) -> Result<Option<Vec<u8>>, String> {
    read_max(root, path, home, MAX_READ)
}

fn read_max(
    root: &Root,
    path: &str,
    home: Option<&str>,
    max: u64,
) -> Result<Option<Vec<u8>>, String> {
    let Some((dir, name)) = parent(root, path, home, false)? else {
        return Ok(None);
    };
    let fd = match openat(
        &dir,
        &name,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    ) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return match lstat_at(&dir, &name) {
                Ok(Some(st)) if is_type(&st, libc::S_IFLNK) => {
                    Err(format!("{path} is a symbolic link: refused"))
                }
                _ => Err(err(path, e)),
            }
        }
    };
    let st = fstat(&fd).map_err(|e| err(path, e))?;
    if !is_type(&st, libc::S_IFREG) {
        return Err(format!("{path} is {}: refused", kind(&st)));
    }
    let dir_st = fstat(&dir).map_err(|e| err(path, e))?;
    if home.is_some() || !trusted_dir(&dir_st) {
        check_not_planted(path, &st, &dir_st)?;
    }
    if st.st_size as u64 > max {
        return Err(format!("{path} is larger than {} MiB: refused", max >> 20));
    }
    let mut data = Vec::with_capacity(st.st_size as usize);
    std::fs::File::from(fd)
        .take(max + 1)
        .read_to_end(&mut data)
        .map_err(|e| err(path, e))?;
    if data.len() as u64 > max {
        return Err(format!("{path} is larger than {} MiB: refused", max >> 20));
    }
    Ok(Some(data))
}

/// Refuses a file in a user's home or in a directory others may write that someone could have
/// made point at another file: a hard link (`ln /etc/master.passwd ~/.ssh/authorized_keys` needs
/// no rights on the target on the BSDs), or a file owned by neither root nor the directory's
/// owner. Its content would else be read as the user's and written back in their home.
fn check_not_planted(path: &str, st: &libc::stat, dir_st: &libc::stat) -> Result<(), String> {
    if st.st_nlink > 1 {
        return Err(format!(
            "{path} has {} hard links (another file's content): refused",
            st.st_nlink
        ));
    }
    if st.st_uid != 0 && st.st_uid != dir_st.st_uid {
        return Err(format!(
            "{path} is owned by uid {}, neither root nor its directory's owner: refused",
            st.st_uid
        ));
    }
    Ok(())
}

/// Writes `data` into the existing device or FIFO `path` under `/dev` (random_seed's
/// `/dev/urandom`): opened without creating it and without following a link as the file
/// itself, and refused unless it is a character device or a FIFO — never a regular file put
/// in its place. Opening never blocks (a FIFO with no reader is an error).
pub fn feed_device(root: &Root, path: &str, data: &[u8]) -> Result<(), String> {
    let n = normalize(path);
    if !within(&n, "/dev") || n == "/dev" {
        return Err(format!("{path}: only a device under /dev is fed: refused"));
    }
    let Some((dir, name)) = parent(root, &n, None, false)? else {
        return Err(format!("{n} does not exist"));
    };
    let fd = match openat(
        &dir,
        &name,
        libc::O_WRONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    ) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(format!("{n} does not exist")),
        Err(e) => {
            return match lstat_at(&dir, &name) {
                Ok(Some(st)) if is_type(&st, libc::S_IFLNK) => {
                    Err(format!("{n} is a symbolic link: refused"))
                }
                _ => Err(err(&n, e)),
            }
        }
    };
    let st = fstat(&fd).map_err(|e| err(&n, e))?;
    if !is_type(&st, libc::S_IFCHR) && !is_type(&st, libc::S_IFIFO) {
        return Err(format!("{n} is {}, not a device: refused", kind(&st)));
    }
    let mut f = std::fs::File::from(fd);
    if is_type(&st, libc::S_IFIFO) {
        // A FIFO stays non-blocking: a reader that never reads makes this an error, never a
        // wisp that waits for ever. A real random device never blocks a write.
        return match f.write_all(data) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(format!(
                "{n} is a FIFO that does not take the data: not fed"
            )),
            r => r.map_err(|e| err(&n, e)),
        };
    }
    // A device is written as it expects, in full and blocking.
    // SAFETY: a valid descriptor; F_SETFL with flags is defined for it.
    unsafe {
        let flags = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    f.write_all(data).map_err(|e| err(&n, e))
}

/// The permission bits of `path` (not followed if a link); `None` if it does not exist.
pub fn mode(root: &Root, path: &str, home: Option<&str>) -> Result<Option<u32>, String> {
    let Some((dir, name)) = parent(root, path, home, false)? else {
        return Ok(None);
    };
    Ok(lstat_at(&dir, &name)
        .map_err(|e| err(path, e))?
        // mode_t is u16 on FreeBSD.
        .map(|st| {
            #[allow(clippy::useless_conversion)]
            let m = u32::from(st.st_mode);
            m & 0o7777
        }))
}

/// What [`entry`] tells of a path: its type and permission bits, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub is_dir: bool,
    pub is_file: bool,
    pub mode: u32,
    pub len: u64,
}

/// `path` itself under the root (a link is not followed: neither a directory nor a file);
/// `None` if it does not exist.
pub fn entry(root: &Root, path: &str, home: Option<&str>) -> Result<Option<Entry>, String> {
    let Some((dir, name)) = parent(root, path, home, false)? else {
        return Ok(None);
    };
    Ok(lstat_at(&dir, &name).map_err(|e| err(path, e))?.map(|st| {
        // mode_t is u16 on FreeBSD.
        #[allow(clippy::useless_conversion)]
        let mode = u32::from(st.st_mode) & 0o7777;
        Entry {
            is_dir: is_type(&st, libc::S_IFDIR),
            is_file: is_type(&st, libc::S_IFREG),
            mode,
            len: st.st_size as u64,
        }
    }))
}

/// Makes directory `dir` under the root, each component a real directory (no link at all):
/// for wisp's own state, whose files are then written by host path.
pub fn real_dirs(root: &Root, dir: &str) -> Result<(), String> {
    walk(root, dir, 0, true).map(|_| ())
}

/// Whether `path` itself is a symbolic link (the directories above it resolved as usual).
pub fn is_link(root: &Root, path: &str, home: Option<&str>) -> bool {
    parent(root, path, home, false)
        .ok()
        .flatten()
        .and_then(|(dir, name)| lstat_at(&dir, &name).ok().flatten())
        .is_some_and(|st| is_type(&st, libc::S_IFLNK))
}

/// Whether directory `path` exists under the root; a link (from `home` down) or a file that is
/// not a directory is an error.
pub fn dir_exists(root: &Root, path: &str, home: Option<&str>) -> Result<bool, String> {
    Ok(walk(root, path, strict_from(path, home), false)?.is_some())
}

/// Removes a temp file a crash left (a link is removed, not followed), then creates it anew.
fn fresh_tmp(dir: &OwnedFd, tmp: &str, path: &str) -> Result<OwnedFd, String> {
    let c = cstr(tmp).map_err(|e| err(path, e))?;
    // SAFETY: a valid descriptor and a NUL-terminated name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) } < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::NotFound {
            return Err(err(path, format!("removing the old temp file {tmp}: {e}")));
        }
    }
    openat(
        dir,
        tmp,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        0o600,
    )
    .map_err(|e| err(path, e))
}

fn rename_at(dir: &OwnedFd, from: &str, to: &str) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: a valid descriptor and NUL-terminated names.
    cvt(unsafe { libc::renameat(dir.as_raw_fd(), f.as_ptr(), dir.as_raw_fd(), t.as_ptr()) })?;
    Ok(())
}

fn unlink_at(dir: &OwnedFd, name: &str) {
    if let Ok(c) = cstr(name) {
        // SAFETY: a valid descriptor and a NUL-terminated name.
        unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) };
    }
}

fn tmp_name(name: &str) -> String {
    format!(".{name}{TMP_SUFFIX}")
}

/// Writes `path` under the root atomically: `.NAME.wisp-tmp` beside it (a stale one removed),
/// owner then mode set, synced, renamed over NAME (a link there is replaced, never written
/// through), the directory synced. Missing parents are created when `create_parents`.
pub fn write(
    root: &Root,
    path: &str,
    data: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
    home: Option<&str>,
    create_parents: bool,
) -> Result<(), String> {
    let Some((dir, real, name)) = parent_real(root, path, home, create_parents)? else {
        return Err(format!("{path}: its directory does not exist"));
    };
    check_resolved_target(path, &real, &name)?;
    let tmp = tmp_name(&name);
    let fd = fresh_tmp(&dir, &tmp, path)?;
    let mut f = std::fs::File::from(fd);
    let written = (|| {
        f.write_all(data)?;
        let fd = OwnedFd::from(f.try_clone()?);
        set_owner_mode(&fd, owner, mode)?;
        f.sync_all()?;
        rename_at(&dir, &tmp, &name)
    })();
    if let Err(e) = written {
        unlink_at(&dir, &tmp);
        return Err(err(path, e));
    }
    // SAFETY: a valid descriptor.
    unsafe { libc::fsync(dir.as_raw_fd()) };
    Ok(())
}

/// Makes directory `path` under the root (parents with [`new_dir_mode`] unless it is in
/// `home`, whose parents must exist), then sets its owner and mode even if it existed. A link
/// there is refused.
pub fn mkdir(
    root: &Root,
    path: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
    home: Option<&str>,
) -> Result<(), String> {
    let in_home = strict_from(path, home) != usize::MAX;
    let Some((dir, real, name)) = parent_real(root, path, home, !in_home)? else {
        return Err(format!("{path}: its directory does not exist"));
    };
    check_resolved_target(path, &real, &name)?;
    let c = cstr(&name).map_err(|e| err(path, e))?;
    // SAFETY: a valid descriptor and a NUL-terminated name.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o700) } < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(err(path, e));
        }
    }
    let fd = open_dir_at(&dir, &name).map_err(|e| match lstat_at(&dir, &name) {
        Ok(Some(st)) if is_type(&st, libc::S_IFLNK) => {
            format!("{path} is a symbolic link: refused")
        }
        Ok(Some(st)) => format!("{path} is {}: not a directory", kind(&st)),
        _ => err(path, e),
    })?;
    set_owner_mode(&fd, owner, mode).map_err(|e| err(path, e))
}

/// Makes `path` a link to `target`: a new link beside it renamed over it (never a moment
/// without one).
pub fn symlink(root: &Root, path: &str, target: &str) -> Result<(), String> {
    let Some((dir, name)) = parent(root, path, None, true)? else {
        return Err(format!("{path}: its directory does not exist"));
    };
    let tmp = tmp_name(&name);
    unlink_at(&dir, &tmp);
    let (t, c) = (
        cstr(target).map_err(|e| err(path, e))?,
        cstr(&tmp).map_err(|e| err(path, e))?,
    );
    // SAFETY: NUL-terminated strings and a valid descriptor.
    if unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), c.as_ptr()) } < 0 {
        return Err(err(path, io::Error::last_os_error()));
    }
    rename_at(&dir, &tmp, &name).map_err(|e| {
        unlink_at(&dir, &tmp);
        err(path, e)
    })
}

/// Creates `path` exclusively (`O_EXCL`, never through a link) with `mode` and `data`, synced:
/// a lock file such as vipw(8)'s `/etc/ptmp`.
pub fn create_exclusive(root: &Root, path: &str, data: &[u8], mode: u32) -> Result<(), String> {
    let Some((dir, name)) = parent(root, path, None, false)? else {
        return Err(format!("{path}: its directory does not exist"));
    };
    let fd = openat(
        &dir,
        &name,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        0o600,
    )
    .map_err(|e| err(path, e))?;
    let mut f = std::fs::File::from(fd);
    let r = (|| {
        f.write_all(data)?;
        set_owner_mode(&OwnedFd::from(f.try_clone()?), None, mode)?;
        f.sync_all()
    })();
    r.map_err(|e| {
        unlink_at(&dir, &name);
        err(path, e)
    })
}

/// Removes file `path` under the root (a link itself, not what it points to).
pub fn remove(root: &Root, path: &str) -> Result<(), String> {
    if let Some((dir, name)) = parent(root, path, None, false)? {
        unlink_at(&dir, &name);
    }
    Ok(())
}

/// Removes file `path` under the root (a link itself, never what it points to), saying why
/// when it cannot; one that does not exist is fine. A directory is not removed.
pub fn remove_file(root: &Root, path: &str) -> Result<(), String> {
    let Some((dir, name)) = parent(root, path, None, false)? else {
        return Ok(());
    };
    let c = cstr(&name).map_err(|e| err(path, e))?;
    // SAFETY: a valid descriptor and a NUL-terminated name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) } < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::NotFound {
            return Err(err(path, e));
        }
    }
    Ok(())
}

/// The most names [`list`] returns: a directory with more is refused, not read on and on.
pub const MAX_LIST: usize = 10_000;

/// The names in directory `dir` under the root (not `.` and `..`), sorted; `None` if it does
/// not exist. Links on the way are resolved inside the root.
pub fn list(root: &Root, dir: &str) -> Result<Option<Vec<String>>, String> {
    let Some((fd, _)) = walk(root, dir, usize::MAX, false)? else {
        return Ok(None);
    };
    let raw = fd.as_raw_fd();
    // SAFETY: `fdopendir` takes the descriptor over (closed by `closedir` below).
    let d = unsafe { libc::fdopendir(raw) };
    if d.is_null() {
        return Err(err(dir, io::Error::last_os_error()));
    }
    std::mem::forget(fd);
    let mut names = Vec::new();
    let result = loop {
        // SAFETY: `d` is an open directory stream.
        let e = unsafe { libc::readdir(d) };
        if e.is_null() {
            break Ok(());
        }
        // SAFETY: `d_name` is NUL-terminated in the entry `readdir` returned.
        let name = unsafe { std::ffi::CStr::from_ptr((*e).d_name.as_ptr()) };
        let name = name.to_string_lossy();
        if name == "." || name == ".." {
            continue;
        }
        if names.len() >= MAX_LIST {
            break Err(format!("{dir} holds more than {MAX_LIST} entries: refused"));
        }
        names.push(name.into_owned());
    };
    // SAFETY: `d` is open, and closed once.
    unsafe { libc::closedir(d) };
    result?;
    names.sort();
    Ok(Some(names))
}

#[cfg(test)]
mod tests;
