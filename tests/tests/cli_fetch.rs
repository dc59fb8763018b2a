//! `wisp fetch` and `wisp query` end to end: the real binary against the mock MAAS, each in a
//! throwaway root.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;
use mock_maas::{Faults, MachineStatus};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn fetch_prints_the_metadata_and_deploys() {
    let mock = mock();
    let m = Machine::new(&mock, 10.0);
    let o = m.wisp(&["fetch"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("datasource:     MAAS (http://127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("instance-id:    8kq3dx"), "{out}");
    assert!(out.contains("local-hostname: node1.maas"), "{out}");
    assert!(
        out.contains("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn0"),
        "{out}"
    );
    assert!(
        out.contains("cloud-config keys: ntp, snap, system_info"),
        "{out}"
    );
    assert!(
        out.contains("cloud-config keys: hostname, users, runcmd"),
        "{out}"
    );
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deployed));
    // The cache is root-only.
    let state = m.path("/var/db/wisp");
    assert_eq!(mode(&state), 0o700);
    for f in ["instance-data.json", "user-data", "vendor-data"] {
        assert_eq!(mode(&state.join(f)), 0o600, "{f}");
    }
}

#[test]
fn fetch_json_and_query() {
    let mock = mock();
    let m = Machine::new(&mock, 10.0);
    let o = m.wisp(&["--format", "json", "fetch"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["instance_id"], SYSTEM_ID);
    assert_eq!(v["user_data"]["parts"][0]["kind"], "cloud-config");
    assert_eq!(v["vendor_data"]["cloud_config_keys"][0], "ntp");

    let q = |args: &[&str]| stdout(&m.wisp(args));
    assert_eq!(q(&["query", "v1.local_hostname"]), "node1.maas\n");
    assert_eq!(q(&["query", "local_hostname"]), "node1.maas\n");
    assert_eq!(q(&["query", "ds.meta_data.instance-id"]), "8kq3dx\n");
    assert!(q(&["query", "--user-data"]).starts_with("#cloud-config\nhostname: node1"));
    assert!(q(&["query", "--vendor-data"]).starts_with("#cloud-config\nntp:"));
    let all: serde_json::Value = serde_json::from_str(&q(&["query", "--all"])).unwrap();
    assert_eq!(all["v1"]["cloud_name"], "maas");
    assert_eq!(all["datasource"], "MAAS");
    let keys = q(&["query", "--list-keys"]);
    assert!(keys.lines().any(|l| l == "v1"), "{keys}");
    let o = m.wisp(&["query", "v1.nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no key \"v1.nope\""));
}

#[test]
fn metadata_only_does_not_deploy() {
    let mock = mock();
    let m = Machine::new(&mock, 10.0);
    let o = m.wisp(&["fetch", "--metadata-only"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("user-data:      not fetched"));
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deploying));
    assert!(mock
        .requests()
        .iter()
        .all(|r| !r.path.ends_with("user-data")));
}

#[test]
fn dry_run_changes_nothing_here_or_on_maas() {
    let mock = mock();
    let m = Machine::new(&mock, 10.0);
    let o = m.wisp(&["--dry-run", "fetch"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("instance-id:    8kq3dx"));
    assert!(!m.path("/var/db/wisp").exists());
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deploying));
}

#[test]
fn clock_skew_is_kept_for_the_next_run() {
    let mock = mock();
    mock.set_faults(Faults {
        clock_offset_secs: 7200,
        ..Default::default()
    });
    let m = Machine::new(&mock, 10.0);
    let o = m.wisp(&["fetch", "--metadata-only"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Refused at first (the items are asked at once: the first refusal fixes the clock for all).
    assert!(mock.requests().iter().any(|r| r.status == 401));
    let skew: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.path("/var/db/wisp/oauth-skew.json")).unwrap())
            .unwrap();
    let key = format!("127.0.0.1:{}", mock.addr().port());
    let s = skew[&key].as_i64().unwrap();
    assert!((7195..=7205).contains(&s), "{skew}");
    assert_eq!(mode(&m.path("/var/db/wisp/oauth-skew.json")), 0o600);
    // The next run (a later stage, the next boot) is not refused at all.
    let before = mock.requests().len();
    let o = m.wisp(&["fetch"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let later: Vec<(String, u16)> = mock.requests()[before..]
        .iter()
        .map(|r| (r.path.clone(), r.status))
        .collect();
    assert!(later.iter().all(|r| r.1 == 200), "{later:?}");
}

#[test]
fn unreachable_maas_is_a_clear_failure_after_max_wait() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let m = Machine::with_config(&format!(
        "datasource:\n  MAAS:\n    metadata_url: http://127.0.0.1:{port}/MAAS/metadata/\n    consumer_key: a\n    token_key: b\n    token_secret: c\n    max_wait: 1.5\n"
    ));
    let start = Instant::now();
    let o = m.wisp(&["fetch"]);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("wisp: error: datasource MAAS: gave up after"),
        "{err}"
    );
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn malformed_config_names_file_line_and_key() {
    let m = Machine::with_config(
        "datasource:\n  MAAS:\n    metadata_url: http://x/\n    timeout: [1, 2]\n",
    );
    let o = m.wisp(&["fetch"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("etc/wisp/wisp.yaml"), "{err}");
    assert!(err.contains("datasource.MAAS.timeout"), "{err}");
    assert!(err.contains("line 4"), "{err}");
}

#[test]
fn no_datasource_is_a_clear_failure() {
    let m = Machine::with_config("manage_etc_hosts: true\n");
    let o = m.wisp(&["fetch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no datasource is configured"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn secrets_never_reach_the_output_or_the_log() {
    let mock = mock_with(|f| {
        f.machines[0].user_data =
            Some("#cloud-config\nchpasswd:\n  users:\n    - {name: root, password: Sup3rSecretPw, type: text}\n".into())
    });
    mock.set_faults(Faults {
        clock_offset_secs: 3600,
        fail_503: 1,
        retry_after_secs: Some(0),
        ..Default::default()
    });
    let m = Machine::new(&mock, 10.0);
    for format in ["text", "json"] {
        let o = m.wisp(&["-vv", "--format", format, "fetch"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(!all.contains(TOKEN_SECRET), "token secret leaked:\n{all}");
        assert!(!all.contains("Sup3rSecretPw"), "password leaked:\n{all}");
        assert!(all.contains("chpasswd"), "the summary still names the key");
    }
    // With a wrong secret, the error does not carry it either.
    let bad = config_for(&mock, 2.0).replace(TOKEN_SECRET, "WrongSecretValue");
    let m = Machine::with_config(&bad);
    let o = m.wisp(&["-vv", "fetch"]);
    assert_eq!(o.status.code(), Some(1));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("Invalid signature"), "{all}");
    assert!(!all.contains("WrongSecretValue"), "{all}");
}

#[test]
fn reporting_section_alone_is_enough() {
    let mock = mock();
    let m = Machine::with_config(&format!(
        "reporting:\n  maas:\n    type: webhook\n    endpoint: {}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\n",
        mock.status_url(SYSTEM_ID)
    ));
    let o = m.wisp(&["fetch", "--metadata-only"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("instance-id:    8kq3dx"));
}

#[test]
fn includes_are_fetched_with_the_same_client() {
    let mock = mock_with(|f| {
        f.files
            .insert("extra.cfg".into(), "#cloud-config\ntimezone: UTC\n".into());
        f.machines[0].user_data = None;
    });
    let url = format!("http://{}/files/extra.cfg", mock.addr());
    let mock2 = mock_with(|f| f.machines[0].user_data = Some(format!("#include\n{url}\n")));
    let m = Machine::new(&mock2, 10.0);
    let o = m.wisp(&["fetch"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("cloud-config keys: timezone"),
        "{}",
        stdout(&o)
    );
    assert!(mock.requests().iter().any(|r| r.path == "/files/extra.cfg"));
}

#[test]
fn nocloud_seed_directory() {
    let m = Machine::with_config(
        "datasource_list: [NoCloud]\ndatasource:\n  NoCloud:\n    seedfrom: /seed/\n",
    );
    std::fs::create_dir_all(m.path("/seed")).unwrap();
    std::fs::write(
        m.path("/seed/meta-data"),
        "instance-id: iid-local01\nlocal-hostname: bsd1\n",
    )
    .unwrap();
    std::fs::write(m.path("/seed/user-data"), "#cloud-config\nhostname: bsd1\n").unwrap();
    let o = m.wisp(&["fetch"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("datasource:     NoCloud"), "{out}");
    assert!(out.contains("instance-id:    iid-local01"), "{out}");
    assert_eq!(stdout(&m.wisp(&["query", "v1.cloud_name"])), "nocloud\n");
}

/// Review of issue 13 (7, 8): NoCloud's meta-data `launch-index` is the instance's (as
/// cloud-init's `DataSource.launch_index` for every datasource): user-data parts for another
/// index are left out; vendor-data is not filtered (cloud-init filters user-data only).
#[test]
fn nocloud_launch_index_filters_user_data_but_not_vendor_data() {
    let m = Machine::with_config(
        "datasource_list: [NoCloud]\ndatasource:\n  NoCloud:\n    seedfrom: /seed/\n",
    );
    std::fs::create_dir_all(m.path("/seed")).unwrap();
    std::fs::write(
        m.path("/seed/meta-data"),
        "instance-id: iid-local01\nlaunch-index: 1\n",
    )
    .unwrap();
    let archive = "#cloud-config-archive\n\
        - {launch-index: 1, content: \"#cloud-config\\nhostname: one\\n\"}\n\
        - {launch-index: 2, content: \"#cloud-config\\ntimezone: UTC\\n\"}\n";
    std::fs::write(m.path("/seed/user-data"), archive).unwrap();
    std::fs::write(
        m.path("/seed/vendor-data"),
        archive.replace("hostname: one", "ntp: {enabled: true}"),
    )
    .unwrap();
    let o = m.wisp(&["--format", "json", "fetch"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["user_data"]["cloud_config_keys"],
        serde_json::json!(["hostname"]),
        "{v}"
    );
    assert_eq!(
        v["vendor_data"]["cloud_config_keys"],
        serde_json::json!(["ntp", "timezone"]),
        "{v}"
    );
}
