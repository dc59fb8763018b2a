//! The operating systems wisp targets, and one backend per OS that turns account changes into
//! that OS's own tools and files. Per-OS differences live here and nowhere else.

pub mod disks;
mod freebsd;
mod linux;
mod netbsd;
mod openbsd;

use clap::ValueEnum;
use serde::Serialize;

use crate::cloudconfig::model::UserSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Netbsd,
    Freebsd,
    Openbsd,
    Linux,
}

impl Platform {
    /// The running OS, if wisp supports it.
    pub fn detect() -> Option<Platform> {
        match std::env::consts::OS {
            "netbsd" => Some(Platform::Netbsd),
            "freebsd" => Some(Platform::Freebsd),
            "openbsd" => Some(Platform::Openbsd),
            "linux" => Some(Platform::Linux),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Platform::Netbsd => "netbsd",
            Platform::Freebsd => "freebsd",
            Platform::Openbsd => "openbsd",
            Platform::Linux => "linux",
        }
    }

    /// The backend for this OS. `root`: the target root when it is not `/`.
    pub fn backend(self, root: Option<String>) -> Box<dyn Backend> {
        match self {
            Platform::Netbsd => Box::new(netbsd::NetBsd { root }),
            Platform::Freebsd => Box::new(freebsd::FreeBsd { root }),
            Platform::Openbsd => Box::new(openbsd::OpenBsd { root }),
            Platform::Linux => Box::new(linux::Linux { root }),
        }
    }
}

/// A user to create, with what cloud-init applies only at creation.
#[derive(Debug, Clone, Default)]
pub struct NewUser<'a> {
    pub name: &'a str,
    pub gecos: Option<&'a str>,
    pub homedir: Option<&'a str>,
    pub primary_group: Option<&'a str>,
    pub groups: &'a [String],
    pub shell: Option<&'a str>,
    pub uid: Option<u32>,
    pub system: bool,
    pub create_home: bool,
    pub expiredate: Option<&'a str>,
    pub inactive: Option<u32>,
}

/// Where the OS keeps its hostname across boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostnameStore {
    /// `hostname="…"` in rc.conf (NetBSD, FreeBSD).
    RcConf(&'static str),
    /// The name alone in a file (OpenBSD `/etc/myname`, Linux `/etc/hostname`).
    File(&'static str),
}

/// How the OS's NTP daemon is configured and enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpStyle {
    pub conf: &'static str,
    /// OpenBSD's OpenNTPD has its own, simpler syntax.
    pub openntpd: bool,
    pub driftfile: Option<&'static str>,
    /// `(rc.conf file, variable, value)` that enables the daemon, if it is not on by default.
    pub enable: Option<(&'static str, &'static str, &'static str)>,
    pub default_pool: &'static str,
}

/// What growing the root takes on this system (`growpart`, `resize_rootfs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootGrowth {
    /// The root partition is last on its disk with room after it: `partition` grows it (in
    /// order), then `fs` grows the file system.
    Grow {
        device: String,
        disk: String,
        partition: Vec<Vec<String>>,
        fs: FsGrowth,
    },
    /// The partition fills its disk already.
    Fills { device: String },
    /// Another partition follows the root's: it cannot grow.
    NotLast {
        device: String,
        disk: String,
        next: String,
    },
    /// Not grown here, and why (a ZFS root, an MBR disk, an OS that cannot).
    Skip(String),
}

/// How the file system follows its partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsGrowth {
    /// This command grows it now, mounted.
    Now(Vec<String>),
    /// The OS's rc grows it at the next boot, while the root is still read-only, when these
    /// rc.conf variables say so (name, value; the first is the switch).
    NextBoot {
        rc_conf: &'static str,
        vars: &'static [(&'static str, &'static str)],
    },
}

/// What differs between the systems only in value, one table per OS: the backends differ in
/// code only where the tools do.
#[derive(Debug)]
pub struct OsFacts {
    /// The OS's name in messages (`freebsd`).
    pub name: &'static str,
    /// The longest user or group name the OS takes.
    pub max_name_len: usize,
    /// `sudo` rules from cloud-config go here (under `${LOCALBASE}` on the BSDs).
    pub sudoers_dropin: &'static str,
    /// The main sudoers file, which must include the drop-in directory.
    pub sudoers: &'static str,
    pub doas_conf: &'static str,
    /// The group that owns system files (`wheel`, or `root` on Linux).
    pub wheel: &'static str,
    /// The sysctl that lists the disks (empty: /sys/block).
    pub disks_sysctl: &'static str,
    /// Where the account tool takes a new home's files from (useradd -k, pw.conf `skeleton`).
    pub skel: &'static str,
    /// The skeleton's `dot.x` files are installed as `.x` (FreeBSD pw's cpdir.c).
    pub skel_dot_prefix: bool,
    /// The mode the account tool gives a new home (NetBSD/OpenBSD useradd's DEF_HOMEPERM, pw's
    /// `homemode` 0777 less the umask 022, shadow-utils' with UMASK 022).
    pub home_mode: u32,
    /// Whether the OS makes the missing SSH host keys when sshd starts, after wisp's network
    /// stage: NetBSD's and FreeBSD's rc.d/sshd do. OpenBSD's /etc/rc makes them (`ssh-keygen
    /// -A`) and starts sshd before package scripts such as wisp run; Linux's sshd makes none:
    /// there wisp makes them.
    pub sshd_makes_host_keys: bool,
    /// The lowest uid the account tool gives a regular user (NetBSD's and OpenBSD's useradd
    /// `DEF_LOWUID`, FreeBSD pw.conf `minuid`, login.defs `UID_MIN`; 1000 on all): accounts
    /// below it are the system's, whose homes wisp neither repairs nor treats as a user's.
    pub first_regular_uid: u32,
    /// The native syslogd that `rsyslog` configures.
    pub syslog: SyslogFacts,
    /// Where trust anchors that `ca_certs` adds go.
    pub trust: TrustStore,
    /// Whether `locale` has a system-wide setting to change: the `default` class of
    /// /etc/login.conf with its `lang` and `charset` capabilities (FreeBSD's login.conf(5)).
    pub login_conf_locale: bool,
}

/// The system's own syslogd and the forms of its forwarding action (syslog.conf(5)).
#[derive(Debug)]
pub struct SyslogFacts {
    pub conf: &'static str,
    /// A file of wisp's own in a directory the syslogd reads, and the text of the line of
    /// `conf` that makes it read it (FreeBSD's `include /etc/syslog.d`); without that line
    /// wisp's lines go in a marked block of `conf`.
    pub dropin: Option<(&'static str, &'static str)>,
    /// Whether `@host:port` names a port (NetBSD's UDP forwarding takes none: `@[host]:port`
    /// there is TLS).
    pub udp_port: bool,
    /// Whether an IPv6 address is written in brackets (`@[2001:db8::1]:514`).
    pub bracket_ipv6: bool,
    /// The action prefix that forwards over TCP (OpenBSD `@tcp://`), if the syslogd can.
    pub tcp_prefix: Option<&'static str>,
    /// The syslogd's pid file: it is reloaded only when it runs.
    pub pidfile: &'static str,
    /// Makes a running syslogd read its configuration again.
    pub reload: &'static [&'static str],
    /// The `proto://` prefixes an `@` action may carry (OpenBSD's `@tcp://host:port`).
    pub url_schemes: &'static [&'static str],
    /// Whether a selector's level takes the comparison flags `<`, `=`, `>`, `!` (FreeBSD,
    /// NetBSD, rsyslog; OpenBSD's syslogd reads a bare level only).
    pub level_comparisons: bool,
    /// The lines that end an earlier program (`!prog`) or host (`+host`) block, so that the
    /// lines after them apply to every program and host: wisp's block starts with them.
    pub block_reset: &'static [&'static str],
}

/// How the OS keeps the certificates TLS clients trust.
#[derive(Debug)]
pub enum TrustStore {
    /// certctl(8) (FreeBSD 12.2+, NetBSD 10+): certificates in `dir`, which certctl searches,
    /// then `certctl rehash`. NetBSD's certctl searches the `path` lines of `config`
    /// (/etc/openssl/certs.conf), where `dir` is added and, for `remove_defaults`, the others
    /// are commented out; FreeBSD's searches fixed directories (`config` is `None`).
    Certctl {
        dir: &'static str,
        config: Option<&'static str>,
        /// The store certctl installs into when it reads it back on each rehash (FreeBSD 15's
        /// C certctl loads /etc/ssl/certs as a source): a certificate wisp takes away is
        /// removed there too, or it would stay trusted.
        installed: Option<&'static str>,
        /// Where `remove_defaults` puts copies of the system's own set so that certctl treats
        /// them as untrusted (FreeBSD); `None`: `config`'s `path` lines are used instead.
        untrust: Option<Untrust>,
    },
    /// One bundle file (OpenBSD /etc/ssl/cert.pem), where wisp's certificates go in a marked
    /// block.
    Bundle(&'static str),
    /// Not applied here.
    None,
}

/// FreeBSD's way to distrust the base set: a copy of each of its files in a directory every
/// certctl reads as untrusted — `/usr/share/certs/untrusted`, the first of the shell certctl's
/// (14.x) `UNTRUSTPATH` and of the C certctl's (15) untrusted paths — then `certctl rehash`.
#[derive(Debug, Clone, Copy)]
pub struct Untrust {
    /// The base set (`/usr/share/certs/trusted`).
    pub base: &'static str,
    /// The untrusted directory the copies go in.
    pub dir: &'static str,
    /// Where certctl installs the untrusted ones (`/etc/ssl/untrusted`): the C certctl reads
    /// it back on each rehash, so a copy taken away is removed there too.
    pub installed: &'static str,
}

/// How the installed packages are known without running the package tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstalledDb {
    /// One directory per installed package, named `name-version` (pkgsrc: the first of these
    /// directories that exists, unless `/usr/pkg/etc/pkg_install.conf` sets `PKG_DBDIR`), or
    /// `name-version[-flavor]` (OpenBSD: the version is the first part that starts with a
    /// digit).
    Dirs {
        dirs: &'static [&'static str],
        flavors: bool,
    },
    /// A database only the tool reads (FreeBSD's SQLite): this read-only query lists
    /// `name-version origin` lines, run on the running system or taken from the `--probes` file.
    Query(&'static [&'static str]),
}

/// The OS's package tool, as data (`package_update_upgrade_install`). A package is named
/// `name` or, with a version, `name-version` by all three tools.
#[derive(Debug)]
pub struct PackageFacts {
    /// The tool's path in the root.
    pub tool: &'static str,
    /// Run when the tool is missing (FreeBSD's /usr/sbin/pkg installs pkg itself); none: a
    /// missing tool is an error that says this.
    pub bootstrap: Option<&'static [&'static str]>,
    pub missing: &'static str,
    /// Arguments after the tool: install (the names follow), refresh the catalogue (none where
    /// the tool has no catalogue), upgrade everything installed.
    pub install: &'static [&'static str],
    pub update: Option<&'static [&'static str]>,
    pub upgrade: &'static [&'static str],
    /// Set in the tool's environment always (FreeBSD's `ASSUME_ALWAYS_YES`).
    pub env: &'static [(&'static str, &'static str)],
    pub installed: InstalledDb,
    /// The file that names the package mirror, warned about when missing (OpenBSD's
    /// installurl(5); pkg_add also takes PKG_PATH).
    pub mirror_file: Option<&'static str>,
    /// What a package name may have beyond letters, digits and `._+-`: `/` for pkg (an
    /// origin, `www/nginx`), `%` for pkg_add (a branch, `python%3.11`); pkg_add elsewhere
    /// takes a `/` for a file path, so it is refused there.
    pub name_chars: &'static str,
    /// The tool's own log of pkg_add's errors (pkgin(1) FILES), whose tail goes with a
    /// failure.
    pub error_log: Option<&'static str>,
}

/// What each OS does its own way.
pub trait Backend {
    /// The package tool; none on a system wisp installs no packages on (Linux, where it runs
    /// for tests and curtin only).
    fn packages(&self) -> Option<&'static PackageFacts> {
        None
    }
    fn facts(&self) -> &'static OsFacts;
    fn max_name_len(&self) -> usize {
        self.facts().max_name_len
    }
    fn sudoers_dropin(&self) -> &'static str {
        self.facts().sudoers_dropin
    }
    fn sudoers(&self) -> &'static str {
        self.facts().sudoers
    }
    fn doas_conf(&self) -> &'static str {
        self.facts().doas_conf
    }
    fn wheel(&self) -> &'static str {
        self.facts().wheel
    }
    fn disks_sysctl(&self) -> &'static str {
        self.facts().disks_sysctl
    }
    /// The distribution's default user (cloud-init's choice per OS).
    fn default_user(&self) -> UserSpec;
    fn add_group(&self, name: &str) -> Vec<String>;
    /// useradd/pw argv; warnings for fields this OS's tool cannot apply.
    fn add_user(&self, u: &NewUser<'_>, warnings: &mut Vec<String>) -> Vec<String>;
    fn add_to_group(&self, user: &str, group: &str) -> Vec<String>;
    fn lock(&self, user: &str) -> Vec<String>;
    /// Whether the account is locked already, from its password field and shell.
    fn is_locked(&self, hash: Option<&str>, shell: &str) -> bool;
    /// Whether [`Backend::add_user`] leaves a new account locked as [`Backend::lock`] would
    /// (so that a lock right after the creation, with no password set in between, is redundant).
    /// No by default: on the BSDs the tools leave `*` in the password field, which refuses
    /// every password but is not the lock their own tools and [`Backend::is_locked`] know.
    fn create_leaves_locked(&self) -> bool {
        false
    }
    fn hostname_store(&self) -> HostnameStore;
    /// BSD convention is the FQDN as the hostname; Linux uses the short name.
    fn prefers_fqdn(&self) -> bool {
        true
    }
    /// Loopback addresses the host's own names go on in /etc/hosts. The BSDs answer only on
    /// 127.0.0.1 and ::1, not on the rest of 127/8 as Linux does with 127.0.1.1.
    fn loopback(&self) -> &'static [&'static str] {
        &["127.0.0.1", "::1"]
    }
    fn ntp(&self) -> NtpStyle;
    /// Sets a password; the secret never goes in argv.
    fn set_password(&self, user: &str, secret: &str, hashed: bool) -> crate::plan::Action;
    /// Forces a password change at the next login (cloud-init ran `passwd --expire`, which no
    /// BSD has).
    fn expire_password(&self, user: &str) -> crate::plan::Action;
    /// Makes an SSH host key of `key_type` in `path` (and `path.pub`), with no passphrase.
    fn host_keygen(&self, key_type: &str, path: &str) -> Vec<String>;
    /// Reloads a running sshd after its configuration changed.
    fn reload_sshd(&self) -> Vec<String>;
    /// The raw devices to look for seed volumes on — each disk the kernel knows and its
    /// partitions (the MAAS seed is on the EFI partition of the boot disk, never on a whole
    /// disk) — whether they exist or not: `names` is what the OS's disk-list sysctl said (on
    /// Linux the /sys/block disks and their partitions, [`sys_block_names`]); `dev` the names
    /// in /dev, where the OS finds partitions there only ([`Backend::partitions_in_dev`]).
    fn seed_devices(&self, names: &str, dev: &[String]) -> Vec<String>;
    /// Whether [`Backend::seed_devices`] needs the names in /dev (FreeBSD's GEOM partitions
    /// are nowhere else without running gpart).
    fn partitions_in_dev(&self) -> bool {
        false
    }
    /// The command that lists the running system's interfaces with their link-layer
    /// addresses (parsed by `network::nics::parse_ifconfig`); `None` where wisp renders no
    /// network configuration.
    fn nic_list(&self) -> Option<Vec<String>> {
        None
    }
    /// Where the root is and what growing it takes, from the OS's read-only tools (`probe`).
    fn root_growth(&self, probe: &disks::Probe) -> Result<RootGrowth, String> {
        let _ = probe;
        Ok(RootGrowth::Skip(
            "wisp grows the root on NetBSD and FreeBSD only".into(),
        ))
    }
    /// Mounts a found seed volume read-only on `dir`.
    fn mount_seed(
        &self,
        kind: crate::volumes::FsKind,
        raw: &std::path::Path,
        dir: &str,
    ) -> Vec<String>;
    /// The name the mount table gives a raw device (NetBSD's and OpenBSD's `/dev/rX` is
    /// mounted as `/dev/X`).
    fn block_device(&self, raw: &std::path::Path) -> String {
        raw.display().to_string()
    }
    /// Mounts an EFI system partition read-write on `dir`: the MAAS seed is removed from it once
    /// imported.
    fn mount_esp(&self, raw: &std::path::Path, dir: &str) -> Vec<String> {
        let mut argv = self.mount_seed(crate::volumes::FsKind::Fat, raw, dir);
        if let Some(i) = argv.iter().position(|a| a == "ro") {
            argv[i] = "rw".into();
        }
        argv
    }
    /// shutdown(8), run inside the root.
    fn shutdown_tool(&self) -> &'static str {
        "/sbin/shutdown"
    }
    /// shutdown(8)'s flags for `mode`: NetBSD's and FreeBSD's `-p` powers off, `-r` reboots,
    /// `-h` halts (FreeBSD's `-o` would skip init's rc.shutdown: not used).
    fn shutdown_flags(
        &self,
        mode: crate::modules::power_state::PowerMode,
    ) -> &'static [&'static str] {
        use crate::modules::power_state::PowerMode;
        match mode {
            PowerMode::Poweroff => &["-p"],
            PowerMode::Reboot => &["-r"],
            PowerMode::Halt => &["-h"],
        }
    }
    /// Rebuilds login.conf's database after `locale` changed it (cap_mkdb(1)); empty where
    /// the OS has no system-wide locale.
    fn login_conf_db(&self) -> Vec<String> {
        Vec::new()
    }
    /// Rebuilds the trusted certificates after `ca_certs` changed them (`certctl rehash`);
    /// empty where no tool does.
    fn trust_rehash(&self) -> Vec<String> {
        Vec::new()
    }
    /// Removes an account and its home (when the boot created one that cloud-init would not
    /// have).
    fn remove_user(&self, user: &str) -> Vec<String>;
    /// Groups whose entries in the group file and its shadow disagree (a crash inside groupadd
    /// between the two), each with what is wrong, and the command that makes the shadow agree
    /// again. Only Linux keeps a group shadow; the BSDs have nothing to repair.
    fn group_shadow_mismatch(
        &self,
        _root: &crate::root::Root,
    ) -> Option<(Vec<String>, Vec<String>)> {
        None
    }
}

/// Seconds since the running system booted: /proc/uptime on Linux, `kern.boottime` on the BSDs
/// (for final_message's `$UPTIME`). sysctl(8) by its path (every BSD has it in /sbin), not
/// looked up in PATH. (libc's sysctl(KERN_BOOTTIME) would spare the process, but its constants
/// differ per BSD and cannot be checked here without their builds.)
pub fn uptime() -> Option<f64> {
    if let Ok(text) = std::fs::read_to_string("/proc/uptime") {
        return text.split_whitespace().next()?.parse().ok();
    }
    let out = std::process::Command::new("/sbin/sysctl")
        .args(["-n", "kern.boottime"])
        .output()
        .ok()?;
    let boot = parse_boottime(&String::from_utf8_lossy(&out.stdout))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some((now - boot).max(0.0))
}

/// `kern.boottime` as `sysctl -n` prints it: `{ sec = 1700000000, usec = 250000 } Mon …`
/// (FreeBSD), or the seconds alone (NetBSD, OpenBSD).
fn parse_boottime(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(secs as f64);
    }
    let field = |name: &str| -> Option<u64> {
        let at = text.find(&format!("{name} = "))? + name.len() + 3;
        let digits: String = text[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    let sec = field("sec")?;
    let usec = field("usec").unwrap_or(0);
    Some(sec as f64 + usec as f64 / 1e6)
}

/// The raw devices of the disks the running system knows and of their partitions, those that
/// exist: the OS's disk-list sysctl (/sys/block on Linux) and, where partitions are found
/// there, /dev.
pub fn disks(backend: &dyn Backend) -> Vec<std::path::PathBuf> {
    let names = if backend.disks_sysctl().is_empty() {
        sys_block_names(std::path::Path::new("/sys/block"))
    } else {
        std::process::Command::new("sysctl")
            .args(["-n", backend.disks_sysctl()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let dev = if backend.partitions_in_dev() {
        dir_names(std::path::Path::new("/dev"))
    } else {
        Vec::new()
    };
    existing(backend.seed_devices(&names, &dev).into_iter())
}

/// At most this many names are read from a directory (/dev, /sys/block): bounded work.
const MAX_DIR_NAMES: usize = 4096;

fn dir_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .take(MAX_DIR_NAMES)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Linux's disks and their partitions as sysfs shows them: each /sys/block/DISK, then its
/// partitions, the DISK/PART entries that hold a `partition` file (vda vda1 vda2 vdb …).
pub fn sys_block_names(sys_block: &std::path::Path) -> String {
    let mut out = Vec::new();
    for disk in dir_names(sys_block) {
        let parts: Vec<String> = dir_names(&sys_block.join(&disk))
            .into_iter()
            .filter(|p| sys_block.join(&disk).join(p).join("partition").is_file())
            .collect();
        out.push(disk);
        out.extend(parts);
    }
    out.join(" ")
}

/// What `room` says about the root partition `device` of `disk`, `partition` being the commands
/// that grow it when it can.
pub(crate) fn growth_of(
    device: &str,
    disk: &str,
    room: disks::Room,
    partition: Vec<Vec<String>>,
    fs: FsGrowth,
    backup_misplaced: bool,
) -> RootGrowth {
    match room {
        disks::Room::NotLast { next } => RootGrowth::NotLast {
            device: device.into(),
            disk: disk.into(),
            next,
        },
        disks::Room::Last { free } if free < disks::MIN_GROWTH_SECTORS && !backup_misplaced => {
            RootGrowth::Fills {
                device: device.into(),
            }
        }
        disks::Room::Last { .. } => RootGrowth::Grow {
            device: device.into(),
            disk: disk.into(),
            partition,
            fs,
        },
    }
}

/// A disk or provider name as the BSDs give them (`vtbd0`, `wd0`, `nvd0p2`): nothing that could
/// be read as a path or an option.
pub(crate) fn check_device_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
    {
        Ok(())
    } else {
        Err(format!("{name:?} is not a disk or partition name"))
    }
}

/// NetBSD's and OpenBSD's mount tools, read-only, on the block device of a raw one.
pub(crate) fn bsd_mount_seed(
    kind: crate::volumes::FsKind,
    raw: &std::path::Path,
    dir: &str,
) -> Vec<String> {
    let tool = match kind {
        crate::volumes::FsKind::Iso9660 => "mount_cd9660",
        crate::volumes::FsKind::Fat => "mount_msdos",
    };
    vec![
        tool.into(),
        "-o".into(),
        "ro".into(),
        block_of(raw),
        dir.into(),
    ]
}

/// `/dev/rX` → `/dev/X`: the block device of a raw one (NetBSD, OpenBSD).
pub(crate) fn block_of(raw: &std::path::Path) -> String {
    let s = raw.display().to_string();
    s.strip_prefix("/dev/r")
        .map(|r| format!("/dev/{r}"))
        .unwrap_or(s)
}

/// Raw devices that exist among the candidates for each disk name.
pub(crate) fn existing(candidates: impl Iterator<Item = String>) -> Vec<std::path::PathBuf> {
    candidates
        .map(std::path::PathBuf::from)
        .filter(|p| p.exists())
        .collect()
}

/// `chroot ROOT argv…` when a root is set (for tools with no root option of their own).
pub(crate) fn chrooted(root: &Option<String>, argv: Vec<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(r) = root {
        out.push("chroot".into());
        out.push(r.clone());
    }
    out.extend(owned(&argv));
    out
}

/// An argv of owned strings.
pub(crate) fn owned(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|s| s.to_string()).collect()
}

/// `flag value` when there is a value: the optional fields of useradd and pw.
pub(crate) fn push_opt(argv: &mut Vec<String>, flag: &str, value: Option<String>) {
    if let Some(v) = value {
        argv.push(flag.into());
        argv.push(v);
    }
}

/// The fields of useradd that NetBSD and OpenBSD share (OpenBSD's tool derives from NetBSD's).
pub(crate) fn bsd_useradd_common(u: &NewUser<'_>, argv: &mut Vec<String>) {
    if u.create_home {
        argv.push("-m".into());
    }
    let mut opt = |flag: &str, v: Option<String>| push_opt(argv, flag, v);
    opt("-c", u.gecos.map(str::to_string));
    opt("-d", u.homedir.map(str::to_string));
    opt("-e", u.expiredate.map(str::to_string));
    opt("-f", u.inactive.map(|d| d.to_string()));
    opt("-g", u.primary_group.map(str::to_string));
    opt("-s", u.shell.map(str::to_string));
    opt("-u", u.uid.map(|d| d.to_string()));
    // System accounts take their uid from the range below the users' (neither tool has a
    // "system" flag; this is what their daemons' accounts use).
    opt(
        "-r",
        (u.system && u.uid.is_none()).then(|| "100..999".to_string()),
    );
}

pub(crate) fn sudo_rule_user(name: &str) -> UserSpec {
    UserSpec {
        name: name.to_string(),
        groups: Some(vec!["wheel".into()]),
        lock_passwd: Some(true),
        sudo: Some(vec!["ALL=(ALL) NOPASSWD:ALL".into()]),
        ..Default::default()
    }
}

/// NetBSD's and OpenBSD's way to set a password (their usermod takes one only in argv): edit
/// master.passwd as vipw(8) does, hashing a plain-text secret with `hasher` (pwhash(1),
/// encrypt(1)) on standard input first. `hashed`: `secret` is a crypt(3) hash already.
pub(crate) fn master_passwd_password(
    root: &Option<String>,
    user: &str,
    secret: &str,
    hashed: bool,
    hasher: &str,
) -> crate::plan::Action {
    crate::plan::Action::MasterPasswd {
        module: "set_passwords",
        user: user.to_string(),
        field: crate::plan::PasswdField::Password {
            secret: crate::plan::Secret(secret.to_string()),
            plain: !hashed,
        },
        hasher: if hashed {
            Vec::new()
        } else {
            chrooted(root, vec![hasher])
        },
        db: chrooted(root, vec!["pwd_mkdb", "-s", "-u", user, "/etc/ptmp"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::FsKind;
    use std::path::Path;

    #[test]
    fn seed_volumes_are_mounted_read_only_with_each_systems_tool() {
        let dev = Path::new("/dev/rcd0d");
        let n = Platform::Netbsd.backend(None);
        assert_eq!(
            n.mount_seed(FsKind::Iso9660, dev, "/m"),
            ["mount_cd9660", "-o", "ro", "/dev/cd0d", "/m"]
        );
        assert_eq!(
            n.mount_seed(FsKind::Fat, Path::new("/dev/rsd1d"), "/m"),
            ["mount_msdos", "-o", "ro", "/dev/sd1d", "/m"]
        );
        let o = Platform::Openbsd.backend(None);
        assert_eq!(
            o.mount_seed(FsKind::Iso9660, Path::new("/dev/rcd0c"), "/m"),
            ["mount_cd9660", "-o", "ro", "/dev/cd0c", "/m"]
        );
        let f = Platform::Freebsd.backend(None);
        assert_eq!(
            f.mount_seed(FsKind::Fat, Path::new("/dev/vtbd1"), "/m"),
            ["mount_msdosfs", "-o", "ro", "/dev/vtbd1", "/m"]
        );
        assert_eq!(n.disks_sysctl(), "hw.disknames");
        assert_eq!(f.disks_sysctl(), "kern.disks");
    }

    #[test]
    fn disk_lists_become_existing_raw_devices() {
        // Only devices that exist are returned; none of these do here.
        assert!(existing(
            Platform::Openbsd
                .backend(None)
                .seed_devices("sd0:abc,cd0:", &[])
                .into_iter()
        )
        .iter()
        .all(|p| p.exists()));
        assert_eq!(block_of(Path::new("/dev/rwd1d")), "/dev/wd1d");
    }

    #[test]
    fn seed_devices_include_each_systems_partitions() {
        // Linux: the disks and partitions /sys/block shows (a fake one here).
        let sys = tempfile::tempdir().unwrap();
        for d in ["vda/vda1", "vda/vda2", "vdb/vdb1", "vda/queue", "loop0"] {
            std::fs::create_dir_all(sys.path().join(d)).unwrap();
        }
        for p in ["vda/vda1", "vda/vda2", "vdb/vdb1"] {
            std::fs::write(sys.path().join(p).join("partition"), "1\n").unwrap();
        }
        let names = sys_block_names(sys.path());
        assert_eq!(names, "loop0 vda vda1 vda2 vdb vdb1");
        let linux = Platform::Linux.backend(None);
        assert!(!linux.partitions_in_dev());
        assert_eq!(
            linux.seed_devices(&names, &[]),
            [
                "/dev/loop0",
                "/dev/vda",
                "/dev/vda1",
                "/dev/vda2",
                "/dev/vdb",
                "/dev/vdb1"
            ]
        );
        // FreeBSD: GPT partitions (p), MBR slices (s) and their BSD partitions, from /dev; not
        // another disk whose name starts alike, nor the GEOM label directories.
        let freebsd = Platform::Freebsd.backend(None);
        assert!(freebsd.partitions_in_dev());
        let dev: Vec<String> = [
            "vtbd0", "vtbd0p1", "vtbd0p2", "vtbd1", "vtbd10", "vtbd10p1", "ada0", "ada0s1",
            "ada0s1a", "ada0p", "ada0px", "gpt", "msdosfs", "cd0", "null",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            freebsd.seed_devices("cd0 vtbd0 vtbd1 ada0", &dev),
            [
                "/dev/cd0",
                "/dev/vtbd0",
                "/dev/vtbd0p1",
                "/dev/vtbd0p2",
                "/dev/vtbd1",
                "/dev/ada0",
                "/dev/ada0s1",
                "/dev/ada0s1a"
            ]
        );
        // OpenBSD: the raw whole disk `c` and every other disklabel partition (a GPT disk's
        // EFI partition is spoofed from `i` on).
        let openbsd = Platform::Openbsd.backend(None);
        let sd0 = openbsd.seed_devices("sd0:3f8e2a11b1c7d9e0,cd0:", &[]);
        assert_eq!(sd0.len(), 32);
        assert_eq!(sd0[0], "/dev/rsd0c");
        assert!(sd0.contains(&"/dev/rsd0i".to_string()));
        assert!(sd0.contains(&"/dev/rsd0a".to_string()));
        assert!(sd0.contains(&"/dev/rsd0p".to_string()));
        assert!(sd0.contains(&"/dev/rcd0c".to_string()));
        assert_eq!(sd0.iter().filter(|d| d.as_str() == "/dev/rsd0c").count(), 1);
        // NetBSD: the wedges are disks of their own in hw.disknames.
        let netbsd = Platform::Netbsd.backend(None);
        let nb = netbsd.seed_devices("wd0 dk0 dk1", &[]);
        assert_eq!(
            nb[..3],
            ["/dev/rwd0d", "/dev/rwd0c", "/dev/rwd0"].map(String::from)
        );
        assert!(nb.contains(&"/dev/rdk0".to_string()));
        assert!(nb.contains(&"/dev/rdk1".to_string()));
        // An MBR disk without wedges: its FAT partitions are disklabel letters e to p.
        for l in ['e', 'f', 'i', 'p'] {
            assert!(nb.contains(&format!("/dev/rwd0{l}")), "{l}: {nb:?}");
        }
        assert!(!nb.contains(&"/dev/rwd0a".to_string()));
        assert!(!nb.contains(&"/dev/rwd0q".to_string()));
    }

    #[test]
    fn boot_time_as_each_bsd_prints_it() {
        assert_eq!(
            parse_boottime("{ sec = 1700000000, usec = 250000 } Tue Nov 14 22:13:20 2023\n"),
            Some(1_700_000_000.25)
        );
        assert_eq!(parse_boottime("1700000000\n"), Some(1_700_000_000.0));
        assert_eq!(parse_boottime("garbage"), None);
    }
}
