//! `packages` at boot, end to end against the mock MAAS, for NetBSD in a throwaway root whose
//! pkgin is a stand-in script (run inside the root by chroot, as wisp runs the real one): it
//! records its argv and proxy, "installs" a package as pkg_install does (an entry in
//! /usr/pkg/pkgdb), and fails, as pkgin does, for a name the repository does not have.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn wisp(root: &Path, args: &[&str]) -> Output {
    Command::new(wisp_bin())
        .args(["--platform", "netbsd", "--root"])
        .arg(root)
        .args(args)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .unwrap()
}

/// The stand-in pkgin: one line per run in /pkgin.log (`proxy=… args…`); `install` takes its
/// names, all or none as pkgin does, and refuses `nosuchpkg` on stderr.
const PKGIN: &str = r#"#!/bin/sh
printf 'proxy=%s %s\n' "$http_proxy" "$*" >> /pkgin.log
[ "$2" = install ] || exit 0
shift 2
for n in "$@"; do
    if [ "$n" = nosuchpkg ]; then
        echo "calculating dependencies..."
        echo "pkgin: $n is not available in the repository" >&2
        exit 1
    fi
done
for n in "$@"; do
    case "$n" in
    *-[0-9]*) : > "/usr/pkg/pkgdb/$n" ;;
    *) : > "/usr/pkg/pkgdb/$n-1.0" ;;
    esac
done
"#;

const PROXY: &str = "http://ops:pr0xy-pw@127.0.0.1:3128/";

/// A stand-in pkgin as current pkgin behaves with a batch: it installs what the repository has
/// and exits 1 for the rest (a partial batch).
const PKGIN_PARTIAL: &str = r#"#!/bin/sh
printf 'proxy=%s %s\n' "$http_proxy" "$*" >> /pkgin.log
[ "$2" = install ] || exit 0
shift 2
rc=0
for n in "$@"; do
    case "$n" in
    nosuch*) echo "pkgin: $n is not available in the repository" >&2; rc=1 ;;
    *) : > "/usr/pkg/pkgdb/$n-1.0" ;;
    esac
done
exit $rc
"#;

fn netbsd_root(mock: &mock_maas::MockMaas) -> tempfile::TempDir {
    netbsd_root_with(mock, PKGIN)
}

fn netbsd_root_with(mock: &mock_maas::MockMaas, pkgin: &str) -> tempfile::TempDir {
    let t = linux_root();
    let r = t.path();
    let cfg = format!(
        "{}reporting:\n  maas:\n    type: webhook\n    endpoint: {status}\n    consumer_key: {CONSUMER_KEY}\n    token_key: {TOKEN_KEY}\n    token_secret: {TOKEN_SECRET}\npackage_proxy: {PROXY}\n",
        config_for(mock, 3.0),
        status = mock.status_url(SYSTEM_ID),
    );
    std::fs::write(r.join("etc/wisp/wisp.yaml"), cfg).unwrap();
    // NetBSD's system files belong to group wheel.
    std::fs::write(r.join("etc/group"), "wheel:x:0:root\n").unwrap();
    std::fs::create_dir_all(r.join("usr/pkg/bin")).unwrap();
    std::fs::create_dir_all(r.join("usr/pkg/pkgdb")).unwrap();
    std::fs::write(r.join("usr/pkg/bin/pkgin"), pkgin).unwrap();
    std::fs::set_permissions(
        r.join("usr/pkg/bin/pkgin"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    t
}

fn log(r: &Path) -> String {
    std::fs::read_to_string(r.join("pkgin.log")).unwrap_or_default()
}

/// The finish events of the package module that MAAS received.
fn package_finishes(mock: &mock_maas::MockMaas) -> Vec<serde_json::Value> {
    mock.events(SYSTEM_ID)
        .into_iter()
        .filter(|e| {
            e["event_type"] == "finish"
                && e["name"] == "modules-final/config-package_update_upgrade_install"
        })
        .collect()
}

#[test]
fn packages_are_installed_once_with_the_proxy_and_a_rerun_runs_no_tool() {
    if !can_apply_linux() {
        return;
    }
    let doc =
        "#cloud-config\nusers: []\npackage_update: true\npackages: [curl, [jq, '1.0'], curl]\n";
    let ud = doc.to_string();
    let mock = mock_with(|f| f.machines[0].user_data = Some(ud));
    let t = netbsd_root(&mock);
    let r = t.path();
    let o = wisp(r, &["init"]);
    // The exit status is not this module's: the default user of the mock's vendor-data fails
    // (the root has no NetBSD useradd); this module's own events are checked.
    // The catalogue, then one install of both (the duplicate once), with the proxy.
    assert_eq!(
        log(r),
        format!("proxy={PROXY} -y update\nproxy={PROXY} -y install curl jq-1.0\n"),
        "{}",
        stderr(&o)
    );
    assert!(r.join("usr/pkg/pkgdb/curl-1.0").exists());
    let finishes = package_finishes(&mock);
    assert_eq!(finishes.len(), 1, "{finishes:?}");
    assert_eq!(finishes[0]["result"], "SUCCESS", "{finishes:?}");
    // The proxy's password is in no log, event or result.
    let all = format!(
        "{}{}{:?}{}",
        stderr(&o),
        std::fs::read_to_string(r.join("var/log/wisp.log")).unwrap_or_default(),
        mock.events(SYSTEM_ID),
        std::fs::read_to_string(r.join("var/db/wisp/results.json")).unwrap_or_default()
    );
    assert!(!all.contains("pr0xy-pw"), "the proxy password was shown");

    // The same instance again: done once per instance, no tool runs.
    let o = wisp(r, &["init"]);
    assert_eq!(log(r).lines().count(), 2, "{}{}", log(r), stderr(&o));
    // And the plan for the same document, with both present: nothing for the package tool.
    let ud = r.join("ud.yaml");
    std::fs::write(&ud, "#cloud-config\npackages: [curl, [jq, '1.0']]\n").unwrap();
    let o = wisp(
        r,
        &["--dry-run", "apply", "--user-data", ud.to_str().unwrap()],
    );
    assert!(!stdout(&o).contains("pkgin"), "{}", stdout(&o));
}

#[test]
fn a_failing_package_is_reported_to_maas_and_the_others_are_installed() {
    if !can_apply_linux() {
        return;
    }
    let doc = "#cloud-config\nusers: []\npackages: [curl, nosuchpkg, jq]\n";
    let ud = doc.to_string();
    let mock = mock_with(|f| f.machines[0].user_data = Some(ud));
    let t = netbsd_root(&mock);
    let r = t.path();
    let o = wisp(r, &["init"]);
    // All together first; that fails, so each alone.
    assert_eq!(
        log(r),
        format!(
            "proxy={PROXY} -y install curl nosuchpkg jq\nproxy={PROXY} -y install curl\n\
             proxy={PROXY} -y install nosuchpkg\nproxy={PROXY} -y install jq\n"
        ),
        "{}",
        stderr(&o)
    );
    assert!(r.join("usr/pkg/pkgdb/curl-1.0").exists());
    assert!(r.join("usr/pkg/pkgdb/jq-1.0").exists());
    assert!(!r.join("usr/pkg/pkgdb/nosuchpkg-1.0").exists());
    // MAAS has the failure, with the package's name and the tool's output tail.
    let finishes = package_finishes(&mock);
    assert_eq!(finishes.len(), 1, "{finishes:?}");
    assert_eq!(finishes[0]["result"], "FAIL", "{finishes:?}");
    let said = finishes[0]["description"].as_str().unwrap_or_default();
    assert!(
        said.contains("1 of 3 packages failed: nosuchpkg")
            && said.contains("not available in the repository")
            && said.contains("calculating dependencies"),
        "{said}"
    );
    // The module is retried at the next boot: only the missing package is tried again.
    let o = wisp(r, &["init"]);
    let again: Vec<String> = log(r).lines().skip(4).map(str::to_string).collect();
    assert_eq!(
        again,
        vec![format!("proxy={PROXY} -y install nosuchpkg")],
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_partial_batch_retries_only_what_is_missing_now_and_next_boot() {
    if !can_apply_linux() {
        return;
    }
    let doc = "#cloud-config\nusers: []\npackages: [curl, nosuchpkg, jq, nosuchother]\n";
    let ud = doc.to_string();
    let mock = mock_with(|f| f.machines[0].user_data = Some(ud));
    let t = netbsd_root_with(&mock, PKGIN_PARTIAL);
    let r = t.path();
    let o = wisp(r, &["init"]);
    // The batch installed curl and jq: only the two missing ones are tried alone.
    assert_eq!(
        log(r),
        format!(
            "proxy={PROXY} -y install curl nosuchpkg jq nosuchother\n\
             proxy={PROXY} -y install nosuchpkg\nproxy={PROXY} -y install nosuchother\n"
        ),
        "{}",
        stderr(&o)
    );
    let finishes = package_finishes(&mock);
    assert_eq!(finishes.len(), 1, "{finishes:?}");
    assert_eq!(finishes[0]["result"], "FAIL", "{finishes:?}");
    let said = finishes[0]["description"].as_str().unwrap_or_default();
    assert!(
        said.contains("2 of 4 packages failed: nosuchpkg") && said.contains("nosuchother"),
        "{said}"
    );
    // The next boot retries the failed module: the installed ones are skipped (the database,
    // not the instance marker, decides), only the two failed ones run, in one batch.
    let o = wisp(r, &["init"]);
    let again: Vec<String> = log(r).lines().skip(3).map(str::to_string).collect();
    assert_eq!(
        again[0],
        format!("proxy={PROXY} -y install nosuchpkg nosuchother"),
        "{}",
        stderr(&o)
    );
    assert!(
        again
            .iter()
            .all(|l| !l.contains("curl") && !l.contains("jq")),
        "{again:?}"
    );
}

/// A stand-in shutdown(8) that appends its arguments (one run a line) to /shutdown.log, and
/// a test(1) for the reboot's condition (the shell's own).
fn with_shutdown_stub(r: &Path) {
    std::fs::create_dir_all(r.join("sbin")).unwrap();
    if !r.join("bin/test").exists() {
        std::fs::write(
            r.join("bin/test"),
            "#!/bin/sh
test \"$@\"\n",
        )
        .unwrap();
        std::fs::set_permissions(r.join("bin/test"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    std::fs::write(
        r.join("sbin/shutdown"),
        "#!/bin/sh\necho \"$*\" >> /shutdown.log\n",
    )
    .unwrap();
    std::fs::set_permissions(
        r.join("sbin/shutdown"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

fn shutdowns(r: &Path) -> String {
    std::fs::read_to_string(r.join("shutdown.log")).unwrap_or_default()
}

/// Final review of issue 13 (6): the packages' reboot has events of its own
/// (`…/config-package_update_upgrade_install/reboot`), sent only when the reboot is scheduled;
/// the packages module's own start/finish is sent once.
#[test]
fn the_packages_reboot_is_reported_only_when_it_is_scheduled() {
    if !can_apply_linux() {
        return;
    }
    let doc = "#cloud-config\nusers: []\npackages: [curl]\npackage_reboot_if_required: true\n";
    let reboot_events = |mock: &mock_maas::MockMaas| -> Vec<serde_json::Value> {
        mock.events(SYSTEM_ID)
            .into_iter()
            .filter(|e| e["name"] == "modules-final/config-package_update_upgrade_install/reboot")
            .collect()
    };
    // No package asks for a reboot: no reboot, no event for it.
    let ud = doc.to_string();
    let mock = mock_with(|f| f.machines[0].user_data = Some(ud));
    let t = netbsd_root(&mock);
    let r = t.path();
    with_shutdown_stub(r);
    let o = wisp(r, &["init"]);
    assert_eq!(shutdowns(r), "", "{}", stderr(&o));
    assert_eq!(
        package_finishes(&mock).len(),
        1,
        "{:#?}",
        mock.events(SYSTEM_ID)
    );
    assert!(
        reboot_events(&mock).is_empty(),
        "{:#?}",
        mock.events(SYSTEM_ID)
    );

    // One does: the reboot is scheduled and reported under its own name.
    let ud = doc.to_string();
    let mock = mock_with(|f| f.machines[0].user_data = Some(ud));
    let t = netbsd_root(&mock);
    let r = t.path();
    with_shutdown_stub(r);
    std::fs::create_dir_all(r.join("var/run")).unwrap();
    std::fs::write(r.join("var/run/reboot-required"), "").unwrap();
    let o = wisp(r, &["init"]);
    assert_eq!(shutdowns(r), "-r now\n", "{}", stderr(&o));
    assert_eq!(
        package_finishes(&mock).len(),
        1,
        "{:#?}",
        mock.events(SYSTEM_ID)
    );
    let events = reboot_events(&mock);
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["event_type"], "start");
    assert_eq!(events[1]["event_type"], "finish");
    assert_eq!(events[1]["result"], "SUCCESS");
    assert!(
        events[1]["description"]
            .as_str()
            .unwrap_or_default()
            .contains("reboot scheduled"),
        "{events:#?}"
    );
}

/// Final review of issue 13 (4): `wisp apply` makes one power change, as a boot does: the
/// user's power_state wins over the packages' reboot.
#[test]
fn apply_makes_one_power_change() {
    if !can_apply_linux() {
        return;
    }
    let mock = mock_with(|_| {});
    let t = netbsd_root(&mock);
    let r = t.path();
    with_shutdown_stub(r);
    std::fs::create_dir_all(r.join("var/run")).unwrap();
    std::fs::write(r.join("var/run/reboot-required"), "").unwrap();
    let doc = r.join("doc.yaml");
    std::fs::write(
        &doc,
        "#cloud-config\nusers: []\npackages: [curl]\npackage_reboot_if_required: true\n\
         power_state: {mode: poweroff}\n",
    )
    .unwrap();
    let o = wisp(
        r,
        &[
            "apply",
            "--instance-id",
            "i-1",
            "--user-data",
            doc.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(shutdowns(r), "-p now\n", "{}", stderr(&o));
}
