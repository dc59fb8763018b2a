//! `wisp schema FILE...`: check cloud-config documents and report every problem with its line
//! and column. Unknown keys are warnings, wrong types errors. Exit status: 0 clean, 1 errors,
//! 2 warnings only.

use std::path::PathBuf;

use serde_json::json;
use wisp_datasources::userdata::{self, DecodeOptions, PartKind};

use super::Context;
use super::Format;
use crate::cloudconfig::{self, Located, Problem, Severity};

#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Documents to check: #cloud-config, or any user-data (MIME, gzip, archive…), whose
    /// cloud-config parts are each checked.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The outcome for `main`: 0 clean, 1 errors, 2 warnings only.
pub fn run(ctx: &Context, args: &SchemaArgs) -> anyhow::Result<u8> {
    let mut reports = Vec::new();
    for file in &args.files {
        reports.push((file.display().to_string(), check_file(file)));
    }
    let errors = reports
        .iter()
        .flat_map(|(_, ps)| ps)
        .any(|(_, p)| p.problem.severity == Severity::Error);
    let warnings = reports.iter().any(|(_, ps)| !ps.is_empty());
    match ctx.format {
        Format::Json => {
            let files: Vec<_> = reports
                .iter()
                .map(|(file, ps)| {
                    json!({
                        "file": file,
                        "valid": !ps.iter().any(|(_, p)| p.problem.severity == Severity::Error),
                        "problems": ps.iter().map(|(part, p)| {
                            let mut v = serde_json::to_value(p).unwrap_or_default();
                            if let Some(part) = part { v["part"] = json!(part); }
                            v
                        }).collect::<Vec<_>>(),
                    })
                })
                .collect();
            outln!(
                "{}",
                serde_json::to_string_pretty(&json!({ "files": files }))?
            );
        }
        Format::Text => {
            for (file, ps) in &reports {
                if ps.is_empty() {
                    outln!("{file}: valid {}", kind_of(file));
                }
                for (part, p) in ps {
                    let place = match (p.line, p.column) {
                        (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
                        _ => file.clone(),
                    };
                    let part = part
                        .as_ref()
                        .map(|n| format!(" (part {n})"))
                        .unwrap_or_default();
                    let sev = match p.problem.severity {
                        Severity::Error => "error",
                        Severity::Warning => "warning",
                    };
                    let path = if p.problem.path.is_empty() {
                        String::new()
                    } else {
                        format!("{}: ", p.problem.path)
                    };
                    outln!("{place}{part}: {sev}: {path}{}", p.problem.message);
                }
            }
        }
    }
    Ok(if errors {
        1
    } else if warnings {
        2
    } else {
        0
    })
}

type Found = Vec<(Option<String>, Located)>;

fn error(message: String) -> Located {
    Located {
        problem: Problem {
            path: String::new(),
            severity: Severity::Error,
            message,
        },
        line: None,
        column: None,
    }
}

fn check_file(file: &PathBuf) -> Found {
    let data = match std::fs::read(file) {
        Ok(d) => d,
        Err(e) => return vec![(None, error(format!("cannot read: {e}")))],
    };
    if crate::network::looks_like(&data) {
        return check_network(file, &data);
    }
    if data.starts_with(b"#cloud-config\n") || data.starts_with(b"#cloud-config\r\n") {
        return match std::str::from_utf8(&data) {
            Ok(text) => cloudconfig::check_text(text)
                .problems
                .into_iter()
                .map(|p| (None, p))
                .collect(),
            Err(_) => vec![(None, error("not valid UTF-8".into()))],
        };
    }
    // Other user-data: check each cloud-config part on its own, where positions mean something.
    let decoded = userdata::decode(
        &data,
        &file.display().to_string(),
        &DecodeOptions::default(),
    );
    let mut out: Found = decoded
        .problems
        .iter()
        .map(|p| (Some(p.part.clone()), error(p.message.clone())))
        .collect();
    let mut any = false;
    let budget = decoded.budget();
    for part in decoded
        .parts
        .iter()
        .filter(|p| p.kind == PartKind::CloudConfig)
    {
        any = true;
        let text = String::from_utf8_lossy(&part.content);
        for p in cloudconfig::check_text_with(&text, &budget).problems {
            out.push((Some(part.name.clone()), p));
        }
    }
    if !any && out.is_empty() {
        out.push((None, error("no cloud-config in this document".into())));
    }
    out
}

/// A network config (v1, v2, ConfigDrive JSON): every entry and field it could not read.
fn check_network(file: &std::path::Path, data: &[u8]) -> Found {
    let parsed = crate::network::parse(&file.display().to_string(), data);
    parsed
        .problems
        .into_iter()
        .map(|p| {
            (
                None,
                Located {
                    problem: Problem {
                        path: p.path,
                        severity: Severity::Error,
                        message: p.message,
                    },
                    line: p.line,
                    column: p.column,
                },
            )
        })
        .collect()
}

/// What a clean file was checked as, for the text report.
fn kind_of(file: &str) -> &'static str {
    match std::fs::read(file) {
        Ok(data) if crate::network::looks_like(&data) => "network config",
        _ => "cloud-config",
    }
}
