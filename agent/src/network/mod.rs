//! Network configuration: MAAS's (curtin's) network config rendered into each BSD's own files.
//! The contract is `docs/network.md` of the shared tree; in short:
//!
//! - **Input**: network config version 1 or 2 (netplan), with or without a top-level
//!   `network:` key, or ConfigDrive's `network_data.json` — all read into one model
//!   ([`model::NetConfig`]). An invalid entry or field is an error naming the document, the
//!   entry, the field and (YAML) its line and column; the valid rest is still rendered.
//! - **Interfaces** are found by MAC among the machine's NICs (`nics`: lowercase MAC → kernel
//!   name) and keep their kernel names; bonds, VLANs and bridges get the OS's cloner names
//!   ([`facts`]).
//! - **Output**: [`plan`] appends to a [`Planned`] the writes of `/etc/ifconfig.IF`,
//!   `/etc/route.conf` (NetBSD), `/etc/hostname.IF`, `/etc/mygate` (OpenBSD),
//!   `/etc/resolv.conf`, and rc.conf edits (NetBSD, FreeBSD) composed with what was planned
//!   before (`Planned::current`), under module [`NAME`]; files already as rendered are not
//!   rewritten, so a rerun plans nothing. What rc files cannot express (policy routing, route
//!   tables, metrics, bond and bridge timers, a second default gateway) is a warning naming
//!   the interface and the key.
//!
//! For the boot stage (local, once per instance, before the system's network start): call
//! [`plan`] with the seed's network config and [`system_nics`], run the actions, then on
//! OpenBSD — whose rc has already run netstart — run [`netstart_argv`] of
//! `NetworkPlan::changed_interfaces` when it is not empty. Honour
//! `Config::network_config_disabled` before calling.

pub mod configdrive;
pub mod facts;
pub mod model;
pub mod nics;
pub mod render;
pub mod resolve;
pub mod v1;
pub mod v2;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;
use wisp_datasources::userdata::yaml;
use yaml_serde::Value;

use crate::modules::Planned;
use crate::plan::Action;
use crate::platform::Platform;
use crate::root::Root;
use facts::OsFacts;
use model::{NetConfig, Problem, Reader};

/// The module name actions, warnings and errors carry (and MAAS's events show).
pub const NAME: &str = "network";

/// The rc.conf that NetBSD and FreeBSD variables go to.
const RC_CONF: &str = "/etc/rc.conf";

/// What [`plan`] did, for the caller.
#[derive(Debug, Default, Clone, Serialize)]
pub struct NetworkPlan {
    /// Kernel names of the interfaces whose configuration changes (OpenBSD: re-run netstart
    /// for these).
    pub changed_interfaces: Vec<String>,
    /// Every interface the config now owns.
    pub interfaces: Vec<String>,
    /// The config said `config: disabled`, or could not be read at all.
    pub nothing_rendered: bool,
}

/// A document read into the model.
pub struct Parsed {
    /// `None` when the document is not a network config at all (or not readable).
    pub config: Option<NetConfig>,
    pub problems: Vec<Problem>,
}

enum Format {
    V1,
    V2,
    ConfigDrive,
}

/// Which format `v` is, the node the config hangs from, and that node's path.
fn detect(v: &Value) -> Option<(Format, &Value, &'static str)> {
    let (root, prefix) = match v.get("network") {
        Some(n) if n.is_mapping() => (n, "network"),
        _ => (v, ""),
    };
    if prefix.is_empty() && (v.get("links").is_some() || v.get("networks").is_some()) {
        return Some((Format::ConfigDrive, v, ""));
    }
    match root.get("version").and_then(model::scalar).as_deref() {
        Some("1") => Some((Format::V1, root, prefix)),
        Some("2") => Some((Format::V2, root, prefix)),
        Some(_) => None,
        None if root.get("config").is_some() => Some((Format::V1, root, prefix)),
        None if ["ethernets", "bonds", "vlans", "bridges"]
            .iter()
            .any(|k| root.get(k).is_some()) =>
        {
            Some((Format::V2, root, prefix))
        }
        None => None,
    }
}

/// Reads a network config of any supported format. `document` names it in messages.
pub fn parse(document: &str, raw: &[u8]) -> Parsed {
    let mut parsed = Parsed {
        config: None,
        problems: Vec::new(),
    };
    let whole = |message: String, line: Option<usize>, column: Option<usize>| Problem {
        document: document.to_string(),
        entry: "document".into(),
        path: "(document)".into(),
        line,
        column,
        message,
    };
    if raw.len() > model::MAX_BYTES {
        parsed.problems.push(whole(
            format!(
                "{} bytes, more than {}: not read",
                raw.len(),
                model::MAX_BYTES
            ),
            None,
            None,
        ));
        return parsed;
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        parsed
            .problems
            .push(whole("not valid UTF-8".into(), None, None));
        return parsed;
    };
    // JSON first (network_data.json): serde_json's errors say more about JSON than YAML's.
    let value: Value = if text.trim_start().starts_with('{') {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(j) => yaml_serde::to_value(j).unwrap_or(Value::Null),
            Err(e) => {
                parsed.problems.push(whole(
                    format!("not valid JSON: {e}"),
                    Some(e.line()),
                    Some(e.column()),
                ));
                return parsed;
            }
        }
    } else {
        match yaml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let at = e.position();
                let message = match e {
                    yaml::LoadError::Invalid { .. } => format!("not valid YAML: {e}"),
                    _ => e.to_string(),
                };
                parsed
                    .problems
                    .push(whole(message, at.map(|p| p.0), at.map(|p| p.1)));
                return parsed;
            }
        }
    };
    if value
        .get("network")
        .and_then(|n| n.get("config"))
        .and_then(Value::as_str)
        == Some("disabled")
    {
        parsed.config = Some(NetConfig {
            disabled: true,
            ..NetConfig::default()
        });
        return parsed;
    }
    let Some((format, root, prefix)) = detect(&value) else {
        parsed.problems.push(whole(
            "not a network config: no version 1 or 2, and no ConfigDrive links".into(),
            None,
            None,
        ));
        return parsed;
    };
    let mut r = Reader::new(document, text);
    let cfg = match format {
        Format::V1 => v1::parse(&mut r, root, prefix),
        Format::V2 => v2::parse(&mut r, root, prefix),
        Format::ConfigDrive => configdrive::parse(&mut r, root),
    };
    parsed.config = Some(cfg);
    parsed.problems = r.problems;
    parsed
}

/// Whether a document looks like a network config (for `wisp schema`).
pub fn looks_like(raw: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(raw) else {
        return false;
    };
    if text.starts_with("#cloud-config") {
        return false;
    }
    let value: Option<Value> = if text.trim_start().starts_with('{') {
        serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|j| yaml_serde::to_value(j).ok())
    } else {
        yaml::from_str(text).ok()
    };
    value.is_some_and(|v| v.get("network").is_some_and(Value::is_mapping) || detect(&v).is_some())
}

/// The value of `var` in an rc.conf text: its last assignment, unquoted.
fn rc_value(text: &str, var: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim_start().split_once('=')?;
            (k.trim_end() == var).then(|| {
                v.split('#')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches(|c| c == '"' || c == '\'')
                    .to_string()
            })
        })
        .next_back()
}

/// Plans the network configuration `raw` (named `source` in messages) for `platform` under
/// `root`, with the machine's NICs `nics` (MAC, lowercase → kernel name). Appends actions,
/// warnings and errors (module [`NAME`]) to `planned`; reads files as `planned` will leave
/// them. Never panics on any input; time and output are bounded by [`model::MAX_ENTRIES`].
pub fn plan(
    platform: Platform,
    root: &Root,
    source: &str,
    raw: &[u8],
    nics: &BTreeMap<String, String>,
    planned: &mut Planned,
) -> NetworkPlan {
    let mut np = NetworkPlan {
        nothing_rendered: true,
        ..NetworkPlan::default()
    };
    let Some(os) = OsFacts::of(platform) else {
        planned.warnings.push(format!(
            "{NAME}: network rendering is for the BSDs; nothing rendered on {}",
            platform.name()
        ));
        return np;
    };
    let parsed = parse(source, raw);
    for p in &parsed.problems {
        planned.error(NAME, &p.entry, p.to_string());
    }
    let Some(cfg) = parsed.config else {
        return np;
    };
    if cfg.disabled {
        // What the source asks for, not a problem.
        tracing::info!("{NAME}: {source} says config: disabled; nothing rendered");
        return np;
    }
    let mut machine = BTreeMap::new();
    for (mac, name) in nics {
        match (model::parse_mac(mac), model::check_kernel_name(name)) {
            (Ok(m), Ok(())) => {
                machine.insert(m, name.clone());
            }
            (Err(e), _) | (_, Err(e)) => planned.error(NAME, "interfaces", e),
        }
    }
    let resolved = resolve::resolve(&cfg, &machine, os);
    for (entry, reason) in &resolved.errors {
        planned.error(NAME, entry, format!("{source}: {entry}: {reason}"));
    }
    let mut warnings: Vec<String> = resolved.warnings.clone();
    // rc.conf is edited, not rewritten: one that cannot be read (a link, a FIFO, too large)
    // would be replaced by wisp's lines alone, and the machine lose its other settings.
    // OpenBSD's rendering reads and writes no rc.conf.
    let rc_now = if platform == Platform::Openbsd {
        String::new()
    } else {
        match planned.try_current_text(root, RC_CONF, None) {
            Ok(text) => text,
            Err(e) => {
                planned.error(NAME, RC_CONF, format!("{source}: not rendered: {e}"));
                return np;
            }
        }
    };
    let rendered = render::render(platform, &resolved, &|var| rc_value(&rc_now, var));
    warnings.extend(rendered.warnings.iter().cloned());
    planned
        .warnings
        .extend(warnings.into_iter().map(|w| format!("{NAME}: {w}")));
    np.nothing_rendered = false;
    let wheel = platform.backend(None).wheel();
    let changed = |name: &Option<String>, np: &mut NetworkPlan| {
        if let Some(n) = name {
            if !np.changed_interfaces.contains(n) {
                np.changed_interfaces.push(n.clone());
            }
        }
    };
    for f in &rendered.files {
        if let Some(i) = &f.interface {
            if !np.interfaces.contains(i) {
                np.interfaces.push(i.clone());
            }
        }
        if planned.current(root, &f.path).as_deref() == Some(f.content.as_bytes()) {
            continue;
        }
        planned.actions.push(Action::write(
            NAME,
            f.interface.clone().unwrap_or_else(|| f.path.clone()),
            f.path.clone(),
            f.content.clone().into_bytes(),
            f.mode,
            ("root", wheel),
            false,
        ));
        changed(&f.interface, &mut np);
    }
    if platform != Platform::Openbsd {
        let mut text = rc_now.clone();
        for v in &rendered.rc_vars {
            if let Some(i) = &v.interface {
                if !np.interfaces.contains(i) {
                    np.interfaces.push(i.clone());
                }
            }
            if let Some(t) = crate::rcconf::set_var(&text, &v.name, &v.value) {
                text = t;
                changed(&v.interface, &mut np);
            }
        }
        let keep: Vec<&str> = rendered.rc_vars.iter().map(|v| v.name.as_str()).collect();
        let owned = np.interfaces.clone();
        let mut kept = Vec::new();
        for line in text.lines() {
            match stale_of(platform, line, &owned, &keep) {
                Some(ifname) => changed(&Some(ifname), &mut np),
                None => kept.push(line),
            }
        }
        if kept.len() != text.lines().count() {
            text = kept.join("\n");
            text.push('\n');
        }
        if text != rc_now {
            planned.actions.push(Action::write(
                NAME,
                "rc.conf",
                RC_CONF,
                text.into_bytes(),
                0o644,
                ("root", wheel),
                false,
            ));
        }
    }
    np
}

/// The interface an rc.conf line configures, when that line would fight the rendered config
/// and goes: on NetBSD an `ifconfig_IF` variable (rc.d/network prefers it to
/// `/etc/ifconfig.IF`); on FreeBSD an `ifconfig_IF_aliasN` or `ifconfig_IF_ipv6` left from an
/// earlier config. `keep`: the variables just rendered.
fn stale_of(platform: Platform, line: &str, owned: &[String], keep: &[&str]) -> Option<String> {
    let (var, _) = line.trim_start().split_once('=')?;
    let var = var.trim_end();
    if keep.contains(&var) {
        return None;
    }
    let rest = var.strip_prefix("ifconfig_")?;
    owned
        .iter()
        .find(|ifname| match platform {
            Platform::Netbsd => rest == ifname.as_str(),
            Platform::Freebsd => {
                let own = ifname.replace('.', "_");
                rest.strip_prefix(own.as_str()).is_some_and(|tail| {
                    tail == "_ipv6"
                        || tail
                            .strip_prefix("_alias")
                            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
                })
            }
            _ => false,
        })
        .cloned()
}

/// `sh /etc/netstart IF…`: OpenBSD's way to (re)configure the interfaces given.
pub fn netstart_argv(interfaces: &[String]) -> Vec<String> {
    let mut argv = vec!["sh".to_string(), "/etc/netstart".to_string()];
    argv.extend(interfaces.iter().cloned());
    argv
}

/// The running system's NICs (MAC → kernel name), read with the backend's command.
pub fn system_nics(platform: Platform) -> Result<BTreeMap<String, String>, String> {
    match platform.backend(None).nic_list() {
        Some(argv) => nics::read_system(&argv),
        None => Ok(BTreeMap::new()),
    }
}

/// `wisp apply --network-config FILE [--interfaces NICS]`: plans `file` into `planned`.
/// Without `interfaces` the running system's NICs are read, and on OpenBSD acting on the host
/// itself the changed interfaces are brought up with netstart.
pub fn preview(
    root: &Root,
    platform: Platform,
    disabled_by_config: bool,
    file: &Path,
    interfaces: Option<&Path>,
    planned: &mut Planned,
) -> anyhow::Result<NetworkPlan> {
    if disabled_by_config {
        planned.warnings.push(format!(
            "{NAME}: wisp.yaml says network: {{config: disabled}}; nothing rendered"
        ));
        return Ok(NetworkPlan {
            nothing_rendered: true,
            ..NetworkPlan::default()
        });
    }
    let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let machine = match interfaces {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let (m, errors) = nics::parse_map(&text, platform)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            for e in errors {
                planned.error(NAME, "interfaces", format!("{}: {e}", p.display()));
            }
            m
        }
        None => system_nics(platform).unwrap_or_else(|e| {
            planned.error(
                NAME,
                "interfaces",
                format!("cannot read this machine's interfaces ({e}); give --interfaces"),
            );
            BTreeMap::new()
        }),
    };
    let np = plan(
        platform,
        root,
        &file.display().to_string(),
        &raw,
        &machine,
        planned,
    );
    let live = interfaces.is_none() && root.path("/") == Path::new("/");
    if live && platform == Platform::Openbsd && !np.changed_interfaces.is_empty() {
        planned.actions.push(Action::exec(
            NAME,
            "netstart",
            netstart_argv(&np.changed_interfaces),
        ));
    }
    Ok(np)
}

#[cfg(test)]
mod tests;
