//! Choosing the datasource from the configuration: the first entry of `datasource_list`
//! (default: MAAS, NoCloud, ConfigDrive) that is configured is used. A configured MAAS that does
//! not answer is a failure, not a reason to try the next one: falling through would deploy a
//! machine without the data MAAS meant for it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use wisp_datasources::configdrive::ConfigDrive;
use wisp_datasources::http::{HttpClient, DEFAULT_MAX_BYTES};
use wisp_datasources::maas::{metadata_url_from_endpoint, Maas, MaasConfig};
use wisp_datasources::nocloud::{NoCloud, Seed};
use wisp_datasources::oauth::{Credentials, SkewStore};
use wisp_datasources::userdata::INCLUDE_TIMEOUT;
use wisp_datasources::Datasource;

use crate::config::Config;
use crate::root::Root;

pub const DEFAULT_LIST: &[&str] = &["MAAS", "NoCloud", "ConfigDrive"];
/// Seeds placed in the image (cloud-init: `/var/lib/cloud/seed/…`).
pub const NOCLOUD_SEED_DIR: &str = "/var/db/wisp/seed/nocloud";
pub const CONFIGDRIVE_SEED_DIR: &str = "/var/db/wisp/seed/config_drive";

/// The MAAS settings after combining `datasource.MAAS` with `reporting.maas` (curtin writes both;
/// either alone is enough).
pub fn maas_config(config: &Config) -> Option<MaasConfig> {
    let ds = config.datasource.maas.clone().unwrap_or_default();
    let rep = config.reporting.get("maas").cloned().unwrap_or_default();
    let metadata_url = ds
        .metadata_url
        .clone()
        .or_else(|| rep.endpoint.as_deref().and_then(metadata_url_from_endpoint))?;
    let pick = |a: &Option<String>, b: &Option<String>| a.clone().or(b.clone()).unwrap_or_default();
    let credentials = Credentials {
        consumer_key: pick(&ds.consumer_key, &rep.consumer_key),
        consumer_secret: pick(&ds.consumer_secret, &rep.consumer_secret),
        token_key: pick(&ds.token_key, &rep.token_key),
        token_secret: pick(&ds.token_secret, &rep.token_secret),
    };
    let mut cfg = MaasConfig::new(metadata_url, credentials);
    if let Some(w) = ds.max_wait {
        cfg.max_wait = Duration::from_secs_f64(w);
    }
    if let Some(t) = ds.timeout {
        cfg.timeout = Duration::from_secs_f64(t.max(0.1));
    }
    cfg.max_user_data_bytes = config.max_user_data_bytes.unwrap_or(DEFAULT_MAX_BYTES);
    Some(cfg)
}

/// How long one `#include` URL of user-data may take: the datasource's request timeout
/// (`datasource.MAAS.timeout`), else [`INCLUDE_TIMEOUT`]. All of them together get
/// [`wisp_datasources::userdata::INCLUDES_DEADLINE`].
pub fn include_timeout(config: &Config) -> Duration {
    config
        .datasource
        .maas
        .as_ref()
        .and_then(|m| m.timeout)
        .and_then(|t| Duration::try_from_secs_f64(t.max(0.1)).ok())
        .unwrap_or(INCLUDE_TIMEOUT)
}

/// The datasource to use, and a line saying why.
pub fn select(
    config: &Config,
    root: &Root,
    client: &HttpClient,
    skew: Arc<dyn SkewStore>,
) -> anyhow::Result<Box<dyn Datasource>> {
    let list: Vec<String> = config
        .datasource_list
        .clone()
        .unwrap_or_else(|| DEFAULT_LIST.iter().map(|s| s.to_string()).collect());
    for name in &list {
        match name.as_str() {
            "MAAS" => {
                if let Some(cfg) = maas_config(config) {
                    let maas =
                        Maas::new(cfg, client.clone(), skew.clone()).context("datasource MAAS")?;
                    return Ok(Box::new(maas));
                }
            }
            "NoCloud" => {
                let seedfrom = config
                    .datasource
                    .nocloud
                    .as_ref()
                    .and_then(|n| n.seedfrom.clone());
                let seed = match seedfrom {
                    Some(s) => match Seed::from_seedfrom(&s)? {
                        Seed::Dir(d) => Some(Seed::Dir(root.path(d))),
                        url => Some(url),
                    },
                    None => {
                        let d = root.path(NOCLOUD_SEED_DIR);
                        d.join("meta-data").exists().then_some(Seed::Dir(d))
                    }
                };
                if let Some(seed) = seed {
                    return Ok(Box::new(NoCloud::new(
                        seed,
                        Some(client.clone()),
                        Duration::from_secs(10),
                    )));
                }
            }
            "ConfigDrive" => {
                let dir = config
                    .datasource
                    .configdrive
                    .as_ref()
                    .and_then(|c| c.seed_dir.clone())
                    .map(|d| root.path(d))
                    .or_else(|| {
                        let d = root.path(CONFIGDRIVE_SEED_DIR);
                        d.join("openstack").exists().then_some(d)
                    });
                if let Some(dir) = dir {
                    return Ok(Box::new(ConfigDrive::from_dir(dir)));
                }
            }
            "None" => {}
            other => tracing::warn!(
                datasource = other,
                "datasource not supported by wisp, skipped"
            ),
        }
    }
    Err(anyhow!(
        "no datasource is configured (tried {}): set datasource.MAAS (metadata_url and the OAuth \
         keys) or reporting.maas, or datasource.NoCloud.seedfrom, in /etc/wisp/wisp.yaml",
        list.join(", ")
    ))
}

#[cfg(test)]
mod include_tests {
    use super::*;

    #[test]
    fn includes_take_the_datasource_timeout() {
        let mut config = Config::default();
        assert_eq!(include_timeout(&config), INCLUDE_TIMEOUT);
        config.datasource.maas = Some(crate::config::MaasSection {
            timeout: Some(5.0),
            ..Default::default()
        });
        assert_eq!(include_timeout(&config), Duration::from_secs(5));
    }
}
