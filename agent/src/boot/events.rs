//! Status events (maas-protocol.md §4): what cloud-init's webhook reporter sends, so MAAS shows
//! progress in its event log and *Failed deployment* with the reason at once when a top-level
//! stage finishes with FAIL.
//!
//! The sink is chosen once, when a boot starts, and nothing else in wisp posts to MAAS:
//! - [`EventSink::Maas`]: events go to MAAS from background senders, so the boot never waits for
//!   a far MAAS answering each one; [`EventSink::flush`] waits for them before a stage ends.
//! - [`EventSink::Print`]: `--dry-run` only logs what would be sent (a dry run changes nothing
//!   in MAAS — no event, and never the FAIL that would mark the machine *Failed*).
//! - [`EventSink::None`]: no MAAS (NoCloud, ConfigDrive).
//!
//! Order: events carry their own timestamp (MAAS stores it), so they need not arrive in order,
//! except where it means something: a `finish` after its `start` (one name is never in flight
//! twice), a top-level `finish` after all of its children, and events left from an earlier run
//! before any new one. Several senders work at once within those rules.
//!
//! Nothing is lost: each event is appended to `events.queue` before it is handed to a sender,
//! and each delivery to `events.sent` (appends, no fsync: a killed process loses nothing; only a
//! power cut may, and then MAAS gets a duplicate at worst). Whatever is left undelivered goes
//! first next time — later in the run or at the next boot.
//!
//! The guarantee, for a run killed at any point: every queued event reaches MAAS once — except
//! one whose POST was in flight when wisp died (MAAS may have stored it, and the answer never
//! came back): it is sent again, so it may arrive twice. MAAS does not deduplicate, and nothing
//! can tell a POST that reached it from one that did not; a lost event (a stage's FAIL) would be
//! worse than a repeated one. The delivery is recorded right after MAAS answers, so the window
//! is the length of one request.
//!
//! A module's start whose finish an interrupted run never queued stays *open* (the queue's own
//! lines say so, and [`QUEUE`] keeps `open` lines across rewrites): the next run that reaches
//! the module's place finishes it ([`EventSink::left_open`]). The finish line itself closes it, so
//! no second write can be lost in between.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{json, Value};
use wisp_datasources::maas::Maas;
use wisp_datasources::retry::RetryPolicy;
use wisp_datasources::DatasourceError;

use crate::report::{ascii_json, Outcome};
use crate::state::StateDir;

/// Events not yet delivered, one per line: `ID<TAB>JSON`.
pub const QUEUE: &str = "events.queue";
/// IDs of queued events that MAAS has taken, one per line.
pub const SENT: &str = "events.sent";
/// A queue line that is no event: a module start of an earlier run still waiting for its finish.
const OPEN: &str = "open";
/// The queue never grows beyond this many events (the oldest are dropped, and said so).
const MAX_QUEUED: usize = 500;
/// Senders working at once: enough that a far MAAS (100 ms an answer) keeps up with a boot.
const SENDERS: usize = 8;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// One status event, ready to send.
#[derive(Debug, Clone)]
struct Event {
    /// The order events were made in (those of earlier runs first).
    seq: u64,
    id: String,
    name: String,
    finish: bool,
    body: String,
    /// Left from an earlier run: sent first, one at a time, in their order.
    old: bool,
}

impl Event {
    fn top_level(&self) -> bool {
        !self.name.contains('/')
    }

    /// Whether this event may go while `earlier` (queued before it) is not delivered yet.
    fn may_pass(&self, earlier: &Event) -> bool {
        if earlier.old {
            return false;
        }
        if earlier.name == self.name {
            return false;
        }
        let child_of_self = earlier
            .name
            .strip_prefix(self.name.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
        !(self.finish && self.top_level() && child_of_self)
    }
}

/// The longest event description sent, in bytes: a module's errors (thousands of package
/// names, say) would otherwise make an event MAAS stores and shows whole.
pub const MAX_DESCRIPTION: usize = 4096;

/// `description` cut to [`MAX_DESCRIPTION`] bytes (at a character boundary), saying how much
/// was left out.
pub fn bounded_description(description: &str) -> std::borrow::Cow<'_, str> {
    if description.len() <= MAX_DESCRIPTION {
        return description.into();
    }
    // Room for the note.
    let mut end = MAX_DESCRIPTION - 128;
    while !description.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{} … ({} bytes more; the whole text is in the log and results)",
        &description[..end],
        description.len() - end
    )
    .into()
}

/// Where events go; see the module documentation.
pub enum EventSink {
    None,
    Print,
    Maas(Sender),
}

impl EventSink {
    pub fn start(&self, name: &str, description: &str) {
        self.emit(json!({
            "name": name,
            "description": bounded_description(description),
            "event_type": "start",
            "origin": "cloudinit",
            "timestamp": now(),
        }));
    }

    /// `log`: a file to attach (MAAS shows it with the installation results).
    pub fn finish(
        &self,
        name: &str,
        description: &str,
        result: Outcome,
        log: Option<(&str, &[u8])>,
    ) {
        let mut event = json!({
            "name": name,
            "description": bounded_description(description),
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
        self.emit(event);
    }

    fn emit(&self, event: Value) {
        match self {
            EventSink::None => {}
            EventSink::Print => tracing::info!(
                "dry run: would report {} {}{}: {}",
                event["event_type"].as_str().unwrap_or(""),
                event["name"].as_str().unwrap_or(""),
                event["result"]
                    .as_str()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default(),
                event["description"].as_str().unwrap_or("")
            ),
            EventSink::Maas(s) => s.push(&event),
        }
    }

    /// Whether events go to MAAS and where (None until the endpoint is known).
    pub fn endpoint(&self) -> Option<String> {
        match self {
            EventSink::Maas(s) => s.lock().target.as_ref().map(|(_, url)| url.clone()),
            _ => None,
        }
    }

    /// Names the endpoint once it is known (MAAS: after the metadata gave the system id).
    pub fn set_target(&self, maas: Maas, url: String) {
        if let EventSink::Maas(s) = self {
            s.set_target(maas, url);
        }
    }

    /// A new stage: MAAS may be reachable now (the network is up) even if it was not before.
    pub fn stage_begins(&self) {
        if let EventSink::Maas(s) = self {
            let mut g = s.lock();
            g.down = false;
            drop(g);
            s.shared.wake.notify_all();
        }
    }

    /// The module events under `parent` (`parent/config-x`) that an earlier, interrupted run
    /// started and never finished, and that this run has not started again: the caller
    /// finishes them. Only MAAS keeps them (elsewhere no event is sent).
    pub fn left_open(&self, parent: &str) -> Vec<String> {
        let EventSink::Maas(s) = self else {
            return Vec::new();
        };
        s.lock()
            .left_open
            .iter()
            .filter(|n| {
                n.strip_prefix(parent)
                    .is_some_and(|rest| rest.starts_with('/'))
            })
            .cloned()
            .collect()
    }

    /// Waits (at most `limit`) until every top-level FAIL is delivered.
    pub fn deliver_failures(&self, limit: Duration) {
        if let EventSink::Maas(s) = self {
            s.deliver_failures(limit);
        }
    }

    /// Waits (at most `limit`) until every event is delivered; what is left stays queued on
    /// disk. Returns how many are left.
    pub fn flush(&self, limit: Duration) -> usize {
        match self {
            EventSink::Maas(s) => s.flush(limit),
            _ => 0,
        }
    }
}

struct Inner {
    target: Option<(Arc<Maas>, String)>,
    pending: VecDeque<Event>,
    in_flight: Vec<Event>,
    /// MAAS did not take an event: stop trying until the next stage or flush.
    down: bool,
    senders: usize,
    next_id: u64,
    /// Module events (`parent/config-x`) started and not finished, in the order they started.
    open: Vec<String>,
    /// Those of them an earlier run left, and this one has neither started nor finished yet.
    left_open: Vec<String>,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Signalled on every change of `inner`.
    wake: Condvar,
    state: StateDir,
    policy: RetryPolicy,
    run_id: String,
}

/// The background senders for MAAS.
pub struct Sender {
    shared: Arc<Shared>,
}

impl Sender {
    /// A sender that keeps its queue in `state`; events queued by an earlier run go first.
    pub fn new(state: StateDir) -> Sender {
        // Reporting must never hold the boot: a short, bounded try per event.
        let policy =
            RetryPolicy::new(Duration::from_secs(10), Duration::from_secs(5)).with_max_attempts(2);
        let (old, open) = load_queue(&state);
        let next_id = old.len() as u64;
        let run_id = wisp_datasources::oauth::new_nonce();
        Sender {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    target: None,
                    pending: old.into(),
                    in_flight: Vec::new(),
                    down: false,
                    senders: 0,
                    next_id,
                    left_open: open.clone(),
                    open,
                }),
                wake: Condvar::new(),
                state,
                policy,
                run_id,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_target(&self, maas: Maas, url: String) {
        let mut g = self.lock();
        g.target = Some((Arc::new(maas), url));
        while g.senders < SENDERS {
            g.senders += 1;
            let shared = self.shared.clone();
            std::thread::spawn(move || send_loop(&shared));
        }
        drop(g);
        self.shared.wake.notify_all();
    }

    fn push(&self, event: &Value) {
        let body = ascii_json(event);
        let mut g = self.lock();
        g.next_id += 1;
        let e = Event {
            seq: g.next_id,
            id: format!("{}-{}", self.shared.run_id, g.next_id),
            name: event["name"].as_str().unwrap_or("").to_string(),
            finish: event["event_type"] == "finish",
            body,
            old: false,
        };
        if e.name.contains('/') {
            g.left_open.retain(|n| n != &e.name);
            g.open.retain(|n| n != &e.name);
            if !e.finish {
                g.open.push(e.name.clone());
            }
        }
        append(
            &self.shared.state,
            QUEUE,
            &format!("{}\t{}\n", e.id, e.body),
        );
        g.pending.push_back(e);
        drop(g);
        self.shared.wake.notify_all();
    }

    /// Waits until `done` holds for what is left (or `limit` passes). A MAAS that refused
    /// is tried again after a growing pause, within the limit; sends in flight are waited for.
    fn wait_until(&self, limit: Duration, done: impl Fn(&Inner) -> bool) -> MutexGuard<'_, Inner> {
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_millis(250);
        let mut g = self.lock();
        g.down = false;
        self.shared.wake.notify_all();
        while g.target.is_some() && !done(&g) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if g.down && g.in_flight.is_empty() {
                // MAAS did not take the last try: wait a little, then once more.
                drop(g);
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(Duration::from_secs(5));
                g = self.lock();
                g.down = false;
                self.shared.wake.notify_all();
                continue;
            }
            g = self
                .shared
                .wake
                .wait_timeout(g, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        g
    }

    fn flush(&self, limit: Duration) -> usize {
        let g = self.wait_until(limit, |g| g.pending.is_empty() && g.in_flight.is_empty());
        // Whatever is not delivered, in flight included (it may arrive twice, never not at
        // all), is what the queue holds now.
        let mut left: Vec<Event> = g.in_flight.clone();
        left.extend(g.pending.iter().cloned());
        save_queue(&self.shared.state, &left, &g.open);
        left.len()
    }

    /// Waits (at most `limit`) until no top-level FAIL is undelivered: MAAS must hear that a
    /// stage failed before the user-data request marks the machine Deployed.
    fn deliver_failures(&self, limit: Duration) {
        let failing =
            |e: &Event| e.finish && e.top_level() && e.body.contains("\"result\":\"FAIL\"");
        drop(self.wait_until(limit, |g| {
            !g.pending.iter().chain(g.in_flight.iter()).any(failing)
        }));
    }
}

/// One sender: takes the first event that may go, sends it, and records the delivery.
fn send_loop(shared: &Shared) {
    let mut g = shared
        .inner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let pick = if g.down { None } else { next_ready(&g) };
        let Some(i) = pick else {
            g = shared
                .wake
                .wait(g)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            continue;
        };
        let Some(event) = g.pending.remove(i) else {
            continue;
        };
        g.in_flight.push(event.clone());
        let Some((maas, url)) = g.target.clone() else {
            continue;
        };
        drop(g);
        let result = maas.signed_post(
            &url,
            "application/json",
            event.body.as_bytes(),
            &shared.policy,
        );
        g = shared
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        g.in_flight.retain(|e| e.id != event.id);
        match result {
            Ok(_) => {
                tracing::debug!(event = %event.name, "event delivered");
                append(&shared.state, SENT, &format!("{}\n", event.id));
            }
            // Refused for good (a malformed event, a token MAAS does not know): trying again
            // cannot help, and it must not hold back every event after it.
            Err(DatasourceError::Fetch(e)) if !e.is_transient() => {
                tracing::warn!(event = %event.name, error = %e, "MAAS refused the event; dropped");
                append(&shared.state, SENT, &format!("{}\n", event.id));
            }
            Err(e) => {
                if !g.down {
                    tracing::warn!(event = %event.name, error = %e, "MAAS did not take the event; kept for later");
                }
                g.down = true;
                // Back in its place: before every event that came after it.
                let at = g
                    .pending
                    .iter()
                    .position(|p| p.seq > event.seq)
                    .unwrap_or(g.pending.len());
                g.pending.insert(at, event);
            }
        }
        shared.wake.notify_all();
    }
}

/// The index of the first pending event that no earlier undelivered event holds back.
fn next_ready(g: &Inner) -> Option<usize> {
    if g.in_flight.iter().any(|e| e.old) {
        return None;
    }
    for (i, e) in g.pending.iter().enumerate() {
        let earlier = g.pending.iter().take(i).chain(g.in_flight.iter());
        if earlier.clone().all(|x| e.may_pass(x)) {
            return Some(i);
        }
    }
    None
}

fn append(state: &StateDir, name: &str, line: &str) {
    let result = state.append(name, line.as_bytes());
    if let Err(e) = result {
        tracing::warn!(file = name, error = %e, "cannot record an event on disk");
    }
}

/// The events an earlier run left (the queue less what was sent), and the module events it left
/// open: `open` lines, and module starts with no finish after them.
fn load_queue(state: &StateDir) -> (Vec<Event>, Vec<String>) {
    let text = |name| {
        state
            .read(name)
            .ok()
            .flatten()
            .map(|d| String::from_utf8_lossy(&d).into_owned())
            .unwrap_or_default()
    };
    let sent: HashSet<String> = text(SENT).lines().map(str::to_string).collect();
    let mut out = Vec::new();
    let mut open: Vec<String> = Vec::new();
    for (n, line) in text(QUEUE).lines().enumerate() {
        // Lines of older versions are the JSON alone.
        let (id, body) = match line.split_once('\t') {
            Some((id, body)) if !line.starts_with('{') => (id.to_string(), body),
            _ => (format!("old-{n}"), line),
        };
        if id == OPEN {
            if !body.is_empty() && !open.iter().any(|o| o == body) {
                open.push(body.to_string());
            }
            continue;
        }
        if body.is_empty() {
            continue;
        }
        let name = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v["name"].as_str().map(str::to_string))
            .unwrap_or_default();
        let finish = body.contains("\"event_type\":\"finish\"");
        // Sent or not: the journal says which module events were started and finished.
        if name.contains('/') {
            open.retain(|o| o != &name);
            if !finish {
                open.push(name.clone());
            }
        }
        if sent.contains(&id) {
            continue;
        }
        out.push(Event {
            seq: out.len() as u64,
            id,
            finish,
            name,
            body: body.to_string(),
            old: true,
        });
    }
    (out, open)
}

/// Rewrites the queue as the `open` module events and `events` (the sent list is then empty).
fn save_queue(state: &StateDir, events: &[Event], open: &[String]) {
    let start = events.len().saturating_sub(MAX_QUEUED);
    if start > 0 {
        tracing::warn!(dropped = start, "event queue full; oldest events dropped");
    }
    let result = if events.is_empty() && open.is_empty() {
        state.remove(QUEUE)
    } else {
        let mut text: String = open.iter().map(|n| format!("{OPEN}\t{n}\n")).collect();
        text.extend(
            events[start..]
                .iter()
                .map(|e| format!("{}\t{}\n", e.id, e.body)),
        );
        state.write(QUEUE, text.as_bytes())
    }
    .and_then(|()| state.remove(SENT));
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot save the event queue");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: u64, name: &str, finish: bool) -> Event {
        Event {
            seq: id,
            id: format!("r-{id}"),
            name: name.into(),
            finish,
            body: String::new(),
            old: false,
        }
    }

    fn inner(pending: Vec<Event>) -> Inner {
        Inner {
            target: None,
            pending: pending.into(),
            in_flight: Vec::new(),
            down: false,
            senders: 0,
            next_id: 0,
            open: Vec::new(),
            left_open: Vec::new(),
        }
    }

    /// Final review of issue 13 (8): every description is bounded, cut at a character.
    #[test]
    fn a_long_description_is_cut_with_a_note() {
        let short = "config-ntp ran successfully";
        assert_eq!(bounded_description(short), short);
        let long = "é".repeat(10_000);
        let cut = bounded_description(&long);
        assert!(cut.len() <= MAX_DESCRIPTION, "{}", cut.len());
        assert!(
            cut.starts_with("éé") && cut.ends_with("the whole text is in the log and results)")
        );
        assert!(cut.contains("bytes more"), "{cut}");
    }

    #[test]
    fn a_finish_waits_for_its_start_and_a_stage_for_its_children() {
        let mut g = inner(vec![
            ev(1, "init-network", false),
            ev(2, "init-network/config-ssh", false),
            ev(3, "init-network/config-ssh", true),
            ev(4, "init-network", true),
        ]);
        // The stage start and the child start go together; the finishes wait.
        assert_eq!(next_ready(&g), Some(0));
        let first = g.pending.remove(0).unwrap();
        g.in_flight.push(first);
        assert_eq!(next_ready(&g), Some(0));
        let child = g.pending.remove(0).unwrap();
        g.in_flight.push(child);
        assert_eq!(next_ready(&g), None, "both finishes must wait");
        g.in_flight.retain(|e| e.name != "init-network/config-ssh");
        assert_eq!(next_ready(&g), Some(0), "the child's finish may go");
        g.pending.remove(0);
        assert_eq!(next_ready(&g), None, "the stage's start is still in flight");
        g.in_flight.clear();
        assert_eq!(next_ready(&g), Some(0));
    }

    #[test]
    fn events_of_an_earlier_run_go_first_one_at_a_time() {
        let mut old = ev(1, "modules-final", true);
        old.old = true;
        let mut g = inner(vec![old, ev(2, "init-local", false)]);
        assert_eq!(next_ready(&g), Some(0));
        let o = g.pending.remove(0).unwrap();
        g.in_flight.push(o);
        assert_eq!(next_ready(&g), None);
    }

    /// A run killed between a module's start and its finish leaves it open: the next run
    /// learns it from the journal (sent or not), and the open module survives the queue's
    /// rewrite until a finish closes it.
    #[test]
    fn a_module_started_and_never_finished_stays_open_until_finished() {
        let d = tempfile::tempdir().unwrap();
        let state = StateDir::new(&crate::root::Root::new(d.path()), false);
        let line = |id: &str, name: &str, kind: &str| {
            format!("{id}\t{{\"event_type\":\"{kind}\",\"name\":\"{name}\"}}\n")
        };
        let queue = [
            line("r-1", "modules-config", "start"),
            line("r-2", "modules-config/config-ntp", "start"),
            line("r-3", "modules-config/config-ntp", "finish"),
            line("r-4", "modules-config/config-users_groups", "start"),
            line("r-5", "modules-final/config-runcmd", "start"),
        ]
        .concat();
        state.write(QUEUE, queue.as_bytes()).unwrap();
        // Everything but the runcmd start reached MAAS.
        state.write(SENT, b"r-1\nr-2\nr-3\nr-4\n").unwrap();
        let sink = EventSink::Maas(Sender::new(state.clone()));
        assert_eq!(
            sink.left_open("modules-config"),
            ["modules-config/config-users_groups"]
        );
        assert_eq!(
            sink.left_open("modules-final"),
            ["modules-final/config-runcmd"]
        );
        assert!(sink.left_open("modules").is_empty());
        // This run starts users_groups again: it is no longer left for the caller to finish.
        sink.start("modules-config/config-users_groups", "running");
        assert!(sink.left_open("modules-config").is_empty());
        // No MAAS to send to: the queue is rewritten with its events and what is still open.
        assert_eq!(
            sink.flush(Duration::ZERO),
            2,
            "the two starts are not sent yet"
        );
        let text = String::from_utf8(state.read(QUEUE).unwrap().unwrap()).unwrap();
        assert!(
            text.contains("open\tmodules-final/config-runcmd\n"),
            "{text}"
        );
        let next = EventSink::Maas(Sender::new(state.clone()));
        assert_eq!(
            next.left_open("modules-final"),
            ["modules-final/config-runcmd"]
        );
        assert_eq!(
            next.left_open("modules-config"),
            ["modules-config/config-users_groups"]
        );
        // Its finish closes it, in the same line that queues it.
        next.finish("modules-final/config-runcmd", "done", Outcome::Warn, None);
        let after = EventSink::Maas(Sender::new(state));
        assert!(after.left_open("modules-final").is_empty());
    }
}
