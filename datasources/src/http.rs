//! The one HTTP client wisp uses: reqwest (blocking) over rustls with the ring provider, no proxy
//! (the metadata service is reached directly, as MAAS's own scripts do with `--no-proxy`),
//! transparent gzip, explicit timeouts and a size cap on every answer.

use std::io::Read;
use std::time::{Duration, SystemTime};

use crate::error::FetchError;

/// Default cap on an answer: MAAS accepts user-data up to this size in practice, and a boot agent
/// must not be made to buffer more.
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// How a client connects.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub connect_timeout: Duration,
    pub user_agent: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            user_agent: concat!("wisp/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// A complete answer, any status.
#[derive(Debug, Clone)]
pub struct Response {
    pub url: String,
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub date: Option<SystemTime>,
    pub retry_after: Option<Duration>,
    /// The `Location` of a redirect that was not followed (printable, cut).
    pub location: Option<String>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Turns a non-2xx answer into an error that keeps what retries and skew correction need.
    pub fn into_error(self) -> FetchError {
        FetchError::Status {
            url: self.url,
            status: self.status,
            body: printable_prefix(&self.body, 200),
            retry_after: self.retry_after,
            date: self.date,
        }
    }
}

/// The first `max` characters of a body, control characters replaced, for error messages.
pub fn printable_prefix(body: &[u8], max: usize) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// One request to make.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub authorization: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
    pub max_bytes: u64,
}

impl<'a> Request<'a> {
    pub fn get(url: &'a str, timeout: Duration) -> Self {
        Request {
            method: "GET",
            url,
            authorization: None,
            content_type: None,
            body: None,
            timeout,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// How many redirects a request follows at most.
const MAX_REDIRECTS: usize = 5;

/// Whether two URLs have the same origin: scheme, host and port.
fn same_origin(a: &url::Url, b: &url::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::blocking::Client,
    /// The same, but a redirect to another origin is not followed (see
    /// [`HttpClient::send_same_origin`]).
    same_origin: reqwest::blocking::Client,
}

impl HttpClient {
    pub fn new(options: &HttpOptions) -> Result<Self, FetchError> {
        let build = |policy: reqwest::redirect::Policy| {
            let tls = tls::client_config().map_err(|e| FetchError::Connect {
                url: String::new(),
                detail: format!("cannot set up TLS: {e}"),
            })?;
            reqwest::blocking::Client::builder()
                .tls_backend_preconfigured(tls)
                .no_proxy()
                .gzip(true)
                .connect_timeout(options.connect_timeout)
                .user_agent(options.user_agent.clone())
                .redirect(policy)
                .build()
                .map_err(|e| FetchError::Connect {
                    url: String::new(),
                    detail: format!("cannot build HTTP client: {e}"),
                })
        };
        let inner = build(reqwest::redirect::Policy::limited(MAX_REDIRECTS))?;
        // A redirect elsewhere is not followed: the answer stays the 3xx, which `send_same_origin`
        // refuses.
        let same_origin = build(reqwest::redirect::Policy::custom(|attempt| {
            let first = attempt.previous().first();
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if first.is_some_and(|first| same_origin(first, attempt.url())) {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))?;
        Ok(HttpClient { inner, same_origin })
    }

    /// Sends a request and reads the whole answer (up to `max_bytes`), whatever its status.
    /// Redirects are followed (up to five), wherever they lead.
    pub fn send(&self, req: Request<'_>) -> Result<Response, FetchError> {
        self.send_with(&self.inner, req, true)
    }

    /// Like [`HttpClient::send`], for metadata: only the server asked may answer. A redirect to
    /// the same scheme, host and port is followed; one to another origin is an error (its
    /// answer would not come from the metadata service, and would not be signed).
    pub fn send_same_origin(&self, req: Request<'_>) -> Result<Response, FetchError> {
        self.same_origin_answer(req, true)
    }

    /// Like [`HttpClient::send_same_origin`], but a 2xx answer's body is not read (the
    /// connection is dropped): once the status says the request succeeded, nothing the body
    /// does (too large, trickling past the timeout) can make it fail and be sent again. A
    /// non-2xx body is read as usual (for the error).
    pub fn send_same_origin_status(&self, req: Request<'_>) -> Result<Response, FetchError> {
        self.same_origin_answer(req, false)
    }

    fn same_origin_answer(
        &self,
        req: Request<'_>,
        success_body: bool,
    ) -> Result<Response, FetchError> {
        let resp = self.send_with(&self.same_origin, req, success_body)?;
        if (300..400).contains(&resp.status) {
            return Err(FetchError::Redirected {
                location: resp.location.clone().unwrap_or_else(|| "nowhere".into()),
                url: resp.url,
            });
        }
        Ok(resp)
    }

    fn send_with(
        &self,
        client: &reqwest::blocking::Client,
        req: Request<'_>,
        success_body: bool,
    ) -> Result<Response, FetchError> {
        let url = req.url.to_string();
        let parsed = url::Url::parse(req.url).map_err(|e| FetchError::InvalidUrl {
            url: url.clone(),
            detail: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::InvalidUrl {
                url,
                detail: "only http and https are supported".into(),
            });
        }
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| {
            FetchError::InvalidUrl {
                url: url.clone(),
                detail: e.to_string(),
            }
        })?;
        let mut builder = client.request(method, parsed).timeout(req.timeout);
        if let Some(auth) = req.authorization {
            builder = builder.header(reqwest::header::AUTHORIZATION, auth);
        }
        if let Some(ct) = req.content_type {
            builder = builder.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some(body) = req.body {
            builder = builder.body(body);
        }
        let resp = builder
            .send()
            .map_err(|e| classify(&url, req.timeout, &e))?;
        let status = resp.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let date = header(reqwest::header::DATE).and_then(|d| httpdate::parse_http_date(&d).ok());
        let retry_after = header(reqwest::header::RETRY_AFTER)
            .and_then(|v| parse_retry_after(&v, SystemTime::now()));
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let location =
            header(reqwest::header::LOCATION).map(|l| printable_prefix(l.as_bytes(), 200));
        if !success_body && (200..300).contains(&status) {
            return Ok(Response {
                url,
                status,
                body: Vec::new(),
                content_type,
                date,
                retry_after,
                location,
            });
        }
        if let Some(len) = resp.content_length() {
            if len > req.max_bytes {
                return Err(FetchError::TooLarge {
                    url,
                    limit: req.max_bytes,
                });
            }
        }
        let mut body = Vec::new();
        resp.take(req.max_bytes + 1)
            .read_to_end(&mut body)
            .map_err(|e| {
                if is_timeout_io(&e) {
                    FetchError::Timeout {
                        url: url.clone(),
                        timeout: req.timeout,
                    }
                } else {
                    FetchError::Body {
                        url: url.clone(),
                        detail: e.to_string(),
                    }
                }
            })?;
        if body.len() as u64 > req.max_bytes {
            return Err(FetchError::TooLarge {
                url,
                limit: req.max_bytes,
            });
        }
        Ok(Response {
            url,
            status,
            body,
            content_type,
            date,
            retry_after,
            location,
        })
    }
}

fn is_timeout_io(e: &std::io::Error) -> bool {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(s) = source {
        if let Some(re) = s.downcast_ref::<reqwest::Error>() {
            if re.is_timeout() {
                return true;
            }
        }
        source = s.source();
    }
    false
}

fn classify(url: &str, timeout: Duration, e: &reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout {
            url: url.to_string(),
            timeout,
        };
    }
    // The innermost cause says what really happened (refused, reset, DNS...).
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if e.is_body() || e.is_decode() {
        return FetchError::Body {
            url: url.to_string(),
            detail,
        };
    }
    FetchError::Connect {
        url: url.to_string(),
        detail,
    }
}

/// TLS with rustls and the ring provider (smaller and faster to build than aws-lc-rs).
///
/// The MAAS metadata service is almost always plain http, and loading the platform's CA roots
/// costs ~8 ms — most of a whole fetch. So the platform verifier is created on the first TLS
/// handshake, not when the client is built.
mod tls {
    use std::sync::{Arc, OnceLock};

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    pub struct LazyPlatformVerifier {
        provider: Arc<CryptoProvider>,
        inner: OnceLock<Result<rustls_platform_verifier::Verifier, rustls::Error>>,
    }

    impl LazyPlatformVerifier {
        pub fn new(provider: Arc<CryptoProvider>) -> Self {
            LazyPlatformVerifier {
                provider,
                inner: OnceLock::new(),
            }
        }
    }

    impl ServerCertVerifier for LazyPlatformVerifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let verifier = self
                .inner
                .get_or_init(|| rustls_platform_verifier::Verifier::new(self.provider.clone()));
            match verifier {
                Ok(v) => {
                    v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                }
                Err(e) => Err(e.clone()),
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    pub fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(LazyPlatformVerifier::new(provider)))
                .with_no_client_auth(),
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_bogus_certificate_is_rejected_not_accepted() {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let v = LazyPlatformVerifier::new(provider);
            let name = ServerName::try_from("maas.example").unwrap();
            let cert = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
            assert!(v
                .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
                .is_err());
            assert!(!v.supported_verify_schemes().is_empty());
        }
    }
}

/// `Retry-After` is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(20));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(20))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(20));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn printable_prefix_strips_controls_and_cuts() {
        assert_eq!(printable_prefix(b"a\x1b[31mb\nc", 100), "a [31mb c");
        assert_eq!(printable_prefix(&[b'x'; 500], 10).len(), 10);
        assert_eq!(
            printable_prefix(&[0xff, 0xfe, b'a'], 10),
            "\u{fffd}\u{fffd}a"
        );
    }

    /// A loopback server: `answer` writes the answer to each connection (given its port and the
    /// path asked, once the request is read).
    fn serve(
        answer: impl Fn(&mut std::net::TcpStream, u16, &str) + Send + Sync + 'static,
    ) -> std::net::SocketAddr {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = std::sync::Arc::new(answer);
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let answer = answer.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut first = String::new();
                    let _ = reader.read_line(&mut first);
                    let path = first.split(' ').nth(1).unwrap_or("").to_string();
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    answer(&mut conn, addr.port(), &path);
                });
            }
        });
        addr
    }

    /// Issue 16 (5): the timeout bounds the whole answer, not each read: a body that trickles
    /// in a byte at a time ends at the timeout.
    #[test]
    fn the_timeout_bounds_the_whole_body() {
        use std::io::Write;
        let addr = serve(|conn, _, _| {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
            for _ in 0..100 {
                if conn.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let c = HttpClient::new(&HttpOptions::default()).unwrap();
        let url = format!("http://{addr}/slow");
        let start = std::time::Instant::now();
        let e = c
            .send_same_origin(Request::get(&url, Duration::from_millis(700)))
            .unwrap_err();
        assert!(matches!(e, FetchError::Timeout { .. }), "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    /// Issue 16 (21): for metadata, a redirect on the same origin is followed, one to another
    /// origin (another port of the same host, here) is an error naming where it led.
    // Each answer closes its connection (`Connection: close`): the test server answers once per
    // connection, and a pooled connection it has closed would fail the next request at random.
    #[test]
    fn metadata_redirects_stay_on_the_origin() {
        use std::io::Write;
        let other = serve(|conn, _, _| {
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 6\r\n\r\ni-evil",
            );
        });
        let addr = serve(move |conn, _, _| {
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 302 Found\r\nConnection: close\r\nLocation: http://{other}/id\r\nContent-Length: 0\r\n\r\n"
                )
                .as_bytes(),
            );
        });
        let c = HttpClient::new(&HttpOptions::default()).unwrap();
        let url = format!("http://{addr}/id");
        let e = c
            .send_same_origin(Request::get(&url, Duration::from_secs(2)))
            .unwrap_err();
        assert!(matches!(e, FetchError::Redirected { .. }), "{e}");
        assert!(
            e.to_string()
                .contains(&format!("redirected to http://{other}/id")),
            "{e}"
        );
        assert!(!e.is_transient());
        // The general client (#include URLs) still follows it.
        let r = c.send(Request::get(&url, Duration::from_secs(2))).unwrap();
        assert_eq!(r.body, b"i-evil");
        // Same origin: followed.
        let same = serve(|conn, port, path| {
            let answer = if path == "/id" {
                format!(
                    "HTTP/1.1 302 Found\r\nConnection: close\r\nLocation: http://127.0.0.1:{port}/id/\r\nContent-Length: 0\r\n\r\n"
                )
            } else {
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 6\r\n\r\n8kq3dx"
                    .to_string()
            };
            let _ = conn.write_all(answer.as_bytes());
        });
        let url = format!("http://{same}/id");
        let r = c
            .send_same_origin(Request::get(&url, Duration::from_secs(2)))
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"8kq3dx"[..]));
    }

    #[test]
    fn non_http_schemes_are_refused() {
        let c = HttpClient::new(&HttpOptions::default()).unwrap();
        let e = c
            .send(Request::get("file:///etc/passwd", Duration::from_secs(1)))
            .unwrap_err();
        assert!(matches!(e, FetchError::InvalidUrl { .. }), "{e}");
    }
}
