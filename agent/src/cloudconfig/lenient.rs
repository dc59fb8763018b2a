//! Reading YAML the way cloud-init does (PyYAML, YAML 1.1, and cloud-init's own coercions),
//! collecting every problem with its path instead of stopping at the first.

use serde::Serialize;
use yaml_serde::{Mapping, Value};

use wisp_datasources::userdata::yaml::{binary_text, timestamp_text};
use wisp_datasources::userdata::Budget;

use super::positions::Positions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem of a document: where (`users[1].lock_passwd`), how bad, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub severity: Severity,
    pub message: String,
}

/// The reading context: problems found so far and, when known, the positions of the text and
/// what is left of the decoding budget of the documents read.
#[derive(Default)]
pub struct Reader<'a> {
    pub problems: Vec<Problem>,
    pub positions: Option<&'a Positions>,
    /// Encoded values (`write_files` contents) are decoded from this; without one, each value
    /// alone may decode to the whole [`wisp_datasources::userdata::MAX_DECODED_BYTES`].
    pub budget: Option<&'a Budget>,
}

/// `parent.key`, or the key alone at the top.
pub fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A short description of a value for messages (never the whole value: it may be a secret or
/// megabytes long).
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 40 => "a long string".into(),
        Value::String(s) => format!("string {s:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a map".into(),
        v if timestamp_text(v).is_some() => {
            "a date (YAML 1.1 reads an unquoted date as one)".into()
        }
        v if binary_text(v).is_some() => "!!binary data".into(),
        Value::Tagged(_) => "a tagged value".into(),
    }
}

/// YAML 1.1 booleans exactly as PyYAML's resolver reads a plain scalar: `yes`, `Yes`, `YES`,
/// `on`, `On`, `ON` (and `no`, `off`, `true`, `false` alike), in these three spellings only;
/// `y`/`n` and `yEs` stay strings. Whether the scalar was quoted is not in `v`:
/// [`Reader::bool`] checks that where positions are known.
pub fn yaml11_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
            "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Keys may be written with `-` or `_`.
pub fn norm_key(k: &str) -> String {
    k.replace('-', "_")
}

/// The entries of a map with normalised string keys, in order. Non-string keys are reported.
pub fn entries<'v>(
    r: &mut Reader<'_>,
    path: &str,
    map: &'v Mapping,
) -> Vec<(String, String, &'v Value)> {
    let mut out = Vec::new();
    for (k, v) in map {
        match k {
            Value::String(s) => out.push((norm_key(s), s.clone(), v)),
            Value::Number(n) => out.push((n.to_string(), n.to_string(), v)),
            Value::Bool(b) => out.push((b.to_string(), b.to_string(), v)),
            other => r.error(
                path,
                format!("keys must be strings, not {}", describe(other)),
            ),
        }
    }
    out
}

impl Reader<'_> {
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_string(),
            severity: Severity::Error,
            message: message.into(),
        });
    }

    /// Whether the value at `path` was written quoted (false when the text is not known).
    pub fn is_quoted(&self, path: &str) -> bool {
        self.positions.is_some_and(|p| p.quoted(path))
    }

    pub fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_string(),
            severity: Severity::Warning,
            message: message.into(),
        });
    }

    /// The boolean at `path`: a YAML boolean, or a plain scalar PyYAML reads as one. A quoted
    /// `'yes'` is text to PyYAML (and to cloud-init's schema), so it is an error here.
    pub fn bool(&mut self, path: &str, v: &Value) -> Option<bool> {
        if v.is_string() && self.is_quoted(path) {
            self.error(
                path,
                format!(
                    "expected a boolean, got the quoted {} (YAML reads quoted text as a string): unquote it",
                    describe(v)
                ),
            );
            return None;
        }
        let b = yaml11_bool(v);
        if b.is_none() {
            self.error(
                path,
                format!(
                    "expected a boolean (true/false, yes/no, on/off), got {}",
                    describe(v)
                ),
            );
        }
        b
    }

    /// A string; numbers, booleans and dates are taken as their text, as cloud-init's `str()`
    /// would.
    pub fn string(&mut self, path: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            v if timestamp_text(v).is_some() => timestamp_text(v).map(str::to_string),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.error(path, format!("expected a string, got {}", describe(other)));
                None
            }
        }
    }

    /// A string where cloud-init's schema wants one and its modules use the value as is: a
    /// number, a boolean or an unquoted date is an error (PyYAML hands cloud-init an int, a
    /// bool or a date there, not the text written), and the value is not used.
    pub fn text(&mut self, path: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(_) | Value::Bool(_) => {
                self.error(
                    path,
                    format!("expected a string, got {}: quote it", describe(v)),
                );
                None
            }
            v if timestamp_text(v).is_some() => {
                self.error(
                    path,
                    "expected a string, got a date (YAML 1.1 reads an unquoted date as one, and cloud-init drops it): quote it",
                );
                None
            }
            other => {
                self.error(path, format!("expected a string, got {}", describe(other)));
                None
            }
        }
    }

    /// [`Reader::text`], or null (absent).
    pub fn opt_text(&mut self, path: &str, v: &Value) -> Option<String> {
        if v.is_null() {
            None
        } else {
            self.text(path, v)
        }
    }

    /// A string, or null (absent).
    pub fn opt_string(&mut self, path: &str, v: &Value) -> Option<String> {
        if v.is_null() {
            None
        } else {
            self.string(path, v)
        }
    }

    /// A list of strings, written as a list or as one comma-separated string.
    pub fn string_list(&mut self, path: &str, v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            other => self.string_or_list(path, other),
        }
    }

    /// As [`Reader::string_list`], and a single string, taken all the same, is a warning:
    /// cloud-init's schema wants a list there.
    pub fn string_list_said(&mut self, path: &str, v: &Value) -> Vec<String> {
        if v.is_string() {
            self.warn(
                path,
                "expected a list of strings; a single string is taken as one",
            );
        }
        self.string_list(path, v)
    }

    /// As [`Reader::string_or_list`], and a single string, taken all the same, is a warning:
    /// cloud-init's schema wants a list there.
    pub fn string_or_list_said(&mut self, path: &str, v: &Value) -> Vec<String> {
        if v.is_string() {
            self.warn(
                path,
                "expected a list of strings; a single string is taken as one",
            );
        }
        self.string_or_list(path, v)
    }

    /// A list of strings written as one string (one item) or a list — never split on commas
    /// (SSH keys contain commas in their options).
    pub fn string_or_list(&mut self, path: &str, v: &Value) -> Vec<String> {
        match v {
            Value::Null => Vec::new(),
            Value::String(s) => vec![s.clone()],
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.string(&format!("{path}[{i}]"), item))
                .collect(),
            other => {
                self.error(
                    path,
                    format!(
                        "expected a string or a list of strings, got {}",
                        describe(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    /// A non-negative integer, also written as a numeric string.
    pub fn uint(&mut self, path: &str, v: &Value, max: u64) -> Option<u64> {
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n <= max => Some(n),
            _ => {
                self.error(
                    path,
                    format!(
                        "expected a whole number from 0 to {max}, got {}",
                        describe(v)
                    ),
                );
                None
            }
        }
    }

    /// A file mode as cloud-init reads it: an octal string (`'0644'`), or an integer — which
    /// YAML 1.1 already read as octal when written with a leading zero.
    pub fn mode(&mut self, path: &str, v: &Value) -> Option<u32> {
        let from_octal = |s: &str| {
            let s = s.trim();
            let s = s.strip_prefix("0o").unwrap_or(s);
            u32::from_str_radix(s, 8).ok()
        };
        let mode = match v {
            Value::String(s) => from_octal(s),
            Value::Number(n) => {
                // yaml_serde reads YAML 1.2: an unquoted `0644` is 644. Look at the text.
                match self.positions.and_then(|p| p.plain(path)) {
                    Some(text) if text.starts_with('0') && text.len() > 1 => from_octal(text),
                    _ => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                }
            }
            _ => None,
        };
        match mode {
            Some(m) if m <= 0o7777 => Some(m),
            _ => {
                self.error(
                    path,
                    format!("expected a file mode such as '0644', got {}", describe(v)),
                );
                None
            }
        }
    }
}

/// Test help for module readers: reads `text` (one value) with a fresh [`Reader`] through `read`
/// and gives what it read with its problems as `path: message`.
#[cfg(test)]
pub fn read_for_test<T>(
    text: &str,
    path: &str,
    read: impl FnOnce(&mut Reader<'_>, &str, &Value) -> T,
) -> (T, Vec<String>) {
    let v: Value = yaml_serde::from_str(text).expect("a test document");
    let mut r = Reader::default();
    let got = read(&mut r, path, &v);
    let problems = r
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect();
    (got, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        yaml_serde::from_str(s).unwrap()
    }

    #[test]
    fn yaml11_booleans() {
        for t in [
            "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON",
        ] {
            assert_eq!(yaml11_bool(&Value::String(t.into())), Some(true), "{t}");
        }
        for f in [
            "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF",
        ] {
            assert_eq!(yaml11_bool(&Value::String(f.into())), Some(false), "{f}");
        }
        // PyYAML's resolver reads none of these as booleans.
        for s in ["y", "Y", "n", "N", "yEs", "oN", "tRUE", "maybe", "1"] {
            assert_eq!(yaml11_bool(&Value::String(s.into())), None, "{s}");
        }
    }

    #[test]
    fn a_quoted_yes_is_text_where_a_boolean_is_wanted() {
        let text = "a: yes\nb: 'yes'\nc: \"off\"\nd: y\ne: [on, 'on']\n";
        let pos = Positions::of(text);
        let v: Value = yaml_serde::from_str(text).unwrap();
        let mut r = Reader {
            positions: Some(&pos),
            ..Reader::default()
        };
        assert_eq!(r.bool("a", &v["a"]), Some(true));
        assert_eq!(r.bool("b", &v["b"]), None);
        assert_eq!(r.bool("c", &v["c"]), None);
        assert_eq!(r.bool("d", &v["d"]), None);
        assert_eq!(r.bool("e[0]", &v["e"][0]), Some(true));
        assert_eq!(r.bool("e[1]", &v["e"][1]), None);
        let paths: Vec<&str> = r.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["b", "c", "d", "e[1]"]);
        assert!(r.problems[0].message.contains("quoted"), "{:?}", r.problems);
        // Without the text, a string spelled as a YAML 1.1 boolean is taken.
        assert_eq!(Reader::default().bool("b", &v["b"]), Some(true));
    }

    #[test]
    fn lists_and_strings() {
        let mut r = Reader::default();
        assert_eq!(r.string_list("g", &y("'a, b ,c'")), vec!["a", "b", "c"]);
        assert_eq!(r.string_list("g", &y("[a, 7]")), vec!["a", "7"]);
        assert_eq!(
            r.string_or_list("k", &y("'ssh-rsa AAA x,y'")),
            vec!["ssh-rsa AAA x,y"]
        );
        assert!(r.problems.is_empty());
        r.string_list("g", &y("{a: 1}"));
        r.string_list("h", &y("[[nested]]"));
        assert_eq!(r.problems.len(), 2);
        assert_eq!(r.problems[1].path, "h[0]");
    }

    #[test]
    fn modes_like_cloud_init() {
        let text = "a: 0644\nb: '0600'\nc: 420\nd: 0o755\ne: 99999\nf: rwx\n";
        let pos = Positions::of(text);
        let v: Value = yaml_serde::from_str(text).unwrap();
        let mut r = Reader {
            positions: Some(&pos),
            ..Default::default()
        };
        assert_eq!(r.mode("a", &v["a"]), Some(0o644));
        assert_eq!(r.mode("b", &v["b"]), Some(0o600));
        assert_eq!(r.mode("c", &v["c"]), Some(0o644), "420 decimal is 0644");
        assert_eq!(r.mode("d", &v["d"]), Some(0o755));
        assert_eq!(r.mode("e", &v["e"]), None);
        assert_eq!(r.mode("f", &v["f"]), None);
        assert_eq!(r.problems.len(), 2);
    }

    #[test]
    fn descriptions_never_carry_long_values() {
        assert_eq!(describe(&Value::String("x".repeat(100))), "a long string");
        assert_eq!(describe(&y("[1]")), "a list");
    }
}
