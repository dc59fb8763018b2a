//! `cargo bench -p wisp --bench users`: what creating many users costs, to show it is linear.
//!
//! For 100, 300 and 1,000 users (each with an SSH key, so every user needs a command, a
//! directory and a file owned by it) it times, and prints per user:
//! - the plan alone (`--dry-run`);
//! - plan + apply with a stand-in `useradd` that appends the account in constant time: wisp's
//!   own cost, which must stay about the same per user at every count (linear);
//! - plan + apply with shadow-utils' `useradd --root` (`--platform linux --root TMP`), the
//!   real thing — each useradd itself rewrites the account files, so the tool's own share grows
//!   with the count whatever wisp does.
//!
//! Applying needs root (files are given to the new users) and, for the last column, `useradd`;
//! without them it says so and times what it can. It prints; it does not fail: timings depend on
//! the machine.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const COUNTS: &[usize] = &[100, 300, 1000];

use mock_maas::roots::have_tool as have;

/// A minimal Linux root, as the tests make it: the account files shadow-utils needs.
fn make_root(r: &Path) {
    mock_maas::roots::make_account_root(r).expect("an account root");
}

fn document(n: usize) -> String {
    let mut doc = String::from("#cloud-config\nusers:\n");
    for i in 0..n {
        doc.push_str(&format!(
            "  - name: u{i:04}\n    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{i:04} u{i:04}@bench]\n"
        ));
    }
    doc
}

/// A `useradd` that takes wisp's argv (`useradd --root R … NAME`) and appends the account and
/// its home in constant time, so that what grows with the count is wisp's own work.
const STAND_IN: &str = r#"#!/bin/sh
root=$2
eval "name=\${$#}"
uid=$(( $(cat "$root/next-uid" 2>/dev/null || echo 1000) + 1 ))
echo "$uid" > "$root/next-uid"
echo "$name:x:$uid:$uid::/home/$name:/bin/sh" >> "$root/etc/passwd"
echo "$name:x:$uid:" >> "$root/etc/group"
echo "$name:!:19000:0:99999:7:::" >> "$root/etc/shadow"
mkdir -p "$root/home/$name"
chown "$uid:$uid" "$root/home/$name"
"#;

/// Wall-clock time, and CPU time (user + system) of wisp and the tools it ran: the disk's fsync
/// latency and other load on the machine move the first, hardly the second.
#[derive(Clone, Copy)]
struct Took {
    wall: Duration,
    cpu: Duration,
}

fn children_cpu() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// One `wisp apply` of `doc` under `root`; `dry_run` plans only; `path` is prepended to PATH.
fn wisp(root: &Path, doc: &Path, dry_run: bool, path: Option<&Path>) -> Took {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wisp"));
    if let Some(dir) = path {
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.to_path_buf()];
        dirs.extend(std::env::split_paths(&old));
        c.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    // -q: a thousand INFO lines per run are not what is measured.
    c.args(["--platform", "linux", "-q", "--root"])
        .arg(root)
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/no-config.yaml"));
    if dry_run {
        c.args(["--dry-run", "--format", "json"]);
    }
    c.args(["apply", "--user-data"]).arg(doc);
    let (t, cpu) = (Instant::now(), children_cpu());
    let o = c.output().unwrap();
    let took = Took {
        wall: t.elapsed(),
        cpu: children_cpu() - cpu,
    };
    assert!(
        o.status.code() == Some(0),
        "wisp failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    took
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    let root_user = unsafe { libc::geteuid() } == 0;
    let real = root_user && have("useradd");
    if !root_user {
        println!("users: applying needs root (files go to the new users); timing the plans only");
    } else if !real {
        println!("users: no shadow-utils useradd; skipping the real-tools column");
    }
    let stub_dir = tempfile::tempdir().unwrap();
    let stub = stub_dir.path().join("useradd");
    std::fs::write(&stub, STAND_IN).unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    println!("ms per user, wall-clock / CPU (wisp and the tools it ran):");
    println!(
        "{:>6}  {:>17}  {:>25}  {:>28}",
        "users", "plan", "apply, stand-in useradd", "apply, shadow-utils useradd"
    );
    let ms = |d: Duration, n: usize| d.as_secs_f64() * 1000.0 / n as f64;
    let cell = |t: Option<Took>, n: usize, width: usize| match t {
        Some(t) => format!(
            "{:>w$}",
            format!("{:.3} / {:.3}", ms(t.wall, n), ms(t.cpu, n)),
            w = width
        ),
        None => format!("{:>width$}", "(skipped)"),
    };
    let mut per_user: Vec<[Option<f64>; 3]> = Vec::new();
    for &n in COUNTS {
        let t = tempfile::tempdir().unwrap();
        let doc = t.path().join("users.yaml");
        std::fs::write(&doc, document(n)).unwrap();
        let fresh = |name: &str| {
            let r = t.path().join(name);
            make_root(&r);
            r
        };
        let plan = wisp(&fresh("plan"), &doc, true, None);
        let stand_in = root_user.then(|| {
            let r = fresh("stand-in");
            let took = wisp(&r, &doc, false, Some(stub_dir.path()));
            check_created(&r, n);
            took
        });
        let shadow = real.then(|| {
            let r = fresh("shadow");
            let took = wisp(&r, &doc, false, None);
            check_created(&r, n);
            took
        });
        println!(
            "{n:>6}  {}  {}  {}",
            cell(Some(plan), n, 17),
            cell(stand_in, n, 25),
            cell(shadow, n, 28)
        );
        per_user.push([Some(plan), stand_in, shadow].map(|t| t.map(|t| ms(t.cpu, n))));
    }
    let (first, last) = (&per_user[0], &per_user[per_user.len() - 1]);
    let ratio = |i: usize| match (first[i], last[i]) {
        (Some(a), Some(b)) => format!("x{:.2}", b / a),
        _ => "-".into(),
    };
    println!(
        "CPU per user, {} users against {}: plan {}, stand-in {}, shadow-utils {} \
         (about x1 is linear; x10 would be quadratic)",
        COUNTS[COUNTS.len() - 1],
        COUNTS[0],
        ratio(0),
        ratio(1),
        ratio(2)
    );
}

/// Every user exists and has its key, owned by it.
fn check_created(root: &Path, n: usize) {
    use std::os::unix::fs::MetadataExt;
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert_eq!(passwd.lines().count(), n + 1, "every user created");
    let last = format!("u{:04}", n - 1);
    let uid: u32 = passwd
        .lines()
        .find(|l| l.starts_with(&format!("{last}:")))
        .and_then(|l| l.split(':').nth(2))
        .and_then(|u| u.parse().ok())
        .unwrap();
    let keys = root.join(format!("home/{last}/.ssh/authorized_keys"));
    assert_eq!(
        std::fs::metadata(&keys).unwrap().uid(),
        uid,
        "{}",
        keys.display()
    );
}
