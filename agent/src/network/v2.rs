//! Network config version 2 (netplan, as MAAS sends it): `ethernets` matched by `macaddress`,
//! `bonds`, `vlans`, `bridges`; addresses, gateways, routes and nameservers per interface.

use yaml_serde::Value;

use super::model::*;
use super::v1::{bond_word, fix_family, is_unset, join, parse_u32, parse_vid, unsupported};

pub fn parse(r: &mut Reader<'_>, root: &Value, prefix: &str) -> NetConfig {
    let mut out = NetConfig::default();
    let mut seen = 0usize;
    for section in ["ethernets", "bonds", "vlans", "bridges"] {
        let sp = join(prefix, section);
        for (name, e) in r.map(section, &sp, root.get(section)) {
            let p = format!("{sp}.{name}");
            seen += 1;
            if seen > MAX_ENTRIES {
                r.error(
                    &name,
                    &p,
                    format!("more than {MAX_ENTRIES} interfaces: the rest are not read"),
                );
                return out;
            }
            if let Err(e) = check_config_name(&name) {
                r.error(&name, &p, e);
                continue;
            }
            if !e.is_mapping() && !e.is_null() {
                r.error(&name, &p, "must be a map");
                continue;
            }
            let kind = match section {
                "ethernets" => {
                    let mp = format!("{p}.match.macaddress");
                    let m = e.get("match");
                    let mac = r.field(&name, &mp, m.and_then(|m| m.get("macaddress")), parse_mac);
                    if mac.is_none() && m.and_then(|m| m.get("macaddress")).is_some() {
                        continue;
                    }
                    Kind::Physical { mac }
                }
                "bonds" => Kind::Bond {
                    members: members(r, &name, &format!("{p}.interfaces"), e.get("interfaces")),
                    params: bond_params(r, &name, &format!("{p}.parameters"), e.get("parameters")),
                },
                "vlans" => {
                    let link = r.field(&name, &format!("{p}.link"), e.get("link"), |s| {
                        check_config_name(s).map(|()| s.to_string())
                    });
                    let id = r.field(&name, &format!("{p}.id"), e.get("id"), parse_vid);
                    for (key, v) in [("link", link.is_none()), ("id", id.is_none())] {
                        if v && e.get(key).is_none() {
                            r.error(&name, &format!("{p}.{key}"), "missing");
                        }
                    }
                    match (link, id) {
                        (Some(parent), Some(id)) => Kind::Vlan { parent, id },
                        _ => continue,
                    }
                }
                _ => Kind::Bridge {
                    members: members(r, &name, &format!("{p}.interfaces"), e.get("interfaces")),
                    unsupported: r
                        .map(&name, &format!("{p}.parameters"), e.get("parameters"))
                        .into_iter()
                        .filter(|(_, v)| !is_unset(v))
                        .map(|(k, v)| unsupported(&k, v))
                        .collect(),
                },
            };
            let mut iface = Interface::new(name.clone(), kind);
            common(r, &name, &p, e, &mut iface, &mut out.dns);
            if out.interfaces.iter().any(|x| x.name == name) {
                r.error(&name, &p, "a second interface of this name: ignored");
                continue;
            }
            out.interfaces.push(iface);
        }
    }
    out
}

fn members(r: &mut Reader<'_>, name: &str, path: &str, v: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, m) in r.strings(name, path, v).into_iter().enumerate() {
        match check_config_name(&m) {
            Ok(()) => out.push(m),
            Err(e) => r.error(name, &format!("{path}[{i}]"), e),
        }
    }
    out
}

fn bond_params(r: &mut Reader<'_>, name: &str, path: &str, v: Option<&Value>) -> BondParams {
    let mut out = BondParams::default();
    for (k, val) in r.map(name, path, v) {
        let kp = format!("{path}.{k}");
        match k.as_str() {
            "mode" => out.mode = r.field(name, &kp, Some(val), bond_word),
            "transmit-hash-policy" => out.hash_policy = r.field(name, &kp, Some(val), bond_word),
            "lacp-rate" => out.lacp_rate = r.field(name, &kp, Some(val), bond_word),
            _ if is_unset(val) => {}
            _ => out.unsupported.push(unsupported(&k, val)),
        }
    }
    out
}

/// What every v2 interface may carry.
fn common(
    r: &mut Reader<'_>,
    name: &str,
    p: &str,
    e: &Value,
    iface: &mut Interface,
    dns: &mut Dns,
) {
    iface.mtu = r.field(name, &format!("{p}.mtu"), e.get("mtu"), parse_mtu);
    iface.dhcp4 = r.flag(name, &format!("{p}.dhcp4"), e.get("dhcp4"));
    iface.dhcp6 = r.flag(name, &format!("{p}.dhcp6"), e.get("dhcp6"));
    iface.slaac = r.flag(name, &format!("{p}.accept-ra"), e.get("accept-ra"));
    let ap = format!("{p}.addresses");
    for (i, a) in r.list(name, &ap, e.get("addresses")).iter().enumerate() {
        // An address is a string, or a one-key map of it to options (label, lifetime).
        let text = match a {
            Value::Mapping(m) if m.len() == 1 => m.keys().next().and_then(scalar),
            other => scalar(other),
        };
        match text.map(|t| parse_cidr(&t, None)) {
            Some(Ok(c)) => iface.addresses.push(c),
            Some(Err(err)) => r.error(name, &format!("{ap}[{i}]"), err),
            None => r.error(name, &format!("{ap}[{i}]"), "must be an address"),
        }
    }
    for key in ["gateway4", "gateway6"] {
        if let Some(gw) = r.field(name, &format!("{p}.{key}"), e.get(key), parse_ip) {
            if gw.is_ipv6() == (key == "gateway6") {
                iface.gateways.push(gw);
            } else {
                r.error(
                    name,
                    &format!("{p}.{key}"),
                    format!("{gw} is of the other family"),
                );
            }
        }
    }
    let rp = format!("{p}.routes");
    for (i, rt) in r.list(name, &rp, e.get("routes")).iter().enumerate() {
        if let Some(route) = route(r, name, &format!("{rp}[{i}]"), rt) {
            iface.routes.push(route);
        }
    }
    iface.policy_rules = r
        .list(
            name,
            &format!("{p}.routing-policy"),
            e.get("routing-policy"),
        )
        .len();
    if let Some(ns) = e.get("nameservers") {
        super::v1::dns(
            r,
            name,
            &format!("{p}.nameservers"),
            ("addresses", ns.get("addresses")),
            ns.get("search"),
            dns,
        );
    }
}

fn route(r: &mut Reader<'_>, name: &str, p: &str, e: &Value) -> Option<Route> {
    let to = r.field(name, &format!("{p}.to"), e.get("to"), parse_destination);
    let via = r.field(name, &format!("{p}.via"), e.get("via"), parse_ip);
    for key in ["to", "via"] {
        if e.get(key).is_none() {
            r.error(name, &format!("{p}.{key}"), "missing");
        }
    }
    let metric = r.field(name, &format!("{p}.metric"), e.get("metric"), parse_u32);
    let table = r.field(name, &format!("{p}.table"), e.get("table"), parse_u32);
    let via = via?;
    let to = fix_family(to?, &via);
    if to.is_v6() != via.is_ipv6() {
        r.error(
            name,
            &format!("{p}.via"),
            format!("{via} is not of the family of {to}"),
        );
        return None;
    }
    Some(Route {
        to,
        via,
        metric,
        table,
    })
}
