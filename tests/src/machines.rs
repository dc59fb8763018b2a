//! The machines a mock MAAS knows, loaded from YAML, and their state.

use std::path::Path;

use base64::Engine;
use serde::{Deserialize, Serialize};

/// A machine's lifecycle state, as MAAS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MachineStatus {
    Ready,
    Deploying,
    Deployed,
    #[serde(rename = "Failed deployment")]
    FailedDeployment,
}

/// One machine as written in the machines file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
    pub system_id: String,
    /// The FQDN MAAS gives as `local-hostname`.
    pub hostname: String,
    #[serde(default = "deploying")]
    pub status: MachineStatus,
    pub consumer_key: String,
    pub token_key: String,
    pub token_secret: String,
    #[serde(default)]
    pub public_keys: Vec<String>,
    #[serde(default)]
    pub x509: Vec<String>,
    /// The `#cloud-config` text MAAS would put in vendor-data's `cloud-init` key.
    pub vendor_data: Option<String>,
    /// User-data as text, as base64 (binary, gzip), or from a file beside the machines file.
    pub user_data: Option<String>,
    pub user_data_base64: Option<String>,
    pub user_data_file: Option<String>,
}

fn deploying() -> MachineStatus {
    MachineStatus::Deploying
}

/// A token that MAAS knows but that is not a machine's (a user's API key): answered with 403.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserToken {
    pub consumer_key: String,
    pub token_key: String,
    pub token_secret: String,
}

/// The whole machines file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachinesFile {
    #[serde(default)]
    pub machines: Vec<MachineSpec>,
    #[serde(default)]
    pub user_tokens: Vec<UserToken>,
    /// Extra documents served at `/files/<name>` (for `#include` tests).
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
    /// What an unsigned request gets as user-data.
    pub enlistment_user_data: Option<String>,
}

impl MachinesFile {
    pub fn load(path: &Path) -> anyhow::Result<MachinesFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut file: MachinesFile =
            yaml_serde::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for m in &mut file.machines {
            if let Some(f) = &m.user_data_file {
                let p = dir.join(f);
                let bytes =
                    std::fs::read(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                m.user_data_base64 = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
                m.user_data_file = None;
            }
        }
        Ok(file)
    }

    pub fn from_yaml(text: &str) -> anyhow::Result<MachinesFile> {
        Ok(yaml_serde::from_str(text)?)
    }
}

/// A machine with its live state.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub system_id: String,
    pub hostname: String,
    pub status: MachineStatus,
    #[serde(skip)]
    pub consumer_key: String,
    #[serde(skip)]
    pub token_key: String,
    #[serde(skip)]
    pub token_secret: String,
    #[serde(skip)]
    pub public_keys: Vec<String>,
    #[serde(skip)]
    pub x509: Vec<String>,
    #[serde(skip)]
    pub vendor_data: Option<String>,
    #[serde(skip)]
    pub user_data: Option<Vec<u8>>,
    /// Status events received, in order.
    pub events: Vec<serde_json::Value>,
    /// Legacy `op=signal` statuses received.
    pub signals: Vec<String>,
    /// Why the deployment failed, from the FAIL event.
    pub failure_reason: Option<String>,
}

impl Machine {
    pub fn from_spec(spec: &MachineSpec) -> anyhow::Result<Machine> {
        let user_data = match (&spec.user_data, &spec.user_data_base64) {
            (Some(t), _) => Some(t.clone().into_bytes()),
            (None, Some(b)) => Some(base64::engine::general_purpose::STANDARD.decode(b.trim())?),
            (None, None) => None,
        };
        Ok(Machine {
            system_id: spec.system_id.clone(),
            hostname: spec.hostname.clone(),
            status: spec.status,
            consumer_key: spec.consumer_key.clone(),
            token_key: spec.token_key.clone(),
            token_secret: spec.token_secret.clone(),
            public_keys: spec.public_keys.clone(),
            x509: spec.x509.clone(),
            vendor_data: spec.vendor_data.clone(),
            user_data,
            events: Vec::new(),
            signals: Vec::new(),
            failure_reason: None,
        })
    }
}

/// vendor-data as MAAS serves it: a YAML map whose `cloud-init` value is a double-quoted,
/// line-folded scalar (PyYAML's style), so that only a real YAML parser reads it right.
pub fn vendor_data_document(cloud_config: &str) -> String {
    let mut tokens: Vec<String> = Vec::new();
    for c in cloud_config.chars() {
        tokens.push(match c {
            '"' => "\\\"".into(),
            '\\' => "\\\\".into(),
            '\n' => "\\n".into(),
            '\t' => "\\t".into(),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => format!("\\x{:02X}", c as u32),
            c => c.to_string(),
        });
    }
    let mut out = String::from("cloud-init: \"");
    let mut col = out.len();
    for tok in tokens {
        // Past the width, break with an escaped line break; a space that would start the next
        // line is escaped so that the parser keeps it (PyYAML's double-quoted style).
        if col + tok.len() > 78 {
            out.push_str("\\\n  ");
            col = 2;
            if tok == " " {
                out.push_str("\\ ");
                col += 2;
                continue;
            }
        }
        col += tok.len();
        out.push_str(&tok);
    }
    out.push_str("\"\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_data_round_trips_through_a_yaml_parser() {
        let cc = "#cloud-config\nntp:\n  pools: []\n  servers:\n  - 10.20.0.2\nsnap:\n  commands:\n  - snap set system proxy.http=\"http://10.20.0.2:8000/\" proxy.https=\"http://10.20.0.2:8000/\"\nsystem_info:\n  default_user:\n    gecos: Jane Admin\n    name: ubuntu\n\ttab\\\n";
        let doc = vendor_data_document(cc);
        assert!(doc.lines().count() > 2, "folded: {doc}");
        let v: yaml_serde::Value = yaml_serde::from_str(&doc).unwrap();
        assert_eq!(v["cloud-init"].as_str().unwrap(), cc);
        // A fold that lands on spaces must escape the first one, or the parser drops them.
        let spaced = format!("#cloud-config\n{}{}x\n", "y".repeat(50), " ".repeat(40));
        let doc = vendor_data_document(&spaced);
        assert!(
            doc.contains("\\\n  \\ "),
            "leading space escaped on a folded line: {doc}"
        );
        let v: yaml_serde::Value = yaml_serde::from_str(&doc).unwrap();
        assert_eq!(v["cloud-init"].as_str().unwrap(), spaced);
    }

    #[test]
    fn machines_file_rejects_unknown_keys() {
        let e = MachinesFile::from_yaml("machines:\n- {system_id: a, hostname: b, consumer_key: c, token_key: d, token_secret: e, bogus: 1}\n");
        assert!(e.is_err());
    }
}
