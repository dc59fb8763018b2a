//! `wisp schema`: every problem with its line and column; exit 0 clean, 1 errors, 2 warnings.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schema")
        .join(name)
}

fn schema(args: &[&str], files: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wisp"));
    c.arg("schema").args(args);
    for f in files {
        c.arg(fixture(f));
    }
    c.output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn documented_examples_are_valid() {
    let o = schema(&[], &["valid.yaml"]);
    // ssh_import_id is reported as not applied on the BSDs: a warning, not an error.
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let text = out(&o);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("valid.yaml:19:5: warning: users[2].ssh_import_id: not applied"),
        "{text}"
    );
}

#[test]
fn every_error_has_its_position() {
    let o = schema(&[], &["invalid.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    let f = fixture("invalid.yaml").display().to_string();
    assert_eq!(
        lines,
        vec![
            format!("{f}:4:18: error: users[0].lock_passwd: expected a boolean (true/false, yes/no, on/off), got string \"maybe\""),
            format!("{f}:5:5: warning: users[0].colour: unknown user key (ignored)"),
            format!("{f}:6:13: error: ssh_pwauth: expected a boolean (true/false, yes/no, on/off), got string \"sometimes\""),
            format!("{f}:8:11: error: write_files[0].path: \"etc/relative\" is not an absolute path"),
            format!("{f}:10:18: error: write_files[1].permissions: expected a file mode such as '0644', got string \"0999\""),
            format!("{f}:11:1: warning: frobnicate: unknown key (ignored)"),
        ]
    );
}

#[test]
fn warnings_only_exit_2_and_clean_exits_0() {
    assert_eq!(schema(&[], &["warnings.yaml"]).status.code(), Some(2));
    let tmp = std::env::temp_dir().join(format!("wisp-schema-{}.yaml", std::process::id()));
    std::fs::write(&tmp, "#cloud-config\nhostname: a\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .arg("schema")
        .arg(&tmp)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(out(&o).contains("valid cloud-config"));
    std::fs::remove_file(tmp).unwrap();
}

#[test]
fn mime_user_data_is_checked_part_by_part() {
    let o = schema(&[], &["multipart.txt"]);
    assert_eq!(o.status.code(), Some(1));
    let text = out(&o);
    assert!(
        text.contains(":2:11 (part two.cfg): error: timezone: expected a string, got a list"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn json_output_and_several_files() {
    let o = schema(&["--format", "json"], &["invalid.yaml", "warnings.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files"][0]["valid"], false);
    assert_eq!(v["files"][0]["problems"][0]["line"], 4);
    assert_eq!(v["files"][0]["problems"][0]["column"], 18);
    assert_eq!(v["files"][0]["problems"][0]["severity"], "error");
    assert_eq!(v["files"][0]["problems"][0]["path"], "users[0].lock_passwd");
    assert_eq!(v["files"][1]["valid"], true);
    assert_eq!(v["files"][1]["problems"][0]["path"], "mounts");
}

#[test]
fn unreadable_binary_and_hostile_input() {
    let dir = std::env::temp_dir().join(format!("wisp-schema-h-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("binary");
    std::fs::write(&bin, [0u8, 159, 146, 150, 1, 2, 3]).unwrap();
    let huge = dir.join("huge.yaml");
    std::fs::write(
        &huge,
        format!(
            "#cloud-config\nhostname: {}\nusers: {}\n",
            "a".repeat(1 << 20),
            "[x, ".repeat(2000)
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .arg("schema")
        .arg(&bin)
        .arg(dir.join("missing.yaml"))
        .arg(&huge)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = out(&o);
    assert!(
        text.contains("binary data without a known header"),
        "{text}"
    );
    assert!(text.contains("missing.yaml: error: cannot read"), "{text}");
    // 2,000 open lists: refused at the nesting limit, before the parser reaches the end.
    assert!(
        text.contains("huge.yaml:3:1: error: YAML collections nest deeper than 64 levels"),
        "{text}"
    );
    assert!(
        !text.contains(&"a".repeat(100)),
        "values are not echoed whole"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
