//! A mock of the MAAS metadata service, faithful to `maas-protocol.md` §2–4, for wisp's tests
//! and for operators checking an image: OAuth PLAINTEXT checks (300 s threshold, nonce reuse,
//! signature, version), the anonymous enlistment fallback, the trailing-slash fall-through, the
//! user-data side effect (Deploying → Deployed), the status endpoint, and the legacy signal op.
//!
//! Faults can be injected: a server clock offset, N answers of 503 with `Retry-After`, dropped
//! connections, slow answers, gzip answers. Tests read the request log, the events and the
//! machines' state.
//!
//! ```no_run
//! let mock = mock_maas::MockMaas::start(mock_maas::MachinesFile::default()).unwrap();
//! println!("{}", mock.metadata_url());
//! ```

pub mod machines;
pub mod metadata;
pub mod post_sink;
pub mod roots;
pub mod server;

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use machines::{Machine, MachineSpec, MachineStatus, MachinesFile};
pub use metadata::TimestampCheck;

/// Faults to inject. Counters go down as they are used.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The server's clock is ours plus this many seconds (timestamps checked and `Date` sent).
    pub clock_offset_secs: i64,
    /// The next N requests get `503 Service Unavailable`.
    pub fail_503: u32,
    /// `Retry-After` (seconds) on those 503s.
    pub retry_after_secs: Option<u64>,
    /// The next N connections are closed without an answer.
    pub drop_connections: u32,
    /// Every answer waits this long first.
    pub delay_ms: u64,
    /// Requests whose path ends with one of these get `503` every time (an item MAAS keeps
    /// failing while the others answer).
    pub fail_paths: Vec<String>,
    /// Answer with `Content-Encoding: gzip` when the client accepts it (MAAS ≤ 3.0).
    pub gzip: bool,
    pub timestamp_check: TimestampCheck,
    /// Answer every GET with `302 Found` to this base URL plus the path asked (a hijacked or
    /// misconfigured proxy sending the machine to another host).
    pub redirect_to: Option<String>,
    /// Answer every GET with `200 OK` and an HTML page (a captive portal).
    pub html: bool,
    /// Drop the `Authorization` header before MAAS sees it, as a misbehaving proxy would: MAAS
    /// then answers with enlistment data.
    pub strip_authorization: bool,
}

/// One request as the mock saw it.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The answer's status; 0 for a dropped connection.
    pub status: u16,
    pub oauth: metadata::OAuthSeen,
    pub accept_encoding: Option<String>,
    pub user_agent: Option<String>,
    pub body: String,
}

/// Called with the system id when a machine GETs its user-data (the moment MAAS marks it
/// Deployed), before the answer goes out: tests look at the machine then.
pub type UserDataHook = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
struct State {
    machines: Vec<Machine>,
    user_tokens: Vec<machines::UserToken>,
    files: BTreeMap<String, String>,
    enlistment_user_data: String,
    faults: Faults,
    nonces: HashSet<(String, String)>,
    log: Vec<LoggedRequest>,
    state_file: Option<std::path::PathBuf>,
    user_data_hook: Option<UserDataHook>,
}

/// A running mock. Stops when dropped.
pub struct MockMaas {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MockMaas {
    /// Starts on an ephemeral loopback port.
    pub fn start(file: MachinesFile) -> anyhow::Result<MockMaas> {
        Self::start_on("127.0.0.1:0".parse()?, file)
    }

    pub fn start_on(addr: SocketAddr, file: MachinesFile) -> anyhow::Result<MockMaas> {
        let machines = file
            .machines
            .iter()
            .map(Machine::from_spec)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let state = State {
            machines,
            user_tokens: file.user_tokens,
            files: file.files,
            enlistment_user_data: file
                .enlistment_user_data
                .unwrap_or_else(|| "#!/bin/sh\necho 'MAAS enlistment script'\n".into()),
            ..Default::default()
        };
        Self::serve(addr, Arc::new(Mutex::new(state)))
    }

    fn serve(addr: SocketAddr, state: Arc<Mutex<State>>) -> anyhow::Result<MockMaas> {
        let (addr, stop, thread) = Self::listen(addr, state.clone())?;
        Ok(MockMaas {
            addr,
            state,
            stop,
            thread: Some(thread),
        })
    }

    fn listen(
        addr: SocketAddr,
        state: Arc<Mutex<State>>,
    ) -> anyhow::Result<(SocketAddr, Arc<AtomicBool>, JoinHandle<()>)> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = conn else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || handle_connection(stream, &state));
                }
            })
        };
        Ok((addr, stop, thread))
    }

    /// Stops listening (the port refuses connections) but keeps the state, so that a test can
    /// bring the same service back with [`MockMaas::restart`].
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Listens again on the same address with the same state.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let (_, stop, thread) = Self::listen(self.addr, self.state.clone())?;
        self.stop = stop;
        self.thread = Some(thread);
        Ok(())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>/MAAS/metadata/`.
    pub fn metadata_url(&self) -> String {
        format!("http://{}/MAAS/metadata/", self.addr)
    }

    /// The reporting endpoint of a machine.
    pub fn status_url(&self, system_id: &str) -> String {
        format!("{}status/{system_id}", self.metadata_url())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the state as JSON to `path` now and after every request.
    pub fn set_state_file(&mut self, path: std::path::PathBuf) {
        let mut s = self.lock();
        s.state_file = Some(path);
        save_state(&s);
    }

    pub fn on_user_data(&self, hook: UserDataHook) {
        self.lock().user_data_hook = Some(hook);
    }

    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    pub fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.lock().faults);
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    pub fn machine(&self, system_id: &str) -> Option<Machine> {
        self.lock()
            .machines
            .iter()
            .find(|m| m.system_id == system_id)
            .cloned()
    }

    pub fn status(&self, system_id: &str) -> Option<MachineStatus> {
        self.machine(system_id).map(|m| m.status)
    }

    pub fn events(&self, system_id: &str) -> Vec<serde_json::Value> {
        self.machine(system_id)
            .map(|m| m.events)
            .unwrap_or_default()
    }

    /// The whole state as served at `/_mock/state`.
    pub fn snapshot(&self) -> serde_json::Value {
        snapshot(&self.lock())
    }
}

impl Drop for MockMaas {
    fn drop(&mut self) {
        self.stop();
    }
}

fn snapshot(s: &State) -> serde_json::Value {
    serde_json::json!({
        "machines": s.machines,
        "requests": s.log,
        "faults": s.faults,
    })
}

fn save_state(s: &State) {
    if let Some(path) = &s.state_file {
        let tmp = path.with_extension("tmp");
        let body = serde_json::to_vec_pretty(&snapshot(s)).unwrap_or_default();
        if std::fs::write(&tmp, body).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

fn handle_connection(mut stream: TcpStream, state: &Mutex<State>) {
    let Some(mut req) = server::read_request(&mut stream) else {
        return;
    };
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    if req.path == "/_mock/state" {
        let body = serde_json::to_vec_pretty(&snapshot(&lock())).unwrap_or_default();
        let resp = server::HttpResponse::new(200, "application/json", body);
        server::write_response(
            &mut stream,
            &resp,
            &httpdate::fmt_http_date(SystemTime::now()),
        );
        return;
    }
    let (redirect_to, html) = {
        let s = lock();
        (s.faults.redirect_to.clone(), s.faults.html)
    };
    let (delay, drop_it, fail, offset, gzip, check, strip) = {
        let mut s = lock();
        let f = &mut s.faults;
        let drop_it = f.drop_connections > 0;
        if drop_it {
            f.drop_connections -= 1;
        }
        let fail = !drop_it && f.fail_503 > 0;
        if fail {
            f.fail_503 -= 1;
        }
        let fail =
            fail || (!drop_it && f.fail_paths.iter().any(|p| req.path.ends_with(p.as_str())));
        (
            Duration::from_millis(f.delay_ms),
            drop_it,
            fail.then_some(f.retry_after_secs),
            f.clock_offset_secs,
            f.gzip,
            f.timestamp_check,
            f.strip_authorization,
        )
    };
    let seen = metadata::OAuthSeen::from_request(&req);
    if strip {
        req.headers.retain(|(n, _)| n != "authorization");
    }
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let server_now = if offset >= 0 {
        SystemTime::now() + Duration::from_secs(offset as u64)
    } else {
        SystemTime::now() - Duration::from_secs(offset.unsigned_abs())
    };
    // The hook runs outside the lock, before the machine hears back.
    let hook = {
        let s = lock();
        s.user_data_hook.clone()
    };
    if let Some(hook) = hook {
        if req.method == "GET" && req.path.ends_with("/user-data") {
            let token = seen.token.clone().unwrap_or_default();
            let system_id = lock()
                .machines
                .iter()
                .find(|m| m.token_key == token)
                .map(|m| m.system_id.clone());
            if let Some(id) = system_id {
                hook(&id);
            }
        }
    }
    let get = req.method == "GET";
    let resp = if drop_it {
        None
    } else if let (true, Some(to)) = (get, &redirect_to) {
        let location = format!("{}{}", to.trim_end_matches('/'), req.path);
        Some(server::HttpResponse::text(302, "Found").header("Location", location))
    } else if get && html {
        Some(server::HttpResponse::new(
            200,
            "text/html; charset=utf-8",
            "<!DOCTYPE html>\n<html><body><p>Please log in to use this network.</p></body></html>\n",
        ))
    } else if let Some(retry_after) = fail {
        let mut r = server::HttpResponse::text(503, "Service Unavailable");
        if let Some(s) = retry_after {
            r = r.header("Retry-After", s.to_string());
        }
        Some(r)
    } else {
        let mut s = lock();
        let s = &mut *s;
        let mut api = metadata::Api {
            machines: &mut s.machines,
            user_tokens: &s.user_tokens,
            nonces: &mut s.nonces,
            files: &s.files,
            enlistment_user_data: &s.enlistment_user_data,
            server_now,
            timestamp_check: check,
        };
        Some(api.handle(&req))
    };
    let accept = req.header("accept-encoding").map(str::to_string);
    let resp = resp.map(|mut r| {
        if gzip && r.status == 200 && accept.as_deref().is_some_and(|a| a.contains("gzip")) {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            if enc.write_all(&r.body).is_ok() {
                if let Ok(z) = enc.finish() {
                    r.body = z;
                    r.headers.push(("Content-Encoding".into(), "gzip".into()));
                }
            }
        }
        r
    });
    let mut s = lock();
    s.log.push(LoggedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        status: resp.as_ref().map_or(0, |r| r.status),
        oauth: seen,
        accept_encoding: accept,
        user_agent: req.header("user-agent").map(str::to_string),
        body: String::from_utf8_lossy(&req.body).into_owned(),
    });
    save_state(&s);
    drop(s);
    match resp {
        Some(r) => server::write_response(&mut stream, &r, &httpdate::fmt_http_date(server_now)),
        None => server::drop_connection(&mut stream),
    }
}
