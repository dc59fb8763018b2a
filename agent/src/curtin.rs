//! The curtin side of a MAAS deployment: `wisp curtin-hook` runs in MAAS's Ubuntu ephemeral
//! environment (as `curtin/curtin-hooks` on the image's EFI partition, a static Linux build of
//! wisp beside it) and turns curtin's merged config into a seed for the first boot: the metadata
//! URL and credentials (from `reporting.maas`, else `cloudconfig.maas-cloud-config`, else the
//! debconf lines), the reporting endpoint, and the `network` config MAAS assigned. The seed is a
//! wisp configuration fragment, read at first boot, moved root-only to /var/db/wisp and deleted
//! from the FAT partition (which has no permissions).

use wisp_datasources::userdata::yaml;
use yaml_serde::{Mapping, Value};

/// Where the seed goes on the EFI partition, and where the first boot keeps it.
pub const SEED_ON_ESP: &str = "wisp/maas-seed.yaml";
pub const SEED_IMPORTED: &str = "/var/db/wisp/seed/maas.yaml";

#[derive(Debug, thiserror::Error)]
pub enum CurtinError {
    #[error("{0}: not valid YAML: {1}")]
    Yaml(String, String),
    #[error("{0}: no MAAS credentials: looked for reporting.maas, cloudconfig.maas-cloud-config and debconf_selections.maas")]
    NoCredentials(String),
    #[error("{0}: {1}")]
    Invalid(String, String),
}

/// What the first boot needs, from curtin's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub metadata_url: String,
    pub consumer_key: String,
    pub token_key: String,
    pub token_secret: String,
    pub endpoint: Option<String>,
    pub network: Option<Value>,
    /// MAAS's proxy for the package tool (`package_proxy` in the seed).
    pub package_proxy: Option<String>,
    /// What was left out, and why (said by the hook; the rest is still seeded).
    pub warnings: Vec<String>,
}

/// The proxy MAAS gives curtin: `apt: {proxy}` (maasserver's get_archive_config, for the
/// archive when MAAS's proxy is on), else apt's `http_proxy`, else curtin's own top-level
/// `proxy: {http_proxy}`. Only an `http://` URL is taken (the BSDs' package tools speak plain
/// HTTP to a proxy); a refused one is named by its field, never shown.
fn package_proxy(
    map: &yaml_serde::Mapping,
    name: &str,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let candidates = [
        ("apt", "proxy"),
        ("apt", "http_proxy"),
        ("proxy", "http_proxy"),
    ];
    for (section, key) in candidates {
        let Some(v) = map.get(section).and_then(|s| s.get(key)) else {
            continue;
        };
        let url = v.as_str().map(str::trim).unwrap_or_default();
        if url.is_empty() {
            continue;
        }
        let ok = url.starts_with("http://")
            && url.len() <= crate::modules::packages::MAX_URL
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            return Some(url.to_string());
        }
        warnings.push(format!(
            "{name}: {section}.{key}: not an http:// URL of at most {} bytes ({} bytes, not \
             shown): no package proxy seeded",
            crate::modules::packages::MAX_URL,
            url.len()
        ));
        return None;
    }
    None
}

fn s(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::to_string)
        .filter(|x| !x.is_empty())
}

/// Reads curtin's merged config (`$CONFIG`). `name` names it in errors.
pub fn seed_from_config(text: &str, name: &str) -> Result<Seed, CurtinError> {
    // Read as cloud-init's PyYAML reads it (`yaml::load`): a repeated key keeps its last value.
    let doc: Value = yaml::load(text)
        .map(|l| l.value)
        .map_err(|e| CurtinError::Yaml(name.into(), e.to_string()))?;
    let Some(map) = doc.as_mapping() else {
        return Err(CurtinError::Invalid(
            name.into(),
            "the config is not a YAML map".into(),
        ));
    };
    let reporting = map.get("reporting").and_then(|r| r.get("maas"));
    let endpoint = s(reporting.and_then(|r| r.get("endpoint")));
    let mut creds = reporting.and_then(|r| {
        Some((
            s(r.get("consumer_key"))?,
            s(r.get("token_key"))?,
            s(r.get("token_secret"))?,
        ))
    });
    let mut metadata_url = endpoint
        .as_deref()
        .and_then(wisp_datasources::maas::metadata_url_from_endpoint);
    // cloudconfig.maas-cloud-config.content: a #cloud-config with datasource.MAAS.
    if let Some(content) = map
        .get("cloudconfig")
        .and_then(|c| c.get("maas-cloud-config"))
        .and_then(|c| c.get("content"))
        .and_then(Value::as_str)
    {
        let cc: Value = yaml::load(content).map(|l| l.value).map_err(|e| {
            CurtinError::Yaml(
                format!("{name}: cloudconfig.maas-cloud-config.content"),
                e.to_string(),
            )
        })?;
        let ds = cc.get("datasource").and_then(|d| d.get("MAAS"));
        if metadata_url.is_none() {
            metadata_url = s(ds.and_then(|d| d.get("metadata_url")));
        }
        if creds.is_none() {
            creds = ds.and_then(|d| {
                Some((
                    s(d.get("consumer_key"))?,
                    s(d.get("token_key"))?,
                    s(d.get("token_secret"))?,
                ))
            });
        }
    }
    // The debconf lines cloud-init's MAAS package reads.
    if let Some(debconf) = map
        .get("debconf_selections")
        .and_then(|d| d.get("maas"))
        .and_then(Value::as_str)
    {
        for line in debconf.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_, "cloud-init/maas-metadata-url", "string", url] if metadata_url.is_none() => {
                    metadata_url = Some(url.to_string())
                }
                [_, "cloud-init/maas-metadata-credentials", "string", q] if creds.is_none() => {
                    let get = |k: &str| {
                        q.split('&')
                            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                            .map(percent_decode)
                    };
                    if let (Some(c), Some(t), Some(ts)) = (
                        get("oauth_consumer_key"),
                        get("oauth_token_key"),
                        get("oauth_token_secret"),
                    ) {
                        creds = Some((c, t, ts));
                    }
                }
                _ => {}
            }
        }
    }
    let (consumer_key, token_key, token_secret) =
        creds.ok_or_else(|| CurtinError::NoCredentials(name.into()))?;
    let metadata_url = metadata_url.ok_or_else(|| {
        CurtinError::Invalid(
            name.into(),
            "no metadata URL (reporting.maas.endpoint or datasource.MAAS.metadata_url)".into(),
        )
    })?;
    if !(metadata_url.starts_with("http://") || metadata_url.starts_with("https://")) {
        return Err(CurtinError::Invalid(
            name.into(),
            format!("metadata URL {metadata_url:?} is not http(s)"),
        ));
    }
    let mut warnings = Vec::new();
    let package_proxy = package_proxy(map, name, &mut warnings);
    Ok(Seed {
        metadata_url,
        consumer_key,
        token_key,
        token_secret,
        endpoint,
        network: map.get("network").cloned(),
        package_proxy,
        warnings,
    })
}

fn percent_decode(v: &str) -> String {
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(x) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Seed {
    /// The seed as a wisp configuration fragment (wisp.yaml(5) keys), plus the network config.
    pub fn to_yaml(&self) -> String {
        let mut maas = Mapping::new();
        maas.insert("metadata_url".into(), self.metadata_url.clone().into());
        maas.insert("consumer_key".into(), self.consumer_key.clone().into());
        maas.insert("token_key".into(), self.token_key.clone().into());
        maas.insert("token_secret".into(), self.token_secret.clone().into());
        let mut ds = Mapping::new();
        ds.insert("MAAS".into(), Value::Mapping(maas));
        let mut doc = Mapping::new();
        doc.insert(
            "datasource_list".into(),
            Value::Sequence(vec!["MAAS".into()]),
        );
        doc.insert("datasource".into(), Value::Mapping(ds));
        if let Some(ep) = &self.endpoint {
            let mut rep = Mapping::new();
            rep.insert("type".into(), "webhook".into());
            rep.insert("endpoint".into(), ep.clone().into());
            rep.insert("consumer_key".into(), self.consumer_key.clone().into());
            rep.insert("token_key".into(), self.token_key.clone().into());
            rep.insert("token_secret".into(), self.token_secret.clone().into());
            let mut reporting = Mapping::new();
            reporting.insert("maas".into(), Value::Mapping(rep));
            doc.insert("reporting".into(), Value::Mapping(reporting));
        }
        if let Some(n) = &self.network {
            doc.insert("network".into(), n.clone());
        }
        if let Some(p) = &self.package_proxy {
            doc.insert("package_proxy".into(), p.clone().into());
        }
        format!(
            "# wisp seed, written by `wisp curtin-hook` during the MAAS deployment.\n# Read and deleted at first boot. See wisp.yaml(5).\n{}",
            yaml_serde::to_string(&Value::Mapping(doc)).unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/curtin-config.yaml");
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e} (shared/ sits beside the repository)", p.display()))
    }

    #[test]
    fn reads_maas_s_merged_config() {
        let s = seed_from_config(&fixture(), "CONFIG").unwrap();
        assert_eq!(s.metadata_url, "http://10.20.0.2:5248/MAAS/metadata/");
        assert_eq!(s.consumer_key, "nT2dKJuVc3H4aZy7Lq");
        assert_eq!(s.token_key, "ufYb2m8QwX6kPz9rEd");
        assert_eq!(s.token_secret, "4vGh7TnKcR2xWq9LmZp3Jd8sYb6FaE5u");
        assert_eq!(
            s.endpoint.as_deref(),
            Some("http://10.20.0.2:5248/MAAS/metadata/status/8kq3dx")
        );
        let net = s.network.as_ref().unwrap();
        assert_eq!(net["version"], 1);
        assert_eq!(net["config"][0]["mac_address"], "3c:ec:ef:10:22:7a");
        assert_eq!(net["config"][0]["subnets"][0]["address"], "10.20.0.31/24");
    }

    #[test]
    fn a_repeated_key_is_read_as_cloud_init_reads_it() {
        // The same content twice: cloud-init (PyYAML) keeps the last; the hook must not fail.
        let mut text = fixture();
        text.push_str("\nreporting: {maas: {endpoint: 'http://10.20.0.2:5248/MAAS/metadata/status/zz9', consumer_key: a, token_key: b, token_secret: c}}\n");
        let s = seed_from_config(&text, "CONFIG").unwrap();
        assert_eq!(
            s.endpoint.as_deref(),
            Some("http://10.20.0.2:5248/MAAS/metadata/status/zz9")
        );
        assert_eq!(s.token_secret, "c");
    }

    #[test]
    fn falls_back_to_cloudconfig_then_debconf() {
        let mut doc: Value = yaml_serde::from_str(&fixture()).unwrap();
        doc.as_mapping_mut().unwrap().remove("reporting");
        let s = seed_from_config(&yaml_serde::to_string(&doc).unwrap(), "CONFIG").unwrap();
        assert_eq!(s.metadata_url, "http://10.20.0.2:5248/MAAS/metadata/");
        assert_eq!(s.token_secret, "4vGh7TnKcR2xWq9LmZp3Jd8sYb6FaE5u");
        assert_eq!(s.endpoint, None);
        doc.as_mapping_mut().unwrap().remove("cloudconfig");
        let s = seed_from_config(&yaml_serde::to_string(&doc).unwrap(), "CONFIG").unwrap();
        assert_eq!(s.metadata_url, "http://10.20.0.2:5248/MAAS/metadata/");
        assert_eq!(s.consumer_key, "nT2dKJuVc3H4aZy7Lq");
        assert_eq!(s.token_secret, "4vGh7TnKcR2xWq9LmZp3Jd8sYb6FaE5u");
    }

    #[test]
    fn bad_and_partial_configs_are_clear_errors() {
        assert!(matches!(
            seed_from_config("a: [unclosed", "C"),
            Err(CurtinError::Yaml(..))
        ));
        assert!(matches!(
            seed_from_config("- list", "C"),
            Err(CurtinError::Invalid(..))
        ));
        let e = seed_from_config(
            "reporting: {maas: {endpoint: http://x/MAAS/metadata/status/a, consumer_key: c}}\n",
            "C",
        )
        .unwrap_err();
        assert!(matches!(e, CurtinError::NoCredentials(_)), "{e}");
        let e = seed_from_config(
            "reporting: {maas: {consumer_key: c, token_key: t, token_secret: s}}\n",
            "C",
        )
        .unwrap_err();
        assert!(e.to_string().contains("no metadata URL"), "{e}");
        let e = seed_from_config("reporting: {maas: {endpoint: ftp://x/status/a, consumer_key: c, token_key: t, token_secret: s}}\n", "C").unwrap_err();
        assert!(e.to_string().contains("not http"), "{e}");
        // No secret in any message.
        let e = seed_from_config("reporting: {maas: {endpoint: ftp://x/status/a, consumer_key: c, token_key: t, token_secret: SeCrEt}}\n", "C").unwrap_err();
        assert!(!e.to_string().contains("SeCrEt"));
    }

    #[test]
    fn the_seed_is_a_wisp_config_fragment() {
        let s = seed_from_config(&fixture(), "CONFIG").unwrap();
        let v: Value = yaml_serde::from_str(&s.to_yaml()).unwrap();
        assert_eq!(v["datasource_list"][0], "MAAS");
        assert_eq!(v["datasource"]["MAAS"]["token_key"], "ufYb2m8QwX6kPz9rEd");
        assert_eq!(
            v["reporting"]["maas"]["endpoint"],
            "http://10.20.0.2:5248/MAAS/metadata/status/8kq3dx"
        );
        assert_eq!(v["network"]["version"], 1);
        // The fixture's MAAS has no proxy on: none seeded.
        assert!(v.get("package_proxy").is_none(), "{v:?}");
    }

    #[test]
    fn maas_s_proxy_for_curtin_becomes_the_package_proxy() {
        let with = |extra: &str| {
            let mut doc: Value = yaml_serde::from_str(&fixture()).unwrap();
            let extra: Value = yaml_serde::from_str(extra).unwrap();
            for (k, v) in extra.as_mapping().unwrap() {
                doc.as_mapping_mut().unwrap().insert(k.clone(), v.clone());
            }
            seed_from_config(&yaml_serde::to_string(&doc).unwrap(), "CONFIG").unwrap()
        };
        // As maasserver's get_archive_config writes it.
        let s = with("apt: {preserve_sources_list: false, proxy: 'http://10.20.0.2:8000/'}");
        assert_eq!(s.package_proxy.as_deref(), Some("http://10.20.0.2:8000/"));
        let v: Value = yaml_serde::from_str(&s.to_yaml()).unwrap();
        assert_eq!(v["package_proxy"], "http://10.20.0.2:8000/");
        // The seed is a wisp.yaml fragment whose package_proxy the packages module reads.
        let mut r = crate::cloudconfig::lenient::Reader::default();
        let cc = crate::cloudconfig::model::CloudConfig::read(&mut r, v.as_mapping().unwrap());
        assert_eq!(
            cc.packages.package_proxy.as_deref(),
            Some("http://10.20.0.2:8000/")
        );
        // curtin's own proxy key.
        let s = with("proxy: {http_proxy: 'http://p:3128/', https_proxy: 'http://p:3128/'}");
        assert_eq!(s.package_proxy.as_deref(), Some("http://p:3128/"));
        // A bad one is named by its field, not shown, and the rest is still seeded.
        let s = with("apt: {proxy: 'ftp://u:SeCrEt@p/'}");
        assert_eq!(s.package_proxy, None);
        assert_eq!(s.token_key, "ufYb2m8QwX6kPz9rEd");
        assert!(
            s.warnings[0].starts_with("CONFIG: apt.proxy: not an http:// URL"),
            "{:?}",
            s.warnings
        );
        assert!(!s.warnings[0].contains("SeCrEt"));
    }
}

/// Moves the seed from a mounted EFI partition into wisp's state (root-only) and deletes it
/// from the partition. `Ok(false)` when there is none.
pub fn import_from_esp(esp: &std::path::Path, root: &crate::root::Root) -> std::io::Result<bool> {
    import_from_esp_removing(esp, root, |p| std::fs::remove_file(p))
}

/// [`import_from_esp`] with the seed's removal given (the tests make it fail as on a
/// read-only ESP).
fn import_from_esp_removing(
    esp: &std::path::Path,
    root: &crate::root::Root,
    remove: impl Fn(&std::path::Path) -> std::io::Result<()>,
) -> std::io::Result<bool> {
    let src = esp.join(SEED_ON_ESP);
    match std::fs::symlink_metadata(&src) {
        Ok(m) if m.is_file() && m.len() <= 1024 * 1024 => {}
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is not a plain file of at most 1 MiB",
                src.display()
            )))
        }
        Err(_) => return Ok(false),
    }
    let data = std::fs::read(&src)?;
    let dest = root.path(SEED_IMPORTED);
    crate::fsutil::ensure_dir(&root.path(crate::state::STATE_DIR), 0o700)?;
    if let Some(dir) = dest.parent() {
        crate::fsutil::ensure_dir(dir, 0o700)?;
    }
    crate::fsutil::write_atomic(&dest, &data, 0o600)?;
    // FAT has no permissions: the credentials must not stay there. The import is done
    // either way (a later boot does not import again): an ESP mounted read-only keeps the
    // seed, which is said so that someone removes it.
    if let Err(e) = remove(&src) {
        tracing::warn!(
            seed = %src.display(),
            error = %e,
            "MAAS seed imported; could not remove the seed from the EFI partition \
             (read-only?): remove it by hand"
        );
        return Ok(true);
    }
    if let Some(dir) = src.parent() {
        let _ = std::fs::remove_dir(dir);
    }
    if let Ok(d) = std::fs::File::open(esp) {
        let _ = d.sync_all();
    }
    Ok(true)
}

#[cfg(test)]
mod import_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_seed_moves_root_only_and_leaves_the_esp() {
        let d =
            std::env::temp_dir().join(format!("wisp-esp-{}", wisp_datasources::oauth::new_nonce()));
        let esp = d.join("esp");
        std::fs::create_dir_all(esp.join("wisp")).unwrap();
        std::fs::create_dir_all(esp.join("EFI/BOOT")).unwrap();
        std::fs::write(esp.join(SEED_ON_ESP), "datasource_list: [MAAS]\n").unwrap();
        let root = crate::root::Root::new(d.join("root"));
        assert!(import_from_esp(&esp, &root).unwrap());
        let dest = root.path(SEED_IMPORTED);
        assert_eq!(
            std::fs::read_to_string(&dest).unwrap(),
            "datasource_list: [MAAS]\n"
        );
        assert_eq!(
            std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(dest.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o700
        );
        assert!(!esp.join("wisp").exists());
        assert!(esp.join("EFI/BOOT").exists());
        // Nothing left: nothing to import.
        assert!(!import_from_esp(&esp, &root).unwrap());
        std::fs::remove_dir_all(d).unwrap();
    }

    /// Last review (6): an ESP mounted read-only keeps the seed, but it is imported all the
    /// same (a warning says to remove it), not reported as a failed import.
    #[test]
    fn a_seed_that_cannot_be_removed_is_still_imported() {
        let d = tempfile::tempdir().unwrap();
        let esp = d.path().join("esp");
        std::fs::create_dir_all(esp.join("wisp")).unwrap();
        std::fs::write(esp.join(SEED_ON_ESP), "datasource_list: [MAAS]\n").unwrap();
        let root = crate::root::Root::new(d.path().join("root"));
        let read_only = |_: &std::path::Path| Err(std::io::Error::from_raw_os_error(libc::EROFS));
        assert!(import_from_esp_removing(&esp, &root, read_only).unwrap());
        assert_eq!(
            std::fs::read_to_string(root.path(SEED_IMPORTED)).unwrap(),
            "datasource_list: [MAAS]\n"
        );
        assert!(esp.join(SEED_ON_ESP).exists());
    }
}
