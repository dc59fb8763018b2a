//! Cloud-config documents: the typed model ([`model`]), cloud-init's leniency ([`lenient`]), and
//! where in the text each problem is ([`positions`]).

pub mod layers;
pub mod lenient;
pub mod model;
pub mod positions;
pub mod shapes;

use serde::Serialize;
use wisp_datasources::userdata::{yaml, Budget};
use yaml_serde::Value;

pub use lenient::{Problem, Reader, Severity};
pub use model::CloudConfig;
pub use positions::{Pos, Positions};

/// cloud-init's test for a password hash: `^\$(1|2a|2b|2y|5|6|argon2\w*|sha1)\$`.
pub fn is_password_hash(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('$') else {
        return false;
    };
    let Some((id, _)) = rest.split_once('$') else {
        return false;
    };
    matches!(id, "1" | "2a" | "2b" | "2y" | "5" | "6" | "sha1")
        || id
            .strip_prefix("argon2")
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// A problem and where it is.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    #[serde(flatten)]
    pub problem: Problem,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

/// A checked document.
#[derive(Debug, Default)]
pub struct Checked {
    pub config: CloudConfig,
    pub problems: Vec<Located>,
}

/// Reads and checks one `#cloud-config` text, locating every problem.
pub fn check_text(text: &str) -> Checked {
    check_text_with(text, &Budget::default())
}

/// [`check_text`] for a part of a user-data document: its encoded values draw from what
/// decoding the document left of its budget.
pub fn check_text_with(text: &str, budget: &Budget) -> Checked {
    let mut out = Checked::default();
    let locate = |problem: Problem, pos: Option<Pos>| Located {
        line: pos.map(|p| p.line),
        column: pos.map(|p| p.column),
        problem,
    };
    let first = text.lines().next().unwrap_or("").trim_end();
    if first != "#cloud-config" {
        out.problems.push(locate(
            Problem {
                path: String::new(),
                severity: Severity::Warning,
                message: "the first line is not #cloud-config: cloud-init would not read this as cloud-config".into(),
            },
            Some(Pos { line: 1, column: 1 }),
        ));
    }
    // The text is read as PyYAML would (`userdata::yaml::load`): a repeated key keeps its
    // last value, merge keys are merged; too deep a text is refused before any parse.
    let loaded = match yaml::load(text) {
        Ok(l) => l,
        Err(e) => {
            let message = match &e {
                yaml::LoadError::TooDeep(t) => {
                    format!("YAML collections nest deeper than {} levels", t.max)
                }
                other => other.to_string(),
            };
            out.problems.push(locate(
                Problem {
                    path: String::new(),
                    severity: Severity::Error,
                    message,
                },
                e.position().map(|(line, column)| Pos { line, column }),
            ));
            return out;
        }
    };
    // The positions come from the loader's own event walk: the text is not parsed again.
    let positions = loaded.positions;
    for n in loaded.notes {
        // A note without a place of its own (the bound on tags) is placed by its path.
        let at = n
            .line
            .zip(n.column)
            .or_else(|| positions.key(&n.path).map(|p| (p.line, p.column)));
        out.problems.push(Located {
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            problem: Problem {
                path: n.path,
                severity: Severity::Warning,
                message: n.message,
            },
        });
    }
    let doc: Value = loaded.value;
    let map = match doc {
        Value::Mapping(m) => m,
        Value::Null => Default::default(),
        other => {
            out.problems.push(locate(
                Problem {
                    path: String::new(),
                    severity: Severity::Error,
                    message: format!(
                        "a cloud-config must be a map, not {}",
                        lenient::describe(&other)
                    ),
                },
                Some(Pos { line: 1, column: 1 }),
            ));
            return out;
        }
    };
    let mut r = Reader {
        problems: Vec::new(),
        positions: Some(&positions),
        budget: Some(budget),
    };
    out.config = CloudConfig::read(&mut r, &map);
    for p in r.problems {
        // Unknown keys point at the key, bad values at the value.
        let pos = if p.severity == Severity::Warning {
            positions.key(&p.path)
        } else {
            positions.value(&p.path)
        };
        out.problems.push(locate(p, pos));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hashes() {
        for h in [
            "$6$salt$hash",
            "$2b$12$abc",
            "$1$x$y",
            "$argon2id$v=19$m",
            "$sha1$1$x",
        ] {
            assert!(is_password_hash(h), "{h}");
        }
        for p in ["password", "$7$x$y", "$6", "6$x$", "$argon2-x$y"] {
            assert!(!is_password_hash(p), "{p}");
        }
    }

    #[test]
    fn every_problem_is_located() {
        let text = "#cloud-config\nusers:\n  - name: alice\n    lock_passwd: maybe\n    frobnicate: 1\n  - 42\nruncmd: echo\nsnap: {}\nwrite_files:\n  - path: relative\n    permissions: 0999\n";
        let c = check_text(text);
        let got: Vec<(String, Option<usize>, Option<usize>, Severity)> = c
            .problems
            .iter()
            .map(|p| (p.problem.path.clone(), p.line, p.column, p.problem.severity))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "users[0].lock_passwd".into(),
                    Some(4),
                    Some(18),
                    Severity::Error
                ),
                (
                    "users[0].frobnicate".into(),
                    Some(5),
                    Some(5),
                    Severity::Warning
                ),
                ("users[1]".into(), Some(6), Some(5), Severity::Error),
                ("runcmd".into(), Some(7), Some(9), Severity::Error),
                ("snap".into(), Some(8), Some(1), Severity::Warning),
                (
                    "write_files[0].path".into(),
                    Some(10),
                    Some(11),
                    Severity::Error
                ),
                (
                    "write_files[0].permissions".into(),
                    Some(11),
                    Some(18),
                    Severity::Error
                ),
            ]
        );
        assert!(c
            .problems
            .iter()
            .any(|p| p.problem.severity == Severity::Error));
        // What could be read is kept.
        assert_eq!(c.config.users.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn too_deep_a_document_is_one_located_error() {
        let text = format!(
            "#cloud-config\nhostname: h\nruncmd:\n  - {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let c = check_text(&text);
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert_eq!(c.problems[0].line, Some(4));
        assert!(c.problems[0]
            .problem
            .message
            .contains("nest deeper than 64 levels"));
    }

    #[test]
    fn repeated_keys_are_located_warnings_and_a_bad_merge_key_an_error() {
        let c = check_text("#cloud-config\nhostname: a\nntp:\n  enabled: true\nhostname: b\n");
        let got: Vec<(String, Option<usize>, Option<usize>, Severity)> = c
            .problems
            .iter()
            .map(|p| (p.problem.path.clone(), p.line, p.column, p.problem.severity))
            .collect();
        assert_eq!(
            got,
            vec![("hostname".into(), Some(5), Some(1), Severity::Warning)]
        );
        assert_eq!(c.config.hostname.as_deref(), Some("b"));
        // PyYAML refuses a document whose `<<` is not maps: nothing of it is read.
        let c =
            check_text("#cloud-config\nhostname: a\nntp:\n  <<: 5\n  enabled: true\nhostname: b\n");
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert_eq!(c.problems[0].problem.severity, Severity::Error);
        assert!(
            c.problems[0].problem.message.contains("ntp.<<"),
            "{:?}",
            c.problems
        );
        assert_eq!(c.problems[0].line, Some(4));
        assert_eq!(c.config.hostname, None);
    }

    #[test]
    fn syntax_errors_and_wrong_shapes() {
        let c = check_text("#cloud-config\nusers: [unclosed\n");
        assert_eq!(c.problems.len(), 1);
        assert!(c.problems[0].line.is_some());
        let c = check_text("#cloud-config\n- a\n");
        assert!(c.problems[0].problem.message.contains("must be a map"));
        let c = check_text("hostname: x\n");
        assert_eq!(c.problems[0].problem.severity, Severity::Warning);
        assert!(c
            .problems
            .iter()
            .all(|p| p.problem.severity == Severity::Warning));
    }

    #[test]
    fn a_checked_text_is_walked_once_and_its_positions_come_from_the_load() {
        let text = "#cloud-config\nusers:\n  - name: alice\n    lock_passwd: maybe\n";
        let before = yaml::event_walks();
        let c = check_text(text);
        assert_eq!(
            yaml::event_walks() - before,
            1,
            "the loader's walk gives the positions too"
        );
        // The problem is placed by those positions: the value of `lock_passwd`.
        let bad: Vec<_> = c
            .problems
            .iter()
            .filter(|p| p.problem.path == "users[0].lock_passwd")
            .map(|p| (p.line, p.column))
            .collect();
        assert_eq!(bad, vec![(Some(4), Some(18))], "{:?}", c.problems);
        let loaded = yaml::load(text).unwrap();
        assert_eq!(
            loaded.positions.value("users[0].lock_passwd"),
            Some(Pos {
                line: 4,
                column: 18
            })
        );
    }
}
