//! The MAAS datasource (maas-protocol.md §2–3).
//!
//! Fetch order: wait for `instance-id`, then `local-hostname`, `public-keys`, `vendor-data`;
//! `user-data` is a separate call because MAAS marks the machine Deployed when it is made.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::error::{DatasourceError, FetchError};
use crate::http::{HttpClient, Request, DEFAULT_MAX_BYTES};
use crate::oauth::{self, Credentials, SkewStore, SKEW_CHANGE_LIMIT_SECS};
use crate::retry::{RetryPolicy, Verdict};
use crate::shape;
use crate::{Datasource, Metadata};

/// The metadata version wisp speaks (`latest` serves the same).
pub const API_VERSION: &str = "2012-03-01";
/// What MAAS answers an unsigned request with.
pub const ENLISTMENT_INSTANCE_ID: &str = "i-maas-enlistment";

/// Attempts for each item after the service answered (cloud-init: one retry), all within the
/// datasource's one `max_wait`.
const ITEM_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
pub struct MaasConfig {
    /// `http://<host>:5248/MAAS/metadata/` (a missing trailing slash is added).
    pub metadata_url: String,
    pub credentials: Credentials,
    /// How long the whole fetch may wait, from its first request: every item, retry and attempt
    /// (metadata and user-data) together. Past it, the user-data GET gets one attempt of
    /// `timeout`, and nothing is asked again.
    pub max_wait: Duration,
    /// Timeout of one request: connecting and reading the whole answer.
    pub timeout: Duration,
    pub max_user_data_bytes: u64,
}

impl MaasConfig {
    pub fn new(metadata_url: impl Into<String>, credentials: Credentials) -> Self {
        MaasConfig {
            metadata_url: metadata_url.into(),
            credentials,
            max_wait: Duration::from_secs(120),
            timeout: Duration::from_secs(50),
            max_user_data_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// cloud-init's instance id for MAAS before the network is up: `v1:` + sha256 of
/// `consumer_key \0 token_key \0 token_secret`. It changes when the machine is redeployed.
pub fn instance_id_from_credentials(creds: &Credentials) -> String {
    let joined = format!(
        "{}\0{}\0{}",
        creds.consumer_key, creds.token_key, creds.token_secret
    );
    let digest = Sha256::digest(joined.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("v1:{hex}")
}

/// The metadata URL derived from a reporting endpoint `…/MAAS/metadata/status/<id>`.
pub fn metadata_url_from_endpoint(endpoint: &str) -> Option<String> {
    let idx = endpoint.rfind("status/")?;
    Some(endpoint[..idx].to_string())
}

pub struct Maas {
    config: MaasConfig,
    base: url::Url,
    client: HttpClient,
    skew: Arc<dyn SkewStore>,
    skew_key: String,
    /// When the first fetch began: `max_wait` counts from here for all of them.
    wait_started: OnceLock<Instant>,
}

impl Maas {
    pub fn new(
        mut config: MaasConfig,
        client: HttpClient,
        skew: Arc<dyn SkewStore>,
    ) -> Result<Self, DatasourceError> {
        if !config.metadata_url.ends_with('/') {
            config.metadata_url.push('/');
        }
        let base = url::Url::parse(&config.metadata_url).map_err(|e| {
            DatasourceError::invalid("datasource.MAAS", "metadata_url", e.to_string())
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(DatasourceError::invalid(
                "datasource.MAAS",
                "metadata_url",
                format!("{}: must be an http or https URL", config.metadata_url),
            ));
        }
        if !config.credentials.is_complete() {
            return Err(DatasourceError::NotConfigured(
                "datasource.MAAS: consumer_key, token_key and token_secret are all required".into(),
            ));
        }
        let skew_key = oauth::skew_key(&base);
        Ok(Maas {
            config,
            base,
            client,
            skew,
            skew_key,
            wait_started: OnceLock::new(),
        })
    }

    pub fn config(&self) -> &MaasConfig {
        &self.config
    }

    /// `<metadata_url>2012-03-01/<path>`.
    pub fn item_url(&self, path: &str) -> String {
        format!("{}{}/{}", self.base, API_VERSION, path)
    }

    /// The current correction for this server, in seconds.
    pub fn skew(&self) -> i64 {
        self.skew.get(&self.skew_key).unwrap_or(0)
    }

    /// The `Authorization` header for a request made now (clock corrected, fresh nonce).
    pub fn authorization(&self) -> String {
        self.signed_with(self.skew())
    }

    fn signed_with(&self, skew: i64) -> String {
        let ts = oauth::signing_timestamp(SystemTime::now(), skew);
        oauth::authorization_header(&self.config.credentials, ts, &oauth::new_nonce())
    }

    /// A 401/403 with a `Date` header tells us the server's clock. If it differs from what we
    /// assumed by more than the jitter limit, adopt it and retry at once; otherwise the refusal
    /// is real and retrying cannot help.
    ///
    /// `used` is the correction the refused request was signed with: requests run at once, and
    /// another may have fixed the clock meanwhile, in which case this one just tries again.
    fn verdict_for(&self, err: &FetchError, used: i64) -> Verdict {
        match err {
            FetchError::Status {
                status: 401 | 403,
                date: Some(date),
                ..
            } => {
                let new = oauth::skew_seconds(*date, SystemTime::now());
                let old = self.skew();
                if old != used && (new - old).abs() <= SKEW_CHANGE_LIMIT_SECS {
                    Verdict::RetryNow
                } else if (new - old).abs() > SKEW_CHANGE_LIMIT_SECS {
                    tracing::warn!(
                        server = %self.skew_key,
                        skew_seconds = new,
                        "server clock differs from ours; signing with the server's time"
                    );
                    self.skew.set(&self.skew_key, new);
                    Verdict::RetryNow
                } else {
                    Verdict::Stop
                }
            }
            e if e.is_transient() => Verdict::Retry,
            _ => Verdict::Stop,
        }
    }

    /// One signed GET under `policy`. `Ok(None)` is a 404: the item is absent. Only the
    /// metadata server answers: a redirect to another origin and an HTML page are refused.
    pub fn signed_get(
        &self,
        url: &str,
        max_bytes: u64,
        policy: &RetryPolicy,
    ) -> Result<Option<Vec<u8>>, DatasourceError> {
        policy.run(|timeout| {
            let used = self.skew();
            let auth = self.signed_with(used);
            let mut req = Request::get(url, timeout);
            req.authorization = Some(&auth);
            req.max_bytes = max_bytes;
            let resp = match self.client.send_same_origin(req) {
                Ok(r) => r,
                Err(e) => {
                    tracing::info!(url, error = %e, "MAAS GET failed");
                    let v = self.verdict_for(&e, used);
                    return Err((e, v));
                }
            };
            tracing::info!(
                url,
                status = resp.status,
                bytes = resp.body.len(),
                "MAAS GET"
            );
            if resp.is_success() {
                if shape::is_html(resp.content_type.as_deref(), b"") {
                    return Err((FetchError::Html { url: resp.url }, Verdict::Stop));
                }
                Ok(Some(resp.body))
            } else if resp.status == 404 {
                Ok(None)
            } else {
                let e = resp.into_error();
                let v = self.verdict_for(&e, used);
                Err((e, v))
            }
        })
    }

    /// A signed POST (status events). Returns the status code of a 2xx answer.
    pub fn signed_post(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
        policy: &RetryPolicy,
    ) -> Result<u16, DatasourceError> {
        policy.run(|timeout| {
            let used = self.skew();
            let auth = self.signed_with(used);
            let req = Request {
                method: "POST",
                url,
                authorization: Some(&auth),
                content_type: Some(content_type),
                body: Some(body.to_vec()),
                timeout,
                max_bytes: 64 * 1024,
            };
            match self.client.send_same_origin(req) {
                Ok(r) if r.is_success() => {
                    tracing::info!(url, status = r.status, "MAAS POST");
                    Ok(r.status)
                }
                Ok(r) => {
                    let e = r.into_error();
                    tracing::info!(url, error = %e, "MAAS POST refused");
                    let v = self.verdict_for(&e, used);
                    Err((e, v))
                }
                Err(e) => {
                    tracing::info!(url, error = %e, "MAAS POST failed");
                    let v = self.verdict_for(&e, used);
                    Err((e, v))
                }
            }
        })
    }

    /// The start of the datasource's one wait: the first fetch sets it.
    fn wait_started(&self) -> Instant {
        *self.wait_started.get_or_init(Instant::now)
    }

    /// Whether the datasource's `max_wait` is spent.
    fn wait_spent(&self) -> bool {
        self.wait_started().elapsed() >= self.config.max_wait
    }

    fn wait_policy(&self) -> RetryPolicy {
        RetryPolicy::new(self.config.max_wait, self.config.timeout)
            .since(self.wait_started())
            .with_progress(format!("the MAAS metadata service at {}", self.base))
    }

    fn item_policy(&self) -> RetryPolicy {
        RetryPolicy::new(self.config.max_wait, self.config.timeout)
            .since(self.wait_started())
            .with_max_attempts(ITEM_ATTEMPTS)
    }

    fn text_item(&self, item: &str, required: bool) -> Result<Option<String>, DatasourceError> {
        let url = self.item_url(&format!("meta-data/{item}"));
        let policy = if item == "instance-id" {
            self.wait_policy()
        } else {
            self.item_policy()
        };
        match self.signed_get(&url, 1024 * 1024, &policy)? {
            Some(body) if shape::is_html(None, &body) => Err(FetchError::Html { url }.into()),
            Some(body) => String::from_utf8(body)
                .map(Some)
                .map_err(|_| DatasourceError::invalid(url.clone(), item, "not valid UTF-8 text")),
            None if required => Err(DatasourceError::MissingItem {
                source_name: url,
                item: item.to_string(),
            }),
            None => Ok(None),
        }
    }
}

impl Datasource for Maas {
    fn name(&self) -> &'static str {
        "MAAS"
    }

    fn fetch_metadata(&mut self) -> Result<Metadata, DatasourceError> {
        // The items do not depend on each other: asked at once, a far MAAS costs one round trip
        // for all of them instead of one each. The instance id is the one waited for (the
        // service may not be up yet); an item asked too early is asked again once it answers.
        self.wait_started();
        let this = &*self;
        let vendor_url = self.item_url("meta-data/vendor-data");
        let vendor_item = || this.signed_get(&vendor_url, DEFAULT_MAX_BYTES, &this.item_policy());
        let (instance_id, local_hostname, public_keys, vendor) = std::thread::scope(|s| {
            let hostname = s.spawn(|| this.text_item("local-hostname", true));
            let keys = s.spawn(|| this.text_item("public-keys", false));
            let vendor = s.spawn(vendor_item);
            let instance_id = this.text_item("instance-id", true);
            let failed = || {
                DatasourceError::invalid(
                    this.item_url("meta-data/"),
                    "meta-data",
                    "the fetch failed unexpectedly",
                )
            };
            let hostname = hostname.join().unwrap_or_else(|_| Err(failed()));
            let keys = keys.join().unwrap_or_else(|_| Err(failed()));
            let vendor = vendor.join().unwrap_or_else(|_| Err(failed()));
            (instance_id, hostname, keys, vendor)
        });
        let instance_id = instance_id?.unwrap_or_default().trim().to_string();
        if instance_id == ENLISTMENT_INSTANCE_ID {
            return Err(DatasourceError::Enlistment {
                url: self.item_url("meta-data/instance-id"),
            });
        }
        shape::check_instance_id(&instance_id).map_err(|e| {
            DatasourceError::invalid(self.item_url("meta-data/instance-id"), "instance-id", e)
        })?;
        // Asked again only while the wait lasts: past it, the first error stands.
        let again = |first: Result<_, DatasourceError>, fetch: &dyn Fn() -> Result<_, _>| {
            first.or_else(|e| if self.wait_spent() { Err(e) } else { fetch() })
        };
        let local_hostname = again(local_hostname, &|| self.text_item("local-hostname", true));
        let public_keys = again(public_keys, &|| self.text_item("public-keys", false));
        let vendor = vendor.or_else(|e| {
            if self.wait_spent() {
                Err(e)
            } else {
                vendor_item()
            }
        });
        let local_hostname = local_hostname?.map(|s| s.trim().to_string());
        if let Some(name) = &local_hostname {
            shape::check_hostname(name).map_err(|e| {
                DatasourceError::invalid(
                    self.item_url("meta-data/local-hostname"),
                    "local-hostname",
                    e,
                )
            })?;
        }
        // 200 with an empty body when the owner has no keys; 404 on old MAAS.
        let public_keys: Vec<String> = public_keys?
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        for (n, key) in public_keys.iter().enumerate() {
            shape::check_public_key(key).map_err(|e| {
                DatasourceError::invalid(
                    self.item_url("meta-data/public-keys"),
                    format!("public-keys[{n}]"),
                    e,
                )
            })?;
        }
        let vendor_data = match vendor? {
            None => None,
            Some(body) if shape::is_html(None, &body) => {
                return Err(FetchError::Html { url: vendor_url }.into())
            }
            Some(body) => vendor_data_from(&body, &vendor_url)?,
        };
        let meta_data = serde_json::json!({
            "instance-id": instance_id,
            "local-hostname": local_hostname,
            "public-keys": public_keys,
        });
        Ok(Metadata {
            datasource: "MAAS".into(),
            source: self.config.metadata_url.clone(),
            instance_id,
            local_hostname,
            public_keys,
            vendor_data,
            network_config: None,
            meta_data,
        })
    }

    /// Exactly `<v>/user-data` (with a trailing slash MAAS would answer the version index).
    fn fetch_user_data(&mut self) -> Result<Option<Vec<u8>>, DatasourceError> {
        let url = self.item_url("user-data");
        // The metadata may have taken the whole wait (a MAAS slow to come up): the request that
        // completes the deployment still gets one attempt of a full `timeout`, no more.
        let policy = if self.wait_spent() {
            RetryPolicy::new(self.config.timeout, self.config.timeout).with_max_attempts(1)
        } else {
            self.item_policy()
        };
        self.signed_get(&url, self.config.max_user_data_bytes, &policy)
    }
}

/// The cloud-config text in MAAS's vendor-data answer (a YAML map), read with the bounds every
/// YAML text gets.
fn vendor_data_from(body: &[u8], url: &str) -> Result<Option<Vec<u8>>, DatasourceError> {
    let value: yaml_serde::Value = crate::userdata::yaml::from_slice(body)
        .map_err(|e| DatasourceError::invalid(url.to_string(), "vendor-data", e.to_string()))?;
    crate::convert_vendor_data(&value, url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeply_nested_vendor_data_is_refused_fast() {
        let body = format!("cloud-init: {}", "[".repeat(100_000));
        let start = std::time::Instant::now();
        let e = vendor_data_from(body.as_bytes(), "http://127.0.0.1/vd").unwrap_err();
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        let text = e.to_string();
        assert!(
            text.contains("vendor-data") && text.contains("nest deeper"),
            "{text}"
        );
        let ok = vendor_data_from(b"cloud-init: \"#cloud-config\\nntp: {}\\n\"\n", "u").unwrap();
        assert_eq!(ok.as_deref(), Some(&b"#cloud-config\nntp: {}\n"[..]));
    }

    #[test]
    fn instance_id_before_network_matches_cloud_init() {
        let c = Credentials {
            consumer_key: "CK".into(),
            consumer_secret: String::new(),
            token_key: "TK".into(),
            token_secret: "TS".into(),
        };
        // python3 -c "import hashlib;print(hashlib.sha256(b'CK\0TK\0TS').hexdigest())"
        assert_eq!(
            instance_id_from_credentials(&c),
            "v1:98eb181e459b705d01af000b7bee7c34b241c9c384f9de8ca981781578e13633"
        );
    }

    #[test]
    fn metadata_url_from_reporting_endpoint() {
        assert_eq!(
            metadata_url_from_endpoint("http://10.0.0.2:5248/MAAS/metadata/status/abc123")
                .as_deref(),
            Some("http://10.0.0.2:5248/MAAS/metadata/")
        );
        assert_eq!(metadata_url_from_endpoint("http://x/y"), None);
    }

    #[test]
    fn rejects_bad_urls_and_missing_credentials() {
        let client = HttpClient::new(&Default::default()).unwrap();
        let skew: Arc<dyn SkewStore> = Arc::new(oauth::MemorySkewStore::default());
        let creds = Credentials {
            consumer_key: "C".into(),
            token_key: "T".into(),
            token_secret: "S".into(),
            ..Default::default()
        };
        let e = Maas::new(
            MaasConfig::new("ftp://x/", creds.clone()),
            client.clone(),
            skew.clone(),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("metadata_url"), "{e}");
        let e = Maas::new(
            MaasConfig::new("http://x/", Credentials::default()),
            client.clone(),
            skew.clone(),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("token_secret"), "{e}");
        let m = Maas::new(
            MaasConfig::new("http://x:5248/MAAS/metadata", creds),
            client,
            skew,
        )
        .unwrap();
        assert_eq!(
            m.item_url("user-data"),
            "http://x:5248/MAAS/metadata/2012-03-01/user-data"
        );
    }
}
