//! rsyslog, ca_certs and locale at boot, end to end against the mock MAAS in a throwaway Linux
//! root (wisp's Linux backend writes rsyslog's drop-in file; it has no trust store or
//! system-wide locale of its own to set: those are warnings). Each module's events reach MAAS,
//! its refused items in its finish event.

mod common;

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

const DOC: &str = "#cloud-config\n\
users: []\n\
rsyslog:\n  remotes:\n    maas: \"10.0.0.1:514\"\n    collector: \"auth.* @@logs.example:6514\"\n    evil: \"-x\\n*.* /etc/passwd\"\n\
locale: en_US.UTF-8\n\
ca_certs:\n  trusted: [\"not a certificate\"]\n";

#[test]
fn the_modules_run_at_boot_report_to_maas_and_do_not_rewrite_on_the_next() {
    if !can_apply_linux() {
        return;
    }
    let ud = DOC.to_string();
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
    std::fs::create_dir_all(r.join("etc/rsyslog.d")).unwrap();
    std::fs::write(
        r.join("etc/rsyslog.conf"),
        "module(load=\"imuxsock\")\n$IncludeConfig /etc/rsyslog.d/*.conf\n",
    )
    .unwrap();

    let o = wisp(r, &["init"]);
    let dropin = r.join("etc/rsyslog.d/20-cloud-config.conf");
    assert_eq!(
        std::fs::read_to_string(&dropin).unwrap_or_default(),
        "# Written by wisp from cloud-config (rsyslog).\n# maas\n*.*\t@10.0.0.1:514\n# collector\nauth.*\t@@logs.example:6514\n",
        "{}",
        stderr(&o)
    );
    // rsyslog.conf itself is left as it was.
    assert_eq!(
        std::fs::read_to_string(r.join("etc/rsyslog.conf")).unwrap(),
        "module(load=\"imuxsock\")\n$IncludeConfig /etc/rsyslog.d/*.conf\n"
    );
    let events = mock.events(SYSTEM_ID);
    let finish = |module: &str| {
        events
            .iter()
            .find(|e| {
                e["event_type"] == "finish"
                    && e["name"]
                        .as_str()
                        .is_some_and(|n| n.ends_with(&format!("/config-{module}")))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no finish of {module}: {events:#?}"))
    };
    for module in ["rsyslog", "ca_certs", "locale"] {
        assert!(
            events.iter().any(|e| e["event_type"] == "start"
                && e["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(&format!("/config-{module}")))),
            "no start of {module}"
        );
    }
    // The hostile remote is refused by name in rsyslog's finish (a warning: the others were
    // written).
    let rsyslog = finish("rsyslog");
    assert_eq!(rsyslog["result"], "WARN", "{rsyslog:#}");
    let said = rsyslog["description"].as_str().unwrap_or_default();
    assert!(said.contains("rsyslog.remotes.evil"), "{said}");
    assert!(
        !said.contains('\n'),
        "the value's newline is escaped: {said}"
    );
    let ca = finish("ca_certs");
    assert!(
        ca["description"]
            .as_str()
            .unwrap_or_default()
            .contains("ca_certs.trusted[0]"),
        "{ca:#}"
    );
    // No system-wide locale on this system: said to MAAS, not failed.
    let locale = finish("locale");
    assert_eq!(locale["result"], "WARN", "{locale:#}");
    assert!(
        locale["description"]
            .as_str()
            .unwrap_or_default()
            .contains("not applicable on linux"),
        "{locale:#}"
    );

    // Per instance: the next boot does not run it again.
    let before = std::fs::metadata(&dropin).unwrap().modified().unwrap();
    let o = wisp(r, &["init"]);
    assert!(matches!(o.status.code(), Some(0 | 2)), "{}", stderr(&o));
    assert_eq!(
        std::fs::metadata(&dropin).unwrap().modified().unwrap(),
        before
    );
    let starts = mock
        .events(SYSTEM_ID)
        .iter()
        .filter(|e| e["event_type"] == "start" && e["name"] == "modules-config/config-rsyslog")
        .count();
    assert_eq!(starts, 1);
    // Planned again for the same document, it has nothing left to do.
    let doc = r.join("var/tmp/doc.yaml");
    std::fs::write(&doc, DOC).unwrap();
    let o = wisp(
        r,
        &[
            "--dry-run",
            "--format",
            "json",
            "apply",
            "--user-data",
            doc.to_str().unwrap(),
        ],
    );
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let ours: Vec<&serde_json::Value> = plan["actions"]
        .as_array()
        .map(|a| a.iter().filter(|a| a["module"] == "rsyslog").collect())
        .unwrap_or_default();
    assert!(plan["actions"].is_array(), "{}", stderr(&o));
    assert!(ours.is_empty(), "{ours:?}");
}
