//! The command line itself: help, version, global flags, and errors for bad invocations.

use std::process::Command;

fn wisp(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_lists_commands_and_global_flags() {
    let o = wisp(&["--help"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for word in [
        "fetch",
        "query",
        "--config",
        "--root",
        "--platform",
        "--dry-run",
        "--format",
        "--verbose",
        "--quiet",
    ] {
        assert!(out.contains(word), "--help lacks {word}:\n{out}");
    }
}

#[test]
fn version_is_the_crate_version() {
    let o = wisp(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("wisp {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn global_flags_work_after_the_command() {
    // An empty root (a missing one is an error of its own).
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let o = wisp(&[
        "query",
        "--root",
        root.to_str().unwrap(),
        "--platform",
        "netbsd",
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no cached data") && err.contains("var/db/wisp"),
        "{err}"
    );
}

#[test]
fn unknown_platform_is_refused() {
    let o = wisp(&["--platform", "plan9", "query"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("netbsd"));
}

/// `wisp … | head -c1`: the reader goes away before wisp writes. That is a normal end — no
/// panic ("failed printing to stdout"), no abort (exit 134 and a core file on a BSD).
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let root = tempfile::tempdir().unwrap();
    let users = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/users.yaml");
    let no_config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/no-config.yaml");
    for format in ["text", "json"] {
        let command = || {
            let mut c = Command::new(env!("CARGO_BIN_EXE_wisp"));
            c.args(["--platform", "netbsd", "--dry-run", "--format", format])
                .arg("--root")
                .arg(root.path())
                .args(["--config", no_config, "apply", "--user-data", users]);
            c
        };
        let whole = command().output().unwrap();
        let mut child = command()
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Closing our end first makes wisp's very first write fail with EPIPE.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked"), "{format}: {stderr}");
        // The exit status is the plan's, as when the whole output was read.
        assert!(whole.stdout.len() > 1);
        assert_eq!(o.status.code(), whole.status.code(), "{format}: {stderr}");
    }
}

/// Typos in wisp.yaml are named with their file and line when the configuration is loaded.
#[test]
fn typos_in_the_configuration_are_warnings_with_file_and_line() {
    let t = tempfile::tempdir().unwrap();
    let config = t.path().join("wisp.yaml");
    std::fs::write(
        &config,
        "datasource_lsit: [MAAS]\nreportng:\n  maas: {type: webhook}\ndatasource:\n  Maas:\n    metadata_url: http://a/\nntp: {servers: [10.0.0.1]}\n",
    )
    .unwrap();
    let doc = t.path().join("user-data");
    std::fs::write(&doc, "#cloud-config\nruncmd: [ls]\n").unwrap();
    let o = wisp(&[
        "--platform",
        "netbsd",
        "--root",
        t.path().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--dry-run",
        "apply",
        "--user-data",
        doc.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    let c = config.display();
    for want in [
        format!("{c}:1: unknown key datasource_lsit (ignored); did you mean datasource_list?"),
        format!("{c}:2: unknown key reportng (ignored); did you mean reporting?"),
        format!("{c}:5: unknown key datasource.Maas (ignored); did you mean MAAS?"),
    ] {
        assert!(err.contains(&want), "no {want:?} in\n{err}");
    }
    assert!(
        !err.contains("ntp"),
        "ntp is cloud-config, not a typo:\n{err}"
    );
}
