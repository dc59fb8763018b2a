//! From the model to what every BSD renders alike: kernel names (NICs by MAC, cloner names for
//! bonds, VLANs and bridges), the default gateway of each family, the routes that rc files can
//! carry, the DNS servers and search domains, and a warning for everything they cannot.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::facts::OsFacts;
use super::model::*;

/// A bond as the OS's cloner takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bond {
    /// The OS's protocol word (`failover`, `lacp`…); `None` for a cloner that speaks LACP
    /// only (OpenBSD's aggr).
    pub proto: Option<&'static str>,
    pub members: Vec<String>,
    /// Further ifconfig words for the OS's knobs (`lagghash l3,l4`, `lacptimeout fast`).
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RKind {
    Physical,
    Bond(Bond),
    Vlan {
        parent: String,
        id: u16,
    },
    /// `index`: the bridge's number among bridges (OpenBSD's vport has the same one).
    Bridge {
        members: Vec<String>,
        index: usize,
    },
}

/// An interface with its kernel name.
#[derive(Debug, Clone, PartialEq)]
pub struct RIface {
    /// The config's name, for messages.
    pub config: String,
    pub name: String,
    pub kind: RKind,
    pub mtu: Option<u32>,
    pub v4: Vec<Cidr>,
    pub v6: Vec<Cidr>,
    pub dhcp4: bool,
    pub dhcp6: bool,
    pub slaac: bool,
}

impl RIface {
    pub fn has_static(&self) -> bool {
        !self.v4.is_empty() || !self.v6.is_empty()
    }
}

/// A route to render, with the interface it belongs to (OpenBSD puts it in that interface's
/// hostname.if).
#[derive(Debug, Clone, PartialEq)]
pub struct RRoute {
    pub to: Cidr,
    pub via: IpAddr,
    pub on: Option<String>,
}

#[derive(Debug, Default)]
pub struct Resolved {
    pub interfaces: Vec<RIface>,
    pub gateway4: Option<IpAddr>,
    pub gateway6: Option<IpAddr>,
    pub routes: Vec<RRoute>,
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub warnings: Vec<String>,
    /// (entry, reason): what could not be rendered.
    pub errors: Vec<(String, String)>,
}

/// resolv.conf(5): at most 3 nameservers and 6 search domains are used.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCH: usize = 6;

pub fn resolve(cfg: &NetConfig, nics: &BTreeMap<String, String>, os: &OsFacts) -> Resolved {
    let mut out = Resolved::default();
    // Kernel names: NICs by MAC, cloned interfaces numbered by kind in order of appearance.
    let mut kname: BTreeMap<String, String> = BTreeMap::new();
    let mut counters: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut bridge_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut used: Vec<String> = Vec::new();
    for i in &cfg.interfaces {
        let name = match &i.kind {
            Kind::Physical { mac: Some(mac) } => match nics.get(mac) {
                Some(n) => n.clone(),
                None => {
                    out.errors.push((
                        i.name.clone(),
                        format!(
                            "MAC {mac} matches none of this machine's interfaces; not rendered"
                        ),
                    ));
                    continue;
                }
            },
            Kind::Physical { mac: None } => {
                if nics.values().any(|n| n == &i.name) {
                    i.name.clone()
                } else {
                    out.errors.push((
                        i.name.clone(),
                        "no MAC address, and no interface of this name; not rendered".into(),
                    ));
                    continue;
                }
            }
            Kind::Bond { params, .. } => {
                let cloner = os.bond_cloner(params.mode.as_deref());
                numbered(&mut counters, cloner)
            }
            Kind::Bridge { .. } => {
                let n = numbered(&mut counters, os.bridge);
                bridge_index.insert(i.name.clone(), counters[os.bridge] - 1);
                n
            }
            Kind::Vlan { .. } => continue,
        };
        if used.contains(&name) {
            out.errors.push((
                i.name.clone(),
                format!("interface {name} is already configured by another entry; not rendered"),
            ));
            continue;
        }
        used.push(name.clone());
        kname.insert(i.name.clone(), name);
    }
    // VLANs take their parent's kernel name (a VLAN on a VLAN needs another round).
    for _ in 0..4 {
        for i in &cfg.interfaces {
            if let Kind::Vlan { parent, id } = &i.kind {
                if kname.contains_key(&i.name) {
                    continue;
                }
                if let Some(p) = kname.get(parent) {
                    let name = os.vlan_name(p, *id);
                    if check_kernel_name(&name).is_ok() && !used.contains(&name) {
                        used.push(name.clone());
                        kname.insert(i.name.clone(), name);
                    }
                }
            }
        }
    }
    for i in &cfg.interfaces {
        let Some(name) = kname.get(&i.name).cloned() else {
            if let Kind::Vlan { parent, id } = &i.kind {
                out.errors.push((
                    i.name.clone(),
                    format!("VLAN {id}: its link {parent} is not rendered (or its name is taken); not rendered"),
                ));
            }
            continue;
        };
        let members = |list: &[String], out: &mut Resolved| -> Vec<String> {
            list.iter()
                .filter_map(|m| match kname.get(m) {
                    Some(k) => Some(k.clone()),
                    None => {
                        out.errors.push((
                            i.name.clone(),
                            format!("member {m} is not rendered; left out"),
                        ));
                        None
                    }
                })
                .collect()
        };
        let kind = match &i.kind {
            Kind::Physical { .. } => RKind::Physical,
            Kind::Vlan { parent, id } => RKind::Vlan {
                parent: kname.get(parent).cloned().unwrap_or_default(),
                id: *id,
            },
            Kind::Bond { members: m, params } => {
                let members = members(m, &mut out);
                RKind::Bond(bond(os, &i.name, params, members, &mut out.warnings))
            }
            Kind::Bridge {
                members: m,
                unsupported,
            } => {
                for u in unsupported {
                    out.warnings.push(format!(
                        "{}: bridge parameter {u} has no {} rc equivalent; not rendered",
                        i.name, os.display
                    ));
                }
                RKind::Bridge {
                    members: members(m, &mut out),
                    index: bridge_index.get(&i.name).copied().unwrap_or(0),
                }
            }
        };
        let (v6, v4): (Vec<Cidr>, Vec<Cidr>) = i.addresses.iter().partition(|c| c.is_v6());
        let mut mtu = i.mtu;
        if let Some(m) = mtu {
            if m < 1280 && (!v6.is_empty() || i.dhcp6 || i.slaac) {
                out.errors.push((
                    i.name.clone(),
                    format!("MTU {m} is below IPv6's minimum of 1280; MTU not rendered"),
                ));
                mtu = None;
            }
        }
        out.interfaces.push(RIface {
            config: i.name.clone(),
            name,
            kind,
            mtu,
            v4,
            v6,
            dhcp4: i.dhcp4,
            dhcp6: i.dhcp6,
            slaac: i.slaac,
        });
    }
    let rendered = |n: &str| kname.contains_key(n);
    // Policy routing, then gateways and routes, in order of appearance.
    for i in cfg.interfaces.iter().filter(|i| rendered(&i.name)) {
        if i.policy_rules > 0 {
            out.warnings.push(format!(
                "{}: routing-policy ({} rules) has no BSD rc equivalent; dropped",
                i.name, i.policy_rules
            ));
        }
    }
    let mut candidates: Vec<(String, &'static str, IpAddr)> = Vec::new();
    let mut routes: Vec<(Option<&str>, &Route)> = Vec::new();
    for i in cfg.interfaces.iter().filter(|i| rendered(&i.name)) {
        for gw in &i.gateways {
            let key = if gw.is_ipv6() { "gateway6" } else { "gateway4" };
            candidates.push((i.name.clone(), key, *gw));
        }
        routes.extend(i.routes.iter().map(|r| (Some(i.name.as_str()), r)));
    }
    routes.extend(cfg.routes.iter().map(|r| (None, r)));
    let mut kept: Vec<(Option<&str>, &Route)> = Vec::new();
    for (on, r) in routes {
        let who = on.map(|n| format!("{n}: ")).unwrap_or_default();
        if r.table.is_some() {
            out.warnings.push(format!(
                "{who}{}: policy-routing table dropped",
                r.describe()
            ));
            continue;
        }
        if let Some(m) = r.metric {
            out.warnings.push(format!(
                "{who}{}: metric {m} not rendered (no BSD rc.conf equivalent)",
                r.describe()
            ));
        }
        if r.to.is_default() {
            candidates.push((
                on.unwrap_or("routes").to_string(),
                if r.via.is_ipv6() {
                    "gateway6"
                } else {
                    "gateway4"
                },
                r.via,
            ));
        } else {
            kept.push((on, r));
        }
    }
    for (entry, key, gw) in candidates {
        let slot = if gw.is_ipv6() {
            &mut out.gateway6
        } else {
            &mut out.gateway4
        };
        match slot {
            None => *slot = Some(gw),
            Some(first) if *first == gw => {}
            Some(first) => out.warnings.push(format!(
                "{entry}: {key} {gw}: a second default gateway of this family (the first is {first}) has no BSD rc equivalent; dropped"
            )),
        }
    }
    if kept.len() > MAX_ENTRIES {
        out.errors.push((
            "routes".into(),
            format!(
                "{} routes, more than {MAX_ENTRIES}: the rest are not rendered",
                kept.len()
            ),
        ));
        kept.truncate(MAX_ENTRIES);
    }
    for (on, r) in kept {
        // The interface whose subnet reaches the gateway, else the one the route was given on.
        let reaches = out
            .interfaces
            .iter()
            .find(|i| i.v4.iter().chain(&i.v6).any(|c| c.contains(&r.via)))
            .map(|i| i.name.clone());
        let given = on.and_then(|n| kname.get(n).cloned());
        out.routes.push(RRoute {
            to: r.to,
            via: r.via,
            on: reaches.or(given),
        });
    }
    // DNS: first appearance wins, order kept.
    let mut servers: Vec<IpAddr> = Vec::new();
    // Bounded: past MAX_ENTRIES distinct servers, the rest are dropped anyway.
    for s in &cfg.dns.servers {
        if !servers.contains(s) && servers.len() < MAX_ENTRIES {
            servers.push(*s);
        }
    }
    if servers.len() > MAX_NAMESERVERS {
        let dropped: Vec<String> = servers[MAX_NAMESERVERS..]
            .iter()
            .map(|s| s.to_string())
            .collect();
        out.warnings.push(format!(
            "nameservers: {} given, resolv.conf uses at most {MAX_NAMESERVERS}; dropped {}",
            servers.len(),
            dropped.join(", ")
        ));
        servers.truncate(MAX_NAMESERVERS);
    }
    let mut search: Vec<String> = Vec::new();
    for s in &cfg.dns.search {
        if !search.iter().any(|x| x.eq_ignore_ascii_case(s)) && search.len() < MAX_ENTRIES {
            search.push(s.clone());
        }
    }
    if search.len() > MAX_SEARCH {
        out.warnings.push(format!(
            "search: {} domains given, resolv.conf uses at most {MAX_SEARCH}; dropped {}",
            search.len(),
            search[MAX_SEARCH..].join(", ")
        ));
        search.truncate(MAX_SEARCH);
    }
    out.nameservers = servers;
    out.search = search;
    out
}

fn numbered(counters: &mut BTreeMap<&'static str, usize>, cloner: &'static str) -> String {
    let n = counters.entry(cloner).or_insert(0);
    let name = format!("{cloner}{n}");
    *n += 1;
    name
}

/// The OS's protocol and options for a bond; what has no knob is reported.
fn bond(
    os: &OsFacts,
    name: &str,
    p: &BondParams,
    members: Vec<String>,
    warnings: &mut Vec<String>,
) -> Bond {
    // Linux's default mode, when none is given, is balance-rr.
    let mode = p.mode.as_deref().unwrap_or("balance-rr");
    let proto = match os.bond_proto(mode) {
        Some(proto) => proto,
        None => {
            warnings.push(format!(
                "{name}: bond-mode {mode} has no {} equivalent; rendered as failover",
                os.display
            ));
            "failover"
        }
    };
    let mut options = Vec::new();
    let hashes = proto == "lacp" || proto == "loadbalance" || os.is_lacp_cloner(mode);
    if let (Some(h), true) = (p.hash_policy.as_deref(), hashes) {
        match os.hash_option(h) {
            Some(opt) => options.push(opt),
            None => warnings.push(format!(
                "{name}: transmit-hash-policy {h} has no {} knob; not rendered",
                os.display
            )),
        }
    }
    if let (Some("fast" | "1"), true) = (p.lacp_rate.as_deref(), mode == "802.3ad") {
        match os.lacp_fast {
            Some(opt) => options.push(opt.to_string()),
            None => warnings.push(format!(
                "{name}: lacp-rate fast has no {} knob; not rendered",
                os.display
            )),
        }
    }
    for u in &p.unsupported {
        warnings.push(format!(
            "{name}: bond parameter {u} has no BSD equivalent; not rendered"
        ));
    }
    Bond {
        proto: (!os.is_lacp_cloner(mode)).then_some(proto),
        members,
        options,
    }
}
