//! The cloud-config document, typed, read with cloud-init's leniency: YAML 1.1 booleans, `-` or
//! `_` in keys, string-or-list fields, octal modes. Reading never stops at the first problem:
//! every one is collected with its path, and what could be read is kept.

use base64::Engine;
use serde::Serialize;
use serde_yaml::{Mapping, Value};

use super::lenient::{child, describe, entries, Reader};

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

const USER_KEYS: &[&str] = &[
    "name",
    "gecos",
    "homedir",
    "primary_group",
    "groups",
    "lock_passwd",
    "inactive",
    "passwd",
    "no_create_home",
    "no_user_group",
    "no_log_init",
    "ssh_authorized_keys",
    "ssh_redirect_user",
    "system",
    "shell",
    "sudo",
    "doas",
    "uid",
    "expiredate",
    "create_groups",
    "hashed_passwd",
    "plain_text_passwd",
    "selinux_user",
    "snapuser",
    "ssh_import_id",
];

/// A command: a string for `sh -c`, or an argv list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Shell(String),
    Argv(Vec<String>),
}

/// One `users` entry, as written. Fields left out stay `None`: merging duplicates and the
/// default user depend on knowing what was said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserSpec {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gecos: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub homedir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_create_home: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_user_group: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_groups: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiredate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactive: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_passwd: Option<bool>,
    /// `passwd`: a hash, applied when the user is created.
    #[serde(skip)]
    pub passwd: Option<String>,
    #[serde(skip)]
    pub hashed_passwd: Option<String>,
    #[serde(skip)]
    pub plain_text_passwd: Option<String>,
    /// `Some([])` is `sudo: false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sudo: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doas: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_authorized_keys: Option<Vec<String>>,
}

/// An entry of `users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEntry {
    /// `default`: the distribution's default user.
    Default,
    User(Box<UserSpec>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSpec {
    pub name: String,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordKind {
    Hash,
    Text,
    Random,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChpasswdUser {
    pub name: String,
    pub password: String,
    pub kind: PasswordKind,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chpasswd {
    pub expire: Option<bool>,
    pub users: Vec<ChpasswdUser>,
}

/// `manage_etc_hosts`: `true`/`template` write it, `localhost` only the loopback line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EtcHosts {
    Off,
    Template,
    Localhost,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteFile {
    pub path: String,
    #[serde(skip)]
    pub content: Vec<u8>,
    pub owner: String,
    pub group: String,
    pub permissions: u32,
    pub append: bool,
    pub defer: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ntp {
    pub enabled: Option<bool>,
    pub servers: Vec<String>,
    pub pools: Vec<String>,
}

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
                "users" => cc.users = Some(read_users(r, path, v)),
                "user" => {
                    cc.user = read_user_entry(r, path, v).and_then(|e| match e {
                        UserEntry::User(u) => Some(*u),
                        UserEntry::Default => None,
                    })
                }
                "system_info" => {
                    if let Some(du) = v.get("default_user") {
                        cc.default_user = read_user_map(r, &child(path, "default_user"), du, true);
                    }
                }
                "groups" => cc.groups = read_groups(r, path, v),
                "ssh_authorized_keys" => cc.ssh_authorized_keys = r.string_or_list(path, v),
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
                "chpasswd" => cc.chpasswd = read_chpasswd(r, path, v),
                "password" => cc.password = r.opt_string(path, v),
                "hostname" => cc.hostname = r.opt_string(path, v),
                "fqdn" => cc.fqdn = r.opt_string(path, v),
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
                "write_files" => cc.write_files = read_write_files(r, path, v),
                "ntp" => cc.ntp = read_ntp(r, path, v),
                "timezone" => cc.timezone = r.opt_string(path, v),
                "bootcmd" => cc.bootcmd = read_commands(r, path, v),
                "runcmd" => cc.runcmd = read_commands(r, path, v),
                k if CONFIG_KEYS.contains(&k) => {}
                k if IGNORED_ON_BSD.contains(&k) => {
                    r.warn(path, "not applied by wisp: it has no meaning on the BSDs");
                    cc.ignored.push(raw.clone());
                }
                _ => r.warn(path, "unknown key (ignored)"),
            }
        }
        cc
    }
}

fn read_users(r: &mut Reader<'_>, path: &str, v: &Value) -> Vec<UserEntry> {
    match v {
        Value::Null => Vec::new(),
        // `users: default, alice` (cloud-init splits a string on commas).
        Value::String(_) => r
            .string_list(path, v)
            .iter()
            .map(|name| named_user(name))
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| read_user_entry(r, &format!("{path}[{i}]"), item))
            .collect(),
        // `users: {alice: {...}}` is an old form cloud-init still reads.
        Value::Mapping(m) => {
            let mut out = Vec::new();
            for (name, spec) in m {
                let Some(name) = name.as_str() else { continue };
                let p = child(path, name);
                let mut with_name = spec.as_mapping().cloned().unwrap_or_default();
                with_name.insert(Value::String("name".into()), Value::String(name.into()));
                if let Some(u) = read_user_map(r, &p, &Value::Mapping(with_name), false) {
                    out.push(UserEntry::User(Box::new(u)));
                }
            }
            out
        }
        other => {
            r.error(
                path,
                format!("expected a list of users, got {}", describe(other)),
            );
            Vec::new()
        }
    }
}

/// A user given by name alone; `default` is the distribution's default user.
fn named_user(name: &str) -> UserEntry {
    if name == "default" {
        UserEntry::Default
    } else {
        UserEntry::User(Box::new(UserSpec {
            name: name.to_string(),
            ..Default::default()
        }))
    }
}

fn read_user_entry(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<UserEntry> {
    match v {
        Value::String(s) => Some(named_user(s)),
        // `[name, ...]` lists are an old form: the first item is the name.
        Value::Sequence(items) => match items.first().and_then(Value::as_str) {
            Some(name) => Some(named_user(name)),
            None => {
                r.error(path, "a user given as a list must start with its name");
                None
            }
        },
        Value::Mapping(_) => read_user_map(r, path, v, false).map(|u| UserEntry::User(Box::new(u))),
        other => {
            r.error(
                path,
                format!("expected a user name or a map, got {}", describe(other)),
            );
            None
        }
    }
}

/// A user map. `name_optional`: `system_info.default_user` may omit the name.
fn read_user_map(
    r: &mut Reader<'_>,
    path: &str,
    v: &Value,
    name_optional: bool,
) -> Option<UserSpec> {
    let Some(map) = v.as_mapping() else {
        r.error(path, format!("expected a map, got {}", describe(v)));
        return None;
    };
    let mut u = UserSpec::default();
    let mut has_name = false;
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        let p = p.as_str();
        match key.as_str() {
            "name" => {
                if let Some(n) = r.string(p, val) {
                    u.name = n;
                    has_name = true;
                }
            }
            "gecos" => u.gecos = r.opt_string(p, val),
            "homedir" => u.homedir = r.opt_string(p, val),
            "primary_group" => u.primary_group = r.opt_string(p, val),
            "groups" => {
                // A map form {group: null, ...} is accepted too.
                u.groups = Some(match val {
                    Value::Mapping(m) => m
                        .keys()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect(),
                    _ => r.string_list(p, val),
                })
            }
            "shell" => u.shell = r.opt_string(p, val),
            "uid" => u.uid = r.uint(p, val, u32::MAX as u64 - 1).map(|n| n as u32),
            "system" => u.system = r.bool(p, val),
            "no_create_home" => u.no_create_home = r.bool(p, val),
            "no_user_group" => u.no_user_group = r.bool(p, val),
            "create_groups" => u.create_groups = r.bool(p, val),
            "expiredate" => u.expiredate = r.opt_string(p, val),
            "inactive" => u.inactive = r.uint(p, val, 100_000).map(|n| n as u32),
            "lock_passwd" => u.lock_passwd = r.bool(p, val),
            "passwd" => u.passwd = r.opt_string(p, val),
            "hashed_passwd" => u.hashed_passwd = r.opt_string(p, val),
            "plain_text_passwd" => u.plain_text_passwd = r.opt_string(p, val),
            "sudo" => {
                u.sudo = match val {
                    Value::Null => Some(Vec::new()),
                    Value::Bool(false) => Some(Vec::new()),
                    Value::Bool(true) => {
                        r.error(
                            p,
                            "sudo: true is not a rule; write one, e.g. 'ALL=(ALL) NOPASSWD:ALL'",
                        );
                        None
                    }
                    Value::String(s)
                        if super::lenient::yaml11_bool(val) == Some(false) && s.len() <= 5 =>
                    {
                        Some(Vec::new())
                    }
                    _ => Some(r.string_or_list(p, val)),
                }
            }
            "doas" => u.doas = Some(r.string_or_list(p, val)),
            "ssh_authorized_keys" => u.ssh_authorized_keys = Some(r.string_or_list(p, val)),
            "no_log_init" | "ssh_redirect_user" | "selinux_user" | "snapuser" | "ssh_import_id" => {
                r.warn(p, "not applied by wisp on the BSDs")
            }
            _ => {
                let known = USER_KEYS.contains(&key.as_str());
                r.warn(
                    p,
                    if known {
                        "not applied by wisp"
                    } else {
                        "unknown user key (ignored)"
                    },
                );
            }
        }
    }
    if !has_name && !name_optional {
        r.error(path, "a user needs a name");
        return None;
    }
    Some(u)
}

fn read_groups(r: &mut Reader<'_>, path: &str, v: &Value) -> Vec<GroupSpec> {
    let one = |r: &mut Reader<'_>, p: &str, item: &Value| -> Vec<GroupSpec> {
        match item {
            Value::String(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|n| GroupSpec {
                    name: n.to_string(),
                    members: Vec::new(),
                })
                .collect(),
            Value::Mapping(m) => m
                .iter()
                .filter_map(|(k, members)| {
                    let name = k.as_str()?.to_string();
                    let members = r.string_list(&child(p, &name), members);
                    Some(GroupSpec { name, members })
                })
                .collect(),
            other => {
                r.error(
                    p,
                    format!(
                        "expected a group name or {{group: [members]}}, got {}",
                        describe(other)
                    ),
                );
                Vec::new()
            }
        }
    };
    match v {
        Value::Null => Vec::new(),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, item)| one(r, &format!("{path}[{i}]"), item))
            .collect(),
        other => one(r, path, other),
    }
}

fn read_chpasswd(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<Chpasswd> {
    let Some(map) = v.as_mapping() else {
        r.error(path, format!("expected a map, got {}", describe(v)));
        return None;
    };
    let mut c = Chpasswd::default();
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        match key.as_str() {
            "expire" => c.expire = r.bool(&p, val),
            "users" => {
                let Some(items) = val.as_sequence() else {
                    r.error(&p, format!("expected a list, got {}", describe(val)));
                    continue;
                };
                for (i, item) in items.iter().enumerate() {
                    let ip = format!("{p}[{i}]");
                    let name = item.get("name").and_then(Value::as_str);
                    let kind = match item.get("type").and_then(Value::as_str).unwrap_or("hash") {
                        "hash" => Some(PasswordKind::Hash),
                        "text" => Some(PasswordKind::Text),
                        "RANDOM" => Some(PasswordKind::Random),
                        other => {
                            r.error(
                                &child(&ip, "type"),
                                format!("expected hash, text or RANDOM, got {other:?}"),
                            );
                            None
                        }
                    };
                    let password = item.get("password").and_then(Value::as_str);
                    match (name, kind, password) {
                        (Some(n), Some(PasswordKind::Random), _) => c.users.push(ChpasswdUser {
                            name: n.into(),
                            password: String::new(),
                            kind: PasswordKind::Random,
                        }),
                        (Some(n), Some(k), Some(pw)) => {
                            // cloud-init: a "password" of RANDOM means a random one.
                            let k = if pw == "RANDOM" {
                                PasswordKind::Random
                            } else {
                                k
                            };
                            c.users.push(ChpasswdUser {
                                name: n.into(),
                                password: pw.into(),
                                kind: k,
                            })
                        }
                        (None, _, _) => r.error(&ip, "needs a name"),
                        (_, None, _) => {}
                        (_, _, None) => r.error(&ip, "needs a password (or type: RANDOM)"),
                    }
                }
            }
            // The old form: "user:password" lines.
            "list" => {
                r.warn(&p, "chpasswd.list is deprecated; use chpasswd.users");
                let lines: Vec<String> = match val {
                    Value::String(s) => s.lines().map(str::to_string).collect(),
                    _ => r.string_or_list(&p, val),
                };
                for (i, line) in lines
                    .iter()
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty())
                    .enumerate()
                {
                    match line.split_once(':') {
                        Some((name, pw)) => {
                            let kind = if pw == "R" || pw == "RANDOM" {
                                PasswordKind::Random
                            } else if super::is_password_hash(pw) {
                                PasswordKind::Hash
                            } else {
                                PasswordKind::Text
                            };
                            c.users.push(ChpasswdUser {
                                name: name.into(),
                                password: pw.into(),
                                kind,
                            });
                        }
                        None => r.error(&format!("{p}[{i}]"), "expected user:password"),
                    }
                }
            }
            _ => r.warn(&p, "unknown key (ignored)"),
        }
    }
    Some(c)
}

fn read_write_files(r: &mut Reader<'_>, path: &str, v: &Value) -> Vec<WriteFile> {
    let Some(items) = v.as_sequence() else {
        if !v.is_null() {
            r.error(
                path,
                format!("expected a list of files, got {}", describe(v)),
            );
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let Some(map) = item.as_mapping() else {
            r.error(
                &ip,
                format!("expected a map with a path, got {}", describe(item)),
            );
            continue;
        };
        let mut wf = WriteFile {
            path: String::new(),
            content: Vec::new(),
            owner: "root".into(),
            group: "root".into(),
            permissions: 0o644,
            append: false,
            defer: false,
        };
        let mut content: Option<Vec<u8>> = None;
        let mut encoding = String::from("text/plain");
        let mut ok = true;
        for (key, raw, val) in entries(r, &ip, map) {
            let p = child(&ip, &raw);
            match key.as_str() {
                "path" => match r.string(&p, val) {
                    Some(s) if s.starts_with('/') => wf.path = s,
                    Some(s) => {
                        r.error(&p, format!("{s:?} is not an absolute path"));
                        ok = false;
                    }
                    None => ok = false,
                },
                "content" => {
                    content = match val {
                        Value::Null => Some(Vec::new()),
                        _ => r.string(&p, val).map(String::into_bytes),
                    }
                }
                "source" => r.warn(&p, "write_files source URLs are not fetched by wisp"),
                "encoding" => encoding = r.string(&p, val).unwrap_or_default().to_ascii_lowercase(),
                "owner" => {
                    if let Some(o) = r.string(&p, val) {
                        let (u, g) = o.split_once(':').unwrap_or((o.as_str(), "root"));
                        wf.owner = u.to_string();
                        wf.group = g.to_string();
                    }
                }
                "permissions" => match r.mode(&p, val) {
                    Some(m) => wf.permissions = m,
                    None => ok = false,
                },
                "append" => wf.append = r.bool(&p, val).unwrap_or(false),
                "defer" => wf.defer = r.bool(&p, val).unwrap_or(false),
                _ => r.warn(&p, "unknown key (ignored)"),
            }
        }
        if wf.path.is_empty() {
            if ok {
                r.error(&ip, "a file needs a path");
            }
            continue;
        }
        match decode_content(content.unwrap_or_default(), &encoding) {
            Ok(c) => wf.content = c,
            Err(e) => {
                r.error(&child(&ip, "content"), e);
                continue;
            }
        }
        if ok {
            out.push(wf);
        }
    }
    out
}

/// `b64`, `base64`, `gz`, `gzip`, `gz+b64`, `gz+base64`, `gzip+base64`, `text/plain`.
pub fn decode_content(content: Vec<u8>, encoding: &str) -> Result<Vec<u8>, String> {
    let b64 = |c: Vec<u8>| {
        let clean: Vec<u8> = c.into_iter().filter(|b| !b.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(clean)
            .map_err(|e| format!("invalid base64: {e}"))
    };
    let gunzip = |c: Vec<u8>| {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&c[..])
            .take(64 * 1024 * 1024)
            .read_to_end(&mut out)
            .map_err(|e| format!("invalid gzip data: {e}"))?;
        Ok::<_, String>(out)
    };
    match encoding {
        "" | "text/plain" => Ok(content),
        "b64" | "base64" => b64(content),
        "gz" | "gzip" => gunzip(content),
        "gz+b64" | "gz+base64" | "gzip+b64" | "gzip+base64" => gunzip(b64(content)?),
        other => Err(format!("unknown encoding {other:?}")),
    }
}

fn read_ntp(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<Ntp> {
    let map = match v {
        Value::Null => return Some(Ntp::default()),
        Value::Mapping(m) => m,
        other => {
            r.error(path, format!("expected a map, got {}", describe(other)));
            return None;
        }
    };
    let mut ntp = Ntp::default();
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        match key.as_str() {
            "enabled" => ntp.enabled = r.bool(&p, val),
            "servers" => ntp.servers = r.string_list(&p, val),
            "pools" => ntp.pools = r.string_list(&p, val),
            "ntp_client" | "config" => r.warn(&p, "wisp uses the system's own NTP daemon; ignored"),
            _ => r.warn(&p, "unknown key (ignored)"),
        }
    }
    Some(ntp)
}

fn read_commands(r: &mut Reader<'_>, path: &str, v: &Value) -> Vec<Command> {
    let Some(items) = v.as_sequence() else {
        if !v.is_null() {
            r.error(
                path,
                format!("expected a list of commands, got {}", describe(v)),
            );
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        match item {
            Value::String(s) => out.push(Command::Shell(s.clone())),
            Value::Sequence(args) => {
                let argv: Vec<String> = args
                    .iter()
                    .enumerate()
                    .filter_map(|(j, a)| r.string(&format!("{ip}[{j}]"), a))
                    .collect();
                if argv.len() == args.len() && !argv.is_empty() {
                    out.push(Command::Argv(argv));
                } else if args.is_empty() {
                    r.error(&ip, "an empty command");
                }
            }
            Value::Null => {}
            other => r.error(
                &ip,
                format!("expected a string or an argv list, got {}", describe(other)),
            ),
        }
    }
    out
}
