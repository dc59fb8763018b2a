//! ConfigDrive's `openstack/latest/network_data.json`: `links` (NICs by MAC, bonds, VLANs),
//! `networks` (addresses and routes on a link) and `services` (DNS).

use yaml_serde::Value;

use super::model::*;
use super::v1::{bond_word, is_unset, parse_vid, unsupported};

/// Link types that are a NIC as the guest sees it.
const PHYSICAL: &[&str] = &[
    "phy",
    "ethernet",
    "vif",
    "ovs",
    "bridge",
    "tap",
    "hw_veb",
    "hyperv",
    "vhostuser",
    "dvs",
    "macvtap",
    "vrouter",
];

pub fn parse(r: &mut Reader<'_>, root: &Value) -> NetConfig {
    let mut out = NetConfig::default();
    for (i, l) in r
        .list("links", "links", root.get("links"))
        .iter()
        .enumerate()
    {
        let p = format!("links[{i}]");
        let Some(name) = r.field(&p, &format!("{p}.id"), l.get("id"), |s| {
            check_config_name(s).map(|()| s.to_string())
        }) else {
            if l.get("id").is_none() {
                r.error(&p, &format!("{p}.id"), "missing");
            }
            continue;
        };
        let kind = l.get("type").and_then(scalar).unwrap_or_default();
        let kind = if PHYSICAL.contains(&kind.as_str()) {
            let mp = format!("{p}.ethernet_mac_address");
            let Some(mac) = r.field(&name, &mp, l.get("ethernet_mac_address"), parse_mac) else {
                if l.get("ethernet_mac_address").is_none() {
                    r.error(&name, &mp, "missing");
                }
                continue;
            };
            Kind::Physical { mac: Some(mac) }
        } else if kind == "bond" {
            let mut params = BondParams::default();
            let mp = format!("{p}.bond_mode");
            params.mode = r.field(&name, &mp, l.get("bond_mode"), bond_word);
            let hp = format!("{p}.bond_xmit_hash_policy");
            params.hash_policy = r.field(&name, &hp, l.get("bond_xmit_hash_policy"), bond_word);
            if let Value::Mapping(m) = l {
                for (k, v) in m {
                    let k = scalar(k).unwrap_or_default();
                    let known = [
                        "id",
                        "type",
                        "bond_links",
                        "bond_mode",
                        "bond_xmit_hash_policy",
                    ];
                    if k.starts_with("bond_") && !known.contains(&k.as_str()) && !is_unset(v) {
                        params.unsupported.push(unsupported(&k, v));
                    }
                }
            }
            let mut members = Vec::new();
            let bp = format!("{p}.bond_links");
            for (j, m) in r
                .strings(&name, &bp, l.get("bond_links"))
                .into_iter()
                .enumerate()
            {
                match check_config_name(&m) {
                    Ok(()) => members.push(m),
                    Err(e) => r.error(&name, &format!("{bp}[{j}]"), e),
                }
            }
            Kind::Bond { members, params }
        } else if kind == "vlan" {
            let link = r.field(&name, &format!("{p}.vlan_link"), l.get("vlan_link"), |s| {
                check_config_name(s).map(|()| s.to_string())
            });
            let id = r.field(&name, &format!("{p}.vlan_id"), l.get("vlan_id"), parse_vid);
            match (link, id) {
                (Some(parent), Some(id)) => Kind::Vlan { parent, id },
                _ => {
                    r.error(&name, &p, "a VLAN needs vlan_link and vlan_id");
                    continue;
                }
            }
        } else {
            r.error(
                &name,
                &format!("{p}.type"),
                format!("unknown link type {}", crate::accounts::shown(&kind)),
            );
            continue;
        };
        let mut iface = Interface::new(name.clone(), kind);
        iface.mtu = r.field(&name, &format!("{p}.mtu"), l.get("mtu"), parse_mtu);
        if out.interfaces.iter().any(|x| x.name == name) {
            r.error(&name, &p, "a second link of this id: ignored");
            continue;
        }
        out.interfaces.push(iface);
    }
    for (i, n) in r
        .list("networks", "networks", root.get("networks"))
        .iter()
        .enumerate()
    {
        network(r, &format!("networks[{i}]"), n, &mut out);
    }
    services(r, "services", root.get("services"), &mut out.dns);
    out
}

fn services(r: &mut Reader<'_>, path: &str, v: Option<&Value>, dns: &mut Dns) {
    for (i, s) in r.list(path, path, v).iter().enumerate() {
        if s.get("type").and_then(scalar).as_deref() == Some("dns") {
            let p = format!("{path}[{i}].address");
            if let Some(ip) = r.field(path, &p, s.get("address"), parse_ip) {
                dns.servers.push(ip);
            }
        }
    }
}

fn network(r: &mut Reader<'_>, p: &str, n: &Value, out: &mut NetConfig) {
    let link = n.get("link").and_then(scalar).unwrap_or_default();
    let Some(idx) = out.interfaces.iter().position(|x| x.name == link) else {
        r.error(
            p,
            &format!("{p}.link"),
            format!("no link {}", crate::accounts::shown(&link)),
        );
        return;
    };
    let kind = n.get("type").and_then(scalar).unwrap_or_default();
    let mut gateways = Vec::new();
    let mut routes = Vec::new();
    match kind.as_str() {
        "ipv4_dhcp" | "dhcp4" => out.interfaces[idx].dhcp4 = true,
        "ipv6_dhcp" | "ipv6_dhcpv6-stateful" => out.interfaces[idx].dhcp6 = true,
        "ipv6_slaac" | "ipv6_dhcpv6-stateless" => out.interfaces[idx].slaac = true,
        "ipv4" | "ipv6" => {
            let mask = n
                .get("netmask")
                .and_then(scalar)
                .map(|m| v6_mask(&m).unwrap_or(m));
            let ap = format!("{p}.ip_address");
            match r.field(&link, &ap, n.get("ip_address"), |a| {
                parse_cidr(a, mask.as_deref())
            }) {
                Some(c) => out.interfaces[idx].addresses.push(c),
                None if n.get("ip_address").is_none() => r.error(&link, &ap, "missing"),
                None => {}
            }
            for (j, rt) in r
                .list(&link, &format!("{p}.routes"), n.get("routes"))
                .iter()
                .enumerate()
            {
                let rp = format!("{p}.routes[{j}]");
                let mask = rt
                    .get("netmask")
                    .and_then(scalar)
                    .map(|m| v6_mask(&m).unwrap_or(m));
                let to = r.field(&link, &format!("{rp}.network"), rt.get("network"), |s| {
                    parse_cidr(s, mask.as_deref()).map(|c| Cidr {
                        addr: c.network(),
                        prefix: c.prefix,
                    })
                });
                let via = r.field(&link, &format!("{rp}.gateway"), rt.get("gateway"), parse_ip);
                let (Some(to), Some(via)) = (to, via) else {
                    continue;
                };
                if to.is_v6() != via.is_ipv6() {
                    r.error(&link, &format!("{rp}.gateway"), "not of the route's family");
                } else if to.is_default() {
                    gateways.push(via);
                } else {
                    routes.push(Route {
                        to,
                        via,
                        metric: None,
                        table: None,
                    });
                }
            }
        }
        other => r.error(
            &link,
            &format!("{p}.type"),
            format!("unknown network type {}", crate::accounts::shown(other)),
        ),
    }
    out.interfaces[idx].gateways.extend(gateways);
    out.interfaces[idx].routes.extend(routes);
    services(r, &format!("{p}.services"), n.get("services"), &mut out.dns);
}

/// An IPv6 netmask (`ffff:ffff:ffff:ffff::`) as a prefix length.
fn v6_mask(m: &str) -> Option<String> {
    let mask: std::net::Ipv6Addr = m.parse().ok()?;
    let bits = u128::from(mask);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then(|| ones.to_string())
}
