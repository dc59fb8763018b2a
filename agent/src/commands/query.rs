//! `wisp query`: the data cached by the last `fetch` or `init`, by key (`v1.local_hostname`,
//! `ds.meta_data.instance-id`, or a `v1` key alone: `local_hostname`).

use std::io::Write;

use anyhow::{bail, Context as _};

use super::Context;
use super::Format;
use crate::state::{self, StateDir};

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// A dotted key of the instance data.
    pub key: Option<String>,
    /// Print the whole instance data.
    #[arg(long, conflicts_with_all = ["key", "user_data", "vendor_data"])]
    pub all: bool,
    /// Print the raw user-data.
    #[arg(long, conflicts_with_all = ["key", "vendor_data"])]
    pub user_data: bool,
    /// Print the raw vendor-data.
    #[arg(long, conflicts_with = "key")]
    pub vendor_data: bool,
    /// Print the results of the last run (modules, failures, warnings).
    #[arg(long, conflicts_with_all = ["key", "all", "user_data", "vendor_data"])]
    pub results: bool,
    /// List the top-level keys.
    #[arg(long, conflicts_with_all = ["key", "all", "user_data", "vendor_data"])]
    pub list_keys: bool,
}

pub fn run(ctx: &Context, args: &QueryArgs) -> anyhow::Result<()> {
    let state = StateDir::new(&ctx.root, true);
    let no_cache = || {
        format!(
            "no cached data in {}: run `wisp fetch` or `wisp init` first",
            state.dir().display()
        )
    };
    let mut out = std::io::stdout().lock();
    if args.results {
        let results = crate::instance::InstanceState::new(state.clone())
            .results()
            .with_context(|| {
                format!(
                    "no results in {}: nothing has run yet",
                    state.dir().display()
                )
            })?;
        writeln!(out, "{}", serde_json::to_string_pretty(&results)?)?;
        return Ok(());
    }
    if args.user_data || args.vendor_data {
        let name = if args.user_data {
            state::USER_DATA
        } else {
            state::VENDOR_DATA
        };
        state.read(state::INSTANCE_DATA)?.with_context(no_cache)?;
        match state.read(name)? {
            Some(raw) => out.write_all(&raw)?,
            None => bail!("the datasource gave no {name}"),
        }
        return Ok(());
    }
    let raw = state.read(state::INSTANCE_DATA)?.with_context(no_cache)?;
    let data: serde_json::Value = serde_json::from_slice(&raw).with_context(|| {
        format!(
            "{}: not valid JSON",
            state.path(state::INSTANCE_DATA).display()
        )
    })?;
    if args.list_keys {
        if let Some(obj) = data.as_object() {
            for k in obj.keys() {
                writeln!(out, "{k}")?;
            }
        }
        return Ok(());
    }
    let value = match (&args.key, args.all) {
        (Some(key), _) => {
            lookup(&data, key).with_context(|| format!("no key {key:?} in the instance data"))?
        }
        (None, _) => &data,
    };
    match (value, ctx.format) {
        (serde_json::Value::String(s), Format::Text) => writeln!(out, "{s}")?,
        (v, _) => writeln!(out, "{}", serde_json::to_string_pretty(v)?)?,
    }
    Ok(())
}

/// Dotted lookup; a key not found at the top is tried under `v1`, as cloud-init's aliases do.
pub fn lookup<'a>(data: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    let walk = |root: &'a serde_json::Value| {
        key.split('.').try_fold(root, |v, seg| match v {
            serde_json::Value::Array(items) => items.get(seg.parse::<usize>().ok()?),
            _ => v.get(seg),
        })
    };
    walk(data).or_else(|| data.get("v1").and_then(walk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_paths_and_aliases() {
        let d = serde_json::json!({"v1": {"local_hostname": "h", "public_ssh_keys": ["a", "b"]},
                                   "ds": {"meta_data": {"instance-id": "i"}}});
        assert_eq!(lookup(&d, "v1.local_hostname").unwrap(), "h");
        assert_eq!(lookup(&d, "local_hostname").unwrap(), "h");
        assert_eq!(lookup(&d, "ds.meta_data.instance-id").unwrap(), "i");
        assert_eq!(lookup(&d, "public_ssh_keys.1").unwrap(), "b");
        assert!(lookup(&d, "nope").is_none());
    }
}
