//! The one way wisp runs a tool: argv (no shell), an optional input fed from a thread, an
//! optional time limit after which the tool's whole process group is killed, and its output
//! read as it comes with only the last [`Limits::keep`] bytes of each stream kept. Every
//! caller (actions, the power change's condition, the disk probes) goes through it, each
//! making its own message of the result.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long the output readers are waited for once the tool has ended: a child it left
/// behind may hold the pipes open for ever.
const READER_GRACE: Duration = Duration::from_secs(2);

/// How a run is bounded.
pub struct Limits {
    /// The longest it may run (None: as long as it takes).
    pub time: Option<Duration>,
    /// The most of each output stream kept (the tail).
    pub keep: usize,
}

/// What a run gave.
pub struct Ran {
    /// None: killed at the time limit.
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// How many bytes the tool wrote on its standard output (more than kept, maybe).
    pub stdout_len: usize,
}

/// Runs `argv` with `env` added and `stdin` fed, bounded by `limits`. An error only when it
/// cannot be started.
pub fn run(
    argv: &[String],
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
    limits: &Limits,
) -> Result<Ran, String> {
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (name, value) in env {
        cmd.env(name, value);
    }
    let mut child = cmd.spawn().map_err(|e| format!("{prog}: {e}"))?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        // In a thread: a tool that does not read all of it must not block the wait.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Vec<u8>, usize)>();
    let keep = limits.keep;
    let tail_of = |which: usize, pipe: Option<Box<dyn Read + Send>>| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut kept: Vec<u8> = Vec::new();
            let mut total = 0usize;
            if let Some(mut p) = pipe {
                let mut buf = [0u8; 8192];
                while let Ok(n) = p.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    total = total.saturating_add(n);
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > keep {
                        kept.drain(..kept.len() - keep);
                    }
                }
            }
            let _ = tx.send((which, kept, total));
        });
    };
    tail_of(
        0,
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    tail_of(
        1,
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    drop(tx);
    let pid = child.id() as libc::pid_t;
    let kill_group = || {
        // SAFETY: kill(2) on our own child's process group (made by process_group(0)).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    };
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if limits.time.is_some_and(|t| start.elapsed() >= t) => {
                kill_group();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                kill_group();
                let _ = child.wait();
                return Err(format!("{prog}: {e}"));
            }
        }
    };
    // The readers end when the pipes close; a grandchild still holding them is not waited
    // for beyond the grace. A timed system tool's group is killed then; a user command's (no
    // limit) is left running, as cloud-init leaves `nohup server &` of a runcmd: its readers
    // are left to end when it does.
    let mut ran = Ran {
        status,
        stdout: Vec::new(),
        stderr: Vec::new(),
        stdout_len: 0,
    };
    let grace_end = Instant::now() + READER_GRACE;
    for _ in 0..2 {
        let left = grace_end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((0, bytes, total)) => {
                ran.stdout = bytes;
                ran.stdout_len = total;
            }
            Ok((_, bytes, _)) => ran.stderr = bytes,
            Err(_) => {
                if limits.time.is_some() {
                    kill_group();
                }
                break;
            }
        }
    }
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_hung_tool_and_its_children_are_killed_at_the_limit() {
        let t = Instant::now();
        let ran = run(
            &argv(&["/bin/sh", "-c", "sleep 30 & sleep 30"]),
            &[],
            None,
            &Limits {
                time: Some(Duration::from_millis(300)),
                keep: 1024,
            },
        )
        .unwrap();
        assert!(ran.status.is_none());
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    }

    fn alive(pid: libc::pid_t) -> bool {
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    /// Reads the pid a test's script wrote (it may take a moment to appear).
    fn pid_in(file: &std::path::Path) -> libc::pid_t {
        for _ in 0..250 {
            if let Some(pid) = std::fs::read_to_string(file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return pid;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no pid in {}", file.display());
    }

    /// Kills the background sleep when the test ends, whatever its outcome.
    struct KillOnDrop(libc::pid_t);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            // SAFETY: kill(2) on the test's own background process.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
            }
        }
    }

    /// The timed tool's background child is killed with it (its process group).
    #[test]
    fn a_timed_tools_background_child_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 120 & echo $! > {}; sleep 5", pidfile.display());
        let ran = run(
            &argv(&["/bin/sh", "-c", &script]),
            &[],
            None,
            &Limits {
                time: Some(Duration::from_millis(300)),
                keep: 1024,
            },
        )
        .unwrap();
        let pid = pid_in(&pidfile);
        let _cleanup = KillOnDrop(pid);
        assert!(ran.status.is_none());
        // Killed, it may linger as a zombie of init's a moment: wait for it to go.
        let gone = (0..250).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !alive(pid) || zombie(pid)
        });
        assert!(gone, "the background sleep {pid} is still running");
    }

    fn zombie(pid: libc::pid_t) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
    }

    /// Last review (2): a user command's background job (no time limit) outlives it, as in
    /// cloud-init: `runcmd: ["nohup myserver &"]` keeps running.
    #[test]
    fn a_user_commands_background_job_is_left_running() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 60 & echo $! > {}", pidfile.display());
        let t = Instant::now();
        let ran = run(
            &argv(&["/bin/sh", "-c", &script]),
            &[],
            None,
            &Limits {
                time: None,
                keep: 1024,
            },
        )
        .unwrap();
        let pid = pid_in(&pidfile);
        let _cleanup = KillOnDrop(pid);
        assert!(ran.status.is_some_and(|s| s.success()));
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            alive(pid) && !zombie(pid),
            "the background job {pid} was killed"
        );
    }

    #[test]
    fn input_is_fed_and_only_the_outputs_tail_is_kept() {
        let ran = run(
            &argv(&["/bin/sh", "-c", "cat; echo err >&2"]),
            &[("X", "y")],
            Some(b"0123456789"),
            &Limits {
                time: None,
                keep: 4,
            },
        )
        .unwrap();
        assert!(ran.status.is_some_and(|s| s.success()));
        assert_eq!(ran.stdout, b"6789");
        assert_eq!(ran.stdout_len, 10);
        assert_eq!(ran.stderr, b"err\n");
    }
}
