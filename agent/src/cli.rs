//! The command line. Global flags apply to every command.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};

use crate::commands::{self, Context, Format};
use crate::platform::Platform;
use crate::root::Root;

/// wisp: first-boot agent for BSD machines deployed by MAAS (a small cloud-init).
#[derive(Debug, Parser)]
#[command(name = "wisp", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (default /etc/wisp/wisp.yaml under --root; drop-ins from FILE.d/*.yaml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Take every path wisp reads or writes under DIR (a mounted image, a fake root).
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// The target OS (default: the running one).
    #[arg(long, global = true, value_enum)]
    pub platform: Option<Platform>,
    /// Print what would be done; change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// A YAML map of read-only probe command line to its output (or one map per OS) standing
    /// in for the machine's tools (the disk tools for `growpart`, `pkg query` for the installed
    /// packages), so that a fake root is planned for; with --dry-run only. `--disks` is its
    /// older name.
    #[arg(long = "probes", alias = "disks", global = true, value_name = "FILE")]
    pub disks: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub format: Format,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub quiet: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch metadata and user-data from the datasource and show them (secrets redacted).
    Fetch(commands::fetch::FetchArgs),
    /// Show data cached by the last fetch or init.
    Query(commands::query::QueryArgs),
    /// Run the boot stages: find the datasource, fetch, apply, tell MAAS.
    Init(commands::init::InitArgs),
    /// Show how the boot stages went (exit 0 done, 1 error, 2 degraded).
    Status(commands::status::StatusArgs),
    /// Forget the instance (state, cache, markers) so an image can be captured or a run repeated.
    Clean(commands::clean::CleanArgs),
    /// In MAAS's deployment environment (curtin): write the first boot's seed.
    CurtinHook(commands::curtin_hook::CurtinHookArgs),
    /// Apply a local cloud-config (no datasource); with --dry-run print the plan.
    Apply(commands::apply::ApplyArgs),
    /// Check cloud-config documents; report every problem with line and column.
    Schema(commands::schema::SchemaArgs),
}

impl Cli {
    /// Whether this run writes /var/log/wisp.log.
    pub fn keeps_log(&self) -> bool {
        matches!(self.command, Command::Init(_)) && !self.dry_run
    }

    pub fn log_level(&self) -> tracing::Level {
        match (self.verbose as i8) - (self.quiet as i8) {
            i8::MIN..=-2 => tracing::Level::ERROR,
            -1 => tracing::Level::WARN,
            0 => tracing::Level::INFO,
            1 => tracing::Level::DEBUG,
            _ => tracing::Level::TRACE,
        }
    }

    pub fn context(&self) -> Context {
        Context {
            config_path: self.config.clone(),
            root: Root::new(&self.root),
            platform: self.platform.or_else(Platform::detect),
            dry_run: self.dry_run,
            format: self.format,
            disks: self.disks.clone(),
        }
    }
}

/// Runs the command; the number is the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<u8> {
    let ctx = cli.context();
    // The plan's disk commands would run on this machine's disks, not the ones described.
    if ctx.disks.is_some() && !ctx.dry_run {
        anyhow::bail!(
            "--probes (--disks) stands in for the machine's tools: it is for --dry-run plans only"
        );
    }
    tracing::debug!(
        platform = ctx.platform.map(|p| p.name()).unwrap_or("unsupported"),
        root = %ctx.root.path("/").display(),
        "starting"
    );
    match &cli.command {
        Command::Fetch(args) => commands::fetch::run(&ctx, args).map(|()| 0),
        Command::Query(args) => commands::query::run(&ctx, args).map(|()| 0),
        Command::Schema(args) => commands::schema::run(&ctx, args),
        Command::Apply(args) => commands::apply::run(&ctx, args),
        Command::Init(args) => commands::init::run(&ctx, args),
        Command::Status(args) => commands::status::run(&ctx, args),
        Command::Clean(args) => commands::clean::run(&ctx, args),
        Command::CurtinHook(args) => commands::curtin_hook::run(&ctx, args),
    }
}
