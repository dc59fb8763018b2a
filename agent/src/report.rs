//! Status events to MAAS (maas-protocol.md §4): what cloud-init's webhook reporter sends, so
//! MAAS shows progress in its event log and *Failed deployment* with the reason at once when a
//! top-level stage finishes with FAIL. Events are signed like every request, ASCII-only JSON with
//! numeric timestamps. What cannot be delivered is queued on disk and sent first next time —
//! later in the run or on the next boot.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{json, Value};
use wisp_datasources::maas::Maas;
use wisp_datasources::retry::RetryPolicy;

use crate::state::StateDir;

pub const QUEUE: &str = "events.queue";
/// The queue never grows beyond this many events (the oldest are dropped, and said so).
const MAX_QUEUED: usize = 500;

/// JSON with every non-ASCII character escaped (`\u00e9`, surrogate pairs beyond the BMP):
/// MAAS answers 400 to anything else.
pub fn ascii_json(v: &Value) -> String {
    let raw = v.to_string();
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// A result as MAAS takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Outcome {
    #[serde(rename = "SUCCESS")]
    Success,
    #[serde(rename = "WARN")]
    Warn,
    #[serde(rename = "FAIL")]
    Fail,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "SUCCESS",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
        }
    }

    pub fn worst(self, other: Outcome) -> Outcome {
        use Outcome::*;
        match (self, other) {
            (Fail, _) | (_, Fail) => Fail,
            (Warn, _) | (_, Warn) => Warn,
            _ => Success,
        }
    }
}

/// Where events go. Without MAAS (NoCloud, ConfigDrive) nothing is sent.
pub struct Reporter {
    target: Option<(Maas, String)>,
    state: StateDir,
    policy: RetryPolicy,
}

impl Reporter {
    pub fn new(target: Option<(Maas, String)>, state: StateDir) -> Reporter {
        // Reporting must never hold the boot: a short, bounded try per event.
        let policy =
            RetryPolicy::new(Duration::from_secs(10), Duration::from_secs(5)).with_max_attempts(2);
        Reporter {
            target,
            state,
            policy,
        }
    }

    pub fn endpoint(&self) -> Option<&str> {
        self.target.as_ref().map(|(_, url)| url.as_str())
    }

    pub fn start(&mut self, name: &str, description: &str) {
        self.send(json!({
            "name": name,
            "description": description,
            "event_type": "start",
            "origin": "cloudinit",
            "timestamp": now(),
        }));
    }

    /// `log`: a file to attach (MAAS shows it with the installation results).
    pub fn finish(
        &mut self,
        name: &str,
        description: &str,
        result: Outcome,
        log: Option<(&str, &[u8])>,
    ) {
        let mut event = json!({
            "name": name,
            "description": description,
            "event_type": "finish",
            "origin": "cloudinit",
            "timestamp": now(),
            "result": result.as_str(),
        });
        if let Some((path, content)) = log {
            event["files"] = json!([{
                "path": path,
                "encoding": "base64",
                "content": base64::engine::general_purpose::STANDARD.encode(content),
            }]);
        }
        self.send(event);
    }

    fn queued(&self) -> Vec<String> {
        self.state
            .read(QUEUE)
            .ok()
            .flatten()
            .map(|d| {
                String::from_utf8_lossy(&d)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn save_queue(&self, events: &[String]) {
        let result = if events.is_empty() {
            self.state.remove(QUEUE)
        } else {
            let start = events.len().saturating_sub(MAX_QUEUED);
            if start > 0 {
                tracing::warn!(dropped = start, "event queue full; oldest events dropped");
            }
            self.state
                .write(QUEUE, (events[start..].join("\n") + "\n").as_bytes())
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot save the event queue");
        }
    }

    /// Sends queued events, oldest first, stopping at the first that fails. Returns how many
    /// are still queued.
    pub fn flush(&self) -> usize {
        let mut queue = self.queued();
        if queue.is_empty() {
            return 0;
        }
        let Some((maas, url)) = &self.target else {
            return queue.len();
        };
        let mut sent = 0;
        for body in &queue {
            match maas.signed_post(url, "application/json", body.as_bytes(), &self.policy) {
                Ok(_) => sent += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "MAAS did not take a queued event; kept for later");
                    break;
                }
            }
        }
        queue.drain(..sent);
        self.save_queue(&queue);
        queue.len()
    }

    fn send(&mut self, event: Value) {
        let body = ascii_json(&event);
        let name = event["name"].as_str().unwrap_or("").to_string();
        if self.target.is_none() {
            return;
        }
        // Order matters to MAAS (a finish after its start): the queue goes first.
        let queue_clear = self.queued().is_empty() || self.flush() == 0;
        let Some((maas, url)) = &self.target else {
            return;
        };
        let delivered = if queue_clear {
            match maas.signed_post(url, "application/json", body.as_bytes(), &self.policy) {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(event = %name, error = %e, "MAAS did not take the event; queued");
                    false
                }
            }
        } else {
            false
        };
        if !delivered {
            let mut queue = self.queued();
            queue.push(body);
            self.save_queue(&queue);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_ascii_with_escapes() {
        let v = json!({"description": "café ☕ 𝄞", "timestamp": 1.5});
        let s = ascii_json(&v);
        assert!(s.is_ascii(), "{s}");
        assert!(s.contains("caf\\u00e9 \\u2615 \\ud834\\udd1e"), "{s}");
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
        assert!(back["timestamp"].is_number());
    }

    #[test]
    fn worst_result_wins() {
        use Outcome::*;
        assert_eq!(Success.worst(Warn), Warn);
        assert_eq!(Warn.worst(Fail), Fail);
        assert_eq!(Success.worst(Success), Success);
    }
}
