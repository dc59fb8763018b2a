//! The cloud-config modules, one per file. Each reads the cloud-config and the system's current
//! state and plans actions; nothing here runs a tool or writes a file.

pub mod ssh;
pub mod users_groups;

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
}

impl Planned {
    pub fn error(&mut self, module: &'static str, item: &str, reason: impl Into<String>) {
        self.errors.push(ItemError {
            module,
            item: item.to_string(),
            reason: reason.into(),
        });
    }
}
