//! The machine's NICs, MAC → kernel name: read from `ifconfig -a` on the running system (the
//! command is the platform backend's), or from a YAML map standing in for them (`--interfaces`).

use std::collections::BTreeMap;

use super::model::{check_kernel_name, parse_mac, scalar};
use crate::platform::Platform;

/// Cloned interfaces are not NICs: a bond has its first port's MAC, a VLAN its parent's.
const VIRTUAL: &[&str] = &[
    "lo", "lagg", "trunk", "aggr", "vlan", "svlan", "bridge", "veb", "vport", "tap", "tun", "gif",
    "gre", "egre", "pflog", "pfsync", "enc", "carp", "wg", "epair", "vether", "pair", "mpe", "mpw",
    "etherip", "vxlan", "l2tp", "stf", "ipsec", "npflog", "shmif", "srt", "ppp", "pppoe", "sl",
    "strip", "faith", "me", "ovpn", "tpmr", "nvgre", "eoip", "pflow", "bpe", "gre", "vboxnet",
];

fn is_virtual(name: &str) -> bool {
    // FreeBSD VLANs are `em0.100`.
    if name.contains('.') {
        return true;
    }
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    VIRTUAL.contains(&stem)
}

/// Parses `ifconfig -a` of NetBSD (`address: MAC`), FreeBSD (`ether MAC`, and `hwaddr MAC`
/// when a lagg changed it) and OpenBSD (`lladdr MAC`). An interface's block starts at a line
/// that does not begin with white space: `name: flags=…`. The first NIC of a MAC wins.
pub fn parse_ifconfig(output: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Option<String>, Option<String>)> = None;
    let finish = |cur: Option<(String, Option<String>, Option<String>)>,
                  out: &mut BTreeMap<String, String>| {
        if let Some((name, hw, ether)) = cur {
            if let Some(mac) = hw.or(ether) {
                if !is_virtual(&name) && check_kernel_name(&name).is_ok() {
                    out.entry(mac).or_insert(name);
                }
            }
        }
    };
    for line in output.lines() {
        if !line.starts_with([' ', '\t']) {
            if let Some((name, _)) = line.split_once(':') {
                finish(current.take(), &mut out);
                if !name.is_empty() && !name.contains(char::is_whitespace) {
                    current = Some((name.to_string(), None, None));
                }
                continue;
            }
        }
        let Some((_, hw, ether)) = current.as_mut() else {
            continue;
        };
        let mut words = line.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(mac) = parse_mac(value) else {
            continue;
        };
        match key {
            "hwaddr" => *hw = Some(mac),
            "address:" | "ether" | "lladdr" => {
                ether.get_or_insert(mac);
            }
            _ => {}
        }
    }
    finish(current.take(), &mut out);
    out
}

/// Reads the running system's NICs with `argv` (the backend's command, run without a shell).
pub fn read_system(argv: &[String]) -> Result<BTreeMap<String, String>, String> {
    let (prog, args) = argv.split_first().ok_or("no command to list interfaces")?;
    let output = std::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{prog}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{} failed ({})", argv.join(" "), output.status));
    }
    Ok(parse_ifconfig(&String::from_utf8_lossy(&output.stdout)))
}

/// A YAML map MAC → interface name, or one such map per OS (`netbsd:`, `freebsd:`,
/// `openbsd:`), of which `platform`'s is taken. Bad entries are errors, the rest is kept.
pub fn parse_map(
    text: &str,
    platform: Platform,
) -> Result<(BTreeMap<String, String>, Vec<String>), String> {
    let v: yaml_serde::Value =
        wisp_datasources::userdata::yaml::from_str(text).map_err(|e| e.to_string())?;
    let yaml_serde::Value::Mapping(m) = v else {
        return Err("must be a map of MAC address to interface name".into());
    };
    let per_os = m
        .keys()
        .all(|k| matches!(k.as_str(), Some("netbsd" | "freebsd" | "openbsd" | "linux")))
        && !m.is_empty();
    let m = if per_os {
        match m.get(platform.name()) {
            Some(yaml_serde::Value::Mapping(inner)) => inner.clone(),
            _ => return Err(format!("no map for {}", platform.name())),
        }
    } else {
        m
    };
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for (k, v) in m.iter().take(super::model::MAX_ENTRIES) {
        let (k, v) = (scalar(k).unwrap_or_default(), scalar(v).unwrap_or_default());
        match (parse_mac(&k), check_kernel_name(&v)) {
            (Ok(mac), Ok(())) => {
                out.insert(mac, v);
            }
            (Err(e), _) | (_, Err(e)) => errors.push(e),
        }
    }
    Ok((out, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETBSD: &str = "\
wm0: flags=0x8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\tcapabilities=0x7ff80<TSO4,IP4CSUM_Rx,IP4CSUM_Tx>
\tenabled=0
\tec_capabilities=0x7<VLAN_MTU,VLAN_HWTAGGING,JUMBO_MTU>
\tec_enabled=0x2<VLAN_HWTAGGING>
\taddress: 52:54:00:12:34:56
\tmedia: Ethernet autoselect (1000baseT full-duplex)
\tstatus: active
\tinet6 fe80::5054:ff:fe12:3456%wm0/64 flags 0 scopeid 0x1
\tinet 10.0.2.15/24 broadcast 10.0.2.255 flags 0
vioif0: flags=0x8802<BROADCAST,SIMPLEX,MULTICAST> mtu 1500
\tec_capabilities=0x1<VLAN_MTU>
\taddress: 52:54:00:AB:CD:EF
lo0: flags=0x8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 33624
\tinet6 ::1/128 flags 0x20<NODAD>
\tinet 127.0.0.1/8 flags 0
lagg0: flags=0x8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\taddress: 52:54:00:12:34:56
";

    const FREEBSD: &str = "\
vtnet0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\toptions=4c07bb<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,JUMBO_MTU>
\tether 58:9c:fc:00:00:01
\tinet 10.0.2.15 netmask 0xffffff00 broadcast 10.0.2.255
\tmedia: Ethernet autoselect (10Gbase-T <full-duplex>)
\tstatus: active
\tnd6 options=29<PERFORMNUD,IFDISABLED,AUTO_LINKLOCAL>
em1: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500
\tether 58:9c:fc:00:00:01
\thwaddr 58:9c:fc:00:00:02
\tmedia: Ethernet autoselect
lo0: flags=1008049<UP,LOOPBACK,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 16384
\tinet 127.0.0.1 netmask 0xff000000
vtnet0.100: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\tether 58:9c:fc:00:00:01
\tvlan: 100 vlanproto: 802.1q vlanpcp: 0 parent interface: vtnet0
";

    const OPENBSD: &str = "\
lo0: flags=2008049<UP,LOOPBACK,RUNNING,MULTICAST,LRO> mtu 32768
\tindex 4 priority 0 llprio 3
\tgroups: lo
\tinet 127.0.0.1 netmask 0xff000000
vio0: flags=2008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LRO> mtu 1500
\tlladdr 52:54:00:12:34:56
\tindex 1 priority 0 llprio 3
\tgroups: egress
\tmedia: Ethernet autoselect
\tstatus: active
\tinet 10.0.2.15 netmask 0xffffff00 broadcast 10.0.2.255
em0: flags=8802<BROADCAST,SIMPLEX,MULTICAST> mtu 1500
\tlladdr 00:1b:21:aa:bb:cc
enc0: flags=0<>
\tindex 2 priority 0 llprio 3
\tgroups: enc
\tstatus: active
pflog0: flags=141<UP,RUNNING,PROMISC> mtu 33136
\tindex 5 priority 0 llprio 3
\tgroups: pflog
trunk0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\tlladdr 00:1b:21:aa:bb:cc
";

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(m, n)| (m.to_string(), n.to_string()))
            .collect()
    }

    #[test]
    fn netbsd_address_lines_lowercased_and_virtual_skipped() {
        assert_eq!(
            parse_ifconfig(NETBSD),
            map(&[
                ("52:54:00:12:34:56", "wm0"),
                ("52:54:00:ab:cd:ef", "vioif0")
            ])
        );
    }

    #[test]
    fn freebsd_ether_and_hardware_address_vlans_skipped() {
        assert_eq!(
            parse_ifconfig(FREEBSD),
            map(&[
                ("58:9c:fc:00:00:01", "vtnet0"),
                ("58:9c:fc:00:00:02", "em1")
            ])
        );
    }

    #[test]
    fn openbsd_lladdr_pseudo_devices_skipped() {
        assert_eq!(
            parse_ifconfig(OPENBSD),
            map(&[("52:54:00:12:34:56", "vio0"), ("00:1b:21:aa:bb:cc", "em0")])
        );
    }

    #[test]
    fn garbage_gives_nothing() {
        assert!(parse_ifconfig("").is_empty());
        assert!(
            parse_ifconfig("\u{0}\n:::\n\tether zz\n../x: flags\n\tether 00:11:22:33:44:55\n")
                .is_empty()
        );
    }

    #[test]
    fn stand_in_maps_flat_or_per_os() {
        let (m, e) = parse_map("'52:54:00:12:34:00': vio0\n", Platform::Openbsd).unwrap();
        assert_eq!(m, map(&[("52:54:00:12:34:00", "vio0")]));
        assert!(e.is_empty());
        let (m, e) = parse_map(
            "netbsd:\n  00:01:02:03:04:05: wm0\nopenbsd:\n  00:01:02:03:04:05: em0\n  zz: em1\n  00:01:02:03:04:06: ../x\n",
            Platform::Openbsd,
        )
        .unwrap();
        assert_eq!(m, map(&[("00:01:02:03:04:05", "em0")]));
        assert_eq!(e.len(), 2);
        assert!(parse_map("netbsd: {}\n", Platform::Freebsd).is_err());
        assert!(parse_map("[1]", Platform::Freebsd).is_err());
    }
}
