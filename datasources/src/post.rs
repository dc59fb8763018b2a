//! A form POST to a URL the user gave (cloud-init's `phone_home`): through the one HTTP client
//! and its retry policy, redirects followed only on the same origin (as for metadata), and the
//! URL's password never shown: the user and password of the URL are taken out of it and sent
//! as a Basic `Authorization` header (as Python's requests does with them), so that no error or
//! log line about the request (each retry's included) can hold them. Where the URL is shown,
//! its whole user part and its query's values are hidden ([`crate::redact`]).

use std::time::Duration;

use crate::error::FetchError;
use crate::http::{HttpClient, Request};
use crate::retry::{RetryPolicy, Verdict};

/// The longest URL taken.
pub const MAX_URL: usize = 4096;
/// The largest answer read (and thrown away): only its status matters.
const MAX_ANSWER: u64 = 64 * 1024;

/// A POST that did not succeed: the URL (password redacted) and why.
#[derive(Debug, thiserror::Error)]
#[error("POST to {url}: {detail}")]
pub struct PostError {
    pub url: String,
    pub detail: String,
}

/// Why `url` cannot be posted to, if it cannot: not http(s), no host, a control character or a
/// blank in it, or too long. Checked before anything is sent.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL {
        return Err(format!("longer than {MAX_URL} bytes"));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("control characters or blanks in the URL".into());
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "scheme {}: only http and https are supported",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(())
}

/// `url` for logs, errors, plans and events: its user part and query values hidden
/// ([`crate::redact::redact_url_and_query`]).
pub fn redact(url: &str) -> String {
    crate::redact::redact_url_and_query(url)
}

/// `url` without its user part, and that part as a Basic `Authorization` header value (user
/// and password each percent-decoded, as Python's requests takes them from a URL; a token
/// alone is the user, with an empty password). None: the URL has no user part. The part is
/// found as the redactor finds it ([`crate::redact::split_userinfo`]).
pub fn split_credentials(url: &str) -> Result<(String, Option<String>), String> {
    use base64::Engine as _;
    let (scheme, userinfo, rest) = crate::redact::split_userinfo(url);
    let Some(userinfo) = userinfo.strip_suffix('@') else {
        return Ok((url.to_string(), None));
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let decode = |s: &str| percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
    let mut pair = decode(user);
    pair.push(b':');
    pair.extend(decode(password));
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(&pair)
    );
    Ok((format!("{scheme}{rest}"), Some(header)))
}

/// `fields` as an `application/x-www-form-urlencoded` body, in their order.
pub fn form_body(fields: &[(String, String)]) -> Vec<u8> {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        s.append_pair(name, value);
    }
    s.finish().into_bytes()
}

/// POSTs `body` (form-urlencoded) to `url` under `policy`: a connection failure, a timeout, a
/// 5xx or a 429 is tried again (up to the policy's attempts and deadline); another non-2xx
/// answer, or a redirect to another origin, ends it. Returns the answer's status. A 2xx
/// answer's body is not read: the POST has succeeded, and is not sent again.
pub fn post_form(
    client: &HttpClient,
    url: &str,
    body: &[u8],
    policy: &RetryPolicy,
) -> Result<u16, PostError> {
    let shown = redact(url);
    let fail = |detail: String| PostError {
        url: shown.clone(),
        // The client's errors begin with the URL as given: shown redacted.
        detail: detail.replace(url, &shown),
    };
    check_url(url).map_err(&fail)?;
    let (sent, authorization) = split_credentials(url).map_err(&fail)?;
    // The client's errors name the URL sent (no user part, but its query): shown redacted,
    // in each retry's log line too.
    let sent_shown = redact(&sent);
    policy
        .run(|timeout: Duration| {
            let req = Request {
                method: "POST",
                url: &sent,
                authorization: authorization.as_deref(),
                content_type: Some("application/x-www-form-urlencoded"),
                body: Some(body.to_vec()),
                timeout,
                max_bytes: MAX_ANSWER,
            };
            let resp = match client.send_same_origin_status(req) {
                Ok(r) => r,
                Err(e) => {
                    let verdict = if e.is_transient() {
                        Verdict::Retry
                    } else {
                        Verdict::Stop
                    };
                    return Err((e.with_url(&sent_shown), verdict));
                }
            };
            if resp.is_success() {
                return Ok(resp.status);
            }
            let e: FetchError = resp.into_error().with_url(&sent_shown);
            let verdict = if e.is_transient() {
                Verdict::Retry
            } else {
                Verdict::Stop
            };
            Err((e, verdict))
        })
        .map_err(|e| match e {
            // The client's message speaks of metadata; this is the user's URL.
            crate::DatasourceError::Fetch(FetchError::Redirected { location, .. }) => fail(
                format!("redirected to {location}, another origin: not followed"),
            ),
            e => fail(e.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpOptions;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::{Arc, Mutex};

    /// The requests a test server received: first line, header lines and body.
    type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
    type Headers = Arc<Mutex<Vec<String>>>;

    /// A loopback server answering each request with `answers` in turn (the last one again
    /// once they are used up); the bodies it received are returned.
    fn serve(answers: Vec<String>) -> (std::net::SocketAddr, Seen) {
        let (addr, seen, _) = serve_headers(answers);
        (addr, seen)
    }

    /// [`serve`], with the header lines of every request too.
    fn serve_headers(answers: Vec<String>) -> (std::net::SocketAddr, Seen, Headers) {
        let headers = Headers::default();
        let heard = headers.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().flatten().enumerate() {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let mut length = 0usize;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    heard.lock().unwrap().push(line.trim().to_string());
                    line.clear();
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                log.lock().unwrap().push((first.trim().to_string(), body));
                let answer = answers.get(n).or(answers.last()).unwrap();
                // `TRICKLE` at the end of an answer: its body comes a byte every 100 ms.
                match answer.strip_suffix("TRICKLE") {
                    Some(head) => {
                        let _ = (&conn).write_all(head.as_bytes());
                        std::thread::spawn(move || {
                            for _ in 0..100 {
                                if (&conn).write_all(b"x").is_err() {
                                    return;
                                }
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        });
                    }
                    None => {
                        let _ = (&conn).write_all(answer.as_bytes());
                    }
                }
            }
        });
        (addr, seen, headers)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    const FAIL: &str =
        "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

    fn policy(tries: u32) -> RetryPolicy {
        let mut p = RetryPolicy::new(Duration::from_secs(10), Duration::from_secs(2))
            .with_max_attempts(tries);
        p.base_delay = Duration::from_millis(20);
        p
    }

    #[test]
    fn the_form_is_posted_and_a_500_is_tried_again() {
        let (addr, seen) = serve(vec![FAIL.into(), OK.into()]);
        let client = HttpClient::new(&HttpOptions::default()).unwrap();
        let url = format!("http://{addr}/phone/i-1");
        let body = form_body(&[
            ("instance_id".into(), "i-1".into()),
            ("hostname".into(), "a b&c=d".into()),
        ]);
        assert_eq!(post_form(&client, &url, &body, &policy(3)).unwrap(), 200);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        for (line, body) in seen.iter() {
            assert_eq!(line, "POST /phone/i-1 HTTP/1.1");
            assert_eq!(
                String::from_utf8_lossy(body),
                "instance_id=i-1&hostname=a+b%26c%3Dd"
            );
        }
    }

    #[test]
    fn tries_bound_the_attempts_and_a_4xx_is_not_retried() {
        let (addr, seen) = serve(vec![FAIL.into()]);
        let client = HttpClient::new(&HttpOptions::default()).unwrap();
        let url = format!("http://u:hunter2@{addr}/x");
        let e = post_form(&client, &url, b"a=b", &policy(2)).unwrap_err();
        assert_eq!(seen.lock().unwrap().len(), 2);
        let text = e.to_string();
        assert!(text.contains("HTTP 500"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("http://<redacted>@"), "{text}");

        let (addr, seen) = serve(vec![
            "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".into(),
        ]);
        let e = post_form(&client, &format!("http://{addr}/"), b"", &policy(5)).unwrap_err();
        assert!(e.to_string().contains("HTTP 404"), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    /// Review of issue 13 (1): the URL's password goes as a Basic header, not in the URL, so
    /// that neither the final error nor the log line of each retry holds it.
    #[test]
    fn credentials_go_in_a_header_and_never_into_logs_or_errors() {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (addr, seen, headers) = serve_headers(vec![FAIL.into()]);
        let client = HttpClient::new(&HttpOptions::default()).unwrap();
        let url = format!("http://us%40er:hun%3Ater2@{addr}/x?id=i-1");
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let e = tracing::subscriber::with_default(subscriber, || {
            post_form(&client, &url, b"a=b", &policy(3)).unwrap_err()
        });
        let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("retrying"), "{log}");
        for text in [&log, &e.to_string()] {
            assert!(!text.contains("hun"), "{text}");
            assert!(!text.contains("ter2"), "{text}");
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].0, "POST /x?id=i-1 HTTP/1.1");
        // base64 of `us@er:hun:ter2`, the percent-decoded user and password.
        let auth = headers
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.to_ascii_lowercase().starts_with("authorization:"))
            .cloned()
            .collect::<Vec<_>>();
        assert_eq!(auth.len(), 3, "{auth:?}");
        assert!(auth
            .iter()
            .all(|h| h.ends_with(": Basic dXNAZXI6aHVuOnRlcjI=")));
        let (plain, none) = split_credentials("http://h/p").unwrap();
        assert_eq!((plain.as_str(), none), ("http://h/p", None));
    }

    /// Review of issue 13 (3): once the status is 2xx the POST has succeeded, whatever its body
    /// does: one too large, or one that trickles past the timeout, is not read, and the POST
    /// is not sent again.
    #[test]
    fn a_2xx_answer_succeeds_whatever_its_body() {
        let client = HttpClient::new(&HttpOptions::default()).unwrap();
        let large = format!(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {n}\r\n\r\n{}",
            "x".repeat(100_000),
            n = 100_000
        );
        let (addr, seen) = serve(vec![large]);
        let got = post_form(&client, &format!("http://{addr}/"), b"a=b", &policy(3));
        assert_eq!(got.unwrap(), 200);
        assert_eq!(seen.lock().unwrap().len(), 1);

        let slow = "HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\nTRICKLE".to_string();
        let (addr, seen) = serve(vec![slow]);
        let mut p = policy(3);
        p.request_timeout = Duration::from_millis(800);
        let start = std::time::Instant::now();
        let got = post_form(&client, &format!("http://{addr}/"), b"a=b", &p);
        assert_eq!(got.unwrap(), 201);
        assert!(start.elapsed() < Duration::from_secs(3));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_redirect_to_another_origin_is_not_followed() {
        let (other, other_seen) = serve(vec![OK.into()]);
        let (addr, _) = serve(vec![format!(
            "HTTP/1.1 307 Temporary Redirect\r\nConnection: close\r\nLocation: http://{other}/\r\nContent-Length: 0\r\n\r\n"
        )]);
        let client = HttpClient::new(&HttpOptions::default()).unwrap();
        let e = post_form(&client, &format!("http://{addr}/"), b"a=b", &policy(3)).unwrap_err();
        assert!(
            e.to_string().contains("another origin: not followed"),
            "{e}"
        );
        assert!(!e.to_string().contains("metadata"), "{e}");
        assert!(other_seen.lock().unwrap().is_empty());
    }

    #[test]
    fn urls_that_are_not_http_are_refused_before_sending() {
        for (url, why) in [
            ("file:///etc/passwd", "scheme file"),
            ("ftp://h/x", "scheme ftp"),
            ("http://h/a\nb", "control"),
            ("http://", "not a URL"),
            ("not a url", "blanks"),
            ("-x", "not a URL"),
        ] {
            let e = check_url(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
        assert!(check_url("https://example.org:8443/p?q=1").is_ok());
        assert_eq!(redact("http://a:b@h/"), "http://<redacted>@h/");
        assert_eq!(redact("http://h/x"), "http://h/x");
    }
}
