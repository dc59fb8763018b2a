//! NetBSD: useradd(8), usermod(8), groupadd(8) from base (no root option: `chroot`), sudo and doas
//! from pkgsrc under /usr/pkg.

use super::{
    bsd_useradd_common, chrooted, sudo_rule_user, Backend, HostnameStore, NewUser, NtpStyle,
    OsFacts,
};
use crate::cloudconfig::model::UserSpec;

/// The disklabel letters disklabel(8) gives to the non-NetBSD partitions of an MBR disk
/// (`a`–`d` are root, swap, the NetBSD part and the whole disk on x86).
const MBR_LABEL_LETTERS: [char; 12] = ['e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p'];

pub struct NetBsd {
    pub root: Option<String>,
}

/// The values that set this system apart (see [`super::OsFacts`]).
const FACTS: OsFacts = OsFacts {
    name: "netbsd",
    // LOGIN_NAME_MAX is 17 with the terminating NUL.
    max_name_len: 16,
    sudoers_dropin: "/usr/pkg/etc/sudoers.d/90-wisp-users",
    sudoers: "/usr/pkg/etc/sudoers",
    doas_conf: "/usr/pkg/etc/doas.conf",
    wheel: "wheel",
    disks_sysctl: "hw.disknames",
    skel: "/etc/skel",
    skel_dot_prefix: false,
    home_mode: 0o755,
    sshd_makes_host_keys: true,
    first_regular_uid: 1000,
    syslog: super::SyslogFacts {
        conf: "/etc/syslog.conf",
        dropin: None,
        udp_port: false,
        bracket_ipv6: false,
        tcp_prefix: None,
        pidfile: "/var/run/syslogd.pid",
        reload: &["/etc/rc.d/syslogd", "reload"],
        url_schemes: &[],
        level_comparisons: true,
        block_reset: &["!*", "+*"],
    },
    trust: super::TrustStore::Certctl {
        dir: "/etc/openssl/wisp-trusted",
        config: Some("/etc/openssl/certs.conf"),
        installed: None,
        untrust: None,
    },
    login_conf_locale: false,
};

/// pkgin(1) on pkgsrc: `-y` answers its questions yes; `update` refreshes the repository's
/// summary, `upgrade` upgrades every package. Installed packages are the directories of
/// pkg_install's PKG_DBDIR: `${PREFIX}/pkgdb` on current pkgsrc, /var/db/pkg before 2020.
const PACKAGES: super::PackageFacts = super::PackageFacts {
    tool: "/usr/pkg/bin/pkgin",
    bootstrap: None,
    missing: "pkgin is not installed (bootstrap pkgsrc in the image)",
    install: &["-y", "install"],
    update: Some(&["-y", "update"]),
    // pkgin(1) documents `upgrade` as upgrading all packages (since 0.13.0 it does what
    // `full-upgrade` did, which is no longer documented).
    upgrade: &["-y", "upgrade"],
    env: &[],
    installed: super::InstalledDb::Dirs {
        dirs: &["/usr/pkg/pkgdb", "/var/db/pkg"],
        flavors: false,
    },
    mirror_file: None,
    name_chars: "",
    error_log: Some("/var/db/pkgin/pkg_install-err.log"),
};

impl Backend for NetBsd {
    fn packages(&self) -> Option<&'static super::PackageFacts> {
        Some(&PACKAGES)
    }
    fn facts(&self) -> &'static OsFacts {
        &FACTS
    }
    fn default_user(&self) -> UserSpec {
        UserSpec {
            shell: Some("/bin/sh".into()),
            ..sudo_rule_user("netbsd")
        }
    }
    fn add_group(&self, name: &str) -> Vec<String> {
        chrooted(&self.root, vec!["groupadd", name])
    }
    fn add_user(&self, u: &NewUser<'_>, _warnings: &mut Vec<String>) -> Vec<String> {
        let mut argv = chrooted(&self.root, vec!["useradd"]);
        bsd_useradd_common(u, &mut argv);
        // NetBSD's -G takes one group per flag.
        for g in u.groups {
            argv.push("-G".into());
            argv.push(g.clone());
        }
        argv.push(u.name.to_string());
        argv
    }
    /// usermod -G adds the user to that group in /etc/group.
    fn add_to_group(&self, user: &str, group: &str) -> Vec<String> {
        chrooted(&self.root, vec!["usermod", "-G", group, user])
    }
    fn remove_user(&self, user: &str) -> Vec<String> {
        chrooted(&self.root, vec!["userdel", "-r", user])
    }
    /// Kept after useradd: without `-p` it leaves `*` (usermgmt.conf's default password), which
    /// refuses every password but is not the `*LOCKED*` mark this sets — the one cloud-init's
    /// lock_passwd sets here and `is_locked` knows (or every later run would plan it again).
    fn lock(&self, user: &str) -> Vec<String> {
        chrooted(&self.root, vec!["usermod", "-C", "yes", user])
    }
    fn is_locked(&self, hash: Option<&str>, _shell: &str) -> bool {
        hash.is_some_and(|h| h.starts_with("*LOCKED*"))
    }
    fn set_password(&self, user: &str, secret: &str, hashed: bool) -> crate::plan::Action {
        super::master_passwd_password(&self.root, user, secret, hashed, "pwhash")
    }
    /// usermod -F: "force a user to change their password at next login".
    fn expire_password(&self, user: &str) -> crate::plan::Action {
        crate::plan::Action::exec(
            "set_passwords",
            user,
            chrooted(&self.root, vec!["usermod", "-F", user]),
        )
    }
    /// ssh-keygen(1): `-q` quiet, `-N ""` an empty passphrase (no secret), `-f` the file.
    fn host_keygen(&self, key_type: &str, path: &str) -> Vec<String> {
        super::chrooted(
            &self.root,
            vec!["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", path],
        )
    }
    /// NetBSD's certctl(8) has no root option and reads absolute paths from certs.conf: under
    /// another root it runs chrooted there.
    fn trust_rehash(&self) -> Vec<String> {
        chrooted(&self.root, vec!["certctl", "rehash"])
    }
    fn reload_sshd(&self) -> Vec<String> {
        vec!["/etc/rc.d/sshd".into(), "reload".into()]
    }
    /// `hw.disknames` is "wd0 cd0 dk0"; the raw whole-disk partition is `d` on x86, `c`
    /// elsewhere; wedges have none.
    /// The partitions of a GPT disk are wedges, listed as disks of their own. On an MBR disk
    /// without wedges, the FAT partitions of the MBR get disklabel letters after the
    /// NetBSD ones (`e` to `p`, [`MBR_LABEL_LETTERS`]): each is tried (devices that do not
    /// exist are dropped).
    fn seed_devices(&self, names: &str, _dev: &[String]) -> Vec<String> {
        names
            .split_whitespace()
            .flat_map(|n| {
                [
                    format!("/dev/r{n}d"),
                    format!("/dev/r{n}c"),
                    format!("/dev/r{n}"),
                ]
                .into_iter()
                .chain(MBR_LABEL_LETTERS.map(|l| format!("/dev/r{n}{l}")))
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
    /// NetBSD prints `address: MAC` for each NIC.
    fn nic_list(&self) -> Option<Vec<String>> {
        Some(vec!["/sbin/ifconfig".into(), "-a".into()])
    }
    /// The root is on a wedge (dkN) of a GPT disk: dkctl(8) names the disk and where the wedge
    /// starts, gpt(8) shows the table. The partition grows with `gpt resizedisk` (the backup
    /// GPT moved to the end of a disk that grew under the image) and `gpt resize`. resize_ffs(8)
    /// is not run on the mounted root: rc.d/resize_root runs it at the next boot, before the
    /// root is mounted read-write, when rc.conf says `resize_root=YES` ([`RESIZE_ROOT`]).
    fn root_growth(&self, probe: &super::disks::Probe) -> Result<super::RootGrowth, String> {
        use super::{disks, FsGrowth, RootGrowth};
        let mount = disks::parse_mount(&probe.output(&["mount"])?)
            .ok_or("mount: nothing is mounted on /")?;
        if mount.fstype != "ffs" {
            return Ok(RootGrowth::Skip(format!(
                "the root {} is {}, not FFS: wisp grows FFS roots only",
                mount.device, mount.fstype
            )));
        }
        let dev = mount
            .device
            .strip_prefix("/dev/")
            .ok_or_else(|| format!("the root {} is not a device", mount.device))?;
        super::check_device_name(dev)?;
        if !dev.starts_with("dk") {
            return Ok(RootGrowth::Skip(format!(
                "the root {} is not on a GPT wedge (dkN): wisp grows GPT roots only",
                mount.device
            )));
        }
        let wedge = disks::parse_wedgeinfo(&probe.output(&["dkctl", dev, "getwedgeinfo"])?)?;
        let disk = wedge.parent.as_str();
        super::check_device_name(disk)?;
        let table = disks::parse_gpt_show(&probe.output(&["gpt", "show", disk])?, disk)?;
        let (part, room) = table.room(wedge.offset).ok_or_else(|| {
            format!(
                "gpt show {disk}: no GPT partition starts where {dev} does ({})",
                wedge.offset
            )
        })?;
        let mut partition = Vec::new();
        if table.backup_misplaced {
            partition.push(super::owned(&["gpt", "resizedisk", disk]));
        }
        let index = part.index.to_string();
        partition.push(super::owned(&["gpt", "resize", "-i", &index, disk]));
        Ok(super::growth_of(
            &mount.device,
            disk,
            room,
            partition,
            FsGrowth::NextBoot {
                rc_conf: "/etc/rc.conf",
                vars: RESIZE_ROOT,
            },
            table.backup_misplaced,
        ))
    }
    fn hostname_store(&self) -> HostnameStore {
        HostnameStore::RcConf("/etc/rc.conf")
    }
    fn ntp(&self) -> NtpStyle {
        NtpStyle {
            conf: "/etc/ntp.conf",
            openntpd: false,
            driftfile: Some("/var/db/ntp.drift"),
            enable: Some(("/etc/rc.conf", "ntpd", "YES")),
            default_pool: "netbsd.pool.ntp.org",
        }
    }
}

/// rc.conf for rc.d/resize_root, as NetBSD's own images set it (distrib/utils/embedded/conf):
/// resize_ffs grows the read-only root at the next boot (`-p` shows its progress), then the
/// machine reboots at once without syncing (`reboot -n`) — the kernel still holds the old
/// superblock of the mounted root, and writing it back would undo the growth and leave the
/// file system inconsistent. At the boot after, resize_ffs finds the size right and the
/// reboot is not repeated.
pub const RESIZE_ROOT: &[(&str, &str)] = &[
    ("resize_root", "YES"),
    ("resize_root_flags", "-p"),
    ("resize_root_postcmd", "/sbin/reboot -n"),
];
