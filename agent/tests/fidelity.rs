//! cloud-config fidelity: a corpus of documents (`tests/fixtures/corpus/fidelity/`), each with
//! the verdict cloud-init (26.x) gives it — or, where wisp deliberately differs, wisp's own —
//! as `# expect: <error|warning> <path>` lines. `wisp schema` must give exactly those, and
//! `wisp apply` must report the same items in the same classes and apply what the document says.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

mod common;

fn corpus() -> Vec<PathBuf> {
    let dir = common::manifest_path("tests/fixtures/corpus/fidelity");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    files
}

/// `(severity, path)` of each `# expect:` line.
fn expected(doc: &Path) -> BTreeSet<(String, String)> {
    std::fs::read_to_string(doc)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|l| {
            let (sev, path) = l.split_once(' ').unwrap();
            (sev.to_string(), path.trim().to_string())
        })
        .collect()
}

/// How an `# expect:` line names a problem of the whole document (it has no key path).
const WHOLE_DOCUMENT: &str = "(document)";

/// `(severity, path)` of each problem `wisp schema` reports, and its exit code.
fn schema(doc: &Path) -> (BTreeSet<(String, String)>, Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["--format", "json", "schema"])
        .arg(doc)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let mut got = BTreeSet::new();
    for p in report["files"][0]["problems"].as_array().unwrap() {
        let path = match p["path"].as_str().unwrap() {
            "" => WHOLE_DOCUMENT,
            path => path,
        };
        let sev = p["severity"].as_str().unwrap();
        got.insert((sev.to_string(), path.to_string()));
    }
    (got, o.status.code(), text)
}

#[test]
fn schema_gives_each_document_its_verdict() {
    let mut failures = Vec::new();
    for doc in corpus() {
        let want = expected(&doc);
        let (got, code, text) = schema(&doc);
        let want_code = if want.iter().any(|(s, _)| s == "error") {
            1
        } else if want.is_empty() {
            0
        } else {
            2
        };
        if got != want || code != Some(want_code) {
            failures.push(format!(
                "{}: exit {code:?} (want {want_code})\nwant {want:?}\ngot  {got:?}\n{text}",
                doc.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn plan(doc: &Path) -> Value {
    let root = common::fresh_root();
    common::json_plan("netbsd", root.path(), doc, None).0
}

fn corpus_doc(name: &str) -> PathBuf {
    common::manifest_path(&format!("tests/fixtures/corpus/fidelity/{name}.yaml"))
}

#[test]
fn apply_reports_errors_as_errors_like_schema() {
    for doc in corpus() {
        let plan = plan(&doc);
        let prefix = format!("{}: ", doc.display());
        let got: BTreeSet<String> = plan["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| {
                let path = e["item"].as_str()?.strip_prefix(&prefix)?;
                // A part that could not be read is named by its part, not a key.
                Some(match e["module"].as_str()? {
                    "user-data" => WHOLE_DOCUMENT.to_string(),
                    _ => path.to_string(),
                })
            })
            .collect();
        let want: BTreeSet<String> = expected(&doc)
            .into_iter()
            .filter(|(s, _)| s == "error")
            .map(|(_, p)| p)
            .collect();
        assert_eq!(got, want, "{}: {:#}", doc.display(), plan["errors"]);
        for w in plan["warnings"].as_array().unwrap() {
            assert!(
                !w.as_str().unwrap().contains(": error: "),
                "{}: an error among the warnings: {w}",
                doc.display()
            );
        }
    }
}

fn writes<'p>(plan: &'p Value, path: &str) -> Vec<&'p Value> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "write" && a["path"] == path)
        .collect()
}

#[test]
fn a_repeated_key_keeps_its_last_value_and_the_rest_is_applied() {
    let plan = plan(&corpus_doc("duplicate-keys"));
    let hostnames: Vec<&Value> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["module"] == "hostname")
        .collect();
    assert!(!hostnames.is_empty(), "{plan:#}");
    assert!(hostnames.iter().all(|a| a["item"] == "second"), "{plan:#}");
    let motd = writes(&plan, "/etc/motd");
    assert_eq!(motd.len(), 1, "{plan:#}");
    assert_eq!(motd[0]["owner"], "bin");
    assert!(plan["warnings"].as_array().unwrap().iter().any(|w| w
        .as_str()
        .unwrap()
        .contains("duplicate key \"hostname\" (lines 5 and 11)")));
}

#[test]
fn binary_contents_are_written_decoded() {
    let plan = plan(&corpus_doc("binary"));
    let want = format!("{:x}", Sha256::digest(b"hello\n"));
    for path in ["/etc/hello", "/etc/hello-gz", "/etc/hello-merged"] {
        let w = writes(&plan, path);
        assert_eq!(w.len(), 1, "{path}: {plan:#}");
        assert_eq!(w[0]["size"], 6, "{path}");
        assert_eq!(w[0]["sha256"], want.as_str(), "{path}");
    }
}

#[test]
fn merged_fields_are_kept() {
    let plan = plan(&corpus_doc("merge-keys"));
    let b = writes(&plan, "/etc/secret-b");
    assert_eq!(b.len(), 1, "{plan:#}");
    assert_eq!(b[0]["mode"], "0600");
    assert_eq!(b[0]["group"], "wheel");
    assert_eq!(b[0]["size"], 1);
}

#[test]
fn values_of_the_wrong_type_are_not_applied() {
    let plan = plan(&corpus_doc("coercions"));
    let actions = plan["actions"].as_array().unwrap();
    assert!(
        !actions.iter().any(|a| a["module"] == "hostname"),
        "{plan:#}"
    );
    assert!(writes(&plan, "/etc/n").is_empty(), "{plan:#}");
}

/// The `useradd` argv planned for `user`.
fn useradd<'p>(plan: &'p Value, user: &str) -> Vec<&'p str> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["argv"].as_array())
        .map(|argv| argv.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        .find(|argv| argv.contains(&"useradd") && argv.last() == Some(&user))
        .unwrap_or_else(|| panic!("no useradd for {user}: {plan:#}"))
}

#[test]
fn numbers_for_users_strings_and_decimal_modes_are_not_applied() {
    let plan = plan(&corpus_doc("coercions-users"));
    // alice's fields in error are left out; the account is still made.
    assert_eq!(useradd(&plan, "alice")[2..], ["useradd", "-m", "alice"]);
    // A string of days is applied.
    assert_eq!(
        useradd(&plan, "bob")[2..],
        ["useradd", "-m", "-f", "30", "bob"]
    );
    // A single key, with its warning, is written.
    assert_eq!(writes(&plan, "/home/bob/.ssh/authorized_keys").len(), 1);
    // `644` is not a mode wisp guesses at; `0640` is the octal mode it looks like.
    assert!(writes(&plan, "/etc/p").is_empty(), "{plan:#}");
    let q = writes(&plan, "/etc/q");
    assert_eq!(q.len(), 1, "{plan:#}");
    assert_eq!(q[0]["mode"], "0640");
}
