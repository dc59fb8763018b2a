//! power_state and final_message at boot, end to end against the mock MAAS in a throwaway Linux
//! root whose `/sbin/shutdown` is a stub that records its argv (the test host is never shut
//! down: wisp runs the tool inside the root).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn wisp(root: &Path, args: &[&str]) -> Output {
    Command::new(wisp_bin())
        .args(["--platform", "linux", "--root"])
        .arg(root)
        .args(args)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .unwrap()
}

/// A stub shutdown(8): its arguments one a line in /shutdown.argv, and whether wisp had saved
/// the boot's results (which it does only once the final report went out) in /shutdown.saw.
const STUB: &str = "#!/bin/sh\nprintf '%s\\n' \"$@\" > /shutdown.argv\n\
                    if [ -f /var/db/wisp/results.json ]; then echo results-saved > /shutdown.saw; \
                    else echo too-early > /shutdown.saw; fi\n";

fn root_with_stub(user_data: &str) -> (mock_maas::MockMaas, tempfile::TempDir) {
    let ud = user_data.to_string();
    let mock = mock_with(|f| f.machines[0].user_data = Some(ud));
    let t = linux_root();
    let r = t.path();
    let cfg = format!(
        "{}reporting:\n  maas:\n    type: webhook\n    endpoint: {status}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\n",
        config_for(&mock, 3.0),
        status = mock.status_url(SYSTEM_ID),
    );
    std::fs::create_dir_all(r.join("etc/wisp")).unwrap();
    std::fs::write(r.join("etc/wisp/wisp.yaml"), cfg).unwrap();
    std::fs::create_dir_all(r.join("sbin")).unwrap();
    std::fs::write(r.join("sbin/shutdown"), STUB).unwrap();
    std::fs::set_permissions(
        r.join("sbin/shutdown"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    (mock, t)
}

const REBOOT: &str = "#cloud-config\n\
runcmd:\n  - echo go > /var/tmp/go\n\
power_state:\n  mode: reboot\n  delay: '+5'\n  message: Rebooting after setup\n  condition: test -f /var/tmp/go\n\
final_message: \"done: $VERSION on $DATASOURCE after ${UPTIME}s\"\n";

#[test]
fn the_shutdown_runs_after_the_final_report_once_per_instance() {
    if !can_apply_linux() {
        return;
    }
    let (mock, t) = root_with_stub(REBOOT);
    let r = t.path();
    let o = wisp(r, &["init"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The argv as shutdown(8) takes it; the condition saw the file runcmd wrote.
    let argv = std::fs::read_to_string(r.join("shutdown.argv")).unwrap_or_default();
    assert_eq!(argv, "-r\n+5\nRebooting after setup\n", "{}", stderr(&o));
    // Not before the boot's end: its results were saved, after the events were flushed.
    assert_eq!(
        std::fs::read_to_string(r.join("shutdown.saw")).unwrap(),
        "results-saved\n"
    );
    // MAAS has the final report and the module's own events.
    let events = mock.events(SYSTEM_ID);
    let names: Vec<String> = events
        .iter()
        .map(|e| format!("{} {}", e["event_type"], e["name"]))
        .collect();
    for want in [
        "\"start\" \"modules-final/config-power_state\"",
        "\"finish\" \"modules-final/config-power_state\"",
        "\"finish\" \"modules-final\"",
    ] {
        assert!(names.iter().any(|n| n == want), "no {want}: {names:?}");
    }
    // final_message on the console and in the log, its variables filled.
    let out = stdout(&o);
    let version = env!("CARGO_PKG_VERSION");
    // $DATASOURCE as cloud-init's str() of its MAAS datasource: the class and the URL.
    let line = format!(
        "done: {version} on DataSourceMAAS [{}] after ",
        mock.metadata_url()
    );
    assert!(out.contains(&line), "{out}");
    assert!(!out.contains("${UPTIME}"), "{out}");
    let log = std::fs::read_to_string(r.join("var/log/wisp.log")).unwrap();
    assert!(log.contains(&line), "{log}");
    // The same instance again: no second shutdown (per instance), the message again.
    std::fs::remove_file(r.join("shutdown.argv")).unwrap();
    let o = wisp(r, &["init"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!r.join("shutdown.argv").exists());
    assert!(stdout(&o).contains(&line));
}

#[test]
fn a_condition_that_fails_leaves_the_machine_up_and_a_bad_delay_is_named() {
    if !can_apply_linux() {
        return;
    }
    let (_mock, t) = root_with_stub(
        "#cloud-config\npower_state: {mode: poweroff, condition: test -f /var/tmp/nothing}\n",
    );
    let r = t.path();
    let o = wisp(r, &["init"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!r.join("shutdown.argv").exists());

    let (_mock, t) = root_with_stub("#cloud-config\npower_state: {mode: poweroff, delay: later}\n");
    let r = t.path();
    let o = wisp(r, &["init"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!r.join("shutdown.argv").exists());
    let q = wisp(r, &["query", "--results"]);
    let results: serde_json::Value = serde_json::from_slice(&q.stdout).unwrap();
    let warned = results.to_string();
    assert!(
        warned.contains("power_state.delay") && warned.contains("later"),
        "{results:#}"
    );
}

/// A shutdown that fails: its outcome is in the results and reaches MAAS (the module's finish
/// is sent once it has run, not before).
#[test]
fn a_failed_shutdown_is_recorded_and_reported() {
    if !can_apply_linux() {
        return;
    }
    let (mock, t) = root_with_stub("#cloud-config\npower_state: {mode: reboot}\n");
    let r = t.path();
    std::fs::write(
        r.join("sbin/shutdown"),
        "#!/bin/sh\necho no way >&2\nexit 1\n",
    )
    .unwrap();
    let o = wisp(r, &["init"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let q = wisp(r, &["query", "--results"]);
    let results: serde_json::Value = serde_json::from_slice(&q.stdout).unwrap();
    assert_eq!(
        results["modules"]["power_state"]["result"], "FAIL",
        "{results:#}"
    );
    let events = mock.events(SYSTEM_ID);
    let finish = events
        .iter()
        .find(|e| e["event_type"] == "finish" && e["name"] == "modules-final/config-power_state")
        .expect("power_state's finish");
    assert_eq!(finish["result"], "FAIL", "{events:#?}");
}

/// `wisp apply`: the shutdown goes last, once the results are saved (as at boot).
#[test]
fn apply_runs_the_shutdown_after_saving_the_results() {
    if !can_apply_linux() {
        return;
    }
    let (_mock, t) = root_with_stub("#cloud-config\n");
    let r = t.path();
    let doc = r.join("power.yaml");
    std::fs::write(
        &doc,
        "#cloud-config\nusers: []\nruncmd:\n  - echo go > /var/tmp/ran\npower_state: {mode: poweroff}\n",
    )
    .unwrap();
    let o = wisp(r, &["apply", "--user-data", doc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(r.join("var/tmp/ran").exists());
    assert_eq!(
        std::fs::read_to_string(r.join("shutdown.saw")).unwrap_or_default(),
        "results-saved\n",
        "{}",
        stderr(&o)
    );
}
