//! `wisp status [--wait] [--long]`: where the boot stages are and how they went. Exit status as
//! cloud-init's: 0 done (or running without trouble), 1 error, 2 degraded (warnings).

use std::time::Duration;

use serde_json::{json, Value};

use super::Context;
use crate::boot::record::STATUS;
use crate::cli::Format;
use crate::state::StateDir;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Wait until the final stage has finished.
    #[arg(long)]
    pub wait: bool,
    /// Show each stage and module, with errors.
    #[arg(long)]
    pub long: bool,
}

fn read(state: &StateDir) -> Value {
    state
        .read(STATUS)
        .ok()
        .flatten()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_else(|| json!({}))
}

fn finished(status: &Value) -> bool {
    matches!(
        status["stages"]["final"]["result"].as_str(),
        Some("SUCCESS" | "WARN" | "FAIL")
    ) || status["stages"]
        .as_object()
        .is_some_and(|s| s.values().any(|v| v["result"] == "FAIL"))
}

pub fn run(ctx: &Context, args: &StatusArgs) -> anyhow::Result<u8> {
    let state = StateDir::new(&ctx.root, true);
    let mut status = read(&state);
    while args.wait && !finished(&status) {
        std::thread::sleep(Duration::from_millis(250));
        status = read(&state);
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
    let code = if results.contains(&"FAIL") {
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
    Ok(code)
}
