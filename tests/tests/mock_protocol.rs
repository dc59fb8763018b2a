//! The mock follows maas-protocol.md §2–4: checked here with raw HTTP, independent of wisp's
//! client code, so that the agent's tests stand on a mock that is itself tested.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use mock_maas::MachineStatus;
use wisp_datasources::http::{HttpClient, HttpOptions, Request, Response};
use wisp_datasources::oauth::{authorization_header, new_nonce};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn send(method: &str, url: &str, auth: Option<String>, body: Option<&[u8]>) -> Response {
    let client = HttpClient::new(&HttpOptions::default()).unwrap();
    let mut req = Request::get(url, std::time::Duration::from_secs(5));
    req.method = method;
    req.authorization = auth.as_deref();
    req.body = body.map(<[u8]>::to_vec);
    req.content_type = body.map(|_| "application/json");
    client.send(req).unwrap()
}

fn signed(method: &str, url: &str, body: Option<&[u8]>) -> Response {
    send(
        method,
        url,
        Some(authorization_header(&creds(), now(), &new_nonce())),
        body,
    )
}

fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[test]
fn indexes_and_items() {
    let m = mock();
    let base = m.metadata_url();
    assert_eq!(text(&signed("GET", &base, None)), "2012-03-01\nlatest");
    assert_eq!(send("GET", &base, None, None).status, 401);
    let r = signed("GET", &format!("{base}latest/"), None);
    assert_eq!(text(&r), "maas-commissioning-scripts\nmeta-data\nuser-data");
    let r = signed("GET", &format!("{base}2012-03-01/meta-data/"), None);
    assert_eq!(
        text(&r),
        "instance-id\nlocal-hostname\npublic-keys\nvendor-data\nx509"
    );
    let r = signed(
        "GET",
        &format!("{base}2012-03-01/meta-data/instance-id"),
        None,
    );
    assert_eq!((r.status, text(&r).as_str()), (200, SYSTEM_ID));
    assert!(r.content_type.unwrap().starts_with("text/plain"));
    let r = signed(
        "GET",
        &format!("{base}2012-03-01/meta-data/vendor-data"),
        None,
    );
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/x-yaml; charset=utf-8")
    );
    assert!(text(&r).starts_with("cloud-init: \"#cloud-config\\n"));
    // The item is cut at the first '/'.
    let r = signed(
        "GET",
        &format!("{base}2012-03-01/meta-data/local-hostname/extra"),
        None,
    );
    assert_eq!(text(&r), "node1.maas");
}

#[test]
fn not_found_texts() {
    let m = mock();
    let base = m.metadata_url();
    let r = signed(
        "GET",
        &format!("{base}2009-04-04/meta-data/instance-id"),
        None,
    );
    assert_eq!(
        (r.status, text(&r).as_str()),
        (404, "Unknown metadata version: 2009-04-04")
    );
    let r = signed("GET", &format!("{base}latest/meta-data/frobs"), None);
    assert_eq!(
        (r.status, text(&r).as_str()),
        (404, "Unknown metadata attribute: frobs")
    );
}

#[test]
fn trailing_slash_traps_fall_through_to_the_version_index() {
    let m = mock();
    let base = m.metadata_url();
    let index = "maas-commissioning-scripts\nmeta-data\nuser-data";
    assert_eq!(
        text(&signed("GET", &format!("{base}latest/meta-data"), None)),
        index
    );
    assert_eq!(
        text(&signed("GET", &format!("{base}latest/user-data/"), None)),
        index
    );
    // And that GET did not deploy the machine.
    assert_eq!(m.status(SYSTEM_ID), Some(MachineStatus::Deploying));
}

#[test]
fn oauth_rules() {
    let m = mock();
    let url = format!("{}latest/meta-data/instance-id", m.metadata_url());
    // Expired: more than 300 s in the past, with Date and WWW-Authenticate.
    let r = send(
        "GET",
        &url,
        Some(authorization_header(&creds(), now() - 301, &new_nonce())),
        None,
    );
    assert_eq!(r.status, 401);
    assert!(
        text(&r).contains("Expired timestamp: given"),
        "{}",
        text(&r)
    );
    assert!(text(&r).contains("threshold 300"));
    assert!(r.date.is_some());
    // A timestamp in the future is accepted (MAAS checks one way only).
    let r = send(
        "GET",
        &url,
        Some(authorization_header(&creds(), now() + 3600, &new_nonce())),
        None,
    );
    assert_eq!(r.status, 200);
    // Nonce reuse.
    let h = authorization_header(&creds(), now(), "same-nonce");
    assert_eq!(send("GET", &url, Some(h.clone()), None).status, 200);
    let r = send("GET", &url, Some(h), None);
    assert_eq!(r.status, 401);
    assert!(text(&r).contains("Nonce already used"));
    // Wrong signature, wrong version, non-integer timestamp.
    let mut c = creds();
    c.token_secret = "nope".into();
    assert_eq!(
        send(
            "GET",
            &url,
            Some(authorization_header(&c, now(), &new_nonce())),
            None
        )
        .status,
        401
    );
    let h = authorization_header(&creds(), now(), &new_nonce()).replace("\"1.0\"", "\"2.0\"");
    assert_eq!(send("GET", &url, Some(h), None).status, 401);
    let h = authorization_header(&creds(), now(), &new_nonce())
        .replace(&format!("\"{}\"", now()), "\"soon\"");
    assert_eq!(send("GET", &url, Some(h), None).status, 400);
    // Partly signed: the anonymous (enlistment) answer.
    let h = format!("OAuth oauth_token=\"{TOKEN_KEY}\", oauth_consumer_key=\"{CONSUMER_KEY}\"");
    let r = send("GET", &url, Some(h), None);
    assert_eq!(text(&r), "i-maas-enlistment");
    let r = send(
        "GET",
        &url.replace("instance-id", "local-hostname"),
        None,
        None,
    );
    assert_eq!(text(&r), "maas-enlisting-node");
    // A realm parameter is accepted.
    let h = authorization_header(&creds(), now(), &new_nonce()).replacen(
        "OAuth ",
        "OAuth realm=\"\", ",
        1,
    );
    assert_eq!(send("GET", &url, Some(h), None).status, 200);
}

#[test]
fn user_data_get_deploys_even_when_absent() {
    let m = mock_with(|f| f.machines[0].user_data = None);
    let r = signed(
        "GET",
        &format!("{}latest/user-data", m.metadata_url()),
        None,
    );
    assert_eq!((r.status, r.body.len()), (404, 0));
    assert_eq!(m.status(SYSTEM_ID), Some(MachineStatus::Deployed));
    // The version index no longer lists user-data.
    let r = signed("GET", &format!("{}latest/", m.metadata_url()), None);
    assert_eq!(text(&r), "maas-commissioning-scripts\nmeta-data");
}

#[test]
fn status_endpoint_rules() {
    let m = mock();
    let url = m.status_url(SYSTEM_ID);
    let ok = br#"{"event_type":"start","origin":"cloudinit","name":"init-network","description":"x","timestamp":1716416200.1}"#;
    assert_eq!(send("POST", &url, None, Some(ok)).status, 401);
    assert_eq!(signed("POST", &url, Some(ok)).status, 204);
    let non_ascii =
        "{\"event_type\":\"start\",\"origin\":\"o\",\"name\":\"n\",\"description\":\"caf\u{e9}\"}";
    assert_eq!(signed("POST", &url, Some(non_ascii.as_bytes())).status, 400);
    assert_eq!(signed("POST", &url, Some(b"{not json")).status, 400);
    let missing = br#"{"event_type":"start","origin":"o","name":"n"}"#;
    let r = signed("POST", &url, Some(missing));
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("description"));
    let string_ts =
        br#"{"event_type":"start","origin":"o","name":"n","description":"d","timestamp":"1"}"#;
    assert_eq!(signed("POST", &url, Some(string_ts)).status, 400);
    let bad_file = br#"{"event_type":"finish","origin":"o","name":"n","description":"d","result":"WARN","files":[{"name":"x","encoding":"base64","content":""}]}"#;
    assert_eq!(signed("POST", &url, Some(bad_file)).status, 400);
    // A child FAIL is only logged; a top-level FAIL while Deploying fails the deployment.
    let child = br#"{"event_type":"finish","origin":"o","name":"modules-final/config-runcmd","description":"d","result":"FAIL"}"#;
    assert_eq!(signed("POST", &url, Some(child)).status, 204);
    assert_eq!(m.status(SYSTEM_ID), Some(MachineStatus::Deploying));
    let fail = br#"{"event_type":"finish","origin":"o","name":"init-network","description":"metadata unreachable","result":"FAIL"}"#;
    assert_eq!(signed("POST", &url, Some(fail)).status, 204);
    let machine = m.machine(SYSTEM_ID).unwrap();
    assert_eq!(machine.status, MachineStatus::FailedDeployment);
    assert!(machine
        .failure_reason
        .unwrap()
        .contains("metadata unreachable"));
    assert_eq!(machine.events.len(), 3);
    // Another machine's status URL is refused.
    assert_eq!(signed("POST", &m.status_url("other"), Some(ok)).status, 403);
}

#[test]
fn legacy_signal_is_recorded_and_ok_moves_back_to_ready() {
    let m = mock();
    let url = format!("{}2012-03-01/?op=signal", m.metadata_url());
    let body = b"--xx\r\nContent-Disposition: form-data; name=\"status\"\r\n\r\nOK\r\n--xx--\r\n";
    let r = signed("POST", &url, Some(body));
    assert_eq!(r.status, 200);
    let machine = m.machine(SYSTEM_ID).unwrap();
    assert_eq!(machine.signals, vec!["OK"]);
    assert_eq!(machine.status, MachineStatus::Ready);
}
