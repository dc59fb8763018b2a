//! phone_home at boot, end to end: the mock MAAS deploys a machine whose user-data asks for a
//! POST to a loopback server of the test's; the POST is made once per instance, in the final
//! stage, and the module's start and finish go to MAAS.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn wisp(root: &Path, args: &[&str]) -> Output {
    Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(root)
        .args(args)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .unwrap()
}

/// The requests a test server received: first line and body.
type Seen = mock_maas::post_sink::Received;

/// A loopback server answering 200, keeping each request's first line and body.
fn serve() -> (std::net::SocketAddr, Seen) {
    serve_answering(mock_maas::post_sink::OK)
}

/// [`serve`], answering `answer` to every request.
fn serve_answering(answer: &'static str) -> (std::net::SocketAddr, Seen) {
    mock_maas::post_sink::start(answer).unwrap()
}

#[test]
fn the_post_is_made_once_per_instance_and_reported_to_maas() {
    if !can_apply_linux() {
        return;
    }
    let (addr, seen) = serve();
    // The datasource's names are posted (cloud-init's get_hostname), not the cloud-config's;
    // a field given twice once.
    let ud = format!(
        "#cloud-config\npreserve_hostname: true\nfqdn: not-posted.example.org\n\
         phone_home:\n  url: http://{addr}/booted/$INSTANCE_ID\n  \
         post: [instance_id, hostname, fqdn, instance_id]\n"
    );
    let mut fqdn = String::new();
    let mock = mock_with(|f| {
        f.machines[0].user_data = Some(ud);
        fqdn = f.machines[0].hostname.clone();
    });
    let t = linux_root();
    let r = t.path();
    std::fs::create_dir_all(r.join("etc/wisp")).unwrap();
    std::fs::write(r.join("etc/wisp/wisp.yaml"), config_for(&mock, 3.0)).unwrap();
    let o = wisp(r, &["init"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let posts = seen.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "{}", stderr(&o));
    let short = fqdn.split('.').next().unwrap();
    assert!(fqdn.contains('.'), "{fqdn}");
    assert_eq!(
        posts[0],
        (
            format!("POST /booted/{SYSTEM_ID} HTTP/1.1"),
            format!("instance_id={SYSTEM_ID}&hostname={short}&fqdn={fqdn}")
        )
    );
    let names: Vec<String> = mock
        .events(SYSTEM_ID)
        .iter()
        .map(|e| format!("{} {} {}", e["event_type"], e["name"], e["result"]))
        .collect();
    for want in [
        "\"start\" \"modules-final/config-phone_home\"",
        "\"finish\" \"modules-final/config-phone_home\" \"SUCCESS\"",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(want)),
            "no {want}: {names:?}"
        );
    }
    // The same instance again: nothing posted.
    let o = wisp(r, &["init"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

/// Review of issue 13 (1, 2): a POST the server refuses is a warning (as cloud-init's
/// cc_phone_home logs it and goes on): the boot does not fail because of it, the module is
/// done (not tried again at the next boot), and the URL's password is in no log line, event or
/// result.
#[test]
fn a_refused_post_is_a_warning_and_its_password_is_shown_nowhere() {
    if !can_apply_linux() {
        return;
    }
    let (addr, seen) = serve_answering(
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
    let ud = format!(
        "#cloud-config\nphone_home:\n  url: 'http://u:hunter2@{addr}/x/$INSTANCE_ID'\n  \
         post: [instance_id]\n  tries: 2\n"
    );
    let mock = mock_with(|f| f.machines[0].user_data = Some(ud));
    let t = linux_root();
    let r = t.path();
    std::fs::create_dir_all(r.join("etc/wisp")).unwrap();
    std::fs::write(r.join("etc/wisp/wisp.yaml"), config_for(&mock, 3.0)).unwrap();
    let o = wisp(r, &["init"]);
    assert_eq!(seen.lock().unwrap().len(), 2, "{}", stderr(&o));
    let events = mock.events(SYSTEM_ID);
    let finish = |name: &str| {
        events
            .iter()
            .filter(|e| e["event_type"] == "finish" && e["name"] == name)
            .map(|e| e["result"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        finish("modules-final/config-phone_home"),
        ["WARN"],
        "{events:?}"
    );
    assert_ne!(finish("modules-final"), ["FAIL"], "{events:?}");
    let results = std::fs::read_to_string(r.join("var/db/wisp/results.json")).unwrap();
    assert!(results.contains("HTTP 503"), "{results}");
    let all = format!(
        "{}{}{events:?}{results}",
        stderr(&o),
        std::fs::read_to_string(r.join("var/log/wisp.log")).unwrap_or_default(),
    );
    assert!(all.contains("retrying"), "{all}");
    assert!(!all.contains("hunter2"), "the password was shown: {all}");
    // Done: the next boot of the same instance does not post again.
    let o = wisp(r, &["init"]);
    assert_eq!(seen.lock().unwrap().len(), 2, "{}", stderr(&o));
}
