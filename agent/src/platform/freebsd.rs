//! FreeBSD: pw(8), which has its own root option (`pw -R`); sudo and doas from ports under
//! /usr/local.

use super::{disks, Backend, FsGrowth, HostnameStore, NewUser, NtpStyle, OsFacts, RootGrowth};
use crate::cloudconfig::model::UserSpec;

pub struct FreeBsd {
    pub root: Option<String>,
}

impl FreeBsd {
    fn pw(&self, args: &[&str]) -> Vec<String> {
        let mut argv = vec!["pw".to_string()];
        if let Some(r) = &self.root {
            argv.push("-R".into());
            argv.push(r.clone());
        }
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    }
}

/// The values that set this system apart (see [`super::OsFacts`]).
const FACTS: OsFacts = OsFacts {
    name: "freebsd",
    // MAXLOGNAME is 33 with the terminating NUL.
    max_name_len: 32,
    sudoers_dropin: "/usr/local/etc/sudoers.d/90-wisp-users",
    sudoers: "/usr/local/etc/sudoers",
    doas_conf: "/usr/local/etc/doas.conf",
    wheel: "wheel",
    disks_sysctl: "kern.disks",
    skel: "/usr/share/skel",
    skel_dot_prefix: true,
    home_mode: 0o755,
    sshd_makes_host_keys: true,
    first_regular_uid: 1000,
    syslog: super::SyslogFacts {
        conf: "/etc/syslog.conf",
        dropin: Some(("/etc/syslog.d/wisp-rsyslog.conf", "include /etc/syslog.d")),
        udp_port: true,
        bracket_ipv6: true,
        tcp_prefix: None,
        pidfile: "/var/run/syslog.pid",
        reload: &["service", "syslogd", "reload"],
        url_schemes: &[],
        level_comparisons: true,
        block_reset: &["!*", "+*"],
    },
    trust: super::TrustStore::Certctl {
        dir: "/usr/local/share/certs",
        config: None,
        installed: Some("/etc/ssl/certs"),
        untrust: Some(super::Untrust {
            base: "/usr/share/certs/trusted",
            dir: "/usr/share/certs/untrusted",
            installed: "/etc/ssl/untrusted",
        }),
    },
    login_conf_locale: true,
};

/// pkg(8): `install -y`, `update`, `upgrade -y`; `ASSUME_ALWAYS_YES` answers the rest (the
/// bootstrap's key question among them). Base has only pkg(7) in /usr/sbin, which installs the
/// real pkg on `pkg bootstrap -y`. The local database is SQLite: the installed packages come
/// from `pkg query`.
const PACKAGES: super::PackageFacts = super::PackageFacts {
    tool: "/usr/local/sbin/pkg",
    bootstrap: Some(&["/usr/sbin/pkg", "bootstrap", "-y"]),
    missing: "pkg is not installed",
    install: &["install", "-y"],
    update: Some(&["update"]),
    upgrade: &["upgrade", "-y"],
    env: &[("ASSUME_ALWAYS_YES", "yes")],
    installed: super::InstalledDb::Query(&["/usr/local/sbin/pkg", "query", "-a", "%n-%v %o"]),
    mirror_file: None,
    name_chars: "/",
    error_log: None,
};

impl Backend for FreeBsd {
    fn packages(&self) -> Option<&'static super::PackageFacts> {
        Some(&PACKAGES)
    }
    fn facts(&self) -> &'static OsFacts {
        &FACTS
    }
    fn default_user(&self) -> UserSpec {
        UserSpec {
            shell: Some("/bin/tcsh".into()),
            ..super::sudo_rule_user("freebsd")
        }
    }
    fn add_group(&self, name: &str) -> Vec<String> {
        self.pw(&["groupadd", name])
    }
    fn add_user(&self, u: &NewUser<'_>, warnings: &mut Vec<String>) -> Vec<String> {
        let mut argv = self.pw(&["useradd", u.name]);
        let mut opt = |flag: &str, v: Option<String>| super::push_opt(&mut argv, flag, v);
        opt("-c", u.gecos.map(str::to_string));
        opt("-d", u.homedir.map(str::to_string));
        // -e is the account's expiry (-p would be the password's).
        opt("-e", u.expiredate.map(str::to_string));
        opt("-g", u.primary_group.map(str::to_string));
        opt("-G", (!u.groups.is_empty()).then(|| u.groups.join(",")));
        opt("-s", u.shell.map(str::to_string));
        opt("-u", u.uid.map(|d| d.to_string()));
        if u.create_home {
            argv.push("-m".into());
        }
        // pw has no inactivity setting (cloud-init wrongly passed -E, which pw does not have).
        if u.inactive.is_some() {
            warnings.push(format!(
                "{}: inactive is not supported by pw(8) on FreeBSD; ignored",
                u.name
            ));
        }
        if u.system {
            warnings.push(format!(
                "{}: pw(8) has no system-account range; created without a home",
                u.name
            ));
        }
        argv
    }
    fn add_to_group(&self, user: &str, group: &str) -> Vec<String> {
        self.pw(&["groupmod", group, "-m", user])
    }
    fn remove_user(&self, user: &str) -> Vec<String> {
        self.pw(&["userdel", "-n", user, "-r"])
    }
    /// Kept after `pw useradd`: without `-w`/`-h`/`-H` it leaves `*` (pw.conf's `defaultpasswd`
    /// is "no"), which refuses every password but is not the `*LOCKED*` prefix `pw lock` adds —
    /// the one cloud-init's lock_passwd sets here and `is_locked` knows.
    fn lock(&self, user: &str) -> Vec<String> {
        self.pw(&["lock", user])
    }
    fn is_locked(&self, hash: Option<&str>, _shell: &str) -> bool {
        hash.is_some_and(|h| h.starts_with("*LOCKED*"))
    }
    /// `pw usermod -H 0` reads a hash from descriptor 0, `-h 0` a plain-text password.
    fn set_password(&self, user: &str, secret: &str, hashed: bool) -> crate::plan::Action {
        crate::plan::Action::Exec {
            module: "set_passwords",
            item: user.to_string(),
            argv: self.pw(&["usermod", user, if hashed { "-H" } else { "-h" }, "0"]),
            stdin: Some(crate::plan::Secret(format!("{secret}\n"))),
            env: Vec::new(),
            timeout: None,
        }
    }
    /// -p sets the password's expiry date; a date in the past forces a change.
    fn expire_password(&self, user: &str) -> crate::plan::Action {
        crate::plan::Action::exec(
            "set_passwords",
            user,
            self.pw(&["usermod", user, "-p", "1"]),
        )
    }
    /// ssh-keygen(1): `-q` quiet, `-N ""` an empty passphrase (no secret), `-f` the file.
    fn host_keygen(&self, key_type: &str, path: &str) -> Vec<String> {
        super::chrooted(
            &self.root,
            vec!["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", path],
        )
    }
    fn login_conf_db(&self) -> Vec<String> {
        // cap_mkdb(1) names the database after the file (`login.conf.db` beside it).
        let conf = format!("{}/etc/login.conf", self.root.as_deref().unwrap_or(""));
        vec!["cap_mkdb".into(), conf]
    }
    /// certctl(8)'s `-D` is the DESTDIR it works in.
    fn trust_rehash(&self) -> Vec<String> {
        let mut argv = vec!["certctl".to_string()];
        if let Some(r) = &self.root {
            argv.push("-D".into());
            argv.push(r.clone());
        }
        argv.push("rehash".into());
        argv
    }
    fn reload_sshd(&self) -> Vec<String> {
        vec!["service".into(), "sshd".into(), "reload".into()]
    }
    /// `kern.disks` is "cd0 vtbd1 ada0"; FreeBSD has no separate raw devices. GEOM names a
    /// disk's partitions in /dev after it: GPT `vtbd0p1`, MBR slices `ada0s1` and the BSD
    /// partitions in them `ada0s1a`.
    fn seed_devices(&self, names: &str, dev: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for disk in names.split_whitespace() {
            out.push(format!("/dev/{disk}"));
            out.extend(
                dev.iter()
                    .filter(|n| is_partition_of(disk, n))
                    .map(|n| format!("/dev/{n}")),
            );
        }
        out
    }
    fn partitions_in_dev(&self) -> bool {
        true
    }
    fn mount_seed(
        &self,
        kind: crate::volumes::FsKind,
        raw: &std::path::Path,
        dir: &str,
    ) -> Vec<String> {
        let tool = match kind {
            crate::volumes::FsKind::Iso9660 => "mount_cd9660",
            crate::volumes::FsKind::Fat => "mount_msdosfs",
        };
        vec![
            tool.into(),
            "-o".into(),
            "ro".into(),
            raw.display().to_string(),
            dir.into(),
        ]
    }
    /// FreeBSD prints `ether MAC` (and `hwaddr MAC` when a lagg changed it).
    fn nic_list(&self) -> Option<Vec<String>> {
        Some(vec!["/sbin/ifconfig".into(), "-a".into()])
    }
    /// As FreeBSD's own rc.d/growfs does: the root's GPT partition grown with gpart(8) (its
    /// backup GPT first recovered when the disk grew under the image), then the mounted UFS
    /// with growfs(8), which grows a mounted file system.
    fn root_growth(&self, probe: &disks::Probe) -> Result<RootGrowth, String> {
        let mount = disks::parse_mount_p(&probe.output(&["mount", "-p"])?)
            .ok_or("mount -p: nothing is mounted on /")?;
        if mount.fstype != "ufs" {
            return Ok(RootGrowth::Skip(format!(
                "the root {} is {}, not UFS: wisp grows UFS roots only",
                mount.device, mount.fstype
            )));
        }
        let dev = mount
            .device
            .strip_prefix("/dev/")
            .ok_or_else(|| format!("the root {} is not a device", mount.device))?;
        // A label (gpt/rootfs, ufs/root) names a provider: glabel(8) says which.
        let provider = if dev.contains('/') {
            disks::parse_glabel_status(&probe.output(&["glabel", "status"])?, dev)
                .ok_or_else(|| format!("glabel status: no provider for the label {dev}"))?
        } else {
            dev.to_string()
        };
        super::check_device_name(&provider)?;
        // GPT providers are the disk's name, `p` and the index (vtbd0p3).
        let disk = provider
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .strip_suffix('p')
            .filter(|d| d.ends_with(|c: char| c.is_ascii_digit()))
            .ok_or_else(|| {
                format!("the root {provider} is not a GPT partition: wisp grows GPT roots only")
            });
        let disk = match disk {
            Ok(d) => d,
            Err(note) => return Ok(RootGrowth::Skip(note)),
        };
        let table = disks::parse_gpart_show(&probe.output(&["gpart", "show", "-p", disk])?)?;
        if table.scheme != "GPT" {
            return Ok(RootGrowth::Skip(format!(
                "{disk} has an {} table: wisp grows GPT roots only",
                table.scheme
            )));
        }
        let part = table
            .parts
            .iter()
            .find(|p| p.name == provider)
            .ok_or_else(|| format!("gpart show -p {disk}: no partition {provider}"))?;
        let (part, room) = table
            .room(part.start)
            .ok_or_else(|| format!("gpart show -p {disk}: no partition {provider}"))?;
        let mut partition = Vec::new();
        if table.backup_misplaced {
            partition.push(super::owned(&["gpart", "recover", disk]));
        }
        let index = part.index.to_string();
        partition.push(super::owned(&["gpart", "resize", "-i", &index, disk]));
        Ok(super::growth_of(
            &mount.device,
            disk,
            room,
            partition,
            FsGrowth::Now(super::owned(&["growfs", "-y", &mount.device])),
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
            driftfile: Some("/var/db/ntpd.drift"),
            enable: Some(("/etc/rc.conf", "ntpd_enable", "YES")),
            default_pool: "freebsd.pool.ntp.org",
        }
    }
}

/// Whether the /dev name `name` is a partition of `disk`: `p` or `s` and a number, and for a
/// slice optionally one partition letter (GEOM's PART_GPT, PART_MBR and PART_BSD names).
fn is_partition_of(disk: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(disk) else {
        return false;
    };
    let mut chars = rest.chars();
    let kind = chars.next();
    let rest = chars.as_str();
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return false;
    }
    match (kind, &rest[digits..]) {
        (Some('p') | Some('s'), "") => true,
        (Some('s'), letter) => {
            letter.len() == 1 && letter.chars().all(|c| ('a'..='h').contains(&c))
        }
        _ => false,
    }
}
