//! `wisp curtin-hook`: run by curtin in MAAS's ephemeral environment (through
//! `curtin/curtin-hooks` on the image's EFI partition) with `CONFIG` and `TARGET_MOUNT_POINT`;
//! writes the seed the first boot reads. A bad or partial config is an error on curtin's log and
//! a non-zero exit, so the deployment fails visibly.

use std::path::PathBuf;

use anyhow::Context as _;

use super::Context;
use crate::curtin::{seed_from_config, SEED_ON_ESP};

#[derive(Debug, clap::Args)]
pub struct CurtinHookArgs {
    /// curtin's merged config (default: $CONFIG).
    #[arg(long, value_name = "FILE")]
    pub curtin_config: Option<PathBuf>,
    /// Where the partition holding `curtin/` is mounted (default: $TARGET_MOUNT_POINT).
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
}

pub fn run(_ctx: &Context, args: &CurtinHookArgs) -> anyhow::Result<u8> {
    let from_env = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let config = args
        .curtin_config
        .clone()
        .or_else(|| from_env("CONFIG"))
        .context("no curtin config: set CONFIG or --curtin-config")?;
    let target = args
        .target
        .clone()
        .or_else(|| from_env("TARGET_MOUNT_POINT"))
        .context("no target: set TARGET_MOUNT_POINT or --target")?;
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("reading {}", config.display()))?;
    let seed = seed_from_config(&text, &config.display().to_string())?;
    for w in &seed.warnings {
        tracing::warn!("{w}");
    }
    let path = target.join(SEED_ON_ESP);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // FAT has no permissions to set; the first boot moves the seed to a root-only place.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, seed.to_yaml()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    let network = match &seed.network {
        Some(n) => format!(
            "network config version {} ({} entries)",
            n["version"].as_u64().unwrap_or(0),
            n["config"].as_sequence().map_or(0, |c| c.len())
        ),
        None => "no network config".into(),
    };
    outln!(
        "wisp curtin-hook: seed written to {}: MAAS {}, reporting to {}, {network}, package proxy {}",
        path.display(),
        seed.metadata_url,
        seed.endpoint.as_deref().unwrap_or("(the metadata URL)"),
        seed.package_proxy
            .as_deref()
            .map_or("none".to_string(), crate::plan::redact_userinfo)
    );
    Ok(0)
}
