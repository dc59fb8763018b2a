//! The BSDs' own files from a resolved config: NetBSD ifconfig.if(5), rc.conf(5) and
//! route.conf(5); FreeBSD rc.conf(5) variables; OpenBSD hostname.if(5) and mygate(5); and
//! resolv.conf(5) for all three. Pure: the caller compares with what is on disk.

use std::net::IpAddr;

use super::resolve::{RIface, RKind, RRoute, Resolved};
use crate::platform::Platform;

/// A whole file wisp owns.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub path: String,
    pub content: String,
    pub mode: u32,
    /// The interface the file configures, if any.
    pub interface: Option<String>,
}

/// An rc.conf variable to set, and the interface it configures, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct RcVar {
    pub name: String,
    pub value: String,
    pub interface: Option<String>,
}

#[derive(Debug, Default)]
pub struct Rendered {
    pub files: Vec<File>,
    pub rc_vars: Vec<RcVar>,
    pub warnings: Vec<String>,
}

impl Rendered {
    fn file(&mut self, path: String, lines: &[String], mode: u32, interface: Option<&str>) {
        let mut content = lines.join("\n");
        content.push('\n');
        self.files.push(File {
            path,
            content,
            mode,
            interface: interface.map(str::to_string),
        });
    }

    fn var(&mut self, name: impl Into<String>, value: impl Into<String>, interface: Option<&str>) {
        self.rc_vars.push(RcVar {
            name: name.into(),
            value: value.into(),
            interface: interface.map(str::to_string),
        });
    }
}

/// `rc_value`: a variable's value in rc.conf as it is now (the image's settings).
pub fn render(
    platform: Platform,
    r: &Resolved,
    rc_value: &dyn Fn(&str) -> Option<String>,
) -> Rendered {
    let mut out = match platform {
        Platform::Netbsd => netbsd(r, rc_value),
        Platform::Freebsd => freebsd(r, rc_value),
        Platform::Openbsd => openbsd(r),
        Platform::Linux => Rendered::default(),
    };
    if let Some(lines) = resolv_conf(r) {
        out.file("/etc/resolv.conf".into(), &lines, 0o644, None);
    }
    out
}

fn resolv_conf(r: &Resolved) -> Option<Vec<String>> {
    if r.nameservers.is_empty() && r.search.is_empty() {
        return None;
    }
    let mut lines: Vec<String> = r
        .nameservers
        .iter()
        .map(|s| format!("nameserver {s}"))
        .collect();
    if !r.search.is_empty() {
        lines.push(format!("search {}", r.search.join(" ")));
    }
    Some(lines)
}

/// An MTU worth writing: 1500 is every Ethernet's default.
fn mtu(i: &RIface) -> Option<u32> {
    i.mtu.filter(|m| *m != 1500)
}

fn is_yes(v: Option<String>) -> bool {
    v.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true" | "on" | "1"))
}

fn netbsd(r: &Resolved, rc_value: &dyn Fn(&str) -> Option<String>) -> Rendered {
    let mut out = Rendered::default();
    for i in &r.interfaces {
        let mut lines = Vec::new();
        if let Some(m) = mtu(i) {
            lines.push(format!("mtu {m}"));
        }
        match &i.kind {
            RKind::Physical => {}
            RKind::Bond(b) => {
                lines.push(format!("laggproto {}", b.proto.unwrap_or("lacp")));
                lines.extend(b.members.iter().map(|m| format!("laggport {m}")));
                lines.extend(b.options.iter().cloned());
            }
            RKind::Vlan { parent, id } => lines.push(format!("vlan {id} vlanif {parent}")),
            // NetBSD's ifconfig has no bridge members: brconfig(8) adds them ($int is the
            // interface rc.d/network is configuring, per ifconfig.if(5)).
            RKind::Bridge { members, .. } => {
                if !members.is_empty() {
                    let adds: Vec<String> = members.iter().map(|m| format!("add {m}")).collect();
                    lines.push(format!("!/sbin/brconfig $int {} up", adds.join(" ")));
                }
            }
        }
        for (n, a) in i.v4.iter().enumerate() {
            let alias = if n == 0 { "" } else { " alias" };
            lines.push(format!("inet {} netmask {}{alias}", a.addr, a.netmask()));
        }
        for a in &i.v6 {
            lines.push(format!("inet6 {} prefixlen {} alias", a.addr, a.prefix));
        }
        if i.dhcp4 {
            // dhcpcd(8) also does IPv6 (router advertisements, DHCPv6) on the interface.
            lines.push("dhcp".into());
        } else if i.dhcp6 || i.slaac {
            lines.push("!/sbin/dhcpcd -6 -b $int".into());
        }
        if !i.has_static() && !i.dhcp4 && !i.dhcp6 && !i.slaac {
            lines.push("up".into());
        }
        out.file(
            format!("/etc/ifconfig.{}", i.name),
            &lines,
            0o644,
            Some(&i.name),
        );
    }
    if let Some(gw) = r.gateway4 {
        out.var("defaultroute", gw.to_string(), None);
    }
    if let Some(gw) = r.gateway6 {
        out.var("defaultroute6", gw.to_string(), None);
    }
    // The image's global dhcpcd would also take the static interfaces; their `dhcp` lines
    // start it where it is wanted.
    if r.interfaces.iter().any(RIface::has_static) && is_yes(rc_value("dhcpcd")) {
        out.var("dhcpcd", "NO", None);
    }
    let routes: Vec<String> = r
        .routes
        .iter()
        .map(|rt| match rt.to.addr {
            IpAddr::V4(_) => format!("net {} -netmask {} {}", rt.to.addr, rt.to.netmask(), rt.via),
            IpAddr::V6(_) => format!(
                "inet6 {} -prefixlen {} {}",
                rt.to.addr, rt.to.prefix, rt.via
            ),
        })
        .collect();
    if !routes.is_empty() {
        out.file("/etc/route.conf".into(), &routes, 0o644, None);
    }
    out
}

/// rc.conf variable names cannot hold a dot: FreeBSD's rc maps `em0.100` to `em0_100`.
fn rc_name(ifname: &str) -> String {
    ifname.replace('.', "_")
}

/// A list variable (cloned_interfaces, static_routes) with ours appended to the image's.
fn merged_list(now: Option<String>, ours: &[String]) -> String {
    let mut all: Vec<String> = now
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    for o in ours {
        if !all.contains(o) {
            all.push(o.clone());
        }
    }
    all.join(" ")
}

fn freebsd(r: &Resolved, rc_value: &dyn Fn(&str) -> Option<String>) -> Rendered {
    let mut out = Rendered::default();
    let mut cloned: Vec<String> = Vec::new();
    let mut vlans: Vec<(String, Vec<String>)> = Vec::new();
    for i in &r.interfaces {
        let var = format!("ifconfig_{}", rc_name(&i.name));
        let own = Some(i.name.as_str());
        match &i.kind {
            RKind::Physical => {}
            RKind::Bond(b) => {
                cloned.push(i.name.clone());
                let mut args = vec![format!("laggproto {}", b.proto.unwrap_or("lacp"))];
                args.extend(b.members.iter().map(|m| format!("laggport {m}")));
                args.extend(b.options.iter().cloned());
                out.var(
                    format!("create_args_{}", rc_name(&i.name)),
                    args.join(" "),
                    own,
                );
            }
            RKind::Bridge { members, .. } => {
                cloned.push(i.name.clone());
                if !members.is_empty() {
                    let args: Vec<String> = members.iter().map(|m| format!("addm {m}")).collect();
                    out.var(
                        format!("create_args_{}", rc_name(&i.name)),
                        args.join(" "),
                        own,
                    );
                }
            }
            RKind::Vlan { parent, id } => match vlans.iter_mut().find(|(p, _)| p == parent) {
                Some((_, ids)) => ids.push(id.to_string()),
                None => vlans.push((parent.clone(), vec![id.to_string()])),
            },
        }
        let mut aliases: Vec<String> = Vec::new();
        let mut main = if i.dhcp4 {
            aliases.extend(
                i.v4.iter()
                    .map(|a| format!("inet {} netmask {}", a.addr, a.netmask())),
            );
            "DHCP".to_string()
        } else if let Some((first, rest)) = i.v4.split_first() {
            aliases.extend(
                rest.iter()
                    .map(|a| format!("inet {} netmask {}", a.addr, a.netmask())),
            );
            format!("inet {} netmask {}", first.addr, first.netmask())
        } else {
            // Address-less, or IPv6 only: "up" also keeps ifconfig_DEFAULT="DHCP" off it.
            "up".to_string()
        };
        if let Some(m) = mtu(i) {
            main.push_str(&format!(" mtu {m}"));
        }
        out.var(var.clone(), main, own);
        if let Some((first, rest)) = i.v6.split_first() {
            out.var(
                format!("{var}_ipv6"),
                format!("inet6 {} prefixlen {}", first.addr, first.prefix),
                own,
            );
            aliases.extend(
                rest.iter()
                    .map(|a| format!("inet6 {} prefixlen {}", a.addr, a.prefix)),
            );
        } else if i.slaac || i.dhcp6 {
            out.var(format!("{var}_ipv6"), "inet6 accept_rtadv", own);
        }
        if i.dhcp6 {
            out.warnings.push(format!(
                "{}: dhcp6: FreeBSD has no DHCPv6 client in base; rendered as router advertisements (accept_rtadv)",
                i.config
            ));
        }
        for (n, a) in aliases.into_iter().enumerate() {
            out.var(format!("{var}_alias{n}"), a, own);
        }
    }
    if !cloned.is_empty() {
        let v = merged_list(rc_value("cloned_interfaces"), &cloned);
        out.var("cloned_interfaces", v, None);
    }
    for (parent, ids) in vlans {
        let var = format!("vlans_{}", rc_name(&parent));
        let v = merged_list(rc_value(&var), &ids);
        out.var(var, v, Some(&parent));
    }
    if let Some(gw) = r.gateway4 {
        out.var("defaultrouter", gw.to_string(), None);
    }
    if let Some(gw) = r.gateway6 {
        out.var("ipv6_defaultrouter", gw.to_string(), None);
    }
    for (list, prefix, v6) in [
        ("static_routes", "route_", false),
        ("ipv6_static_routes", "ipv6_route_", true),
    ] {
        let routes: Vec<&RRoute> = r.routes.iter().filter(|rt| rt.to.is_v6() == v6).collect();
        if routes.is_empty() {
            continue;
        }
        let names: Vec<String> = (0..routes.len()).map(|n| format!("net{n}")).collect();
        let v = merged_list(rc_value(list), &names);
        out.var(list, v, None);
        for (name, rt) in names.iter().zip(routes) {
            out.var(
                format!("{prefix}{name}"),
                format!("-net {} {}", rt.to, rt.via),
                None,
            );
        }
    }
    out
}

fn openbsd(r: &Resolved) -> Rendered {
    let mut out = Rendered::default();
    for i in &r.interfaces {
        let mut lines = Vec::new();
        let mut own = i.name.clone();
        match &i.kind {
            RKind::Physical => {}
            RKind::Bond(b) => {
                if let Some(proto) = b.proto {
                    lines.push(format!("trunkproto {proto}"));
                }
                lines.extend(b.members.iter().map(|m| format!("trunkport {m}")));
                lines.extend(b.options.iter().cloned());
            }
            RKind::Vlan { parent, id } => {
                lines.push(format!("vnetid {id}"));
                lines.push(format!("parent {parent}"));
            }
            // veb(4) carries no address: it goes on a vport(4) member of the same number.
            RKind::Bridge { members, index } => {
                let vport = format!("vport{index}");
                let mut veb: Vec<String> = members.iter().map(|m| format!("add {m}")).collect();
                veb.push(format!("add {vport}"));
                veb.push("up".into());
                out.file(
                    format!("/etc/hostname.{}", i.name),
                    &veb,
                    0o640,
                    Some(&i.name),
                );
                own = vport;
            }
        }
        if let Some(m) = mtu(i) {
            lines.insert(0, format!("mtu {m}"));
        }
        if i.dhcp4 {
            lines.push("inet autoconf".into());
        }
        for (n, a) in i.v4.iter().enumerate() {
            if n == 0 && !i.dhcp4 {
                lines.push(format!("inet {} {}", a.addr, a.netmask()));
            } else {
                lines.push(format!("inet alias {} {}", a.addr, a.netmask()));
            }
        }
        for a in &i.v6 {
            lines.push(format!("inet6 {} {}", a.addr, a.prefix));
        }
        if i.dhcp6 || i.slaac {
            lines.push("inet6 autoconf".into());
        }
        if i.dhcp6 {
            out.warnings.push(format!(
                "{}: dhcp6: OpenBSD has no DHCPv6 client in base; rendered as router advertisements (inet6 autoconf)",
                i.config
            ));
        }
        if !i.has_static() && !i.dhcp4 && !i.dhcp6 && !i.slaac {
            lines.push("up".into());
        }
        for rt in r
            .routes
            .iter()
            .filter(|rt| rt.on.as_deref() == Some(i.name.as_str()))
        {
            let family = if rt.to.is_v6() { " -inet6" } else { "" };
            lines.push(format!("!route -qn add{family} -net {} {}", rt.to, rt.via));
        }
        out.file(format!("/etc/hostname.{own}"), &lines, 0o640, Some(&own));
    }
    for rt in r.routes.iter().filter(|rt| rt.on.is_none()) {
        out.warnings.push(format!(
            "route {} via {}: no rendered interface reaches the gateway; not rendered",
            rt.to, rt.via
        ));
    }
    let gws: Vec<String> = [r.gateway4, r.gateway6]
        .iter()
        .flatten()
        .map(|g| g.to_string())
        .collect();
    if !gws.is_empty() {
        out.file("/etc/mygate".into(), &gws, 0o644, None);
    }
    out
}
