//! The retry policy, in one place: exponential backoff with full jitter, `Retry-After` honoured,
//! a per-request timeout and an overall deadline so that the boot never hangs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::error::{DatasourceError, FetchError};

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transient: wait (backoff or `Retry-After`) and try again.
    Retry,
    /// Something was corrected (the clock skew): try again at once.
    RetryNow,
    /// Trying again cannot help.
    Stop,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Overall deadline for all attempts together.
    pub max_wait: Duration,
    /// Timeout of a single request (cut to what is left of `max_wait`).
    pub request_timeout: Duration,
    /// At most this many attempts (None: as many as fit in `max_wait`).
    pub max_attempts: Option<u32>,
    /// First backoff ceiling; doubles with each attempt up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A server's `Retry-After` is honoured up to this long.
    pub max_retry_after: Duration,
    /// What is awaited, for a progress line on the console every [`PROGRESS_EVERY`] while the
    /// wait goes on (a boot must not look hung). None: quiet.
    pub progress: Option<String>,
    /// How often the progress line comes ([`PROGRESS_EVERY`]).
    pub progress_every: Duration,
    /// When the wait began: `max_wait` counts from here, not from this policy's first attempt,
    /// so that several fetches of one datasource share one deadline. None: the first attempt.
    pub started: Option<Instant>,
}

/// How often a long wait says where it is.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The shortest timeout an attempt gets, even when the deadline is nearly spent.
pub const MIN_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

impl RetryPolicy {
    /// cloud-init's MAAS defaults: wait up to 120 s, 50 s per request.
    pub fn new(max_wait: Duration, request_timeout: Duration) -> Self {
        RetryPolicy {
            max_wait,
            request_timeout,
            max_attempts: None,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
            progress: None,
            progress_every: PROGRESS_EVERY,
            started: None,
        }
    }

    /// Counts `max_wait` from `started` (a wait shared with other fetches) instead of from the
    /// first attempt. Once that deadline has passed, one attempt is still made, with a timeout
    /// of at most [`MIN_ATTEMPT_TIMEOUT`].
    pub fn since(mut self, started: Instant) -> Self {
        self.started = Some(started);
        self
    }

    /// Prints a progress line about `what` while the wait lasts.
    pub fn with_progress(mut self, what: impl Into<String>) -> Self {
        self.progress = Some(what.into());
        self
    }

    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// The backoff before attempt `n + 1` after `n` failures: uniform in [0, min(cap, base·2ⁿ⁻¹)].
    pub fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        ceiling.mul_f64(random_unit())
    }

    /// Runs `attempt` (given the timeout for this try) until it succeeds, says stop, runs out of
    /// attempts, or the next wait would cross the deadline.
    pub fn run<T>(
        &self,
        attempt: impl FnMut(Duration) -> Result<T, (FetchError, Verdict)>,
    ) -> Result<T, DatasourceError> {
        let Some(what) = &self.progress else {
            return self.run_quiet(attempt, &AtomicU32::new(0));
        };
        let attempts = AtomicU32::new(0);
        let (stop, stopped) = mpsc::channel::<()>();
        let start = self.started.unwrap_or_else(Instant::now);
        std::thread::scope(|s| {
            let attempts = &attempts;
            // The caller's log goes on in the ticker's thread.
            let log = tracing::dispatcher::get_default(|d| d.clone());
            s.spawn(move || {
                tracing::dispatcher::with_default(&log, || {
                    // Quiet while things go well; a line every few seconds once they do not.
                    while let Err(RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(self.progress_every)
                    {
                        let left = self.max_wait.saturating_sub(start.elapsed());
                        tracing::info!(
                            "waiting for {what}: attempt {}, {}s left",
                            attempts.load(Ordering::Relaxed).max(1),
                            left.as_secs()
                        );
                    }
                })
            });
            // Owned here, so that a panicking attempt drops it and the ticker ends too.
            let stop = stop;
            let result = self.run_quiet(attempt, attempts);
            let _ = stop.send(());
            result
        })
    }

    fn run_quiet<T>(
        &self,
        mut attempt: impl FnMut(Duration) -> Result<T, (FetchError, Verdict)>,
        attempts: &AtomicU32,
    ) -> Result<T, DatasourceError> {
        let start = self.started.unwrap_or_else(Instant::now);
        let deadline = start + self.max_wait;
        let mut failures = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let timeout = self.request_timeout.min(remaining.max(MIN_ATTEMPT_TIMEOUT));
            attempts.store(failures + 1, Ordering::Relaxed);
            let (err, verdict) = match attempt(timeout) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            failures += 1;
            let give_up = |last: FetchError| DatasourceError::GaveUp {
                attempts: failures,
                elapsed: start.elapsed(),
                max_wait: self.max_wait,
                last: Box::new(last),
            };
            if verdict == Verdict::Stop {
                return Err(err.into());
            }
            if self.max_attempts.is_some_and(|max| failures >= max) {
                return Err(give_up(err));
            }
            let delay = match verdict {
                Verdict::RetryNow => Duration::ZERO,
                _ => err
                    .retry_after()
                    .map(|d| d.min(self.max_retry_after))
                    .unwrap_or_else(|| self.backoff(failures)),
            };
            if Instant::now() + delay >= deadline {
                return Err(give_up(err));
            }
            tracing::info!(error = %err, ?delay, attempt = failures, "retrying");
            std::thread::sleep(delay);
        }
    }
}

/// A uniform random number in [0, 1) from the OS's generator.
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> FetchError {
        FetchError::Connect {
            url: "http://x/".into(),
            detail: "refused".into(),
        }
    }

    fn fast(max_wait_ms: u64) -> RetryPolicy {
        let mut p = RetryPolicy::new(
            Duration::from_millis(max_wait_ms),
            Duration::from_millis(100),
        );
        p.base_delay = Duration::from_millis(2);
        p.max_delay = Duration::from_millis(8);
        p
    }

    #[test]
    fn backoff_stays_within_the_growing_ceiling() {
        let p = RetryPolicy::new(Duration::from_secs(60), Duration::from_secs(5));
        for failures in 1..12 {
            let ceiling = (p.base_delay * 2u32.pow(failures - 1)).min(p.max_delay);
            for _ in 0..50 {
                assert!(p.backoff(failures) <= ceiling);
            }
        }
        // Full jitter: the delays are not all the same.
        let samples: Vec<_> = (0..20).map(|_| p.backoff(5)).collect();
        assert!(samples.iter().any(|d| *d != samples[0]));
    }

    #[test]
    fn recovers_after_transient_failures() {
        let mut calls = 0;
        let v = fast(2000)
            .run(|_| {
                calls += 1;
                if calls < 4 {
                    Err((transient(), Verdict::Retry))
                } else {
                    Ok(calls)
                }
            })
            .unwrap();
        assert_eq!(v, 4);
    }

    #[test]
    fn stop_is_final() {
        let mut calls = 0;
        let e = fast(2000)
            .run::<()>(|_| {
                calls += 1;
                Err((transient(), Verdict::Stop))
            })
            .unwrap_err();
        assert_eq!(calls, 1);
        assert!(matches!(e, DatasourceError::Fetch(_)));
    }

    #[test]
    fn deadline_bounds_the_wait() {
        let start = Instant::now();
        let e = fast(150)
            .run::<()>(|_| Err((transient(), Verdict::Retry)))
            .unwrap_err();
        assert!(start.elapsed() < Duration::from_millis(400));
        assert!(
            e.to_string().starts_with("gave up after"),
            "unexpected message: {e}"
        );
    }

    #[test]
    fn attempts_bound_the_tries() {
        let mut calls = 0;
        let _ = fast(5000)
            .with_max_attempts(3)
            .run::<()>(|_| {
                calls += 1;
                Err((transient(), Verdict::Retry))
            })
            .unwrap_err();
        assert_eq!(calls, 3);
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let mut p = fast(5000);
        p.max_retry_after = Duration::from_millis(50);
        let mut times = Vec::new();
        let _ = p.with_max_attempts(2).run::<()>(|_| {
            times.push(Instant::now());
            Err((
                FetchError::Status {
                    url: "u".into(),
                    status: 503,
                    body: String::new(),
                    retry_after: Some(Duration::from_secs(3600)),
                    date: None,
                },
                Verdict::Retry,
            ))
        });
        let gap = times[1] - times[0];
        assert!(
            gap >= Duration::from_millis(50) && gap < Duration::from_millis(500),
            "{gap:?}"
        );
    }

    #[test]
    fn retry_now_does_not_sleep() {
        let mut times = Vec::new();
        let mut p = fast(5000);
        p.base_delay = Duration::from_secs(1);
        let _ = p.with_max_attempts(2).run::<()>(|_| {
            times.push(Instant::now());
            Err((transient(), Verdict::RetryNow))
        });
        assert!(times[1] - times[0] < Duration::from_millis(100));
    }

    #[test]
    fn attempt_timeout_never_exceeds_request_timeout() {
        let p = fast(10_000);
        let mut seen = None;
        let _ = p.run(|t| {
            seen = Some(t);
            Ok::<_, (FetchError, Verdict)>(())
        });
        assert_eq!(seen, Some(Duration::from_millis(100)));
    }

    /// A wait that began earlier (shared with other fetches) ends at the shared deadline: past
    /// it, one short attempt and no retry.
    #[test]
    fn a_shared_deadline_counts_from_its_start() {
        let mut calls = Vec::new();
        let started = Instant::now() - Duration::from_secs(5);
        let mut p = fast(1000).since(started);
        p.request_timeout = Duration::from_secs(30);
        let e = p
            .run::<()>(|t| {
                calls.push(t);
                Err((transient(), Verdict::Retry))
            })
            .unwrap_err();
        assert_eq!(calls, vec![MIN_ATTEMPT_TIMEOUT]);
        assert!(e.to_string().contains("gave up after 1 attempt"), "{e}");
    }

    /// A long wait says what it waits for, which attempt and how long is left; a short one
    /// stays quiet.
    #[test]
    fn a_long_wait_prints_progress() {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let mut p = fast(400).with_progress("the test service");
            p.progress_every = Duration::from_millis(60);
            let started = Instant::now();
            let r: Result<(), _> = p.run(|_| {
                std::thread::sleep(Duration::from_millis(20));
                if started.elapsed() < Duration::from_millis(250) {
                    Err((transient(), Verdict::Retry))
                } else {
                    Ok(())
                }
            });
            assert!(r.is_ok());
            let quiet: Result<(), _> = fast(400).with_progress("quick").run(|_| Ok(()));
            assert!(quiet.is_ok());
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("waiting for the test service: attempt "),
            "{text}"
        );
        assert!(text.contains("s left"), "{text}");
        assert!(!text.contains("waiting for quick"), "{text}");
    }
}
