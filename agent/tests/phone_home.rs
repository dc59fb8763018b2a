//! phone_home (issue 13): the form POST to a loopback server, its exact body, once per
//! instance, never in a dry run, and a URL that is not http(s) refused by name.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::{apply, fresh_root};

/// The requests a test server received: first line and body.
type Seen = mock_maas::post_sink::Received;

/// A loopback server that answers 200 to everything and keeps each request's first line and
/// body.
fn serve() -> (SocketAddr, Seen) {
    serve_answering(mock_maas::post_sink::OK)
}

/// [`serve`], answering `answer` to everything.
fn serve_answering(answer: &'static str) -> (SocketAddr, Seen) {
    mock_maas::post_sink::start(answer).unwrap()
}

fn run(root: &Path, doc: &str, flags: &[&str], instance: bool) -> (Option<i32>, String) {
    let path = root.join("ph.yaml");
    std::fs::write(&path, doc).unwrap();
    let o = if instance {
        std::process::Command::new(env!("CARGO_BIN_EXE_wisp"))
            .args(["--platform", "netbsd"])
            .args(flags)
            .arg("--root")
            .arg(root)
            .arg("--config")
            .arg(common::manifest_path("tests/fixtures/no-config.yaml"))
            .args(["apply", "--instance-id", "i-42", "--user-data"])
            .arg(&path)
            .output()
            .unwrap()
    } else {
        apply("netbsd", root, flags, &path, None)
    };
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn doc(addr: SocketAddr, post: &str) -> String {
    format!(
        "#cloud-config\nusers: []\nssh_deletekeys: false\n\
         preserve_hostname: true\nfqdn: not-posted.example.org\n\
         phone_home:\n  url: 'http://u:hunter2@{addr}/ph/$INSTANCE_ID'\n  post: {post}\n  tries: 2\n"
    )
}

#[test]
fn the_form_is_posted_once_per_instance_with_the_host_keys() {
    let (addr, seen) = serve();
    let t = fresh_root();
    let r = t.path();
    std::fs::create_dir_all(r.join("etc/ssh")).unwrap();
    std::fs::write(
        r.join("etc/ssh/ssh_host_ed25519_key.pub"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f host\n",
    )
    .unwrap();
    // No datasource name: the system's, as rc.conf keeps it (cloud-init's get_hostname), not
    // the cloud-config's `fqdn`.
    let rc = r.join("etc/rc.conf");
    let mut rc_text = std::fs::read_to_string(&rc).unwrap_or_default();
    rc_text.push_str("hostname=\"web1.example.org\"\n");
    std::fs::write(&rc, rc_text).unwrap();
    // A field given twice is posted once (cloud-init's dict).
    let d = doc(
        addr,
        "[instance_id, hostname, fqdn, pub_key_ed25519, pub_key_rsa, hostname]",
    );
    // A dry run shows the POST, password redacted, and sends nothing.
    let (code, out) = run(r, &d, &["--dry-run"], true);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("phone_home"), "{out}");
    assert!(
        out.contains("POST instance_id, hostname, fqdn, pub_key_ed25519, pub_key_rsa"),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");
    assert!(seen.lock().unwrap().is_empty());

    let (code, out) = run(r, &d, &[], true);
    assert!(!out.contains("hunter2"), "{out}");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{out}");
        assert_eq!(seen[0].0, "POST /ph/i-42 HTTP/1.1");
        // cloud-init's form: the file as it is (its newline too); N/A for a missing key.
        assert_eq!(
            seen[0].1,
            "instance_id=i-42&hostname=web1&fqdn=web1.example.org\
             &pub_key_ed25519=ssh-ed25519+AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f+host%0A&pub_key_rsa=N%2FA"
        );
    }
    assert_eq!(code, Some(0), "{out}");
    // Once per instance: the second run posts nothing.
    let (code, out) = run(r, &d, &[], true);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(seen.lock().unwrap().len(), 1, "{out}");
}

#[test]
fn a_url_that_is_not_http_is_refused_by_name_and_the_rest_applied() {
    let t = fresh_root();
    let r = t.path();
    let d = "#cloud-config\nusers: []\nwrite_files: [{path: /etc/motd, content: hi}]\n\
             phone_home: {url: 'file:///etc/master.passwd', post: all}\n";
    let (code, out) = run(r, d, &["--format", "json"], true);
    // WARN: an item refused, the rest applied.
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("phone_home.url"), "{out}");
    assert!(out.contains("scheme file"), "{out}");
    assert_eq!(std::fs::read(r.join("etc/motd")).unwrap(), b"hi");
}

/// Review of issue 13 (10): no name from the datasource and none kept by the system: `N/A`.
#[test]
fn without_any_name_hostname_and_fqdn_are_not_available() {
    let (addr, seen) = serve();
    let t = fresh_root();
    let r = t.path();
    let rc = r.join("etc/rc.conf");
    if let Ok(text) = std::fs::read_to_string(&rc) {
        let kept: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("hostname="))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&rc, kept).unwrap();
    }
    let (code, out) = run(r, &doc(addr, "[hostname, fqdn]"), &[], true);
    assert_eq!(code, Some(0), "{out}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{out}");
    assert_eq!(seen[0].1, "hostname=N%2FA&fqdn=N%2FA");
}

/// Review of issue 13 (2): in `wisp apply` too, a refused POST is a warning (exit status 2,
/// not 1) and the module is done: the next run does not post again.
#[test]
fn a_refused_post_is_a_warning_and_not_made_again() {
    let (addr, seen) =
        serve_answering("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    let t = fresh_root();
    let r = t.path();
    let d = doc(addr, "[instance_id]");
    let (code, out) = run(r, &d, &[], true);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("HTTP 403"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    let (code, out) = run(r, &d, &[], true);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(seen.lock().unwrap().len(), 1, "{out}");
}

/// Final review of issue 13 (3): a token alone in the URL's user part, and a token in its
/// query, are in no plan, output, log or result (the POST itself still carries both).
#[test]
fn a_token_in_the_user_part_or_the_query_is_shown_nowhere() {
    let (addr, seen) =
        serve_answering("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    let t = fresh_root();
    let r = t.path();
    let d = format!(
        "#cloud-config\nusers: []\nssh_deletekeys: false\n\
         phone_home:\n  url: 'http://T0KEN1@{addr}/ph/$INSTANCE_ID?key=S3CRETQ'\n  \
         post: [instance_id]\n  tries: 1\n"
    );
    let (_, plan) = run(r, &d, &["--dry-run", "--format", "json"], true);
    assert!(plan.contains("<redacted>@"), "{plan}");
    let (_, out) = run(r, &d, &[], true);
    assert!(out.contains("HTTP 403"), "{out}");
    let results = std::fs::read_to_string(r.join("var/db/wisp/results.json")).unwrap_or_default();
    let log = std::fs::read_to_string(r.join("var/log/wisp.log")).unwrap_or_default();
    for (what, text) in [
        ("plan", &plan),
        ("output", &out),
        ("results", &results),
        ("log", &log),
    ] {
        assert!(
            !text.contains("T0KEN1") && !text.contains("S3CRETQ"),
            "{what}: {text}"
        );
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "POST /ph/i-42?key=S3CRETQ HTTP/1.1");
}
