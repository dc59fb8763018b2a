//! The cloud-config document, typed, read with cloud-init's leniency: YAML 1.1 booleans, `-` or
//! `_` in keys, string-or-list fields, octal modes. Reading never stops at the first problem:
//! every one is collected with its path, and what could be read is kept.

use serde_yaml::Mapping;

use super::lenient::{child, describe, entries, Reader};

// Each cloud-config module reads its own part of the document (its types and reader live in
// its file under `modules/`); the document itself is assembled here.
pub use crate::modules::hostname::EtcHosts;
pub use crate::modules::ntp::Ntp;
pub use crate::modules::script::Command;
pub use crate::modules::set_passwords::Chpasswd;
pub use crate::modules::users_groups::{GroupSpec, UserEntry, UserSpec};
pub use crate::modules::write_files::WriteFile;
use crate::modules::{ntp, script, set_passwords, users_groups, write_files};

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
    "ssh_deletekeys",
    "ssh_genkeytypes",
    "ssh_quiet_keygen",
    "no_ssh_fingerprints",
    "ssh_fp_console_blacklist",
    "ssh_key_console_blacklist",
    "ssh_publish_hostkeys",
    "cloud_init_modules",
    "cloud_config_modules",
    "cloud_final_modules",
    "output",
    "debconf_selections",
    "network",
];

/// cloud-init keys that mean nothing on a BSD (package managers, Linux subsystems): logged as
/// ignored, never an error — MAAS's own vendor-data carries some of them.
pub const IGNORED_ON_BSD: &[&str] = &[
    "snap",
    "packages",
    "package_update",
    "package_upgrade",
    "package_reboot_if_required",
    "apt",
    "apt_update",
    "apt_upgrade",
    "apt_reboot_if_required",
    "apt_pipelining",
    "yum_repos",
    "yum_repo_dir",
    "zypper",
    "apk_repos",
    "growpart",
    "resize_rootfs",
    "disk_setup",
    "fs_setup",
    "mounts",
    "mount_default_fields",
    "swap",
    "locale",
    "locale_configfile",
    "keyboard",
    "lxd",
    "ubuntu_advantage",
    "ubuntu_pro",
    "landscape",
    "puppet",
    "chef",
    "salt_minion",
    "ansible",
    "mcollective",
    "rsyslog",
    "byobu_by_default",
    "fan",
    "phone_home",
    "power_state",
    "final_message",
    "ca_certs",
    "ssh_import_id",
    "wireguard",
    "random_seed",
    "rh_subscription",
    "spacewalk",
    "seed_random",
    "resolv_conf",
    "manage_resolv_conf",
    "drivers",
    "updates",
    "grub_dpkg",
    "device_aliases",
    "disable_ec2_metadata",
    "autoinstall",
    "create_hostname_file",
    "ssh_keys",
    "ssh",
    "launch_index",
    "version",
];

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
    pub bootcmd: Vec<Command>,
    pub runcmd: Vec<Command>,
    /// Keys present that wisp ignores on purpose (Linux-only).
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
                "password" => cc.password = r.opt_string(path, v),
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
                "bootcmd" => cc.bootcmd = script::read_commands(r, path, v),
                "runcmd" => cc.runcmd = script::read_commands(r, path, v),
                k if CONFIG_KEYS.contains(&k) => {}
                k if IGNORED_ON_BSD.contains(&k) => {
                    super::shapes::check_ignored(r, path, k, v);
                    r.warn(path, "not applied by wisp: it has no meaning on the BSDs");
                    cc.ignored.push(raw.clone());
                }
                _ => r.warn(path, "unknown key (ignored)"),
            }
        }
        cc
    }
}
