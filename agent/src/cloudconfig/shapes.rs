//! The shapes cloud-init's schema (`schema-cloud-config-v1.json`) gives the keys wisp does not
//! apply, so that `wisp schema` checks a document meant for Linux machines too: a key wisp
//! ignores is still refused in a shape cloud-init would refuse (`rsyslog: {remotes: [a, b]}`). Only types
//! are checked, and only of the sub-keys listed; everything else is left alone.

use yaml_serde::Value;

use super::lenient::{child, describe, yaml11_bool, Reader};

/// What a value must look like.
#[derive(Debug)]
pub enum Shape {
    Any,
    Bool,
    Str,
    Int,
    /// A string, one of these (cloud-init's `enum`).
    Enum(&'static [&'static str]),
    /// A map; the listed keys (written with `_` or `-`) have their own shapes.
    Map(&'static [(&'static str, Shape)]),
    /// A list whose items have a shape.
    List(&'static Shape),
    OneOf(&'static [Shape]),
}

use Shape::{Any, Bool, Enum, Int, List, Map, OneOf, Str};

/// The keys wisp ignores and their shapes. Keys other engineers give modules (`growpart`,
/// `resize_rootfs`, `power_state`, `final_message`, `random_seed`, `ssh_keys`) are checked by
/// those modules, not here.
pub const IGNORED_SHAPES: &[(&str, Shape)] = &[
    (
        "snap",
        Map(&[
            ("assertions", OneOf(&[List(&Str), Map(&[])])),
            ("commands", OneOf(&[List(&Any), Map(&[])])),
        ]),
    ),
    (
        "apt",
        Map(&[
            ("preserve_sources_list", Bool),
            ("disable_suites", List(&Str)),
            ("primary", List(&Map(&[]))),
            ("security", List(&Map(&[]))),
            ("add_apt_repo_match", Str),
            ("debconf_selections", Map(&[])),
            ("sources_list", Str),
            ("conf", Str),
            ("proxy", Str),
            ("http_proxy", Str),
            ("ftp_proxy", Str),
            ("https_proxy", Str),
            ("sources", Map(&[])),
        ]),
    ),
    (
        "apt_pipelining",
        OneOf(&[Bool, Int, Enum(&["none", "unchanged", "os"])]),
    ),
    ("yum_repos", Map(&[])),
    ("yum_repo_dir", Str),
    (
        "zypper",
        Map(&[("repos", List(&Map(&[]))), ("config", Map(&[]))]),
    ),
    (
        "apk_repos",
        Map(&[
            ("preserve_repositories", Bool),
            ("alpine_repo", Map(&[])),
            ("local_repo_base_url", Str),
        ]),
    ),
    ("disk_setup", Map(&[])),
    ("fs_setup", List(&Map(&[]))),
    ("mounts", List(&List(&Any))),
    ("mount_default_fields", List(&Any)),
    (
        "swap",
        Map(&[
            ("filename", Str),
            ("size", OneOf(&[Str, Int])),
            ("maxsize", OneOf(&[Str, Int])),
        ]),
    ),
    ("locale", OneOf(&[Bool, Str])),
    ("locale_configfile", Str),
    (
        "keyboard",
        Map(&[
            ("layout", Str),
            ("model", Str),
            ("variant", Str),
            ("options", Str),
        ]),
    ),
    (
        "lxd",
        Map(&[("init", Map(&[])), ("bridge", Map(&[])), ("preseed", Str)]),
    ),
    (
        "ubuntu_advantage",
        Map(&[("token", Str), ("enable", List(&Str))]),
    ),
    ("ubuntu_pro", Map(&[("token", Str), ("enable", List(&Str))])),
    ("landscape", Map(&[("client", Map(&[]))])),
    ("puppet", Map(&[])),
    ("chef", Map(&[])),
    ("salt_minion", Map(&[])),
    ("ansible", Map(&[])),
    ("mcollective", Map(&[("conf", Map(&[]))])),
    (
        "rsyslog",
        Map(&[
            ("config_dir", Str),
            ("config_filename", Str),
            (
                "configs",
                List(&OneOf(&[Str, Map(&[("filename", Str), ("content", Str)])])),
            ),
            ("remotes", Map(&[])),
            (
                "service_reload_command",
                OneOf(&[Enum(&["auto"]), List(&Str)]),
            ),
            ("install_rsyslog", Bool),
            ("check_exe", Str),
            ("packages", List(&Str)),
        ]),
    ),
    ("byobu_by_default", Str),
    ("fan", Map(&[("config", Str), ("config_path", Str)])),
    (
        "phone_home",
        Map(&[
            ("url", Str),
            (
                "post",
                OneOf(&[
                    Enum(&["all"]),
                    List(&Enum(&[
                        "pub_key_rsa",
                        "pub_key_ecdsa",
                        "pub_key_ed25519",
                        "instance_id",
                        "hostname",
                        "fqdn",
                    ])),
                ]),
            ),
            ("tries", Int),
        ]),
    ),
    (
        "ca_certs",
        Map(&[("remove_defaults", Bool), ("trusted", List(&Str))]),
    ),
    ("ssh_import_id", List(&Str)),
    (
        "wireguard",
        Map(&[
            ("interfaces", List(&Map(&[]))),
            ("readinessprobe", List(&Str)),
        ]),
    ),
    ("rh_subscription", Map(&[])),
    (
        "spacewalk",
        Map(&[("server", Str), ("proxy", Str), ("activation_key", Str)]),
    ),
    (
        "resolv_conf",
        Map(&[
            ("nameservers", List(&Any)),
            ("searchdomains", List(&Str)),
            ("domain", Str),
            ("sortlist", List(&Str)),
            ("options", Map(&[])),
        ]),
    ),
    ("manage_resolv_conf", Bool),
    ("drivers", Map(&[("nvidia", Map(&[]))])),
    (
        "updates",
        Map(&[(
            "network",
            Map(&[(
                "when",
                List(&Enum(&[
                    "boot-new-instance",
                    "boot-legacy",
                    "boot",
                    "hotplug",
                ])),
            )]),
        )]),
    ),
    ("grub_dpkg", Map(&[])),
    ("device_aliases", Map(&[])),
    ("disable_ec2_metadata", Bool),
    ("autoinstall", Map(&[])),
    ("create_hostname_file", Bool),
    ("ssh", Map(&[("emit_keys_to_console", Bool)])),
    ("launch_index", Int),
];

/// Checks the value of an ignored key (`key` normalised) against its shape, if it has one.
/// Null is taken as "not set" everywhere.
pub fn check_ignored(r: &mut Reader<'_>, path: &str, key: &str, v: &Value) {
    if let Some((_, shape)) = IGNORED_SHAPES.iter().find(|(k, _)| *k == key) {
        check(r, path, v, shape);
    }
}

fn fits(r: &Reader<'_>, path: &str, v: &Value, shape: &Shape) -> bool {
    match shape {
        Any => true,
        // A quoted 'yes' is a string to PyYAML, and so to cloud-init's schema.
        Bool => yaml11_bool(v).is_some() && !(v.is_string() && r.is_quoted(path)),
        Str => v.is_string(),
        Int => v.is_i64() || v.is_u64(),
        Enum(names) => v.as_str().is_some_and(|s| names.contains(&s)),
        Map(_) => v.is_mapping(),
        List(_) => v.is_sequence(),
        OneOf(shapes) => shapes.iter().any(|s| fits(r, path, v, s)),
    }
}

fn name(shape: &Shape) -> String {
    match shape {
        Any => "anything".into(),
        Bool => "a boolean".into(),
        Str => "a string".into(),
        Int => "a whole number".into(),
        Enum(names) => {
            let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
            format!("one of {}", quoted.join(", "))
        }
        Map(_) => "a map".into(),
        List(_) => "a list".into(),
        OneOf(shapes) => {
            let names: Vec<String> = shapes.iter().map(name).collect();
            names.join(" or ")
        }
    }
}

fn check(r: &mut Reader<'_>, path: &str, v: &Value, shape: &Shape) {
    if v.is_null() {
        return;
    }
    if !fits(r, path, v, shape) {
        r.error(
            path,
            format!(
                "expected {} (cloud-init's schema), got {}",
                name(shape),
                describe(v)
            ),
        );
        return;
    }
    match (shape, v) {
        (Map(keys), Value::Mapping(m)) => {
            for (k, item) in m {
                let Some(k) = k.as_str() else { continue };
                let norm = super::lenient::norm_key(k);
                if let Some((_, s)) = keys.iter().find(|(name, _)| *name == norm) {
                    check(r, &child(path, k), item, s);
                }
            }
        }
        (List(item_shape), Value::Sequence(items)) => {
            for (i, item) in items.iter().enumerate() {
                check(r, &format!("{path}[{i}]"), item, item_shape);
            }
        }
        (OneOf(shapes), _) => {
            // The first alternative that fits checks the inside.
            if let Some(s) = shapes.iter().find(|s| fits(r, path, v, s)) {
                check(r, path, v, s);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<(String, String)> {
        let v: Value = yaml_serde::from_str(text).unwrap();
        let mut r = Reader::default();
        for (k, val) in v.as_mapping().unwrap() {
            let k = k.as_str().unwrap();
            check_ignored(&mut r, k, k, val);
        }
        r.problems
            .into_iter()
            .map(|p| (p.path, p.message))
            .collect()
    }

    #[test]
    fn ignored_keys_in_a_shape_cloud_init_refuses_are_errors() {
        let got = problems(
            "mounts: vim\nrsyslog:\n  remotes: [a, b]\n  configs:\n    - '*.* @@h'\n    - content: 5\ndisable_ec2_metadata: maybe\nssh_import_id: [gh:x, 5]\nswap: {size: auto}\n",
        );
        let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "mounts",
                "rsyslog.remotes",
                "rsyslog.configs[1].content",
                "disable_ec2_metadata",
                "ssh_import_id[1]"
            ],
            "{got:?}"
        );
        assert!(got[0].1.contains("expected a list") && got[0].1.contains("\"vim\""));
        assert!(got[1].1.contains("expected a map"));
    }

    #[test]
    fn strings_cloud_init_lists_as_an_enum_are_checked() {
        // cloud-init's schema: `service_reload_command` is "auto" or a list, `post` is "all"
        // or a list of known keys, `apt_pipelining` a boolean, a number or one of three words.
        let got = problems(
            "rsyslog:\n  service_reload_command: systemctl restart rsyslog\nphone_home:\n  url: http://h/\n  post: [hostname, password]\napt_pipelining: sometimes\nupdates:\n  network:\n    when: [boot, never]\n",
        );
        let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "rsyslog.service_reload_command",
                "phone_home.post[1]",
                "apt_pipelining",
                "updates.network.when[1]"
            ],
            "{got:?}"
        );
        assert!(got[0].1.contains("one of \"auto\" or a list"), "{got:?}");
        let ok = problems(
            "rsyslog: {service_reload_command: [systemctl, restart, rsyslog]}\nphone_home: {url: http://h/, post: all}\napt_pipelining: os\nupdates: {network: {when: [hotplug]}}\n",
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn a_quoted_yes_is_not_a_boolean_to_the_schema() {
        let text =
            "disable_ec2_metadata: 'yes'\ncreate_hostname_file: yes\napt_pipelining: 'off'\n";
        let pos = crate::cloudconfig::Positions::of(text);
        let v: Value = yaml_serde::from_str(text).unwrap();
        let mut r = Reader {
            positions: Some(&pos),
            ..Reader::default()
        };
        for (k, val) in v.as_mapping().unwrap() {
            let k = k.as_str().unwrap();
            check_ignored(&mut r, k, k, val);
        }
        let paths: Vec<&str> = r.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["disable_ec2_metadata", "apt_pipelining"],
            "{:?}",
            r.problems
        );
    }

    #[test]
    fn the_shapes_cloud_init_ships_pass() {
        let got = problems(
            "rsyslog:\n  remotes: {maas: 192.168.1.1}\n  service_reload_command: auto\napt:\n  primary:\n    - arches: [default]\n      uri: http://x\nmounts:\n  - [sdb, /mnt]\nlocale: false\nsnap:\n  commands:\n    00: snap install x\n",
        );
        assert!(got.is_empty(), "{got:?}");
    }
}
