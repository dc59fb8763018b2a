//! `power_state` (cloud-init's cc_power_state_change): power off, reboot or halt with the OS's
//! shutdown(8), once per instance. The shutdown is planned here but carried out only after the
//! final stage has reported to MAAS (the boot flow holds it back until its events are flushed):
//! a reboot before the final event would leave MAAS without it. A `condition` (a command: exit
//! 0 means go) is run then, not at planning time, as cloud-init runs it after its own end — so a
//! runcmd that creates the file it tests is seen.

use super::{Frequency, Inputs, Planned, Stage};
use crate::cloudconfig::lenient::{child, describe, entries, yaml11_bool, Reader};
use crate::plan::Action;
use serde::Serialize;
use yaml_serde::Value;

pub const NAME: &str = "power_state";
pub const STAGE: Stage = Stage::Final;
pub const FREQUENCY: Frequency = Frequency::PerInstance;
/// cloud-init's default `timeout`, in seconds.
pub const DEFAULT_TIMEOUT: u64 = 30;
/// The longest `timeout` taken (a day): a condition must not hold the boot's end for ever.
pub const MAX_TIMEOUT: u64 = 86_400;
/// The longest `delay` taken, in minutes (a year): shutdown(8) takes any, wisp bounds it.
pub const MAX_DELAY_MINUTES: u64 = 525_600;
/// The longest `message` taken: it is broadcast to every terminal.
pub const MAX_MESSAGE: usize = 1024;

/// What the machine is brought to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerMode {
    Poweroff,
    Reboot,
    Halt,
}

/// Whether to go ahead: always, never, or when a command exits 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    Static(bool),
    /// A string: run with `sh -c`, as cloud-init does.
    Shell(String),
    /// A list: run as argv.
    Argv(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PowerState {
    pub mode: PowerMode,
    /// Minutes from now; 0 is `now`.
    pub delay_minutes: u64,
    pub message: Option<String>,
    /// Seconds the condition may run.
    pub timeout: u64,
    pub condition: Condition,
}

/// shutdown(8)'s time argument.
fn time_arg(minutes: u64) -> String {
    if minutes == 0 {
        "now".into()
    } else {
        format!("+{minutes}")
    }
}

pub fn plan(inp: &Inputs<'_>, out: &mut Planned) {
    let Some(ps) = &inp.config.power_state else {
        return;
    };
    let condition = match &ps.condition {
        Condition::Static(false) => {
            tracing::info!("power_state: condition is false: no power change");
            return;
        }
        Condition::Static(true) => None,
        Condition::Shell(s) => Some(vec!["/bin/sh".to_string(), "-c".into(), s.clone()]),
        Condition::Argv(a) => Some(a.clone()),
    };
    let root = inp.root.path("/");
    let root = (root != std::path::Path::new("/")).then(|| root.display().to_string());
    let mut argv = vec![inp.backend.shutdown_tool().to_string()];
    argv.extend(
        inp.backend
            .shutdown_flags(ps.mode)
            .iter()
            .map(|f| f.to_string()),
    );
    argv.push(time_arg(ps.delay_minutes));
    argv.extend(ps.message.clone());
    let chrooted = |argv: Vec<String>| {
        crate::platform::chrooted(&root, argv.iter().map(String::as_str).collect())
    };
    out.actions.push(Action::PowerState {
        module: NAME,
        item: match ps.mode {
            PowerMode::Poweroff => "poweroff",
            PowerMode::Reboot => "reboot",
            PowerMode::Halt => "halt",
        }
        .into(),
        argv: chrooted(argv),
        condition: condition.map(chrooted),
        timeout: ps.timeout,
    });
}

// Reading the module's part of a cloud-config document, with cloud-init's leniency
// (`cloudconfig::lenient`).

/// `delay`: `now`, `+N` or `N` minutes (cloud-init passes `+int(delay)` to shutdown).
fn read_delay(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<u64> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => String::new(),
    };
    // cloud-init takes `now` only as written (lower case).
    let minutes = if text == "now" {
        Some(0)
    } else {
        text.strip_prefix('+')
            .unwrap_or(&text)
            .parse::<u64>()
            .ok()
            .filter(|m| *m <= MAX_DELAY_MINUTES)
    };
    if minutes.is_none() {
        r.error(
            path,
            format!(
                "expected now, +N or N (minutes, at most {MAX_DELAY_MINUTES}), got {}",
                describe(v)
            ),
        );
    }
    minutes
}

/// `timeout`: seconds, a number (cloud-init takes a float; wisp rounds up).
fn read_timeout(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<u64> {
    let secs = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match secs {
        Some(s) if s.is_finite() && (0.0..=MAX_TIMEOUT as f64).contains(&s) => {
            Some(s.ceil() as u64)
        }
        _ => {
            r.error(
                path,
                format!(
                    "expected a number of seconds from 0 to {MAX_TIMEOUT}, got {}",
                    describe(v)
                ),
            );
            None
        }
    }
}

pub(crate) fn read_power_state(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<PowerState> {
    let map = match v {
        Value::Null => return None,
        Value::Mapping(m) => m,
        other => {
            r.error(path, format!("expected a map, got {}", describe(other)));
            return None;
        }
    };
    let mut mode = None;
    let mut delay = Some(0);
    let mut message = None;
    let mut timeout = Some(DEFAULT_TIMEOUT);
    let mut condition = Some(Condition::Static(true));
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        match key.as_str() {
            "mode" => {
                mode = match val.as_str() {
                    Some("poweroff") => Some(PowerMode::Poweroff),
                    Some("reboot") => Some(PowerMode::Reboot),
                    Some("halt") => Some(PowerMode::Halt),
                    _ => {
                        r.error(
                            &p,
                            format!("expected poweroff, reboot or halt, got {}", describe(val)),
                        );
                        return None;
                    }
                }
            }
            "delay" => delay = read_delay(r, &p, val),
            "message" => {
                message = r.opt_string(&p, val);
                if let Some(m) = &message {
                    // Broadcast to terminals: no escape sequences; and never taken for an option.
                    if m.chars().any(char::is_control)
                        || m.starts_with('-')
                        || m.len() > MAX_MESSAGE
                    {
                        r.error(
                            &p,
                            format!(
                                "a message of at most {MAX_MESSAGE} bytes with no control \
                                 characters, not starting with '-'"
                            ),
                        );
                        return None;
                    }
                }
            }
            "timeout" => timeout = read_timeout(r, &p, val),
            "condition" => {
                condition = match val {
                    Value::Bool(_) => yaml11_bool(val).map(Condition::Static),
                    Value::String(s) if !s.trim().is_empty() => Some(Condition::Shell(s.clone())),
                    Value::Sequence(_) => {
                        let argv = r.string_or_list(&p, val);
                        (!argv.is_empty()).then_some(Condition::Argv(argv))
                    }
                    _ => None,
                };
                if condition.is_none() {
                    r.error(
                        &p,
                        format!(
                            "expected true, false, a command string or an argv list, got {}",
                            describe(val)
                        ),
                    );
                }
            }
            _ => r.warn(&p, "unknown key (ignored)"),
        }
    }
    let Some(mode) = mode else {
        r.error(
            &child(path, "mode"),
            "required: poweroff, reboot or halt; no power change",
        );
        return None;
    };
    // A bad value anywhere means no power change at all: a reboot now instead of the
    // intended delay, or without its condition, would be worse than none.
    Some(PowerState {
        mode,
        delay_minutes: delay?,
        message,
        timeout: timeout?,
        condition: condition?,
    })
}

/// The module in the registry ([`super::MODULES`]).
pub struct PowerStateModule;

impl super::Module for PowerStateModule {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["power_state"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let _ = run;
        plan(inp, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Option<PowerState>, Vec<String>) {
        crate::cloudconfig::lenient::read_for_test(text, "power_state", read_power_state)
    }

    #[test]
    fn delays_as_cloud_init_takes_them() {
        for (text, minutes) in [
            ("{mode: reboot}", 0),
            ("{mode: reboot, delay: now}", 0),
            ("{mode: reboot, delay: '+5'}", 5),
            ("{mode: reboot, delay: 30}", 30),
            ("{mode: reboot, delay: '7'}", 7),
        ] {
            let (ps, problems) = read(text);
            assert_eq!(ps.map(|p| p.delay_minutes), Some(minutes), "{text}");
            assert!(problems.is_empty(), "{text}: {problems:?}");
        }
    }

    #[test]
    fn bad_values_are_named_and_nothing_is_planned() {
        for (text, path, what) in [
            ("{mode: reboot, delay: later}", "power_state.delay", "later"),
            ("{mode: reboot, delay: NOW}", "power_state.delay", "NOW"),
            ("{mode: reboot, delay: -5}", "power_state.delay", "-5"),
            ("{mode: sleep}", "power_state.mode", "sleep"),
            ("{delay: now}", "power_state.mode", "required"),
            ("{mode: halt, timeout: soon}", "power_state.timeout", "soon"),
            ("{mode: halt, timeout: -1}", "power_state.timeout", "-1"),
            ("{mode: halt, condition: 3}", "power_state.condition", "3"),
            (
                "{mode: halt, message: \"a\\u001b[2Jb\"}",
                "power_state.message",
                "control",
            ),
            ("{mode: halt, message: '-r'}", "power_state.message", "'-'"),
            ("[reboot]", "power_state", "a list"),
        ] {
            let (ps, problems) = read(text);
            assert_eq!(ps, None, "{text}");
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(&format!("{path}: ")) && p.contains(what)),
                "{text}: {problems:?}"
            );
        }
    }

    #[test]
    fn conditions_and_timeout() {
        let (ps, _) = read("{mode: poweroff, condition: test -f /x, timeout: 2.5, message: Bye}");
        let ps = ps.unwrap();
        assert_eq!(ps.condition, Condition::Shell("test -f /x".into()));
        assert_eq!(ps.timeout, 3);
        assert_eq!(ps.message.as_deref(), Some("Bye"));
        let (ps, _) = read("{mode: poweroff, condition: [test, -f, /x]}");
        assert_eq!(
            ps.unwrap().condition,
            Condition::Argv(vec!["test".into(), "-f".into(), "/x".into()])
        );
        let (ps, _) = read("{mode: poweroff, condition: false}");
        assert_eq!(ps.unwrap().condition, Condition::Static(false));
        let (ps, _) = read("{mode: poweroff}");
        assert_eq!(ps.unwrap().timeout, DEFAULT_TIMEOUT);
    }
}
