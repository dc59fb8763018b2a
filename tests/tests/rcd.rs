//! The rc.d scripts: valid sh, each system's conventions, the stage each runs, and an rcorder(8)
//! ordering that puts local before the network, network before sshd and logins, final after.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn rcd(os: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rc.d")
        .join(os)
        .join(name)
}

fn text(os: &str, name: &str) -> String {
    std::fs::read_to_string(rcd(os, name)).unwrap()
}

/// `# KEY: a b c` lines of an rc.d script.
fn header(t: &str, key: &str) -> Vec<String> {
    t.lines()
        .filter_map(|l| l.strip_prefix(&format!("# {key}:")))
        .flat_map(|v| v.split_whitespace().map(str::to_string))
        .collect()
}

#[test]
fn every_script_is_valid_sh() {
    for (os, names) in [
        ("netbsd", &["wisplocal", "wispnet", "wispfinal"][..]),
        ("freebsd", &["wisplocal", "wispnet", "wispfinal"][..]),
        ("openbsd", &["wisp"][..]),
    ] {
        for n in names {
            let o = Command::new("sh")
                .arg("-n")
                .arg(rcd(os, n))
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{os}/{n}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

#[test]
fn each_script_runs_its_stage_with_its_systems_knob_and_the_disable_switch() {
    for os in ["netbsd", "freebsd"] {
        for (n, stage) in [
            ("wisplocal", "local"),
            ("wispnet", "network"),
            ("wispfinal", "final"),
        ] {
            let t = text(os, n);
            assert!(t.contains(&format!("init --stage {stage}\n")), "{os}/{n}");
            assert!(t.contains("/etc/wisp/disabled"), "{os}/{n}");
            assert_eq!(header(&t, "PROVIDE"), vec![n.to_string()]);
            assert!(t.contains("run_rc_command \"$1\""), "{os}/{n}");
            match os {
                "netbsd" => {
                    assert!(
                        t.contains("$_rc_subr_loaded . /etc/rc.subr")
                            && t.contains("rcvar=\"wisp\"")
                    );
                }
                _ => {
                    assert!(t.contains(". /etc/rc.subr") && t.contains("rcvar=\"wisp_enable\""));
                    assert!(t.contains(": ${wisp_enable:=\"NO\"}"));
                }
            }
        }
    }
    let t = text("openbsd", "wisp");
    assert!(t.contains(". /etc/rc.d/rc.subr") && t.contains("rc_cmd $1"));
    assert!(t.contains("daemon_flags=\"init\"") && t.contains("/etc/wisp/disabled"));
    assert!(t.contains("rc_stop=NO"));
}

/// Each script's requirements (PROVIDE → REQUIRE, BEFORE turned around): our scripts and the
/// parts of the system's rc.d that matter here.
fn graph(os: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let system: &[(&str, &[&str])] = match os {
        // NetBSD's clearcritlocal (it empties /var/run) is `BEFORE: MOUNTCRITLOCAL`.
        "netbsd" => &[
            ("mountcritlocal", &[]),
            ("clearcritlocal", &["mountcritlocal"]),
            ("MOUNTCRITLOCAL", &["mountcritlocal", "clearcritlocal"]),
            ("network", &["mountcritlocal"]),
            ("NETWORKING", &["network"]),
            ("DAEMON", &["NETWORKING"]),
            ("LOGIN", &["DAEMON"]),
            ("sshd", &["LOGIN"]),
        ],
        // FreeBSD's FILESYSTEMS requires cleanvar (which empties /var/run).
        _ => &[
            ("cleanvar", &[]),
            ("FILESYSTEMS", &["cleanvar"]),
            ("hostname", &["FILESYSTEMS"]),
            ("netif", &["hostname"]),
            ("NETWORKING", &["netif"]),
            ("DAEMON", &["NETWORKING"]),
            ("LOGIN", &["DAEMON"]),
            ("sshd", &["LOGIN"]),
        ],
    };
    for (p, reqs) in system {
        graph
            .entry(p.to_string())
            .or_default()
            .extend(reqs.iter().map(|r| r.to_string()));
    }
    for n in ["wisplocal", "wispnet", "wispfinal"] {
        let t = text(os, n);
        graph
            .entry(n.into())
            .or_default()
            .extend(header(&t, "REQUIRE"));
        for b in header(&t, "BEFORE") {
            graph.entry(b).or_default().insert(n.into());
        }
    }
    graph
}

/// Whether `a` requires `b`, directly or through others: rcorder runs `b` first whatever else
/// is installed (what merely comes first in one ordering may not in another).
fn requires(graph: &BTreeMap<String, BTreeSet<String>>, a: &str, b: &str) -> bool {
    let mut todo = vec![a.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(n) = todo.pop() {
        for r in graph.get(&n).into_iter().flatten() {
            if r == b {
                return true;
            }
            if seen.insert(r.clone()) {
                todo.push(r.clone());
            }
        }
    }
    false
}

/// rcorder's ordering over our scripts and the system's placeholders.
fn order(os: &str) -> Vec<String> {
    let graph = graph(os);
    // Kahn's algorithm; a cycle would leave nodes out.
    let mut done: Vec<String> = Vec::new();
    while done.len() < graph.len() {
        let next = graph
            .iter()
            .find(|(n, reqs)| {
                !done.contains(n)
                    && reqs
                        .iter()
                        .all(|r| done.contains(r) || !graph.contains_key(r))
            })
            .map(|(n, _)| n.clone());
        match next {
            Some(n) => done.push(n),
            None => panic!(
                "{os}: cycle among {:?}",
                graph
                    .keys()
                    .filter(|k| !done.contains(k))
                    .collect::<Vec<_>>()
            ),
        }
    }
    done
}

#[test]
fn rcorder_puts_the_stages_where_they_belong() {
    for os in ["netbsd", "freebsd"] {
        let o = order(os);
        let at = |n: &str| {
            o.iter()
                .position(|x| x == n)
                .unwrap_or_else(|| panic!("{os}: {n} missing"))
        };
        assert!(at("wisplocal") < at("NETWORKING"), "{os}: {o:?}");
        assert!(at("NETWORKING") < at("wispnet"), "{os}: {o:?}");
        assert!(
            at("wispnet") < at("LOGIN") && at("wispnet") < at("sshd"),
            "{os}: {o:?}"
        );
        assert!(at("LOGIN") < at("wispfinal"), "{os}: {o:?}");
        // The fingerprints wispfinal shows are of the keys sshd's start made (rcorder leaves
        // unrelated scripts in any order: it must be required, not just come first here).
        assert!(
            header(&text(os, "wispfinal"), "REQUIRE").contains(&"sshd".to_string()),
            "{os}"
        );
    }
    assert!(
        order("freebsd").iter().position(|x| x == "wisplocal")
            < order("freebsd").iter().position(|x| x == "hostname")
    );
}

/// The local stage's marker of this boot lives in /var/run, which the system empties early in
/// the boot: the stage must be ordered after that, or bootcmd runs twice in a boot when the
/// cleanup happens to come later. (OpenBSD's /etc/rc empties /var/run before any package
/// script runs.)
#[test]
fn the_local_stage_runs_after_var_run_is_emptied() {
    for (os, cleanup) in [("netbsd", "clearcritlocal"), ("freebsd", "cleanvar")] {
        assert!(
            requires(&graph(os), "wisplocal", cleanup),
            "{os}: wisplocal is not ordered after {cleanup}: {:?}",
            graph(os).get("wisplocal")
        );
    }
}

/// Which binary a script runs: `wisp_command` from rc.conf, else pkgsrc's (/usr/pkg/sbin), else
/// a port's or an image's (/usr/local/sbin), else a base-system build's (/usr/sbin). Run with sh,
/// the system's rc.subr stubbed and the three places moved into a scratch directory.
#[test]
fn each_script_finds_the_binary_a_package_or_an_image_installed() {
    let places = "for _wisp in /usr/pkg/sbin/wisp /usr/local/sbin/wisp /usr/sbin/wisp; do";
    for os in ["netbsd", "freebsd"] {
        for (n, stage) in [
            ("wisplocal", "local"),
            ("wispnet", "network"),
            ("wispfinal", "final"),
        ] {
            let t = tempfile::tempdir().unwrap();
            let d = t.path();
            let stub = d.join("rc.subr");
            std::fs::write(
                &stub,
                "load_rc_config() { :; }\nrun_rc_command() { wisp_start; }\n",
            )
            .unwrap();
            let original = text(os, n);
            assert!(original.contains(places), "{os}/{n}");
            let script = original
                .replace(
                    places,
                    &format!(
                        "for _wisp in {0}/usr/pkg/sbin/wisp {0}/usr/local/sbin/wisp {0}/usr/sbin/wisp; do",
                        d.display()
                    ),
                )
                .replace("/etc/rc.subr", stub.to_str().unwrap())
                .replace("/etc/wisp/disabled", d.join("disabled").to_str().unwrap());
            std::fs::write(d.join("script"), script).unwrap();
            let ran = d.join("ran");
            let fake = |place: &str, label: &str| {
                let p = d.join(place);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(
                    &p,
                    format!("#!/bin/sh\necho \"{label} $*\" >> '{}'\n", ran.display()),
                )
                .unwrap();
                std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                    .unwrap();
            };
            let run = |command: Option<&str>| -> String {
                let _ = std::fs::remove_file(&ran);
                let mut c = Command::new("sh");
                c.arg(d.join("script")).arg("start");
                match command {
                    Some(v) => c.env("wisp_command", v),
                    None => c.env_remove("wisp_command"),
                };
                let o = c.output().unwrap();
                assert!(
                    o.status.success(),
                    "{os}/{n}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                std::fs::read_to_string(&ran).unwrap_or_default()
            };
            fake("usr/sbin/wisp", "base");
            assert_eq!(
                run(None),
                format!("base init --stage {stage}\n"),
                "{os}/{n}"
            );
            fake("usr/local/sbin/wisp", "local");
            assert_eq!(
                run(None),
                format!("local init --stage {stage}\n"),
                "{os}/{n}"
            );
            fake("usr/pkg/sbin/wisp", "pkg");
            assert_eq!(run(None), format!("pkg init --stage {stage}\n"), "{os}/{n}");
            fake("elsewhere/wisp", "knob");
            let knob = d.join("elsewhere/wisp");
            assert_eq!(
                run(Some(knob.to_str().unwrap())),
                format!("knob init --stage {stage}\n"),
                "{os}/{n}: wisp_command wins"
            );
        }
    }
}

/// OpenBSD's rc.subr kills what rc_start runs once `daemon_timeout` has passed (30 s unless
/// the script set it before sourcing rc.subr; `wisp_timeout` in rc.conf.local overrides it):
/// the script sets a long one first. rc_check succeeds once this boot's run has finished, so
/// `rcctl ls failed` does not list a successful wisp and a later start does not run it again;
/// a failed run is not marked done. Run with sh, rc.subr stubbed: the stub records the
/// timeout it was given and runs rc_cmd's start as rc.subr does (rc_check first).
#[test]
fn the_openbsd_script_outlasts_rc_subrs_timer_and_reports_a_finished_run() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let stub = d.join("rc.subr");
    let seen = d.join("timeout");
    std::fs::write(
        &stub,
        format!(
            "echo \"${{daemon_timeout:-unset}}\" > '{}'\n\
             [ -z \"${{daemon_timeout}}\" ] && daemon_timeout=30\n\
             rc_cmd() {{\n\
             \tcase $1 in\n\
             \tcheck) rc_check ;;\n\
             \tstart) rc_check && return 0; rc_start >/dev/null 2>&1 ;;\n\
             \tesac\n\
             }}\n",
            seen.display()
        ),
    )
    .unwrap();
    let ran = d.join("ran");
    let fake = d.join("wisp");
    let done = d.join("wisp.done");
    let console = d.join("console");
    std::fs::write(&console, "").unwrap();
    let original = text("openbsd", "wisp");
    for needle in [
        "/etc/rc.d/rc.subr",
        "/var/run/wisp.done",
        "daemon=\"/usr/local/sbin/wisp\"",
    ] {
        assert!(original.contains(needle), "{needle}");
    }
    let script = original
        .replace("/etc/rc.d/rc.subr", stub.to_str().unwrap())
        .replace("/var/run/wisp.done", done.to_str().unwrap())
        .replace("/etc/wisp/disabled", d.join("disabled").to_str().unwrap())
        .replace("/usr/local/sbin/wisp", fake.to_str().unwrap())
        .replace("/dev/console", console.to_str().unwrap());
    std::fs::write(d.join("script"), script).unwrap();
    let wisp_exits = |code: i32| {
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\necho wisp says {code}\nexit {code}\n",
                ran.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    };
    let rc = |action: &str| -> bool {
        Command::new("sh")
            .arg(d.join("script"))
            .arg(action)
            .status()
            .unwrap()
            .success()
    };
    let runs = || {
        std::fs::read_to_string(&ran)
            .unwrap_or_default()
            .lines()
            .count()
    };

    assert!(!rc("check"), "not done before it ran");
    let timeout: u64 = std::fs::read_to_string(&seen)
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("daemon_timeout is not set before rc.subr"));
    assert!(timeout >= 3600, "daemon_timeout {timeout}");

    // A failed run: reported as failed, not marked done, run again by the next start.
    wisp_exits(1);
    assert!(!rc("start"));
    assert!(!rc("check"));
    assert_eq!(runs(), 1);

    wisp_exits(0);
    assert!(rc("start"));
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "init\ninit\n");
    // rc.subr discards rc_start's output: wisp's own reaches the console.
    assert_eq!(
        std::fs::read_to_string(&console).unwrap(),
        "wisp says 1\nwisp says 0\n"
    );
    assert!(rc("check"), "done once this boot's run finished");
    assert!(rc("start"));
    assert_eq!(runs(), 2, "not run twice in a boot");

    // Turned off: nothing runs, and that is not a failure.
    std::fs::remove_file(&done).unwrap();
    std::fs::write(d.join("disabled"), "").unwrap();
    assert!(rc("start"));
    assert!(rc("check"));
    assert_eq!(runs(), 2);
}
