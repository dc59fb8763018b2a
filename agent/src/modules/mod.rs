//! The cloud-config modules, one per file. Each reads the cloud-config and the system's current
//! state and plans actions; nothing here runs a tool or writes a file.

pub mod bootcmd;
pub mod hostname;
pub mod ntp;
pub mod runcmd;
pub mod script;
pub mod scripts_user;
pub mod set_passwords;
pub mod ssh;
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
}

impl Planned {
    /// A file as it will be when the actions planned so far have run: the last planned write
    /// of it, else what is on disk. Modules that edit a shared file (rc.conf) read it here, so
    /// their edits compose instead of overwriting each other.
    pub fn current(&self, root: &Root, path: &str) -> Option<Vec<u8>> {
        self.actions
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::Write {
                    path: p, content, ..
                } if p == path => Some(content.clone()),
                _ => None,
            })
            .or_else(|| std::fs::read(root.path(path)).ok())
    }

    pub fn current_text(&self, root: &Root, path: &str) -> String {
        self.current(root, path)
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default()
    }

    pub fn error(&mut self, module: &'static str, item: &str, reason: impl Into<String>) {
        self.errors.push(ItemError {
            module,
            item: item.to_string(),
            reason: reason.into(),
        });
    }
}

/// A module's name, stage and frequency, as shown in plans and used by the boot flow.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ModuleInfo {
    pub name: &'static str,
    pub stage: Stage,
    pub frequency: Frequency,
}

/// The modules, in the order they run.
pub const MODULES: &[ModuleInfo] = &[
    ModuleInfo {
        name: bootcmd::NAME,
        stage: bootcmd::STAGE,
        frequency: bootcmd::FREQUENCY,
    },
    ModuleInfo {
        name: scripts_user::BOOTHOOK,
        stage: Stage::Local,
        frequency: Frequency::PerBoot,
    },
    ModuleInfo {
        name: hostname::NAME,
        stage: hostname::STAGE,
        frequency: hostname::FREQUENCY,
    },
    ModuleInfo {
        name: users_groups::NAME,
        stage: users_groups::STAGE,
        frequency: users_groups::FREQUENCY,
    },
    ModuleInfo {
        name: set_passwords::NAME,
        stage: set_passwords::STAGE,
        frequency: set_passwords::FREQUENCY,
    },
    ModuleInfo {
        name: ssh::NAME,
        stage: ssh::STAGE,
        frequency: ssh::FREQUENCY,
    },
    ModuleInfo {
        name: write_files::NAME,
        stage: write_files::STAGE,
        frequency: write_files::FREQUENCY,
    },
    ModuleInfo {
        name: ntp::NAME,
        stage: ntp::STAGE,
        frequency: ntp::FREQUENCY,
    },
    ModuleInfo {
        name: timezone::NAME,
        stage: timezone::STAGE,
        frequency: timezone::FREQUENCY,
    },
    ModuleInfo {
        name: write_files::DEFERRED_NAME,
        stage: write_files::DEFERRED_STAGE,
        frequency: write_files::FREQUENCY,
    },
    ModuleInfo {
        name: runcmd::NAME,
        stage: runcmd::STAGE,
        frequency: runcmd::FREQUENCY,
    },
    ModuleInfo {
        name: scripts_user::NAME,
        stage: scripts_user::STAGE,
        frequency: scripts_user::FREQUENCY,
    },
];

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
}

pub fn plan_all(inp: &Inputs<'_>, extras: &Extras<'_>, mut planned: Planned) -> Plan {
    // local
    bootcmd::plan(inp, extras.instance_id, &mut planned);
    scripts_user::plan_boothooks(inp, extras.parts, &mut planned);
    // network
    let local_hostname = extras.local_hostname;
    hostname::plan(inp, local_hostname, &mut planned);
    let (all_users, groups) = users_groups::normalize(inp);
    let managed = users_groups::plan(inp, &all_users, &groups, &mut planned);
    set_passwords::plan(inp, &managed, &mut planned);
    ssh::plan(inp, &managed, &mut planned);
    let mut homes: Vec<String> = managed.iter().map(|u| u.homedir.clone()).collect();
    homes.extend(
        inp.accounts
            .users
            .iter()
            .map(|u| u.home.clone())
            .filter(|h| h.len() > 1 && h != "/nonexistent" && h != "/var/empty"),
    );
    write_files::plan(inp, false, &homes, &mut planned);
    ntp::plan(inp, &mut planned);
    timezone::plan(inp, &mut planned);
    // final
    write_files::plan(inp, true, &homes, &mut planned);
    runcmd::plan(inp, &mut planned);
    scripts_user::plan(inp, extras.parts, &mut planned);
    Plan {
        users: managed,
        groups,
        planned,
    }
}

/// A module's stage and frequency by the name its actions carry.
pub fn info(module: &str) -> ModuleInfo {
    MODULES
        .iter()
        .find(|m| m.name == module)
        .copied()
        .unwrap_or(ModuleInfo {
            name: "unknown",
            stage: Stage::Network,
            frequency: Frequency::PerInstance,
        })
}
