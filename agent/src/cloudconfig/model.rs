//! The cloud-config document, typed, read with cloud-init's leniency: YAML 1.1 booleans, `-` or
//! `_` in keys, string-or-list fields, octal modes. Reading never stops at the first problem:
//! every one is collected with its path, and what could be read is kept.

use yaml_serde::Mapping;

use super::lenient::{child, describe, entries, Reader};

// Each cloud-config module reads its own part of the document (its types and reader live in
// its file under `modules/`); the document itself is assembled here.
pub use crate::modules::hostname::EtcHosts;
pub use crate::modules::ntp::Ntp;
pub use crate::modules::power_state::PowerState;
pub use crate::modules::random_seed::RandomSeed;
pub use crate::modules::script::Command;
pub use crate::modules::set_passwords::Chpasswd;
pub use crate::modules::users_groups::{GroupSpec, UserEntry, UserSpec};
pub use crate::modules::write_files::WriteFile;
use crate::modules::{
    ntp, packages, power_state, random_seed, script, set_passwords, users_groups, write_files,
};

/// Keys that only configure wisp or cloud-init itself: accepted, nothing to apply.
pub const CONFIG_KEYS: &[&str] = &[
    "datasource",
    "datasource_list",
    "reporting",
    "default_user",
    "manual_cache_clean",
    "merge_how",
    "merge_type",
    "vendor_data",
    "max_user_data_bytes",
    "output",
    "network",
    // Which instance of a group a part is for: the user-data decoding filters on it.
    "launch_index",
];

/// cloud-init keys whose modules run on Linux only (their `distros` in cloud-init name no BSD):
/// package managers, Ubuntu and Red Hat services, Linux subsystems. Logged as ignored, never a
/// warning — MAAS's own vendor-data carries some of them (`snap`).
pub const LINUX_ONLY: &[&str] = &[
    "snap",
    "apt",
    "apt_pipelining",
    "debconf_selections",
    "yum_repos",
    "yum_repo_dir",
    "zypper",
    "apk_repos",
    "keyboard",
    "lxd",
    "ubuntu_advantage",
    "ubuntu_pro",
    "landscape",
    "byobu_by_default",
    "fan",
    "ssh_import_id",
    "wireguard",
    "rh_subscription",
    "spacewalk",
    "resolv_conf",
    "manage_resolv_conf",
    "drivers",
    "grub_dpkg",
    "autoinstall",
];

/// cloud-init keys whose modules run on the BSDs too (or on every distribution), which wisp
/// does not apply: a warning in the report, so an operator sees what the document asked for
/// and did not get.
pub const NOT_SUPPORTED: &[&str] = &[
    "disk_setup",
    "fs_setup",
    "device_aliases",
    "mounts",
    "mount_default_fields",
    "swap",
    "puppet",
    "chef",
    "salt_minion",
    "ansible",
    "mcollective",
    "updates",
    "disable_ec2_metadata",
    "create_hostname_file",
    "ssh",
    "version",
];

/// What the report says of a key of [`LINUX_ONLY`].
pub const LINUX_ONLY_MESSAGE: &str = "not applied by wisp: it has no meaning on the BSDs";
/// What the log says of `apt` / `snap` when their proxy was taken for the package tool.
pub const PROXY_TAKEN_MESSAGE: &str =
    "only its proxy is taken (for the package tool); the rest has no meaning on the BSDs";
/// What the report says of a key of [`NOT_SUPPORTED`].
pub const NOT_SUPPORTED_MESSAGE: &str = "not supported by wisp: not applied";

/// The parts of a cloud-config wisp acts on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloudConfig {
    /// `None`: no `users` key, which means `[default]`.
    pub users: Option<Vec<UserEntry>>,
    /// Top-level `user:`: overrides the default user.
    pub user: Option<UserSpec>,
    /// `system_info.default_user` (MAAS vendor-data sets it).
    pub default_user: Option<UserSpec>,
    pub groups: Vec<GroupSpec>,
    pub ssh_authorized_keys: Vec<String>,
    pub disable_root: Option<bool>,
    pub disable_root_opts: Option<String>,
    pub ssh_pwauth: Option<bool>,
    pub chpasswd: Option<Chpasswd>,
    pub password: Option<String>,
    pub hostname: Option<String>,
    pub fqdn: Option<String>,
    pub prefer_fqdn_over_hostname: Option<bool>,
    pub preserve_hostname: Option<bool>,
    pub manage_etc_hosts: Option<EtcHosts>,
    pub write_files: Vec<WriteFile>,
    pub ntp: Option<Ntp>,
    pub timezone: Option<String>,
    pub growpart: Option<crate::modules::growpart::Growpart>,
    pub resize_rootfs: Option<bool>,
    pub bootcmd: Vec<Command>,
    pub runcmd: Vec<Command>,
    pub power_state: Option<PowerState>,
    /// `packages`, `package_update`, `package_upgrade`, `package_reboot_if_required` (and
    /// their `apt_` names), and the proxy for the package tool.
    pub packages: crate::modules::packages::PackageConfig,
    pub phone_home: Option<crate::modules::phone_home::PhoneHome>,
    /// `cloud_init_modules`, `cloud_config_modules`, `cloud_final_modules`.
    pub module_lists: crate::modules::selection::ModuleLists,
    pub random_seed: Option<RandomSeed>,
    /// `final_message`: the template of the line the final stage ends with.
    pub final_message: Option<String>,
    /// SSH host keys and their fingerprints (`ssh_host_keys`, `keys_to_console`).
    pub host_keys: crate::modules::ssh_host_keys::HostKeys,
    pub rsyslog: Option<crate::modules::rsyslog::Rsyslog>,
    pub ca_certs: Option<crate::modules::ca_certs::CaCerts>,
    /// `locale`: the name to set (`false` is `None`).
    pub locale: Option<String>,
    /// Keys present that have no meaning on the BSDs ([`LINUX_ONLY`]): logged, not warned about.
    pub ignored: Vec<String>,
}

impl CloudConfig {
    /// Reads a document. Problems are added to `r`.
    pub fn read(r: &mut Reader<'_>, doc: &Mapping) -> CloudConfig {
        let mut cc = CloudConfig::default();
        for (key, raw, v) in entries(r, "", doc) {
            let path = raw.as_str();
            match key.as_str() {
                "users" => cc.users = Some(users_groups::read_users(r, path, v)),
                "user" => {
                    cc.user = users_groups::read_user_entry(r, path, v).and_then(|e| match e {
                        UserEntry::User(u) => Some(*u),
                        UserEntry::Default => None,
                    })
                }
                "system_info" => {
                    if let Some(du) = v.get("default_user") {
                        cc.default_user =
                            users_groups::read_user_map(r, &child(path, "default_user"), du, true);
                    }
                }
                "groups" => cc.groups = users_groups::read_groups(r, path, v),
                "ssh_authorized_keys" => cc.ssh_authorized_keys = r.string_or_list_said(path, v),
                "disable_root" => cc.disable_root = r.bool(path, v),
                "disable_root_opts" => cc.disable_root_opts = r.opt_string(path, v),
                "ssh_pwauth" => {
                    // cloud-init also takes "unchanged": leave sshd_config alone.
                    if v.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case("unchanged"))
                    {
                        cc.ssh_pwauth = None;
                    } else {
                        cc.ssh_pwauth = r.bool(path, v);
                    }
                }
                "chpasswd" => cc.chpasswd = set_passwords::read_chpasswd(r, path, v),
                "password" => cc.password = r.opt_text(path, v),
                "hostname" => cc.hostname = r.opt_text(path, v),
                "fqdn" => cc.fqdn = r.opt_text(path, v),
                "prefer_fqdn_over_hostname" => cc.prefer_fqdn_over_hostname = r.bool(path, v),
                "preserve_hostname" => cc.preserve_hostname = r.bool(path, v),
                "manage_etc_hosts" => {
                    cc.manage_etc_hosts = match (super::lenient::yaml11_bool(v), v.as_str()) {
                        (Some(true), _) => Some(EtcHosts::Template),
                        (Some(false), _) => Some(EtcHosts::Off),
                        (None, Some("template")) => Some(EtcHosts::Template),
                        (None, Some("localhost")) => Some(EtcHosts::Localhost),
                        _ => {
                            r.error(
                                path,
                                format!(
                                    "expected true, false, template or localhost, got {}",
                                    describe(v)
                                ),
                            );
                            None
                        }
                    }
                }
                "write_files" => cc.write_files = write_files::read_write_files(r, path, v),
                "ntp" => cc.ntp = ntp::read_ntp(r, path, v),
                "timezone" => cc.timezone = r.opt_text(path, v),
                "growpart" => cc.growpart = crate::modules::growpart::read_growpart(r, path, v),
                "resize_rootfs" => {
                    cc.resize_rootfs = crate::modules::growpart::read_resize_rootfs(r, path, v)
                }
                "bootcmd" => cc.bootcmd = script::read_commands(r, path, v),
                "runcmd" => cc.runcmd = script::read_commands(r, path, v),
                "power_state" => cc.power_state = power_state::read_power_state(r, path, v),
                k @ ("cloud_init_modules" | "cloud_config_modules" | "cloud_final_modules") => {
                    use crate::modules::selection::{read_list, CloudInitStage};
                    if let Some(stage) = CloudInitStage::ALL.into_iter().find(|s| s.key() == k) {
                        read_list(r, path, stage, v, &mut cc.module_lists);
                    }
                }
                "phone_home" => {
                    cc.phone_home = crate::modules::phone_home::read_phone_home(r, path, v)
                }
                "final_message" => cc.final_message = r.opt_string(path, v),
                "rsyslog" => cc.rsyslog = crate::modules::rsyslog::read_rsyslog(r, path, v),
                "rsyslog_filename" | "rsyslog_dir" => r.warn(
                    path,
                    "ignored: wisp writes the system syslogd's own configuration, not rsyslog's",
                ),
                "ca_certs" => cc.ca_certs = crate::modules::ca_certs::read_ca_certs(r, path, v),
                "locale" => cc.locale = crate::modules::locale::read_locale(r, path, v),
                "locale_configfile" => r.warn(
                    path,
                    "ignored: wisp sets the locale in the system's own file",
                ),
                "packages" => packages::read_packages(r, path, v, &mut cc.packages.packages),
                "package_update" | "apt_update" => {
                    packages::read_flag(r, path, v, &mut cc.packages.update)
                }
                "package_upgrade" | "apt_upgrade" => {
                    packages::read_flag(r, path, v, &mut cc.packages.upgrade)
                }
                "package_reboot_if_required" | "apt_reboot_if_required" => {
                    packages::read_flag(r, path, v, &mut cc.packages.reboot_if_required)
                }
                "package_proxy" => cc.packages.package_proxy = packages::read_proxy(r, path, v),
                "package_timeout" => cc.packages.timeout = packages::read_timeout(r, path, v),
                "apt_proxy" | "apt_http_proxy" => {
                    cc.packages.http_proxy = packages::read_proxy(r, path, v)
                }
                "apt_https_proxy" => cc.packages.https_proxy = packages::read_proxy(r, path, v),
                // Ubuntu's, but its proxy is MAAS's, which the package tools take too.
                "apt" | "snap" => {
                    let taken = if key == "apt" {
                        packages::read_apt_proxy(r, path, v, &mut cc.packages)
                    } else {
                        packages::read_snap_proxy(v, &mut cc.packages)
                    };
                    super::shapes::check_ignored(r, path, &key, v);
                    r.warn(
                        path,
                        if taken {
                            PROXY_TAKEN_MESSAGE
                        } else {
                            LINUX_ONLY_MESSAGE
                        },
                    );
                    cc.ignored.push(raw.clone());
                }
                "random_seed" => cc.random_seed = random_seed::read_random_seed(r, path, v),
                k if crate::modules::ssh_host_keys::KEYS.contains(&k) => {
                    crate::modules::ssh_host_keys::read_key(&mut cc.host_keys, r, k, path, v)
                }
                k if CONFIG_KEYS.contains(&k) => {}
                k if LINUX_ONLY.contains(&k) => {
                    super::shapes::check_ignored(r, path, k, v);
                    r.warn(path, LINUX_ONLY_MESSAGE);
                    cc.ignored.push(raw.clone());
                }
                k if NOT_SUPPORTED.contains(&k) => {
                    super::shapes::check_ignored(r, path, k, v);
                    r.warn(path, NOT_SUPPORTED_MESSAGE);
                }
                _ => r.warn(path, "unknown key (ignored)"),
            }
        }
        cc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_not_applied_has_one_reason_and_applied_keys_none() {
        for k in LINUX_ONLY {
            assert!(!NOT_SUPPORTED.contains(k), "{k} is in both lists");
            assert!(!CONFIG_KEYS.contains(k), "{k}");
        }
        // A module's name, not a key.
        assert!(!NOT_SUPPORTED.contains(&"seed_random") && !LINUX_ONLY.contains(&"seed_random"));
        for k in [
            "power_state",
            "final_message",
            "random_seed",
            "rsyslog",
            "ca_certs",
            "locale",
            "locale_configfile",
            "phone_home",
            "launch_index",
        ] {
            assert!(
                !LINUX_ONLY.contains(&k) && !NOT_SUPPORTED.contains(&k),
                "{k} is applied"
            );
        }
        let doc: Mapping =
            yaml_serde::from_str("apt: {}\npuppet: {}\nfinal_message: hi\nlaunch-index: 1\n")
                .unwrap();
        let mut r = Reader::default();
        let cc = CloudConfig::read(&mut r, &doc);
        assert_eq!(cc.ignored, vec!["apt".to_string()]);
        assert_eq!(cc.final_message.as_deref(), Some("hi"));
        let said: Vec<(&str, &str)> = r
            .problems
            .iter()
            .map(|p| (p.path.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            said,
            vec![
                ("apt", LINUX_ONLY_MESSAGE),
                ("puppet", NOT_SUPPORTED_MESSAGE)
            ]
        );
    }

    #[test]
    fn apt_and_snap_say_when_their_proxy_is_taken() {
        let doc: Mapping = yaml_serde::from_str(
            "apt: {proxy: 'http://p:3128/', primary: []}\n\
             snap: {commands: ['snap set system proxy.http=\"http://q:1/\"']}\n",
        )
        .unwrap();
        let mut r = Reader::default();
        let cc = CloudConfig::read(&mut r, &doc);
        assert_eq!(cc.packages.http_proxy.as_deref(), Some("http://p:3128/"));
        assert_eq!(cc.packages.snap_http_proxy.as_deref(), Some("http://q:1/"));
        let said: Vec<(&str, &str)> = r
            .problems
            .iter()
            .map(|p| (p.path.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            said,
            vec![("apt", PROXY_TAKEN_MESSAGE), ("snap", PROXY_TAKEN_MESSAGE)]
        );
    }
}
