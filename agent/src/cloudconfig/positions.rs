//! Where each node of a YAML document is, by path (`users[1].lock_passwd`), so that `wisp schema`
//! can point at every problem with its line and column. serde_yaml's `Value` keeps no positions;
//! this walks the event stream of libyaml — the parser serde_yaml itself is built on — so no
//! second YAML parser is linked into the binary.

use std::collections::HashMap;
use std::mem::MaybeUninit;

use unsafe_libyaml as unsafe_yaml;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Positions of keys and values of the first document of a text.
#[derive(Debug, Default)]
pub struct Positions {
    keys: HashMap<String, Pos>,
    values: HashMap<String, Pos>,
    /// The text of unquoted scalar values, as written (`0644` stays `0644`).
    plain: HashMap<String, String>,
}

enum Frame {
    Map {
        path: String,
        /// The key whose value comes next; `None` while a key is expected.
        key: Option<String>,
    },
    Seq {
        path: String,
        index: usize,
    },
}

/// `parent.key`, `parent[3]`, or the key alone at the top.
fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Positions {
    /// Indexes `text`. A syntax error ends the index where it occurs (serde_yaml reports it).
    pub fn of(text: &str) -> Positions {
        let mut out = Positions::default();
        let mut stack: Vec<Frame> = Vec::new();
        // SAFETY: the parser is initialised before use and deleted once; `text` outlives it;
        // every event that libyaml filled in is deleted exactly once; scalar data is copied
        // out before its event is deleted.
        unsafe {
            let mut parser = MaybeUninit::<unsafe_yaml::yaml_parser_t>::uninit();
            if unsafe_yaml::yaml_parser_initialize(parser.as_mut_ptr()).fail {
                return out;
            }
            let parser = parser.as_mut_ptr();
            unsafe_yaml::yaml_parser_set_input_string(parser, text.as_ptr(), text.len() as u64);
            loop {
                let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
                if unsafe_yaml::yaml_parser_parse(parser, event.as_mut_ptr()).fail {
                    break;
                }
                let event = event.as_mut_ptr();
                let mark = (*event).start_mark;
                let pos = Pos {
                    line: mark.line as usize + 1,
                    column: mark.column as usize + 1,
                };
                let kind = (*event).type_;
                let (scalar, plain) = if kind == unsafe_yaml::YAML_SCALAR_EVENT {
                    let s = (*event).data.scalar;
                    let bytes = std::slice::from_raw_parts(s.value, s.length as usize);
                    let text = String::from_utf8_lossy(bytes).into_owned();
                    (Some(text), s.style == unsafe_yaml::YAML_PLAIN_SCALAR_STYLE)
                } else {
                    (None, false)
                };
                unsafe_yaml::yaml_event_delete(event);
                match kind {
                    unsafe_yaml::YAML_DOCUMENT_END_EVENT | unsafe_yaml::YAML_STREAM_END_EVENT => {
                        break
                    }
                    unsafe_yaml::YAML_SCALAR_EVENT | unsafe_yaml::YAML_ALIAS_EVENT => {
                        if let Some(path) = out.node(&mut stack, pos, scalar.clone(), None) {
                            if let (true, Some(text)) = (plain, scalar) {
                                out.plain.insert(path, text);
                            }
                        }
                    }
                    unsafe_yaml::YAML_MAPPING_START_EVENT => {
                        out.node(&mut stack, pos, None, Some(true));
                    }
                    unsafe_yaml::YAML_SEQUENCE_START_EVENT => {
                        out.node(&mut stack, pos, None, Some(false));
                    }
                    unsafe_yaml::YAML_MAPPING_END_EVENT | unsafe_yaml::YAML_SEQUENCE_END_EVENT => {
                        let was_key = matches!(stack.pop(), Some(Frame::Seq { path, .. }) if path.ends_with(".?"));
                        // A container value ended: the map that holds it expects a key again.
                        if !was_key {
                            if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                                *key = None;
                            }
                        }
                    }
                    _ => {}
                }
            }
            unsafe_yaml::yaml_parser_delete(parser);
        }
        out
    }

    /// A node arrived: a scalar (`scalar`), or the start of a container (`container`: true for
    /// a map). Returns the path of a value node (`None` for a key).
    fn node(
        &mut self,
        stack: &mut Vec<Frame>,
        pos: Pos,
        scalar: Option<String>,
        container: Option<bool>,
    ) -> Option<String> {
        let path = match stack.last_mut() {
            None => String::new(),
            Some(Frame::Seq { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                p
            }
            Some(Frame::Map { path, key }) => match key.take() {
                None => {
                    // This node is a key.
                    let name = scalar.unwrap_or_else(|| "?".into());
                    let full = join(path, &name);
                    let complex = format!("{path}.?");
                    self.keys.entry(full).or_insert(pos);
                    *key = Some(name);
                    if container.is_some() {
                        // A complex key: index nothing inside it.
                        stack.push(Frame::Seq {
                            path: complex,
                            index: 0,
                        });
                    }
                    return None;
                }
                Some(name) => join(path, &name),
            },
        };
        self.values.entry(path.clone()).or_insert(pos);
        match container {
            Some(true) => stack.push(Frame::Map {
                path: path.clone(),
                key: None,
            }),
            Some(false) => stack.push(Frame::Seq {
                path: path.clone(),
                index: 0,
            }),
            None => {}
        }
        Some(path)
    }

    /// The text of an unquoted scalar at `path`, exactly as written.
    pub fn plain(&self, path: &str) -> Option<&str> {
        self.plain.get(path).map(String::as_str)
    }

    /// Where the key of `path` is written, else its nearest ancestor's.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.lookup(path, true)
    }

    /// Where the value of `path` is written, else its key's, else its nearest ancestor's.
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.lookup(path, false)
    }

    fn lookup(&self, path: &str, key_first: bool) -> Option<Pos> {
        let mut p = path.to_string();
        loop {
            let (first, second) = if key_first {
                (&self.keys, &self.values)
            } else {
                (&self.values, &self.keys)
            };
            if let Some(pos) = first.get(&p).or_else(|| second.get(&p)) {
                return Some(*pos);
            }
            // Up one level: strip `[n]` or `.key`.
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "#cloud-config\nusers:\n  - default\n  - name: alice\n    lock_passwd: maybe\n    groups: [wheel, 'op']\nwrite_files:\n- {path: /etc/x, permissions: 0644}\nruncmd:\n  - [ls, -l]\n";

    fn at(line: usize, column: usize) -> Option<Pos> {
        Some(Pos { line, column })
    }

    #[test]
    fn keys_and_values_of_nested_nodes() {
        let p = Positions::of(DOC);
        assert_eq!(p.key("users"), at(2, 1));
        assert_eq!(p.value("users[0]"), at(3, 5));
        assert_eq!(p.key("users[1].lock_passwd"), at(5, 5));
        assert_eq!(p.value("users[1].lock_passwd"), at(5, 18));
        assert_eq!(p.value("users[1].groups[1]"), at(6, 21));
        assert_eq!(p.value("write_files[0].permissions"), at(8, 31));
        assert_eq!(p.value("runcmd[0][1]"), at(10, 10));
        assert_eq!(p.plain("write_files[0].permissions"), Some("0644"));
        assert_eq!(p.plain("users[1].groups[1]"), None, "quoted");
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_ancestor() {
        let p = Positions::of(DOC);
        assert_eq!(p.value("users[1].shell"), at(4, 5));
        assert_eq!(p.key("nope"), None);
    }

    #[test]
    fn broken_documents_index_what_came_before() {
        let p = Positions::of("a: 1\nb: [unclosed\nc: 2\n");
        assert_eq!(p.key("a"), at(1, 1));
        assert_eq!(p.key("c"), None);
        let _ = Positions::of("");
        let p = Positions::of("? [complex, key]\n: value\nafter: 1\n");
        assert_eq!(p.key("after"), at(3, 1));
    }
}
