//! The boot stage's face: [`plan`] and what it returns. File contents per OS are covered by the
//! golden cases in `tests/network.rs`.

use std::collections::BTreeMap;

use super::*;

const V2: &str = "network:\n  version: 2\n  ethernets:\n    eth0:\n      match: {macaddress: '52:54:00:00:00:01'}\n      addresses: [10.0.0.5/24]\n      gateway4: 10.0.0.1\n    eth1:\n      match: {macaddress: '52:54:00:00:00:02'}\n      dhcp4: true\n";

fn nics(os: &str) -> BTreeMap<String, String> {
    let (a, b) = match os {
        "openbsd" => ("vio0", "vio1"),
        _ => ("vtnet0", "vtnet1"),
    };
    [("52:54:00:00:00:01", a), ("52:54:00:00:00:02", b)]
        .into_iter()
        .map(|(m, n)| (m.to_string(), n.to_string()))
        .collect()
}

fn apply(planned: &Planned, root: &Root) {
    for a in &planned.actions {
        if let Action::Write { path, content, .. } = a {
            let p = root.path(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
    }
}

#[test]
fn openbsd_reports_the_interfaces_to_restart_and_a_rerun_none() {
    let t = tempfile::tempdir().unwrap();
    let root = Root::new(t.path());
    let mut planned = Planned::default();
    let np = plan(
        Platform::Openbsd,
        &root,
        "seed",
        V2.as_bytes(),
        &nics("openbsd"),
        &mut planned,
    );
    assert_eq!(np.changed_interfaces, ["vio0", "vio1"]);
    assert_eq!(np.interfaces, ["vio0", "vio1"]);
    assert!(planned.actions.iter().all(|a| a.module() == NAME));
    assert_eq!(
        netstart_argv(&np.changed_interfaces),
        ["sh", "/etc/netstart", "vio0", "vio1"]
    );
    apply(&planned, &root);
    let mut again = Planned::default();
    let np = plan(
        Platform::Openbsd,
        &root,
        "seed",
        V2.as_bytes(),
        &nics("openbsd"),
        &mut again,
    );
    assert!(np.changed_interfaces.is_empty());
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    assert_eq!(np.interfaces, ["vio0", "vio1"]);
}

#[test]
fn rc_conf_edits_compose_with_what_was_planned_before() {
    let t = tempfile::tempdir().unwrap();
    let root = Root::new(t.path());
    let mut planned = Planned::default();
    // Another module (hostname) already planned an rc.conf.
    planned.actions.push(Action::write(
        "hostname",
        "h",
        "/etc/rc.conf",
        b"hostname=\"h.example\"\n".to_vec(),
        0o644,
        ("root", "wheel"),
        false,
    ));
    let np = plan(
        Platform::Freebsd,
        &root,
        "seed",
        V2.as_bytes(),
        &nics("freebsd"),
        &mut planned,
    );
    assert_eq!(np.changed_interfaces, ["vtnet0", "vtnet1"]);
    let rc = planned.current_text(&root, "/etc/rc.conf");
    assert_eq!(
        rc,
        "hostname=\"h.example\"\nifconfig_vtnet0=\"inet 10.0.0.5 netmask 255.255.255.0\"\nifconfig_vtnet1=\"DHCP\"\ndefaultrouter=\"10.0.0.1\"\n"
    );
}

#[test]
fn netbsd_leaves_dhcpcd_alone_unless_the_image_turned_it_on() {
    let t = tempfile::tempdir().unwrap();
    let root = Root::new(t.path());
    let mut planned = Planned::default();
    plan(
        Platform::Netbsd,
        &root,
        "seed",
        V2.as_bytes(),
        &nics("netbsd"),
        &mut planned,
    );
    let rc = planned.current_text(&root, "/etc/rc.conf");
    assert!(!rc.contains("dhcpcd"), "{rc}");
    std::fs::create_dir_all(t.path().join("etc")).unwrap();
    std::fs::write(t.path().join("etc/rc.conf"), "dhcpcd=YES # image\n").unwrap();
    let mut planned = Planned::default();
    plan(
        Platform::Netbsd,
        &root,
        "seed",
        V2.as_bytes(),
        &nics("netbsd"),
        &mut planned,
    );
    let rc = planned.current_text(&root, "/etc/rc.conf");
    assert!(rc.starts_with("dhcpcd=\"NO\"\n"), "{rc}");
}

#[test]
fn linux_and_disabled_configs_render_nothing() {
    let root = Root::new("/nonexistent");
    let mut planned = Planned::default();
    let np = plan(
        Platform::Linux,
        &root,
        "seed",
        V2.as_bytes(),
        &nics("linux"),
        &mut planned,
    );
    assert!(np.nothing_rendered && planned.actions.is_empty());
    assert_eq!(planned.warnings.len(), 1);
    let mut planned = Planned::default();
    let np = plan(
        Platform::Freebsd,
        &root,
        "seed",
        b"network: {config: disabled}\n",
        &nics("freebsd"),
        &mut planned,
    );
    assert!(np.nothing_rendered && planned.actions.is_empty() && planned.errors.is_empty());
}

#[test]
fn formats_are_told_apart() {
    for (doc, ok) in [
        ("version: 1\nconfig: []\n", true),
        ("network:\n  version: 2\n  ethernets: {}\n", true),
        ("ethernets: {}\n", true),
        ("{\"links\": [], \"networks\": []}", true),
        ("version: 3\n", false),
        ("#cloud-config\nhostname: x\n", false),
        ("hostname: x\n", false),
    ] {
        let p = parse("d", doc.as_bytes());
        assert_eq!(p.config.is_some(), ok, "{doc}: {:?}", p.problems);
        assert_eq!(p.problems.is_empty(), ok, "{doc}: {:?}", p.problems);
    }
    assert!(looks_like(b"network:\n  version: 1\n"));
    assert!(!looks_like(b"#cloud-config\nnetwork: {config: disabled}\n"));
}

#[test]
fn garbage_never_panics_and_is_named() {
    let long = "a".repeat(model::MAX_BYTES + 1);
    for doc in [
        &b"\xff\xfe"[..],
        b"{",
        b"[1, 2",
        b"version: 2\nethernets: [1, 2]\n",
        b"version: 1\nconfig: {a: b}\n",
        b"version: 1\nconfig: [1, null, {type: physical}, {type: bond, name: b, bond_interfaces: 7}]\n",
        b"version: 2\nethernets: {e: {match: {macaddress: [1]}, addresses: {a: 1}, routes: [{to: default}], mtu: [1]}}\n",
        b"version: 2\nvlans: {v: {id: 5000, link: e}}\n",
        b"{\"links\": [{\"id\": \"x\", \"type\": \"phy\"}], \"networks\": [{\"link\": \"nope\"}]}",
        long.as_bytes(),
    ] {
        let p = parse("doc", doc);
        assert!(!p.problems.is_empty(), "{}", String::from_utf8_lossy(doc));
        assert!(p.problems.iter().all(|p| p.document == "doc"));
    }
}

#[test]
fn an_ipv6_default_route_and_a_vlan_on_a_missing_link() {
    let doc = "version: 1\nconfig:\n- {type: physical, name: e0, mac_address: '52:54:00:00:00:01', subnets: [{type: static6, address: '2001:db8::5/64'}]}\n- {type: route, destination: default, gateway: '2001:db8::1'}\n- {type: vlan, name: v, vlan_link: nope, vlan_id: 7}\n";
    let t = tempfile::tempdir().unwrap();
    let root = Root::new(t.path());
    let mut planned = Planned::default();
    plan(
        Platform::Openbsd,
        &root,
        "seed",
        doc.as_bytes(),
        &nics("openbsd"),
        &mut planned,
    );
    let mygate = planned.current_text(&root, "/etc/mygate");
    assert_eq!(mygate, "2001:db8::1\n");
    assert_eq!(planned.errors.len(), 1, "{:?}", planned.errors);
    assert!(
        planned.errors[0].reason.contains("VLAN 7"),
        "{:?}",
        planned.errors
    );
}

#[test]
fn openbsd_bond_modes_and_freebsd_vlan_names() {
    let doc = "version: 2\nethernets:\n  a: {match: {macaddress: '52:54:00:00:00:01'}}\n  b: {match: {macaddress: '52:54:00:00:00:02'}}\nbonds:\n  bond0: {interfaces: [a, b], parameters: {mode: balance-rr}, addresses: [10.0.0.5/24]}\nvlans:\n  v7: {id: 7, link: bond0, dhcp4: true}\n";
    let t = tempfile::tempdir().unwrap();
    let root = Root::new(t.path());
    let mut planned = Planned::default();
    let np = plan(
        Platform::Openbsd,
        &root,
        "seed",
        doc.as_bytes(),
        &nics("openbsd"),
        &mut planned,
    );
    assert_eq!(np.interfaces, ["vio0", "vio1", "trunk0", "vlan7"]);
    assert_eq!(
        planned.current_text(&root, "/etc/hostname.trunk0"),
        "trunkproto roundrobin\ntrunkport vio0\ntrunkport vio1\ninet 10.0.0.5 255.255.255.0\n"
    );
    let mut planned = Planned::default();
    let np = plan(
        Platform::Freebsd,
        &root,
        "seed",
        doc.as_bytes(),
        &nics("freebsd"),
        &mut planned,
    );
    assert_eq!(np.interfaces, ["vtnet0", "vtnet1", "lagg0", "lagg0.7"]);
    let rc = planned.current_text(&root, "/etc/rc.conf");
    assert!(rc.contains("ifconfig_lagg0_7=\"DHCP\"\n"), "{rc}");
    assert!(
        rc.contains("create_args_lagg0=\"laggproto roundrobin laggport vtnet0 laggport vtnet1\""),
        "{rc}"
    );
    // NetBSD's lagg has no round robin: reported, and failover is used.
    let mut planned = Planned::default();
    plan(
        Platform::Netbsd,
        &root,
        "seed",
        doc.as_bytes(),
        &nics("netbsd"),
        &mut planned,
    );
    assert!(
        planned.warnings.iter().any(|w| w.contains("balance-rr")),
        "{:?}",
        planned.warnings
    );
}

#[test]
fn rc_conf_settings_that_would_fight_the_rendered_config_go() {
    let t = tempfile::tempdir().unwrap();
    let root = Root::new(t.path());
    std::fs::create_dir_all(t.path().join("etc")).unwrap();
    std::fs::write(
        t.path().join("etc/rc.conf"),
        "ifconfig_vtnet0=\"DHCP\"\nifconfig_vtnet0_alias0=\"inet 10.9.9.9/32\"\nifconfig_vtnet0_ipv6=\"inet6 accept_rtadv\"\nifconfig_vtnet9=\"DHCP\"\nifconfig_vtnet0_name=\"x\"\n",
    )
    .unwrap();
    let mut planned = Planned::default();
    plan(
        Platform::Freebsd,
        &root,
        "seed",
        V2.as_bytes(),
        &nics("freebsd"),
        &mut planned,
    );
    assert_eq!(
        planned.current_text(&root, "/etc/rc.conf"),
        "ifconfig_vtnet0=\"inet 10.0.0.5 netmask 255.255.255.0\"\nifconfig_vtnet9=\"DHCP\"\nifconfig_vtnet0_name=\"x\"\nifconfig_vtnet1=\"DHCP\"\ndefaultrouter=\"10.0.0.1\"\n"
    );
    // NetBSD's rc.d/network would take an ifconfig_IF variable over the rendered file.
    std::fs::write(
        t.path().join("etc/rc.conf"),
        "ifconfig_vtnet1=\"dhcp\"\nifconfig_vtnet7=\"dhcp\"\n",
    )
    .unwrap();
    let mut planned = Planned::default();
    let np = plan(
        Platform::Netbsd,
        &root,
        "seed",
        V2.as_bytes(),
        &nics("netbsd"),
        &mut planned,
    );
    assert_eq!(
        planned.current_text(&root, "/etc/rc.conf"),
        "ifconfig_vtnet7=\"dhcp\"\ndefaultroute=\"10.0.0.1\"\n"
    );
    assert_eq!(np.changed_interfaces, ["vtnet0", "vtnet1"]);
}

#[test]
fn every_prefix_of_every_case_plans_without_panicking() {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/netcfg");
    let t = tempfile::tempdir().unwrap();
    let root = Root::new(t.path());
    for dir in std::fs::read_dir(&base).unwrap().flatten() {
        for f in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = f.file_name().to_string_lossy().into_owned();
            if !name.starts_with("input") {
                continue;
            }
            let raw = std::fs::read(f.path()).unwrap();
            // Cut anywhere (mid-token, mid-UTF-8): errors, never a panic.
            for cut in (0..raw.len()).step_by(7) {
                for p in [Platform::Netbsd, Platform::Freebsd, Platform::Openbsd] {
                    let mut planned = Planned::default();
                    plan(p, &root, &name, &raw[..cut], &nics("openbsd"), &mut planned);
                }
            }
        }
    }
}

/// rc.conf is edited: one wisp cannot read safely (here a link, as in NanoBSD's /conf
/// layouts) is refused with its name, never replaced by the rendered lines alone.
#[test]
fn an_unreadable_rc_conf_is_refused_not_replaced() {
    for platform in [Platform::Freebsd, Platform::Netbsd] {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/rc.conf.real"),
            "sshd_enable=\"YES\"\nifconfig_em0=\"DHCP\"\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("rc.conf.real", t.path().join("etc/rc.conf")).unwrap();
        let mut planned = Planned::default();
        let np = plan(
            platform,
            &root,
            "seed",
            V2.as_bytes(),
            &nics("freebsd"),
            &mut planned,
        );
        assert!(np.nothing_rendered, "{platform:?}");
        assert!(
            !planned
                .actions
                .iter()
                .any(|a| matches!(a, Action::Write { path, .. } if path == "/etc/rc.conf")),
            "{platform:?}: {:?}",
            planned.actions
        );
        let e = planned
            .errors
            .iter()
            .find(|e| e.item == "/etc/rc.conf")
            .unwrap_or_else(|| panic!("{platform:?}: {:?}", planned.errors));
        assert!(
            e.reason.contains("/etc/rc.conf is a symbolic link"),
            "{}",
            e.reason
        );
    }
}
