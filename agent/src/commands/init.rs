//! `wisp init [--stage local|network|final]`: the boot flow (no stage: all three in order).
//!
//! - local (before networking): read local seeds (NoCloud, ConfigDrive); with data from this or
//!   an earlier boot, run bootcmd and boothooks.
//! - network (after networking, before sshd and logins): fetch metadata; apply the hostname,
//!   the default user and the metadata keys; *then* fetch user-data — MAAS marks the machine
//!   Deployed on that GET, so the keys are in place by then — and apply the network-stage
//!   modules.
//! - final (after logins): deferred files, runcmd, user scripts, and the final report.
//!
//! Every stage reports start and finish to MAAS, with a child event per module. A fatal error
//! before the user-data GET is a top-level FAIL, which MAAS shows as *Failed deployment* with
//! the reason at once, instead of after its timeout.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::bail;
use serde_json::{json, Value};
use wisp_datasources::http::{HttpClient, HttpOptions};
use wisp_datasources::maas::Maas;
use wisp_datasources::oauth::SkewStore;
use wisp_datasources::userdata::{self, DecodeOptions, Decoded};

use super::Context;
use crate::apply::Outcome as ActionOutcome;
use crate::config::{self, Config};
use crate::engine::{self, Documents};
use crate::instance::InstanceState;
use crate::modules::{self, Planned, Stage};
use crate::platform::Platform;
use crate::report::{Outcome, Reporter};
use crate::sources;
use crate::state::{self, FileSkewStore, StateDir};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StageArg {
    Local,
    Network,
    Final,
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Run only this stage.
    #[arg(long, value_enum)]
    pub stage: Option<StageArg>,
    /// A mounted EFI partition to take the MAAS seed from (by default the FAT partitions of
    /// the disks are searched, on the running system).
    #[arg(long, value_name = "DIR")]
    pub esp: Option<std::path::PathBuf>,
}

/// Turns wisp off in an image without uninstalling it.
pub const DISABLED: &str = "/etc/wisp/disabled";
pub const STATUS: &str = "status.json";
/// How much of the log a final FAIL or WARN carries to MAAS.
const LOG_TAIL: usize = 256 * 1024;

struct Run<'a> {
    ctx: &'a Context,
    platform: Platform,
    config: &'a Config,
    state: StateDir,
    instance: InstanceState,
    client: HttpClient,
    skew: Arc<dyn SkewStore>,
    reporter: Reporter,
    status: Value,
    /// What the network stage fetched and decoded, for the final stage of the same run (so
    /// `#include`s are fetched once per boot, not once per stage).
    fetched: Option<Cached>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A reporter for MAAS, if MAAS is the datasource: `reporting.maas.endpoint`, else the
/// metadata URL's `status/<system-id>` once the system id is known.
fn reporter_for(
    config: &Config,
    client: &HttpClient,
    skew: Arc<dyn SkewStore>,
    state: &StateDir,
    system_id: Option<&str>,
) -> Reporter {
    let target = sources::maas_config(config).and_then(|mut cfg| {
        // reporting.maas signs with its own credentials when it has them.
        if let Some(rep) = config.reporting.get("maas") {
            let creds = wisp_datasources::oauth::Credentials {
                consumer_key: rep.consumer_key.clone().unwrap_or_default(),
                consumer_secret: rep.consumer_secret.clone().unwrap_or_default(),
                token_key: rep.token_key.clone().unwrap_or_default(),
                token_secret: rep.token_secret.clone().unwrap_or_default(),
            };
            if creds.is_complete() {
                cfg.credentials = creds;
            }
        }
        let endpoint = config
            .reporting
            .get("maas")
            .and_then(|r| r.endpoint.clone())
            .or_else(|| {
                let base = cfg.metadata_url.trim_end_matches('/').to_string();
                system_id.map(|id| format!("{base}/status/{id}"))
            })?;
        let maas = Maas::new(cfg, client.clone(), skew).ok()?;
        Some((maas, endpoint))
    });
    Reporter::new(target, state.clone())
}

pub fn run(ctx: &Context, args: &InitArgs) -> anyhow::Result<u8> {
    let Some(platform) = ctx.platform else {
        bail!("this OS is not supported; name the target with --platform");
    };
    if ctx.root.path(DISABLED).exists() {
        tracing::info!("{DISABLED} exists: wisp is disabled");
        return Ok(0);
    }
    // First the seed the curtin hook left: it brings the datasource and its credentials.
    if matches!(args.stage, None | Some(StageArg::Local)) && !ctx.dry_run {
        import_maas_seed(ctx, platform, args.esp.as_deref());
    }
    let loaded = config::load(&ctx.root, ctx.config_path.as_deref())?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let state = StateDir::new(&ctx.root, ctx.dry_run);
    // Under --dry-run the state is read-only: the known skew is used, a new one only kept in
    // memory.
    let skew: Arc<dyn SkewStore> = Arc::new(FileSkewStore::load(state.clone()));
    let client = HttpClient::new(&HttpOptions::default())?;
    let cached_id = cached_instance_id(&state);
    let reporter = reporter_for(
        &loaded.config,
        &client,
        skew.clone(),
        &state,
        cached_id.as_deref(),
    );
    let status = state
        .read(STATUS)
        .ok()
        .flatten()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_else(|| json!({}));
    let mut run = Run {
        ctx,
        platform,
        config: &loaded.config,
        instance: InstanceState::new(state.clone()),
        state,
        client,
        skew,
        reporter,
        status,
        fetched: None,
    };
    let stages = match args.stage {
        None => vec![StageArg::Local, StageArg::Network, StageArg::Final],
        Some(s) => vec![s],
    };
    let mut worst = Outcome::Success;
    let mut summary: Vec<String> = Vec::new();
    for s in stages {
        let (outcome, fatal) = match s {
            StageArg::Local => local(&mut run),
            StageArg::Network => network(&mut run),
            StageArg::Final => final_stage(&mut run),
        };
        worst = worst.worst(outcome);
        summary.push(format!(
            "{} {}",
            format!("{s:?}").to_lowercase(),
            outcome.as_str()
        ));
        if fatal {
            break;
        }
    }
    // The short summary for the console; the details are in the log and `wisp status --long`.
    outln!(
        "wisp: {} (details: {}, wisp status --long)",
        summary.join(", "),
        crate::log::LOG_FILE
    );
    Ok(super::apply::exit_code(worst))
}

/// The data of the last fetch, as the stages use it.
struct Cached {
    instance_id: String,
    local_hostname: Option<String>,
    public_keys: Vec<String>,
    user: Option<Decoded>,
    vendor: Option<Decoded>,
}

fn cached_instance_data(state: &StateDir) -> Option<(Value, String)> {
    let data: Value = serde_json::from_slice(&state.read(state::INSTANCE_DATA).ok()??).ok()?;
    let instance_id = data["v1"]["instance_id"].as_str()?.to_string();
    Some((data, instance_id))
}

/// The instance id of the last fetch, without decoding its user-data (which may fetch).
fn cached_instance_id(state: &StateDir) -> Option<String> {
    cached_instance_data(state).map(|(_, id)| id)
}

fn cached(state: &StateDir, client: &HttpClient) -> Option<Cached> {
    let (data, instance_id) = cached_instance_data(state)?;
    let v1 = &data["v1"];
    let user = state.read(state::USER_DATA).ok().flatten().map(|raw| {
        let opts = DecodeOptions {
            fetcher: Some(client),
            instance_data: Some(&data),
            ..Default::default()
        };
        userdata::decode(&raw, "user-data", &opts)
    });
    let vendor = state
        .read(state::VENDOR_DATA)
        .ok()
        .flatten()
        .and_then(|raw| engine::decode_vendor(&raw, "vendor-data").ok());
    Some(Cached {
        instance_id,
        local_hostname: v1["local_hostname"].as_str().map(str::to_string),
        public_keys: v1["public_ssh_keys"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        user,
        vendor,
    })
}

impl Run<'_> {
    fn plan(&self, c: &Cached) -> Planned {
        engine::plan(
            &self.ctx.root,
            self.platform,
            self.config,
            &Documents {
                user: c.user.as_ref(),
                vendor: c.vendor.as_ref(),
                metadata_keys: &c.public_keys,
                local_hostname: c.local_hostname.as_deref(),
                instance_id: &c.instance_id,
                source: "user-data",
            },
        )
        .planned
    }

    fn record_stage(&mut self, stage: &str, result: &str, errors: Vec<String>) {
        let entry = &mut self.status["stages"][stage];
        if result == "running" {
            *entry = json!({"started": now(), "result": "running"});
        } else {
            entry["finished"] = json!(now());
            entry["result"] = json!(result);
            entry["errors"] = json!(errors);
        }
        self.status["current"] = json!(stage);
        self.save_status();
    }

    fn save_status(&self) {
        if let Err(e) = self.state.write(
            STATUS,
            &serde_json::to_vec_pretty(&self.status).unwrap_or_default(),
        ) {
            tracing::warn!(error = %e, "cannot save the status");
        }
    }

    /// Carries out `planned` (or prints it under --dry-run), reports a start and finish per
    /// module under `parent`, and records the modules' results.
    fn run_modules(
        &mut self,
        planned: &Planned,
        parent: &str,
        count_warnings: bool,
    ) -> (Vec<ActionOutcome>, Outcome) {
        if self.ctx.dry_run {
            super::apply::print_plan(planned);
            return (Vec::new(), engine::result(planned, &[]));
        }
        let outcomes = crate::apply::execute(&planned.actions, &self.ctx.root);
        for (user, secret) in &planned.random_passwords {
            if outcomes.iter().any(|o| {
                o.module == modules::set_passwords::NAME && &o.item == user && o.error.is_none()
            }) {
                // The console, not the log.
                outln!("wisp: set_passwords: {user}: random password: {}", secret.0);
            }
        }
        let mut names: Vec<&str> = Vec::new();
        for a in &planned.actions {
            if !names.contains(&a.module()) {
                names.push(a.module());
            }
        }
        for e in &planned.errors {
            if !names.contains(&e.module) {
                names.push(e.module);
            }
        }
        let mut worst = Outcome::Success;
        for m in names {
            let failures: Vec<String> = outcomes
                .iter()
                .filter(|o| o.module == m)
                .filter_map(|o| o.error.as_ref().map(|e| format!("{}: {e}", o.item)))
                .collect();
            let refused: Vec<String> = planned
                .errors
                .iter()
                .filter(|e| e.module == m)
                .map(|e| format!("{}: {}", e.item, e.reason))
                .collect();
            let result = if !failures.is_empty() {
                Outcome::Fail
            } else if !refused.is_empty() {
                Outcome::Warn
            } else {
                Outcome::Success
            };
            worst = worst.worst(result);
            let name = format!("{parent}/config-{m}");
            let description = failures
                .iter()
                .chain(refused.iter())
                .next()
                .cloned()
                .unwrap_or_else(|| format!("config-{m} ran successfully"));
            self.reporter.start(&name, &format!("running config-{m}"));
            self.reporter.finish(&name, &description, result, None);
            self.status["modules"][m] = json!({
                "result": result.as_str(),
                "errors": failures.iter().chain(refused.iter()).collect::<Vec<_>>(),
            });
        }
        if count_warnings && !planned.warnings.is_empty() {
            for w in &planned.warnings {
                tracing::warn!("{w}");
            }
            worst = worst.worst(Outcome::Warn);
        }
        (outcomes, worst)
    }

    /// Marks the stage's modules done for the instance (as cloud-init's semaphores, also when
    /// one failed: a failing runcmd must not run again at every boot).
    fn mark_stage(&self, stage: Stage, instance_id: &str) {
        if self.ctx.dry_run {
            return;
        }
        for m in modules::MODULES.iter().filter(|m| m.stage == stage) {
            if let Err(e) = self.instance.mark_done(m.name, instance_id) {
                tracing::warn!(module = m.name, error = %e, "cannot mark the module done");
            }
        }
    }

    /// A fatal error: a top-level FAIL with the reason and the log, so MAAS fails the
    /// deployment now.
    fn fatal(&mut self, stage: &str, reason: String) -> (Outcome, bool) {
        tracing::error!("{reason}");
        let log = crate::log::tail(&self.ctx.root, LOG_TAIL);
        self.reporter.finish(
            stage,
            &reason,
            Outcome::Fail,
            log.as_deref().map(|l| (crate::log::LOG_FILE, l)),
        );
        self.record_stage(stage_key(stage), "FAIL", vec![reason]);
        (Outcome::Fail, true)
    }
}

fn stage_key(event: &str) -> &'static str {
    match event {
        "init-local" => "local",
        "init-network" | "modules-config" => "network",
        _ => "final",
    }
}

/// The seed the curtin hook left on the EFI partition: from `esp` when given, else from the
/// FAT partitions of the disks (on the running system only), mounted read-write because the
/// seed is deleted from there once imported.
fn import_maas_seed(ctx: &Context, platform: Platform, esp: Option<&std::path::Path>) {
    if ctx.root.path(crate::curtin::SEED_IMPORTED).exists() {
        return;
    }
    if let Some(esp) = esp {
        match crate::curtin::import_from_esp(esp, &ctx.root) {
            Ok(true) => tracing::info!(esp = %esp.display(), "MAAS seed imported"),
            Ok(false) => tracing::info!(esp = %esp.display(), "no MAAS seed on the EFI partition"),
            Err(e) => tracing::warn!(error = %e, "importing the MAAS seed"),
        }
        return;
    }
    if ctx.root.path("/") != std::path::Path::new("/") {
        return;
    }
    let backend = platform.backend(None);
    let names = disk_names(backend.as_ref());
    let mnt = ctx.root.path("/var/db/wisp/mnt");
    for dev in backend.disk_devices(&names) {
        if !matches!(
            crate::volumes::read_label(&dev),
            Some((crate::volumes::FsKind::Fat, _))
        ) {
            continue;
        }
        if crate::fsutil::ensure_dir(&mnt, 0o700).is_err() {
            return;
        }
        let mnt_s = mnt.display().to_string();
        let mut mount = backend.mount_seed(crate::volumes::FsKind::Fat, &dev, &mnt_s);
        // Read-write: the seed is removed once imported.
        if let Some(i) = mount.iter().position(|a| a == "ro") {
            mount[i] = "rw".into();
        }
        let mounted = std::process::Command::new(&mount[0])
            .args(&mount[1..])
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            continue;
        }
        let imported = crate::curtin::import_from_esp(&mnt, &ctx.root);
        let _ = std::process::Command::new("umount").arg(&mnt).status();
        match imported {
            Ok(true) => {
                tracing::info!(device = %dev.display(), "MAAS seed imported from the EFI partition");
                return;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(device = %dev.display(), error = %e, "importing the MAAS seed")
            }
        }
    }
}

/// The disk names the OS lists (its sysctl, or /sys/block on Linux).
fn disk_names(backend: &dyn crate::platform::Backend) -> String {
    if backend.disks_sysctl().is_empty() {
        std::fs::read_dir("/sys/block")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    } else {
        std::process::Command::new("sysctl")
            .args(["-n", backend.disks_sysctl()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

/// Looks for a NoCloud (`cidata`) or ConfigDrive (`config-2`) volume and imports its seed into
/// /var/db/wisp/seed, where the datasources find it. Only on the running system (never under
/// --root), only when MAAS is not configured and no seed is in place already.
fn discover_seed(run: &Run<'_>) {
    let root = &run.ctx.root;
    if root.path("/") != std::path::Path::new("/")
        || run.ctx.dry_run
        || sources::maas_config(run.config).is_some()
    {
        return;
    }
    let list = run.config.datasource_list.clone().unwrap_or_else(|| {
        sources::DEFAULT_LIST
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let nocloud = run.config.datasource.nocloud.clone().unwrap_or_default();
    let mut wanted: Vec<(String, &str)> = Vec::new();
    if list.iter().any(|d| d == "NoCloud")
        && nocloud.seedfrom.is_none()
        && !root.path(sources::NOCLOUD_SEED_DIR).exists()
    {
        wanted.push((
            nocloud.fs_label.unwrap_or_else(|| "cidata".into()),
            sources::NOCLOUD_SEED_DIR,
        ));
    }
    if list.iter().any(|d| d == "ConfigDrive") && !root.path(sources::CONFIGDRIVE_SEED_DIR).exists()
    {
        wanted.push(("config-2".into(), sources::CONFIGDRIVE_SEED_DIR));
    }
    if wanted.is_empty() {
        return;
    }
    let backend = run.platform.backend(None);
    let names = disk_names(backend.as_ref());
    let devices = backend.disk_devices(&names);
    for (label, dest) in wanted {
        let Some((dev, kind, _)) = crate::volumes::find(&devices, &[label.as_str()]) else {
            continue;
        };
        let mnt = root.path("/var/db/wisp/mnt");
        if let Err(e) = crate::fsutil::ensure_dir(&mnt, 0o700) {
            tracing::warn!(error = %e, "cannot make a mount point for the seed volume");
            return;
        }
        let mnt_s = mnt.display().to_string();
        let mount = backend.mount_seed(kind, &dev, &mnt_s);
        let mounted = std::process::Command::new(&mount[0])
            .args(&mount[1..])
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            tracing::warn!(device = %dev.display(), "cannot mount the {label} volume");
            continue;
        }
        match crate::volumes::import_seed(&mnt, &root.path(dest)) {
            Ok(n) => {
                tracing::info!(device = %dev.display(), files = n, "seed imported from the {label} volume")
            }
            Err(e) => tracing::warn!(error = %e, "importing the {label} seed"),
        }
        let _ = std::process::Command::new("umount").arg(&mnt).status();
        return;
    }
}

fn local(run: &mut Run<'_>) -> (Outcome, bool) {
    run.record_stage("local", "running", Vec::new());
    run.reporter
        .start("init-local", "searching for local datasources");
    discover_seed(run);
    // Local seeds are read now; MAAS needs the network.
    let mut ds = match sources::select(run.config, &run.ctx.root, &run.client, run.skew.clone()) {
        Ok(ds) => ds,
        Err(e) => return run.fatal("init-local", format!("{e:#}")),
    };
    if ds.name() != "MAAS" {
        let fetched = ds
            .fetch_metadata()
            .and_then(|md| ds.fetch_user_data().map(|u| (md, u)));
        match fetched {
            Ok((md, ud)) => {
                if let Err(e) = state::save_fetched(&run.state, &md, Some(ud.as_deref())) {
                    return run.fatal("init-local", format!("{e:#}"));
                }
            }
            Err(e) => return run.fatal("init-local", format!("datasource {}: {e}", ds.name())),
        }
    }
    let Some(c) = cached(&run.state, &run.client) else {
        run.reporter.finish(
            "init-local",
            "no data yet: the datasource needs the network",
            Outcome::Success,
            None,
        );
        run.record_stage("local", "SUCCESS", Vec::new());
        return (Outcome::Success, false);
    };
    if !run.ctx.dry_run {
        if let Err(e) = run.instance.set_instance_id(&c.instance_id) {
            tracing::warn!(error = %e, "cannot record the instance id");
        }
    }
    let mut planned = run.plan(&c);
    engine::keep_due(
        &mut planned,
        &run.instance,
        &c.instance_id,
        Some(Stage::Local),
    );
    // Warnings of the plan are counted once, in the network stage.
    let (_, outcome) = run.run_modules(&planned, "init-local", false);
    run.reporter.finish(
        "init-local",
        &format!("local stage: {}", outcome.as_str()),
        outcome,
        None,
    );
    run.record_stage("local", outcome.as_str(), Vec::new());
    (outcome, false)
}

fn network(run: &mut Run<'_>) -> (Outcome, bool) {
    run.record_stage("network", "running", Vec::new());
    run.reporter
        .start("init-network", "searching for network datasources");
    let mut ds = match sources::select(run.config, &run.ctx.root, &run.client, run.skew.clone()) {
        Ok(ds) => ds,
        Err(e) => return run.fatal("init-network", format!("{e:#}")),
    };
    let md = match ds.fetch_metadata() {
        Ok(md) => md,
        Err(e) => return run.fatal("init-network", format!("datasource {}: {e}", ds.name())),
    };
    if run.reporter.endpoint().is_none() {
        run.reporter = reporter_for(
            run.config,
            &run.client,
            run.skew.clone(),
            &run.state,
            Some(&md.instance_id),
        );
    }
    if !run.ctx.dry_run {
        match run.instance.set_instance_id(&md.instance_id) {
            Ok(true) => tracing::info!(instance_id = %md.instance_id, "new instance"),
            Ok(false) => {}
            Err(e) => return run.fatal("init-network", format!("recording the instance id: {e}")),
        }
        if let Err(e) = state::save_fetched(&run.state, &md, None) {
            return run.fatal("init-network", format!("{e:#}"));
        }
    }
    let vendor = md
        .vendor_data
        .as_deref()
        .and_then(|raw| engine::decode_vendor(raw, "vendor-data").ok());
    // First the hostname, the default user and the metadata keys: MAAS says Deployed as soon
    // as it serves user-data, and then someone may log in.
    let early = Cached {
        instance_id: md.instance_id.clone(),
        local_hostname: md.local_hostname.clone(),
        public_keys: md.public_keys.clone(),
        user: None,
        vendor,
    };
    let mut first = run.plan(&early);
    first.actions.retain(|a| {
        matches!(
            a.module(),
            modules::hostname::NAME | modules::users_groups::NAME | modules::ssh::NAME
        )
    });
    engine::keep_due(
        &mut first,
        &run.instance,
        &md.instance_id,
        Some(Stage::Network),
    );
    let (_, early_outcome) = run.run_modules(&first, "init-network", false);
    // The user-data GET: the machine is Deployed now (on MAAS).
    let user_data = if run.ctx.dry_run {
        tracing::info!(
            "dry run: user-data not fetched (on MAAS that GET completes the deployment)"
        );
        state::read_cached_user_data(&run.state)
    } else {
        match ds.fetch_user_data() {
            Ok(u) => {
                let written = match &u {
                    Some(u) => run.state.write(state::USER_DATA, u),
                    None => run.state.remove(state::USER_DATA),
                };
                if let Err(e) = written {
                    return run.fatal("init-network", format!("saving user-data: {e}"));
                }
                u
            }
            Err(e) => {
                return run.fatal(
                    "init-network",
                    format!("datasource {}: user-data: {e}", ds.name()),
                )
            }
        }
    };
    drop(user_data);
    let Some(c) = cached(&run.state, &run.client) else {
        return run.fatal(
            "init-network",
            "the fetched data could not be read back".into(),
        );
    };
    // As cloud-init does: init-network ends with the user-data in hand, and modules-config
    // follows as its own top-level event (MAAS shows them side by side, not nested).
    run.reporter.finish(
        "init-network",
        &format!("network stage: {}", early_outcome.as_str()),
        early_outcome,
        None,
    );
    run.reporter
        .start("modules-config", "running modules for config");
    let mut planned = run.plan(&c);
    let due = engine::stage_due(&run.instance, &c.instance_id, Stage::Network);
    engine::keep_due(
        &mut planned,
        &run.instance,
        &c.instance_id,
        Some(Stage::Network),
    );
    let (_, outcome) = run.run_modules(&planned, "modules-config", due);
    run.mark_stage(Stage::Network, &c.instance_id);
    run.reporter.finish(
        "modules-config",
        &format!("config modules: {}", outcome.as_str()),
        outcome,
        None,
    );
    let outcome = outcome.worst(early_outcome);
    run.fetched = Some(c);
    run.record_stage("network", outcome.as_str(), Vec::new());
    (outcome, false)
}

fn final_stage(run: &mut Run<'_>) -> (Outcome, bool) {
    run.record_stage("final", "running", Vec::new());
    run.reporter
        .start("modules-final", "running modules for final");
    let Some(c) = run
        .fetched
        .take()
        .or_else(|| cached(&run.state, &run.client))
    else {
        return run.fatal(
            "modules-final",
            "no data: the network stage has not run".into(),
        );
    };
    let mut planned = run.plan(&c);
    engine::keep_due(
        &mut planned,
        &run.instance,
        &c.instance_id,
        Some(Stage::Final),
    );
    let (_, mut outcome) = run.run_modules(&planned, "modules-final", false);
    run.mark_stage(Stage::Final, &c.instance_id);
    // The whole boot's result: the worst of the stages.
    for s in ["local", "network"] {
        match run.status["stages"][s]["result"].as_str() {
            Some("FAIL") => outcome = outcome.worst(Outcome::Fail),
            Some("WARN") => outcome = outcome.worst(Outcome::Warn),
            _ => {}
        }
    }
    run.record_stage("final", outcome.as_str(), Vec::new());
    let log = (outcome != Outcome::Success)
        .then(|| crate::log::tail(&run.ctx.root, LOG_TAIL))
        .flatten();
    run.reporter.finish(
        "modules-final",
        &format!("wisp finished: {}", outcome.as_str()),
        outcome,
        log.as_deref().map(|l| (crate::log::LOG_FILE, l)),
    );
    let left = run.reporter.flush();
    if left > 0 {
        tracing::warn!(
            queued = left,
            "events not delivered yet; they go first next time"
        );
    }
    (outcome, false)
}
