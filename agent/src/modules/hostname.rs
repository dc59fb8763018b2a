//! `hostname`, `fqdn`, `prefer_fqdn_over_hostname`, `preserve_hostname` and `manage_etc_hosts`
//! (cloud-init's cc_set_hostname and cc_update_etc_hosts). The name is validated (RFC 1123),
//! kept where the OS keeps it, and set on the running system when wisp acts on the host itself.
//! Stage local (and again when the datasource's name is known), once per instance.

use super::{Frequency, Inputs, Planned, Stage};
use crate::plan::Action;
use crate::platform::HostnameStore;
use serde::Serialize;

pub const NAME: &str = "hostname";
pub const STAGE: Stage = Stage::Network;
pub const FREQUENCY: Frequency = Frequency::PerInstance;

/// The managed block in /etc/hosts, so an operator's own lines are never touched.
const HOSTS_BEGIN: &str = "# BEGIN wisp manage_etc_hosts";
const HOSTS_END: &str = "# END wisp manage_etc_hosts";

/// RFC 1123: labels of letters, digits and inner hyphens, 1–63 characters; 253 in all.
pub fn check_hostname(name: &str) -> Result<(), String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err(format!(
            "{} is not 1 to 253 characters long",
            crate::accounts::shown(name)
        ));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(format!(
                "{name:?}: label {label:?} is not a valid RFC 1123 hostname label"
            ));
        }
    }
    Ok(())
}

/// The (fqdn, short name) to set, from cloud-config and the datasource's local-hostname.
pub fn names(inp: &Inputs<'_>, local_hostname: Option<&str>) -> Option<(String, String)> {
    let cc = inp.config;
    let fqdn = cc
        .fqdn
        .clone()
        .or_else(|| cc.hostname.clone().filter(|h| h.contains('.')))
        .or_else(|| {
            local_hostname
                .map(str::to_string)
                .filter(|h| h.contains('.'))
        });
    let short = cc
        .hostname
        .clone()
        .or_else(|| local_hostname.map(str::to_string))
        .or_else(|| fqdn.clone())
        .map(|h| h.split('.').next().unwrap_or(&h).to_string())?;
    let fqdn = fqdn.unwrap_or_else(|| short.clone());
    Some((fqdn, short))
}

pub fn plan(inp: &Inputs<'_>, local_hostname: Option<&str>, out: &mut Planned) {
    if inp.config.preserve_hostname == Some(true) {
        return;
    }
    let Some((fqdn, short)) = names(inp, local_hostname) else {
        return;
    };
    for n in [&fqdn, &short] {
        if let Err(e) = check_hostname(n) {
            out.error(
                NAME,
                &crate::accounts::shown(n),
                format!("hostname refused: {e}"),
            );
            return;
        }
    }
    let b = inp.backend;
    let prefer_fqdn = inp
        .config
        .prefer_fqdn_over_hostname
        .unwrap_or(b.prefers_fqdn());
    let name = if prefer_fqdn { &fqdn } else { &short };
    let mut changed = false;
    match b.hostname_store() {
        HostnameStore::RcConf(file) => {
            let current = match out.try_current_text(inp.root, file, None) {
                Ok(c) => c,
                Err(e) => {
                    out.error(NAME, name, format!("not set: {e}"));
                    return;
                }
            };
            if let Some(text) = crate::rcconf::set_var(&current, "hostname", name) {
                out.actions.push(Action::write(
                    NAME,
                    name.as_str(),
                    file,
                    text.into_bytes(),
                    0o644,
                    ("root", b.wheel()),
                    false,
                ));
                changed = true;
            }
        }
        HostnameStore::File(file) => {
            let current = out.current_text(inp.root, file);
            if current.trim() != name.as_str() {
                out.actions.push(Action::write(
                    NAME,
                    name.as_str(),
                    file,
                    format!("{name}\n").into_bytes(),
                    0o644,
                    ("root", b.wheel()),
                    false,
                ));
                changed = true;
            }
        }
    }
    // The running system's name, only when wisp acts on the host itself.
    if changed && inp.root.path("/") == std::path::Path::new("/") {
        out.actions.push(Action::exec(
            NAME,
            name.as_str(),
            vec!["hostname".into(), name.clone()],
        ));
    }
    match inp.config.manage_etc_hosts {
        Some(EtcHosts::Template) | Some(EtcHosts::Localhost) => etc_hosts(inp, &fqdn, &short, out),
        _ => {}
    }
}

fn etc_hosts(inp: &Inputs<'_>, fqdn: &str, short: &str, out: &mut Planned) {
    let current = match out.try_current_text(inp.root, "/etc/hosts", None) {
        Ok(c) => c,
        Err(e) => {
            out.error(NAME, "/etc/hosts", format!("not changed: {e}"));
            return;
        }
    };
    let names = if fqdn == short {
        short.to_string()
    } else {
        format!("{fqdn} {short}")
    };
    let mut block = String::from(HOSTS_BEGIN);
    block.push('\n');
    for addr in inp.backend.loopback() {
        block.push_str(&format!("{addr}\t{names}\n"));
    }
    block.push_str(HOSTS_END);
    block.push('\n');
    // Replace our block if present, else append it; leave every other line as it is.
    let text = match (current.find(HOSTS_BEGIN), current.find(HOSTS_END)) {
        (Some(start), Some(end)) if end > start => {
            let after = current[end..]
                .find('\n')
                .map(|i| end + i + 1)
                .unwrap_or(current.len());
            format!("{}{block}{}", &current[..start], &current[after..])
        }
        _ => {
            let mut t = current.clone();
            if !t.is_empty() && !t.ends_with('\n') {
                t.push('\n');
            }
            t.push_str(&block);
            t
        }
    };
    if text != current {
        out.actions.push(Action::write(
            NAME,
            "/etc/hosts",
            "/etc/hosts",
            text.into_bytes(),
            0o644,
            ("root", inp.backend.wheel()),
            false,
        ));
    }
}

// Reading the module's part of a cloud-config document, with cloud-init's leniency
// (`cloudconfig::lenient`).

/// `manage_etc_hosts`: `true`/`template` write it, `localhost` only the loopback line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EtcHosts {
    Off,
    Template,
    Localhost,
}

/// The module in the registry ([`super::MODULES`]).
pub struct Hostname;

impl super::Module for Hostname {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &[
                "hostname",
                "fqdn",
                "prefer_fqdn_over_hostname",
                "preserve_hostname",
                "manage_etc_hosts",
            ],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        plan(inp, run.extras.local_hostname, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1123() {
        for ok in ["node1", "node1.maas", "a-b.example.com", "x1.", "9host"] {
            assert!(check_hostname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            "x-",
            "a..b",
            "under_score",
            "sp ace",
            "semi;colon",
            &"a".repeat(64),
            "é",
        ] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
    }
}
