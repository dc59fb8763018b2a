//! The layers of cloud-config a machine gets, merged as cloud-init merges them: the system
//! configuration (wisp.yaml's cloud-config keys) lowest, vendor-data over it, user-data on top.
//! Maps merge key by key, recursively; anything else is taken from the higher layer.

use yaml_serde::{Mapping, Value};

use crate::platform::Platform;

/// `high` over `low`: keys of `high` win; maps present in both are merged the same way.
pub fn merge_over(high: &Mapping, low: &Mapping) -> Mapping {
    let mut out = low.clone();
    for (k, v) in high {
        let merged = match (out.get(k), v) {
            (Some(Value::Mapping(l)), Value::Mapping(h)) => Value::Mapping(merge_over(h, l)),
            _ => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    out
}

/// The configuration to apply, and what was dropped on the way.
pub struct Layered {
    pub config: Mapping,
    pub notes: Vec<String>,
}

/// Merges the three layers. Vendor-data can be turned off by user-data
/// (`vendor_data: {enabled: false}`); on the BSDs its `runcmd` is dropped, because MAAS's are
/// Linux commands (netplan clean-ups) that would fail or do harm there.
pub fn layer(
    system: &Mapping,
    vendor: Option<&Mapping>,
    user: &Mapping,
    platform: Platform,
) -> Layered {
    let mut notes = Vec::new();
    let vendor_enabled = user
        .get("vendor_data")
        .and_then(|v| v.get("enabled"))
        .and_then(super::lenient::yaml11_bool)
        .unwrap_or(true);
    let mut config = system.clone();
    if let Some(v) = vendor {
        if vendor_enabled {
            let mut v = v.clone();
            if platform != Platform::Linux && v.remove("runcmd").is_some() {
                notes.push("vendor-data runcmd ignored: MAAS's commands are for Linux".into());
            }
            config = merge_over(&v, &config);
        } else {
            notes.push("vendor-data disabled by user-data (vendor_data.enabled: false)".into());
        }
    }
    config = merge_over(user, &config);
    Layered { config, notes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Mapping {
        yaml_serde::from_str(s).unwrap()
    }

    #[test]
    fn user_over_vendor_over_system() {
        let l = layer(
            &m("manage_etc_hosts: true\nntp: {servers: [a]}"),
            Some(&m("ntp: {pools: [p]}\nsystem_info: {default_user: {name: ubuntu}}\nruncmd: [netplan apply]")),
            &m("ntp: {servers: [b]}\nhostname: h"),
            Platform::Netbsd,
        );
        assert_eq!(
            l.config,
            m("manage_etc_hosts: true\nntp: {servers: [b], pools: [p]}\nsystem_info: {default_user: {name: ubuntu}}\nhostname: h")
        );
        assert_eq!(l.notes.len(), 1);
    }

    #[test]
    fn linux_keeps_vendor_runcmd_and_user_can_turn_vendor_data_off() {
        let l = layer(
            &Mapping::new(),
            Some(&m("runcmd: [x]")),
            &Mapping::new(),
            Platform::Linux,
        );
        assert_eq!(l.config, m("runcmd: [x]"));
        let l = layer(
            &Mapping::new(),
            Some(&m("ntp: {}")),
            &m("vendor_data: {enabled: false}"),
            Platform::Openbsd,
        );
        assert!(l.config.get("ntp").is_none());
    }
}
