//! curtin/MAAS network config version 1: a `config:` list of `physical`, `bond`, `vlan`,
//! `bridge`, `route` and `nameserver` entries, addresses in each interface's `subnets`.

use yaml_serde::Value;

use super::model::*;

pub fn parse(r: &mut Reader<'_>, root: &Value, prefix: &str) -> NetConfig {
    let mut out = NetConfig::default();
    let path = join(prefix, "config");
    if root.get("config").and_then(Value::as_str) == Some("disabled") {
        out.disabled = true;
        return out;
    }
    let entries = r.list("config", &path, root.get("config"));
    for (i, e) in entries.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let label = format!("config[{i}]");
        if !e.is_mapping() {
            r.error(&label, &p, "must be a map");
            continue;
        }
        let kind = e.get("type").and_then(scalar).unwrap_or_default();
        match kind.as_str() {
            "physical" | "bond" | "vlan" | "bridge" => {
                if let Some(iface) = interface(r, e, &p, &label, &kind, &mut out.dns) {
                    if out.interfaces.iter().any(|x| x.name == iface.name) {
                        r.error(
                            &iface.name,
                            &format!("{p}.name"),
                            "a second interface of this name: ignored",
                        );
                    } else {
                        out.interfaces.push(iface);
                    }
                }
            }
            "route" => {
                if let Some(route) = route(r, e, &p, &label) {
                    out.routes.push(route);
                }
            }
            "nameserver" => {
                dns(
                    r,
                    &label,
                    &p,
                    ("address", e.get("address")),
                    e.get("search"),
                    &mut out.dns,
                );
            }
            "" => r.error(&label, &format!("{p}.type"), "missing"),
            other => r.error(
                &label,
                &format!("{p}.type"),
                format!(
                    "unknown type {}: not rendered",
                    crate::accounts::shown(other)
                ),
            ),
        }
    }
    out
}

pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Nameservers and search domains, checked, appended in order.
pub fn dns(
    r: &mut Reader<'_>,
    entry: &str,
    path: &str,
    servers: (&str, Option<&Value>),
    search: Option<&Value>,
    out: &mut Dns,
) {
    let (key, servers) = servers;
    for (i, s) in r
        .strings(entry, &format!("{path}.{key}"), servers)
        .iter()
        .enumerate()
    {
        match parse_ip(s) {
            Ok(ip) => out.servers.push(ip),
            Err(e) => r.error(entry, &format!("{path}.{key}[{i}]"), e),
        }
    }
    for (i, s) in r
        .strings(entry, &format!("{path}.search"), search)
        .into_iter()
        .enumerate()
    {
        match check_domain(&s) {
            Ok(()) => out.search.push(s),
            Err(e) => r.error(entry, &format!("{path}.search[{i}]"), e),
        }
    }
}

fn name_of(r: &mut Reader<'_>, e: &Value, p: &str, label: &str) -> Option<String> {
    let name = r.field(label, &format!("{p}.name"), e.get("name"), |s| {
        check_config_name(s).map(|()| s.to_string())
    });
    if name.is_none() && e.get("name").is_none() {
        r.error(label, &format!("{p}.name"), "missing");
    }
    name
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

fn interface(
    r: &mut Reader<'_>,
    e: &Value,
    p: &str,
    label: &str,
    kind: &str,
    dns_out: &mut Dns,
) -> Option<Interface> {
    let name = name_of(r, e, p, label)?;
    let kind = match kind {
        "physical" => {
            let mac = r.field(
                &name,
                &format!("{p}.mac_address"),
                e.get("mac_address"),
                parse_mac,
            );
            if mac.is_none() && e.get("mac_address").is_some() {
                // A bad MAC could match nothing or the wrong NIC: the entry is not rendered.
                return None;
            }
            Kind::Physical { mac }
        }
        "bond" => {
            let members = members(
                r,
                &name,
                &format!("{p}.bond_interfaces"),
                e.get("bond_interfaces"),
            );
            let params = bond_params(r, &name, &format!("{p}.params"), e.get("params"));
            Kind::Bond { members, params }
        }
        "vlan" => {
            let parent = r.field(&name, &format!("{p}.vlan_link"), e.get("vlan_link"), |s| {
                check_config_name(s).map(|()| s.to_string())
            });
            let id = r.field(&name, &format!("{p}.vlan_id"), e.get("vlan_id"), parse_vid);
            match (parent, id) {
                (Some(parent), Some(id)) => Kind::Vlan { parent, id },
                (parent, id) => {
                    if parent.is_none() && e.get("vlan_link").is_none() {
                        r.error(&name, &format!("{p}.vlan_link"), "missing");
                    }
                    if id.is_none() && e.get("vlan_id").is_none() {
                        r.error(&name, &format!("{p}.vlan_id"), "missing");
                    }
                    return None;
                }
            }
        }
        _ => {
            let members = members(
                r,
                &name,
                &format!("{p}.bridge_interfaces"),
                e.get("bridge_interfaces"),
            );
            let unsupported = bridge_params(r, &name, &format!("{p}.params"), e.get("params"));
            Kind::Bridge {
                members,
                unsupported,
            }
        }
    };
    let mut iface = Interface::new(name.clone(), kind);
    iface.mtu = r.field(&name, &format!("{p}.mtu"), e.get("mtu"), parse_mtu);
    let subnets_path = format!("{p}.subnets");
    for (j, s) in r
        .list(&name, &subnets_path, e.get("subnets"))
        .iter()
        .enumerate()
    {
        subnet(
            r,
            &name,
            &format!("{subnets_path}[{j}]"),
            s,
            &mut iface,
            dns_out,
        );
    }
    Some(iface)
}

pub fn parse_vid(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(n) if (1..=4094).contains(&n) => Ok(n),
        _ => Err(format!(
            "VLAN id {} is not in 1..=4094",
            crate::accounts::shown(s)
        )),
    }
}

/// `bond-mode`, `bond_mode` and `mode` are one key; so are `-` and `_` spellings.
fn bond_key(k: &str) -> String {
    let k = k.replace('_', "-");
    k.strip_prefix("bond-").unwrap_or(&k).to_string()
}

/// Whether a value says "nothing set" (0, false, none): not worth reporting as dropped.
pub fn is_unset(v: &Value) -> bool {
    match scalar(v) {
        Some(s) => matches!(s.as_str(), "0" | "false" | "no" | "none" | "off" | ""),
        None => matches!(v, Value::Null),
    }
}

fn bond_params(r: &mut Reader<'_>, name: &str, path: &str, v: Option<&Value>) -> BondParams {
    let mut out = BondParams::default();
    for (k, val) in r.map(name, path, v) {
        let kp = format!("{path}.{k}");
        match bond_key(&k).as_str() {
            "mode" => out.mode = r.field(name, &kp, Some(val), bond_word),
            "xmit-hash-policy" | "transmit-hash-policy" => {
                out.hash_policy = r.field(name, &kp, Some(val), bond_word)
            }
            "lacp-rate" => out.lacp_rate = r.field(name, &kp, Some(val), bond_word),
            // MAAS writes these for every bond; they say nothing.
            "slaves" | "master" => {}
            _ if is_unset(val) => {}
            _ => out.unsupported.push(unsupported(&k, val)),
        }
    }
    out
}

/// A parameter word that goes into an ifconfig line only after mapping; still, keep it short
/// and printable.
pub fn bond_word(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-._".contains(c))
    {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "{} is not a bond setting",
            crate::accounts::shown(s)
        ))
    }
}

/// `key value` for a report.
pub fn unsupported(k: &str, v: &Value) -> String {
    match scalar(v) {
        Some(s) => format!("{k} {}", crate::accounts::shown(&s).trim_matches('"')),
        None => k.to_string(),
    }
}

fn bridge_params(r: &mut Reader<'_>, name: &str, path: &str, v: Option<&Value>) -> Vec<String> {
    r.map(name, path, v)
        .into_iter()
        .filter(|(_, val)| !is_unset(val))
        .map(|(k, val)| unsupported(&k, val))
        .collect()
}

fn subnet(
    r: &mut Reader<'_>,
    name: &str,
    p: &str,
    s: &Value,
    iface: &mut Interface,
    dns_out: &mut Dns,
) {
    let kind = s.get("type").and_then(scalar).unwrap_or_default();
    match kind.as_str() {
        "dhcp" | "dhcp4" => iface.dhcp4 = true,
        "dhcp6" | "ipv6_dhcpv6-stateful" => iface.dhcp6 = true,
        "ipv6_slaac" | "ipv6_dhcpv6-stateless" => iface.slaac = true,
        "manual" => {}
        "static" | "static6" => {
            let netmask = s
                .get("netmask")
                .or_else(|| s.get("prefix"))
                .and_then(scalar);
            if let Some(c) = r.field(name, &format!("{p}.address"), s.get("address"), |a| {
                parse_cidr(a, netmask.as_deref())
            }) {
                iface.addresses.push(c);
            } else if s.get("address").is_none() {
                r.error(name, &format!("{p}.address"), "missing");
            }
            if let Some(gw) = r.field(name, &format!("{p}.gateway"), s.get("gateway"), parse_ip) {
                iface.gateways.push(gw);
            }
            let rp = format!("{p}.routes");
            for (k, rt) in r.list(name, &rp, s.get("routes")).iter().enumerate() {
                if let Some(route) = route(r, rt, &format!("{rp}[{k}]"), name) {
                    iface.routes.push(route);
                }
            }
        }
        "" => r.error(name, &format!("{p}.type"), "missing"),
        other => r.error(
            name,
            &format!("{p}.type"),
            format!("unknown subnet type {}", crate::accounts::shown(other)),
        ),
    }
    if s.get("dns_nameservers").is_some() || s.get("dns_search").is_some() {
        let mut found = Dns::default();
        // The keys differ from the nameserver entry's; read them under their own names.
        for (i, a) in r
            .strings(
                name,
                &format!("{p}.dns_nameservers"),
                s.get("dns_nameservers"),
            )
            .iter()
            .enumerate()
        {
            match parse_ip(a) {
                Ok(ip) => found.servers.push(ip),
                Err(e) => r.error(name, &format!("{p}.dns_nameservers[{i}]"), e),
            }
        }
        for (i, d) in r
            .strings(name, &format!("{p}.dns_search"), s.get("dns_search"))
            .into_iter()
            .enumerate()
        {
            match check_domain(&d) {
                Ok(()) => found.search.push(d),
                Err(e) => r.error(name, &format!("{p}.dns_search[{i}]"), e),
            }
        }
        dns_out.servers.extend(found.servers);
        dns_out.search.extend(found.search);
    }
}

/// A v1 route: `destination` (or `network` with `netmask`), `gateway`, `metric`.
fn route(r: &mut Reader<'_>, e: &Value, p: &str, entry: &str) -> Option<Route> {
    let netmask = e
        .get("netmask")
        .or_else(|| e.get("prefix"))
        .and_then(scalar);
    let (key, dest) = match (e.get("destination"), e.get("network")) {
        (Some(d), _) => ("destination", Some(d)),
        (None, Some(n)) => ("network", Some(n)),
        _ => ("destination", None),
    };
    let to = r.field(entry, &format!("{p}.{key}"), dest, |s| {
        if s == "default" {
            return parse_destination(s);
        }
        parse_cidr(s, netmask.as_deref()).map(|c| Cidr {
            addr: c.network(),
            prefix: c.prefix,
        })
    });
    let via = r.field(entry, &format!("{p}.gateway"), e.get("gateway"), parse_ip);
    if dest.is_none() {
        r.error(entry, &format!("{p}.destination"), "missing");
    }
    if e.get("gateway").is_none() {
        r.error(entry, &format!("{p}.gateway"), "missing");
    }
    let metric = r.field(entry, &format!("{p}.metric"), e.get("metric"), parse_u32);
    let via = via?;
    let to = fix_family(to?, &via);
    if to.is_v6() != via.is_ipv6() {
        r.error(
            entry,
            &format!("{p}.gateway"),
            format!("{via} is not of the family of {to}"),
        );
        return None;
    }
    Some(Route {
        to,
        via,
        metric,
        table: None,
    })
}

/// `default` reads as 0.0.0.0/0; for an IPv6 gateway it means ::/0.
pub fn fix_family(to: Cidr, via: &std::net::IpAddr) -> Cidr {
    if to.prefix == 0 && via.is_ipv6() {
        Cidr {
            addr: std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            prefix: 0,
        }
    } else {
        to
    }
}

pub fn parse_u32(s: &str) -> Result<u32, String> {
    s.trim()
        .parse::<u32>()
        .map_err(|_| format!("{} is not a number", crate::accounts::shown(s)))
}
