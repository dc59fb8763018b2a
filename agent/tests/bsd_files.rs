//! The file-writing modules applied for real, for the BSDs, under a fake root on this machine:
//! exact file contents per OS, and a rerun that plans nothing. (Account tools need the OS; their
//! argv is checked by the golden plans.)

use std::path::Path;
use std::process::{Command, Output};

mod common;

const DOC: &str = "#cloud-config\nusers: []\nhostname: web1\nfqdn: web1.lab.example.com\nmanage_etc_hosts: true\ntimezone: Europe/Paris\nntp: {servers: [10.20.0.2]}\nwrite_files:\n  - {path: /etc/motd, content: \"hello\\n\"}\n  - {path: /etc/rc.local, content: \"echo hi\\n\", append: true, permissions: '0755'}\n";

fn fake_root() -> tempfile::TempDir {
    common::fresh_root()
}

fn wisp(platform: &str, root: &Path, extra: &[&str]) -> Output {
    let doc = root.join("user-data");
    std::fs::write(&doc, DOC).unwrap();
    common::apply(platform, root, extra, &doc, None)
}

fn read(root: &Path, p: &str) -> String {
    std::fs::read_to_string(root.join(p.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn rerun_plans_nothing(platform: &str, root: &Path) {
    let o = wisp(platform, root, &["--dry-run", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["actions"], serde_json::json!([]), "{platform}: {plan}");
}

#[test]
fn netbsd_rc_conf_hosts_ntp_timezone_files() {
    let t = fake_root();
    let r = t.path();
    let o = wisp("netbsd", r, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // hostname and ntp both edit rc.conf: both edits are there, the rest kept.
    assert_eq!(
        read(r, "/etc/rc.conf"),
        "# /etc/rc.conf\nsshd=YES\nhostname=\"web1.lab.example.com\"\nntpd=\"YES\"\n"
    );
    assert_eq!(
        read(r, "/etc/hosts"),
        "127.0.0.1\tlocalhost localhost.\n::1\t\tlocalhost localhost.\n# BEGIN wisp manage_etc_hosts\n127.0.0.1\tweb1.lab.example.com web1\n::1\tweb1.lab.example.com web1\n# END wisp manage_etc_hosts\n"
    );
    let ntp = read(r, "/etc/ntp.conf");
    assert!(
        ntp.contains("driftfile /var/db/ntp.drift\n") && ntp.contains("server 10.20.0.2 iburst\n"),
        "{ntp}"
    );
    assert!(
        !ntp.contains("pool "),
        "servers given: no default pool\n{ntp}"
    );
    assert_eq!(
        std::fs::read_link(r.join("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/Europe/Paris")
    );
    assert_eq!(read(r, "/etc/motd"), "hello\n");
    assert_eq!(read(r, "/etc/rc.local"), "echo hi\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(r.join("etc/rc.local"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o755);
    rerun_plans_nothing("netbsd", r);
}

#[test]
fn openbsd_myname_and_openntpd() {
    let t = fake_root();
    let r = t.path();
    let o = wisp("openbsd", r, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(read(r, "/etc/myname"), "web1.lab.example.com\n");
    assert_eq!(
        read(r, "/etc/ntpd.conf"),
        "# Written by wisp from cloud-config (ntp).\nserver 10.20.0.2\n"
    );
    // OpenBSD keeps the hostname in myname, not rc.conf, and OpenNTPD needs no enabling.
    assert_eq!(
        read(r, "/etc/rc.conf"),
        "# /etc/rc.conf\nsshd=YES\nhostname=localhost\n"
    );
    rerun_plans_nothing("openbsd", r);
}

#[test]
fn freebsd_enables_ntpd_its_way() {
    let t = fake_root();
    let r = t.path();
    let o = wisp("freebsd", r, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(
        read(r, "/etc/rc.conf"),
        "# /etc/rc.conf\nsshd=YES\nhostname=\"web1.lab.example.com\"\nntpd_enable=\"YES\"\n"
    );
    assert!(read(r, "/etc/ntp.conf").contains("driftfile /var/db/ntpd.drift\n"));
    rerun_plans_nothing("freebsd", r);
}

#[test]
fn instance_markers_skip_done_modules_until_a_new_instance() {
    let t = fake_root();
    let r = t.path();
    let run = |id: &str, extra: &[&str]| {
        let doc = r.join("user-data");
        std::fs::write(&doc, DOC).unwrap();
        Command::new(env!("CARGO_BIN_EXE_wisp"))
            .args(["--platform", "netbsd", "--root"])
            .arg(r)
            .args(extra)
            .args(["apply", "--user-data"])
            .arg(&doc)
            .args(["--instance-id", id])
            .output()
            .unwrap()
    };
    let o = run("i-1", &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(read(r, "/var/db/wisp/instance-id"), "i-1\n");
    // Someone edits motd; the same instance does not rewrite it.
    std::fs::write(r.join("etc/motd"), "edited\n").unwrap();
    let o = run("i-1", &["--dry-run", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["actions"], serde_json::json!([]), "{plan}");
    // Redeployed: a new instance id runs the per-instance modules again.
    let o = run("i-2", &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(read(r, "/etc/motd"), "hello\n");
    assert_eq!(read(r, "/var/db/wisp/previous-instance-id"), "i-1\n");
    let q = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .arg("--root")
        .arg(r)
        .args(["query", "--results"])
        .output()
        .unwrap();
    let results: serde_json::Value = serde_json::from_slice(&q.stdout).unwrap();
    assert_eq!(results["result"], "SUCCESS");
    assert_eq!(results["instance_id"], "i-2");
    assert_eq!(results["previous_instance_id"], "i-1");
}
