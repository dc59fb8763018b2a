//! OAuth 1.0 PLAINTEXT signing as MAAS expects it (maas-protocol.md §3), and the clock-skew
//! correction that keeps a freshly booted machine with a wrong clock from being refused.
//!
//! We format the header ourselves rather than with `oauth1-request`: that crate emits the PLAINTEXT
//! signature unencoded (`oauth_signature="&TS"`), while RFC 5849 §3.5.1 and MAAS's own clients
//! percent-encode it (`oauth_signature="%26TS"`). The format is a dozen lines; a dependency that
//! gets it subtly different (and brings `rand` along) does not earn its place.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// RFC 5849 §3.6: everything but ALPHA, DIGIT, '-', '.', '_', '~' is encoded.
const OAUTH_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A skew change smaller than this is clock jitter, not a wrong clock (cloud-init uses the same
/// limit before it rewrites its skew file).
pub const SKEW_CHANGE_LIMIT_SECS: i64 = 5;

fn encode(s: &str) -> String {
    utf8_percent_encode(s, OAUTH_ENCODE).to_string()
}

/// The four OAuth values MAAS gives a machine. The consumer secret is always empty in practice.
///
/// `Debug` never prints the secrets; nothing in wisp formats them except [`authorization_header`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub consumer_key: String,
    pub consumer_secret: String,
    pub token_key: String,
    pub token_secret: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("consumer_key", &self.consumer_key)
            .field("consumer_secret", &"<redacted>")
            .field("token_key", &self.token_key)
            .field("token_secret", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// All of consumer key, token key and token secret are needed for MAAS to accept a request.
    pub fn is_complete(&self) -> bool {
        !self.consumer_key.is_empty() && !self.token_key.is_empty() && !self.token_secret.is_empty()
    }
}

/// A fresh random nonce: 16 bytes from the OS, hex-encoded.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    // getrandom only fails when the OS has no entropy source at all; a time-derived nonce is
    // then still unique per request, which is all MAAS checks.
    if getrandom::getrandom(&mut bytes).is_err() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = now.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Authorization` header for one request, signed at `timestamp` (Unix seconds) with `nonce`.
pub fn authorization_header(creds: &Credentials, timestamp: u64, nonce: &str) -> String {
    let signature = format!(
        "{}&{}",
        encode(&creds.consumer_secret),
        encode(&creds.token_secret)
    );
    format!(
        "OAuth oauth_nonce=\"{}\", oauth_timestamp=\"{}\", oauth_version=\"1.0\", \
         oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", \
         oauth_signature=\"{}\"",
        encode(nonce),
        timestamp,
        encode(&creds.consumer_key),
        encode(&creds.token_key),
        encode(&signature),
    )
}

/// Seconds to add to our clock to get the server's: `server_date − now`, rounded to whole seconds.
pub fn skew_seconds(server_date: SystemTime, now: SystemTime) -> i64 {
    match server_date.duration_since(now) {
        Ok(ahead) => (ahead.as_secs_f64().round()) as i64,
        Err(behind) => -((behind.duration().as_secs_f64().round()) as i64),
    }
}

/// The timestamp to sign with: our clock corrected by the skew, never before the epoch.
pub fn signing_timestamp(now: SystemTime, skew: i64) -> u64 {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    secs.saturating_add(skew).max(1) as u64
}

/// Where the per-`host:port` skew lives between requests, stages and boots.
pub trait SkewStore: Send + Sync {
    fn get(&self, host_port: &str) -> Option<i64>;
    /// Called when a response showed a skew that differs by more than [`SKEW_CHANGE_LIMIT_SECS`]
    /// from the one in use. Persisting is best effort: a failure only costs one retry next time.
    fn set(&self, host_port: &str, skew: i64);
}

/// A skew store that lives as long as the process (tests, `--dry-run`).
#[derive(Debug, Default)]
pub struct MemorySkewStore(Mutex<HashMap<String, i64>>);

impl SkewStore for MemorySkewStore {
    fn get(&self, host_port: &str) -> Option<i64> {
        self.0.lock().ok()?.get(host_port).copied()
    }
    fn set(&self, host_port: &str, skew: i64) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(host_port.to_string(), skew);
        }
    }
}

/// The key a skew is kept under: `host:port`, with the scheme's default port filled in.
pub fn skew_key(url: &url::Url) -> String {
    // `host_str` already brackets IPv6 addresses.
    let host = url.host_str().unwrap_or("");
    let port = url.port_or_known_default().unwrap_or(0);
    format!("{host}:{port}")
}

/// Parses the `key="value"` pairs of an OAuth `Authorization` header (used by the mock MAAS and
/// by tests; the agent only writes headers). Values are percent-decoded.
pub fn parse_authorization(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.trim().strip_prefix("OAuth")?;
    let mut params = HashMap::new();
    for pair in rest.split(',') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=')?;
        let value = value.trim().trim_matches('"');
        let decoded = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .ok()?
            .into_owned();
        params.insert(key.trim().to_string(), decoded);
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            consumer_key: "CK".into(),
            consumer_secret: String::new(),
            token_key: "TK".into(),
            token_secret: "TS".into(),
        }
    }

    #[test]
    fn header_matches_the_maas_contract_exactly() {
        let h = authorization_header(&creds(), 1716416200, "abc123");
        assert_eq!(
            h,
            "OAuth oauth_nonce=\"abc123\", oauth_timestamp=\"1716416200\", oauth_version=\"1.0\", \
             oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"CK\", oauth_token=\"TK\", \
             oauth_signature=\"%26TS\""
        );
    }

    #[test]
    fn header_encodes_reserved_characters_twice_in_the_signature() {
        let mut c = creds();
        c.consumer_secret = "a b".into();
        c.token_secret = "x&y".into();
        let h = authorization_header(&c, 1, "n");
        // signature = "a%20b&x%26y", then encoded again for the header
        assert!(h.contains("oauth_signature=\"a%2520b%26x%2526y\""), "{h}");
    }

    #[test]
    fn header_round_trips_through_the_parser() {
        let h = authorization_header(&creds(), 42, "n0nce");
        let p = parse_authorization(&h).unwrap();
        assert_eq!(p["oauth_signature"], "&TS");
        assert_eq!(p["oauth_timestamp"], "42");
        assert_eq!(p["oauth_nonce"], "n0nce");
        assert_eq!(p["oauth_version"], "1.0");
        assert_eq!(p["oauth_signature_method"], "PLAINTEXT");
        assert_eq!(p.len(), 7);
    }

    #[test]
    fn parser_accepts_realm_and_rejects_other_schemes() {
        let p = parse_authorization("OAuth realm=\"\", oauth_token=\"T\"").unwrap();
        assert_eq!(p["realm"], "");
        assert!(parse_authorization("Basic Zm9vOmJhcg==").is_none());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let s = format!("{:?}", creds());
        assert!(!s.contains("TS"), "{s}");
        assert!(s.contains("<redacted>"));
    }

    #[test]
    fn nonces_are_fresh() {
        let a = new_nonce();
        let b = new_nonce();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn skew_arithmetic_both_directions() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(skew_seconds(now + Duration::from_secs(3600), now), 3600);
        assert_eq!(skew_seconds(now - Duration::from_secs(3600), now), -3600);
        assert_eq!(skew_seconds(now + Duration::from_millis(400), now), 0);
        assert_eq!(skew_seconds(now - Duration::from_millis(600), now), -1);
        assert_eq!(signing_timestamp(now, 3600), 1_003_600);
        assert_eq!(signing_timestamp(now, -3600), 996_400);
        // A machine whose clock says 1970 must still sign with a positive timestamp.
        assert_eq!(signing_timestamp(UNIX_EPOCH, -10), 1);
    }

    #[test]
    fn skew_key_fills_default_ports_and_brackets_ipv6() {
        let u = url::Url::parse("http://10.0.0.2:5248/MAAS/metadata/").unwrap();
        assert_eq!(skew_key(&u), "10.0.0.2:5248");
        let u = url::Url::parse("http://maas.example/MAAS/").unwrap();
        assert_eq!(skew_key(&u), "maas.example:80");
        let u = url::Url::parse("https://[fd00::2]/MAAS/").unwrap();
        assert_eq!(skew_key(&u), "[fd00::2]:443");
    }

    #[test]
    fn memory_store_keeps_values() {
        let s = MemorySkewStore::default();
        assert_eq!(s.get("a:1"), None);
        s.set("a:1", -7);
        assert_eq!(s.get("a:1"), Some(-7));
    }
}
