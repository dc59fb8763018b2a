//! The boot flow (`wisp init`): a driver that runs the stages in order, one file per stage.
//!
//! - [`local`] (before networking): seeds on the machine's disks ([`seed`]), local datasources;
//!   with data from this or an earlier boot, bootcmd and boothooks.
//! - [`network`] (after networking, before sshd and logins): metadata; the hostname, the default
//!   user and the metadata keys; *then* the user-data GET — MAAS marks the machine Deployed on
//!   it, so the keys are in place by then — and the network-stage modules.
//! - [`final_stage`] (after logins): deferred files, runcmd, user scripts, the final report.
//!
//! Safe by construction: the event sink ([`events`]) is chosen here once — MAAS, none, or a
//! printer under `--dry-run` — and no other code posts to MAAS. A real run first checks that it
//! can keep its state (it needs root), before any request. A dry run writes nothing, runs
//! nothing and changes nothing in MAAS: no event, no user-data GET.

pub mod events;
pub(crate) mod final_stage;
mod local;
mod network;
pub mod record;
mod seed;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use wisp_datasources::http::{HttpClient, HttpOptions};
use wisp_datasources::maas::Maas;
use wisp_datasources::oauth::SkewStore;
use wisp_datasources::userdata::Decoded;

use crate::commands::Context;
use crate::config::{self, Config};
use crate::engine::{self, Documents};
use crate::instance::InstanceState;
use crate::modules::{self, Planned, Stage};
use crate::platform::Platform;
use crate::report::Outcome;
use crate::sources;
use crate::state::{FileSkewStore, StateDir};
use events::EventSink;
use record::Record;

/// Turns wisp off in an image without uninstalling it.
pub const DISABLED: &str = "/etc/wisp/disabled";
/// How much of the log a final FAIL or WARN carries to MAAS.
const LOG_TAIL: usize = 256 * 1024;
/// How long a stage waits at its end for MAAS to take its events (the rest stays queued).
const FLUSH_LIMIT: Duration = Duration::from_secs(30);
/// How much longer a poweroff or halt waits for the final events MAAS has not taken.
const POWER_HOLD: Duration = Duration::from_secs(60);
/// How long power_state's own outcome is given to reach MAAS once the change is scheduled.
const POWER_REPORT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StageName {
    Local,
    Network,
    Final,
}

impl StageName {
    fn key(self) -> &'static str {
        match self {
            StageName::Local => "local",
            StageName::Network => "network",
            StageName::Final => "final",
        }
    }
}

/// What a stage ended with; `fatal` stops the stages after it.
pub struct StageEnd {
    outcome: Outcome,
    fatal: bool,
}

impl StageEnd {
    fn ok(outcome: Outcome) -> StageEnd {
        StageEnd {
            outcome,
            fatal: false,
        }
    }
}

/// What the machine was given, as the stages use it: fetched (or read from the cache) once per
/// run, and read as cloud-config once.
pub struct BootData {
    pub instance_id: String,
    pub local_hostname: Option<String>,
    pub public_keys: Vec<String>,
    pub user: Option<Decoded>,
    pub vendor: Option<Decoded>,
    read: Option<engine::Read>,
}

impl BootData {
    /// The machine's data with its documents decoded: user-data as cloud-init does (its
    /// `#include`s fetched with the boot's client, templates given `instance_data`, the
    /// configured size cap), vendor-data in any of its forms.
    fn decode(
        boot: &Boot<'_>,
        md: &wisp_datasources::Metadata,
        instance_data: &serde_json::Value,
        user_data: Option<&[u8]>,
    ) -> BootData {
        let user = user_data.map(|raw| {
            let opts = wisp_datasources::userdata::DecodeOptions {
                fetcher: Some(&boot.client),
                instance_data: Some(instance_data),
                max_bytes: boot
                    .config
                    .max_user_data_bytes
                    .unwrap_or(wisp_datasources::http::DEFAULT_MAX_BYTES),
                include_timeout: crate::sources::include_timeout(boot.config),
                // The parts for this instance of a group (the meta-data's launch-index).
                launch_index: md.launch_index(),
                ..Default::default()
            };
            wisp_datasources::userdata::decode(raw, "user-data", &opts)
        });
        BootData {
            instance_id: md.instance_id.clone(),
            local_hostname: md.local_hostname.clone(),
            public_keys: md.public_keys.clone(),
            user,
            vendor: md
                .vendor_data
                .as_deref()
                // Not filtered by launch index, as in cloud-init.
                .and_then(|raw| engine::decode_vendor(raw, "vendor-data").ok()),
            read: None,
        }
    }

    fn docs(&self) -> Documents<'_> {
        Documents {
            user: self.user.as_ref(),
            vendor: self.vendor.as_ref(),
            metadata_keys: &self.public_keys,
            local_hostname: self.local_hostname.as_deref(),
            instance_id: &self.instance_id,
            source: "user-data",
        }
    }
}

/// One run of `wisp init`: what every stage shares.
pub struct Boot<'a> {
    ctx: &'a Context,
    platform: Platform,
    config: &'a Config,
    state: StateDir,
    instance: InstanceState,
    client: HttpClient,
    skew: Arc<dyn SkewStore>,
    events: EventSink,
    record: Record,
    data: Option<BootData>,
    /// Problems of the documents, counted once per boot (in the network stage).
    warnings: Vec<String>,
    /// Modules whose last run in this boot failed (or the work they include did): not marked
    /// done.
    failed: std::collections::BTreeSet<String>,
    /// The boots each module marked in this run has started in for the instance, this one
    /// included ([`InstanceState::start_run`]).
    runs: std::collections::BTreeMap<String, u32>,
    interfaces: Option<&'a std::path::Path>,
    /// power_state's shutdown, held back until MAAS has the final stage's events.
    after_report: Vec<crate::plan::Action>,
    /// Whether this boot's instance is new ([`Boot::record_instance`]).
    new_instance: bool,
}

/// What `wisp init` was asked.
pub struct Options<'a> {
    /// Run only this stage.
    pub only: Option<StageName>,
    /// A mounted EFI partition with the MAAS seed.
    pub esp: Option<&'a std::path::Path>,
    /// Stand-ins for the machine's interfaces (MAC → name), for rendering the network.
    pub interfaces: Option<&'a std::path::Path>,
}

pub fn run(ctx: &Context, opts: &Options<'_>) -> anyhow::Result<u8> {
    let only = opts.only;
    let Some(platform) = ctx.platform else {
        bail!("this OS is not supported; name the target with --platform");
    };
    if ctx.root.path(DISABLED).exists() {
        tracing::info!("{DISABLED} exists: wisp is disabled");
        return Ok(0);
    }
    let state = StateDir::new(&ctx.root, ctx.dry_run);
    // Before anything is fetched: MAAS marks the machine Deployed on the user-data GET, and a
    // run that cannot then save what it fetched must not get that far.
    state.check_writable().with_context(|| {
        format!(
            "cannot keep wisp's state in {} (a real run needs root; --dry-run shows the plan)",
            state.dir().display()
        )
    })?;
    // One run at a time: a second `wisp init` while a stage runs (rc and a person, say) would
    // edit the accounts at the same time as the first.
    let mut record = Record::load(state.clone());
    if !ctx.dry_run {
        match record.lock_run() {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tracing::error!(
                    "another wisp init is running (it holds {}/{}): this one does nothing",
                    state.dir().display(),
                    record::STAGE_LOCK
                );
                return Ok(record::LOCK_HELD_EXIT);
            }
            Err(e) => tracing::warn!(
                error = %e,
                "cannot lock {}: `wisp status` cannot tell if a stage crashes",
                record::STAGE_LOCK
            ),
        }
    }
    // First the seed the curtin hook left: it brings the datasource and its credentials.
    if matches!(only, None | Some(StageName::Local)) && !ctx.dry_run {
        seed::import_maas_seed(&ctx.root, platform, opts.esp);
    }
    let loaded = config::load(&ctx.root, ctx.config_path.as_deref())?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let events = if ctx.dry_run {
        EventSink::Print
    } else if sources::maas_config(&loaded.config).is_some() {
        EventSink::Maas(events::Sender::new(state.clone()))
    } else {
        EventSink::None
    };
    let mut boot = Boot {
        ctx,
        platform,
        config: &loaded.config,
        instance: InstanceState::new(state.clone()),
        record,
        skew: Arc::new(FileSkewStore::load(state.clone())),
        state,
        client: HttpClient::new(&HttpOptions::default())?,
        events,
        data: None,
        warnings: Vec::new(),
        failed: Default::default(),
        runs: Default::default(),
        interfaces: opts.interfaces,
        after_report: Vec::new(),
        new_instance: false,
    };
    let stages = match only {
        None => vec![StageName::Local, StageName::Network, StageName::Final],
        Some(s) => vec![s],
    };
    let mut worst = Outcome::Success;
    let mut summary: Vec<String> = Vec::new();
    for s in stages {
        boot.events.stage_begins();
        let end = match s {
            StageName::Local => local::run(&mut boot),
            StageName::Network => network::run(&mut boot),
            StageName::Final => final_stage::run(&mut boot),
        };
        worst = worst.worst(end.outcome);
        summary.push(format!("{} {}", s.key(), end.outcome.as_str()));
        if end.fatal {
            break;
        }
    }
    // Before wisp exits, MAAS has every event (or they are queued for next time).
    let mut left = boot.events.flush(FLUSH_LIMIT);
    // A poweroff or halt that goes while MAAS lacks the final events loses them until someone
    // powers the machine on (a reboot comes back and delivers them): held back a while more.
    let halts = boot
        .after_report
        .iter()
        .any(|a| matches!(a, crate::plan::Action::PowerState { item, .. } if item != "reboot"));
    if halts && left > 0 {
        tracing::info!(
            queued = left,
            "power_state: waiting for MAAS to take the final events before the power goes off"
        );
        left = boot.events.flush(POWER_HOLD);
    }
    if left > 0 {
        tracing::warn!(
            queued = left,
            "events not delivered yet; they go first next time"
        );
        if halts {
            tracing::warn!(
                queued = left,
                "power_state: the power goes off with events still queued"
            );
        }
    }
    if !ctx.dry_run {
        let id = boot.data.as_ref().map(|d| d.instance_id.clone());
        boot.record
            .save_results(&boot.instance, id.as_deref(), worst, &boot.warnings);
    }
    // The short summary for the console; the details are in the log and `wisp status --long`.
    outln!(
        "wisp: {} (details: {}, wisp status --long)",
        summary.join(", "),
        crate::log::LOG_FILE
    );
    // Last of all, once MAAS has the final report (or it is queued) and the results are saved:
    // power_state's shutdown, which schedules the change and returns. Its outcome goes to the
    // log, the results and MAAS (a scheduled change leaves time to deliver it).
    if let Some(module) = boot.after_report.first().map(crate::plan::Action::module) {
        let outcomes = crate::apply::execute(&boot.after_report, &ctx.root);
        let failures: Vec<String> = outcomes
            .iter()
            .filter_map(|o| o.error.as_ref().map(|e| format!("{}: {e}", o.item)))
            .collect();
        for f in &failures {
            tracing::error!("{module}: {f}");
            outln!("wisp: {module}: {f}");
        }
        let (result, description) = match failures.first() {
            None => (
                Outcome::Success,
                format!("config-{module} ran successfully"),
            ),
            Some(f) => (Outcome::Fail, f.clone()),
        };
        if module == modules::power_state::NAME {
            let child = format!("{}/config-{module}", final_stage::EVENT);
            boot.events.finish(&child, &description, result, None);
        } else {
            // The packages' reboot: reported when it was scheduled or failed, not when its
            // condition (the reboot-required marker) said it is not needed.
            let scheduled = outcomes
                .iter()
                .any(|o| o.done.as_deref().is_some_and(|d| d.starts_with("ran ")));
            if scheduled || result == Outcome::Fail {
                let child = final_stage::reboot_event(module);
                boot.events
                    .start(&child, "rebooting: a package asks for it");
                let description = if scheduled && result != Outcome::Fail {
                    "reboot scheduled (a package asks for it)".to_string()
                } else {
                    description
                };
                boot.events.finish(&child, &description, result, None);
            } else {
                tracing::info!("{module}: no reboot needed");
            }
        }
        // power_state's result is its change's; the packages' reboot only adds a failure to
        // what the packages module already recorded.
        if module == modules::power_state::NAME || result == Outcome::Fail {
            boot.record.module(module, result, &failures);
        }
        worst = worst.worst(result);
        if !ctx.dry_run {
            let id = boot.data.as_ref().map(|d| d.instance_id.clone());
            boot.record
                .save_results(&boot.instance, id.as_deref(), worst, &boot.warnings);
        }
        boot.events.flush(POWER_REPORT);
    }
    Ok(worst.exit_code())
}

/// Whether module `m`, run in `stage`'s marking run, counts its runs ([`crate::instance::MAX_RUNS`]):
/// a per-instance or once module of that stage that is marked done once it succeeded (not one
/// of the user's commands, marked before they run).
fn counts_runs(m: &str, stage: Stage) -> bool {
    let info = modules::info(m);
    info.stage == stage
        && info.frequency != modules::Frequency::PerBoot
        && !modules::runs_user_commands(m)
}

/// The module a warning names (`network: …`), if it is one.
fn module_of_warning(w: &str) -> Option<String> {
    let (m, _) = w.split_once(": ")?;
    (m == crate::network::NAME || modules::MODULES.iter().any(|i| i.info().name == m))
        .then(|| m.to_string())
}

impl Boot<'_> {
    /// Points the MAAS sink at its endpoint, from the network stage on (before it the network
    /// is not up, and the local stage's events wait in the queue): `reporting.maas.endpoint`, else the metadata URL's
    /// `status/<system-id>` once the system id is known. `reporting.maas` signs with its own
    /// credentials when it has them.
    fn aim_events(&self, system_id: Option<&str>) {
        let cached;
        let system_id = match system_id {
            Some(id) => Some(id),
            None => {
                cached = crate::state::cached_instance_id(&self.state);
                cached.as_deref()
            }
        };
        if !matches!(self.events, EventSink::Maas(_)) || self.events.endpoint().is_some() {
            return;
        }
        let Some(mut cfg) = sources::maas_config(self.config) else {
            return;
        };
        let rep = self.config.reporting.get("maas");
        if let Some(rep) = rep {
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
        let endpoint = rep.and_then(|r| r.endpoint.clone()).or_else(|| {
            let base = cfg.metadata_url.trim_end_matches('/').to_string();
            system_id.map(|id| format!("{base}/status/{id}"))
        });
        let Some(endpoint) = endpoint else {
            return;
        };
        match Maas::new(cfg, self.client.clone(), self.skew.clone()) {
            Ok(maas) => self.events.set_target(maas, endpoint),
            Err(e) => tracing::warn!(error = %e, "status events cannot be sent"),
        }
    }

    /// Records the instance id (both stages do; only the first of a boot can find it new) and
    /// returns whether it changed. On an instance that is not new, the modules that act only
    /// on a new one are settled without running ([`engine::settle_known_instance`]).
    pub(super) fn record_instance(&mut self, id: &str) -> std::io::Result<bool> {
        if self.ctx.dry_run {
            return Ok(false);
        }
        let changed = self.instance.set_instance_id(id)?;
        self.new_instance |= engine::is_new_instance(&self.instance, id, changed);
        if !self.new_instance {
            engine::settle_known_instance(&self.instance, id)?;
        }
        Ok(changed)
    }

    fn backend(&self) -> Box<dyn crate::platform::Backend> {
        let root =
            (!self.ctx.root.is_host()).then(|| self.ctx.root.path("/").display().to_string());
        self.platform.backend(root)
    }

    /// Plans the modules of `stage` that are due for the instance (`filter` narrows them).
    fn plan_stage(&mut self, stage: Stage, with_warnings: bool, filter: &[&str]) -> modules::Plan {
        let empty = || modules::Plan {
            users: Vec::new(),
            groups: Default::default(),
            planned: Planned::default(),
        };
        let Some(data) = self.data.as_mut() else {
            return empty();
        };
        if data.read.is_none() {
            data.read = Some(engine::Read::new(self.platform, self.config, &data.docs()));
        }
        let instance = &self.instance;
        let retried = engine::retried(instance, &data.instance_id);
        if let Some(read) = data.read.as_mut() {
            read.retried = retried;
        }
        let Some(read) = data.read.as_ref() else {
            return empty();
        };
        let id = &data.instance_id;
        let mut plan = read.plan(
            &self.ctx.root,
            self.platform,
            &data.docs(),
            with_warnings,
            self.ctx.disks.as_deref(),
            |m| {
                m.stage == stage
                    && (filter.is_empty() || filter.contains(&m.name))
                    && instance.should_run(m.name, m.frequency, id)
            },
        );
        let id = id.clone();
        self.keep_passwords_on_retry(&mut plan.planned, &id);
        plan
    }

    /// On a retry of users_groups or set_passwords for the instance (an earlier boot started
    /// it and it did not succeed), the password of a user that has one already is left as it
    /// is: set by that earlier run, the user may have changed it since. A user without one yet
    /// (created now, or by a run cut short before its password was set) gets its initial
    /// password. Locks are planned only where the account is not locked, and kept: a run cut
    /// short between a password and its lock must not leave the account open.
    fn keep_passwords_on_retry(&self, planned: &mut Planned, instance_id: &str) {
        let sp = modules::set_passwords::NAME;
        let retry = [modules::users_groups::NAME, sp]
            .iter()
            .any(|m| self.instance.runs(m, instance_id) > 0);
        if !retry || !planned.actions.iter().any(|a| a.module() == sp) {
            return;
        }
        let accounts = crate::accounts::Accounts::load(&self.ctx.root);
        let has_password = |user: &str| {
            accounts.hash(user).is_some_and(|h| {
                let h = h
                    .strip_prefix("*LOCKED*")
                    .or_else(|| h.strip_prefix('!'))
                    .or_else(|| h.strip_prefix('*'))
                    .unwrap_or(h);
                crate::cloudconfig::is_password_hash(h)
            })
        };
        let mut left: Vec<String> = Vec::new();
        planned.retain_actions(|a| {
            let user = match a {
                crate::plan::Action::MasterPasswd { module, user, .. }
                | crate::plan::Action::Exec {
                    module, item: user, ..
                } if *module == sp => user,
                _ => return true,
            };
            if !has_password(user) {
                return true;
            }
            if !left.contains(user) {
                left.push(user.clone());
            }
            false
        });
        planned
            .random_passwords
            .retain(|(user, _)| !left.contains(user));
        if !left.is_empty() {
            tracing::info!(
                users = %left.join(" "),
                "a retry: the passwords of users that have one already are left as they are"
            );
        }
    }

    /// The names of the users the documents ask for (users_groups's list, due or not).
    fn wanted_users(&mut self) -> Vec<String> {
        let Some(data) = self.data.as_mut() else {
            return Vec::new();
        };
        if data.read.is_none() {
            data.read = Some(engine::Read::new(self.platform, self.config, &data.docs()));
        }
        let Some(read) = data.read.as_ref() else {
            return Vec::new();
        };
        read.plan(
            &self.ctx.root,
            self.platform,
            &data.docs(),
            false,
            self.ctx.disks.as_deref(),
            |m| m.name == modules::users_groups::NAME,
        )
        .users
        .into_iter()
        .map(|u| u.name)
        .collect()
    }

    /// Carries out `planned` (or prints it under --dry-run), reports a start and finish per
    /// module under `parent`, and records the modules' results. Nothing is marked done: the
    /// early modules of the network stage run again once the user-data is known.
    fn run_modules(&mut self, planned: &Planned, parent: &str) -> Outcome {
        self.run_modules_marking(planned, parent, None)
    }

    /// As [`Boot::run_modules`], and each module of `stage` is marked done for the instance as
    /// soon as it has run without failing — a module that failed runs again at the next boot.
    /// Modules that run the user's commands (runcmd, user scripts) are marked *before* they
    /// run instead: cloud-init runs them at most once per instance, and a crash in the middle
    /// must not run them again.
    fn run_modules_marking(
        &mut self,
        planned: &Planned,
        parent: &str,
        marking: Option<Stage>,
    ) -> Outcome {
        if self.ctx.dry_run {
            planned.print();
            return engine::result(planned, &[]);
        }
        // The plan's order is kept: its actions run in runs of one module (users_groups plans
        // the new users' passwords as set_passwords actions between its own). A module's start
        // goes to MAAS before its first run, its finish as soon as its last run is over.
        let mut runs: Vec<(&'static str, std::ops::Range<usize>)> = Vec::new();
        for (i, a) in planned.actions.iter().enumerate() {
            match runs.last_mut() {
                Some((m, r)) if *m == a.module() => r.end = i + 1,
                _ => runs.push((a.module(), i..i + 1)),
            }
        }
        let mut outcomes: Vec<crate::apply::Outcome> = Vec::new();
        let mut done: Vec<String> = Vec::new();
        let mut running: Vec<&'static str> = Vec::new();
        let mut worst = Outcome::Success;
        for (n, (m, range)) in runs.iter().enumerate() {
            if !running.contains(m) && !done.iter().any(|d| d == m) {
                self.events.start(
                    &format!("{parent}/config-{m}"),
                    &format!("running config-{m}"),
                );
                if marking.is_some() && modules::runs_user_commands(m) {
                    self.mark_module(m);
                } else if marking.is_some_and(|s| counts_runs(m, s)) {
                    self.start_run(m);
                }
                running.push(m);
            }
            outcomes.extend(crate::apply::execute(
                &planned.actions[range.clone()],
                &self.ctx.root,
            ));
            // The modules whose work is over: no later run is theirs (or one they include). The
            // included ones first, so that the module that includes them knows how they went.
            let later = &runs[n + 1..];
            let (mut over, still): (Vec<&'static str>, Vec<&'static str>) =
                running.iter().partition(|k| {
                    later
                        .iter()
                        .all(|(x, _)| x != *k && !modules::includes(k).contains(x))
                });
            over.sort_by_key(|k| !modules::includes(k).is_empty());
            running = still;
            for k in over {
                let result = self.finish_module(planned, &outcomes, parent, k, marking);
                worst = worst.worst(result);
                done.push(k.to_string());
            }
        }
        for (user, secret) in &planned.random_passwords {
            if outcomes.iter().any(|o| {
                o.module == modules::set_passwords::NAME && &o.item == user && o.error.is_none()
            }) {
                // The console, not the log.
                outln!("wisp: set_passwords: {user}: random password: {}", secret.0);
            }
        }
        // Modules with problems and nothing to run.
        let mut names: Vec<String> = Vec::new();
        for m in planned
            .errors
            .iter()
            .filter(|e| !engine::of_documents(e))
            .map(|e| e.module.to_string())
            .chain(planned.warnings.iter().filter_map(|w| module_of_warning(w)))
        {
            if !names.contains(&m) && !done.contains(&m) {
                names.push(m);
            }
        }
        for m in names {
            self.events.start(
                &format!("{parent}/config-{m}"),
                &format!("running config-{m}"),
            );
            let result = self.finish_module(planned, &outcomes, parent, &m, marking);
            worst = worst.worst(result);
        }
        worst = worst.worst(self.finish_left_open(parent));
        // The documents' own errors (a part not read, a key no module reads) belong to no
        // module's event. They are errors all the same, as `wisp schema` and `wisp apply` say:
        // recorded under their class in the results' errors, and the run goes on (cloud-init
        // carries on without a document it cannot read) as a WARN, as for a module's refused
        // items.
        let mut by_class: Vec<(&'static str, Vec<String>)> = Vec::new();
        for e in planned.errors.iter().filter(|e| engine::of_documents(e)) {
            let line = format!("{}: {}", e.item, e.reason);
            tracing::warn!("error: {line}");
            match by_class.iter_mut().find(|(m, _)| *m == e.module) {
                Some((_, lines)) => lines.push(line),
                None => by_class.push((e.module, vec![line])),
            }
        }
        for (class, lines) in by_class {
            self.record.module(class, Outcome::Warn, &lines);
            worst = worst.worst(Outcome::Warn);
        }
        if !planned.warnings.is_empty() {
            for w in &planned.warnings {
                tracing::warn!("{w}");
            }
            self.warnings.extend(planned.warnings.iter().cloned());
            worst = worst.worst(Outcome::Warn);
        }
        worst
    }

    /// Reports module `m`'s finish (its failed actions, refused items and warnings), records
    /// it, and marks it done when `marking` says so and it did not fail.
    fn finish_module(
        &mut self,
        planned: &Planned,
        outcomes: &[crate::apply::Outcome],
        parent: &str,
        m: &str,
        marking: Option<Stage>,
    ) -> Outcome {
        let mut failures: Vec<String> = outcomes
            .iter()
            .filter(|o| o.module == m)
            .filter_map(|o| o.error.as_ref().map(|e| format!("{}: {e}", o.item)))
            .collect();
        let mut refused: Vec<String> = planned
            .errors
            .iter()
            .filter(|e| e.module == m)
            .map(|e| format!("{}: {}", e.item, e.reason))
            .collect();
        if modules::failures_are_warnings(m) {
            // Reported (a WARN), and the module is done all the same.
            refused.splice(0..0, failures.drain(..));
        }
        refused.extend(
            planned
                .warnings
                .iter()
                .filter(|w| module_of_warning(w).as_deref() == Some(m))
                .filter_map(|w| w.split_once(": ").map(|(_, rest)| rest.to_string())),
        );
        let result = if !failures.is_empty() {
            Outcome::Fail
        } else if !refused.is_empty() {
            Outcome::Warn
        } else {
            Outcome::Success
        };
        // A module whose included work failed is not done either (it plans that work again):
        // users_groups with its users' passwords, not with set_passwords' own (`chpasswd:`).
        let included = modules::includes(m);
        let included_failed = outcomes
            .iter()
            .any(|o| included.contains(&o.module) && o.error.is_some())
            && {
                let users = self.wanted_users();
                outcomes.iter().any(|o| {
                    included.contains(&o.module) && o.error.is_some() && users.contains(&o.item)
                })
            };
        if result == Outcome::Fail || included_failed {
            self.failed.insert(m.to_string());
            let runs = self.runs.get(m).copied().unwrap_or(0);
            let counted = marking.is_some_and(|s| counts_runs(m, s));
            if counted && runs >= crate::instance::MAX_RUNS {
                let why =
                    format!("failed in {runs} boots: given up, not run again for this instance");
                tracing::warn!(module = m, "{why}");
                if let Some(data) = &self.data {
                    let first = failures.first().cloned().unwrap_or_default();
                    if let Err(e) =
                        self.instance
                            .give_up(m, &data.instance_id, &format!("{why}: {first}"))
                    {
                        tracing::warn!(module = m, error = %e, "cannot mark the module done");
                    }
                }
                refused.push(why);
            }
        } else {
            self.failed.remove(m);
            // Done before its finish is queued: a crash in between leaves the finish to the
            // next run (the module is open and not due), never the module to run twice.
            let due_here = marking.is_some_and(|s| modules::info(m).stage == s);
            if due_here && !modules::runs_user_commands(m) {
                self.mark_module(m);
            }
        }
        let problems: Vec<String> = failures.iter().chain(refused.iter()).cloned().collect();
        let description = problems
            .first()
            .cloned()
            .unwrap_or_else(|| format!("config-{m} ran successfully"));
        self.events
            .finish(&format!("{parent}/config-{m}"), &description, result, None);
        self.record.module(m, result, &problems);
        result
    }

    /// Finishes the module events under `parent` that an interrupted run started and this one
    /// did not run again: an idempotent module is not due any more because it was done (or it
    /// had nothing left to do); one that runs the user's commands was cut short and is not run
    /// again. Returns the worst of their results.
    fn finish_left_open(&mut self, parent: &str) -> Outcome {
        let mut worst = Outcome::Success;
        for name in self.events.left_open(parent) {
            let m = name
                .strip_prefix(parent)
                .and_then(|r| r.strip_prefix("/config-"))
                .unwrap_or(&name)
                .to_string();
            let (result, description) = if modules::runs_user_commands(&m) {
                (
                    Outcome::Warn,
                    format!(
                        "config-{m} was interrupted (wisp stopped while it ran); not run again: \
                         it runs at most once per instance"
                    ),
                )
            } else {
                (
                    Outcome::Success,
                    format!("config-{m} ran successfully (finished after an interruption)"),
                )
            };
            tracing::info!("{name}: {description}");
            self.events.finish(&name, &description, result, None);
            let problems: Vec<String> = (result != Outcome::Success)
                .then(|| description.clone())
                .into_iter()
                .collect();
            self.record.module(&m, result, &problems);
            worst = worst.worst(result);
        }
        worst
    }

    /// Records that module `m` starts for the instance (a crash in it counts as a run).
    fn start_run(&mut self, m: &str) {
        if self.ctx.dry_run {
            return;
        }
        let Some(data) = &self.data else {
            return;
        };
        match self.instance.start_run(m, &data.instance_id) {
            Ok(n) => {
                self.runs.insert(m.to_string(), n);
            }
            Err(e) => tracing::warn!(module = m, error = %e, "cannot record the module's run"),
        }
    }

    /// Marks module `m` done for the instance.
    fn mark_module(&self, m: &str) {
        let Some(data) = &self.data else {
            return;
        };
        if let Err(e) = self.instance.mark_done(m, &data.instance_id) {
            tracing::warn!(module = m, error = %e, "cannot mark the module done");
        }
    }

    /// Marks the stage's modules done for the instance — all but those that failed in this run:
    /// they run again at the next boot (a module that runs the user's commands was marked
    /// before it ran, and stays so).
    fn mark_stage(&self, stage: Stage) {
        if self.ctx.dry_run {
            return;
        }
        for m in modules::infos().iter().filter(|m| m.stage == stage) {
            if !self.failed.contains(m.name) {
                self.mark_module(m.name);
            }
        }
    }

    /// A fatal error: a top-level FAIL with the reason and the log, so MAAS fails the
    /// deployment now.
    fn fatal(&mut self, stage: StageName, event: &str, reason: String) -> StageEnd {
        tracing::error!("{reason}");
        let log = crate::log::tail(&self.ctx.root, LOG_TAIL);
        self.events.finish(
            event,
            &reason,
            Outcome::Fail,
            log.as_deref().map(|l| (crate::log::LOG_FILE, l)),
        );
        self.record.stage(stage.key(), "FAIL", vec![reason]);
        StageEnd {
            outcome: Outcome::Fail,
            fatal: true,
        }
    }
}
