//! The one typed model every network-config format is read into (curtin/netplan v1 and v2,
//! ConfigDrive `network_data.json`), and the checks every value passes before a renderer sees
//! it: what reaches a file name, an rc.conf value or an ifconfig line is validated here.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;
use yaml_serde::Value;

use crate::cloudconfig::Positions;

/// Most interfaces, routes or list items read from one document: a hostile config of 10,000
/// entries is cut here, with an error, so rendering stays bounded.
pub const MAX_ENTRIES: usize = 256;
/// The largest document read at all.
pub const MAX_BYTES: usize = 1 << 20;

/// An address with its prefix length (`10.0.0.4/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn is_v6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = v4_mask(self.prefix);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & u32::from(mask)))
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix.min(128)))
                };
                IpAddr::V6(Ipv6Addr::from(bits & mask))
            }
        }
    }

    /// Whether `ip` is inside this subnet.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let other = Cidr {
            addr: *ip,
            prefix: self.prefix,
        };
        ip.is_ipv6() == self.is_v6() && other.network() == self.network()
    }

    pub fn is_default(&self) -> bool {
        self.prefix == 0
    }

    /// The dotted netmask of an IPv4 prefix.
    pub fn netmask(&self) -> Ipv4Addr {
        v4_mask(self.prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn v4_mask(prefix: u8) -> Ipv4Addr {
    if prefix == 0 {
        Ipv4Addr::UNSPECIFIED
    } else {
        Ipv4Addr::from(u32::MAX << (32 - u32::from(prefix.min(32))))
    }
}

/// A bond's settings, in the input's own words (mapped per OS by the renderers).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BondParams {
    /// `active-backup`, `802.3ad`, `balance-xor`, `balance-rr`, …
    pub mode: Option<String>,
    /// `layer2`, `layer2+3`, `layer3+4`, …
    pub hash_policy: Option<String>,
    /// `fast` or `slow`.
    pub lacp_rate: Option<String>,
    /// Keys given that no BSD can express (miimon, up/down delays, gratuitous ARP…).
    pub unsupported: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Kind {
    /// A NIC, found by MAC (or, with no MAC, by its kernel name).
    Physical {
        mac: Option<String>,
    },
    Bond {
        members: Vec<String>,
        params: BondParams,
    },
    Vlan {
        parent: String,
        id: u16,
    },
    Bridge {
        members: Vec<String>,
        /// Keys given that no BSD can express (STP timers, priorities…).
        unsupported: Vec<String>,
    },
}

/// A route; `table` and `metric` are kept only to be reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    pub to: Cidr,
    pub via: IpAddr,
    pub metric: Option<u32>,
    pub table: Option<u32>,
}

impl Route {
    pub fn describe(&self) -> String {
        let mut s = format!("route {} via {}", self.to, self.via);
        if let Some(t) = self.table {
            s.push_str(&format!(" in table {t}"));
        }
        s
    }
}

/// One interface of the config. `name` is the config's own name (MAAS's `eth0`, `bond0`); it
/// only ties entries together and is never given to the kernel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interface {
    pub name: String,
    pub kind: Kind,
    pub mtu: Option<u32>,
    /// Static addresses in the order given, both families.
    pub addresses: Vec<Cidr>,
    pub dhcp4: bool,
    pub dhcp6: bool,
    /// IPv6 stateless autoconfiguration (router advertisements).
    pub slaac: bool,
    /// Default gateways given on this interface (v1 subnet `gateway`, v2 `gateway4/6`).
    pub gateways: Vec<IpAddr>,
    /// Routes given on this interface.
    pub routes: Vec<Route>,
    /// How many policy-routing rules were given (reported, never rendered).
    pub policy_rules: usize,
}

impl Interface {
    pub fn new(name: String, kind: Kind) -> Interface {
        Interface {
            name,
            kind,
            mtu: None,
            addresses: Vec::new(),
            dhcp4: false,
            dhcp6: false,
            slaac: false,
            gateways: Vec::new(),
            routes: Vec::new(),
            policy_rules: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dns {
    /// In order of first appearance, duplicates kept (the resolver step removes them).
    pub servers: Vec<IpAddr>,
    pub search: Vec<String>,
}

/// A network config, whatever its format.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NetConfig {
    pub interfaces: Vec<Interface>,
    /// Routes not tied to an interface (v1 `type: route`).
    pub routes: Vec<Route>,
    pub dns: Dns,
    /// The document said `config: disabled`.
    pub disabled: bool,
}

/// Why an entry (or one field of it) was not rendered: the document, the entry, the field and,
/// for YAML, where it is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub document: String,
    pub entry: String,
    /// The field's path in the document (`network.config[2].mac_address`).
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.document)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": {}: {}", self.path, self.message)
    }
}

/// What a parser carries while it walks a document.
pub struct Reader<'a> {
    pub document: &'a str,
    positions: Positions,
    /// Entries and fields that could not be read.
    pub problems: Vec<Problem>,
}

impl<'a> Reader<'a> {
    pub fn new(document: &'a str, text: &str) -> Reader<'a> {
        Reader {
            document,
            positions: Positions::of(text),
            problems: Vec::new(),
        }
    }

    pub fn error(&mut self, entry: &str, path: &str, message: impl Into<String>) {
        let pos = self.positions.value(path);
        self.problems.push(Problem {
            document: self.document.to_string(),
            entry: entry.to_string(),
            path: path.to_string(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            message: message.into(),
        });
    }

    /// A list, cut at [`MAX_ENTRIES`] with an error; a non-list is an error and reads as empty.
    pub fn list<'v>(&mut self, entry: &str, path: &str, v: Option<&'v Value>) -> &'v [Value] {
        match v {
            None | Some(Value::Null) => &[],
            Some(Value::Sequence(s)) => {
                if s.len() > MAX_ENTRIES {
                    self.error(
                        entry,
                        path,
                        format!(
                            "{} entries, more than {MAX_ENTRIES}: only the first {MAX_ENTRIES} are read",
                            s.len()
                        ),
                    );
                    &s[..MAX_ENTRIES]
                } else {
                    s
                }
            }
            Some(_) => {
                self.error(entry, path, "must be a list");
                &[]
            }
        }
    }

    /// A list of strings, or one string (the forms cloud-init accepts for DNS keys).
    pub fn strings(&mut self, entry: &str, path: &str, v: Option<&Value>) -> Vec<String> {
        if let Some(s) = v.and_then(scalar) {
            return s
                .split([',', ' '])
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect();
        }
        let mut out = Vec::new();
        for (i, item) in self.list(entry, path, v).iter().enumerate() {
            match scalar(item) {
                Some(s) => out.push(s),
                None => self.error(entry, &format!("{path}[{i}]"), "must be a string"),
            }
        }
        out
    }

    /// A map's entries, cut at [`MAX_ENTRIES`]; a non-map is an error and reads as empty.
    pub fn map<'v>(
        &mut self,
        entry: &str,
        path: &str,
        v: Option<&'v Value>,
    ) -> Vec<(String, &'v Value)> {
        match v {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Mapping(m)) => {
                if m.len() > MAX_ENTRIES {
                    self.error(
                        entry,
                        path,
                        format!(
                            "{} entries, more than {MAX_ENTRIES}: only the first {MAX_ENTRIES} are read",
                            m.len()
                        ),
                    );
                }
                m.iter()
                    .take(MAX_ENTRIES)
                    .map(|(k, v)| (scalar(k).unwrap_or_else(|| "?".into()), v))
                    .collect()
            }
            Some(_) => {
                self.error(entry, path, "must be a map");
                Vec::new()
            }
        }
    }

    /// An optional scalar field checked by `check`; a bad value is an error and reads as absent.
    pub fn field<T>(
        &mut self,
        entry: &str,
        path: &str,
        v: Option<&Value>,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match v {
            None | Some(Value::Null) => None,
            Some(v) => match scalar(v) {
                Some(s) => match check(&s) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        self.error(entry, path, e);
                        None
                    }
                },
                None => {
                    self.error(entry, path, "must be a single value");
                    None
                }
            },
        }
    }

    pub fn flag(&mut self, entry: &str, path: &str, v: Option<&Value>) -> bool {
        self.field(entry, path, v, parse_bool).unwrap_or(false)
    }
}

/// A scalar as text (numbers and booleans as written by yaml_serde).
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(t) => scalar(&t.value),
        _ => None,
    }
}

pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!(
            "{} is not true or false",
            crate::accounts::shown(s)
        )),
    }
}

/// A MAC address, lowercased: six groups of two hex digits (`:` or `-` between them).
pub fn parse_mac(s: &str) -> Result<String, String> {
    let groups: Vec<&str> = s.split([':', '-']).collect();
    let ok = groups.len() == 6
        && groups
            .iter()
            .all(|g| g.len() == 2 && g.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(groups.join(":").to_ascii_lowercase())
    } else {
        Err(format!(
            "{} is not a MAC address",
            crate::accounts::shown(s)
        ))
    }
}

/// A name from the config that ties entries together. It never reaches the kernel, but it
/// appears in messages and must not smuggle a path, an option or a line break anywhere.
pub fn check_config_name(s: &str) -> Result<(), String> {
    let bad = if s.is_empty() {
        Some("is empty")
    } else if s.len() > 64 {
        Some("is longer than 64 characters")
    } else if s.starts_with('-') {
        Some("starts with '-'")
    } else if s.contains('/') {
        Some("contains '/'")
    } else if s.contains("..") {
        Some("contains '..'")
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains a space or a control character")
    } else if s.chars().any(|c| "\"'\\$`;&|<>(){}*?!#=".contains(c)) {
        Some("contains a shell metacharacter")
    } else {
        None
    };
    match bad {
        Some(why) => Err(format!(
            "interface name {} {why}",
            crate::accounts::shown(s)
        )),
        None => Ok(()),
    }
}

/// A kernel interface name (it becomes a file name and an rc.conf variable name): a letter,
/// then letters, digits, `_` or `.` (FreeBSD's `em0.100`), at most 15 characters (IFNAMSIZ).
pub fn check_kernel_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() < 16
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !s.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} is not a kernel interface name",
            crate::accounts::shown(s)
        ))
    }
}

pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse::<IpAddr>()
        .map_err(|_| format!("{} is not an IP address", crate::accounts::shown(s)))
}

/// `A/P`, or `A` with a netmask (dotted, or a prefix length) given beside it.
pub fn parse_cidr(s: &str, netmask: Option<&str>) -> Result<Cidr, String> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr = parse_ip(addr)?;
    let max = if addr.is_ipv6() { 128 } else { 32 };
    let prefix_text = prefix.or(netmask);
    let prefix = match prefix_text {
        None => max,
        Some(p) => parse_prefix(p, max)?,
    };
    Ok(Cidr { addr, prefix })
}

/// A prefix length, or (IPv4) a dotted netmask of contiguous ones.
fn parse_prefix(p: &str, max: u8) -> Result<u8, String> {
    if let Ok(n) = p.trim().parse::<u16>() {
        return if n <= u16::from(max) {
            Ok(n as u8)
        } else {
            Err(format!("prefix length {n} is out of range 0..={max}"))
        };
    }
    if max == 32 {
        if let Ok(mask) = p.trim().parse::<Ipv4Addr>() {
            let bits = u32::from(mask);
            let ones = bits.leading_ones();
            if bits.checked_shl(ones).unwrap_or(0) == 0 {
                return Ok(ones as u8);
            }
            return Err(format!("netmask {mask} is not contiguous"));
        }
    }
    Err(format!(
        "{} is not a prefix length or netmask",
        crate::accounts::shown(p)
    ))
}

/// An MTU within what Ethernet interfaces take (IPv6 needs 1280: checked with the addresses).
pub fn parse_mtu(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (68..=65535).contains(&n) => Ok(n),
        _ => Err(format!(
            "MTU {} is not in 68..=65535",
            crate::accounts::shown(s)
        )),
    }
}

/// A DNS search domain: it goes on resolv.conf's `search` line, so letters, digits, `-`, `_`
/// and dots only.
pub fn check_domain(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && !s.starts_with(['-', '.'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} is not a search domain",
            crate::accounts::shown(s)
        ))
    }
}

/// `default`, or a destination network. A missing prefix means a host route.
pub fn parse_destination(s: &str) -> Result<Cidr, String> {
    if s == "default" {
        return Ok(Cidr {
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix: 0,
        });
    }
    let c = parse_cidr(s, None)?;
    Ok(Cidr {
        addr: c.network(),
        prefix: c.prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_checked_and_lowercased() {
        assert_eq!(parse_mac("52:54:00:AB:cd:01").unwrap(), "52:54:00:ab:cd:01");
        assert_eq!(parse_mac("52-54-00-ab-cd-01").unwrap(), "52:54:00:ab:cd:01");
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:0g",
            "525400abcd01",
            "1:2:3:4:5:6",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_names_cannot_carry_paths_options_or_breaks() {
        assert!(check_config_name("bond0.100").is_ok());
        assert!(check_config_name("eno1").is_ok());
        for bad in [
            "", "../etc", "a/b", "-x", "a b", "a\nb", "a\tb", "x..y", "$(id)",
        ] {
            assert!(check_config_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_kernel_name("em0.100").is_ok());
        for bad in ["", "0em", "em0/x", "averyveryverylongname0", "em 0"] {
            assert!(check_kernel_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn addresses_prefixes_and_netmasks() {
        let c = parse_cidr("10.0.0.4/24", None).unwrap();
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.network().to_string(), "10.0.0.0");
        assert!(c.contains(&"10.0.0.1".parse().unwrap()));
        assert!(!c.contains(&"10.0.1.1".parse().unwrap()));
        assert_eq!(
            parse_cidr("10.0.0.4", Some("255.255.0.0")).unwrap().prefix,
            16
        );
        assert_eq!(parse_cidr("2001:db8::4/64", None).unwrap().prefix, 64);
        assert!(parse_cidr("10.0.0.4/33", None).is_err());
        assert!(parse_cidr("2001:db8::4/129", None).is_err());
        assert!(parse_cidr("10.0.0.4", Some("255.0.255.0")).is_err());
        assert!(parse_cidr("not-an-ip/24", None).is_err());
        assert_eq!(parse_destination("default").unwrap().prefix, 0);
        assert_eq!(
            parse_destination("192.168.0.7/24").unwrap().to_string(),
            "192.168.0.0/24"
        );
    }

    #[test]
    fn mtus_and_domains() {
        assert_eq!(parse_mtu("9000"), Ok(9000));
        for bad in ["0", "67", "65536", "99999999999", "-1", "big"] {
            assert!(parse_mtu(bad).is_err(), "{bad}");
        }
        assert!(check_domain("maas").is_ok());
        assert!(check_domain("a b").is_err());
        assert!(check_domain("x\nnameserver 1.2.3.4").is_err());
    }
}
