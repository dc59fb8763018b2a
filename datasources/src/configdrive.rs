//! ConfigDrive (OpenStack layout) from a directory: `openstack/latest/meta_data.json`,
//! `user_data`, `vendor_data.json` and `network_data.json`. When `latest` is missing the newest
//! dated version directory is used, as cloud-init does.

use std::path::{Path, PathBuf};

use crate::error::DatasourceError;
use crate::http::DEFAULT_MAX_BYTES;
use crate::nocloud::{keys_from_value, read_optional};
use crate::{Datasource, Metadata};

pub struct ConfigDrive {
    root: PathBuf,
}

impl ConfigDrive {
    pub fn from_dir(root: impl Into<PathBuf>) -> Self {
        ConfigDrive { root: root.into() }
    }

    /// `openstack/latest`, or the newest `openstack/YYYY-MM-DD` that has `meta_data.json`.
    fn version_dir(&self) -> Result<PathBuf, DatasourceError> {
        let base = self.root.join("openstack");
        let latest = base.join("latest");
        if latest.join("meta_data.json").exists() {
            return Ok(latest);
        }
        let mut dated: Vec<PathBuf> = std::fs::read_dir(&base)
            .map_err(|e| DatasourceError::Io {
                path: base.clone(),
                source: e,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("meta_data.json").exists())
            .collect();
        dated.sort();
        dated.pop().ok_or_else(|| DatasourceError::MissingItem {
            source_name: self.root.display().to_string(),
            item: "openstack/latest/meta_data.json".into(),
        })
    }

    fn read_json(path: &Path) -> Result<Option<serde_json::Value>, DatasourceError> {
        match read_optional(path, DEFAULT_MAX_BYTES)? {
            None => Ok(None),
            Some(raw) => serde_json::from_slice(&raw).map(Some).map_err(|e| {
                DatasourceError::invalid(path.display().to_string(), "json", e.to_string())
            }),
        }
    }
}

impl Datasource for ConfigDrive {
    fn name(&self) -> &'static str {
        "ConfigDrive"
    }

    fn fetch_metadata(&mut self) -> Result<Metadata, DatasourceError> {
        let dir = self.version_dir()?;
        let md_path = dir.join("meta_data.json");
        let md = Self::read_json(&md_path)?.unwrap_or_default();
        let name = md_path.display().to_string();
        if !md.is_object() {
            return Err(DatasourceError::invalid(
                name,
                "meta_data.json",
                "must be a JSON object",
            ));
        }
        let instance_id = md
            .get("uuid")
            .or(md.get("instance-id"))
            .and_then(|v| v.as_str())
            .ok_or_else(|| DatasourceError::MissingItem {
                source_name: name.clone(),
                item: "uuid".into(),
            })?
            .to_string();
        let local_hostname = md
            .get("hostname")
            .or(md.get("local-hostname"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
        // public_keys: {name: key}; keys: [{type: ssh, data: key}]
        let as_yaml = yaml_serde::to_value(md.get("public_keys")).ok();
        let mut public_keys = keys_from_value(as_yaml.as_ref());
        if let Some(list) = md.get("keys").and_then(|v| v.as_array()) {
            for k in list {
                if k.get("type").and_then(|t| t.as_str()) == Some("ssh") {
                    if let Some(data) = k.get("data").and_then(|d| d.as_str()) {
                        let data = data.trim().to_string();
                        if !public_keys.contains(&data) {
                            public_keys.push(data);
                        }
                    }
                }
            }
        }
        let vendor_data = match Self::read_json(&dir.join("vendor_data.json"))? {
            None => None,
            Some(v) => {
                let y = yaml_serde::to_value(&v).unwrap_or(yaml_serde::Value::Null);
                crate::convert_vendor_data(&y, &dir.join("vendor_data.json").display().to_string())?
            }
        };
        let network_config = Self::read_json(&dir.join("network_data.json"))?;
        Ok(Metadata {
            datasource: "ConfigDrive".into(),
            source: self.root.display().to_string(),
            instance_id,
            local_hostname,
            public_keys,
            vendor_data,
            network_config,
            meta_data: md,
        })
    }

    fn fetch_user_data(&mut self) -> Result<Option<Vec<u8>>, DatasourceError> {
        let dir = self.version_dir()?;
        read_optional(&dir.join("user_data"), DEFAULT_MAX_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(version: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = std::env::temp_dir().join(format!("wisp-cd-{}", crate::oauth::new_nonce()));
        let dir = root.join("openstack").join(version);
        std::fs::create_dir_all(&dir).unwrap();
        for (n, c) in files {
            std::fs::write(dir.join(n), c).unwrap();
        }
        root
    }

    #[test]
    fn reads_latest() {
        let root = drive(
            "latest",
            &[
                (
                    "meta_data.json",
                    r#"{"uuid":"83679162-1378-4288-a2d4-70e13ec132aa","hostname":"cd1",
                        "public_keys":{"mykey":"ssh-rsa AAAA k"},
                        "keys":[{"type":"ssh","data":"ssh-rsa AAAA k"},{"type":"x509","data":"no"}]}"#,
                ),
                ("user_data", "#!/bin/sh\necho hi\n"),
                (
                    "vendor_data.json",
                    r##"{"cloud-init":"#cloud-config\nntp: {}\n"}"##,
                ),
            ],
        );
        let mut ds = ConfigDrive::from_dir(&root);
        let md = ds.fetch_metadata().unwrap();
        assert_eq!(md.instance_id, "83679162-1378-4288-a2d4-70e13ec132aa");
        assert_eq!(md.local_hostname.as_deref(), Some("cd1"));
        assert_eq!(md.public_keys, vec!["ssh-rsa AAAA k"]);
        assert_eq!(md.vendor_data.unwrap(), b"#cloud-config\nntp: {}\n");
        assert_eq!(
            ds.fetch_user_data().unwrap().unwrap(),
            b"#!/bin/sh\necho hi\n"
        );
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn falls_back_to_newest_dated_version_and_names_missing_uuid() {
        let root = drive("2015-10-15", &[("meta_data.json", r#"{"hostname":"x"}"#)]);
        let e = ConfigDrive::from_dir(&root)
            .fetch_metadata()
            .unwrap_err()
            .to_string();
        assert!(e.contains("2015-10-15") && e.contains("uuid"), "{e}");
        let _ = std::fs::remove_dir_all(root);
        let empty = std::env::temp_dir().join(format!("wisp-cd-{}", crate::oauth::new_nonce()));
        std::fs::create_dir_all(empty.join("openstack")).unwrap();
        let e = ConfigDrive::from_dir(&empty)
            .fetch_metadata()
            .unwrap_err()
            .to_string();
        assert!(e.contains("meta_data.json"), "{e}");
        let _ = std::fs::remove_dir_all(empty);
    }
}
