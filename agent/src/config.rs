//! wisp's configuration: `/etc/wisp/wisp.yaml` and `/etc/wisp/wisp.yaml.d/*.yaml` (merged in name
//! order, later files winning key by key). It uses cloud-init's system-config keys so existing
//! snippets — MAAS's `90_maas_cloud_config.cfg` among them — work unchanged. Keys wisp does not
//! know at the top level are kept: they are cloud-config for the whole system. A key that is
//! neither wisp's, nor cloud-config, nor cloud-init's own system configuration is most likely a
//! typo: it is named, with its file and line, as a warning (so is any unknown key inside
//! `datasource`, `datasource.<name>` and `reporting.<name>`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use wisp_datasources::userdata::yaml;
use yaml_serde::{Mapping, Value};

use crate::cloudconfig::lenient::norm_key;
use crate::cloudconfig::model::{CONFIG_KEYS, LINUX_ONLY, NOT_SUPPORTED};
use crate::cloudconfig::Positions;
use crate::root::Root;

pub const DEFAULT_CONFIG: &str = "/etc/wisp/wisp.yaml";

/// Where a package puts the configuration (pkgsrc's PKG_SYSCONFDIR, the FreeBSD port's
/// PREFIX/etc): read when there is no `DEFAULT_CONFIG`, which an image's own file wins over.
pub const PACKAGE_CONFIGS: &[&str] = &[
    "/usr/pkg/etc/wisp/wisp.yaml",
    "/usr/local/etc/wisp/wisp.yaml",
];

/// The configuration directory of the package this binary was built for (pkgsrc's
/// PKG_SYSCONFDIR, the FreeBSD port's PREFIX/etc/wisp), given at build time as
/// `WISP_SYSCONFDIR`: a package built with another PREFIX still finds its own file.
const BUILD_SYSCONFDIR: Option<&str> = option_env!("WISP_SYSCONFDIR");

/// Where the main configuration is looked for, in order: `DEFAULT_CONFIG`, the build's
/// sysconfdir (only an absolute path; a relative one would depend on the working directory),
/// then `PACKAGE_CONFIGS`, each once.
fn config_candidates(sysconfdir: Option<&str>) -> Vec<String> {
    let mut out = vec![DEFAULT_CONFIG.to_string()];
    let built = sysconfdir
        .filter(|d| d.starts_with('/'))
        .map(|d| format!("{}/wisp.yaml", d.trim_end_matches('/')));
    for p in built
        .into_iter()
        .chain(PACKAGE_CONFIGS.iter().map(|p| p.to_string()))
    {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// The main configuration file under `root`: the first of `config_candidates` that exists, else
/// `DEFAULT_CONFIG` (absent: no configuration).
pub fn default_path(root: &Root) -> PathBuf {
    default_path_in(root, BUILD_SYSCONFDIR)
}

fn default_path_in(root: &Root, sysconfdir: Option<&str>) -> PathBuf {
    config_candidates(sysconfdir)
        .iter()
        .map(|p| root.path(p))
        .find(|p| p.exists())
        .unwrap_or_else(|| root.path(DEFAULT_CONFIG))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// The typed part of the configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    #[serde(deserialize_with = "string_or_list")]
    pub datasource_list: Option<Vec<String>>,
    pub datasource: DatasourceConfig,
    pub reporting: BTreeMap<String, ReportingConfig>,
    /// The distribution's default user (cloud-init's `system_info.default_user` also works).
    pub default_user: Option<Value>,
    pub system_info: Option<Value>,
    /// Largest user-data accepted, in bytes (default 16 MiB).
    pub max_user_data_bytes: Option<u64>,
    /// The whole merged document, for the cloud-config keys it carries.
    #[serde(skip)]
    pub raw: Mapping,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DatasourceConfig {
    #[serde(rename = "MAAS")]
    pub maas: Option<MaasSection>,
    #[serde(rename = "NoCloud")]
    pub nocloud: Option<NoCloudSection>,
    #[serde(rename = "ConfigDrive")]
    pub configdrive: Option<ConfigDriveSection>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct MaasSection {
    pub metadata_url: Option<String>,
    pub consumer_key: Option<String>,
    pub consumer_secret: Option<String>,
    pub token_key: Option<String>,
    pub token_secret: Option<String>,
    /// Seconds to wait for the metadata service (default 120).
    pub max_wait: Option<f64>,
    /// Seconds per request (default 50).
    pub timeout: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct NoCloudSection {
    /// A seed directory, `file://` or http(s) URL.
    pub seedfrom: Option<String>,
    /// Volume label of a seed volume (default `cidata`).
    pub fs_label: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ConfigDriveSection {
    /// A directory holding `openstack/latest/…` (wisp's extension; the volume `config-2` is found
    /// by label at boot).
    pub seed_dir: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ReportingConfig {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub endpoint: Option<String>,
    pub consumer_key: Option<String>,
    pub consumer_secret: Option<String>,
    pub token_key: Option<String>,
    pub token_secret: Option<String>,
}

fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Form>::deserialize(d)? {
        None => None,
        Some(Form::One(s)) => Some(
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
        ),
        Some(Form::Many(v)) => Some(v),
    })
}

impl Config {
    /// `network: {config: disabled}` (cloud-init's spelling): render no network config.
    pub fn network_config_disabled(&self) -> bool {
        network_disabled_in(&self.raw)
    }
}

fn network_disabled_in(doc: &Mapping) -> bool {
    doc.get("network")
        .and_then(|n| n.get("config"))
        .and_then(Value::as_str)
        == Some("disabled")
}

/// A loaded configuration and where it came from.
#[derive(Debug, Default)]
pub struct Loaded {
    pub config: Config,
    pub files: Vec<PathBuf>,
    /// Unknown keys (`file:line: unknown key …`), bad values that were ignored.
    pub warnings: Vec<String>,
}

/// Loads the configuration. `explicit` is `--config` (a path on the host, not under the root);
/// without it the default is read under `root`, and may be absent.
pub fn load(root: &Root, explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    let main = match explicit {
        Some(p) => p.to_path_buf(),
        None => default_path(root),
    };
    let mut files = Vec::new();
    match std::fs::metadata(&main) {
        Ok(_) => files.push(main.clone()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {}
        Err(e) => {
            return Err(ConfigError::Read {
                path: main,
                source: e,
            })
        }
    }
    // The seed the curtin hook left (imported at first boot): after the main file, before the
    // drop-ins, so an operator's drop-in still wins.
    let seed = root.path(crate::curtin::SEED_IMPORTED);
    if seed.is_file() {
        files.push(seed);
    }
    let dropin = PathBuf::from(format!("{}.d", main.display()));
    if let Ok(entries) = std::fs::read_dir(&dropin) {
        let mut more: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "yaml" || x == "yml" || x == "cfg")
            })
            .collect();
        more.sort();
        files.extend(more);
    }
    let mut merged = Mapping::new();
    let mut warnings = Vec::new();
    let mut disabled_network = false;
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.clone(),
            source: e,
        })?;
        let doc = parse_file(path, &text)?;
        warnings.extend(unknown_keys(path, &text, &doc));
        disabled_network |= network_disabled_in(&doc);
        merge_into(&mut merged, doc);
    }
    // An operator's `network: {config: disabled}` holds wherever it is written: the MAAS seed
    // (read after wisp.yaml) carries a `network` map of its own that must not undo it.
    if disabled_network {
        let mut off = Mapping::new();
        off.insert("config".into(), "disabled".into());
        merged.insert("network".into(), Value::Mapping(off));
    }
    let mut config: Config =
        yaml_serde::from_value(Value::Mapping(merged.clone())).map_err(|e| {
            ConfigError::Invalid {
                path: files.last().cloned().unwrap_or(main),
                message: e.to_string(),
            }
        })?;
    config.raw = merged;
    validate(&config, &files)?;
    Ok(Loaded {
        config,
        files,
        warnings,
    })
}

/// Parses one file and checks its types, so that an error names this file, the line and the key.
fn parse_file(path: &Path, text: &str) -> Result<Mapping, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    // Bounded like every YAML text wisp reads (nesting and memory of the tree).
    let value: Value = yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let map = match value {
        Value::Null => return Ok(Mapping::new()),
        Value::Mapping(m) => m,
        _ => return Err(invalid("the configuration must be a YAML map".into())),
    };
    // serde_path_to_error gives the key; yaml_serde's message carries the line and column.
    let typed: Result<Config, _> = serde_path_to_error::deserialize(
        yaml::deserializer(text).map_err(|e| invalid(e.to_string()))?,
    );
    if let Err(e) = typed {
        let inner = e.inner().to_string();
        let key = e.path().to_string();
        let message = if inner.starts_with(&key) {
            inner
        } else {
            format!("{key}: {inner}")
        };
        return Err(invalid(message));
    }
    Ok(map)
}

/// Later files win key by key; maps merge recursively, everything else is replaced.
fn merge_into(base: &mut Mapping, over: Mapping) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Mapping(b)), Value::Mapping(o)) => merge_into(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

const MAAS_KEYS: &[&str] = &[
    "metadata_url",
    "consumer_key",
    "consumer_secret",
    "token_key",
    "token_secret",
    "max_wait",
    "timeout",
];
const REPORTING_KEYS: &[&str] = &[
    "type",
    "endpoint",
    "consumer_key",
    "consumer_secret",
    "token_key",
    "token_secret",
];
const NOCLOUD_KEYS: &[&str] = &["seedfrom", "fs_label"];
const CONFIGDRIVE_KEYS: &[&str] = &["seed_dir"];
/// The datasources wisp has (`datasource.<name>`).
const DATASOURCES: &[&str] = &["MAAS", "NoCloud", "ConfigDrive"];

/// wisp's own top-level keys (the fields of [`Config`]).
const WISP_KEYS: &[&str] = &[
    "datasource_list",
    "datasource",
    "reporting",
    "default_user",
    "system_info",
    "max_user_data_bytes",
];

/// The cloud-config keys wisp's modules apply: what each module says it reads
/// ([`crate::modules::ModuleInfo::keys`]), so a module's new key is known here without a second
/// list. [`CONFIG_KEYS`], [`LINUX_ONLY`] and [`NOT_SUPPORTED`] hold the rest of what the
/// cloud-config reader accepts; a test checks that the reader knows each of these, so a renamed
/// key shows up there rather than as a false warning at boot.
fn applied_keys() -> impl Iterator<Item = &'static str> {
    crate::modules::MODULES
        .iter()
        .flat_map(|m| m.info().keys.iter().copied())
}

/// cloud-init's own system-configuration keys (its `cloud.cfg`, and what MAAS and curtin drop
/// into `cloud.cfg.d`): an image's existing snippets carry them, and they are not typos even
/// though wisp does nothing with most of them.
const CLOUD_INIT_SYSTEM_KEYS: &[&str] = &[
    "cloud_init_modules",
    "cloud_config_modules",
    "cloud_final_modules",
    "system_info",
    "network",
    "manage_etc_hosts",
    "preserve_hostname",
    "manual_cache_clean",
    "def_log_file",
    "log_cfgs",
    "_log",
    "log_basic",
    "syslog_fix_perms",
    "output",
    "vendor_data",
    "vendor_data2",
    "apt_preserve_sources_list",
    "allow_public_ssh_keys",
    "disable_vendordata",
    "disable_network_activation",
    "mount_default_fields",
    "user_data",
    "cloud_type",
    "warnings",
    "debconf_selections",
];

/// Whether a top-level key means something to wisp or to cloud-init.
fn known_top_level(key: &str) -> bool {
    let key = norm_key(key);
    [
        WISP_KEYS,
        CONFIG_KEYS,
        LINUX_ONLY,
        NOT_SUPPORTED,
        CLOUD_INIT_SYSTEM_KEYS,
        crate::modules::ssh_host_keys::KEYS,
    ]
    .iter()
    .any(|list| list.contains(&key.as_str()))
        || applied_keys().any(|k| k == key)
}

/// Levenshtein distance, for "did you mean": keys are short, so the plain table is enough.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

/// The known key closest to `key`, if it is within two edits (ignoring case and `-`/`_`, so
/// `Maas` finds `MAAS`).
fn suggestion<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let key = norm_key(key).to_ascii_lowercase();
    known
        .into_iter()
        .map(|k| (distance(&key, &k.to_ascii_lowercase()), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Warnings for the keys of one file that nothing reads, each with its file and line.
fn unknown_keys(path: &Path, text: &str, doc: &Mapping) -> Vec<String> {
    let positions = Positions::of(text);
    let mut out = Vec::new();
    let mut warn = |key_path: String, hint: Option<&str>| {
        let place = match positions.key(&key_path) {
            Some(p) => format!("{}:{}", path.display(), p.line),
            None => path.display().to_string(),
        };
        let hint = hint
            .map(|k| format!("; did you mean {k}?"))
            .unwrap_or_default();
        out.push(format!("{place}: unknown key {key_path} (ignored){hint}"));
    };
    let name = |k: &Value| match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "?".into(),
    };
    // Top level: anything cloud-init would know is fine; the rest is a likely typo, and the
    // suggestion looks among the keys people write in wisp.yaml most.
    for k in doc.keys() {
        let key = name(k);
        if !known_top_level(&key) {
            let candidates = WISP_KEYS.iter().copied().chain(applied_keys()).chain(
                [
                    CLOUD_INIT_SYSTEM_KEYS,
                    CONFIG_KEYS,
                    LINUX_ONLY,
                    NOT_SUPPORTED,
                ]
                .into_iter()
                .flatten()
                .copied(),
            );
            warn(key.clone(), suggestion(&key, candidates));
        }
    }
    let mut section = |prefix: &str, v: Option<&Value>, known: &[&str]| {
        if let Some(Value::Mapping(m)) = v {
            for k in m.keys() {
                let key = name(k);
                if !known.contains(&key.as_str()) {
                    warn(
                        format!("{prefix}.{key}"),
                        suggestion(&key, known.iter().copied()),
                    );
                }
            }
        }
    };
    let ds = doc.get("datasource");
    section("datasource", ds, DATASOURCES);
    section("datasource.MAAS", ds.and_then(|d| d.get("MAAS")), MAAS_KEYS);
    section(
        "datasource.NoCloud",
        ds.and_then(|d| d.get("NoCloud")),
        NOCLOUD_KEYS,
    );
    section(
        "datasource.ConfigDrive",
        ds.and_then(|d| d.get("ConfigDrive")),
        CONFIGDRIVE_KEYS,
    );
    if let Some(Value::Mapping(r)) = doc.get("reporting") {
        for (handler_name, handler) in r {
            let prefix = format!("reporting.{}", name(handler_name));
            section(&prefix, Some(handler), REPORTING_KEYS);
        }
    }
    out
}

fn validate(config: &Config, files: &[PathBuf]) -> Result<(), ConfigError> {
    let where_ = || files.last().cloned().unwrap_or_default();
    if let Some(m) = &config.datasource.maas {
        for (key, v) in [("max_wait", m.max_wait), ("timeout", m.timeout)] {
            if let Some(v) = v {
                if !(0.0..=86_400.0).contains(&v) {
                    return Err(ConfigError::Invalid {
                        path: where_(),
                        message: format!(
                            "datasource.MAAS.{key}: {v} is not a number of seconds between 0 and 86400"
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "wisp-config-{}",
            wisp_datasources::oauth::new_nonce()
        ));
        std::fs::create_dir_all(d.join("etc/wisp/wisp.yaml.d")).unwrap();
        d
    }

    #[test]
    fn network_config_can_be_disabled() {
        let d = dir();
        let root = Root::new(&d);
        assert!(!load(&root, None).unwrap().config.network_config_disabled());
        std::fs::write(
            d.join("etc/wisp/wisp.yaml.d/99-net.yaml"),
            "network: {config: disabled}\n",
        )
        .unwrap();
        assert!(load(&root, None).unwrap().config.network_config_disabled());
    }

    #[test]
    fn the_build_sysconfdir_is_read_after_etc_wisp_and_before_the_usual_prefixes() {
        let d = dir();
        let root = Root::new(&d);
        std::fs::create_dir_all(d.join("opt/pkg/etc/wisp")).unwrap();
        std::fs::create_dir_all(d.join("usr/pkg/etc/wisp")).unwrap();
        std::fs::write(d.join("opt/pkg/etc/wisp/wisp.yaml"), "{}\n").unwrap();
        std::fs::write(d.join("usr/pkg/etc/wisp/wisp.yaml"), "{}\n").unwrap();
        assert_eq!(
            default_path_in(&root, Some("/opt/pkg/etc/wisp/")),
            d.join("opt/pkg/etc/wisp/wisp.yaml")
        );
        // Without one (or a relative one) the usual places.
        for none in [None, Some("opt/pkg/etc/wisp")] {
            assert_eq!(
                default_path_in(&root, none),
                d.join("usr/pkg/etc/wisp/wisp.yaml")
            );
        }
        // The build's own first; one the list already has is not looked at twice.
        assert_eq!(
            config_candidates(Some("/usr/local/etc/wisp")),
            [
                DEFAULT_CONFIG,
                "/usr/local/etc/wisp/wisp.yaml",
                "/usr/pkg/etc/wisp/wisp.yaml"
            ]
        );
        std::fs::write(d.join("etc/wisp/wisp.yaml"), "{}\n").unwrap();
        assert_eq!(
            default_path_in(&root, Some("/opt/pkg/etc/wisp")),
            d.join("etc/wisp/wisp.yaml"),
            "the image's own file wins"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_package_config_is_read_when_the_image_has_none() {
        let d = dir();
        let root = Root::new(&d);
        for (prefix, list) in [("usr/pkg", "[NoCloud]"), ("usr/local", "[ConfigDrive]")] {
            std::fs::create_dir_all(d.join(prefix).join("etc/wisp/wisp.yaml.d")).unwrap();
            std::fs::write(
                d.join(prefix).join("etc/wisp/wisp.yaml"),
                format!("datasource_list: {list}\n"),
            )
            .unwrap();
        }
        std::fs::write(
            d.join("usr/pkg/etc/wisp/wisp.yaml.d/50-local.yaml"),
            "max_user_data_bytes: 1024\n",
        )
        .unwrap();
        // pkgsrc's PKG_SYSCONFDIR first, with its drop-ins.
        let l = load(&root, None).unwrap();
        assert_eq!(l.files[0], d.join("usr/pkg/etc/wisp/wisp.yaml"));
        assert_eq!(l.config.datasource_list, Some(vec!["NoCloud".to_string()]));
        assert_eq!(l.config.max_user_data_bytes, Some(1024));
        // The image's own /etc/wisp/wisp.yaml wins over any package's.
        std::fs::write(d.join("etc/wisp/wisp.yaml"), "datasource_list: [MAAS]\n").unwrap();
        let l = load(&root, None).unwrap();
        assert_eq!(l.files, vec![d.join("etc/wisp/wisp.yaml")]);
        assert_eq!(l.config.datasource_list, Some(vec!["MAAS".to_string()]));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_default_config_is_empty() {
        let d = dir();
        let l = load(&Root::new(&d), None).unwrap();
        assert!(l.files.is_empty());
        assert!(l.config.datasource.maas.is_none());
    }

    #[test]
    fn missing_explicit_config_is_an_error() {
        let d = dir();
        let e = load(&Root::new(&d), Some(&d.join("nope.yaml"))).unwrap_err();
        assert!(e.to_string().contains("nope.yaml"), "{e}");
    }

    #[test]
    fn dropins_merge_in_name_order() {
        let d = dir();
        std::fs::write(
            d.join("etc/wisp/wisp.yaml"),
            "datasource_list: [NoCloud]\ndatasource:\n  MAAS:\n    metadata_url: http://a/\n    max_wait: 10\nmanage_etc_hosts: false\n",
        )
        .unwrap();
        std::fs::write(
            d.join("etc/wisp/wisp.yaml.d/50-maas.yaml"),
            "datasource_list: [ MAAS ]\ndatasource:\n  MAAS:\n    token_key: T\n",
        )
        .unwrap();
        std::fs::write(
            d.join("etc/wisp/wisp.yaml.d/90-local.yaml"),
            "datasource:\n  MAAS:\n    max_wait: 30\nmanage_etc_hosts: true\n",
        )
        .unwrap();
        let l = load(&Root::new(&d), None).unwrap();
        assert_eq!(l.files.len(), 3);
        let m = l.config.datasource.maas.unwrap();
        assert_eq!(m.metadata_url.as_deref(), Some("http://a/"));
        assert_eq!(m.token_key.as_deref(), Some("T"));
        assert_eq!(m.max_wait, Some(30.0));
        assert_eq!(l.config.datasource_list, Some(vec!["MAAS".to_string()]));
        assert_eq!(
            l.config.raw.get("manage_etc_hosts"),
            Some(&Value::Bool(true))
        );
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let d = dir();
        let p = d.join("etc/wisp/wisp.yaml");
        std::fs::write(
            &p,
            "datasource:\n  MAAS:\n    token_key: T\n    max_wait: soon\n",
        )
        .unwrap();
        let e = load(&Root::new(&d), None).unwrap_err().to_string();
        assert!(e.contains("wisp.yaml"), "{e}");
        assert!(e.contains("datasource.MAAS.max_wait"), "{e}");
        assert!(e.contains("line 4"), "{e}");
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let d = dir();
        std::fs::write(
            d.join("etc/wisp/wisp.yaml.d/10-bad.yaml"),
            "datasource:\n  MAAS: [unclosed\n",
        )
        .unwrap();
        let e = load(&Root::new(&d), None).unwrap_err().to_string();
        assert!(e.contains("10-bad.yaml") && e.contains("line"), "{e}");
    }

    #[test]
    fn non_map_and_bad_ranges_are_refused() {
        let d = dir();
        let p = d.join("etc/wisp/wisp.yaml");
        std::fs::write(&p, "- a\n").unwrap();
        assert!(load(&Root::new(&d), None)
            .unwrap_err()
            .to_string()
            .contains("YAML map"));
        std::fs::write(&p, "datasource: {MAAS: {max_wait: -3}}\n").unwrap();
        let e = load(&Root::new(&d), None).unwrap_err().to_string();
        assert!(e.contains("datasource.MAAS.max_wait"), "{e}");
    }

    #[test]
    fn unknown_section_keys_are_warnings_and_maas_snippet_loads() {
        let d = dir();
        // The cloud-config MAAS writes for cloud-init, as is.
        std::fs::write(
            d.join("etc/wisp/wisp.yaml.d/90_maas_cloud_config.cfg"),
            "#cloud-config\ndatasource:\n  MAAS:\n    consumer_key: CK\n    metadata_url: http://10.20.0.2:5248/MAAS/metadata/\n    token_key: TK\n    token_secret: TS\n    tokn_secret: typo\n",
        )
        .unwrap();
        std::fs::write(
            d.join("etc/wisp/wisp.yaml.d/91.yaml"),
            "datasource_list: MAAS, NoCloud\n",
        )
        .unwrap();
        let l = load(&Root::new(&d), None).unwrap();
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert!(l.warnings[0].contains("datasource.MAAS.tokn_secret"));
        assert_eq!(
            l.config.datasource.maas.unwrap().token_secret.as_deref(),
            Some("TS")
        );
        assert_eq!(
            l.config.datasource_list,
            Some(vec!["MAAS".to_string(), "NoCloud".to_string()])
        );
    }

    #[test]
    fn host_key_settings_are_known_image_defaults() {
        let (w, _) = warnings_of("ssh_deletekeys: false\nssh_genkeytypes: [ed25519]\n");
        assert_eq!(w, Vec::<String>::new());
    }

    fn warnings_of(text: &str) -> (Vec<String>, PathBuf) {
        let d = dir();
        let p = d.join("etc/wisp/wisp.yaml");
        std::fs::write(&p, text).unwrap();
        (load(&Root::new(&d), None).unwrap().warnings, p)
    }

    #[test]
    fn a_misspelt_top_level_key_is_named_with_file_line_and_suggestion() {
        let (w, p) = warnings_of("users: [default]\ndatasource_lsit: [MAAS]\n");
        assert_eq!(
            w,
            vec![format!(
                "{}:2: unknown key datasource_lsit (ignored); did you mean datasource_list?",
                p.display()
            )]
        );
    }

    #[test]
    fn a_misspelt_section_is_named_with_file_line_and_suggestion() {
        let (w, p) =
            warnings_of("datasource_list: [MAAS]\n\nreportng:\n  maas:\n    type: webhook\n");
        assert_eq!(
            w,
            vec![format!(
                "{}:3: unknown key reportng (ignored); did you mean reporting?",
                p.display()
            )]
        );
    }

    #[test]
    fn a_datasource_in_the_wrong_case_is_named_with_file_line_and_suggestion() {
        let (w, p) = warnings_of(
            "datasource:\n  NoCloud:\n    fs_label: cidata\n  Maas:\n    metadata_url: http://a/\n",
        );
        assert_eq!(
            w,
            vec![format!(
                "{}:4: unknown key datasource.Maas (ignored); did you mean MAAS?",
                p.display()
            )]
        );
    }

    #[test]
    fn keys_inside_sections_get_lines_and_suggestions_too() {
        let (w, p) = warnings_of(
            "datasource:\n  MAAS:\n    metadata_url: http://a/\n    max_wiat: 5\nreporting:\n  maas:\n    type: webhook\n    endpiont: http://a/\n    colour: blue\n",
        );
        let p = p.display();
        assert_eq!(
            w,
            vec![
                format!(
                    "{p}:4: unknown key datasource.MAAS.max_wiat (ignored); did you mean max_wait?"
                ),
                format!(
                    "{p}:8: unknown key reporting.maas.endpiont (ignored); did you mean endpoint?"
                ),
                format!("{p}:9: unknown key reporting.maas.colour (ignored)"),
            ]
        );
    }

    #[test]
    fn cloud_config_and_cloud_init_system_keys_are_not_typos() {
        // What images and MAAS put beside the datasource settings: module keys, the Linux-only
        // ones wisp ignores, and cloud-init's own system configuration.
        let (w, _) = warnings_of(concat!(
            "#cloud-config\n",
            "datasource_list: [MAAS]\n",
            "users: [default]\nntp: {servers: [10.0.0.1]}\npackages: [jq]\nruncmd: [ls]\n",
            "ssh-authorized-keys: [ssh-ed25519 AAAA]\n",
            "cloud_init_modules: [migrator]\ncloud_config_modules: [ntp]\n",
            "cloud_final_modules: [scripts-user]\nsystem_info: {default_user: {name: ubuntu}}\n",
            "network: {config: disabled}\nmanage_etc_hosts: true\npreserve_hostname: false\n",
            "manual_cache_clean: true\napt_preserve_sources_list: true\n",
            "def_log_file: /var/log/cloud-init.log\nsyslog_fix_perms: [syslog:adm]\n",
            "debconf_selections: {maas: x}\nsnap: {commands: [x]}\n",
        ));
        assert_eq!(w, Vec::<String>::new());
    }

    #[test]
    fn the_cloud_config_reader_knows_each_applied_key() {
        // The modules' keys must be what the reader takes: none may be an unknown key to it.
        for key in applied_keys() {
            let mut doc = Mapping::new();
            doc.insert(Value::String(key.to_string()), Value::Null);
            let mut r = crate::cloudconfig::Reader::default();
            crate::cloudconfig::CloudConfig::read(&mut r, &doc);
            assert!(
                !r.problems.iter().any(|p| p.message.contains("unknown key")),
                "{key}: {:?}",
                r.problems
            );
        }
    }

    #[test]
    fn suggestions_need_two_edits_or_fewer() {
        assert_eq!(distance("datasource_lsit", "datasource_list"), 2);
        assert_eq!(
            suggestion("reportng", WISP_KEYS.iter().copied()),
            Some("reporting")
        );
        assert_eq!(suggestion("frobnicate", WISP_KEYS.iter().copied()), None);
        assert_eq!(
            suggestion("Maas", DATASOURCES.iter().copied()),
            Some("MAAS")
        );
    }
}
