//! `ntp` (cloud-init's cc_ntp) with the OS's own daemon: ntpd's ntp.conf on NetBSD and FreeBSD,
//! OpenNTPD's ntpd.conf on OpenBSD; the daemon enabled in rc.conf where it is not by default.
//! With neither servers nor pools, the OS's pool is used. Once per instance.

use super::{Frequency, Inputs, Planned, Stage};
use crate::cloudconfig::lenient::{child, describe, entries, Reader};
use crate::plan::Action;
use serde::Serialize;
use yaml_serde::Value;

pub const NAME: &str = "ntp";
pub const STAGE: Stage = Stage::Network;
pub const FREQUENCY: Frequency = Frequency::PerInstance;

pub fn plan(inp: &Inputs<'_>, out: &mut Planned) {
    let Some(ntp) = &inp.config.ntp else {
        return;
    };
    if ntp.enabled == Some(false) {
        return;
    }
    let style = inp.backend.ntp();
    let mut pools = ntp.pools.clone();
    if ntp.servers.is_empty() && pools.is_empty() {
        pools = (0..4)
            .map(|i| format!("{i}.{}", style.default_pool))
            .collect();
    }
    for s in ntp.servers.iter().chain(pools.iter()) {
        if s.is_empty()
            || s.starts_with('-')
            || s.contains(|c: char| c.is_whitespace() || c.is_control())
        {
            out.error(NAME, s, "not a server name or address");
            return;
        }
    }
    let mut text = String::from("# Written by wisp from cloud-config (ntp).\n");
    if style.openntpd {
        for s in &ntp.servers {
            text.push_str(&format!("server {s}\n"));
        }
        for p in &pools {
            text.push_str(&format!("servers {p}\n"));
        }
    } else {
        if let Some(drift) = style.driftfile {
            text.push_str(&format!("driftfile {drift}\n"));
        }
        text.push_str("restrict default limited kod nomodify notrap nopeer noquery\n");
        text.push_str("restrict -6 default limited kod nomodify notrap nopeer noquery\n");
        text.push_str("restrict 127.0.0.1\nrestrict -6 ::1\n");
        for s in &ntp.servers {
            text.push_str(&format!("server {s} iburst\n"));
        }
        for p in &pools {
            text.push_str(&format!("pool {p} iburst\n"));
        }
    }
    let wheel = inp.backend.wheel();
    if out.current_text(inp.root, style.conf) != text {
        out.actions.push(Action::write(
            NAME,
            style.conf,
            style.conf,
            text.into_bytes(),
            0o644,
            ("root", wheel),
            false,
        ));
    }
    if let Some((file, var, value)) = style.enable {
        // rc.conf is edited, not rewritten: one that cannot be read safely (a link, a FIFO)
        // is refused, never replaced by this one line.
        let current = match out.try_current_text(inp.root, file, None) {
            Ok(c) => c,
            Err(e) => {
                out.error(NAME, var, format!("not enabled: {e}"));
                return;
            }
        };
        if let Some(new) = crate::rcconf::set_var(&current, var, value) {
            out.actions.push(Action::write(
                NAME,
                var,
                file,
                new.into_bytes(),
                0o644,
                ("root", wheel),
                false,
            ));
        }
    }
}

// Reading the module's part of a cloud-config document, with cloud-init's leniency
// (`cloudconfig::lenient`).

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ntp {
    pub enabled: Option<bool>,
    pub servers: Vec<String>,
    pub pools: Vec<String>,
}

pub(crate) fn read_ntp(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<Ntp> {
    let map = match v {
        Value::Null => return Some(Ntp::default()),
        Value::Mapping(m) => m,
        other => {
            r.error(path, format!("expected a map, got {}", describe(other)));
            return None;
        }
    };
    let mut ntp = Ntp::default();
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        match key.as_str() {
            "enabled" => ntp.enabled = r.bool(&p, val),
            "servers" => ntp.servers = r.string_list_said(&p, val),
            "pools" => ntp.pools = r.string_list_said(&p, val),
            "ntp_client" | "config" => r.warn(&p, "wisp uses the system's own NTP daemon; ignored"),
            _ => r.warn(&p, "unknown key (ignored)"),
        }
    }
    Some(ntp)
}

/// The module in the registry ([`super::MODULES`]).
pub struct NtpModule;

impl super::Module for NtpModule {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["ntp"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let _ = run;
        plan(inp, out)
    }
}
