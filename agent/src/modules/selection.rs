//! cloud-init's module lists — `cloud_init_modules`, `cloud_config_modules` and
//! `cloud_final_modules` — in wisp.yaml or the cloud-config (the layered document: user-data
//! over wisp.yaml, as cloud-init reads them from its merged configuration): which modules run,
//! in which order, and how often.
//!
//! A list given replaces its cloud-init stage's modules: only those listed run, in the list's
//! order (an empty one, or a null, runs none, as in cloud-init; a warning says so); a stage
//! whose list is not given keeps wisp's default modules for it. Entries are read
//! as cloud-init's `_read_modules` does: a name, `[name]`, `[name, frequency]` or
//! `{name, frequency}`; names as `form_module_name` makes them (`-` is `_`, `.py` and `cc_`
//! dropped) and cloud-init's module names map to wisp's (`set_hostname` is `hostname`,
//! `power_state_change` is `power_state`, `ssh` is `ssh` and `ssh_host_keys`). A listed module
//! still runs in wisp's own stage for it (local, network or final): wisp's stages are where the
//! network is up and the final report is made, so a module listed in another cloud-init stage
//! than it can run in says so with a warning. Boothooks are not a module in cloud-init (its
//! user-data handlers run them): no list leaves them out.
//!
//! The selection is kept per thread once the documents are read ([`select`]): every place that
//! asks for the modules, their stage and frequency ([`super::infos`], [`super::info`],
//! [`super::plan_modules`]) sees the same, and the tests' threads do not see each other's.
//! What runs before the documents are read sees wisp's defaults: that is harmless.
//! [`crate::engine::settle_known_instance`] only marks modules done for the instance, and a
//! marker is read with the frequency in force when the module is planned (a module a list
//! makes `always` runs whatever its marker says, one made `once` is done, as it should be on
//! an instance that is not new); a stage's modules are planned only once the documents, and
//! so the lists, are read. Carrying the selection in the plan's inputs instead is left for a
//! change that can touch every caller of [`super::info`].

use std::cell::RefCell;

use super::{Frequency, Stage, MODULES};
use crate::cloudconfig::lenient::{describe, Reader};
use yaml_serde::Value;

/// cloud-init's stages, whose lists these are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudInitStage {
    Init,
    Config,
    Final,
}

impl CloudInitStage {
    pub const ALL: [CloudInitStage; 3] = [
        CloudInitStage::Init,
        CloudInitStage::Config,
        CloudInitStage::Final,
    ];

    /// The list's key.
    pub fn key(self) -> &'static str {
        match self {
            CloudInitStage::Init => "cloud_init_modules",
            CloudInitStage::Config => "cloud_config_modules",
            CloudInitStage::Final => "cloud_final_modules",
        }
    }

    /// Whether wisp's `stage` can stand for this one: cloud-init's init and config stages run
    /// before logins (wisp's local and network stages), its final stage after (wisp's final).
    fn covers(self, stage: Stage) -> bool {
        (self == CloudInitStage::Final) == (stage == Stage::Final)
    }
}

/// One module of a list: the wisp module, and the frequency the entry gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub module: &'static str,
    pub frequency: Option<Frequency>,
}

/// The lists given, by cloud-init stage (None: not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleLists {
    pub init: Option<Vec<Listed>>,
    pub config: Option<Vec<Listed>>,
    pub final_: Option<Vec<Listed>>,
}

impl ModuleLists {
    fn get(&self, stage: CloudInitStage) -> Option<&Vec<Listed>> {
        match stage {
            CloudInitStage::Init => self.init.as_ref(),
            CloudInitStage::Config => self.config.as_ref(),
            CloudInitStage::Final => self.final_.as_ref(),
        }
    }

    fn slot(&mut self, stage: CloudInitStage) -> &mut Option<Vec<Listed>> {
        match stage {
            CloudInitStage::Init => &mut self.init,
            CloudInitStage::Config => &mut self.config,
            CloudInitStage::Final => &mut self.final_,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.init.is_none() && self.config.is_none() && self.final_.is_none()
    }
}

/// The cloud-init stage whose default list has wisp module `name` (cloud-init's cloud.cfg):
/// what a list given for that stage replaces.
fn default_stage(name: &str) -> CloudInitStage {
    match name {
        "locale" | "set_passwords" | "ntp" | "timezone" | "runcmd" => CloudInitStage::Config,
        "package_update_upgrade_install"
        | "write_files_deferred"
        | "scripts_user"
        | "keys_to_console"
        | "phone_home"
        | "final_message"
        | "power_state" => CloudInitStage::Final,
        _ => CloudInitStage::Init,
    }
}

/// Orderings kept within a wisp stage whatever a list says: (the module that runs first, the
/// one that needs it, whether cloud-init's own lists ask otherwise). users_groups makes the
/// accounts that set_passwords, ssh and write_files (an `owner`) use; the host keys exist
/// before they are shown or posted; packages are installed before their deferred files are
/// written over them and before runcmd uses them. A list asking otherwise gets a warning, but
/// for cloud-init's stock lists (`write_files` before `users_groups`: cloud-init defers the
/// files that need a user), whose order is only logged.
const HARD_ORDER: &[(&str, &str, bool)] = &[
    (super::users_groups::NAME, super::set_passwords::NAME, false),
    (super::users_groups::NAME, super::ssh::NAME, false),
    (super::users_groups::NAME, super::write_files::NAME, true),
    (
        super::ssh_host_keys::NAME,
        super::keys_to_console::NAME,
        false,
    ),
    (super::ssh_host_keys::NAME, super::phone_home::NAME, false),
    (
        super::packages::NAME,
        super::write_files::DEFERRED_NAME,
        false,
    ),
    (super::packages::NAME, super::runcmd::NAME, false),
];

/// Whether modules `a` and `b` run in the same wisp stage (where their order matters).
fn same_stage(a: &str, b: &str) -> bool {
    super::info_default(a).stage == super::info_default(b).stage
}

/// `modules` with the [`HARD_ORDER`] kept: a module that must run first is moved just before
/// the first one that needs it.
fn keep_hard_order<T>(modules: &mut Vec<T>, name: impl Fn(&T) -> &'static str) {
    // Each module that must run first needs none before it: one pass settles them all, the
    // second only confirms.
    for _ in 0..2 {
        for (first, then, _) in HARD_ORDER {
            let at = |m: &str, v: &Vec<T>| v.iter().position(|x| name(x) == m);
            if let (Some(a), Some(b)) = (at(first, modules), at(then, modules)) {
                if a > b && same_stage(first, then) {
                    let moved = modules.remove(a);
                    modules.insert(b, moved);
                }
            }
        }
    }
}

/// Modules no list leaves out: not modules in cloud-init.
const ALWAYS: &[&str] = &[super::scripts_user::BOOTHOOK];

/// cloud-init module names that are wisp modules under another name (or two).
const ALIASES: &[(&str, &[&str])] = &[
    ("seed_random", &["random_seed"]),
    ("resizefs", &["growpart"]),
    ("set_hostname", &["hostname"]),
    ("update_hostname", &["hostname"]),
    ("update_etc_hosts", &["hostname"]),
    ("ssh", &["ssh", "ssh_host_keys"]),
    ("power_state_change", &["power_state"]),
];

/// cloud-init modules that wisp does not have because they have no meaning on the BSDs or
/// belong to cloud-init itself: listed, they are logged, not warned about.
const NOT_ON_THE_BSDS: &[&str] = &[
    "migrator",
    "disk_setup",
    "mounts",
    "snap",
    "ubuntu_autoinstall",
    "ubuntu_pro",
    "ubuntu_advantage",
    "ubuntu_drivers",
    "apt_configure",
    "apt_pipelining",
    "byobu",
    "ssh_import_id",
    "keyboard",
    "grub_dpkg",
    "fan",
    "landscape",
    "lxd",
    "wireguard",
    "rh_subscription",
    "spacewalk",
    "yum_add_repo",
    "zypper_add_repo",
    "emit_upstart",
    "reset_rmc",
    "refresh_rmc_and_interface",
    "install_hotplug",
    "disable_ec2_metadata",
    "puppet",
    "chef",
    "salt_minion",
    "mcollective",
    "ansible",
    "rightscale_userdata",
];

/// cloud-init modules that run on the BSDs in cloud-init but have no equivalent in wisp:
/// listed, each is a warning (what they would do is not done).
const NOT_IN_WISP: &[&str] = &[
    "scripts_vendor",
    "scripts_per_once",
    "scripts_per_boot",
    "scripts_per_instance",
    "ssh_authkey_fingerprints",
];

/// cloud-init's `form_module_name`, without its `cc_` prefix: `-` is `_`, a `.py` suffix and
/// a `cc_` prefix are dropped.
pub fn normalize(name: &str) -> String {
    let mut n = name.trim().replace('-', "_");
    if n.to_ascii_lowercase().ends_with(".py") {
        n.truncate(n.len() - 3);
    }
    let n = n.trim();
    n.strip_prefix("cc_").unwrap_or(n).to_string()
}

/// The wisp modules a (normalized) cloud-init module name stands for.
fn wisp_modules(name: &str) -> Option<Vec<&'static str>> {
    if let Some((_, to)) = ALIASES.iter().find(|(a, _)| *a == name) {
        return Some(to.to_vec());
    }
    MODULES
        .iter()
        .map(|m| m.info().name)
        .find(|m| *m == name && !ALWAYS.contains(m))
        .map(|m| vec![m])
}

/// cloud-init's frequencies (its `FREQUENCIES`).
fn frequency(text: &str) -> Option<Frequency> {
    match text.trim() {
        "always" => Some(Frequency::PerBoot),
        "once-per-instance" => Some(Frequency::PerInstance),
        "once" => Some(Frequency::Once),
        _ => None,
    }
}

/// The longest list taken.
const MAX_ENTRIES: usize = 256;

/// Reads the list of `stage` (at `path`) into `lists`. Problems are named with their entry.
pub(crate) fn read_list(
    r: &mut Reader<'_>,
    path: &str,
    stage: CloudInitStage,
    v: &Value,
    lists: &mut ModuleLists,
) {
    let items = match v {
        // cloud-init reads an empty list (or none) as no module at all for the stage.
        Value::Null | Value::Sequence(_) if v.as_sequence().is_none_or(Vec::is_empty) => {
            r.warn(path, "empty: no module of this stage runs");
            *lists.slot(stage) = Some(Vec::new());
            return;
        }
        Value::Sequence(items) if items.len() <= MAX_ENTRIES => items,
        Value::Sequence(_) => {
            r.error(
                path,
                format!("at most {MAX_ENTRIES} entries; the default modules run"),
            );
            return;
        }
        other => {
            r.error(
                path,
                format!(
                    "expected a list of module names, got {}; the default modules run",
                    describe(other)
                ),
            );
            return;
        }
    };
    let mut listed: Vec<Listed> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let (name, freq, args) = match item {
            Value::Null => continue,
            Value::String(s) => (Some(s.clone()), None, false),
            Value::Sequence(parts) => (
                parts.first().and_then(Value::as_str).map(str::to_string),
                parts
                    .get(1)
                    .map(|f| (f.as_str().unwrap_or_default().to_string(), f)),
                parts.len() > 2,
            ),
            Value::Mapping(m) => (
                m.get("name").and_then(Value::as_str).map(str::to_string),
                m.get("frequency")
                    .map(|f| (f.as_str().unwrap_or_default().to_string(), f)),
                m.get("args").is_some_and(|a| !a.is_null()),
            ),
            other => {
                r.error(
                    &p,
                    format!(
                        "expected a module name, [name, frequency] or a map, got {}",
                        describe(other)
                    ),
                );
                continue;
            }
        };
        let Some(raw) = name else {
            r.error(&p, "no module name (a string) in the entry");
            continue;
        };
        if raw.chars().any(char::is_control) || raw.len() > 128 {
            r.error(
                &p,
                "a module name of at most 128 bytes, no control characters",
            );
            continue;
        }
        let name = normalize(&raw);
        let frequency = match freq {
            None => None,
            Some((text, v)) => match frequency(&text) {
                Some(f) => Some(f),
                None => {
                    // cloud-init: an unknown frequency is the module's own, with a warning.
                    r.warn(
                        &p,
                        format!(
                            "unknown frequency {} for {raw:?} (always, once-per-instance or \
                             once): the module's own",
                            describe(v)
                        ),
                    );
                    None
                }
            },
        };
        if args {
            r.warn(
                &p,
                format!("{raw:?}: arguments are not used by wisp's modules"),
            );
        }
        let Some(modules) = wisp_modules(&name) else {
            if NOT_IN_WISP.contains(&name.as_str()) {
                r.warn(
                    &p,
                    format!(
                        "module {raw:?} is not supported by wisp (cloud-init runs it on the \
                         BSDs; wisp has no equivalent): skipped"
                    ),
                );
            } else if NOT_ON_THE_BSDS.contains(&name.as_str()) {
                tracing::info!(
                    entry = %p,
                    "module {raw:?} has no meaning on the BSDs or is cloud-init's own: not run"
                );
            } else {
                r.warn(
                    &p,
                    format!("unknown module {raw:?}: wisp has no such module, skipped"),
                );
            }
            continue;
        };
        let alias = ALIASES.iter().any(|(a, _)| *a == name);
        for module in modules {
            if listed.iter().any(|l| l.module == module) {
                // cloud-init's lists name several of its modules that are one of wisp's
                // (`set_hostname`, `update_hostname`): not worth a warning.
                if alias {
                    tracing::info!(entry = %p, "{raw:?}: {module} is listed already; run once");
                } else {
                    r.warn(&p, format!("{raw:?}: {module} is listed already; run once"));
                }
                continue;
            }
            let stage_of = super::info_default(module).stage;
            // Listed where cloud-init's own lists have it (runcmd in cloud_config_modules):
            // where wisp runs it is wisp's business, not a warning.
            if !stage.covers(stage_of) && default_stage(module) != stage {
                r.warn(
                    &p,
                    format!(
                        "{raw:?} runs in wisp's {} stage, not cloud-init's {} stage where it is \
                         listed: wisp runs each module where it can ({})",
                        stage_name(stage_of),
                        match stage {
                            CloudInitStage::Init => "init",
                            CloudInitStage::Config => "config",
                            CloudInitStage::Final => "final",
                        },
                        if stage_of == Stage::Final {
                            "after logins"
                        } else {
                            "before logins"
                        }
                    ),
                );
            }
            listed.push(Listed { module, frequency });
        }
    }
    for (first, then, stock) in HARD_ORDER {
        let at = |m: &str| listed.iter().position(|l| l.module == m);
        if let (Some(a), Some(b)) = (at(first), at(then)) {
            if a > b && same_stage(first, then) {
                let why = format!(
                    "{then} is listed before {first}: {first} runs first all the same (what \
                     {then} does needs it)"
                );
                if *stock {
                    tracing::info!(list = %path, "{why}");
                } else {
                    r.warn(path, why);
                }
            }
        }
    }
    *lists.slot(stage) = Some(listed);
}

fn stage_name(s: Stage) -> &'static str {
    match s {
        Stage::Local => "local",
        Stage::Network => "network",
        Stage::Final => "final",
    }
}

/// The modules that run, in order, with their frequency: wisp's default when no list is given.
pub fn resolve(lists: &ModuleLists) -> Vec<(&'static str, Frequency)> {
    let defaults = || MODULES.iter().map(|m| m.info());
    if lists.is_empty() {
        return defaults().map(|i| (i.name, i.frequency)).collect();
    }
    let everywhere: Vec<&'static str> = CloudInitStage::ALL
        .iter()
        .filter_map(|s| lists.get(*s))
        .flatten()
        .map(|l| l.module)
        .collect();
    let mut out: Vec<(&'static str, Frequency)> = Vec::new();
    for stage in CloudInitStage::ALL {
        if stage == CloudInitStage::Init {
            out.extend(
                defaults()
                    .filter(|i| ALWAYS.contains(&i.name))
                    .map(|i| (i.name, i.frequency)),
            );
        }
        match lists.get(stage) {
            Some(listed) => {
                for l in listed {
                    if !out.iter().any(|(n, _)| *n == l.module) {
                        let own = super::info_default(l.module).frequency;
                        out.push((l.module, l.frequency.unwrap_or(own)));
                    }
                }
            }
            // Not given: wisp's defaults for it, but for those listed elsewhere.
            None => out.extend(
                defaults()
                    .filter(|i| default_stage(i.name) == stage && !ALWAYS.contains(&i.name))
                    .filter(|i| !everywhere.contains(&i.name))
                    .map(|i| (i.name, i.frequency)),
            ),
        }
    }
    // cloud-init's runcmd (a config module) only writes the script that scripts_user runs in
    // the final stage, after the deferred files; wisp's runcmd runs the commands itself: one
    // listed in cloud_config_modules runs where scripts_user sits (or just after the deferred
    // files). One the final list names is where that list puts it.
    let config_listed = |m: &str| lists.config.iter().flatten().any(|l| l.module == m);
    let final_listed = |m: &str| lists.final_.iter().flatten().any(|l| l.module == m);
    let runcmd = super::runcmd::NAME;
    if config_listed(runcmd) && !final_listed(runcmd) {
        if let Some(at) = out.iter().position(|(n, _)| *n == runcmd) {
            let moved = out.remove(at);
            let scripts = out
                .iter()
                .position(|(n, _)| *n == super::scripts_user::NAME);
            let deferred = out
                .iter()
                .position(|(n, _)| *n == super::write_files::DEFERRED_NAME)
                .map(|d| d + 1);
            out.insert(scripts.or(deferred).unwrap_or(at), moved);
        }
    }
    keep_hard_order(&mut out, |(n, _)| *n);
    out
}

thread_local! {
    static SELECTED: RefCell<Option<Vec<(&'static str, Frequency)>>> = const { RefCell::new(None) };
}

/// Makes `lists` decide the modules of this thread's runs (none given: wisp's defaults).
pub fn select(lists: &ModuleLists) {
    let chosen = (!lists.is_empty()).then(|| resolve(lists));
    SELECTED.with(|s| *s.borrow_mut() = chosen);
}

/// The modules selected, in order, with their frequency.
pub fn selected() -> Vec<(&'static str, Frequency)> {
    SELECTED
        .with(|s| s.borrow().clone())
        .unwrap_or_else(|| resolve(&ModuleLists::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (ModuleLists, Vec<String>) {
        let v: Value = yaml_serde::from_str(text).unwrap();
        let mut r = Reader::default();
        let mut lists = ModuleLists::default();
        for stage in CloudInitStage::ALL {
            if let Some(l) = v.get(stage.key()) {
                read_list(&mut r, stage.key(), stage, l, &mut lists);
            }
        }
        let problems = r
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        (lists, problems)
    }

    fn names(lists: &ModuleLists) -> Vec<&'static str> {
        resolve(lists).iter().map(|(n, _)| *n).collect()
    }

    #[test]
    fn names_as_cloud_init_forms_them() {
        assert_eq!(normalize("cc_set-hostname.py"), "set_hostname");
        assert_eq!(normalize(" scripts-user "), "scripts_user");
        let (lists, problems) = read(
            "cloud_final_modules: [cc_scripts-user, [power-state-change, always], \
             {name: phone_home, frequency: once}]\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            lists.final_.unwrap(),
            vec![
                Listed {
                    module: "scripts_user",
                    frequency: None
                },
                Listed {
                    module: "power_state",
                    frequency: Some(Frequency::PerBoot)
                },
                Listed {
                    module: "phone_home",
                    frequency: Some(Frequency::Once)
                },
            ]
        );
    }

    #[test]
    fn no_list_is_wisps_order_and_a_list_replaces_its_stage_only() {
        let default: Vec<&str> = MODULES.iter().map(|m| m.info().name).collect();
        assert_eq!(names(&ModuleLists::default()), default);
        let (lists, _) = read("cloud_config_modules: [timezone]\n");
        let got = names(&lists);
        // ntp and runcmd left out; init and final modules as they were.
        assert!(!got.contains(&"ntp") && !got.contains(&"runcmd"), "{got:?}");
        assert!(got.contains(&"users_groups") && got.contains(&"power_state"));
        assert!(got.contains(&"boothook"));
        // Reordered, and one listed in another stage than its default is not run twice.
        let (lists, _) =
            read("cloud_final_modules: [runcmd, write_files_deferred, final_message]\n");
        let got = names(&lists);
        let at = |m: &str| got.iter().position(|n| *n == m);
        assert!(at("runcmd") < at("write_files_deferred"), "{got:?}");
        assert_eq!(got.iter().filter(|n| **n == "runcmd").count(), 1);
        assert_eq!(at("phone_home"), None);
        assert_eq!(at("scripts_user"), None);
    }

    #[test]
    fn an_empty_list_runs_no_module_of_its_stage() {
        let (lists, problems) = read("cloud_final_modules: []\n");
        assert_eq!(
            problems,
            ["cloud_final_modules: empty: no module of this stage runs"]
        );
        let got = names(&lists);
        let finals: Vec<&&str> = got
            .iter()
            .filter(|m| default_stage(m) == CloudInitStage::Final)
            .collect();
        assert!(finals.is_empty(), "{finals:?}");
        // runcmd is a config module in cloud-init (its script runs in wisp's final stage).
        assert!(
            got.contains(&"runcmd") && got.contains(&"users_groups"),
            "{got:?}"
        );
    }

    /// Final review of issue 13 (10): names that are not cloud-init modules are unknown.
    #[test]
    fn names_that_are_no_cloud_init_module_are_unknown() {
        let (_, problems) = read("cloud_final_modules: [write_metadata, growpart_legacy]\n");
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems.iter().all(|p| p.contains("unknown module")),
            "{problems:#?}"
        );
    }

    #[test]
    fn unknown_names_frequencies_and_stages_are_warned_about() {
        let (lists, problems) = read(
            "cloud_init_modules: [users-groups, frobnicate, migrator, [ntp, sometimes]]\n\
             cloud_final_modules: [ssh, [final_message, always, x]]\ncloud_config_modules: 7\n",
        );
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems[0].starts_with("cloud_init_modules[1]: unknown module \"frobnicate\""));
        assert!(problems[1].starts_with("cloud_init_modules[3]: unknown frequency"));
        assert!(problems[2].starts_with("cloud_config_modules: expected a list"));
        // ssh and ssh_host_keys both run in the network stage.
        assert!(problems[3].starts_with("cloud_final_modules[0]: \"ssh\" runs in wisp's network"));
        assert!(problems[4].starts_with("cloud_final_modules[0]: \"ssh\" runs in wisp's network"));
        assert!(problems[5].contains("arguments are not used"));
        assert_eq!(lists.config, None);
        assert_eq!(
            lists
                .init
                .unwrap()
                .iter()
                .map(|l| l.module)
                .collect::<Vec<_>>(),
            ["users_groups", "ntp"]
        );
    }

    /// Review of issue 13 (6): cloud-init's stock lists (Ubuntu's, from its
    /// config/cloud.cfg.tmpl) give no warning but for the modules wisp lacks (final review,
    /// 10): runcmd listed in cloud_config_modules, and the several cloud-init names of one
    /// wisp module (resizefs, update_hostname), are not worth one.
    #[test]
    fn cloud_inits_stock_lists_warn_only_about_what_wisp_lacks() {
        let (lists, problems) = read(
            "cloud_init_modules: [seed_random, bootcmd, write_files, growpart, resizefs, \
             disk_setup, mounts, set_hostname, update_hostname, update_etc_hosts, ca_certs, \
             rsyslog, users_groups, ssh]\n\
             cloud_config_modules: [wireguard, snap, ubuntu_autoinstall, ssh_import_id, \
             keyboard, locale, set_passwords, grub_dpkg, apt_pipelining, apt_configure, \
             ubuntu_pro, ntp, timezone, disable_ec2_metadata, runcmd, byobu]\n\
             cloud_final_modules: [package_update_upgrade_install, fan, landscape, lxd, \
             ubuntu_drivers, write_files_deferred, puppet, chef, ansible, mcollective, \
             salt_minion, reset_rmc, scripts_vendor, scripts_per_once, scripts_per_boot, \
             scripts_per_instance, scripts_user, ssh_authkey_fingerprints, keys_to_console, \
             install_hotplug, phone_home, final_message, power_state_change]\n",
        );
        let lacking: Vec<&str> = problems
            .iter()
            .filter(|p| p.contains("not supported by wisp"))
            .map(|p| p.split('"').nth(1).unwrap_or_default())
            .collect();
        assert_eq!(lacking, NOT_IN_WISP, "{problems:#?}");
        assert_eq!(problems.len(), NOT_IN_WISP.len(), "{problems:#?}");
        // Every wisp module runs, as without lists.
        let mut got = names(&lists);
        let mut all: Vec<&str> = MODULES.iter().map(|m| m.info().name).collect();
        got.sort_unstable();
        all.sort_unstable();
        assert_eq!(got, all);
        // write_files (before users_groups in cloud-init's list) runs after the users.
        let got = names(&lists);
        let at = |m: &str| got.iter().position(|n| *n == m);
        assert!(at("users_groups") < at("write_files"), "{got:?}");
        // Review of issue 13 (final, 1): the final stage's order is wisp's own (runcmd, listed
        // in cloud_config_modules, after the packages and the deferred files, as cloud-init's
        // scripts_user runs its script).
        let finals = |names: Vec<&'static str>| -> Vec<&'static str> {
            names
                .into_iter()
                .filter(|n| super::super::info_default(n).stage == Stage::Final)
                .collect()
        };
        assert_eq!(finals(got), finals(names(&ModuleLists::default())));
    }

    /// Review of issue 13 (5): a list cannot put a module before one it needs in the same
    /// stage: the order is kept, with a warning.
    #[test]
    fn a_list_cannot_order_a_module_before_one_it_needs() {
        let (lists, problems) = read(
            "cloud_init_modules: [ssh, set_passwords, users-groups]\n\
             cloud_final_modules: [runcmd, write_files_deferred, package_update_upgrade_install]\n",
        );
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(
            problems[0]
                .starts_with("cloud_init_modules: set_passwords is listed before users_groups"),
            "{problems:#?}"
        );
        assert!(problems[1].starts_with("cloud_init_modules: ssh is listed before users_groups"));
        assert!(problems[2].contains("write_files_deferred is listed before package_update"));
        assert!(problems[3].contains("runcmd is listed before package_update"));
        let got = names(&lists);
        let at = |m: &str| got.iter().position(|n| *n == m).unwrap();
        assert!(at("users_groups") < at("ssh"), "{got:?}");
        assert!(at("users_groups") < at("set_passwords"), "{got:?}");
        assert!(at("ssh") < at("ssh_host_keys"), "{got:?}");
        assert!(
            at("package_update_upgrade_install") < at("runcmd"),
            "{got:?}"
        );
        assert!(at("runcmd") < at("write_files_deferred"), "{got:?}");
        // In order: no warning.
        let (_, problems) = read("cloud_init_modules: [users-groups, ssh]\n");
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
