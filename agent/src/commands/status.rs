//! `wisp status [--wait [--timeout SECS]] [--long]`: where the boot stages are and how they went.
//! Exit status as cloud-init's: 0 done (or running without trouble, or disabled), 1 error,
//! 2 degraded (warnings); and 124 when `--wait --timeout` gave up (cloud-init has no timeout;
//! 124 is what timeout(1) exits with, so it cannot be mistaken for a boot's result).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Context;
use super::Format;
use crate::boot::record::read_status;
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

/// The exit status when `--wait --timeout` gave up.
pub const TIMED_OUT: u8 = 124;

pub fn run(ctx: &Context, args: &StatusArgs) -> anyhow::Result<u8> {
    let state = StateDir::new(&ctx.root, true);
    // cloud-init's marker semantics: a disabled agent is a state of its own ("status: disabled",
    // exit 0), whatever an earlier run left in status.json, and nothing is awaited: no boot
    // will ever finish the stages.
    let disabled = || ctx.root.path(DISABLED).exists();
    let mut status = read_status(&state);
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
        status = read_status(&state);
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
