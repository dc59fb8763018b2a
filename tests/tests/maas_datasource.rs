//! The MAAS datasource against the mock: OAuth, clock skew, retries, deadlines, the
//! enlistment answer, and the user-data side effect.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mock_maas::{Faults, MachineStatus, MockMaas, TimestampCheck};
use wisp_datasources::http::{HttpClient, HttpOptions};
use wisp_datasources::maas::{Maas, MaasConfig};
use wisp_datasources::oauth::{Credentials, MemorySkewStore, SkewStore};
use wisp_datasources::{Datasource, DatasourceError};

fn maas_with(
    mock: &MockMaas,
    creds: Credentials,
    max_wait_ms: u64,
    skew: Arc<dyn SkewStore>,
) -> Maas {
    let mut cfg = MaasConfig::new(mock.metadata_url(), creds);
    cfg.max_wait = Duration::from_millis(max_wait_ms);
    cfg.timeout = Duration::from_millis(1000);
    Maas::new(cfg, HttpClient::new(&HttpOptions::default()).unwrap(), skew).unwrap()
}

fn maas(mock: &MockMaas) -> (Maas, Arc<MemorySkewStore>) {
    let skew = Arc::new(MemorySkewStore::default());
    (maas_with(mock, creds(), 5000, skew.clone()), skew)
}

/// Every metadata item was answered in the end (they are asked at once, in any order).
fn every_item_answered(reqs: &[mock_maas::LoggedRequest]) {
    for item in [
        "instance-id",
        "local-hostname",
        "public-keys",
        "vendor-data",
    ] {
        assert!(
            reqs.iter()
                .any(|r| r.path.ends_with(item) && r.status == 200),
            "{item}: {reqs:?}"
        );
    }
}

#[test]
fn full_fetch_in_protocol_order() {
    let mock = mock();
    let (mut ds, _) = maas(&mock);
    let md = ds.fetch_metadata().unwrap();
    assert_eq!(md.instance_id, SYSTEM_ID);
    assert_eq!(md.local_hostname.as_deref(), Some("node1.maas"));
    assert_eq!(md.public_keys.len(), 1);
    let vendor = String::from_utf8(md.vendor_data.unwrap()).unwrap();
    assert!(vendor.starts_with("#cloud-config\nntp:"), "{vendor}");
    // Metadata alone does not deploy the machine.
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deploying));
    let ud = ds.fetch_user_data().unwrap().unwrap();
    assert!(ud.starts_with(b"#cloud-config\nhostname: node1"));
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deployed));
    let mut paths: Vec<String> = mock.requests().iter().map(|r| r.path.clone()).collect();
    let v = "/MAAS/metadata/2012-03-01";
    // The metadata items are asked at once (in any order); user-data strictly last.
    assert_eq!(paths.pop(), Some(format!("{v}/user-data")));
    paths.sort();
    assert_eq!(
        paths,
        vec![
            format!("{v}/meta-data/instance-id"),
            format!("{v}/meta-data/local-hostname"),
            format!("{v}/meta-data/public-keys"),
            format!("{v}/meta-data/vendor-data"),
        ]
    );
    assert!(mock.requests().iter().all(|r| r.status == 200));
}

#[test]
fn every_request_is_signed_with_a_unique_nonce() {
    let mock = mock();
    mock.set_faults(Faults {
        fail_503: 2,
        retry_after_secs: Some(0),
        ..Default::default()
    });
    let (mut ds, _) = maas(&mock);
    ds.fetch_metadata().unwrap();
    ds.fetch_user_data().unwrap();
    let reqs = mock.requests();
    assert!(reqs.len() >= 7);
    let mut nonces = HashSet::new();
    for r in &reqs {
        let nonce = r.oauth.nonce.clone().expect("signed");
        assert!(nonces.insert(nonce), "nonce reused in {reqs:?}");
        assert_eq!(r.oauth.signature_method.as_deref(), Some("PLAINTEXT"));
        assert_eq!(r.oauth.token.as_deref(), Some(TOKEN_KEY));
    }
}

#[test]
fn server_clock_an_hour_ahead_is_recovered_and_remembered() {
    let mock = mock();
    mock.set_faults(Faults {
        clock_offset_secs: 3600,
        ..Default::default()
    });
    let (mut ds, skew) = maas(&mock);
    let md = ds.fetch_metadata().unwrap();
    assert_eq!(md.instance_id, SYSTEM_ID);
    let reqs = mock.requests();
    // The items are asked at once: each may be refused once, before the skew was learnt, and
    // none twice. The mock logs requests as they end, so a refusal of one item can come after
    // another's retry was answered: count per item, not by position.
    let refused = reqs.iter().filter(|r| r.status == 401).count();
    assert!((1..=4).contains(&refused), "{reqs:?}");
    for r in reqs.iter().filter(|r| r.status == 401) {
        let same: Vec<u16> = reqs
            .iter()
            .filter(|x| x.path == r.path)
            .map(|x| x.status)
            .collect();
        assert_eq!(
            same,
            [401, 200],
            "{}: refused once, then answered: {reqs:?}",
            r.path
        );
    }
    assert!(
        reqs.iter().all(|r| [200, 401].contains(&r.status)),
        "{reqs:?}"
    );
    every_item_answered(&reqs);
    let key = format!("127.0.0.1:{}", mock.addr().port());
    let s = skew.get(&key).unwrap();
    assert!((3595..=3605).contains(&s), "skew {s}");
    // A later run with the same store signs right the first time.
    let (mut ds2, _) = (maas_with(&mock, creds(), 5000, skew.clone()), ());
    ds2.fetch_user_data().unwrap();
    assert_eq!(mock.requests().last().unwrap().status, 200);
    assert_eq!(mock.requests().len(), reqs.len() + 1);
}

#[test]
fn server_clock_an_hour_behind() {
    // MAAS only refuses timestamps in the past: a client ahead of the server is accepted as is.
    let mock = mock();
    mock.set_faults(Faults {
        clock_offset_secs: -3600,
        ..Default::default()
    });
    let (mut ds, skew) = maas(&mock);
    ds.fetch_metadata().unwrap();
    assert!(mock.requests().iter().all(|r| r.status == 200));
    // A server that checks both ways refuses once; the negative skew is learnt.
    let strict = common::mock();
    strict.set_faults(Faults {
        clock_offset_secs: -3600,
        timestamp_check: TimestampCheck::Both,
        ..Default::default()
    });
    let (mut ds, skew2) = maas(&strict);
    ds.fetch_metadata().unwrap();
    assert_eq!(strict.requests()[0].status, 401);
    let key = format!("127.0.0.1:{}", strict.addr().port());
    let s = skew2.get(&key).unwrap();
    assert!((-3605..=-3595).contains(&s), "skew {s}");
    drop(skew);
}

#[test]
fn three_503s_with_retry_after_are_recovered() {
    let mock = mock();
    mock.set_faults(Faults {
        fail_503: 3,
        retry_after_secs: Some(1),
        ..Default::default()
    });
    let (mut ds, _) = maas(&mock);
    let start = Instant::now();
    let md = ds.fetch_metadata().unwrap();
    assert_eq!(md.instance_id, SYSTEM_ID);
    let reqs = mock.requests();
    assert_eq!(reqs.iter().filter(|r| r.status == 503).count(), 3);
    // Every item came in the end; the refused ones waited the Retry-After second (the items
    // are asked at once, so the three waits overlap).
    every_item_answered(&reqs);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn dropped_connections_and_slow_answers_are_survived() {
    let mock = mock();
    mock.set_faults(Faults {
        drop_connections: 2,
        delay_ms: 200,
        ..Default::default()
    });
    let (mut ds, _) = maas(&mock);
    assert_eq!(ds.fetch_metadata().unwrap().instance_id, SYSTEM_ID);
    // Two connections were dropped (whichever items they carried), and asked again.
    let reqs = mock.requests();
    assert_eq!(reqs.iter().filter(|r| r.status == 0).count(), 2, "{reqs:?}");
}

#[test]
fn an_answer_slower_than_the_timeout_fails_within_max_wait() {
    let mock = mock();
    mock.set_faults(Faults {
        delay_ms: 3000,
        ..Default::default()
    });
    let skew = Arc::new(MemorySkewStore::default());
    let mut cfg = MaasConfig::new(mock.metadata_url(), creds());
    cfg.max_wait = Duration::from_millis(1500);
    cfg.timeout = Duration::from_millis(300);
    let mut ds = Maas::new(cfg, HttpClient::new(&HttpOptions::default()).unwrap(), skew).unwrap();
    let start = Instant::now();
    let e = ds.fetch_metadata().unwrap_err().to_string();
    // Each attempt gets at least a second once the deadline is near, so allow some slack.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert!(
        e.contains("gave up") && e.contains("no answer within"),
        "{e}"
    );
}

/// Issue 16 (5): `max_wait` bounds the whole fetch — all items, retries and attempts — from
/// the first request. Every answer is slow and one item keeps failing: the datasource gives up
/// within about max_wait + timeout, not after a fresh wait per item and per retry.
#[test]
fn max_wait_bounds_the_whole_fetch_not_each_item() {
    let mock = mock();
    mock.set_faults(Faults {
        delay_ms: 1500,
        fail_paths: vec!["meta-data/local-hostname".into()],
        ..Default::default()
    });
    let skew = Arc::new(MemorySkewStore::default());
    let mut cfg = MaasConfig::new(mock.metadata_url(), creds());
    cfg.max_wait = Duration::from_secs(3);
    cfg.timeout = Duration::from_secs(2);
    let mut ds = Maas::new(cfg, HttpClient::new(&HttpOptions::default()).unwrap(), skew).unwrap();
    let start = Instant::now();
    let e = ds.fetch_metadata().unwrap_err().to_string();
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_millis(5000),
        "took {elapsed:?}, more than max_wait + timeout: {e}"
    );
    assert!(e.contains("gave up") && e.contains("local-hostname"), "{e}");
    // The user-data asked after the wait is spent gets one try of `timeout`, not a wait of its own.
    mock.update_faults(|f| f.fail_paths = vec!["user-data".into()]);
    let start = Instant::now();
    assert!(ds.fetch_user_data().is_err());
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    let asked = mock.requests();
    let asked = asked.iter().filter(|r| r.path.ends_with("/user-data"));
    assert_eq!(asked.count(), 1);
}

#[test]
fn unreachable_service_fails_clearly_after_max_wait() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let skew = Arc::new(MemorySkewStore::default());
    let mut cfg = MaasConfig::new(format!("http://127.0.0.1:{port}/MAAS/metadata/"), creds());
    cfg.max_wait = Duration::from_millis(1500);
    let mut ds = Maas::new(cfg, HttpClient::new(&HttpOptions::default()).unwrap(), skew).unwrap();
    let start = Instant::now();
    let e = ds.fetch_metadata().unwrap_err();
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let msg = e.to_string();
    assert!(
        matches!(e, DatasourceError::GaveUp { attempts, .. } if attempts > 1),
        "{msg}"
    );
    assert!(
        msg.contains("cannot connect") && msg.contains("instance-id"),
        "{msg}"
    );
    assert!(msg.contains("max_wait"), "{msg}");
}

#[test]
fn unsigned_requests_get_enlistment_data_which_is_an_error() {
    let mock = mock();
    mock.set_faults(Faults {
        strip_authorization: true,
        ..Default::default()
    });
    let (mut ds, _) = maas(&mock);
    let e = ds.fetch_metadata().unwrap_err();
    assert!(matches!(e, DatasourceError::Enlistment { .. }), "{e}");
    assert!(e.to_string().contains("not signed"));
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deploying));
}

#[test]
fn no_user_data_is_absent_and_still_deploys() {
    let mock = mock_with(|f| f.machines[0].user_data = None);
    let (mut ds, _) = maas(&mock);
    ds.fetch_metadata().unwrap();
    assert_eq!(ds.fetch_user_data().unwrap(), None);
    assert_eq!(mock.requests().last().unwrap().status, 404);
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deployed));
}

#[test]
fn owner_without_keys_gives_an_empty_list() {
    let mock = mock_with(|f| f.machines[0].public_keys.clear());
    let (mut ds, _) = maas(&mock);
    assert!(ds.fetch_metadata().unwrap().public_keys.is_empty());
}

#[test]
fn a_wrong_token_fails_fast_without_waiting() {
    let mock = mock();
    let mut bad = creds();
    bad.token_secret = "wrong".into();
    let skew = Arc::new(MemorySkewStore::default());
    let mut ds = maas_with(&mock, bad, 30_000, skew);
    let start = Instant::now();
    let e = ds.fetch_metadata().unwrap_err().to_string();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(
        e.contains("HTTP 401") && e.contains("Invalid signature"),
        "{e}"
    );
    assert!(!e.contains("wrong"), "the secret must not appear: {e}");
}

#[test]
fn a_user_token_is_refused_with_403() {
    let mock = mock_with(|f| {
        f.user_tokens.push(mock_maas::machines::UserToken {
            consumer_key: "UserCK".into(),
            token_key: "UserTK".into(),
            token_secret: "UserTS".into(),
        })
    });
    let skew = Arc::new(MemorySkewStore::default());
    let user = Credentials {
        consumer_key: "UserCK".into(),
        consumer_secret: String::new(),
        token_key: "UserTK".into(),
        token_secret: "UserTS".into(),
    };
    let mut ds = maas_with(&mock, user, 5000, skew);
    let e = ds.fetch_metadata().unwrap_err().to_string();
    assert!(e.contains("HTTP 403"), "{e}");
}

#[test]
fn gzip_answers_are_decoded() {
    let mock = mock();
    mock.set_faults(Faults {
        gzip: true,
        ..Default::default()
    });
    let (mut ds, _) = maas(&mock);
    let md = ds.fetch_metadata().unwrap();
    assert_eq!(md.instance_id, SYSTEM_ID);
    assert!(ds
        .fetch_user_data()
        .unwrap()
        .unwrap()
        .starts_with(b"#cloud-config"));
    assert!(mock.requests().iter().all(|r| r
        .accept_encoding
        .as_deref()
        .is_some_and(|a| a.contains("gzip"))));
}

#[test]
fn oversized_user_data_is_a_clear_error() {
    let mock = mock_with(|f| {
        f.machines[0].user_data = Some(format!("#cloud-config\n#{}\n", "x".repeat(4096)))
    });
    let skew = Arc::new(MemorySkewStore::default());
    let mut cfg = MaasConfig::new(mock.metadata_url(), creds());
    cfg.max_user_data_bytes = 1024;
    let mut ds = Maas::new(cfg, HttpClient::new(&HttpOptions::default()).unwrap(), skew).unwrap();
    let e = ds.fetch_user_data().unwrap_err().to_string();
    assert!(
        e.contains("1024-byte limit") && e.contains("user-data"),
        "{e}"
    );
}

#[test]
fn vendor_data_is_served_folded_as_maas_does_and_parsed_back() {
    let mock = mock();
    let (mut ds, _) = maas(&mock);
    let md = ds.fetch_metadata().unwrap();
    let expected = common::demo_machines().machines[0]
        .vendor_data
        .clone()
        .unwrap();
    assert_eq!(
        String::from_utf8(md.vendor_data.unwrap()).unwrap(),
        expected
    );
}

/// Issue 16 (21): a redirect to another origin is not followed — that host's answer would
/// become the instance id and the keys — and the datasource fails saying so, at once.
#[test]
fn a_redirect_to_another_host_is_refused() {
    let other = mock_maas::server::FixedServer::start(vec![
        ("instance-id".into(), "i-evil".into()),
        ("local-hostname".into(), "evil.example".into()),
        ("public-keys".into(), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn0YbYy2CzC8tq1M6dVtT5q8Zb3K0rJmJdX9w0r2y3q mallory".into()),
    ])
    .unwrap();
    let mock = mock();
    mock.set_faults(Faults {
        redirect_to: Some(other.url()),
        ..Default::default()
    });
    let (mut ds, _) = maas(&mock);
    let start = Instant::now();
    let e = ds.fetch_metadata().unwrap_err().to_string();
    assert!(
        e.contains("redirected to") && e.contains(&other.url()) && e.contains("another origin"),
        "{e}"
    );
    assert_eq!(other.requests(), 0, "the other host was asked");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let e = ds.fetch_user_data().unwrap_err().to_string();
    assert!(e.contains("redirected to"), "{e}");
}

/// Issue 16 (21): a 200 HTML page (a captive portal) is not metadata.
#[test]
fn an_html_page_is_not_metadata() {
    let mock = mock();
    mock.set_faults(Faults {
        html: true,
        ..Default::default()
    });
    let (mut ds, _) = maas(&mock);
    let e = ds.fetch_metadata().unwrap_err().to_string();
    assert!(e.contains("HTML page") && e.contains("meta-data/"), "{e}");
    let e = ds.fetch_user_data().unwrap_err().to_string();
    assert!(e.contains("HTML page") && e.contains("user-data"), "{e}");
    // Not Deployed by an answer that was not MAAS's.
    assert_eq!(mock.status(SYSTEM_ID), Some(MachineStatus::Deploying));
}

/// Issue 16 (21): each item is checked for its shape; the error names the item and why.
#[test]
fn answers_of_the_wrong_shape_are_refused() {
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn0YbYy2CzC8tq1M6dVtT5q8Zb3K0rJmJdX9w0r2y3q jane@laptop";
    let cases: &[(&str, &str, &str, &str)] = &[
        ("i-1\nrm -rf /", "node1.maas", key, "instance-id"),
        ("8kq3dx", "node1.maas; reboot", key, "local-hostname"),
        ("8kq3dx", "-node1.maas", key, "local-hostname"),
        ("8kq3dx", "node1.maas", "Login required", "public-keys[0]"),
        (
            "8kq3dx",
            "node1.maas",
            &format!("{key}\nssh-rsa AAAA x"),
            "public-keys[1]",
        ),
    ];
    for (id, host, keys, field) in cases {
        let fake = mock_maas::server::FixedServer::start(vec![
            ("instance-id".into(), id.to_string()),
            ("local-hostname".into(), host.to_string()),
            ("public-keys".into(), keys.to_string()),
        ])
        .unwrap();
        let mut cfg = MaasConfig::new(format!("{}/MAAS/metadata/", fake.url()), creds());
        cfg.max_wait = Duration::from_secs(2);
        let skew = Arc::new(MemorySkewStore::default());
        let mut ds =
            Maas::new(cfg, HttpClient::new(&HttpOptions::default()).unwrap(), skew).unwrap();
        let e = ds.fetch_metadata().unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "meta-data/{}: {field}: ",
                field.split('[').next().unwrap()
            )),
            "{field}: {e}"
        );
    }
    // And the right shapes pass (empty keys are fine).
    let fake = mock_maas::server::FixedServer::start(vec![
        ("instance-id".into(), "8kq3dx\n".into()),
        ("local-hostname".into(), "node1.maas".into()),
        ("public-keys".into(), String::new()),
    ])
    .unwrap();
    let mut cfg = MaasConfig::new(format!("{}/MAAS/metadata/", fake.url()), creds());
    cfg.max_wait = Duration::from_secs(2);
    let skew = Arc::new(MemorySkewStore::default());
    let mut ds = Maas::new(cfg, HttpClient::new(&HttpOptions::default()).unwrap(), skew).unwrap();
    let md = ds.fetch_metadata().unwrap();
    assert_eq!(md.instance_id, "8kq3dx");
    assert!(md.public_keys.is_empty());
}

/// Issue 16 (21): a NoCloud seed over HTTP follows the same origin rule.
#[test]
fn a_nocloud_net_seed_is_not_taken_from_another_host() {
    use wisp_datasources::nocloud::{NoCloud, Seed};
    let other = mock_maas::server::FixedServer::start(vec![(
        "meta-data".into(),
        "instance-id: i-evil\n".into(),
    )])
    .unwrap();
    let mock = mock();
    mock.set_faults(Faults {
        redirect_to: Some(other.url()),
        ..Default::default()
    });
    let seed = Seed::Url(format!("http://{}/seed/", mock.addr()));
    let client = HttpClient::new(&HttpOptions::default()).unwrap();
    let mut ds = NoCloud::new(seed, Some(client), Duration::from_secs(1));
    let e = ds.fetch_metadata().unwrap_err().to_string();
    assert!(
        e.contains("redirected to") && e.contains("/seed/meta-data"),
        "{e}"
    );
    assert_eq!(other.requests(), 0);
}
