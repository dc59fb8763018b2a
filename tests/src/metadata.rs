//! The MAAS metadata API: routing, OAuth checks, the user-data side effect and the status
//! endpoint, following maas-protocol.md §2–4 (and MAAS's `metadataserver` for the details).

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;

use crate::machines::{vendor_data_document, Machine, MachineStatus, UserToken};
use crate::server::{HttpRequest, HttpResponse};

pub const VERSIONS: &[&str] = &["2012-03-01", "latest"];
const PREFIX: &str = "/MAAS/metadata";
/// django-piston's timestamp threshold.
pub const TIMESTAMP_THRESHOLD: i64 = 300;

/// How strictly timestamps are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampCheck {
    /// As MAAS does: only a timestamp more than 300 s in the past is refused.
    #[default]
    Past,
    /// Refuse timestamps more than 300 s off either way (to exercise negative skew).
    Both,
}

/// What a request's `Authorization` header amounts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// Not all six OAuth parameters: MAAS serves enlistment data.
    Anonymous,
    Machine(usize),
    Refused(u16, String),
}

/// The OAuth parameters of the last request, for the request log.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OAuthSeen {
    pub nonce: Option<String>,
    pub timestamp: Option<String>,
    pub token: Option<String>,
    pub signature_method: Option<String>,
}

impl OAuthSeen {
    pub fn from_request(req: &HttpRequest) -> OAuthSeen {
        let params = req
            .header("authorization")
            .and_then(wisp_datasources::oauth::parse_authorization)
            .unwrap_or_default();
        OAuthSeen {
            nonce: params.get("oauth_nonce").cloned(),
            timestamp: params.get("oauth_timestamp").cloned(),
            token: params.get("oauth_token").cloned(),
            signature_method: params.get("oauth_signature_method").cloned(),
        }
    }
}

pub struct Api<'a> {
    pub machines: &'a mut Vec<Machine>,
    pub user_tokens: &'a [UserToken],
    pub nonces: &'a mut HashSet<(String, String)>,
    pub files: &'a std::collections::BTreeMap<String, String>,
    pub enlistment_user_data: &'a str,
    pub server_now: SystemTime,
    pub timestamp_check: TimestampCheck,
}

const REQUIRED: &[&str] = &[
    "oauth_consumer_key",
    "oauth_token",
    "oauth_signature",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_nonce",
];

impl Api<'_> {
    pub fn authenticate(&mut self, req: &HttpRequest) -> Auth {
        let Some(params) = req
            .header("authorization")
            .and_then(wisp_datasources::oauth::parse_authorization)
        else {
            return Auth::Anonymous;
        };
        if REQUIRED.iter().any(|k| !params.contains_key(*k)) {
            return Auth::Anonymous;
        }
        let Ok(timestamp) = params["oauth_timestamp"].parse::<i64>() else {
            return Auth::Refused(400, "Invalid timestamp".into());
        };
        if let Some(v) = params.get("oauth_version") {
            if v != "1.0" {
                return Auth::Refused(
                    401,
                    format!("Authorization Error: 'OAuth version {v} not supported.'"),
                );
            }
        }
        let consumer = &params["oauth_consumer_key"];
        let token = &params["oauth_token"];
        let machine = self.machines.iter().position(|m| &m.token_key == token);
        let user = self.user_tokens.iter().find(|u| &u.token_key == token);
        let (consumer_key, secret) = match (machine, user) {
            (Some(i), _) => (
                self.machines[i].consumer_key.clone(),
                self.machines[i].token_secret.clone(),
            ),
            (None, Some(u)) => (u.consumer_key.clone(), u.token_secret.clone()),
            (None, None) => {
                return Auth::Refused(
                    401,
                    format!("Authorization Error: 'Invalid access token: {token}'"),
                )
            }
        };
        if &consumer_key != consumer {
            return Auth::Refused(401, "Authorization Error: 'Invalid consumer.'".into());
        }
        if params["oauth_signature_method"] != "PLAINTEXT" {
            return Auth::Refused(
                401,
                format!(
                    "Authorization Error: 'Signature method {} not supported.'",
                    params["oauth_signature_method"]
                ),
            );
        }
        let now = self
            .server_now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let lapsed = now - timestamp;
        let expired = match self.timestamp_check {
            TimestampCheck::Past => lapsed > TIMESTAMP_THRESHOLD,
            TimestampCheck::Both => lapsed.abs() > TIMESTAMP_THRESHOLD,
        };
        if expired {
            return Auth::Refused(
                401,
                format!(
                    "Authorization Error: 'Expired timestamp: given {timestamp} and now {now} has a \
                     greater difference than threshold {TIMESTAMP_THRESHOLD}'"
                ),
            );
        }
        let nonce = params["oauth_nonce"].clone();
        if !self.nonces.insert((token.clone(), nonce.clone())) {
            return Auth::Refused(
                401,
                format!("Authorization Error: 'Nonce already used: {nonce}'"),
            );
        }
        // PLAINTEXT: percent-encoded consumer secret (always empty) & token secret.
        let expected = format!("&{secret}");
        if params["oauth_signature"] != expected {
            return Auth::Refused(401, "Authorization Error: 'Invalid signature.'".into());
        }
        match machine {
            Some(i) => Auth::Machine(i),
            None => Auth::Refused(403, "Authenticated user is not a machine".into()),
        }
    }

    /// Answers one request. The caller has applied faults already.
    pub fn handle(&mut self, req: &HttpRequest) -> HttpResponse {
        if let Some(name) = req.path.strip_prefix("/files/") {
            return match self.files.get(name) {
                Some(body) => HttpResponse::text(200, body.clone()),
                None => HttpResponse::text(404, "Not Found"),
            };
        }
        let Some(rest) = req.path.strip_prefix(PREFIX) else {
            return HttpResponse::text(404, "Not Found");
        };
        let auth = self.authenticate(req);
        if let Auth::Refused(status, msg) = &auth {
            let mut resp = HttpResponse::text(*status, msg.clone());
            if *status == 401 {
                resp = resp.header("WWW-Authenticate", "OAuth realm=\"OAuth\"");
            }
            return resp;
        }
        if let Some(system_id) = rest.strip_prefix("/status/") {
            return self.status(req, &auth, system_id.trim_end_matches('/'));
        }
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        if rest.is_empty() {
            return match auth {
                Auth::Machine(_) => HttpResponse::text(200, VERSIONS.join("\n")),
                _ => unauthorized("Authorization required"),
            };
        }
        let (version, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if !VERSIONS.contains(&version) {
            return HttpResponse::text(404, format!("Unknown metadata version: {version}"));
        }
        if req.method == "POST" {
            if req
                .query
                .as_deref()
                .is_some_and(|q| q.split('&').any(|p| p == "op=signal"))
            {
                return self.signal(req, &auth);
            }
            return HttpResponse::text(405, "Method Not Allowed");
        }
        if let Some(item) = tail.strip_prefix("meta-data/") {
            if item.is_empty() {
                return self.meta_data_index(&auth);
            }
            let item = item.split('/').next().unwrap_or(item);
            return self.meta_data_item(&auth, item);
        }
        if tail == "user-data" {
            return self.user_data(&auth);
        }
        // `<v>/`, and what MAAS lets fall through to it: `<v>/meta-data`, `<v>/user-data/`, …
        self.version_index(&auth)
    }

    fn version_index(&self, auth: &Auth) -> HttpResponse {
        let has_user_data = match auth {
            Auth::Machine(i) => self.machines[*i].user_data.is_some(),
            _ => true,
        };
        let mut lines = vec!["maas-commissioning-scripts", "meta-data"];
        if has_user_data {
            lines.push("user-data");
        }
        HttpResponse::text(200, lines.join("\n"))
    }

    fn meta_data_index(&self, auth: &Auth) -> HttpResponse {
        let mut names = vec!["instance-id", "local-hostname"];
        if let Auth::Machine(i) = auth {
            if !self.machines[*i].public_keys.is_empty() {
                names.push("public-keys");
            }
        }
        names.extend(["vendor-data", "x509"]);
        HttpResponse::text(200, names.join("\n"))
    }

    fn meta_data_item(&self, auth: &Auth, item: &str) -> HttpResponse {
        let Auth::Machine(i) = auth else {
            return match item {
                "instance-id" => HttpResponse::text(200, "i-maas-enlistment"),
                "local-hostname" => HttpResponse::text(200, "maas-enlisting-node"),
                "public-keys" | "vendor-data" | "x509" => HttpResponse::text(200, ""),
                _ => HttpResponse::text(404, format!("Unknown metadata attribute: {item}")),
            };
        };
        let m = &self.machines[*i];
        match item {
            "instance-id" => HttpResponse::text(200, m.system_id.clone()),
            "local-hostname" => HttpResponse::text(200, m.hostname.clone()),
            "public-keys" => HttpResponse::text(200, m.public_keys.join("\n")),
            "x509" => HttpResponse::text(200, m.x509.join("\n")),
            "vendor-data" => {
                let doc = match &m.vendor_data {
                    Some(cc) => vendor_data_document(cc),
                    None => "cloud-init: null\n".to_string(),
                };
                HttpResponse::new(200, "application/x-yaml; charset=utf-8", doc)
            }
            _ => HttpResponse::text(404, format!("Unknown metadata attribute: {item}")),
        }
    }

    /// MAAS marks a Deploying machine Deployed on this GET, even when the answer is 404.
    fn user_data(&mut self, auth: &Auth) -> HttpResponse {
        let Auth::Machine(i) = auth else {
            return HttpResponse::new(200, "application/octet-stream", self.enlistment_user_data);
        };
        let m = &mut self.machines[*i];
        if m.status == MachineStatus::Deploying {
            m.status = MachineStatus::Deployed;
        }
        match &m.user_data {
            Some(data) => HttpResponse::new(200, "application/octet-stream", data.clone()),
            None => HttpResponse::new(404, "text/plain; charset=utf-8", Vec::new()),
        }
    }

    fn status(&mut self, req: &HttpRequest, auth: &Auth, system_id: &str) -> HttpResponse {
        if req.method != "POST" {
            return HttpResponse::text(405, "Method Not Allowed");
        }
        let has_token = req
            .header("authorization")
            .is_some_and(|h| h.contains("oauth_token"));
        let i = match auth {
            Auth::Machine(i) if has_token => *i,
            _ => return unauthorized("Authorization required"),
        };
        if self.machines[i].system_id != system_id {
            return HttpResponse::text(403, "The token does not belong to this machine");
        }
        if !req.body.is_ascii() {
            return HttpResponse::text(400, "Status payload must be ASCII-only");
        }
        let event: serde_json::Value = match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => {
                return HttpResponse::text(400, format!("Status payload is not valid JSON: {e}"))
            }
        };
        if let Err(msg) = validate_event(&event) {
            return HttpResponse::text(400, msg);
        }
        let m = &mut self.machines[i];
        let top_level_fail = event["event_type"] == "finish"
            && event.get("result").and_then(|r| r.as_str()) == Some("FAIL")
            && !event["name"].as_str().unwrap_or("").contains('/');
        if top_level_fail && m.status == MachineStatus::Deploying {
            m.status = MachineStatus::FailedDeployment;
            m.failure_reason = Some(format!(
                "Installation failed (refer to the installation log for more information): {}",
                event["description"].as_str().unwrap_or("")
            ));
        }
        m.events.push(event);
        HttpResponse::new(204, "text/plain", Vec::new())
    }

    fn signal(&mut self, req: &HttpRequest, auth: &Auth) -> HttpResponse {
        let Auth::Machine(i) = auth else {
            return unauthorized("Authorization required");
        };
        let Some(status) = form_field(&req.body, "status") else {
            return HttpResponse::text(400, "Missing status");
        };
        let m = &mut self.machines[*i];
        match status.as_str() {
            // Inferred from MAAS: an OK from a deployed machine can send it back to Ready.
            "OK" => m.status = MachineStatus::Ready,
            "FAILED" if m.status == MachineStatus::Deploying => {
                m.status = MachineStatus::FailedDeployment;
                m.failure_reason = Some("signal FAILED".into());
            }
            _ => {}
        }
        m.signals.push(status);
        HttpResponse::text(200, "OK")
    }
}

fn unauthorized(msg: &str) -> HttpResponse {
    HttpResponse::text(401, msg.to_string()).header("WWW-Authenticate", "OAuth realm=\"OAuth\"")
}

/// The status endpoint's rules (maas-protocol.md §4).
pub fn validate_event(event: &serde_json::Value) -> Result<(), String> {
    let obj = event
        .as_object()
        .ok_or("Status payload must be a JSON object")?;
    for key in ["event_type", "origin", "name", "description"] {
        if !obj.contains_key(key) {
            return Err(format!("Missing parameter in status message {key}"));
        }
    }
    match obj["event_type"].as_str() {
        Some("start" | "finish") => {}
        other => return Err(format!("Unknown event_type {other:?}")),
    }
    if let Some(ts) = obj.get("timestamp") {
        // Real MAAS hangs the request on a string timestamp; the mock refuses it visibly.
        if !ts.is_number() {
            return Err("timestamp must be a JSON number".into());
        }
    }
    if let Some(result) = obj.get("result") {
        match result.as_str() {
            Some("SUCCESS" | "WARN" | "FAIL") => {}
            other => return Err(format!("Unknown result {other:?}")),
        }
    }
    if let Some(files) = obj.get("files") {
        let files = files.as_array().ok_or("files must be a list")?;
        for f in files {
            if f.get("path").and_then(|p| p.as_str()).is_none() {
                return Err("files[].path is required".into());
            }
            if f.get("encoding").and_then(|p| p.as_str()) != Some("base64") {
                return Err("files[].encoding must be base64".into());
            }
            let content = f.get("content").and_then(|c| c.as_str()).unwrap_or("");
            if base64::engine::general_purpose::STANDARD
                .decode(content)
                .is_err()
            {
                return Err("files[].content is not base64".into());
            }
        }
    }
    Ok(())
}

/// A field of a `multipart/form-data` or urlencoded body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let marker = format!("name=\"{name}\"");
    if let Some(pos) = text.find(&marker) {
        let after = &text[pos + marker.len()..];
        let value_start = after
            .find("\r\n\r\n")
            .map(|i| i + 4)
            .or(after.find("\n\n").map(|i| i + 2))?;
        let value = &after[value_start..];
        let end = value
            .find("\r\n--")
            .or(value.find("\n--"))
            .unwrap_or(value.len());
        return Some(value[..end].trim().to_string());
    }
    text.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.trim().to_string())
    })
}
