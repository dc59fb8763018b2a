//! OpenBSD: useradd(8), usermod(8), groupadd(8) from base (no root option: `chroot`); doas from
//! base in /etc, sudo from ports under /usr/local.

use super::{bsd_useradd_common, chrooted, Backend, HostnameStore, NewUser, NtpStyle, OsFacts};
use crate::cloudconfig::model::UserSpec;

pub struct OpenBsd {
    pub root: Option<String>,
}

/// The values that set this system apart (see [`super::OsFacts`]).
const FACTS: OsFacts = OsFacts {
    name: "openbsd",
    // _PW_NAME_LEN.
    max_name_len: 31,
    sudoers_dropin: "/usr/local/etc/sudoers.d/90-wisp-users",
    sudoers: "/usr/local/etc/sudoers",
    doas_conf: "/etc/doas.conf",
    wheel: "wheel",
    disks_sysctl: "hw.disknames",
    skel: "/etc/skel",
    skel_dot_prefix: false,
    home_mode: 0o755,
    sshd_makes_host_keys: false,
    first_regular_uid: 1000,
    syslog: super::SyslogFacts {
        conf: "/etc/syslog.conf",
        dropin: None,
        udp_port: true,
        bracket_ipv6: true,
        tcp_prefix: Some("@tcp://"),
        pidfile: "/var/run/syslog.pid",
        reload: &["rcctl", "reload", "syslogd"],
        url_schemes: &[
            "udp", "udp4", "udp6", "tcp", "tcp4", "tcp6", "tls", "tls4", "tls6",
        ],
        level_comparisons: false,
        block_reset: &["!*", "+*"],
    },
    trust: super::TrustStore::Bundle("/etc/ssl/cert.pem"),
    login_conf_locale: false,
};

/// pkg_add(1): `-I` never asks, `-u` updates the installed packages; it has no catalogue to
/// refresh. It fetches from the mirror in installurl(5). Installed packages are the
/// directories of /var/db/pkg, `stem-version[-flavor]`.
const PACKAGES: super::PackageFacts = super::PackageFacts {
    tool: "/usr/sbin/pkg_add",
    bootstrap: None,
    missing: "pkg_add is not installed",
    install: &["-I"],
    update: None,
    upgrade: &["-I", "-u"],
    env: &[],
    installed: super::InstalledDb::Dirs {
        dirs: &["/var/db/pkg"],
        flavors: true,
    },
    mirror_file: Some("/etc/installurl"),
    name_chars: "%",
    error_log: None,
};

impl Backend for OpenBsd {
    fn packages(&self) -> Option<&'static super::PackageFacts> {
        Some(&PACKAGES)
    }
    /// OpenBSD's `-p` only passes on to halt(8): power off is `-h -p`.
    fn shutdown_flags(
        &self,
        mode: crate::modules::power_state::PowerMode,
    ) -> &'static [&'static str] {
        use crate::modules::power_state::PowerMode;
        match mode {
            PowerMode::Poweroff => &["-h", "-p"],
            PowerMode::Reboot => &["-r"],
            PowerMode::Halt => &["-h"],
        }
    }
    fn facts(&self) -> &'static OsFacts {
        &FACTS
    }
    /// doas is the norm here, sudo is not in base.
    fn default_user(&self) -> UserSpec {
        UserSpec {
            name: "openbsd".into(),
            groups: Some(vec!["wheel".into()]),
            lock_passwd: Some(true),
            shell: Some("/bin/ksh".into()),
            doas: Some(vec!["permit nopass openbsd".into()]),
            ..Default::default()
        }
    }
    fn add_group(&self, name: &str) -> Vec<String> {
        chrooted(&self.root, vec!["groupadd", name])
    }
    fn add_user(&self, u: &NewUser<'_>, _warnings: &mut Vec<String>) -> Vec<String> {
        let mut argv = chrooted(&self.root, vec!["useradd"]);
        bsd_useradd_common(u, &mut argv);
        if !u.groups.is_empty() {
            argv.push("-G".into());
            argv.push(u.groups.join(","));
        }
        argv.push(u.name.to_string());
        argv
    }
    /// usermod -G appends to the secondary groups (-S would replace them).
    fn add_to_group(&self, user: &str, group: &str) -> Vec<String> {
        chrooted(&self.root, vec!["usermod", "-G", group, user])
    }
    fn remove_user(&self, user: &str) -> Vec<String> {
        chrooted(&self.root, vec!["userdel", "-r", user])
    }
    /// Kept after useradd, which leaves the shell as given: this lock is on the shell (and the
    /// password), so a new account is not locked until it runs.
    fn lock(&self, user: &str) -> Vec<String> {
        chrooted(&self.root, vec!["usermod", "-Z", user])
    }
    /// usermod -Z appends '-' to the shell and prefixes the password with '*'.
    fn is_locked(&self, _hash: Option<&str>, shell: &str) -> bool {
        shell.ends_with('-')
    }
    fn set_password(&self, user: &str, secret: &str, hashed: bool) -> crate::plan::Action {
        super::master_passwd_password(&self.root, user, secret, hashed, "encrypt")
    }
    /// OpenBSD's usermod cannot force a change; the `change` field of master.passwd can.
    fn expire_password(&self, user: &str) -> crate::plan::Action {
        crate::plan::Action::MasterPasswd {
            module: "set_passwords",
            user: user.to_string(),
            field: crate::plan::PasswdField::Change(1),
            hasher: Vec::new(),
            db: chrooted(&self.root, vec!["pwd_mkdb", "-u", user, "/etc/ptmp"]),
        }
    }
    /// ssh-keygen(1): `-q` quiet, `-N ""` an empty passphrase (no secret), `-f` the file.
    fn host_keygen(&self, key_type: &str, path: &str) -> Vec<String> {
        super::chrooted(
            &self.root,
            vec!["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", path],
        )
    }
    fn reload_sshd(&self) -> Vec<String> {
        vec!["rcctl".into(), "reload".into(), "sshd".into()]
    }
    /// `hw.disknames` is "sd0:duid,cd0:"; the raw whole disk is partition `c`, the others are
    /// `a`..`p` of the disklabel. On a GPT disk without an OpenBSD label the kernel makes up
    /// partitions for the GPT ones from `i` on (the EFI partition as msdos), and the installer
    /// keeps them: every letter is tried (reading an unused one fails, harmlessly).
    fn seed_devices(&self, names: &str, _dev: &[String]) -> Vec<String> {
        names
            .split(',')
            .filter_map(|e| e.split(':').next())
            .filter(|n| !n.is_empty())
            .flat_map(|n| {
                std::iter::once(format!("/dev/r{n}c")).chain(
                    ('a'..='p')
                        .filter(|l| *l != 'c')
                        .map(move |l| format!("/dev/r{n}{l}")),
                )
            })
            .collect()
    }
    fn mount_seed(
        &self,
        kind: crate::volumes::FsKind,
        raw: &std::path::Path,
        dir: &str,
    ) -> Vec<String> {
        super::bsd_mount_seed(kind, raw, dir)
    }
    fn block_device(&self, raw: &std::path::Path) -> String {
        super::block_of(raw)
    }
    /// OpenBSD prints `lladdr MAC`.
    fn nic_list(&self) -> Option<Vec<String>> {
        Some(vec!["/sbin/ifconfig".into(), "-a".into()])
    }
    /// OpenBSD's growfs(8) enlarges only unmounted file systems, and its rc has no step that
    /// runs before the root is in use: the root cannot be grown from the running system.
    fn root_growth(&self, _probe: &super::disks::Probe) -> Result<super::RootGrowth, String> {
        Ok(super::RootGrowth::Skip(
            "OpenBSD's growfs(8) grows only unmounted file systems: the root is not grown \
             (grow it from the installer's shell: disklabel -E, then growfs)"
                .into(),
        ))
    }
    fn hostname_store(&self) -> HostnameStore {
        HostnameStore::File("/etc/myname")
    }
    /// OpenNTPD is in base and enabled by default.
    fn ntp(&self) -> NtpStyle {
        NtpStyle {
            conf: "/etc/ntpd.conf",
            openntpd: true,
            driftfile: None,
            enable: None,
            default_pool: "pool.ntp.org",
        }
    }
}
