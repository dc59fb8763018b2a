//! The cloud-config modules, one per file. Each reads the cloud-config and the system's current
//! state and plans actions; nothing here runs a tool or writes a file.

pub mod bootcmd;
pub mod ca_certs;
pub mod final_message;
pub mod growpart;
pub mod hostname;
pub mod keys_to_console;
pub mod locale;
pub mod ntp;
pub mod packages;
pub mod phone_home;
pub mod power_state;
pub mod random_seed;
pub mod rsyslog;
pub mod runcmd;
pub mod script;
pub mod scripts_user;
pub mod selection;
pub mod set_passwords;
pub mod ssh;
pub mod ssh_host_keys;
pub mod timezone;
pub mod users_groups;
pub mod write_files;

use serde::Serialize;

use crate::accounts::Accounts;
use crate::cloudconfig::model::{CloudConfig, UserSpec};
use crate::plan::Action;
use crate::platform::Backend;
use crate::root::Root;

/// When a module runs (the boot flow's stages). Modules of every stage are not all written yet.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Local,
    Network,
    Final,
}

/// How often a module runs.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Frequency {
    PerInstance,
    PerBoot,
    Once,
}

/// What modules read.
pub struct Inputs<'a> {
    pub config: &'a CloudConfig,
    /// The datasource's public keys: they go to the default user.
    pub metadata_keys: &'a [String],
    /// `default_user` from wisp's configuration.
    pub configured_default_user: Option<&'a UserSpec>,
    pub backend: &'a dyn Backend,
    pub accounts: &'a Accounts,
    pub root: &'a Root,
    /// Stand-ins for the read-only probes (disk tools, `pkg query`: `--probes FILE`, formerly
    /// `--disks`), or why the file cannot be read.
    pub disks: Option<&'a Result<crate::platform::disks::Probe, String>>,
}

/// A problem with one item of one module: recorded, and the rest goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemError {
    pub module: &'static str,
    pub item: String,
    pub reason: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Planned {
    pub actions: Vec<Action>,
    pub warnings: Vec<String>,
    pub errors: Vec<ItemError>,
    /// Generated passwords, for the console once they are set (never the log).
    #[serde(skip)]
    pub random_passwords: Vec<(String, crate::plan::Secret)>,
    /// The last planned write of each path, for [`Planned::current`].
    #[serde(skip)]
    writes: std::cell::RefCell<WriteIndex>,
}

/// Where the last write of each path is in `actions`: a scan of every action per lookup made
/// 50,000 `write_files` take quadratic time. Modules only push actions, so the index catches up
/// on the new ones when asked; the one way to take actions out, [`Planned::retain_actions`],
/// starts it over.
#[derive(Debug, Default)]
struct WriteIndex {
    /// How many actions were indexed.
    seen: usize,
    last: std::collections::HashMap<String, usize>,
}

impl Planned {
    /// A file as it will be when the actions planned so far have run: the last planned write
    /// of it, else what is on disk. Modules that edit a shared file (rc.conf) read it here, so
    /// their edits compose instead of overwriting each other. What is on disk is read confined
    /// to the root and bounded ([`crate::rootfs::read`]): a link, a FIFO, a device or a huge
    /// file is an error; from `home` down (a user's home) no link at all is followed.
    pub fn try_current(
        &self,
        root: &Root,
        path: &str,
        home: Option<&str>,
    ) -> Result<Option<Vec<u8>>, String> {
        match self.last_write(path) {
            Some(c) => Ok(Some(c)),
            None => crate::rootfs::read(root, path, home),
        }
    }

    /// [`Planned::try_current`] as text; a missing file is empty.
    pub fn try_current_text(
        &self,
        root: &Root,
        path: &str,
        home: Option<&str>,
    ) -> Result<String, String> {
        Ok(self
            .try_current(root, path, home)?
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default())
    }

    /// [`Planned::try_current`] for files wisp rewrites whole, whatever was there (ntp.conf,
    /// the hostname file, the network files it renders): one that cannot be read safely counts
    /// as missing, and the write that follows replaces it (by rename, never through it). A file
    /// wisp *edits* (rc.conf, sshd_config) must be read with [`Planned::try_current_text`] and
    /// left alone when that fails: built on "", the edit would replace the file by wisp's own
    /// lines. A link there is refused rather than followed: the write renames over the link,
    /// so editing its target would need the target's path resolved inside the root first.
    pub fn current(&self, root: &Root, path: &str) -> Option<Vec<u8>> {
        self.try_current(root, path, None)
            .inspect_err(|e| tracing::warn!("{e}"))
            .ok()
            .flatten()
    }

    /// Keeps the actions `keep` says yes to (the only way to take actions out): the index of
    /// planned writes starts over.
    pub fn retain_actions(&mut self, keep: impl FnMut(&Action) -> bool) {
        self.actions.retain(keep);
        *self.writes.get_mut() = WriteIndex::default();
    }

    /// The content of the last planned write of `path`.
    fn last_write(&self, path: &str) -> Option<Vec<u8>> {
        let mut index = self.writes.borrow_mut();
        if index.seen > self.actions.len() {
            // Taken out other than by retain_actions: start over rather than be wrong.
            *index = WriteIndex::default();
        }
        for (i, a) in self.actions.iter().enumerate().skip(index.seen) {
            if let Action::Write { path: p, .. } = a {
                index.last.insert(p.clone(), i);
            }
        }
        index.seen = self.actions.len();
        match self.actions.get(*index.last.get(path)?) {
            Some(Action::Write { content, .. }) => Some(content.clone()),
            _ => None,
        }
    }

    pub fn current_text(&self, root: &Root, path: &str) -> String {
        self.current(root, path)
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default()
    }

    /// The plan for people, one action a line, then its problems (`--dry-run`).
    pub fn print(&self) {
        for a in &self.actions {
            outln!("{:<13} {}", a.module(), a.describe());
        }
        self.print_problems();
        if self.actions.is_empty() {
            outln!("nothing to do");
        }
    }

    pub fn print_problems(&self) {
        for w in &self.warnings {
            outln!("warning: {w}");
        }
        for e in &self.errors {
            outln!("error: {}: {}: {}", e.module, e.item, e.reason);
        }
    }

    pub fn error(&mut self, module: &'static str, item: &str, reason: impl Into<String>) {
        self.errors.push(ItemError {
            module,
            item: item.to_string(),
            reason: reason.into(),
        });
    }
}

/// A module's name, stage, frequency and the cloud-config keys it reads: as shown in plans and
/// used by the boot flow.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ModuleInfo {
    pub name: &'static str,
    pub stage: Stage,
    pub frequency: Frequency,
    /// The cloud-config keys it reads.
    pub keys: &'static [&'static str],
}

/// A cloud-config module: what it is, and how it plans its part of a document.
pub trait Module: Sync {
    fn info(&self) -> ModuleInfo;
    fn plan(&self, inp: &Inputs<'_>, run: &mut PlanRun<'_>, out: &mut Planned);
}

/// The modules, in the order they run by default: the one list the boot stages, `wisp apply`
/// and the plans read, through [`infos`] (the module lists of [`selection`] may leave some out,
/// reorder them or change their frequency).
pub static MODULES: &[&dyn Module] = &[
    // First of the config modules: the seed goes in before anything that needs entropy.
    &random_seed::RandomSeedModule,
    &bootcmd::Bootcmd,
    &scripts_user::Boothooks,
    &growpart::GrowpartModule,
    &hostname::Hostname,
    // As in cloud-init's cloud_init_modules: trust anchors before anything fetches over TLS
    // (packages, scripts), log forwarding before the users.
    &ca_certs::CaCertsModule,
    &rsyslog::RsyslogModule,
    &users_groups::UsersGroups,
    // cloud_config_modules: locale before set_passwords.
    &locale::Locale,
    &set_passwords::SetPasswords,
    &ssh::Ssh,
    &ssh_host_keys::SshHostKeys,
    &write_files::WriteFiles,
    &ntp::NtpModule,
    &timezone::Timezone,
    // cloud-init's cloud_final_modules order: packages first, so that deferred files (a
    // package's configuration) are written over what the package installed, and runcmd and
    // the user's scripts can use them.
    &packages::PackagesModule,
    &write_files::WriteFilesDeferred,
    &runcmd::Runcmd,
    &scripts_user::ScriptsUser,
    &keys_to_console::KeysToConsole,
    // cloud-init's order: after the keys are shown, before the final message and power_state.
    &phone_home::PhoneHomeModule,
    &final_message::FinalMessage,
    &power_state::PowerStateModule,
];

/// Whether module `name` runs commands the user wrote (runcmd, user scripts, bootcmd,
/// boothooks). Such a module is marked done *before* it runs — a command that was cut short is
/// not run a second time, as in cloud-init — where the others (users, files) are marked only
/// once they succeeded, and run again after a failure or a crash.
pub fn runs_user_commands(name: &str) -> bool {
    [
        runcmd::NAME,
        scripts_user::NAME,
        bootcmd::NAME,
        scripts_user::BOOTHOOK,
    ]
    .contains(&name)
}

/// Whether module `name` does what only a new instance may have done to it: deleting the
/// image's host keys, growing the root, powering off. Such a module runs only when the instance
/// is new; on an instance that booted before (a machine deployed by an older wisp, which had no
/// marker for it) it is marked done without running ([`crate::engine::settle_known_instance`]).
pub fn only_on_new_instance(name: &str) -> bool {
    [
        ssh_host_keys::NAME,
        growpart::NAME,
        power_state::NAME,
        // Telling a third party that a new instance is up: not again after an upgrade.
        phone_home::NAME,
    ]
    .contains(&name)
}

/// Whether a failed action of module `name` is a warning, not a failure: the module is done
/// all the same and not tried again. cloud-init's cc_phone_home logs a failed POST and goes on.
pub fn failures_are_warnings(name: &str) -> bool {
    name == phone_home::NAME
}

/// The modules whose actions module `name` plans as part of its own work: users_groups sets its
/// new users' passwords through set_passwords. Such a module ends (reports its finish, and is
/// marked done) only once those actions have run too, and is not marked done when they failed.
pub fn includes(name: &str) -> &'static [&'static str] {
    if name == users_groups::NAME {
        &[set_passwords::NAME]
    } else {
        &[]
    }
}

/// The [`ModuleInfo`] of every module that runs, in the order they run, with the frequency
/// they run at: as the module lists say ([`selection`]), else [`MODULES`] as they are.
pub fn infos() -> Vec<ModuleInfo> {
    selection::selected()
        .into_iter()
        .map(|(name, frequency)| ModuleInfo {
            frequency,
            ..info_default(name)
        })
        .collect()
}

/// Whether module `name` runs (the module lists may leave it out).
pub fn is_selected(name: &str) -> bool {
    selection::selected().iter().any(|(n, _)| *n == name)
}

/// Everything a cloud-config asks for, planned in module order.
pub struct Plan {
    /// The users that will be managed (refused ones are in the errors).
    pub users: Vec<users_groups::User>,
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
    pub planned: Planned,
}

/// What the user-data carried besides cloud-config, and who the instance is.
pub struct Extras<'a> {
    pub parts: &'a [wisp_datasources::userdata::Part],
    pub instance_id: &'a str,
    pub local_hostname: Option<&'a str>,
    /// The modules this boot retries for the instance (an earlier boot started them and they
    /// did not finish): a module whose files are right already still runs the tool that makes
    /// them take effect (a rehash, a reload), which the earlier run may not have reached.
    pub retried: &'a [String],
}

impl Extras<'_> {
    /// Whether `module` is retried in this boot.
    pub fn is_retry(&self, module: &str) -> bool {
        self.retried.iter().any(|m| m == module)
    }
}

/// Top-level groups and their members.
pub type Groups = std::collections::BTreeMap<String, Vec<String>>;

/// What modules of one planning pass share: the users that users_groups manages (ssh keys,
/// passwords and files in homes act on them).
pub struct PlanRun<'a> {
    pub extras: &'a Extras<'a>,
    pub users: Option<(Vec<users_groups::User>, Groups)>,
}

impl PlanRun<'_> {
    /// The managed users: as users_groups planned them, or (when it was not planned in this
    /// pass) as it would, without its actions.
    pub fn managed(&mut self, inp: &Inputs<'_>) -> Vec<users_groups::User> {
        if self.users.is_none() {
            let (all, groups) = users_groups::normalize(inp);
            let managed = users_groups::plan(inp, &all, &groups, &mut Planned::default());
            self.users = Some((managed, groups));
        }
        self.users.as_ref().map(|u| u.0.clone()).unwrap_or_default()
    }

    /// Regular users' home directories, where files are written without following links and
    /// no parent directory is made: the managed users' that will have a home, and the existing
    /// accounts' from the first regular uid on. A system account's home (OpenBSD `www`'s
    /// /var/www, NetBSD `man`'s /usr/share/man) is an ordinary directory for write_files; links
    /// and hard links that another user could plant are refused there all the same (rootfs
    /// follows no link in a directory that is not root's alone).
    pub fn homes(&mut self, inp: &Inputs<'_>) -> Vec<String> {
        let first_regular = inp.backend.facts().first_regular_uid;
        let mut homes: Vec<String> = self
            .managed(inp)
            .iter()
            .filter(|u| !(u.system || u.no_create_home))
            .filter(|u| {
                inp.accounts
                    .user(&u.name)
                    .is_none_or(|a| a.uid >= first_regular)
            })
            .map(|u| u.homedir.clone())
            .collect();
        homes.extend(
            inp.accounts
                .users
                .iter()
                .filter(|u| u.uid >= first_regular)
                .map(|u| u.home.clone())
                // nobody (65534) has /nonexistent.
                .filter(|h| h != "/nonexistent" && crate::rootfs::check_home(h).is_ok()),
        );
        homes
    }
}

/// Plans the modules that `wanted` picks, in module order.
pub fn plan_modules(
    inp: &Inputs<'_>,
    extras: &Extras<'_>,
    mut planned: Planned,
    wanted: impl Fn(&ModuleInfo) -> bool,
) -> Plan {
    let mut run = PlanRun {
        extras,
        users: None,
    };
    for info in infos() {
        let Some(m) = MODULES.iter().find(|m| m.info().name == info.name) else {
            continue;
        };
        if wanted(&info) {
            m.plan(inp, &mut run, &mut planned);
        }
    }
    let (users, groups) = run.users.unwrap_or_default();
    Plan {
        users,
        groups,
        planned,
    }
}

/// A module's stage and frequency by the name its actions carry (its frequency as the module
/// lists give it).
pub fn info(module: &str) -> ModuleInfo {
    let mut info = info_default(module);
    if let Some((_, f)) = selection::selected()
        .into_iter()
        .find(|(n, _)| *n == module)
    {
        info.frequency = f;
    }
    info
}

/// A module's own stage and frequency, whatever the module lists say.
pub fn info_default(module: &str) -> ModuleInfo {
    MODULES
        .iter()
        .map(|m| m.info())
        .find(|m| m.name == module)
        .unwrap_or(ModuleInfo {
            name: "unknown",
            stage: Stage::Network,
            frequency: Frequency::PerInstance,
            keys: &[],
        })
}

/// What modules' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// For modules' tests: plans `doc` with `plan` for `platform` against the files of `root`
    /// (a throwaway directory), and carries out its writes and removals there (as apply would,
    /// without the tools), so that a second call shows what a rerun does.
    pub(crate) fn plan_in(
        platform: crate::platform::Platform,
        root: &std::path::Path,
        doc: &str,
        plan: impl Fn(&Inputs<'_>, &mut Planned),
    ) -> Planned {
        let map: yaml_serde::Mapping = yaml_serde::from_str(doc).expect("a test document");
        let mut r = crate::cloudconfig::lenient::Reader::default();
        let cc = CloudConfig::read(&mut r, &map);
        let backend = platform.backend(None);
        let accounts = Accounts::default();
        let root_dir = Root::new(root);
        let inp = Inputs {
            config: &cc,
            metadata_keys: &[],
            configured_default_user: None,
            backend: backend.as_ref(),
            accounts: &accounts,
            root: &root_dir,
            disks: None,
        };
        let mut out = Planned::default();
        plan(&inp, &mut out);
        for a in &out.actions {
            match a {
                Action::Write { path, content, .. } => {
                    let p = root_dir.path(path);
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    std::fs::write(p, content).unwrap();
                }
                Action::Remove { path, .. } => {
                    let _ = std::fs::remove_file(root_dir.path(path));
                }
                _ => {}
            }
        }
        out
    }

    /// The text a plan writes to `path`.
    pub(crate) fn written(p: &Planned, path: &str) -> Option<String> {
        p.actions.iter().rev().find_map(|a| match a {
            Action::Write {
                path: w, content, ..
            } if w == path => Some(String::from_utf8_lossy(content).into_owned()),
            _ => None,
        })
    }

    /// The argv of a plan's tool runs.
    pub(crate) fn argvs(p: &Planned) -> Vec<Vec<String>> {
        p.actions
            .iter()
            .filter_map(|a| match a {
                Action::Exec { argv, .. } => Some(argv.clone()),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod current_tests {
    use super::*;

    fn write(path: &str, content: &str) -> Action {
        Action::write(
            "write_files",
            path,
            path,
            content.into(),
            0o644,
            ("root", "wheel"),
            false,
        )
    }

    #[test]
    fn the_last_planned_write_wins_and_the_index_follows_changes() {
        let root = Root::new("/nonexistent-wisp-test-root");
        let mut p = Planned::default();
        assert_eq!(p.current(&root, "/etc/a"), None);
        p.actions.push(write("/etc/a", "one"));
        p.actions.push(write("/etc/b", "b"));
        assert_eq!(p.current(&root, "/etc/a").as_deref(), Some(&b"one"[..]));
        p.actions.push(write("/etc/a", "two"));
        assert_eq!(p.current(&root, "/etc/a").as_deref(), Some(&b"two"[..]));
        // Actions taken out (as keep_due does): looked up again, not stale.
        p.retain_actions(|a| matches!(a, Action::Write { content, .. } if content != b"two"));
        assert_eq!(p.current(&root, "/etc/a").as_deref(), Some(&b"one"[..]));
        p.retain_actions(|a| matches!(a, Action::Write { path, .. } if path != "/etc/a"));
        p.actions.push(write("/etc/c", "c"));
        assert_eq!(p.current(&root, "/etc/a"), None);
        assert_eq!(p.current(&root, "/etc/b").as_deref(), Some(&b"b"[..]));
        // Taken out, then as many pushed again: the new ones are seen.
        p.retain_actions(|a| matches!(a, Action::Write { path, .. } if path != "/etc/b"));
        p.actions.push(write("/etc/d", "d"));
        assert_eq!(p.current(&root, "/etc/d").as_deref(), Some(&b"d"[..]));
        assert_eq!(p.current(&root, "/etc/b"), None);
    }

    /// Seconds to plan `n` files, each looked up first as `write_files` does.
    fn time_planning(n: usize) -> f64 {
        let root = Root::new("/nonexistent-wisp-test-root");
        let mut p = Planned::default();
        let start = std::time::Instant::now();
        for i in 0..n {
            let path = format!("/etc/f{i}");
            assert!(p.last_write(&path).is_none());
            p.actions.push(write(&path, "x"));
        }
        assert!(p.current(&root, "/etc/f0").is_some());
        start.elapsed().as_secs_f64()
    }

    #[test]
    fn looking_up_planned_files_is_linear() {
        // 4 times the files cost 4 times as long with an index, 16 times with a scan of every
        // action per lookup. The sizes alternate, so that load from the tests running beside
        // this one weighs on both alike, and the best of 5 runs of each is taken; the small
        // one has a floor of 5 ms (a scan takes several times that already at 5,000 files).
        let (mut small, mut large) = (f64::MAX, f64::MAX);
        for _ in 0..5 {
            small = small.min(time_planning(5_000));
            large = large.min(time_planning(20_000));
        }
        let small = small.max(0.005);
        assert!(
            large < 10.0 * small,
            "5,000 files {small:.4}s, 20,000 {large:.4}s"
        );
    }
}
