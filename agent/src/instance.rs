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
/// The instance whose final stage has ended (empty: none since the instance id last changed).
/// The stages may run as separate processes, each saving its results: only the end of a final
/// stage says the instance's first boot is over.
const FINAL_FINISHED: &str = "final-finished";

/// How many boots a per-instance (or once) module that keeps failing runs in, for one
/// instance: after that it is marked done with its failure recorded. Run again at every boot, a
/// module that cannot succeed would report FAIL each time, and users_groups would re-apply the
/// users' settings over what they changed since.
pub const MAX_RUNS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub instance_id: String,
    /// Whether the module is done for the instance; not when it failed or was cut short (it
    /// runs again). Markers from before this field are of done modules.
    #[serde(default = "done_by_default")]
    pub done: bool,
    /// How many boots it started in for the instance.
    #[serde(default)]
    pub runs: u32,
    /// Why it was given up: marked done after [`MAX_RUNS`] boots that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gave_up: Option<String>,
}

fn done_by_default() -> bool {
    true
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
        // A new instance: its final stage has not ended yet.
        self.state.write(FINAL_FINISHED, b"")?;
        Ok(true)
    }

    /// Records that a final stage (or a whole `wisp apply`) ended for `id`.
    pub fn set_final_finished(&self, id: &str) -> io::Result<()> {
        if self.final_finished().flatten().as_deref() == Some(id) {
            return Ok(());
        }
        self.state
            .write(FINAL_FINISHED, format!("{id}\n").as_bytes())
    }

    /// The instance whose final stage ended: `None` when nothing is recorded (a wisp from
    /// before the record), `Some(None)` when none has ended since the id changed.
    pub fn final_finished(&self) -> Option<Option<String>> {
        self.state
            .read(FINAL_FINISHED)
            .ok()
            .flatten()
            .map(|d| Some(String::from_utf8_lossy(&d).trim().to_string()).filter(|s| !s.is_empty()))
    }

    fn marker_name(module: &str) -> String {
        format!("sem.{module}.json")
    }

    fn marker(&self, module: &str) -> Option<Marker> {
        self.state
            .read(&Self::marker_name(module))
            .ok()
            .flatten()
            .and_then(|d| serde_json::from_slice(&d).ok())
    }

    fn write_marker(&self, module: &str, m: &Marker) -> io::Result<()> {
        self.state.write(
            &Self::marker_name(module),
            &serde_json::to_vec(m).unwrap_or_default(),
        )
    }

    /// Whether `module` is due for `instance_id`.
    pub fn should_run(&self, module: &str, frequency: Frequency, instance_id: &str) -> bool {
        let marker = self.marker(module);
        match frequency {
            Frequency::PerBoot => true,
            Frequency::Once => marker.is_none_or(|m| !m.done),
            Frequency::PerInstance => {
                marker.is_none_or(|m| m.instance_id != instance_id || !m.done)
            }
        }
    }

    /// How many boots `module` started in for `instance_id` without being done: 0 on its first
    /// run, more on a retry.
    pub fn runs(&self, module: &str, instance_id: &str) -> u32 {
        self.marker(module)
            .filter(|m| m.instance_id == instance_id && !m.done)
            .map_or(0, |m| m.runs)
    }

    /// Records that `module` starts for `instance_id` (before its first action: a crash counts
    /// as a run); returns how many boots it has started in, this one included.
    pub fn start_run(&self, module: &str, instance_id: &str) -> io::Result<u32> {
        let runs = self.runs(module, instance_id).saturating_add(1);
        self.write_marker(
            module,
            &Marker {
                instance_id: instance_id.to_string(),
                done: false,
                runs,
                gave_up: None,
            },
        )?;
        Ok(runs)
    }

    /// Marks `module` as done for `instance_id` (written only once it has run).
    pub fn mark_done(&self, module: &str, instance_id: &str) -> io::Result<()> {
        self.write_marker(
            module,
            &Marker {
                instance_id: instance_id.to_string(),
                done: true,
                runs: self.runs(module, instance_id),
                gave_up: None,
            },
        )
    }

    /// Marks `module` done for `instance_id` though it failed: it has run [`MAX_RUNS`] times.
    pub fn give_up(&self, module: &str, instance_id: &str, reason: &str) -> io::Result<()> {
        self.write_marker(
            module,
            &Marker {
                instance_id: instance_id.to_string(),
                done: true,
                runs: self.runs(module, instance_id),
                gave_up: Some(reason.to_string()),
            },
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
    fn a_failing_module_runs_in_at_most_max_runs_boots() {
        let (s, d) = state();
        // A marker from before runs were counted is a done module.
        std::fs::create_dir_all(d.join("var/db/wisp")).unwrap();
        std::fs::write(
            d.join("var/db/wisp/sem.ntp.json"),
            r#"{"instance_id":"i-1"}"#,
        )
        .unwrap();
        assert!(!s.should_run("ntp", Frequency::PerInstance, "i-1"));
        for n in 1..=MAX_RUNS {
            assert!(s.should_run("users_groups", Frequency::PerInstance, "i-1"));
            assert_eq!(s.runs("users_groups", "i-1"), n - 1);
            assert_eq!(s.start_run("users_groups", "i-1").unwrap(), n);
        }
        s.give_up("users_groups", "i-1", "pw: failed").unwrap();
        assert!(!s.should_run("users_groups", Frequency::PerInstance, "i-1"));
        let m = s.marker("users_groups").unwrap();
        assert_eq!(
            (m.runs, m.gave_up.as_deref()),
            (MAX_RUNS, Some("pw: failed"))
        );
        // A new instance starts the count again.
        assert!(s.should_run("users_groups", Frequency::PerInstance, "i-2"));
        assert_eq!(s.runs("users_groups", "i-2"), 0);
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
