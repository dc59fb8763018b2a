//! From documents to a plan, and from a plan to results: the path `wisp apply` and the boot
//! stages share. Layers the configuration (system, vendor-data, user-data), reads it as
//! cloud-config, plans every module, keeps what is due, runs it, and marks what succeeded.

use wisp_datasources::userdata::{self, Budget, DecodeOptions, Decoded, PartKind};

use crate::accounts::Accounts;
use crate::apply::Outcome as ActionOutcome;
use crate::cloudconfig::{layers, CloudConfig, Positions, Reader, Severity};
use crate::config::Config;
use crate::instance::InstanceState;
use crate::modules::{self, Extras, Inputs, ItemError, Planned, Stage};
use crate::platform::Platform;
use crate::report::Outcome;
use crate::root::Root;

/// What a machine was given.
pub struct Documents<'a> {
    pub user: Option<&'a Decoded>,
    pub vendor: Option<&'a Decoded>,
    /// The datasource's public keys: they go to the default user.
    pub metadata_keys: &'a [String],
    pub local_hostname: Option<&'a str>,
    pub instance_id: &'a str,
    /// Names the documents in messages.
    pub source: &'a str,
}

/// Vendor-data as a datasource or a file gives it: MAAS's `{cloud-init: …}` map, or a document.
/// Not filtered by launch index: cloud-init filters only user-data (its `get_vendordata` does
/// not), so every vendor-data part is kept whatever its `launch-index`.
pub fn decode_vendor(raw: &[u8], name: &str) -> anyhow::Result<Decoded> {
    // Read as PyYAML reads it (`yaml::load`: a repeated key keeps its last value). Too deep a
    // text is not read here: decoding reports it (with its line) as a document.
    let parsed = std::str::from_utf8(raw)
        .ok()
        .and_then(|text| userdata::yaml::load(text).ok());
    let doc = match parsed.map(|l| l.value) {
        Some(v @ yaml_serde::Value::Mapping(_)) if v.get("cloud-init").is_some() => {
            wisp_datasources::convert_vendor_data(&v, name)?.unwrap_or_default()
        }
        _ => raw.to_vec(),
    };
    Ok(userdata::decode(&doc, name, &DecodeOptions::default()))
}

/// The distribution's default user as wisp.yaml gives it (`default_user` or
/// `system_info.default_user`).
fn configured_default_user(
    config: &Config,
    reader: &mut Reader<'_>,
) -> Option<crate::cloudconfig::model::UserSpec> {
    let v = config.default_user.as_ref().or(config
        .system_info
        .as_ref()
        .and_then(|s| s.get("default_user")))?;
    let mut inner = yaml_serde::Mapping::new();
    inner.insert("default_user".into(), v.clone());
    let mut map = yaml_serde::Mapping::new();
    map.insert("system_info".into(), yaml_serde::Value::Mapping(inner));
    CloudConfig::read(reader, &map).default_user
}

/// The module that reads the top-level key of `path` (`users[0].uid` → `users_groups`);
/// keys no module reads (those wisp ignores) are the document's: [`DOCUMENT`].
fn module_of_key(path: &str) -> &'static str {
    let end = path.find(['.', '[']).unwrap_or(path.len());
    let key = crate::cloudconfig::lenient::norm_key(&path[..end]);
    modules::MODULES
        .iter()
        .map(|m| m.info())
        .find(|i| i.keys.contains(&key.as_str()))
        .map_or(DOCUMENT, |i| i.name)
}

/// The name under which problems of keys no module reads are reported.
pub const DOCUMENT: &str = "cloud_config";

/// The name under which parts of the documents that could not be read at all are reported.
pub const DECODING: &str = "user-data";

/// Whether `e` is the documents' own (a part not read, a key no module reads), not a module's.
pub fn of_documents(e: &ItemError) -> bool {
    e.module == DOCUMENT || e.module == DECODING
}

/// The documents read as one cloud-config: done once per set of documents, however many stages
/// then plan from it.
pub struct Read {
    config: CloudConfig,
    default_user: Option<crate::cloudconfig::model::UserSpec>,
    /// Problems of the documents, for the report.
    pub warnings: Vec<String>,
    /// Items of the documents that `wisp schema` calls errors: the report lists them as errors
    /// too, under the module that reads their key, [`DOCUMENT`] for a key no module reads, or
    /// [`DECODING`] for a part that could not be read.
    pub errors: Vec<ItemError>,
    /// The modules the boot retries (see [`modules::Extras::retried`]); none outside a boot.
    pub retried: Vec<String>,
}

impl Read {
    /// Layers the configuration, vendor-data and user-data and reads the result. Keys with no
    /// meaning on the BSDs are logged here, once.
    pub fn new(platform: Platform, config: &Config, docs: &Documents<'_>) -> Read {
        let mut warnings = Vec::new();
        let mut errors = Vec::new();
        for (d, name) in [(docs.user, docs.source), (docs.vendor, "vendor-data")] {
            let Some(d) = d else { continue };
            // A part that could not be read (invalid YAML, not a map, too deep, a failed
            // include) is an error to `wisp schema`: so here too. The rest of the documents
            // is applied all the same, as cloud-init does.
            for p in &d.problems {
                errors.push(ItemError {
                    module: DECODING,
                    item: format!("{name}: {}", p.part),
                    reason: p.message.clone(),
                });
            }
            for p in &d.warnings {
                warnings.push(format!("{}: {}", p.part, p.message));
            }
        }
        let empty = yaml_serde::Mapping::new();
        let layered = layers::layer(
            &config.raw,
            docs.vendor.map(|v| &v.cloud_config),
            docs.user.map(|u| &u.cloud_config).unwrap_or(&empty),
            platform,
        );
        warnings.extend(layered.notes);
        // Encoded write_files contents are decoded from what decoding the documents left of
        // their budget: a few KB of user-data cannot grow past it there either.
        let budget = [docs.user, docs.vendor]
            .into_iter()
            .flatten()
            .map(Decoded::budget)
            .min_by_key(Budget::left)
            .unwrap_or_default();
        // A user-data of one cloud-config part is read with its text, as `wisp schema` reads
        // it: how an unquoted value is written can matter (a mode `644` is not `0644`). Its
        // paths are the layered config's for every key it gives: user-data is the top layer.
        let mut cloud_configs = docs
            .user
            .into_iter()
            .flat_map(|u| &u.parts)
            .filter(|p| p.kind == PartKind::CloudConfig);
        let positions = match (cloud_configs.next(), cloud_configs.next()) {
            (Some(part), None) => std::str::from_utf8(&part.content).ok().map(Positions::of),
            _ => None,
        };
        let mut reader = Reader {
            budget: Some(&budget),
            positions: positions.as_ref(),
            ..Default::default()
        };
        let cc = CloudConfig::read(&mut reader, &layered.config);
        // The module lists decide what runs from here on.
        modules::selection::select(&cc.module_lists);
        let default_user = configured_default_user(config, &mut reader);
        for p in reader.problems {
            // Keys with no meaning on the BSDs (MAAS's vendor-data always has some) are noted
            // in the log but do not make the run WARN.
            if p.severity == Severity::Warning && cc.ignored.contains(&p.path) {
                tracing::info!(key = %p.path, "ignored: {}", p.message);
                continue;
            }
            if p.severity == Severity::Error {
                errors.push(ItemError {
                    module: module_of_key(&p.path),
                    item: format!("{}: {}", docs.source, p.path),
                    reason: p.message,
                });
            } else {
                warnings.push(format!(
                    "{}: warning: {}: {}",
                    docs.source, p.path, p.message
                ));
            }
        }
        Read {
            config: cc,
            default_user,
            warnings,
            errors,
            retried: Vec::new(),
        }
    }

    /// The documents read as one cloud-config.
    pub fn config(&self) -> &CloudConfig {
        &self.config
    }

    /// The cloud-config, for a caller that narrows it (`wisp apply`).
    pub fn config_mut(&mut self) -> &mut CloudConfig {
        &mut self.config
    }

    /// Plans the modules that `wanted` picks on `platform` under `root`. The documents'
    /// warnings are in the plan when `with_warnings`.
    pub fn plan(
        &self,
        root: &Root,
        platform: Platform,
        docs: &Documents<'_>,
        with_warnings: bool,
        disks: Option<&std::path::Path>,
        wanted: impl Fn(&modules::ModuleInfo) -> bool,
    ) -> modules::Plan {
        let mut planned = Planned::default();
        if with_warnings {
            planned.warnings = self.warnings.clone();
        }
        // A module's items in error are reported with the module, where it is planned; the
        // documents' own, once, with the documents' warnings.
        planned.errors = self
            .errors
            .iter()
            .filter(|e| {
                if of_documents(e) {
                    with_warnings
                } else {
                    wanted(&modules::info(e.module))
                }
            })
            .cloned()
            .collect();
        let root_arg = (root.path("/") != std::path::Path::new("/"))
            .then(|| root.path("/").display().to_string());
        let backend = platform.backend(root_arg);
        let accounts = Accounts::load(root);
        let disks = disks.map(|f| crate::platform::disks::Probe::from_file(f, platform));
        let inputs = Inputs {
            config: &self.config,
            metadata_keys: docs.metadata_keys,
            configured_default_user: self.default_user.as_ref(),
            backend: backend.as_ref(),
            accounts: &accounts,
            root,
            disks: disks.as_ref(),
        };
        let parts = docs.user.map(|u| &u.parts[..]).unwrap_or(&[]);
        modules::plan_modules(
            &inputs,
            &Extras {
                parts,
                instance_id: docs.instance_id,
                local_hostname: docs.local_hostname,
                retried: &self.retried,
            },
            planned,
            wanted,
        )
    }
}

/// The modules an earlier boot started for `instance_id` and did not finish: this boot retries
/// them ([`modules::Extras::retried`]).
pub fn retried(state: &InstanceState, instance_id: &str) -> Vec<String> {
    modules::infos()
        .iter()
        .filter(|m| state.runs(m.name, instance_id) > 0)
        .map(|m| m.name.to_string())
        .collect()
}

/// Whether any module of `stage` is due for `instance_id` (else the stage has nothing to do,
/// and warnings of its plan are about work done before).
pub fn stage_due(state: &InstanceState, instance_id: &str, stage: Stage) -> bool {
    modules::infos()
        .iter()
        .any(|m| m.stage == stage && state.should_run(m.name, m.frequency, instance_id))
}

/// Keeps the actions of modules of `stage` (all stages when `None`) that are due for
/// `instance_id`.
pub fn keep_due(
    planned: &mut Planned,
    state: &InstanceState,
    instance_id: &str,
    stage: Option<Stage>,
) {
    planned.retain_actions(|a| {
        let info = modules::info(a.module());
        stage.is_none_or(|s| info.stage == s)
            && state.should_run(a.module(), info.frequency, instance_id)
    });
}

/// Whether `instance_id` is new to this machine: `recorded_new` is what recording it said
/// ([`InstanceState::set_instance_id`]). An instance is known once a final stage (or a whole
/// `wisp apply`) ended for it ([`InstanceState::set_final_finished`]): the stages may run as
/// separate processes, and one whose predecessor saved results for the id is still in the
/// instance's first boot (its host keys not replaced yet, its phone_home not sent). Without
/// that record (a wisp from before it), the results saved for the id say so unless they
/// show stages of which the final one has not ended. Results of a trial `wisp apply` (no
/// instance) say nothing either way.
pub fn is_new_instance(state: &InstanceState, instance_id: &str, recorded_new: bool) -> bool {
    if recorded_new {
        return true;
    }
    if let Some(finished) = state.final_finished() {
        return finished.as_deref() != Some(instance_id);
    }
    match state.results() {
        None => true,
        Some(r) => match r["instance_id"].as_str() {
            None => false,
            Some(id) if id != instance_id => true,
            Some(_) => {
                // Results without stages are an older wisp's or an apply's: known.
                let final_result = r["stages"]["final"]["result"].as_str();
                r["command"] != "apply"
                    && r["stages"].is_object()
                    && final_result.is_none_or(|f| f == "running")
            }
        },
    }
}

/// On an instance that is not new, the modules that act only on a new one
/// ([`modules::only_on_new_instance`]) and have no marker for it (wisp was upgraded since the
/// machine was deployed) are marked done without running: an upgrade must not rotate the host
/// keys or repeat a power_state.
pub fn settle_known_instance(state: &InstanceState, instance_id: &str) -> std::io::Result<()> {
    for m in modules::infos() {
        if modules::only_on_new_instance(m.name)
            && state.should_run(m.name, m.frequency, instance_id)
        {
            tracing::info!(
                module = m.name,
                "not a new instance: marked done without running"
            );
            state.mark_done(m.name, instance_id)?;
        }
    }
    Ok(())
}

/// Marks each module that ran without a failure as done for `instance_id`.
pub fn mark_done(
    planned: &Planned,
    outcomes: &[ActionOutcome],
    state: &InstanceState,
    instance_id: &str,
) -> anyhow::Result<()> {
    let mut ran: Vec<&str> = planned.actions.iter().map(|a| a.module()).collect();
    ran.dedup();
    for m in ran {
        if modules::failures_are_warnings(m)
            || !outcomes.iter().any(|o| o.module == m && o.error.is_some())
        {
            state.mark_done(m, instance_id)?;
        }
    }
    Ok(())
}

/// FAIL when an action failed, WARN when items were refused or warned about (or an action
/// failed whose failure is a warning: [`modules::failures_are_warnings`]), else SUCCESS.
pub fn result(planned: &Planned, outcomes: &[ActionOutcome]) -> Outcome {
    let failed = |o: &&ActionOutcome| o.error.is_some();
    if outcomes
        .iter()
        .filter(failed)
        .any(|o| !modules::failures_are_warnings(o.module))
    {
        Outcome::Fail
    } else if !planned.errors.is_empty()
        || !planned.warnings.is_empty()
        || outcomes.iter().any(|o| o.error.is_some())
    {
        Outcome::Warn
    } else {
        Outcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_is_new_until_a_run_for_it_saved_its_results() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let state = InstanceState::new(crate::state::StateDir::new(&root, false));
        // Nothing recorded: new (a first boot, or one cut short before its results).
        assert!(is_new_instance(&state, "i-1", false));
        // Final review of issue 13 (2): results an earlier stage process saved for the id do
        // not make it known; a final stage that ended does (an older wisp's results).
        state
            .write_results(&serde_json::json!({"instance_id": "i-1",
                "stages": {"local": {"result": "SUCCESS"}}}))
            .unwrap();
        assert!(is_new_instance(&state, "i-1", false));
        state
            .write_results(&serde_json::json!({"instance_id": "i-1",
                "stages": {"final": {"result": "running"}}}))
            .unwrap();
        assert!(is_new_instance(&state, "i-1", false));
        // An older wisp's results, without stages: known.
        state
            .write_results(&serde_json::json!({"instance_id": "i-1"}))
            .unwrap();
        assert!(!is_new_instance(&state, "i-1", false));
        state
            .write_results(&serde_json::json!({"instance_id": "i-1",
                "stages": {"final": {"result": "WARN"}}}))
            .unwrap();
        assert!(!is_new_instance(&state, "i-1", false));
        // This wisp's record wins: none ended since the id changed.
        state.set_instance_id("i-1").unwrap();
        assert!(is_new_instance(&state, "i-1", false));
        state.set_final_finished("i-1").unwrap();
        assert!(!is_new_instance(&state, "i-1", false));
        state.set_instance_id("i-2").unwrap();
        assert!(is_new_instance(&state, "i-2", false));
        std::fs::remove_file(d.path().join("var/db/wisp/final-finished")).ok();
        state
            .write_results(&serde_json::json!({"instance_id": "i-1",
                "stages": {"final": {"result": "WARN"}}}))
            .unwrap();
        assert!(!is_new_instance(&state, "i-1", false));
        assert!(is_new_instance(&state, "i-2", false));
        assert!(is_new_instance(&state, "i-1", true));
        // A trial apply's results name no instance.
        state
            .write_results(&serde_json::json!({"instance_id": null}))
            .unwrap();
        assert!(!is_new_instance(&state, "i-1", false));
        // Not new: the modules that act only on a new instance are settled, the others not.
        settle_known_instance(&state, "i-1").unwrap();
        // phone_home too (review of issue 13, 4): an upgraded wisp does not phone home again.
        for m in ["ssh_host_keys", "growpart", "power_state", "phone_home"] {
            assert!(
                !state.should_run(m, modules::Frequency::PerInstance, "i-1"),
                "{m}"
            );
        }
        assert!(state.should_run("users_groups", modules::Frequency::PerInstance, "i-1"));
    }

    #[test]
    fn a_module_a_boot_started_and_did_not_finish_is_planned_as_a_retry() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let state = InstanceState::new(crate::state::StateDir::new(&root, false));
        let user = userdata::decode(
            b"#cloud-config\nlocale: en_US.UTF-8\n",
            "user-data",
            &Default::default(),
        );
        let docs = Documents {
            user: Some(&user),
            vendor: None,
            metadata_keys: &[],
            local_hostname: None,
            instance_id: "i-1",
            source: "user-data",
        };
        // login.conf as the first run left it: written, its database not rebuilt yet.
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/login.conf"),
            "default:\\\n\t:charset=UTF-8:\\\n\t:lang=en_US.UTF-8:\\\n\t:umask=022:\n",
        )
        .unwrap();
        let mut read = Read::new(Platform::Freebsd, &Config::default(), &docs);
        let locale = |read: &Read| {
            read.plan(&root, Platform::Freebsd, &docs, false, None, |m| {
                m.name == modules::locale::NAME
            })
            .planned
            .actions
            .len()
        };
        read.retried = retried(&state, "i-1");
        assert_eq!(locale(&read), 0);
        // The first boot started the module (a crash or a failed cap_mkdb followed).
        state.start_run(modules::locale::NAME, "i-1").unwrap();
        read.retried = retried(&state, "i-1");
        assert_eq!(read.retried, [modules::locale::NAME]);
        assert_eq!(locale(&read), 1, "cap_mkdb on the retry");
        assert!(retried(&state, "i-2").is_empty());
        state.mark_done(modules::locale::NAME, "i-1").unwrap();
        assert!(retried(&state, "i-1").is_empty());
    }

    #[test]
    fn vendor_data_with_a_repeated_key_is_read_as_cloud_init_reads_it() {
        let raw = b"cloud-init: \"#cloud-config\\nhostname: first\\n\"\nother: 1\ncloud-init: \"#cloud-config\\nhostname: last\\n\"\n";
        let d = decode_vendor(raw, "vendor-data").unwrap();
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert_eq!(
            d.cloud_config.get("hostname").and_then(|v| v.as_str()),
            Some("last")
        );
    }

    #[test]
    fn vendor_data_parts_are_kept_whatever_their_launch_index() {
        let raw = b"cloud-init:\n  - {launch-index: 1, content: \"#cloud-config\\nhostname: one\\n\"}\n  - {launch-index: 2, content: \"#cloud-config\\ntimezone: UTC\\n\"}\n";
        let d = decode_vendor(raw, "vendor-data").unwrap();
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
        assert_eq!(
            d.cloud_config.get("hostname").and_then(|v| v.as_str()),
            Some("one")
        );
        assert!(d.cloud_config.get("timezone").is_some());
    }
}
