//! Linux (shadow-utils), for tests and for the curtin side: useradd, usermod and groupadd with
//! `--root`. Long options are fine here — and only here.

use super::{Backend, HostnameStore, NewUser, NtpStyle, OsFacts};
use crate::cloudconfig::model::UserSpec;
use std::collections::HashSet;

pub struct Linux {
    pub root: Option<String>,
}

impl Linux {
    fn tool(&self, name: &str) -> Vec<String> {
        let mut argv = vec![name.to_string()];
        if let Some(r) = &self.root {
            argv.push("--root".into());
            argv.push(r.clone());
        }
        argv
    }
}

/// The values that set this system apart (see [`super::OsFacts`]).
const FACTS: OsFacts = OsFacts {
    name: "linux",
    max_name_len: 32,
    sudoers_dropin: "/etc/sudoers.d/90-wisp-users",
    sudoers: "/etc/sudoers",
    doas_conf: "/etc/doas.conf",
    wheel: "root",
    // Linux has no such sysctl; the block devices are listed from /sys/block instead.
    disks_sysctl: "",
    skel: "/etc/skel",
    skel_dot_prefix: false,
    home_mode: 0o755,
    sshd_makes_host_keys: false,
    first_regular_uid: 1000,
    // rsyslog, whose own `@@` forwards over TCP.
    syslog: super::SyslogFacts {
        conf: "/etc/rsyslog.conf",
        dropin: Some(("/etc/rsyslog.d/20-cloud-config.conf", "/etc/rsyslog.d/")),
        udp_port: true,
        bracket_ipv6: true,
        tcp_prefix: Some("@@"),
        pidfile: "/run/rsyslogd.pid",
        reload: &["systemctl", "try-reload-or-restart", "rsyslog"],
        url_schemes: &[],
        level_comparisons: true,
        block_reset: &[],
    },
    trust: super::TrustStore::None,
    login_conf_locale: false,
};

impl Backend for Linux {
    /// systemd's and sysvinit's shutdown: `-P` powers off, `-H` halts (cloud-init's map).
    fn shutdown_flags(
        &self,
        mode: crate::modules::power_state::PowerMode,
    ) -> &'static [&'static str] {
        use crate::modules::power_state::PowerMode;
        match mode {
            PowerMode::Poweroff => &["-P"],
            PowerMode::Reboot => &["-r"],
            PowerMode::Halt => &["-H"],
        }
    }
    fn facts(&self) -> &'static OsFacts {
        &FACTS
    }
    fn default_user(&self) -> UserSpec {
        UserSpec {
            shell: Some("/bin/sh".into()),
            ..super::sudo_rule_user("linux")
        }
    }
    fn add_group(&self, name: &str) -> Vec<String> {
        let mut argv = self.tool("groupadd");
        argv.push(name.into());
        argv
    }
    fn add_user(&self, u: &NewUser<'_>, _warnings: &mut Vec<String>) -> Vec<String> {
        let mut argv = self.tool("useradd");
        let mut opt = |flag: &str, v: Option<String>| super::push_opt(&mut argv, flag, v);
        opt("--comment", u.gecos.map(str::to_string));
        opt("--home-dir", u.homedir.map(str::to_string));
        opt("--expiredate", u.expiredate.map(str::to_string));
        opt("--inactive", u.inactive.map(|d| d.to_string()));
        opt("--gid", u.primary_group.map(str::to_string));
        opt(
            "--groups",
            (!u.groups.is_empty()).then(|| u.groups.join(",")),
        );
        opt("--shell", u.shell.map(str::to_string));
        opt("--uid", u.uid.map(|d| d.to_string()));
        if u.system {
            argv.push("--system".into());
        }
        argv.push(
            if u.create_home {
                "--create-home"
            } else {
                "--no-create-home"
            }
            .into(),
        );
        argv.push(u.name.to_string());
        argv
    }
    fn add_to_group(&self, user: &str, group: &str) -> Vec<String> {
        let mut argv = self.tool("usermod");
        argv.extend([
            "--append".into(),
            "--groups".into(),
            group.into(),
            user.into(),
        ]);
        argv
    }
    fn remove_user(&self, user: &str) -> Vec<String> {
        let mut argv = self.tool("userdel");
        argv.extend(["--remove".into(), user.into()]);
        argv
    }
    /// /etc/gshadow against /etc/group, by group name; grpconv(8) rebuilds the shadow from the
    /// group file, keeping the entries that are there (adds the missing, drops the stale).
    fn group_shadow_mismatch(
        &self,
        root: &crate::root::Root,
    ) -> Option<(Vec<String>, Vec<String>)> {
        // Bounded, inside the root and never through a link (as every file under the root);
        // one that cannot be read is not compared.
        let names = |path: &str| -> Option<Vec<String>> {
            let data = crate::rootfs::read(root, path, None).ok()??;
            Some(
                String::from_utf8_lossy(&data)
                    .lines()
                    .filter_map(|l| l.split(':').next())
                    .filter(|n| !n.is_empty() && !n.starts_with('#'))
                    .map(str::to_string)
                    .collect(),
            )
        };
        // No shadow at all is a system that does not use one, not a mismatch.
        let (group, shadow) = (names("/etc/group")?, names("/etc/gshadow")?);
        // Sets for the look-ups: tens of thousands of groups stay linear.
        let (in_group, in_shadow): (HashSet<&String>, HashSet<&String>) =
            (group.iter().collect(), shadow.iter().collect());
        let mut problems: Vec<String> = group
            .iter()
            .filter(|g| !in_shadow.contains(g))
            .map(|g| format!("group {g} is in /etc/group but not in /etc/gshadow"))
            .collect();
        problems.extend(
            shadow
                .iter()
                .filter(|g| !in_group.contains(g))
                .map(|g| format!("group {g} is in /etc/gshadow but not in /etc/group")),
        );
        (!problems.is_empty()).then(|| (problems, self.tool("grpconv")))
    }
    fn lock(&self, user: &str) -> Vec<String> {
        let mut argv = self.tool("usermod");
        argv.extend(["--lock".into(), user.into()]);
        argv
    }
    fn is_locked(&self, hash: Option<&str>, _shell: &str) -> bool {
        hash.is_some_and(|h| h.starts_with('!'))
    }
    /// useradd(8) of shadow-utils, without `--password`: "the new account will be locked and
    /// with no password defined, i.e. a single exclamation mark in the respective field of
    /// /etc/shadow" — what `usermod --lock` gives and `is_locked` sees, so the lock is skipped.
    fn create_leaves_locked(&self) -> bool {
        true
    }
    /// chpasswd reads `user:password` lines: `--encrypted` when they are hashes, else hashed by
    /// chpasswd itself (`--crypt-method`), not through the target's PAM stack.
    fn set_password(&self, user: &str, secret: &str, hashed: bool) -> crate::plan::Action {
        let mut argv = self.tool("chpasswd");
        if hashed {
            argv.push("--encrypted".into());
        } else {
            argv.extend(["--crypt-method".into(), "SHA512".into()]);
        }
        crate::plan::Action::Exec {
            module: "set_passwords",
            item: user.to_string(),
            argv,
            stdin: Some(crate::plan::Secret(format!("{user}:{secret}\n"))),
            env: Vec::new(),
            timeout: None,
        }
    }
    fn expire_password(&self, user: &str) -> crate::plan::Action {
        let mut argv = self.tool("chage");
        argv.extend(["--lastday".into(), "0".into(), user.into()]);
        crate::plan::Action::exec("set_passwords", user, argv)
    }
    /// ssh-keygen(1): `-q` quiet, `-N ""` an empty passphrase (no secret), `-f` the file. It
    /// has no root option; the host's tool writes under the root (a test root has no tools to
    /// chroot into).
    fn host_keygen(&self, key_type: &str, path: &str) -> Vec<String> {
        let file = match &self.root {
            Some(r) => format!("{}{path}", r.trim_end_matches('/')),
            None => path.to_string(),
        };
        ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", &file]
            .map(String::from)
            .to_vec()
    }
    fn reload_sshd(&self) -> Vec<String> {
        vec!["systemctl".into(), "reload-or-restart".into(), "ssh".into()]
    }
    /// `names` holds the partitions too ([`super::sys_block_names`]).
    fn seed_devices(&self, names: &str, _dev: &[String]) -> Vec<String> {
        names
            .split_whitespace()
            .map(|n| format!("/dev/{n}"))
            .collect()
    }
    fn mount_seed(
        &self,
        kind: crate::volumes::FsKind,
        raw: &std::path::Path,
        dir: &str,
    ) -> Vec<String> {
        let fs = match kind {
            crate::volumes::FsKind::Iso9660 => "iso9660",
            crate::volumes::FsKind::Fat => "vfat",
        };
        vec![
            "mount".into(),
            "-t".into(),
            fs.into(),
            "-o".into(),
            "ro".into(),
            raw.display().to_string(),
            dir.into(),
        ]
    }
    fn hostname_store(&self) -> HostnameStore {
        HostnameStore::File("/etc/hostname")
    }
    fn prefers_fqdn(&self) -> bool {
        false
    }
    fn loopback(&self) -> &'static [&'static str] {
        &["127.0.1.1"]
    }
    fn ntp(&self) -> NtpStyle {
        NtpStyle {
            conf: "/etc/ntp.conf",
            openntpd: false,
            driftfile: Some("/var/lib/ntp/ntp.drift"),
            enable: None,
            default_pool: "pool.ntp.org",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(group: &str) -> (tempfile::TempDir, crate::root::Root) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/group"), group).unwrap();
        let r = crate::root::Root::new(d.path());
        (d, r)
    }

    #[test]
    fn a_group_shadow_outside_the_root_is_not_read() {
        let (d, r) = root_with("root:x:0:\nstaff:x:50:\n");
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("gshadow"), "root:*::\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("gshadow"), d.path().join("etc/gshadow"))
            .unwrap();
        let b = Linux { root: None };
        assert_eq!(b.group_shadow_mismatch(&r), None);
        // The same content in the root itself is compared.
        std::fs::remove_file(d.path().join("etc/gshadow")).unwrap();
        std::fs::copy(outside.path().join("gshadow"), d.path().join("etc/gshadow")).unwrap();
        let (problems, argv) = b.group_shadow_mismatch(&r).unwrap();
        assert_eq!(
            problems,
            ["group staff is in /etc/group but not in /etc/gshadow"]
        );
        assert_eq!(argv, ["grpconv"]);
    }

    #[test]
    fn many_groups_are_compared_in_linear_time() {
        let n = 60_000;
        let group: String = (0..n).map(|i| format!("g{i}:x:{i}:\n")).collect();
        let (d, r) = root_with(&group);
        // The shadow in reverse order, the last group missing.
        let shadow: String = (0..n - 1).rev().map(|i| format!("g{i}:!::\n")).collect();
        std::fs::write(d.path().join("etc/gshadow"), shadow).unwrap();
        let t = std::time::Instant::now();
        let (problems, _) = Linux { root: None }.group_shadow_mismatch(&r).unwrap();
        assert_eq!(
            problems,
            [format!(
                "group g{} is in /etc/group but not in /etc/gshadow",
                n - 1
            )]
        );
        // Quadratic look-ups took tens of seconds here.
        assert!(
            t.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            t.elapsed()
        );
    }
}
