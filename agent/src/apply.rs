//! Carrying out a plan under `--root`. Every action is tried; a failure is recorded with its
//! module and item, and the others still run. Tools run with argv, never through a shell;
//! secrets go on their standard input.

use serde::Serialize;

use crate::accounts::Accounts;
use crate::plan::{Action, EnvVar, PasswdField};
use crate::root::Root;

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub module: &'static str,
    pub item: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the action did, when it succeeded (the log's line).
    #[serde(skip)]
    pub done: Option<String>,
}

/// The accounts as the files say, read again only when an action needs user or group ids and a
/// command has run since the last reading (a command may have added users or groups). Reading
/// after every command made creating N users cost N readings of files N lines long.
struct LazyAccounts<'r> {
    root: &'r Root,
    accounts: Accounts,
    stale: bool,
    /// How many times the files were read, for the tests.
    loads: usize,
}

impl<'r> LazyAccounts<'r> {
    fn new(root: &'r Root) -> Self {
        LazyAccounts {
            root,
            accounts: Accounts::default(),
            stale: true,
            loads: 0,
        }
    }

    fn get(&mut self) -> &Accounts {
        if self.stale {
            self.accounts = Accounts::load(self.root);
            self.stale = false;
            self.loads += 1;
        }
        &self.accounts
    }

    /// A command ran: users or groups may have changed.
    fn invalidate(&mut self) {
        self.stale = true;
    }
}

/// `owner:group` as the log shows it: names, the login group's too when the plan left it empty.
fn owner_group(accounts: &Accounts, owner: &str, group: &str) -> String {
    if !group.is_empty() {
        return format!("{owner}:{group}");
    }
    let gid = accounts.user(owner).map(|u| u.gid);
    match gid.and_then(|g| accounts.groups.iter().find(|x| x.gid == g)) {
        Some(g) => format!("{owner}:{}", g.name),
        None => format!("{owner}:{}", gid.map(|g| g.to_string()).unwrap_or_default()),
    }
}

/// Carries out `actions` in order. Each one taken is logged at INFO — the command (its argv,
/// with any secret on its standard input redacted), the file with its path, mode and owner (never
/// its content), the directory, the link, the password-file field (never the password) — so that
/// the log says what a boot did; a failure is logged as a warning instead.
pub fn execute(actions: &[Action], root: &Root) -> Vec<Outcome> {
    execute_with(actions, &mut LazyAccounts::new(root))
}

fn execute_with(actions: &[Action], accounts: &mut LazyAccounts<'_>) -> Vec<Outcome> {
    let root = accounts.root;
    let mut out = Vec::new();
    let mut ptmp_checked = false;
    // The package module's runs (update, upgrade, installs) share one budget: their per-run
    // limit (`package_timeout`) also bounds them all together, so that the module ends within
    // it — below OpenBSD's rc limit (daemon_timeout 3600 s) with the default 1800 s.
    let mut package_deadline: Option<std::time::Instant> = None;
    for a in actions {
        // Before the first account change: the BSDs' useradd and friends lock the password
        // file through /etc/ptmp as well, and a stale one would fail them too.
        let account_change = matches!(a, Action::MasterPasswd { .. })
            || matches!(a, Action::Exec { module, .. }
                if [crate::modules::users_groups::NAME, crate::modules::set_passwords::NAME]
                    .contains(module));
        if account_change && !ptmp_checked {
            remove_stale_ptmp(root);
            ptmp_checked = true;
        }
        let result = match a {
            Action::Install {
                argv,
                names,
                env,
                wanted,
                confirm,
                timeout,
                error_log,
                ..
            } => {
                let limit = std::time::Duration::from_secs(*timeout);
                let deadline =
                    *package_deadline.get_or_insert_with(|| std::time::Instant::now() + limit);
                let r = install(
                    &Batch {
                        argv,
                        names,
                        wanted,
                        env,
                        limit,
                        deadline,
                        confirm: confirm.as_ref(),
                        error_log: error_log.as_deref(),
                        root,
                    },
                    ARG_SPACE,
                );
                accounts.invalidate();
                r
            }
            Action::Exec {
                argv,
                stdin,
                env,
                timeout,
                ..
            } => {
                let input = stdin.as_ref().map(|s| s.0.as_bytes());
                // The user's commands run as long as they take; a system tool is bounded.
                let mut limit = match timeout {
                    Some(t) => Some(std::time::Duration::from_secs(*t)),
                    None if crate::modules::runs_user_commands(a.module()) => None,
                    None => Some(default_exec_limit()),
                };
                let packages = a.module() == crate::modules::packages::NAME;
                if let (true, Some(l)) = (packages, limit) {
                    let deadline =
                        *package_deadline.get_or_insert_with(|| std::time::Instant::now() + l);
                    limit =
                        Some(l.min(deadline.saturating_duration_since(std::time::Instant::now())));
                }
                let r = match limit {
                    Some(l) if l.is_zero() => Err(format!(
                        "not run: the package runs' time ({} s in all) is spent",
                        timeout.unwrap_or_default()
                    )),
                    _ => match timeout {
                        None if env.is_empty() => run_limited(argv, input, limit).map(|_| ()),
                        _ => run_tool(argv, env, input, limit),
                    },
                };
                // Even a failed tool may have changed the account files.
                accounts.invalidate();
                r.map(|()| format!("ran {}", a.describe()))
            }
            Action::Write {
                path,
                mode,
                owner,
                group,
                in_home,
                content,
                ..
            } => {
                let accounts = accounts.get();
                write(root, accounts, path, content, *mode, owner, group, *in_home).map(|()| {
                    format!(
                        "wrote {path} ({} bytes, mode {mode:04o}, owner {})",
                        content.len(),
                        owner_group(accounts, owner, group)
                    )
                })
            }
            Action::Mkdir {
                path,
                mode,
                owner,
                group,
                in_home,
                ..
            } => {
                let accounts = accounts.get();
                mkdir(root, accounts, path, *mode, owner, group, *in_home).map(|()| {
                    format!(
                        "made directory {path} (mode {mode:04o}, owner {})",
                        owner_group(accounts, owner, group)
                    )
                })
            }
            Action::Symlink { path, target, .. } => {
                symlink(root, path, target).map(|()| format!("linked {path} -> {target}"))
            }
            Action::PowerState {
                argv,
                condition,
                timeout,
                ..
            } => power_state(argv, condition.as_deref(), *timeout),
            Action::FeedDevice { path, data, .. } => crate::rootfs::feed_device(root, path, data)
                .map(|()| format!("fed {} bytes to {path}", data.len())),
            Action::Remove { path, .. } => {
                crate::rootfs::remove_file(root, path).map(|()| format!("removed {path}"))
            }
            Action::HttpPost {
                url, fields, tries, ..
            } => http_post(root, &url.0, fields, *tries),
            Action::Console { item, lines, .. } => {
                for l in lines {
                    outln!("{l}");
                }
                Ok(format!("printed {item}:\n{}", lines.join("\n")))
            }
            // The ids do not change here (only the password or its change time), so the
            // accounts read stay valid.
            Action::MasterPasswd {
                user,
                field,
                hasher,
                db,
                ..
            } => master_passwd(root, user, field, hasher, db)
                .map(|()| format!("changed: {}", a.describe())),
        };
        let item = match a {
            Action::Exec { item, .. }
            | Action::Install { item, .. }
            | Action::Write { item, .. }
            | Action::Mkdir { item, .. }
            | Action::Symlink { item, .. }
            | Action::PowerState { item, .. }
            | Action::FeedDevice { item, .. }
            | Action::Remove { item, .. }
            | Action::HttpPost { item, .. }
            | Action::Console { item, .. } => item.clone(),
            Action::MasterPasswd { user, .. } => user.clone(),
        };
        match &result {
            Ok(done) => tracing::info!("{}: {done}", a.module()),
            Err(e) => tracing::warn!(module = a.module(), item, error = %e, "failed"),
        }
        let (done, error) = match result {
            Ok(d) => (Some(d), None),
            Err(e) => (None, Some(e)),
        };
        out.push(Outcome {
            module: a.module(),
            item,
            action: a.describe(),
            error,
            done,
        });
    }
    out
}

/// How long phone_home's POST may take in all, and each try.
pub const POST_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(120);
pub const POST_TRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// phone_home's POST: each field's value (a file's content read now, confined to the root;
/// `N/A` when it cannot be read, as cloud-init posts), form-urlencoded, through the HTTP
/// client and its retry policy ([`wisp_datasources::post::post_form`]).
fn http_post(
    root: &Root,
    url: &str,
    fields: &[crate::plan::FormField],
    tries: u32,
) -> Result<String, String> {
    use crate::plan::FormValue;
    use wisp_datasources::post;
    let values: Vec<(String, String)> = fields
        .iter()
        .map(|f| {
            let value = match &f.value {
                FormValue::Text(t) => t.clone(),
                FormValue::File(path) => match crate::rootfs::read(root, path, None) {
                    Ok(Some(c)) => String::from_utf8_lossy(&c).into_owned(),
                    Ok(None) => crate::modules::phone_home::UNAVAILABLE.to_string(),
                    Err(e) => {
                        tracing::warn!("{}: {e}", f.name);
                        crate::modules::phone_home::UNAVAILABLE.to_string()
                    }
                },
            };
            (f.name.clone(), value)
        })
        .collect();
    let client =
        wisp_datasources::http::HttpClient::new(&Default::default()).map_err(|e| e.to_string())?;
    let policy = wisp_datasources::retry::RetryPolicy::new(POST_MAX_WAIT, POST_TRY_TIMEOUT)
        .with_max_attempts(tries);
    let status = post::post_form(&client, url, &post::form_body(&values), &policy)
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "posted {} to {} (HTTP {status})",
        values
            .iter()
            .map(|v| v.0.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        post::redact(url)
    ))
}

/// cloud-init's power_state_change: the condition decides (exit 0 go, 1 not, anything else
/// not, with a warning); then shutdown(8), which schedules the change and returns.
fn power_state(
    argv: &[String],
    condition: Option<&[String]>,
    timeout: u64,
) -> Result<String, String> {
    let shown = Action::exec("power_state", "", argv.to_vec()).describe();
    if let Some(cond) = condition {
        let limit = std::time::Duration::from_secs(timeout);
        let shown_cond = Action::exec("power_state", "", cond.to_vec()).describe();
        match run_bounded(cond, limit)? {
            Some(0) => {}
            Some(1) => {
                return Ok(format!(
                    "not run: {shown} (the condition {shown_cond} exited 1)"
                ))
            }
            Some(code) => {
                tracing::warn!(
                    "power_state: the condition {shown_cond} exited {code}: no power change"
                );
                return Ok(format!("not run: {shown} (the condition exited {code})"));
            }
            None => {
                return Err(format!(
                    "the condition {shown_cond} did not end within {timeout} s (killed): \
                     no power change"
                ))
            }
        }
    }
    run(argv, None).map(|()| format!("ran {shown}"))
}

/// Runs a tool with no input for at most `limit` (its output dropped): its exit code, or
/// `None` when it had to be killed (or was ended by a signal).
fn run_bounded(argv: &[String], limit: std::time::Duration) -> Result<Option<i32>, String> {
    let ran = crate::runner::run(
        argv,
        &[],
        None,
        &crate::runner::Limits {
            time: Some(limit),
            keep: 0,
        },
    )?;
    Ok(ran.status.and_then(|s| s.code()))
}

/// How long a system tool wisp runs (an `Exec` action without a limit of its own: a rehash,
/// a reload, an account tool) may take before its process group is killed: a hung reload
/// must not hold the boot. The user's own commands (runcmd, scripts, bootcmd, boothooks) have
/// no limit, as in cloud-init.
pub const DEFAULT_EXEC_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

#[cfg(test)]
thread_local! {
    /// A shorter [`DEFAULT_EXEC_LIMIT`] for the tests.
    static TEST_EXEC_LIMIT: std::cell::Cell<Option<std::time::Duration>> =
        const { std::cell::Cell::new(None) };
}

/// [`DEFAULT_EXEC_LIMIT`] (shorter in tests).
fn default_exec_limit() -> std::time::Duration {
    #[cfg(test)]
    if let Some(l) = TEST_EXEC_LIMIT.with(std::cell::Cell::get) {
        return l;
    }
    DEFAULT_EXEC_LIMIT
}

fn run(argv: &[String], stdin: Option<&[u8]>) -> Result<(), String> {
    run_capture(argv, stdin).map(|_| ())
}

/// Runs a tool (at most [`DEFAULT_EXEC_LIMIT`]) and returns its standard output (at most
/// [`KEPT_OUTPUT`] bytes: the tail).
fn run_capture(argv: &[String], stdin: Option<&[u8]>) -> Result<Vec<u8>, String> {
    run_limited(argv, stdin, Some(default_exec_limit()))
}

/// [`run_capture`] for at most `limit` (None: as long as it takes).
fn run_limited(
    argv: &[String],
    stdin: Option<&[u8]>,
    limit: Option<std::time::Duration>,
) -> Result<Vec<u8>, String> {
    let prog = argv.first().map(String::as_str).unwrap_or_default();
    let ran = crate::runner::run(
        argv,
        &[],
        stdin,
        &crate::runner::Limits {
            time: limit,
            keep: KEPT_OUTPUT,
        },
    )?;
    let status = match ran.status {
        Some(s) if s.success() => return Ok(ran.stdout),
        Some(s) => s.to_string(),
        None => format!(
            "still running after {} {KILLED}",
            limit.map_or(0, |l| l.as_secs())
        ),
    };
    let stderr = String::from_utf8_lossy(&ran.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "{prog} failed ({status}): {}",
        tail.join(" / ").trim()
    ))
}

/// The bytes of names one install run takes at most: well under the smallest ARG_MAX of the
/// BSDs (256 KiB on NetBSD, with the environment counted in), so that 1,000 packages or more
/// go in a few runs instead of failing with E2BIG.
const ARG_SPACE: usize = 64 * 1024;

/// The most of a tool's output kept for its error (the tail; the rest is read and dropped).
const KEPT_OUTPUT: usize = 64 * 1024;

/// The lines of each stream an error quotes, and the most of each line.
const TAIL_LINES: usize = 3;
const TAIL_LINE_CHARS: usize = 240;

/// One install: the tool's argv (the names follow), the names and what each is in the
/// database, and how each run is bounded and checked.
struct Batch<'a> {
    argv: &'a [String],
    names: &'a [String],
    wanted: &'a [crate::modules::packages::Package],
    env: &'a [EnvVar],
    limit: std::time::Duration,
    /// When the module's time is spent: no run goes past it.
    deadline: std::time::Instant,
    confirm: Option<&'a crate::modules::packages::InstalledCheck>,
    error_log: Option<&'a str>,
    root: &'a Root,
}

/// How many names a list of packages in an error shows; the count says the rest.
const SHOWN_NAMES: usize = 20;

/// The first [`SHOWN_NAMES`] of `names` (`count` of them), and how many more.
fn first_names<'a>(names: impl Iterator<Item = &'a str>, count: usize) -> String {
    let shown: Vec<&str> = names.take(SHOWN_NAMES).collect();
    let mut out = shown.join(", ");
    if count > shown.len() {
        out.push_str(&format!(" and {} more", count - shown.len()));
    }
    out
}

/// After this many single runs in a row that failed the same way (the name taken out of the
/// output), the rest is not tried: a dead mirror fails each name alike, and 1,000 runs of it
/// would hold the boot for nothing. (Bisecting would need as many runs for scattered bad
/// names, and pkgin's "all or none" output does not say which name broke a batch.)
const SAME_FAILURES: usize = 3;

/// The names of `b` in runs of at most `space` bytes of names. A run that fails: the database
/// is read again and only the names still missing are run one at a time (until
/// [`SAME_FAILURES`] in a row fail alike, or one runs out of time). At the end the database is
/// read once more, and a name the tool left missing is failed too (older pkgin exits 0 for a
/// name it does not know). The runs made, or the names that failed, each with its reason.
fn install(b: &Batch<'_>, space: usize) -> Result<String, String> {
    let names = b.names;
    let mut chunks: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, n) in names.iter().enumerate() {
        if i > start && used + n.len() + 1 > space {
            chunks.push(start..i);
            start = i;
            used = 0;
        }
        used += n.len() + 1;
    }
    if start < names.len() {
        chunks.push(start..names.len());
    }
    let flavors = matches!(
        b.confirm,
        Some(crate::modules::packages::InstalledCheck::Dir { flavors: true, .. })
    );
    let read_db = || b.confirm.map(|c| c.read(b.root));
    let missing_now = |idx: &[usize]| -> Vec<usize> {
        match read_db() {
            Some(Ok(have)) => idx
                .iter()
                .copied()
                .filter(|&i| {
                    b.wanted
                        .get(i)
                        .is_none_or(|p| !crate::modules::packages::is_installed(p, &have, flavors))
                })
                .collect(),
            _ => idx.to_vec(),
        }
    };
    let shown = |idx: &[usize]| {
        let mut a = b.argv.to_vec();
        a.extend(idx.iter().map(|&i| names[i].clone()));
        let line = Action::exec("", "", a.clone()).describe();
        (a, line)
    };
    let mut ran = Vec::new();
    let mut failed: Vec<(usize, String)> = Vec::new();
    let mut not_tried: Vec<usize> = Vec::new();
    // The limit of the next run: the per-run limit, or less when the module's time is nearly
    // spent (None: spent).
    let next_limit = || {
        let left = b
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        (!left.is_zero()).then(|| b.limit.min(left))
    };
    for chunk in chunks {
        let idx: Vec<usize> = chunk.collect();
        let Some(limit) = next_limit() else {
            not_tried.extend(&idx);
            continue;
        };
        let (all, line) = shown(&idx);
        let e = match run_tool(&all, b.env, None, Some(limit)) {
            Ok(()) => {
                ran.push(line);
                continue;
            }
            Err(e) => e,
        };
        if idx.len() == 1 {
            failed.push((idx[0], e));
            continue;
        }
        if e.contains(KILLED) {
            // A stalled tool or mirror: trying each name alone would stall as long again.
            failed.push((idx[0], format!("the batch: {e}")));
            not_tried.extend(&idx[1..]);
            continue;
        }
        let retry = missing_now(&idx);
        tracing::warn!(
            "{line}: {e}; {} of {} still missing, installing one at a time",
            retry.len(),
            idx.len()
        );
        let mut same = 0;
        let mut last = String::new();
        for (k, &i) in retry.iter().enumerate() {
            let limit = next_limit();
            if same >= SAME_FAILURES || last.contains(KILLED) || limit.is_none() {
                not_tried.extend(&retry[k..]);
                break;
            }
            let (one, line) = shown(&[i]);
            match run_tool(&one, b.env, None, limit) {
                Ok(()) => {
                    ran.push(line);
                    same = 0;
                    last.clear();
                }
                Err(e) => {
                    let shape = e.replace(names[i].as_str(), "<name>");
                    same = if shape == last { same + 1 } else { 1 };
                    last = shape;
                    failed.push((i, e));
                }
            }
        }
    }
    // Confirm: what the database lists now.
    let mut note = String::new();
    match read_db() {
        Some(Ok(have)) => {
            for (i, p) in b.wanted.iter().enumerate() {
                let known = failed.iter().any(|(f, _)| *f == i) || not_tried.contains(&i);
                if !known && !crate::modules::packages::is_installed(p, &have, flavors) {
                    failed.push((
                        i,
                        "not in the package database after the install (the tool did not \
                         say why)"
                            .to_string(),
                    ));
                }
            }
        }
        Some(Err(e)) => note = format!(" (not confirmed: {e})"),
        None => note = " (not confirmed: the package database cannot be read here)".into(),
    }
    if failed.is_empty() && not_tried.is_empty() {
        return Ok(format!("ran {}{note}", ran.join("; ")));
    }
    failed.sort_by_key(|(i, _)| *i);
    let mut msg = format!(
        "{} of {} packages failed: {}",
        failed.len() + not_tried.len(),
        names.len(),
        failed
            .iter()
            .map(|(i, e)| format!("{}: {e}", names[*i]))
            .collect::<Vec<_>>()
            .join("; ")
    );
    if !not_tried.is_empty() {
        not_tried.sort_unstable();
        msg.push_str(&format!(
            "; not tried after the same failure {SAME_FAILURES} times in a row or a run out \
             of time: {}",
            first_names(
                not_tried.iter().map(|&i| names[i].as_str()),
                not_tried.len()
            )
        ));
    }
    if let Some(log) = b.error_log.and_then(|p| error_log_tail(b.root, p, b.env)) {
        msg.push_str(&format!("; {log}"));
    }
    msg.push_str(&note);
    Err(msg)
}

/// The most of the tool's error log read, and the lines of it quoted.
const ERROR_LOG_READ: usize = 64 * 1024;

/// The last lines of the tool's error log (pkgin's pkg_install-err.log), read through the
/// confined root and bounded, credentials redacted; none when there is none.
fn error_log_tail(root: &Root, path: &str, env: &[EnvVar]) -> Option<String> {
    // rootfs bounds the read ([`crate::rootfs::MAX_READ`]); only the end is looked at.
    let bytes = crate::rootfs::read(root, path, None).ok()??;
    let from = bytes.len().saturating_sub(ERROR_LOG_READ);
    let t = tail(&bytes[from..], env);
    (!t.is_empty()).then(|| format!("{path}: {t}"))
}

/// The mark of a run that ran out of time.
const KILLED: &str = "s: killed";

/// The last [`TAIL_LINES`] non-empty lines of a tool's output, for its error: credentials
/// redacted (the proxy's value, and any URL's user part) before each line is cut to
/// [`TAIL_LINE_CHARS`], so that no cut leaves part of a secret unredacted.
fn tail(bytes: &[u8], env: &[EnvVar]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .rev()
        .take(TAIL_LINES)
        .map(|l| {
            let mut l = l.to_string();
            for v in env {
                if v.value.len() > 1 {
                    l = l.replace(&v.value, &crate::plan::redact_userinfo(&v.value));
                }
            }
            crate::plan::redact_urls(&l)
                .chars()
                .filter(|c| !c.is_control())
                .take(TAIL_LINE_CHARS)
                .collect()
        })
        .collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

/// Runs a tool with `env` added to its environment, `stdin` fed to it, for at most `limit`
/// ([`crate::runner`]: its process group is killed when the time is up, "… still running
/// after N s: killed"). Its failure carries the last lines of its standard error and output.
fn run_tool(
    argv: &[String],
    env: &[EnvVar],
    stdin: Option<&[u8]>,
    limit: Option<std::time::Duration>,
) -> Result<(), String> {
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    // The tool's own name (not chroot's) for the errors.
    let tool = match prog.rsplit('/').next() {
        Some("chroot") => args.get(1).unwrap_or(prog),
        _ => prog,
    };
    let tool = tool.rsplit('/').next().unwrap_or(tool).to_string();
    let vars: Vec<(&str, &str)> = env.iter().map(|v| (v.name, v.value.as_str())).collect();
    let ran = crate::runner::run(
        argv,
        &vars,
        stdin,
        &crate::runner::Limits {
            time: limit,
            keep: KEPT_OUTPUT,
        },
    )?;
    let mut msg = match ran.status {
        Some(s) if s.success() => return Ok(()),
        Some(s) => format!("{tool} failed ({s})"),
        None => format!(
            "{tool} still running after {} {KILLED}",
            limit.map_or(0, |l| l.as_secs())
        ),
    };
    for (what, bytes) in [("stderr", &ran.stderr), ("stdout", &ran.stdout)] {
        let t = tail(bytes, env);
        if !t.is_empty() {
            msg.push_str(&format!("; {what}: {t}"));
        }
    }
    Err(msg)
}

fn ids(accounts: &Accounts, owner: &str, group: &str) -> Result<(u32, u32), String> {
    let user = accounts
        .user(owner)
        .ok_or_else(|| format!("no user {owner}"))?;
    let gid = if group.is_empty() {
        user.gid
    } else {
        accounts
            .group(group)
            .ok_or_else(|| format!("no group {group}"))?
            .gid
    };
    Ok((user.uid, gid))
}

/// The home that holds `path`, for an action in a user's home: from there down no link is
/// followed. The longest home of an account that holds it; else the path's second component
/// (`/home/NAME`), so that only the first (`/home`, a link on FreeBSD) may be a link.
fn home_of(accounts: &Accounts, path: &str) -> String {
    let n = crate::rootfs::normalize(path);
    accounts
        .users
        .iter()
        .map(|u| crate::rootfs::normalize(&u.home))
        .filter(|h| h != "/" && n.starts_with(&format!("{h}/")))
        .max_by_key(|h| h.len())
        .unwrap_or_else(|| n.split('/').take(3).collect::<Vec<_>>().join("/"))
}

#[allow(clippy::too_many_arguments)]
fn write(
    root: &Root,
    accounts: &Accounts,
    path: &str,
    content: &[u8],
    mode: u32,
    owner: &str,
    group: &str,
    in_home: bool,
) -> Result<(), String> {
    let ids = ids(accounts, owner, group)?;
    let home = in_home.then(|| home_of(accounts, path));
    // In a home the directories are the user's to make: none is created here.
    crate::rootfs::write(
        root,
        path,
        content,
        mode,
        Some(ids),
        home.as_deref(),
        !in_home,
    )?;
    // wisp's own state (scripts among it) stays root-only, even in a directory made before.
    if !in_home && path.starts_with(&format!("{}/", crate::state::STATE_DIR)) {
        if let Some((dir, _)) = path.rsplit_once('/') {
            crate::rootfs::mkdir(root, dir, 0o700, None, None)?;
        }
    }
    Ok(())
}

fn mkdir(
    root: &Root,
    accounts: &Accounts,
    path: &str,
    mode: u32,
    owner: &str,
    group: &str,
    in_home: bool,
) -> Result<(), String> {
    let ids = ids(accounts, owner, group)?;
    let home = in_home.then(|| home_of(accounts, path));
    crate::rootfs::mkdir(root, path, mode, Some(ids), home.as_deref())
}

/// A new link beside the old path, renamed over it: never a moment without one.
fn symlink(root: &Root, path: &str, target: &str) -> Result<(), String> {
    crate::rootfs::symlink(root, path, target)
}

/// vipw(8)'s way: the changed file as `/etc/ptmp` (created exclusively: another editor holding
/// it means the file is busy), then pwd_mkdb installs it as master.passwd and updates the
/// databases. The hash travels through files and pipes only, never argv.
fn master_passwd(
    root: &Root,
    user: &str,
    field: &PasswdField,
    hasher: &[String],
    db: &[String],
) -> Result<(), String> {
    let (index, value) = match field {
        PasswdField::Password { secret, plain } => {
            let hash = if *plain {
                let out = run_capture(hasher, Some(format!("{}\n", secret.0).as_bytes()))?;
                String::from_utf8_lossy(&out).trim().to_string()
            } else {
                secret.0.clone()
            };
            if hash.is_empty() || hash.contains([':', '\n']) {
                return Err("the hashing tool gave no usable hash".into());
            }
            (1, hash)
        }
        PasswdField::Change(v) => (5, v.to_string()),
    };
    let text = crate::rootfs::read(root, "/etc/master.passwd", None)?
        .map(|t| String::from_utf8_lossy(&t).into_owned())
        .ok_or("/etc/master.passwd does not exist")?;
    let mut found = false;
    let mut out = String::with_capacity(text.len() + value.len());
    for line in text.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.first() == Some(&user) && fields.len() == 10 && !found {
            found = true;
            fields[index] = &value;
            out.push_str(&fields.join(":"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !found {
        return Err(format!("no user {user} in /etc/master.passwd"));
    }
    crate::rootfs::create_exclusive(root, PTMP, out.as_bytes(), 0o600)
        .map_err(|e| format!("{e} (the password file is busy)"))?;
    run(db, None).inspect_err(|_| {
        let _ = crate::rootfs::remove(root, PTMP);
    })
}

/// The lock and copy of the password file that vipw(8), pwd_mkdb(8) and wisp share.
const PTMP: &str = "/etc/ptmp";

/// Removes a `/etc/ptmp` last modified before the running system booted: whoever made it (wisp
/// or an editor, killed between creating it and pwd_mkdb) is gone, and left as it is, it would
/// make every later password-file change fail as busy, at every boot. One from this boot is
/// another editor's lock and is respected. Not done when `/etc` in the root is a link (the
/// time is read by host path, which would then not be the confined file).
fn remove_stale_ptmp(root: &Root) {
    if crate::rootfs::is_link(root, "/etc", None) || crate::rootfs::is_link(root, PTMP, None) {
        return;
    }
    let Ok(meta) = std::fs::symlink_metadata(root.path(PTMP)) else {
        return;
    };
    let (Ok(modified), Some(booted)) = (meta.modified(), boot_time()) else {
        return;
    };
    if !meta.file_type().is_file() || modified >= booted {
        return;
    }
    match crate::rootfs::remove_file(root, PTMP) {
        Ok(()) => tracing::warn!(
            "{PTMP} is from before this boot: the stale lock of a killed password-file editor, removed"
        ),
        Err(e) => tracing::warn!("{PTMP} is from before this boot, but not removed: {e}"),
    }
}

/// When the running system booted, by its clock now ([`crate::platform::uptime`]).
fn boot_time() -> Option<std::time::SystemTime> {
    let up = std::time::Duration::try_from_secs_f64(crate::platform::uptime()?).ok()?;
    std::time::SystemTime::now().checked_sub(up)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, Root) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\n").unwrap();
        let r = Root::new(d.path());
        (d, r)
    }

    fn exec() -> Action {
        Action::exec("users_groups", "u", vec!["true".into()])
    }

    /// A write that needs ids (whether its chown succeeds, as root, does not matter here).
    fn write(i: usize) -> Action {
        Action::write(
            "ssh",
            "u",
            format!("/f{i}"),
            b"x".to_vec(),
            0o600,
            ("root", ""),
            false,
        )
    }

    #[test]
    fn the_account_files_are_read_once_for_many_commands() {
        let (_d, r) = root();
        // N commands (say useradd), then N writes that need ids (say their keys): one reading,
        // not one per command.
        let n = 200;
        let mut actions: Vec<Action> = (0..n).map(|_| exec()).collect();
        actions.extend((0..n).map(write));
        let mut accounts = LazyAccounts::new(&r);
        let out = execute_with(&actions, &mut accounts);
        assert_eq!(out.len(), 2 * n);
        assert!(out[..n].iter().all(|o| o.error.is_none()), "{:?}", out[0]);
        assert_eq!(accounts.loads, 1);
    }

    #[test]
    fn the_account_files_are_read_again_only_after_a_command() {
        let (_d, r) = root();
        let mut accounts = LazyAccounts::new(&r);
        // Nothing that needs ids: no reading at all.
        let link = Action::Symlink {
            module: "m",
            item: "i".into(),
            path: "/l".into(),
            target: "t".into(),
        };
        execute_with(&[exec(), link], &mut accounts);
        assert_eq!(accounts.loads, 0);
        // write, write: 1; command, command, write, write: 2.
        execute_with(&[write(0), write(1)], &mut accounts);
        assert_eq!(accounts.loads, 1);
        execute_with(&[exec(), exec(), write(2), write(3)], &mut accounts);
        assert_eq!(accounts.loads, 2);
        // A user a command added is seen by the next action that needs ids.
        std::fs::write(
            r.path("/etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nnew:x:0:0::/:/bin/sh\n",
        )
        .unwrap();
        execute_with(&[exec()], &mut accounts);
        assert!(accounts.get().user("new").is_some());
        assert_eq!(accounts.loads, 3);
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn power_state_goes_only_on_a_condition_that_exits_0_in_time() {
        // Harmless stand-ins for shutdown: `true` succeeds, `false` fails.
        let go = power_state(&argv(&["true"]), Some(&argv(&["true"])), 5).unwrap();
        assert!(go.starts_with("ran true"), "{go}");
        let not = power_state(&argv(&["false"]), Some(&argv(&["false"])), 5).unwrap();
        assert!(not.starts_with("not run"), "{not}");
        let odd = power_state(&argv(&["false"]), Some(&argv(&["sh", "-c", "exit 3"])), 5).unwrap();
        assert!(odd.contains("exited 3"), "{odd}");
        // A condition that hangs is killed at the timeout: no power change.
        let start = std::time::Instant::now();
        let e = power_state(&argv(&["false"]), Some(&argv(&["sleep", "30"])), 1).unwrap_err();
        assert!(e.contains("did not end within 1 s"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        // The tool's own failure is the action's.
        assert!(power_state(&argv(&["false"]), None, 5).is_err());
    }

    /// A stand-in package tool (a script in `dir`): each run's names one line in `dir/runs`,
    /// its `http_proxy` in `dir/proxy`; it fails, printing to both streams, when a name is
    /// `bad…`, and floods its output when one is `loud`.
    /// A stand-in package tool in a throwaway root: it logs each run's names to /runs and its
    /// proxy to /proxy, "installs" a name as pkg_install does (an entry `name-1.0` in
    /// /pkgdb), and, like pkgin, installs what it can of a batch and exits 1 when a name is
    /// `bad*` (its proxy echoed on stderr); `ghost*` it accepts and does not install (exit 0,
    /// as older pkgin does for an unknown name); `dead*` fails alike for each name (a dead
    /// mirror); `loud` floods its stderr; `stall` sleeps; `spawn` leaves a sleeping child
    /// holding its output.
    fn package_tool(dir: &std::path::Path) -> String {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir.join("pkgdb")).unwrap();
        let tool = dir.join("pkgtool");
        let d = dir.display();
        let script = r#"#!/bin/sh
shift
echo "$*" >> DIR/runs
printf '%s' "$http_proxy" > DIR/proxy
rc=0
for n in "$@"; do
    case $n in
    bad*) echo "resolving $n"; echo "via $http_proxy" >&2; echo "no such package: $n" >&2; rc=1 ;;
    dead*) echo "pkgin: could not fetch http://u:p/w@mirror.example/All/$n.tgz" >&2; rc=1 ;;
    ghost*) ;;
    loud) yes 0123456789abcdef | head -c 4000000 >&2; exit 1 ;;
    stall) sleep 30 ;;
    spawn) sleep 30 & exit 1 ;;
    *) : > "DIR/pkgdb/$n-1.0" ;;
    esac
done
exit $rc
"#;
        std::fs::write(&tool, script.replace("DIR", &d.to_string())).unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        tool.display().to_string()
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    /// Installs `names` with the stand-in of `d`, confirmed against its /pkgdb.
    fn install_in(
        d: &std::path::Path,
        names: &[String],
        env: &[EnvVar],
        limit: u64,
        space: usize,
    ) -> Result<String, String> {
        let root = Root::new(d);
        let argv = vec![d.join("pkgtool").display().to_string(), "install".into()];
        let wanted: Vec<crate::modules::packages::Package> = names
            .iter()
            .map(|n| crate::modules::packages::Package {
                name: n.clone(),
                version: None,
            })
            .collect();
        let confirm = crate::modules::packages::InstalledCheck::Dir {
            path: "/pkgdb".into(),
            flavors: false,
        };
        install(
            &Batch {
                argv: &argv,
                names,
                wanted: &wanted,
                env,
                limit: std::time::Duration::from_secs(limit),
                deadline: std::time::Instant::now() + std::time::Duration::from_secs(limit * 10),
                confirm: Some(&confirm),
                error_log: Some("/pkg_install-err.log"),
                root: &root,
            },
            space,
        )
    }

    fn runs(d: &std::path::Path) -> String {
        std::fs::read_to_string(d.join("runs")).unwrap_or_default()
    }

    #[test]
    fn a_failed_batch_retries_only_the_missing_names_with_the_tools_words() {
        let d = tempfile::tempdir().unwrap();
        package_tool(d.path());
        let env = vec![EnvVar {
            name: "http_proxy",
            value: "http://u:p@proxy:3128/".into(),
        }];
        let ok = install_in(d.path(), &names(&["a", "b"]), &env, 60, ARG_SPACE).unwrap();
        assert!(
            ok.starts_with("ran ") && !ok.contains("not confirmed"),
            "{ok}"
        );
        assert_eq!(
            std::fs::read_to_string(d.path().join("proxy")).unwrap(),
            "http://u:p@proxy:3128/"
        );
        std::fs::remove_file(d.path().join("runs")).unwrap();
        std::fs::write(
            d.path().join("pkg_install-err.log"),
            "pkg_add: bad1: proxy http://u:p@proxy:3128/ said 404\n",
        )
        .unwrap();
        let e = install_in(
            d.path(),
            &names(&["c", "bad1", "e", "bad2"]),
            &env,
            60,
            ARG_SPACE,
        )
        .unwrap_err();
        // The batch installed c and e (a partial batch): only the two bad names are tried
        // again, alone.
        assert_eq!(runs(d.path()), "c bad1 e bad2\nbad1\nbad2\n");
        assert!(e.starts_with("2 of 4 packages failed: bad1: "), "{e}");
        assert!(
            e.contains(
                "stderr: via http://<redacted>@proxy:3128/ / no such package: bad1; \
                 stdout: resolving bad1"
            ),
            "{e}"
        );
        assert!(
            e.contains("bad2: ") && e.contains("no such package: bad2"),
            "{e}"
        );
        // The tool's own error log's tail goes with it, redacted.
        assert!(
            e.contains("/pkg_install-err.log: pkg_add: bad1: proxy http://<redacted>@proxy"),
            "{e}"
        );
        assert!(!e.contains("u:p@"), "{e}");
    }

    /// Final review of issue 13 (7): the package module's runs share one budget, their
    /// per-run limit: a run gets what is left of it, and none starts once it is spent.
    #[test]
    fn the_package_runs_share_their_time_limit() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let pkg = |script: &str| Action::Exec {
            module: crate::modules::packages::NAME,
            item: "update".into(),
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            stdin: None,
            env: Vec::new(),
            timeout: Some(4),
        };
        // Wide margins, for a loaded machine: the first run is well inside the 4 s, the
        // second could take 30 s alone, and all of them end well before that.
        let t = std::time::Instant::now();
        let out = execute(&[pkg("sleep 1"), pkg("sleep 30"), pkg("true")], &root);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(15),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(out[0].error, None);
        let e = out[1].error.as_deref().unwrap_or_default();
        assert!(e.contains("killed"), "{e}");
        let e = out[2].error.as_deref().unwrap_or_default();
        assert!(e.contains("is spent"), "{e}");
    }

    /// Final review of issue 13 (12): a system tool without a limit of its own (a hung
    /// reload) is killed at the default limit; the user's commands run as long as they take.
    #[test]
    fn a_hung_exec_is_killed_at_the_default_limit() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        TEST_EXEC_LIMIT.with(|l| l.set(Some(std::time::Duration::from_millis(300))));
        let sh = |module, script: &str| {
            Action::exec(
                module,
                "x",
                vec!["/bin/sh".into(), "-c".into(), script.into()],
            )
        };
        let t = std::time::Instant::now();
        let out = execute(&[sh("rsyslog", "sleep 30 & sleep 30")], &root);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t.elapsed()
        );
        let e = out[0].error.as_deref().unwrap_or_default();
        assert!(
            e.contains("still running after") && e.contains("killed"),
            "{e}"
        );
        let out = execute(&[sh(crate::modules::runcmd::NAME, "sleep 1")], &root);
        assert_eq!(out[0].error, None);
        TEST_EXEC_LIMIT.with(|l| l.set(None));
    }

    #[test]
    fn a_tool_that_says_fine_but_installs_nothing_is_failed_by_the_database() {
        let d = tempfile::tempdir().unwrap();
        package_tool(d.path());
        let e = install_in(d.path(), &names(&["a", "ghost1"]), &[], 60, ARG_SPACE).unwrap_err();
        assert!(
            e.starts_with("1 of 2 packages failed: ghost1: not in the package database"),
            "{e}"
        );
        assert_eq!(runs(d.path()), "a ghost1\n");
    }

    #[test]
    fn the_same_failure_again_and_again_stops_the_single_runs() {
        let d = tempfile::tempdir().unwrap();
        package_tool(d.path());
        let many: Vec<String> = (0..50).map(|i| format!("dead{i}")).collect();
        let e = install_in(d.path(), &many, &[], 60, ARG_SPACE).unwrap_err();
        // One batch, then SAME_FAILURES single runs, not 50.
        assert_eq!(
            runs(d.path()).lines().count(),
            1 + SAME_FAILURES,
            "{}",
            runs(d.path())
        );
        assert!(e.starts_with("50 of 50 packages failed: dead0: "), "{e}");
        assert!(e.contains("not tried after the same failure"), "{e}");
        // Final review of issue 13 (8): the names not tried are bounded: the first ones and
        // a count.
        assert!(
            e.contains("dead3, dead4") && e.contains("dead22 and 27 more"),
            "{e}"
        );
        assert!(!e.contains("dead23"), "{e}");
        assert!(!e.contains("u:p/w@"), "{e}");
    }

    #[test]
    fn a_stalled_tool_is_killed_with_its_group_at_the_deadline() {
        let d = tempfile::tempdir().unwrap();
        package_tool(d.path());
        let t = std::time::Instant::now();
        let e = install_in(d.path(), &names(&["stall"]), &[], 1, ARG_SPACE).unwrap_err();
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t.elapsed()
        );
        assert!(e.contains("pkgtool still running after 1 s: killed"), "{e}");
        // A batch that ran out of time is not tried name by name.
        std::fs::remove_file(d.path().join("runs")).unwrap();
        let e = install_in(d.path(), &names(&["x", "stall", "y"]), &[], 1, ARG_SPACE).unwrap_err();
        assert_eq!(runs(d.path()).lines().count(), 1, "{e}");
        assert!(e.contains("not tried") && e.contains("stall, y"), "{e}");
    }

    #[test]
    fn a_child_left_holding_the_output_does_not_hold_the_install() {
        let d = tempfile::tempdir().unwrap();
        package_tool(d.path());
        let t = std::time::Instant::now();
        let e = install_in(d.path(), &names(&["spawn"]), &[], 60, ARG_SPACE).unwrap_err();
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t.elapsed()
        );
        assert!(
            e.starts_with("1 of 1 packages failed: spawn: pkgtool failed"),
            "{e}"
        );
    }

    #[test]
    fn an_exec_with_an_environment_still_gets_its_input() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("got");
        let r = run_tool(
            &[
                "/bin/sh".into(),
                "-c".into(),
                format!("cat > {}", out.display()),
            ],
            &[EnvVar {
                name: "X",
                value: "1".into(),
            }],
            Some(b"hello"),
            Some(std::time::Duration::from_secs(30)),
        );
        assert_eq!(r, Ok(()));
        assert_eq!(std::fs::read_to_string(out).unwrap(), "hello");
    }

    #[test]
    fn a_proxy_password_longer_than_a_line_is_redacted_before_the_cut() {
        let secret = format!("http://ops:{}@proxy:3128/", "s".repeat(400));
        let env = vec![EnvVar {
            name: "http_proxy",
            value: secret.clone(),
        }];
        let t = tail(format!("connecting via {secret}\n").as_bytes(), &env);
        assert!(!t.contains("sss"), "{t}");
        // A URL the tool prints with its own credentials, a raw '/' in the password.
        let t = tail(b"fetch http://me:pa/ss@mirror/x.tgz failed", &[]);
        assert_eq!(t, "fetch http://<redacted>@mirror/x.tgz failed");
    }

    #[test]
    fn a_thousand_packages_go_in_runs_that_fit_the_argument_space() {
        let d = tempfile::tempdir().unwrap();
        package_tool(d.path());
        let many: Vec<String> = (0..1000)
            .map(|i| format!("package-number-{i:04}"))
            .collect();
        // 20 bytes a name with its separator: a 4 KiB space takes 204 a run, so 5 runs.
        let ran = install_in(d.path(), &many, &[], 60, 4096).unwrap();
        assert_eq!(ran.matches("; ").count() + 1, 5, "{ran}");
        let mut seen = Vec::new();
        for line in runs(d.path()).lines() {
            assert!(line.len() <= 4096, "{}", line.len());
            seen.extend(line.split(' ').map(str::to_string));
        }
        assert_eq!(seen, many);
        // With the real space, one run.
        std::fs::remove_file(d.path().join("runs")).unwrap();
        let ran = install_in(d.path(), &many, &[], 60, ARG_SPACE).unwrap();
        assert_eq!(ran.matches("; ").count(), 0);
    }

    #[test]
    fn a_tools_flood_of_output_is_cut_to_its_tail() {
        let d = tempfile::tempdir().unwrap();
        package_tool(d.path());
        let e = install_in(d.path(), &names(&["loud"]), &[], 60, ARG_SPACE).unwrap_err();
        assert!(e.len() < 2000, "{}", e.len());
        assert!(e.contains("0123456789abcdef"), "{e}");
    }

    /// A root whose master.passwd has user alice, a `/etc/ptmp` modified at `mtime`, and a
    /// MasterPasswd action whose "pwd_mkdb" installs ptmp as master.passwd, as the real one does.
    fn ptmp_case(mtime: std::time::SystemTime) -> (tempfile::TempDir, Root, Action) {
        let (d, r) = root();
        let etc = d.path().join("etc");
        std::fs::write(
            etc.join("master.passwd"),
            "alice:*:1001:1001::0:0::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(etc.join("ptmp"), "left by a killed editor\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(etc.join("ptmp"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let a = Action::MasterPasswd {
            module: "users_groups",
            user: "alice".into(),
            field: PasswdField::Change(1),
            hasher: vec![],
            db: vec![
                "mv".into(),
                etc.join("ptmp").display().to_string(),
                etc.join("master.passwd").display().to_string(),
            ],
        };
        (d, r, a)
    }

    #[test]
    fn a_ptmp_from_before_the_boot_is_stale_and_removed() {
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let (d, r, a) = ptmp_case(old);
        let out = execute(&[a], &r);
        assert_eq!(out[0].error, None);
        assert_eq!(
            std::fs::read_to_string(d.path().join("etc/master.passwd")).unwrap(),
            "alice:*:1001:1001::1:0::/home/alice:/bin/sh\n"
        );
        assert!(!d.path().join("etc/ptmp").exists());
    }

    #[test]
    fn a_stale_ptmp_is_gone_before_the_first_account_tool_runs() {
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let (d, r, _) = ptmp_case(old);
        let ptmp = d.path().join("etc/ptmp").display().to_string();
        // useradd stands for any tool that locks the password file.
        let useradd = Action::exec(
            "users_groups",
            "alice",
            vec!["test".into(), "!".into(), "-e".into(), ptmp],
        );
        let out = execute(&[useradd], &r);
        assert_eq!(out[0].error, None);
    }

    #[test]
    fn a_ptmp_from_this_boot_is_respected() {
        let (d, r, a) = ptmp_case(std::time::SystemTime::now());
        let out = execute(&[a], &r);
        let e = out[0].error.as_deref().unwrap_or_default();
        assert!(e.contains("/etc/ptmp") && e.contains("busy"), "{e}");
        assert_eq!(
            std::fs::read_to_string(d.path().join("etc/ptmp")).unwrap(),
            "left by a killed editor\n"
        );
        assert_eq!(
            std::fs::read_to_string(d.path().join("etc/master.passwd")).unwrap(),
            "alice:*:1001:1001::0:0::/home/alice:/bin/sh\n"
        );
    }
}
