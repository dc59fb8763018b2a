//! Per-instance state under `/var/db/wisp`: the instance id and the previous one, a marker per
//! module saying for which instance (or boot) it last ran, and the results of the last run.
//! A new instance id makes the per-instance modules run again; per-boot modules always run;
//! once modules run once ever.

use std::io;

use serde::{Deserialize, Serialize};

use crate::modules::Frequency;
use crate::state::StateDir;

const INSTANCE_ID: &str = "instance-id";
const PREVIOUS_INSTANCE_ID: &str = "previous-instance-id";
const RESULTS: &str = "results.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub instance_id: String,
}

pub struct InstanceState {
    state: StateDir,
}

impl InstanceState {
    pub fn new(state: StateDir) -> Self {
        InstanceState { state }
    }

    fn read_text(&self, name: &str) -> Option<String> {
        self.state
            .read(name)
            .ok()
            .flatten()
            .map(|d| String::from_utf8_lossy(&d).trim().to_string())
            .filter(|s| !s.is_empty())
    }

    pub fn instance_id(&self) -> Option<String> {
        self.read_text(INSTANCE_ID)
    }

    pub fn previous_instance_id(&self) -> Option<String> {
        self.read_text(PREVIOUS_INSTANCE_ID)
    }

    /// Records `id` as the current instance. Returns whether it is a new one (the old id is
    /// kept as the previous).
    pub fn set_instance_id(&self, id: &str) -> io::Result<bool> {
        let current = self.instance_id();
        if current.as_deref() == Some(id) {
            return Ok(false);
        }
        if let Some(old) = current {
            self.state
                .write(PREVIOUS_INSTANCE_ID, format!("{old}\n").as_bytes())?;
        }
        self.state
            .write(INSTANCE_ID, format!("{id}\n").as_bytes())?;
        Ok(true)
    }

    fn marker_name(module: &str) -> String {
        format!("sem.{module}.json")
    }

    /// Whether `module` is due for `instance_id`.
    pub fn should_run(&self, module: &str, frequency: Frequency, instance_id: &str) -> bool {
        let marker: Option<Marker> = self
            .state
            .read(&Self::marker_name(module))
            .ok()
            .flatten()
            .and_then(|d| serde_json::from_slice(&d).ok());
        match frequency {
            Frequency::PerBoot => true,
            Frequency::Once => marker.is_none(),
            Frequency::PerInstance => marker.is_none_or(|m| m.instance_id != instance_id),
        }
    }

    /// Marks `module` as done for `instance_id` (written only once it has run).
    pub fn mark_done(&self, module: &str, instance_id: &str) -> io::Result<()> {
        let m = Marker {
            instance_id: instance_id.to_string(),
        };
        self.state.write(
            &Self::marker_name(module),
            &serde_json::to_vec(&m).unwrap_or_default(),
        )
    }

    pub fn write_results(&self, results: &serde_json::Value) -> io::Result<()> {
        self.state.write(
            RESULTS,
            &serde_json::to_vec_pretty(results).unwrap_or_default(),
        )
    }

    pub fn results(&self) -> Option<serde_json::Value> {
        self.state
            .read(RESULTS)
            .ok()
            .flatten()
            .and_then(|d| serde_json::from_slice(&d).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::Root;

    fn state() -> (InstanceState, std::path::PathBuf) {
        let d = std::env::temp_dir().join(format!(
            "wisp-inst-{}",
            wisp_datasources::oauth::new_nonce()
        ));
        (InstanceState::new(StateDir::new(&Root::new(&d), false)), d)
    }

    #[test]
    fn a_new_instance_reruns_per_instance_modules_only() {
        let (s, d) = state();
        assert!(s.set_instance_id("i-1").unwrap());
        assert!(!s.set_instance_id("i-1").unwrap());
        assert!(s.should_run("users_groups", Frequency::PerInstance, "i-1"));
        s.mark_done("users_groups", "i-1").unwrap();
        s.mark_done("seed_once", "i-1").unwrap();
        assert!(!s.should_run("users_groups", Frequency::PerInstance, "i-1"));
        assert!(s.should_run("bootcmd", Frequency::PerBoot, "i-1"));
        // Redeployed: a new instance id.
        assert!(s.set_instance_id("i-2").unwrap());
        assert_eq!(s.previous_instance_id().as_deref(), Some("i-1"));
        assert_eq!(s.instance_id().as_deref(), Some("i-2"));
        assert!(s.should_run("users_groups", Frequency::PerInstance, "i-2"));
        assert!(!s.should_run("seed_once", Frequency::Once, "i-2"));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn results_round_trip() {
        let (s, d) = state();
        assert!(s.results().is_none());
        s.write_results(&serde_json::json!({"result": "WARN"}))
            .unwrap();
        assert_eq!(s.results().unwrap()["result"], "WARN");
        std::fs::remove_dir_all(d).unwrap();
    }
}
