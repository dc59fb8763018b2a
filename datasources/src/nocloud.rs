//! NoCloud: a seed of `meta-data`, `user-data`, `vendor-data` and `network-config`, in a directory
//! (a mounted `cidata` volume or `seedfrom: /path/`) or under an http(s) `seedfrom` URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::DatasourceError;
use crate::http::{HttpClient, Request, DEFAULT_MAX_BYTES};
use crate::retry::{RetryPolicy, Verdict};
use crate::{Datasource, Metadata};

/// cloud-init's instance id when `meta-data` names none.
pub const DEFAULT_INSTANCE_ID: &str = "iid-datasource-nocloud";

/// Where the seed is.
#[derive(Debug, Clone)]
pub enum Seed {
    Dir(PathBuf),
    /// Base URL ending in `/`; the four names are appended.
    Url(String),
}

impl Seed {
    /// `seedfrom` as cloud-init accepts it: a path, `file://path`, or an http(s) URL.
    pub fn from_seedfrom(seedfrom: &str) -> Result<Seed, DatasourceError> {
        if let Some(path) = seedfrom.strip_prefix("file://") {
            return Ok(Seed::Dir(PathBuf::from(path)));
        }
        if seedfrom.starts_with("http://") || seedfrom.starts_with("https://") {
            let mut url = seedfrom.to_string();
            if !url.ends_with('/') {
                url.push('/');
            }
            return Ok(Seed::Url(url));
        }
        if seedfrom.starts_with('/') {
            return Ok(Seed::Dir(PathBuf::from(seedfrom)));
        }
        Err(DatasourceError::invalid(
            "datasource.NoCloud",
            "seedfrom",
            format!("{seedfrom}: expected an absolute path, file:// or http(s):// URL"),
        ))
    }
}

pub struct NoCloud {
    seed: Seed,
    client: Option<HttpClient>,
    timeout: Duration,
    max_bytes: u64,
}

impl NoCloud {
    pub fn from_dir(dir: impl Into<PathBuf>) -> Self {
        NoCloud {
            seed: Seed::Dir(dir.into()),
            client: None,
            timeout: Duration::from_secs(10),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    pub fn new(seed: Seed, client: Option<HttpClient>, timeout: Duration) -> Self {
        NoCloud {
            seed,
            client,
            timeout,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    fn source(&self) -> String {
        match &self.seed {
            Seed::Dir(d) => d.display().to_string(),
            Seed::Url(u) => u.clone(),
        }
    }

    /// Reads one seed file; `None` when it does not exist.
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, DatasourceError> {
        match &self.seed {
            Seed::Dir(dir) => read_optional(&dir.join(name), self.max_bytes),
            Seed::Url(base) => {
                let client = self.client.as_ref().ok_or_else(|| {
                    DatasourceError::NotConfigured("NoCloud: no HTTP client for seedfrom".into())
                })?;
                let url = format!("{base}{name}");
                RetryPolicy::new(self.timeout * 3, self.timeout)
                    .with_max_attempts(3)
                    .run(|timeout| {
                        let mut req = Request::get(&url, timeout);
                        req.max_bytes = self.max_bytes;
                        match client.send_same_origin(req) {
                            Ok(r) if r.is_success() => Ok(Some(r.body)),
                            Ok(r) if r.status == 404 => Ok(None),
                            Ok(r) => {
                                let e = r.into_error();
                                let v = if e.is_transient() {
                                    Verdict::Retry
                                } else {
                                    Verdict::Stop
                                };
                                Err((e, v))
                            }
                            Err(e) => {
                                let v = if e.is_transient() {
                                    Verdict::Retry
                                } else {
                                    Verdict::Stop
                                };
                                Err((e, v))
                            }
                        }
                    })
            }
        }
    }
}

/// Reads a file of at most `max` bytes; `Ok(None)` if it does not exist.
pub(crate) fn read_optional(path: &Path, max: u64) -> Result<Option<Vec<u8>>, DatasourceError> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(DatasourceError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    let mut buf = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| DatasourceError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
    if buf.len() as u64 > max {
        return Err(DatasourceError::invalid(
            path.display().to_string(),
            "size",
            format!("larger than the {max}-byte limit"),
        ));
    }
    Ok(Some(buf))
}

/// `public-keys` in NoCloud/EC2 style meta-data: a string, a list, or a map of name → key(s).
pub(crate) fn keys_from_value(value: Option<&yaml_serde::Value>) -> Vec<String> {
    use yaml_serde::Value;
    let mut out = Vec::new();
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.extend(
                s.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string),
            ),
            Value::Sequence(items) => items.iter().for_each(|i| collect(i, out)),
            Value::Mapping(m) => m.values().for_each(|i| collect(i, out)),
            _ => {}
        }
    }
    if let Some(v) = value {
        collect(v, &mut out);
    }
    out
}

impl Datasource for NoCloud {
    fn name(&self) -> &'static str {
        "NoCloud"
    }

    fn fetch_metadata(&mut self) -> Result<Metadata, DatasourceError> {
        let source = self.source();
        let raw = self
            .read("meta-data")?
            .ok_or_else(|| DatasourceError::MissingItem {
                source_name: source.clone(),
                item: "meta-data".into(),
            })?;
        let name = format!("{source}/meta-data");
        let md: yaml_serde::Value = if raw.iter().all(u8::is_ascii_whitespace) {
            yaml_serde::Value::Mapping(Default::default())
        } else {
            crate::userdata::yaml::from_slice(&raw)
                .map_err(|e| DatasourceError::invalid(name.clone(), "meta-data", e.to_string()))?
        };
        if !md.is_mapping() {
            return Err(DatasourceError::invalid(
                name,
                "meta-data",
                "must be a YAML map",
            ));
        }
        let get_str = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| md.get(*k).and_then(|v| v.as_str()).map(str::to_string))
        };
        let instance_id = get_str(&["instance-id", "instance_id"])
            .unwrap_or_else(|| DEFAULT_INSTANCE_ID.to_string());
        let local_hostname = get_str(&["local-hostname", "local_hostname", "hostname"]);
        let public_keys = keys_from_value(md.get("public-keys").or(md.get("public_keys")));
        let vendor_data = self.read("vendor-data")?;
        let network_config = match self.read("network-config")? {
            None => None,
            Some(raw) => {
                let v: serde_json::Value =
                    crate::userdata::yaml::from_slice(&raw).map_err(|e| {
                        DatasourceError::invalid(
                            format!("{source}/network-config"),
                            "network-config",
                            e.to_string(),
                        )
                    })?;
                (!v.is_null()).then_some(v)
            }
        };
        let meta_data = serde_json::to_value(&md).unwrap_or(serde_json::Value::Null);
        Ok(Metadata {
            datasource: "NoCloud".into(),
            source,
            instance_id,
            local_hostname,
            public_keys,
            vendor_data,
            network_config,
            meta_data,
        })
    }

    fn fetch_user_data(&mut self) -> Result<Option<Vec<u8>>, DatasourceError> {
        self.read("user-data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(files: &[(&str, &str)]) -> tempdir::Dir {
        let d = tempdir::Dir::new();
        for (name, content) in files {
            std::fs::write(d.path().join(name), content).unwrap();
        }
        d
    }

    /// A tiny self-cleaning temporary directory (no extra dependency for tests).
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                let p = std::env::temp_dir().join(format!(
                    "wisp-nocloud-{}-{}",
                    std::process::id(),
                    crate::oauth::new_nonce()
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn reads_a_full_seed() {
        let d = seed(&[
            (
                "meta-data",
                "instance-id: iid-42\nlocal-hostname: box1\npublic-keys:\n  - ssh-ed25519 AAA k1\n",
            ),
            ("user-data", "#cloud-config\nhostname: x\n"),
            ("vendor-data", "#cloud-config\nntp: {}\n"),
            ("network-config", "version: 2\nethernets: {}\n"),
        ]);
        let mut ds = NoCloud::from_dir(d.path());
        let md = ds.fetch_metadata().unwrap();
        assert_eq!(md.instance_id, "iid-42");
        assert_eq!(md.local_hostname.as_deref(), Some("box1"));
        assert_eq!(md.public_keys, vec!["ssh-ed25519 AAA k1"]);
        assert_eq!(
            md.vendor_data.as_deref(),
            Some(&b"#cloud-config\nntp: {}\n"[..])
        );
        assert_eq!(md.network_config.unwrap()["version"], 2);
        assert_eq!(
            ds.fetch_user_data().unwrap().unwrap(),
            b"#cloud-config\nhostname: x\n"
        );
    }

    #[test]
    fn deeply_nested_seed_yaml_is_refused_fast() {
        let deep = format!("instance-id: {}", "[".repeat(100_000));
        for (file, other) in [
            ("meta-data", None),
            ("network-config", Some("instance-id: iid-1\n")),
        ] {
            let d = match other {
                None => seed(&[(file, deep.as_str())]),
                Some(md) => seed(&[("meta-data", md), (file, deep.as_str())]),
            };
            let start = std::time::Instant::now();
            let e = NoCloud::from_dir(d.path()).fetch_metadata().unwrap_err();
            assert!(
                start.elapsed() < std::time::Duration::from_secs(5),
                "{file}: {:?}",
                start.elapsed()
            );
            let text = e.to_string();
            assert!(
                text.contains(file) && text.contains("nest deeper"),
                "{text}"
            );
        }
    }

    #[test]
    fn empty_meta_data_gets_the_default_instance_id() {
        let d = seed(&[("meta-data", "")]);
        let md = NoCloud::from_dir(d.path()).fetch_metadata().unwrap();
        assert_eq!(md.instance_id, DEFAULT_INSTANCE_ID);
        assert!(NoCloud::from_dir(d.path())
            .fetch_user_data()
            .unwrap()
            .is_none());
    }

    #[test]
    fn missing_or_malformed_meta_data_is_named() {
        let d = seed(&[]);
        let e = NoCloud::from_dir(d.path())
            .fetch_metadata()
            .unwrap_err()
            .to_string();
        assert!(e.contains("meta-data"), "{e}");
        let d = seed(&[("meta-data", "instance-id: [unclosed\n")]);
        let e = NoCloud::from_dir(d.path())
            .fetch_metadata()
            .unwrap_err()
            .to_string();
        assert!(e.contains("meta-data") && e.contains("line"), "{e}");
        let d = seed(&[("meta-data", "- a list\n")]);
        let e = NoCloud::from_dir(d.path())
            .fetch_metadata()
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be a YAML map"), "{e}");
    }

    #[test]
    fn seedfrom_forms() {
        assert!(matches!(
            Seed::from_seedfrom("/var/seed/").unwrap(),
            Seed::Dir(_)
        ));
        assert!(matches!(
            Seed::from_seedfrom("file:///var/seed").unwrap(),
            Seed::Dir(_)
        ));
        match Seed::from_seedfrom("http://10.0.0.1/seed").unwrap() {
            Seed::Url(u) => assert_eq!(u, "http://10.0.0.1/seed/"),
            other => panic!("{other:?}"),
        }
        assert!(Seed::from_seedfrom("relative/dir").is_err());
    }

    #[test]
    fn keys_in_every_shape() {
        let v: yaml_serde::Value =
            yaml_serde::from_str("{a: 'ssh-rsa A a', b: ['ssh-ed25519 B b']}").unwrap();
        assert_eq!(
            keys_from_value(Some(&v)),
            vec!["ssh-rsa A a", "ssh-ed25519 B b"]
        );
        let v: yaml_serde::Value = yaml_serde::from_str("\"k1\\n# c\\n\\nk2\"").unwrap();
        assert_eq!(keys_from_value(Some(&v)), vec!["k1", "k2"]);
    }
}
