//! Where wisp's data comes from: the MAAS metadata service (OAuth 1.0 PLAINTEXT, clock-skew
//! correction, bounded retries), NoCloud and ConfigDrive seeds, and the decoding of user-data
//! into parts as cloud-init does it.
//!
//! One trait, [`Datasource`], one module per provider. Metadata and user-data are two calls on
//! purpose: MAAS marks a machine Deployed when it GETs user-data, so the boot flow fetches it last.

pub mod configdrive;
pub mod error;
pub mod http;
pub mod maas;
pub mod nocloud;
pub mod oauth;
pub mod post;
pub mod redact;
pub mod retry;
pub mod shape;
pub mod userdata;

use serde::{Deserialize, Serialize};

pub use error::{DatasourceError, FetchError};

/// What a datasource knows about the machine, before user-data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// `MAAS`, `NoCloud` or `ConfigDrive`.
    pub datasource: String,
    /// Where it came from: the metadata URL or the seed directory.
    pub source: String,
    pub instance_id: String,
    /// The machine's name as the datasource gives it (MAAS: the FQDN).
    pub local_hostname: Option<String>,
    /// SSH keys of the machine's owner: they go to the default user.
    pub public_keys: Vec<String>,
    /// Vendor-data as a user-data document (`#cloud-config` …), ready for [`userdata::decode`].
    #[serde(skip)]
    pub vendor_data: Option<Vec<u8>>,
    /// A network configuration (v1 or v2), when the datasource has one.
    pub network_config: Option<serde_json::Value>,
    /// The raw meta-data as the datasource gave it, for `wisp query ds.meta_data`.
    pub meta_data: serde_json::Value,
}

impl Metadata {
    /// cloud-init's instance-data document (`v1` keys and `ds`), which jinja templates and
    /// `wisp query` read.
    pub fn instance_data(&self) -> serde_json::Value {
        let cloud_name = self.datasource.to_ascii_lowercase();
        serde_json::json!({
            "v1": {
                "cloud_name": cloud_name,
                "cloud_id": cloud_name,
                "platform": cloud_name,
                "subplatform": self.source,
                "instance_id": self.instance_id,
                "local_hostname": self.local_hostname,
                "public_ssh_keys": self.public_keys,
                "availability_zone": null,
                "region": null,
            },
            "ds": { "meta_data": self.meta_data },
        })
    }
}

impl Metadata {
    /// The instance's launch index, for the user-data parts meant for it
    /// ([`userdata::DecodeOptions::launch_index`]): as cloud-init's `DataSource.launch_index`,
    /// the meta-data's `launch-index`, whatever the datasource (a number or numeric text).
    /// OpenStack's `launch_index` in a ConfigDrive's meta_data.json is not it: cloud-init does
    /// not copy it to `launch-index` either.
    pub fn launch_index(&self) -> Option<i64> {
        match self.meta_data.get("launch-index")? {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// A source of metadata and user-data.
pub trait Datasource {
    /// The cloud-init name (`MAAS`, `NoCloud`, `ConfigDrive`).
    fn name(&self) -> &'static str;
    /// Metadata: instance id, hostname, keys, vendor-data.
    fn fetch_metadata(&mut self) -> Result<Metadata, DatasourceError>;
    /// User-data, raw. `None` when there is none. On MAAS this completes the deployment.
    fn fetch_user_data(&mut self) -> Result<Option<Vec<u8>>, DatasourceError>;
}

/// cloud-init's `convert_vendordata`: vendor-data is a string, a list of parts, or a map whose
/// `cloud-init` key holds one of those. Returned as one user-data document.
pub fn convert_vendor_data(
    value: &yaml_serde::Value,
    source_name: &str,
) -> Result<Option<Vec<u8>>, DatasourceError> {
    use yaml_serde::Value;
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone().into_bytes())),
        // A list of parts is exactly what #cloud-config-archive holds.
        Value::Sequence(_) => {
            let yaml = yaml_serde::to_string(value)
                .map_err(|e| DatasourceError::invalid(source_name, "vendor-data", e.to_string()))?;
            Ok(Some(format!("#cloud-config-archive\n{yaml}").into_bytes()))
        }
        Value::Mapping(m) => match m.get("cloud-init") {
            None | Some(Value::Null) => Ok(None),
            Some(inner @ (Value::String(_) | Value::Sequence(_))) => {
                convert_vendor_data(inner, source_name)
            }
            Some(_) => Err(DatasourceError::invalid(
                source_name,
                "vendor-data.cloud-init",
                "must be a string or a list of parts",
            )),
        },
        _ => Err(DatasourceError::invalid(
            source_name,
            "vendor-data",
            "must be a string, a list or a map",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_data_forms() {
        let v: yaml_serde::Value =
            yaml_serde::from_str("cloud-init: \"#cloud-config\\nntp: {}\\n\"").unwrap();
        assert_eq!(
            convert_vendor_data(&v, "t").unwrap().unwrap(),
            b"#cloud-config\nntp: {}\n"
        );
        let v: yaml_serde::Value = yaml_serde::from_str("other: 1").unwrap();
        assert_eq!(convert_vendor_data(&v, "t").unwrap(), None);
        let v: yaml_serde::Value = yaml_serde::from_str("cloud-init: {a: 1}").unwrap();
        let e = convert_vendor_data(&v, "t").unwrap_err().to_string();
        assert!(e.contains("vendor-data.cloud-init"), "{e}");
        let v: yaml_serde::Value = yaml_serde::from_str("- '#cloud-config\n\n  a: 1'").unwrap();
        let doc = convert_vendor_data(&v, "t").unwrap().unwrap();
        assert!(doc.starts_with(b"#cloud-config-archive\n"));
    }
}
