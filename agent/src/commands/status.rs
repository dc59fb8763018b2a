//! `wisp status [--wait [--timeout SECS]] [--long]`: where the boot stages are and how they went.
//! Exit status as cloud-init's: 0 done (or running without trouble, or disabled), 1 error,
//! 2 degraded (warnings); and 124 when `--wait --timeout` gave up (cloud-init has no timeout;
//! 124 is what timeout(1) exits with, so it cannot be mistaken for a boot's result).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Context;
use super::Format;
use crate::boot::record::{read_status, stage_lock_held};
use crate::boot::DISABLED;
use crate::state::StateDir;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Wait until the final stage has finished (or wisp is disabled).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after SECS seconds, exiting 124.
    #[arg(long, value_name = "SECS", requires = "wait")]
    pub timeout: Option<u64>,
    /// Show each stage and module, with errors.
    #[arg(long)]
    pub long: bool,
}

fn finished(status: &Value) -> bool {
    matches!(
        status["stages"]["final"]["result"].as_str(),
        Some("SUCCESS" | "WARN" | "FAIL")
    ) || status["stages"]
        .as_object()
        .is_some_and(|s| s.values().any(|v| v["result"] == "FAIL"))
}

/// The event name MAAS shows for a stage.
fn stage_event(stage: &str) -> &str {
    match stage {
        "local" => "init-local",
        "network" => "init-network",
        "final" => "modules-final",
        other => other,
    }
}

/// Whether process `pid` no longer exists.
fn process_gone(pid: u64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let failed = unsafe { libc::kill(pid, 0) } == -1;
    failed && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// `status.json`, with each stage recorded as running whose process is gone turned into a
/// FAIL saying so: a crashed stage is an error, not a boot running for ever.
///
/// The stage lock tells: its holder is running; a free lock with "running" recorded is a
/// process that ended without recording its result (the lock is taken before "running" is
/// recorded and let go after the result is, so the record is read again to rule out a stage
/// that just ended). Without a lock file (an older wisp's record), the recorded pid is asked
/// with kill(pid, 0) — the weaker test, as a new process may have taken that pid since.
fn read_checked(state: &StateDir) -> Value {
    let mut status = read_status(state);
    let running: Vec<(String, u64)> = status["stages"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v["result"] == "running")
        .filter_map(|(k, v)| Some((k.clone(), v["pid"].as_u64()?)))
        .collect();
    if running.is_empty() {
        return status;
    }
    let lock_held = stage_lock_held(state);
    if lock_held == Some(true) {
        return status;
    }
    let again = read_status(state);
    for (stage, pid) in running {
        let gone = match lock_held {
            Some(_) => again["stages"][&stage] == status["stages"][&stage],
            None => process_gone(pid),
        };
        if gone {
            let why = format!(
                "stage {} crashed: process {pid} is gone",
                stage_event(&stage)
            );
            let entry = &mut status["stages"][&stage];
            entry["result"] = json!("FAIL");
            entry["crashed"] = json!(true);
            entry["errors"] = json!([why]);
        }
    }
    status
}

/// The exit status when `--wait --timeout` gave up.
pub const TIMED_OUT: u8 = 124;

pub fn run(ctx: &Context, args: &StatusArgs) -> anyhow::Result<u8> {
    let state = StateDir::new(&ctx.root, true);
    // cloud-init's marker semantics: a disabled agent is a state of its own ("status: disabled",
    // exit 0), whatever an earlier run left in status.json, and nothing is awaited: no boot
    // will ever finish the stages.
    let disabled = || ctx.root.path(DISABLED).exists();
    let mut status = read_checked(&state);
    let deadline = args
        .timeout
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut timed_out = false;
    while args.wait && !finished(&status) && !disabled() {
        let pause = Duration::from_millis(250);
        let pause = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    timed_out = true;
                    break;
                }
                pause.min(left)
            }
            None => pause,
        };
        std::thread::sleep(pause);
        status = read_checked(&state);
    }
    if disabled() {
        return print_disabled(ctx, args, status);
    }
    let results: Vec<&str> = status["stages"]
        .as_object()
        .map(|s| s.values().filter_map(|v| v["result"].as_str()).collect())
        .unwrap_or_default();
    let overall = if status["stages"].as_object().is_none_or(|s| s.is_empty()) {
        "not run"
    } else if results.contains(&"FAIL") {
        "error"
    } else if results.contains(&"running") {
        "running"
    } else if !finished(&status) {
        "waiting for the next stage"
    } else if results.contains(&"WARN") {
        "degraded done"
    } else {
        "done"
    };
    let code = if timed_out {
        TIMED_OUT
    } else if results.contains(&"FAIL") {
        1
    } else if results.contains(&"WARN") {
        2
    } else {
        0
    };
    match ctx.format {
        Format::Json => {
            let mut out = status.clone();
            out["status"] = json!(overall);
            outln!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Text => {
            outln!("status: {overall}");
            // A crash is said even without --long: nothing else would explain the error.
            for s in status["stages"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(_, s)| s)
            {
                if s["crashed"] == true && !args.long {
                    for e in s["errors"].as_array().into_iter().flatten() {
                        outln!("error: {}", e.as_str().unwrap_or(""));
                    }
                }
            }
            if args.long {
                if let Some(stage) = status["current"].as_str() {
                    outln!("stage: {stage}");
                }
                for name in ["local", "network", "final"] {
                    let s = &status["stages"][name];
                    if let Some(r) = s["result"].as_str() {
                        let took = match (s["started"].as_f64(), s["finished"].as_f64()) {
                            (Some(a), Some(b)) => format!(" ({:.2}s)", b - a),
                            _ => String::new(),
                        };
                        outln!("  {name:<8} {r}{took}");
                        for e in s["errors"].as_array().into_iter().flatten() {
                            outln!("    error: {}", e.as_str().unwrap_or(""));
                        }
                    }
                }
                if let Some(modules) = status["modules"].as_object() {
                    outln!("modules:");
                    for (m, v) in modules {
                        outln!("  {m:<22} {}", v["result"].as_str().unwrap_or("?"));
                        for e in v["errors"].as_array().into_iter().flatten() {
                            outln!("    {}", e.as_str().unwrap_or(""));
                        }
                    }
                }
            }
        }
    }
    if timed_out {
        eprintln!(
            "wisp status: timed out after {} s waiting for the final stage to finish (status: {overall})",
            args.timeout.unwrap_or(0)
        );
    }
    Ok(code)
}

/// `status: disabled`, exit 0, as `cloud-init status` says when its disable marker exists.
fn print_disabled(ctx: &Context, args: &StatusArgs, mut status: Value) -> anyhow::Result<u8> {
    let why = format!("{DISABLED} exists: wisp does nothing at boot");
    match ctx.format {
        Format::Json => {
            if !status.is_object() {
                status = json!({});
            }
            status["status"] = json!("disabled");
            status["detail"] = json!(why);
            outln!("{}", serde_json::to_string_pretty(&status)?);
        }
        Format::Text => {
            outln!("status: disabled");
            if args.long {
                outln!("detail: {why}");
            }
        }
    }
    Ok(0)
}
