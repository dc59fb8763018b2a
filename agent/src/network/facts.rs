//! What differs between the BSDs' network setups, as data: cloner names, bond protocols and
//! knobs (lagg(4) on NetBSD and FreeBSD, trunk(4) and aggr(4) on OpenBSD), VLAN naming.

use crate::platform::Platform;

pub struct OsFacts {
    /// For messages ("NetBSD").
    pub display: &'static str,
    /// The bond cloner, and the one for 802.3ad when it differs (OpenBSD's aggr).
    pub bond: &'static str,
    pub lacp_bond: &'static str,
    pub bridge: &'static str,
    /// Input bond mode → the OS's protocol word.
    pub modes: &'static [(&'static str, &'static str)],
    /// Input hash policy → the OS's option words; empty when the OS has no knob.
    pub hashes: &'static [(&'static str, &'static str)],
    /// The option words for a fast LACP rate, if the OS has them.
    pub lacp_fast: Option<&'static str>,
    /// FreeBSD names a VLAN `<parent>.<vid>`; the others `vlan<vid>`.
    pub vlan_dotted: bool,
}

pub const NETBSD: OsFacts = OsFacts {
    display: "NetBSD",
    bond: "lagg",
    lacp_bond: "lagg",
    bridge: "bridge",
    // lagg(4) on NetBSD: failover, loadbalance, lacp (no roundrobin, no broadcast).
    modes: &[
        ("active-backup", "failover"),
        ("802.3ad", "lacp"),
        ("balance-xor", "loadbalance"),
    ],
    // NetBSD's lagg hashes on its own; no knob.
    hashes: &[],
    lacp_fast: None,
    vlan_dotted: false,
};

pub const FREEBSD: OsFacts = OsFacts {
    display: "FreeBSD",
    bond: "lagg",
    lacp_bond: "lagg",
    bridge: "bridge",
    modes: &[
        ("active-backup", "failover"),
        ("802.3ad", "lacp"),
        ("balance-xor", "loadbalance"),
        ("balance-rr", "roundrobin"),
        ("broadcast", "broadcast"),
    ],
    // ifconfig(8) lagghash: l2, l3, l4.
    hashes: &[
        ("layer2", "lagghash l2"),
        ("layer2+3", "lagghash l2,l3"),
        ("layer3+4", "lagghash l3,l4"),
        ("encap2+3", "lagghash l2,l3"),
        ("encap3+4", "lagghash l3,l4"),
    ],
    lacp_fast: Some("lacp_fast_timeout"),
    vlan_dotted: true,
};

pub const OPENBSD: OsFacts = OsFacts {
    display: "OpenBSD",
    bond: "trunk",
    lacp_bond: "aggr",
    bridge: "veb",
    // trunk(4) protocols; 802.3ad goes to aggr(4), which speaks only LACP.
    modes: &[
        ("active-backup", "failover"),
        ("802.3ad", "lacp"),
        ("balance-xor", "loadbalance"),
        ("balance-rr", "roundrobin"),
        ("broadcast", "broadcast"),
    ],
    hashes: &[],
    // aggr(4): lacptimeout fast|slow.
    lacp_fast: Some("lacptimeout fast"),
    vlan_dotted: false,
};

impl OsFacts {
    pub fn of(p: Platform) -> Option<&'static OsFacts> {
        match p {
            Platform::Netbsd => Some(&NETBSD),
            Platform::Freebsd => Some(&FREEBSD),
            Platform::Openbsd => Some(&OPENBSD),
            Platform::Linux => None,
        }
    }

    pub fn is_lacp_cloner(&self, mode: &str) -> bool {
        mode == "802.3ad" && self.lacp_bond != self.bond
    }

    pub fn bond_cloner(&self, mode: Option<&str>) -> &'static str {
        if self.is_lacp_cloner(mode.unwrap_or("")) {
            self.lacp_bond
        } else {
            self.bond
        }
    }

    pub fn bond_proto(&self, mode: &str) -> Option<&'static str> {
        self.modes.iter().find(|(m, _)| *m == mode).map(|(_, p)| *p)
    }

    pub fn hash_option(&self, policy: &str) -> Option<String> {
        self.hashes
            .iter()
            .find(|(h, _)| *h == policy)
            .map(|(_, o)| o.to_string())
    }

    pub fn vlan_name(&self, parent: &str, id: u16) -> String {
        if self.vlan_dotted {
            format!("{parent}.{id}")
        } else {
            format!("vlan{id}")
        }
    }
}
