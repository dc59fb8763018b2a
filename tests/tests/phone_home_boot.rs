//! phone_home at boot, end to end: the mock MAAS deploys a machine whose user-data asks for a
//! POST to a loopback server of the test's; the POST is made once per instance, in the final
//! stage, and the module's start and finish go to MAAS.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

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
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A loopback server answering 200, keeping each request's first line and body.
fn serve() -> (std::net::SocketAddr, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut length = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            log.lock().unwrap().push((
                first.trim().to_string(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
            let _ = (&conn)
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (addr, seen)
}

#[test]
fn the_post_is_made_once_per_instance_and_reported_to_maas() {
    if !can_apply_linux() {
        return;
    }
    let (addr, seen) = serve();
    let ud = format!(
        "#cloud-config\nphone_home:\n  url: http://{addr}/booted/$INSTANCE_ID\n  post: [instance_id]\n"
    );
    let mock = mock_with(|f| f.machines[0].user_data = Some(ud));
    let t = linux_root();
    let r = t.path();
    std::fs::create_dir_all(r.join("etc/wisp")).unwrap();
    std::fs::write(r.join("etc/wisp/wisp.yaml"), config_for(&mock, 3.0)).unwrap();
    let o = wisp(r, &["init"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let posts = seen.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "{}", stderr(&o));
    let id = posts[0]
        .1
        .strip_prefix("instance_id=")
        .unwrap_or_default()
        .to_string();
    assert!(!id.is_empty(), "{posts:?}");
    assert_eq!(posts[0].0, format!("POST /booted/{id} HTTP/1.1"));
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
