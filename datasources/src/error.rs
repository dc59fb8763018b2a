//! Errors of the datasources. Every variant names what was being read (a URL, a file, a field),
//! and none carries a secret: URLs and paths are not secret, OAuth values never reach an error.

use std::path::PathBuf;
use std::time::Duration;

/// A single HTTP exchange that did not give a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: invalid URL: {detail}")]
    InvalidUrl { url: String, detail: String },
    #[error("{url}: cannot connect: {detail}")]
    Connect { url: String, detail: String },
    #[error("{url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: HTTP {status}{}", body_suffix(.body))]
    Status {
        url: String,
        status: u16,
        /// The start of the body, printable characters only, for the operator.
        body: String,
        retry_after: Option<Duration>,
        /// The server's `Date` header: what the clock-skew correction works from.
        date: Option<std::time::SystemTime>,
    },
    #[error("{url}: answer is larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: reading the answer failed: {detail}")]
    Body { url: String, detail: String },
    #[error(
        "{url}: redirected to {location}, another origin: metadata is taken only from the \
         server asked"
    )]
    Redirected { url: String, location: String },
    #[error("{url}: the answer is an HTML page, not metadata (a proxy or a captive portal?)")]
    Html { url: String },
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

impl FetchError {
    /// Whether trying again later can help: the network or the server may recover.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Connect { .. } | FetchError::Timeout { .. } | FetchError::Body { .. } => {
                true
            }
            FetchError::Status { status, .. } => *status >= 500 || *status == 429,
            FetchError::InvalidUrl { .. }
            | FetchError::TooLarge { .. }
            | FetchError::Redirected { .. }
            | FetchError::Html { .. } => false,
        }
    }

    /// The error with its URL shown as `shown` (a redacted form: [`crate::redact`]), for a
    /// URL that may carry a secret (each retry's log line is made from the error).
    pub fn with_url(mut self, shown: &str) -> FetchError {
        match &mut self {
            FetchError::InvalidUrl { url, .. }
            | FetchError::Connect { url, .. }
            | FetchError::Timeout { url, .. }
            | FetchError::Status { url, .. }
            | FetchError::TooLarge { url, .. }
            | FetchError::Body { url, .. }
            | FetchError::Redirected { url, .. }
            | FetchError::Html { url } => *url = shown.to_string(),
        }
        self
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Why a datasource could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum DatasourceError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(
        "gave up after {attempts} attempt(s) in {elapsed:.1?} (max_wait {max_wait:?}): {last}"
    )]
    GaveUp {
        attempts: u32,
        elapsed: Duration,
        max_wait: Duration,
        last: Box<FetchError>,
    },
    #[error(
        "{url}: MAAS answered with enlistment data (instance-id i-maas-enlistment): the request was \
         not signed or not recognised; check consumer_key, token_key and token_secret"
    )]
    Enlistment { url: String },
    #[error("{source_name}: required item {item} is missing")]
    MissingItem { source_name: String, item: String },
    #[error("{source_name}: {field}: {detail}")]
    Invalid {
        source_name: String,
        field: String,
        detail: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    NotConfigured(String),
}

impl DatasourceError {
    pub(crate) fn invalid(
        source_name: impl Into<String>,
        field: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        DatasourceError::Invalid {
            source_name: source_name.into(),
            field: field.into(),
            detail: detail.into(),
        }
    }
}
