//! A loopback HTTP server that takes any request and keeps it: the third-party end of
//! `phone_home` in tests (the URL a user's cloud-config names, not MAAS).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// What the server was sent: each request's first line and body, in order.
pub type Received = Arc<Mutex<Vec<(String, String)>>>;

/// The answer [`start`] gives: 200 with no body.
pub const OK: &str = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// Starts a server on 127.0.0.1 that answers `answer` (a whole HTTP response) to every request,
/// one connection at a time; it runs until the test process ends.
pub fn start(answer: &'static str) -> std::io::Result<(SocketAddr, Received)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let Ok(read_side) = conn.try_clone() else {
                continue;
            };
            let (first, body) = read_request(BufReader::new(read_side));
            if let Ok(mut l) = log.lock() {
                l.push((first, body));
            }
            let _ = (&conn).write_all(answer.as_bytes());
        }
    });
    Ok((addr, received))
}

/// A request's first line and its body (by Content-Length), as far as they could be read.
fn read_request(mut reader: impl BufRead) -> (String, String) {
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
    let mut body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    (
        first.trim().to_string(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}
