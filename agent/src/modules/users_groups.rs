//! `users` and `groups` (cloud-init's cc_users_groups): groups first, then users. A user that
//! exists is not created again; only the every-run fields (lock, sudo, doas) are applied.
//! Stage network, once per instance.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use super::{Frequency, Inputs, Planned, Stage};
use crate::accounts::check_name;
use crate::cloudconfig::lenient::{child, describe, entries, norm_key, Reader};
use crate::plan::Action;
use yaml_serde::Value;

pub const NAME: &str = "users_groups";
pub const STAGE: Stage = Stage::Network;
pub const FREQUENCY: Frequency = Frequency::PerInstance;

/// A user after defaults, merging and the default user's keys: cloud-init's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    pub gecos: Option<String>,
    pub homedir: String,
    pub primary_group: Option<String>,
    pub groups: Vec<String>,
    pub shell: Option<String>,
    pub uid: Option<u32>,
    pub system: bool,
    pub no_create_home: bool,
    pub expiredate: Option<String>,
    pub inactive: Option<u32>,
    pub lock_passwd: bool,
    pub sudo: Vec<String>,
    pub doas: Vec<String>,
    pub ssh_authorized_keys: Vec<String>,
    /// The distribution's default user (`default` in `users`).
    pub default: bool,
    /// A hash, applied when the user is created.
    #[serde(skip)]
    pub passwd: Option<String>,
    #[serde(skip)]
    pub hashed_passwd: Option<String>,
    #[serde(skip)]
    pub plain_text_passwd: Option<String>,
}

/// Later values win, field by field (cloud-init merges entries that share a name).
fn overlay(base: &mut UserSpec, over: &UserSpec) {
    macro_rules! take {
        ($($f:ident),*) => { $( if over.$f.is_some() { base.$f = over.$f.clone(); } )* };
    }
    take!(
        gecos,
        homedir,
        primary_group,
        groups,
        shell,
        uid,
        system,
        no_create_home,
        no_user_group,
        create_groups,
        expiredate,
        inactive,
        lock_passwd,
        passwd,
        hashed_passwd,
        plain_text_passwd,
        sudo,
        doas,
        ssh_authorized_keys
    );
    if !over.name.is_empty() {
        base.name = over.name.clone();
    }
}

/// The users to manage, in order, and the top-level groups with their members.
pub fn normalize(inp: &Inputs<'_>) -> (Vec<User>, BTreeMap<String, Vec<String>>) {
    let cc = inp.config;
    // The default user: the OS's, then wisp.yaml, then system_info.default_user, then `user:`.
    let mut default = inp.backend.default_user();
    for over in [
        inp.configured_default_user,
        cc.default_user.as_ref(),
        cc.user.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        overlay(&mut default, over);
    }
    let entries: Vec<UserEntry> = cc.users.clone().unwrap_or_else(|| vec![UserEntry::Default]);
    let mut merged: Vec<(UserSpec, bool)> = Vec::new();
    // Where each name is in `merged`: a scan per entry made 20,000 users take seconds.
    let mut index: HashMap<String, usize> = HashMap::new();
    for entry in entries {
        let (spec, is_default) = match entry {
            UserEntry::Default => (default.clone(), true),
            UserEntry::User(u) => (*u, false),
        };
        match index.get(&spec.name) {
            Some(&i) => {
                let (m, d) = &mut merged[i];
                overlay(m, &spec);
                *d |= is_default;
            }
            None => {
                index.insert(spec.name.clone(), merged.len());
                merged.push((spec, is_default));
            }
        }
    }
    let users = merged
        .into_iter()
        .map(|(u, is_default)| {
            let mut keys = u.ssh_authorized_keys.clone().unwrap_or_default();
            if is_default {
                keys.extend(cc.ssh_authorized_keys.iter().cloned());
                // `allow_public_ssh_keys: false` keeps the datasource's keys out.
                if cc.host_keys.allow_public_ssh_keys.unwrap_or(true) {
                    keys.extend(inp.metadata_keys.iter().cloned());
                }
            }
            let existing_home = inp.accounts.user(&u.name).map(|e| e.home.clone());
            User {
                homedir: u
                    .homedir
                    .clone()
                    .or(existing_home)
                    .unwrap_or_else(|| format!("/home/{}", u.name)),
                gecos: u.gecos,
                primary_group: u.primary_group,
                groups: u.groups.unwrap_or_default(),
                shell: u.shell,
                uid: u.uid,
                system: u.system.unwrap_or(false),
                no_create_home: u.no_create_home.unwrap_or(false),
                expiredate: u.expiredate,
                inactive: u.inactive,
                lock_passwd: u.lock_passwd.unwrap_or(true),
                sudo: u.sudo.unwrap_or_default(),
                doas: u.doas.unwrap_or_default(),
                ssh_authorized_keys: dedup(keys),
                default: is_default,
                passwd: u.passwd,
                hashed_passwd: u.hashed_passwd,
                plain_text_passwd: u.plain_text_passwd,
                name: u.name,
            }
        })
        .collect();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for g in &cc.groups {
        let members = groups.entry(g.name.clone()).or_default();
        for m in &g.members {
            if seen.insert((g.name.as_str(), m.as_str())) {
                members.push(m.clone());
            }
        }
    }
    (users, groups)
}

pub fn dedup(items: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && seen.insert(s.clone()))
        .collect()
}

/// Plans groups and users. Returns the users that are (or will be) on the system, for the
/// modules that act on them (ssh keys).
pub fn plan(
    inp: &Inputs<'_>,
    users: &[User],
    groups: &BTreeMap<String, Vec<String>>,
    out: &mut Planned,
) -> Vec<User> {
    let b = inp.backend;
    let max = b.max_name_len();
    let mut new_groups: BTreeSet<String> = BTreeSet::new();
    let add_group = |name: &str, out: &mut Planned, new_groups: &mut BTreeSet<String>| -> bool {
        if let Err(e) = check_name(name, max) {
            out.error(
                NAME,
                &crate::accounts::shown(name),
                format!("group name refused: {e}"),
            );
            return false;
        }
        if inp.accounts.group(name).is_none() && new_groups.insert(name.to_string()) {
            out.actions
                .push(Action::exec(NAME, name, b.add_group(name)));
        }
        true
    };
    // First the group files themselves: a groupadd cut short leaves them disagreeing, and the
    // tools below would then work on half a group.
    if let Some((problems, repair)) = b.group_shadow_mismatch(inp.root) {
        for p in problems {
            out.warnings.push(format!(
                "{NAME}: {p} (an interrupted groupadd?); repaired with {}",
                repair
                    .first()
                    .map(String::as_str)
                    .unwrap_or("the group tools")
            ));
        }
        out.actions.push(Action::exec(NAME, "gshadow", repair));
    }
    for name in groups.keys() {
        add_group(name, out, &mut new_groups);
    }
    // The top-level groups each user is a member of, in the groups' order.
    let mut member_of: HashMap<&str, Vec<&String>> = HashMap::new();
    for (group, members) in groups {
        for m in members {
            member_of.entry(m.as_str()).or_default().push(group);
        }
    }
    let mut managed = Vec::new();
    let mut sudo_lines: Vec<String> = Vec::new();
    let mut doas_lines: Vec<String> = Vec::new();
    for u in users {
        if let Err(e) = check_name(&u.name, max) {
            out.error(
                NAME,
                &crate::accounts::shown(&u.name),
                format!("user name refused: {e}"),
            );
            continue;
        }
        let fields = [
            ("gecos", u.gecos.as_deref(), false),
            ("homedir", u.homedir_given(), true),
            ("shell", u.shell.as_deref(), true),
            ("expiredate", u.expiredate.as_deref(), false),
        ];
        if let Some(e) = fields
            .iter()
            .filter_map(|(what, v, abs)| {
                v.and_then(|v| crate::accounts::check_field(what, v, *abs).err())
            })
            .next()
        {
            out.error(NAME, &u.name, format!("not applied: {e}"));
            continue;
        }
        // A new account's home is made and handed to it; an existing one's is not changed (its
        // keys are checked by the ssh module). A system or no_create_home user gets nothing
        // written in its home (no keys either, below), so any home it names is fine.
        let new_home = u
            .homedir_given()
            .filter(|_| inp.accounts.user(&u.name).is_none() && !(u.system || u.no_create_home));
        if let Some(Err(e)) = new_home.map(crate::rootfs::check_home) {
            out.error(NAME, &u.name, format!("not applied: homedir: {e}"));
            continue;
        }
        if (u.system || u.no_create_home) && !u.ssh_authorized_keys.is_empty() {
            out.error(
                NAME,
                &u.name,
                "a system or no_create_home user cannot have SSH keys (it has no home for them)",
            );
            continue;
        }
        let existing = inp.accounts.user(&u.name);
        if existing.is_none() {
            let mut ok = true;
            for g in u.primary_group.iter().chain(u.groups.iter()) {
                ok &= add_group(g, out, &mut new_groups);
            }
            if !ok {
                out.error(
                    NAME,
                    &u.name,
                    "not created: one of its groups has a refused name",
                );
                continue;
            }
            let new = crate::platform::NewUser {
                name: &u.name,
                gecos: u.gecos.as_deref(),
                homedir: u.homedir_given(),
                primary_group: u.primary_group.as_deref(),
                groups: &u.groups,
                shell: u.shell.as_deref(),
                uid: u.uid,
                system: u.system,
                // cloud-init: a home unless no_create_home or system (NetBSD's bug was `-m`
                // unless both).
                create_home: !(u.no_create_home || u.system),
                expiredate: u.expiredate.as_deref(),
                inactive: u.inactive,
            };
            let argv = b.add_user(&new, &mut out.warnings);
            out.actions.push(Action::exec(NAME, &u.name, argv));
        }
        let before = out.actions.len();
        super::set_passwords::user_passwords(inp, u, existing.is_none(), out);
        let password_set = out.actions.len() > before;
        // Every run: the lock (cloud-init locks even a password just set). An account created
        // just now with no password set is already locked where the OS's useradd leaves it so
        // (Linux: `!`); running the lock tool again was 40 % of the tools' time per user.
        if u.lock_passwd {
            let locked = match existing {
                Some(e) => b.is_locked(inp.accounts.hash(&u.name), &e.shell),
                None => !password_set && b.create_leaves_locked(),
            };
            if !locked {
                out.actions
                    .push(Action::exec(NAME, &u.name, b.lock(&u.name)));
            }
        }
        if let Some(e) = existing.filter(|_| !(u.system || u.no_create_home)) {
            plan_missing_home(inp, u, e, out);
        }
        for group in member_of.get(u.name.as_str()).into_iter().flatten() {
            if !inp.accounts.in_group(&u.name, group) && !u.groups.contains(group) {
                out.actions
                    .push(Action::exec(NAME, &u.name, b.add_to_group(&u.name, group)));
            }
        }
        // A line break would add rules of its own; the user's other rules still apply.
        for (field, rules) in [("sudo", &u.sudo), ("doas", &u.doas)] {
            for rule in rules {
                if let Err(why) = check_rule(field, rule) {
                    out.error(
                        NAME,
                        &u.name,
                        format!(
                            "{field} rule {} refused: {why}",
                            crate::accounts::shown(rule)
                        ),
                    );
                } else if field == "sudo" {
                    sudo_lines.push(format!("{} {}", u.name, rule));
                } else {
                    doas_lines.push(rule.clone());
                }
            }
        }
        managed.push(u.clone());
    }
    // Members of top-level groups that are not managed users but exist.
    let user_names: HashSet<&str> = users.iter().map(|u| u.name.as_str()).collect();
    for (group, members) in groups {
        for m in members.iter().filter(|m| !user_names.contains(m.as_str())) {
            if inp.accounts.user(m).is_none() {
                out.warnings.push(format!(
                    "groups: {group}: member {m} does not exist; skipped"
                ));
            } else if !inp.accounts.in_group(m, group) {
                out.actions
                    .push(Action::exec(NAME, m, b.add_to_group(m, group)));
            }
        }
    }
    let wheel = b.wheel();
    append_lines(
        inp,
        out,
        "sudo",
        b.sudoers_dropin(),
        &sudo_lines,
        0o440,
        wheel,
    );
    if !sudo_lines.is_empty() {
        include_sudoers_dir(inp, out, wheel);
    }
    append_lines(inp, out, "doas", b.doas_conf(), &doas_lines, 0o600, wheel);
    managed
}

/// Bounds on the skeleton copied into a home: it is the OS's few dot files, and a huge or deep
/// one must not hold the boot.
const SKEL_MAX_ENTRIES: usize = 256;
const SKEL_MAX_DEPTH: usize = 4;
const SKEL_MAX_BYTES: u64 = 1024 * 1024;
/// All of the skeleton's files together, read into the plan.
const SKEL_MAX_TOTAL: u64 = 8 * 1024 * 1024;

/// What is left of the bounds while a skeleton is copied.
struct SkelBudget {
    entries: usize,
    bytes: u64,
}

/// An account that exists without its home (a crash inside useradd, after the passwd line and
/// before the directory) gets the home its tool would have made: the directory, owned by the
/// user with the OS's mode, and the OS's skeleton in it — as ordinary actions, so that a dry
/// run shows them.
///
/// Only a regular account's (uid at or above the OS's first regular uid: a system account
/// such as OpenBSD's `operator` with home `/operator` is left as it is), at the home its
/// passwd entry names (what login uses, not what the cloud-config asks), and never one in a
/// system directory.
fn plan_missing_home(
    inp: &Inputs<'_>,
    u: &User,
    existing: &crate::accounts::User,
    out: &mut Planned,
) {
    if existing.uid < inp.backend.facts().first_regular_uid {
        return;
    }
    let home = existing.home.trim_end_matches('/');
    if home.is_empty() || !home.starts_with('/') || ["/nonexistent", "/var/empty"].contains(&home) {
        return;
    }
    // Anything there (a link too, not followed) is not a missing home.
    match crate::rootfs::entry(inp.root, home, None) {
        Ok(None) => {}
        Ok(Some(_)) => return,
        Err(e) => {
            out.warnings
                .push(format!("{NAME}: {}: home not checked: {e}", u.name));
            return;
        }
    }
    if let Err(e) = crate::rootfs::check_home(home) {
        out.error(NAME, &u.name, format!("missing home not created: {e}"));
        return;
    }
    let facts = inp.backend.facts();
    tracing::info!(user = %u.name, home, "the account exists without its home: creating it");
    out.actions.push(Action::Mkdir {
        module: NAME,
        item: u.name.clone(),
        path: home.to_string(),
        mode: facts.home_mode,
        owner: u.name.clone(),
        group: String::new(),
        in_home: false,
    });
    let mut budget = SkelBudget {
        entries: SKEL_MAX_ENTRIES,
        bytes: SKEL_MAX_TOTAL,
    };
    copy_skel(inp, u, facts, facts.skel, home, 0, &mut budget, out);
}

/// Plans copying skeleton directory `from` (a path in the root) into `to`: directories and
/// regular files with their modes, owned by the user; FreeBSD's `dot.x` names become `.x`.
#[allow(clippy::too_many_arguments)]
fn copy_skel(
    inp: &Inputs<'_>,
    u: &User,
    facts: &crate::platform::OsFacts,
    from: &str,
    to: &str,
    depth: usize,
    budget: &mut SkelBudget,
    out: &mut Planned,
) {
    // Listed and looked at inside the root, bounded (a link to the host's /etc is resolved in
    // the root, never outside it).
    let names = match crate::rootfs::list(inp.root, from) {
        Ok(Some(names)) => names,
        Ok(None) => return,
        Err(e) => {
            out.warnings
                .push(format!("{NAME}: {}: skeleton not copied: {e}", u.name));
            return;
        }
    };
    for name in names {
        let src = format!("{from}/{name}");
        let target = match name.strip_prefix("dot.") {
            Some(rest) if facts.skel_dot_prefix => format!(".{rest}"),
            _ => name.clone(),
        };
        let dst = format!("{to}/{target}");
        if budget.entries == 0 {
            out.warnings.push(format!(
                "{NAME}: {}: skeleton {} has more than {SKEL_MAX_ENTRIES} entries; the rest not copied",
                u.name, facts.skel
            ));
            return;
        }
        budget.entries -= 1;
        let Ok(Some(meta)) = crate::rootfs::entry(inp.root, &src, None) else {
            continue;
        };
        let mode = meta.mode & 0o777;
        if meta.is_dir && depth < SKEL_MAX_DEPTH {
            out.actions.push(Action::Mkdir {
                module: NAME,
                item: u.name.clone(),
                path: dst.clone(),
                mode,
                owner: u.name.clone(),
                group: String::new(),
                in_home: true,
            });
            copy_skel(inp, u, facts, &src, &dst, depth + 1, budget, out);
        } else if meta.is_file && meta.len <= SKEL_MAX_BYTES.min(budget.bytes) {
            budget.bytes -= meta.len;
            // Read confined and bounded, never through a link put there since the check.
            match crate::rootfs::read(inp.root, &src, None) {
                Ok(Some(content)) => out.actions.push(Action::write(
                    NAME,
                    u.name.clone(),
                    dst,
                    content,
                    mode,
                    (&u.name, ""),
                    true,
                )),
                Ok(None) => {}
                Err(err) => out.warnings.push(format!(
                    "{NAME}: {}: skeleton file {src} not copied: {err}",
                    u.name
                )),
            }
        } else {
            out.warnings.push(format!(
                "{NAME}: {}: skeleton entry {src} not copied (a link, a special file, too big or too deep)",
                u.name
            ));
        }
    }
}

impl User {
    /// The home directory only if cloud-config named it (else the tool's default is used).
    fn homedir_given(&self) -> Option<&str> {
        (self.homedir != format!("/home/{}", self.name)).then_some(self.homedir.as_str())
    }
}

/// Adds each missing line to a rules file, once; an unchanged file is not rewritten.
fn append_lines(
    inp: &Inputs<'_>,
    out: &mut Planned,
    item: &str,
    path: &str,
    lines: &[String],
    mode: u32,
    group: &str,
) {
    if lines.is_empty() {
        return;
    }
    let current = match out.try_current_text(inp.root, path, None) {
        Ok(c) => c,
        Err(e) => {
            out.error(NAME, item, format!("rules not written: {e}"));
            return;
        }
    };
    let have: BTreeSet<&str> = current.lines().map(str::trim).collect();
    let mut missing: Vec<&String> = Vec::new();
    let mut added: HashSet<&str> = HashSet::new();
    for l in lines {
        if !have.contains(l.trim()) && added.insert(l.as_str()) {
            missing.push(l);
        }
    }
    if missing.is_empty() {
        return;
    }
    let mut text = current.clone();
    if text.is_empty() {
        text.push_str("# Written by wisp from cloud-config.\n");
    } else if !text.ends_with('\n') {
        text.push('\n');
    }
    for l in missing {
        text.push_str(l);
        text.push('\n');
    }
    out.actions.push(Action::write(
        NAME,
        item,
        path,
        text.into_bytes(),
        mode,
        ("root", group),
        false,
    ));
}

/// Refuses a sudo or doas rule that would not stay one line of its own: sudoers(5) and
/// doas.conf(5) both join a line ending in `\` with the next one (a rule merged into the next
/// user's makes a parse error that can disable the tool for everyone), and doas.conf takes an
/// unclosed `"` as an error and a line starting with `#` as a comment. (A sudoers line starts
/// with the user's name, so a rule there can never be an `@include`/`#include` directive.)
fn check_rule(field: &str, rule: &str) -> Result<(), String> {
    if let Some(c) = rule.chars().find(|c| c.is_control()) {
        return Err(format!("it contains the control character {c:?}"));
    }
    if rule.trim_end().ends_with('\\') {
        return Err("it ends in a backslash, which joins the next line to it".into());
    }
    if field == "doas" {
        if rule.trim_start().starts_with('#') {
            return Err("it starts with #, a comment in doas.conf".into());
        }
        // A backslash escapes the next character, a quote among them.
        let mut quoted = false;
        let mut chars = rule.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => quoted = !quoted,
                _ => {}
            }
        }
        if quoted {
            return Err("its double quote is not closed".into());
        }
    }
    Ok(())
}

/// sudo reads the drop-in directory only if the main sudoers says so (cloud-init checks this too).
fn include_sudoers_dir(inp: &Inputs<'_>, out: &mut Planned, group: &str) {
    let b = inp.backend;
    let dir = b
        .sudoers_dropin()
        .rsplit_once('/')
        .map(|(d, _)| d)
        .unwrap_or("/");
    let text = match out.try_current(inp.root, b.sudoers(), None) {
        Ok(t) => t.map(|c| String::from_utf8_lossy(&c).into_owned()),
        Err(e) => {
            out.error(NAME, "sudo", format!("{dir} not included: {e}"));
            return;
        }
    };
    let Some(text) = text else {
        out.warnings.push(format!(
            "sudo: {} does not exist (is sudo installed?); rules are in {} for when it is",
            b.sudoers(),
            b.sudoers_dropin()
        ));
        return;
    };
    let included = text.lines().any(|l| {
        let l = l.trim();
        (l.starts_with("@includedir") || l.starts_with("#includedir"))
            && l.split_whitespace().nth(1) == Some(dir)
    });
    if !included {
        let mut new = text;
        if !new.ends_with('\n') {
            new.push('\n');
        }
        new.push_str(&format!("@includedir {dir}\n"));
        out.actions.push(Action::write(
            NAME,
            "sudo",
            b.sudoers(),
            new.into_bytes(),
            0o440,
            ("root", group),
            false,
        ));
    }
}

// Reading the module's part of a cloud-config document, with cloud-init's leniency
// (`cloudconfig::lenient`).

pub(crate) const USER_KEYS: &[&str] = &[
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

pub(crate) fn read_users(r: &mut Reader<'_>, path: &str, v: &Value) -> Vec<UserEntry> {
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
pub(crate) fn named_user(name: &str) -> UserEntry {
    if name == "default" {
        UserEntry::Default
    } else {
        UserEntry::User(Box::new(UserSpec {
            name: name.to_string(),
            ..Default::default()
        }))
    }
}

pub(crate) fn read_user_entry(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<UserEntry> {
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
pub(crate) fn read_user_map(
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
            // Strings in cloud-init's schema, used as they are: a number is an error, not
            // its text (`Reader::opt_text`).
            "gecos" => u.gecos = r.opt_text(p, val),
            "homedir" => u.homedir = r.opt_text(p, val),
            "primary_group" => u.primary_group = r.opt_text(p, val),
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
            "shell" => u.shell = r.opt_text(p, val),
            "uid" => u.uid = r.uint(p, val, u32::MAX as u64 - 1).map(|n| n as u32),
            "system" => u.system = r.bool(p, val),
            "no_create_home" => u.no_create_home = r.bool(p, val),
            "no_user_group" => u.no_user_group = r.bool(p, val),
            "create_groups" => u.create_groups = r.bool(p, val),
            "expiredate" => u.expiredate = r.opt_text(p, val),
            // A string of days in cloud-init's schema; cloud-init passes on only a string.
            "inactive" => {
                u.inactive = r
                    .opt_text(p, val)
                    .and_then(|days| r.uint(p, &Value::String(days), 100_000))
                    .map(|n| n as u32)
            }
            "lock_passwd" => u.lock_passwd = r.bool(p, val),
            "passwd" => u.passwd = r.opt_text(p, val),
            "hashed_passwd" => u.hashed_passwd = r.opt_text(p, val),
            "plain_text_passwd" => u.plain_text_passwd = r.opt_text(p, val),
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
                        if crate::cloudconfig::lenient::yaml11_bool(val) == Some(false)
                            && s.len() <= 5 =>
                    {
                        Some(Vec::new())
                    }
                    _ => Some(r.string_or_list(p, val)),
                }
            }
            // Lists in cloud-init's schema: a single string is taken, and said.
            "doas" => u.doas = Some(r.string_or_list_said(p, val)),
            "ssh_authorized_keys" => u.ssh_authorized_keys = Some(r.string_or_list_said(p, val)),
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
        // `{snapuser: …}` alone is valid cloud-config (a user made by snapd, on Ubuntu Core):
        // its key was warned about as not applied on the BSDs; nothing else to say.
        if map
            .keys()
            .any(|k| k.as_str().map(norm_key).as_deref() == Some("snapuser"))
        {
            return None;
        }
        r.error(path, "a user needs a name");
        return None;
    }
    Some(u)
}

pub(crate) fn read_groups(r: &mut Reader<'_>, path: &str, v: &Value) -> Vec<GroupSpec> {
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

/// The module in the registry ([`super::MODULES`]).
pub struct UsersGroups;

impl super::Module for UsersGroups {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &[
                "users",
                "user",
                "groups",
                "system_info",
                "ssh_authorized_keys",
            ],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let (all, groups) = normalize(inp);
        let managed = plan(inp, &all, &groups, out);
        run.users = Some((managed, groups));
    }
}

/// Removes an account this boot created that the documents do not want (the default user made
/// before the user-data was read): the account with its home, and its sudo rules.
pub fn plan_removal(
    backend: &dyn crate::platform::Backend,
    root: &crate::root::Root,
    name: &str,
    out: &mut Planned,
) {
    out.actions
        .push(Action::exec(NAME, name, backend.remove_user(name)));
    let path = backend.sudoers_dropin();
    let current = out.current_text(root, path);
    let kept: Vec<&str> = current
        .lines()
        .filter(|l| l.split_whitespace().next() != Some(name))
        .collect();
    if kept.len() != current.lines().count() {
        let mut text = kept.join("\n");
        text.push('\n');
        out.actions.push(Action::write(
            NAME,
            "sudo",
            path,
            text.into_bytes(),
            0o440,
            ("root", backend.wheel()),
            false,
        ));
    }
}

#[cfg(test)]
mod scale_tests {
    use super::*;
    use crate::accounts::Accounts;
    use crate::cloudconfig::{CloudConfig, Reader};
    use crate::platform::Platform;
    use crate::root::Root;

    /// `n` users, all members of one top-level group, each with a sudo rule.
    fn config(n: usize) -> CloudConfig {
        let names: Vec<String> = (0..n).map(|i| format!("u{i:05}")).collect();
        let mut s = format!("groups:\n  - ops: [{}]\nusers:\n", names.join(", "));
        for name in &names {
            s.push_str(&format!("  - {{name: {name}, sudo: 'ALL=(ALL) ALL'}}\n"));
        }
        let map: yaml_serde::Mapping = yaml_serde::from_str(&s).unwrap();
        CloudConfig::read(&mut Reader::default(), &map)
    }

    /// Seconds to merge the users of `n` (normalize) and to plan them.
    fn time_users(n: usize) -> (f64, f64) {
        let cc = config(n);
        let backend = Platform::Netbsd.backend(None);
        let accounts = Accounts::default();
        let root = Root::new("/nonexistent-wisp-test-root");
        let inp = Inputs {
            config: &cc,
            metadata_keys: &[],
            configured_default_user: None,
            backend: backend.as_ref(),
            accounts: &accounts,
            root: &root,
            disks: None,
        };
        let start = std::time::Instant::now();
        let (users, groups) = normalize(&inp);
        let normalized = start.elapsed().as_secs_f64();
        assert_eq!(users.len(), n);
        let start = std::time::Instant::now();
        let mut out = Planned::default();
        let managed = plan(&inp, &users, &groups, &mut out);
        assert_eq!(managed.len(), n);
        (normalized, start.elapsed().as_secs_f64())
    }

    #[test]
    fn ten_times_the_users_take_about_ten_times_as_long() {
        // A scan per user (of the users merged so far, of each group's members, of the sudo
        // lines) makes 10 times the users cost 100 times as long.
        // The best of a few runs of each size, and a floor under the small one: tests run in
        // parallel (and CI machines are busy), so one slow run must not decide.
        let best = |n: usize| {
            (0..3)
                .map(|_| time_users(n))
                .fold((f64::MAX, f64::MAX), |a, b| {
                    (a.0.min(b.0).max(0.02), a.1.min(b.1).max(0.02))
                })
        };
        let (norm_small, plan_small) = best(2_000);
        let (norm_large, plan_large) = best(20_000);
        assert!(
            norm_large < 25.0 * norm_small,
            "normalize: 2,000 users {norm_small:.3}s, 20,000 {norm_large:.3}s"
        );
        assert!(
            plan_large < 25.0 * plan_small,
            "plan: 2,000 users {plan_small:.3}s, 20,000 {plan_large:.3}s"
        );
    }
}
