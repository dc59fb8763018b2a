//! Where each node of a YAML document is, by path (`users[1].lock_passwd`), so that `wisp schema`
//! can point at every problem with its line and column. yaml_serde's `Value` keeps no positions;
//! this walks the event stream of libyaml — the parser yaml_serde itself is built on — so no
//! second YAML parser is linked into the binary.

use std::collections::HashMap;
use std::mem::MaybeUninit;

use libyaml_rs as unsafe_yaml;
use wisp_datasources::userdata::yaml::MAX_YAML_DEPTH;

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
///
/// Nodes are kept as a tree: each knows its parent and its own segment (a key or an index),
/// never its whole path, so memory stays linear in the text however deep or long-keyed it is.
#[derive(Debug)]
pub struct Positions {
    nodes: Vec<Node>,
    /// A node's child by segment.
    children: HashMap<(usize, Segment), usize>,
}

impl Default for Positions {
    fn default() -> Self {
        Positions {
            nodes: vec![Node::default()],
            children: HashMap::new(),
        }
    }
}

/// Index 0 is the document itself (the empty path).
const ROOT: usize = 0;

#[derive(Debug, Default)]
struct Node {
    key: Option<Pos>,
    value: Option<Pos>,
    /// The text of an unquoted scalar value, as written (`0644` stays `0644`).
    plain: Option<Box<str>>,
    /// A quoted (or block) scalar value: text to PyYAML whatever it reads like (`'yes'`).
    quoted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Key(Box<str>),
    Index(usize),
}

enum Frame {
    Map {
        node: usize,
        /// The key whose value comes next; `None` while a key is expected.
        key: Option<usize>,
    },
    Seq {
        node: usize,
        index: usize,
    },
    /// Inside a complex key (`? [a, b]`): nothing is indexed.
    Skip,
}

impl Positions {
    /// Indexes `text`. A syntax error ends the index where it occurs (yaml_serde reports it),
    /// and so does nesting deeper than [`MAX_YAML_DEPTH`] (reported by the reader).
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
                        let text = if plain { scalar.clone() } else { None };
                        let quoted = kind == unsafe_yaml::YAML_SCALAR_EVENT && !plain;
                        if let Some(node) = out.node(&mut stack, pos, scalar, None) {
                            if let Some(text) = text {
                                out.nodes[node].plain = Some(text.into());
                            }
                            out.nodes[node].quoted = quoted;
                        }
                    }
                    unsafe_yaml::YAML_MAPPING_START_EVENT
                    | unsafe_yaml::YAML_SEQUENCE_START_EVENT => {
                        if stack.len() >= MAX_YAML_DEPTH {
                            break;
                        }
                        let map = kind == unsafe_yaml::YAML_MAPPING_START_EVENT;
                        out.node(&mut stack, pos, None, Some(map));
                    }
                    unsafe_yaml::YAML_MAPPING_END_EVENT | unsafe_yaml::YAML_SEQUENCE_END_EVENT => {
                        let ended_skip = matches!(stack.pop(), Some(Frame::Skip));
                        let complex_key_ended =
                            ended_skip && !matches!(stack.last(), Some(Frame::Skip));
                        // A container value ended: the map that holds it expects a key again.
                        // (A complex key ended: its value comes next.)
                        if !complex_key_ended {
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

    /// The node at `segment` under `parent`, made if new.
    fn child(&mut self, parent: usize, segment: Segment) -> usize {
        let next = self.nodes.len();
        let id = *self.children.entry((parent, segment)).or_insert(next);
        if id == next {
            self.nodes.push(Node::default());
        }
        id
    }

    /// A node arrived: a scalar (`scalar`), or the start of a container (`container`: true for
    /// a map). Returns the value node (`None` for a key or inside a complex key).
    fn node(
        &mut self,
        stack: &mut Vec<Frame>,
        pos: Pos,
        scalar: Option<String>,
        container: Option<bool>,
    ) -> Option<usize> {
        let id = match stack.last_mut() {
            None => ROOT,
            Some(Frame::Skip) => {
                if container.is_some() {
                    stack.push(Frame::Skip);
                }
                return None;
            }
            Some(Frame::Seq { node, index }) => {
                let (parent, i) = (*node, *index);
                *index += 1;
                self.child(parent, Segment::Index(i))
            }
            Some(Frame::Map { node, key }) => match key.take() {
                None => {
                    // This node is a key.
                    let parent = *node;
                    let name = scalar.unwrap_or_else(|| "?".into());
                    let id = self.child(parent, Segment::Key(name.into()));
                    // A repeated key: its last value is the one read (`yaml::load`).
                    self.nodes[id].key = Some(pos);
                    if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                        *key = Some(id);
                    }
                    if container.is_some() {
                        // A complex key: index nothing inside it.
                        stack.push(Frame::Skip);
                    }
                    return None;
                }
                Some(id) => id,
            },
        };
        self.nodes[id].value = Some(pos);
        self.nodes[id].plain = None;
        self.nodes[id].quoted = false;
        match container {
            Some(true) => stack.push(Frame::Map {
                node: id,
                key: None,
            }),
            Some(false) => stack.push(Frame::Seq { node: id, index: 0 }),
            None => {}
        }
        Some(id)
    }

    /// The nodes along `path` from the root, as far as they exist, and whether all of `path`
    /// was found. Keys may hold `.` and `[`, so a path may split into segments more than one
    /// way: a split that finds all of it wins, else the one that goes deepest.
    fn walk(&self, path: &str) -> (Vec<usize>, bool) {
        let mut best = vec![ROOT];
        let mut chain = vec![ROOT];
        // Splits tried at most: keys made to share prefixes cannot make a lookup slow.
        let mut steps = 10_000usize;
        let full = self.search(path, &mut chain, &mut best, &mut steps);
        (if full { chain } else { best }, full)
    }

    /// Depth-first over the splits of `rest` below the last node of `chain`.
    fn search(
        &self,
        rest: &str,
        chain: &mut Vec<usize>,
        best: &mut Vec<usize>,
        steps: &mut usize,
    ) -> bool {
        if rest.is_empty() {
            return true;
        }
        if chain.len() > best.len() {
            best.clone_from(chain);
        }
        let at = chain.last().copied().unwrap_or(ROOT);
        let mut candidates: Vec<(usize, &str)> = Vec::new();
        if let Some(r) = rest.strip_prefix('[') {
            if let Some((n, after)) = r.split_once(']') {
                if let Some(id) = n
                    .parse()
                    .ok()
                    .and_then(|i| self.children.get(&(at, Segment::Index(i))))
                {
                    candidates.push((*id, after));
                }
            }
        }
        let key_part = if at == ROOT {
            Some(rest)
        } else {
            rest.strip_prefix('.')
        };
        if let Some(r) = key_part {
            for cut in r
                .match_indices(['.', '['])
                .map(|(i, _)| i)
                .chain(std::iter::once(r.len()))
            {
                if let Some(id) = self.children.get(&(at, Segment::Key(r[..cut].into()))) {
                    candidates.push((*id, &r[cut..]));
                }
            }
        }
        for (id, after) in candidates {
            if *steps == 0 {
                return false;
            }
            *steps -= 1;
            chain.push(id);
            if self.search(after, chain, best, steps) {
                return true;
            }
            chain.pop();
        }
        false
    }

    /// The text of an unquoted scalar at `path`, exactly as written.
    pub fn plain(&self, path: &str) -> Option<&str> {
        match self.walk(path) {
            (chain, true) => chain.last().and_then(|&n| self.nodes[n].plain.as_deref()),
            _ => None,
        }
    }

    /// Whether the value at `path` is written as a quoted (or block) scalar. False when unknown.
    pub fn quoted(&self, path: &str) -> bool {
        match self.walk(path) {
            (chain, true) => chain.last().is_some_and(|&n| self.nodes[n].quoted),
            _ => false,
        }
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
        let (chain, _) = self.walk(path);
        // The document itself stands for the empty path only: an unknown top-level key has
        // no position.
        let from = usize::from(!path.is_empty());
        chain[from..].iter().rev().find_map(|&n| {
            let node = &self.nodes[n];
            if key_first {
                node.key.or(node.value)
            } else {
                node.value.or(node.key)
            }
        })
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
    fn keys_with_dots_and_brackets_are_found() {
        let p = Positions::of("a.b:\n  c[0]: 1\na:\n  b: 2\n");
        assert_eq!(p.value("a.b.c[0]"), at(2, 9));
        assert_eq!(p.value("a.b"), at(4, 6));
        assert_eq!(p.value("a.b.x"), at(4, 6), "the deepest that exists");
    }

    /// Seconds to index `text`.
    fn time_of(text: &str) -> f64 {
        let start = std::time::Instant::now();
        let p = Positions::of(text);
        assert!(p.nodes.len() > 5_000);
        start.elapsed().as_secs_f64()
    }

    #[test]
    fn memory_and_time_are_linear_in_long_keys() {
        // A path string per node would copy the long key into each of its 5,000 items:
        // 250 MB for a 50 KB key. Each node keeping only its own segment costs the same either
        // way, but for reading the key once.
        let doc = |key: usize| {
            // An explicit key (`? `): a plain one is at most 1024 characters.
            let mut s = format!("? {}\n:\n", "k".repeat(key));
            s.push_str(&"  - x\n".repeat(5_000));
            s
        };
        let short = doc(1);
        let long = doc(50_000);
        let p = Positions::of(&long);
        let key = "k".repeat(50_000);
        assert_eq!(p.value(&format!("{key}[4999]")), at(5_002, 5));
        let base = time_of(&short).max(0.02);
        let t = time_of(&long);
        assert!(t < 10.0 * base, "short key {base:.4}s, 50 KB key {t:.4}s");
    }

    #[test]
    fn indexing_stops_at_the_depth_limit() {
        let deep =
            |levels: usize| format!("a: {}{}\nb: 1\n", "[".repeat(levels), "]".repeat(levels));
        let timed = |text: &str| {
            let start = std::time::Instant::now();
            let p = Positions::of(text);
            (start.elapsed().as_secs_f64(), p)
        };
        let (small, _) = timed(&deep(1_000));
        let (large, p) = timed(&deep(100_000));
        assert_eq!(p.key("a"), at(1, 1));
        assert_eq!(p.key("b"), None, "indexing stopped");
        // Indexed in full, 100 times the levels cost 10,000 times as long.
        assert!(large < 20.0 * small.max(0.02), "{small}s, {large}s");
        let (_, q) = timed(&deep(60));
        assert_eq!(q.key("b"), at(2, 1));
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
