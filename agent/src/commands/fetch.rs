//! `wisp fetch`: ask the datasource and show what it returns (secrets redacted), caching it in
//! the state directory for `wisp query`.

use std::sync::Arc;

use anyhow::Context as _;
use serde_json::json;
use wisp_datasources::http::{HttpClient, HttpOptions};
use wisp_datasources::oauth::SkewStore;
use wisp_datasources::userdata::{self, DecodeOptions, Decoded};
use wisp_datasources::Metadata;

use super::Context;
use super::Format;
use crate::config;
use crate::sources;
use crate::state::{self, FileSkewStore, StateDir};

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Do not fetch user-data. On MAAS, fetching user-data is what marks the machine Deployed.
    #[arg(long)]
    pub metadata_only: bool,
}

pub fn run(ctx: &Context, args: &FetchArgs) -> anyhow::Result<()> {
    let loaded = config::load(&ctx.root, ctx.config_path.as_deref())?;
    tracing::debug!(files = ?loaded.files, "configuration read");
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let state = StateDir::new(&ctx.root, ctx.dry_run);
    // Before any request: on MAAS the user-data GET marks the machine Deployed, and a run that
    // cannot then save what it fetched must not get that far.
    state.check_writable().with_context(|| {
        format!(
            "cannot keep wisp's state in {} (a real run needs root; --dry-run fetches without \
             saving, and without the user-data)",
            state.dir().display()
        )
    })?;
    // Under --dry-run the state is read-only: the known skew is used, a new one only kept in
    // memory.
    let skew: Arc<dyn SkewStore> = Arc::new(FileSkewStore::load(state.clone()));
    let client = HttpClient::new(&HttpOptions::default())?;
    let mut ds = sources::select(&loaded.config, &ctx.root, &client, skew)?;
    let md = ds
        .fetch_metadata()
        .with_context(|| format!("datasource {}", ds.name()))?;
    // Under --dry-run nothing may change, and on MAAS the user-data GET changes the machine's
    // state to Deployed: skip it.
    let skip_user_data = args.metadata_only || ctx.dry_run;
    let user_data = if skip_user_data {
        None
    } else {
        ds.fetch_user_data()
            .with_context(|| format!("datasource {}: user-data", ds.name()))?
    };
    let instance = md.instance_data();
    // Vendor-data is not filtered by launch index: cloud-init filters only user-data.
    let decode = |raw: &[u8], name: &str, launch_index: Option<i64>| {
        let opts = DecodeOptions {
            fetcher: Some(&client),
            instance_data: Some(&instance),
            max_bytes: loaded
                .config
                .max_user_data_bytes
                .unwrap_or(wisp_datasources::http::DEFAULT_MAX_BYTES),
            include_timeout: sources::include_timeout(&loaded.config),
            launch_index,
            ..Default::default()
        };
        userdata::decode(raw, name, &opts)
    };
    let vendor = md
        .vendor_data
        .as_deref()
        .map(|v| decode(v, "vendor-data", None));
    let user = user_data
        .as_deref()
        .map(|u| decode(u, "user-data", md.launch_index()));

    state::save_fetched(
        &state,
        &md,
        (!skip_user_data).then_some(user_data.as_deref()),
    )?;

    let report = json!({
        "datasource": md.datasource,
        "source": md.source,
        "instance_id": md.instance_id,
        "local_hostname": md.local_hostname,
        "public_keys": md.public_keys,
        "network_config": md.network_config,
        "vendor_data": vendor.as_ref().map(summary),
        "user_data": if skip_user_data { json!("not fetched") } else { json!(user.as_ref().map(summary)) },
    });
    match ctx.format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print_text(&md, vendor.as_ref(), user.as_ref(), skip_user_data),
    }
    Ok(())
}

/// Part names, kinds and sizes, the top-level keys and the problems: never the content, which
/// may hold passwords.
fn summary(d: &Decoded) -> serde_json::Value {
    json!({
        "parts": d.parts,
        "cloud_config_keys": d.cloud_config.keys().filter_map(|k| k.as_str()).collect::<Vec<_>>(),
        "problems": d.problems,
    })
}

fn print_text(md: &Metadata, vendor: Option<&Decoded>, user: Option<&Decoded>, skipped: bool) {
    outln!("datasource:     {} ({})", md.datasource, md.source);
    outln!("instance-id:    {}", md.instance_id);
    outln!(
        "local-hostname: {}",
        md.local_hostname.as_deref().unwrap_or("(none)")
    );
    outln!("public-keys:    {}", md.public_keys.len());
    for k in &md.public_keys {
        outln!("  {k}");
    }
    if md.network_config.is_some() {
        outln!("network-config: present");
    }
    print_decoded("vendor-data", vendor, false);
    print_decoded("user-data", user, skipped);
}

fn print_decoded(label: &str, d: Option<&Decoded>, skipped: bool) {
    if skipped {
        outln!("{label}:      not fetched");
        return;
    }
    let Some(d) = d else {
        outln!("{label}:{}(none)", " ".repeat(15 - label.len()));
        return;
    };
    outln!(
        "{label}:{}{} part(s)",
        " ".repeat(15 - label.len()),
        d.parts.len()
    );
    for p in &d.parts {
        outln!("  {} {} ({} bytes)", p.kind.as_str(), p.name, p.size);
    }
    let keys: Vec<&str> = d.cloud_config.keys().filter_map(|k| k.as_str()).collect();
    if !keys.is_empty() {
        outln!("  cloud-config keys: {}", keys.join(", "));
    }
    for pr in &d.problems {
        outln!("  problem: {}: {}", pr.part, pr.message);
    }
}
