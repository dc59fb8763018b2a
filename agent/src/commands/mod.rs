//! One module per command.

pub mod apply;
pub mod clean;
pub mod curtin_hook;
pub mod fetch;
pub mod init;
pub mod query;
pub mod schema;
pub mod status;

use std::path::PathBuf;

use crate::platform::Platform;
use crate::root::Root;

/// How commands print what they report (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// What every command gets from the global flags.
#[derive(Debug, Clone)]
pub struct Context {
    pub config_path: Option<PathBuf>,
    pub root: Root,
    pub platform: Option<Platform>,
    pub dry_run: bool,
    pub format: Format,
    /// Stand-ins for the outputs of the disk tools (`--disks FILE`, with --dry-run only).
    pub disks: Option<PathBuf>,
}
