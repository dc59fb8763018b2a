//! `wisp clean [--logs] [--seed]`: forget everything wisp did, so that an image can be
//! captured or a run repeated: the state under /var/db/wisp (instance, markers, cache, queue,
//! scripts); with `--logs` the log; with `--seed` the seeds too.

use std::path::PathBuf;

use anyhow::Context as _;

use super::Context;
use crate::log::LOG_FILE;
use crate::state::STATE_DIR;

#[derive(Debug, clap::Args)]
pub struct CleanArgs {
    /// Remove /var/log/wisp.log too.
    #[arg(long)]
    pub logs: bool,
    /// Remove the seeds under /var/db/wisp/seed too.
    #[arg(long)]
    pub seed: bool,
}

pub fn run(ctx: &Context, args: &CleanArgs) -> anyhow::Result<u8> {
    let dir = ctx.root.path(STATE_DIR);
    let mut doomed: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if e.file_name() == "seed" && !args.seed {
                continue;
            }
            doomed.push(e.path());
        }
    }
    doomed.sort();
    if args.logs {
        let log = ctx.root.path(LOG_FILE);
        if log.exists() {
            doomed.push(log);
        }
    }
    for p in &doomed {
        if ctx.dry_run {
            outln!("would remove {}", p.display());
            continue;
        }
        let meta = std::fs::symlink_metadata(p).with_context(|| p.display().to_string())?;
        if meta.is_dir() {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        }
        .with_context(|| format!("removing {}", p.display()))?;
        outln!("removed {}", p.display());
    }
    Ok(0)
}
