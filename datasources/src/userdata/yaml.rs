//! Reading YAML the way cloud-init (PyYAML) does, over yaml_serde and the libyaml parser it is
//! built on: a bound on nesting, duplicate keys kept last-wins with a warning, merge keys
//! (`<<`) merged, and `!!binary` scalars marked so that readers can decode them.
//!
//! Every YAML text wisp reads goes through this module ([`load`], [`from_str`], [`from_slice`],
//! [`deserializer`]): each applies the nesting bound and the node budget below before
//! yaml_serde sees the text.
//!
//! The node budget: a parsed node costs far more memory than its text (`[a,a,a]` is two bytes
//! per element, a `Value` about a hundred), so 16 MiB of flow list would be a gigabyte of
//! values. The event walk charges each node (aliases: the whole tree they repeat) an upper
//! bound on its cost and stops at the limit, before yaml_serde builds anything.
//!
//! The nesting bound: libyaml's scanner does work in proportion to the open flow levels for
//! every token, so 100,000 levels of `[` (200 KB) cost a minute of CPU before yaml_serde's own
//! recursion limit is ever reached. The event walk here stops at the first level too deep, so
//! a deep document costs no more than a shallow one of the allowed depth.

use std::collections::HashMap;
use std::mem::MaybeUninit;

use libyaml_rs as unsafe_yaml;
use serde::de::{
    Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use yaml_serde::value::{Tag, TaggedValue};
use yaml_serde::{Mapping, Value};

/// How deep YAML maps and lists may nest. cloud-config never needs more than a handful.
pub const MAX_YAML_DEPTH: usize = 64;

/// The most memory, in bytes, a parsed YAML tree may take when the caller sets no other limit
/// (user-data draws from its decoding budget instead, [`load_within`]).
pub const MAX_TREE_BYTES: u64 = 64 * 1024 * 1024;

/// An upper bound on the memory one parsed node takes besides its scalar text: the `Value`,
/// its slot in a list or map (a map entry holds its hash and index too), and the allocator's
/// rounding of the text. yaml_serde's own event list costs less per node than this.
pub const NODE_COST: u64 = 2 * std::mem::size_of::<Value>() as u64 + 64;

/// A collection opened deeper than the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: YAML collections nest deeper than {max} levels")]
pub struct TooDeep {
    /// 1-based line of the first collection too deep.
    pub line: usize,
    pub max: usize,
}

/// A text whose parsed tree would take more memory than allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "line {line}: the parsed YAML would take more than {limit} bytes of memory (aliases expanded)"
)]
pub struct TooLarge {
    /// 1-based line of the node that passed the limit.
    pub line: usize,
    pub limit: u64,
}

/// Checks that no collection of `text` nests deeper than `max` levels. Syntax errors are not
/// reported here: the YAML reader that comes next names them.
pub fn check_depth(text: &[u8], max: usize) -> Result<(), TooDeep> {
    match scan(text, max, u64::MAX) {
        Ok(_) => Ok(()),
        Err(LoadError::TooDeep(e)) => Err(e),
        Err(_) => Ok(()),
    }
}

/// The bounds every reader applies: nesting, then the memory of the tree (at most `limit`
/// bytes). Returns the cost charged.
fn bounded(text: &[u8], limit: u64) -> Result<Scan, LoadError> {
    scan(text, MAX_YAML_DEPTH, limit)
}

fn invalid(e: yaml_serde::Error) -> LoadError {
    let at = e.location();
    LoadError::Invalid {
        message: e.to_string(),
        line: at.as_ref().map(|l| l.line()),
        column: at.as_ref().map(|l| l.column()),
    }
}

/// Reads `text` into `T` with yaml_serde, after the nesting bound and the node budget
/// ([`MAX_TREE_BYTES`]). The one way wisp turns YAML text into data, besides [`load`].
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, LoadError> {
    bounded(text.as_bytes(), MAX_TREE_BYTES)?;
    yaml_serde::from_str(text).map_err(invalid)
}

/// [`from_str`] of bytes, which must be UTF-8.
pub fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, LoadError> {
    let text = std::str::from_utf8(bytes).map_err(|e| LoadError::Invalid {
        message: format!("not UTF-8: {e}"),
        line: None,
        column: None,
    })?;
    from_str(text)
}

/// A yaml_serde deserializer of `text` once the bounds of [`from_str`] hold, for readers that
/// deserialize through a wrapper (such as serde_path_to_error).
pub fn deserializer(text: &str) -> Result<yaml_serde::Deserializer<'_>, LoadError> {
    bounded(text.as_bytes(), MAX_TREE_BYTES)?;
    Ok(yaml_serde::Deserializer::from_str(text))
}

/// The tag wisp gives a `!!binary` scalar (yaml_serde would drop the tag): its value is the
/// base64 text as written, decoded by the reader that takes bytes.
pub const BINARY_TAG: &str = "!!binary";

/// The tag wisp gives a plain scalar that YAML 1.1 reads as a timestamp (`2032-09-01`): PyYAML
/// makes it a date, which cloud-init's schema refuses where it expects a string.
pub const TIMESTAMP_TAG: &str = "!!timestamp";

/// The text of a plain scalar YAML 1.1 reads as a timestamp, if `v` is one.
pub fn timestamp_text(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == TIMESTAMP_TAG => t.value.as_str(),
        _ => None,
    }
}

/// YAML 1.1's timestamp forms: `2001-12-14`, `2001-12-14t21:59:43.10-05:00`,
/// `2001-12-14 21:59:43.10 -5`, `2001-12-15T02:59:43.1Z`.
pub fn is_yaml11_timestamp(s: &str) -> bool {
    fn digits(s: &str, min: usize, max: usize) -> Option<&str> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        (min..=max).contains(&n).then(|| &s[n..])
    }
    fn date(s: &str, short: bool) -> Option<&str> {
        let (lo, hi) = if short { (2, 2) } else { (1, 2) };
        let s = digits(s, 4, 4)?.strip_prefix('-')?;
        let s = digits(s, lo, hi)?.strip_prefix('-')?;
        digits(s, lo, hi)
    }
    if date(s, true) == Some("") {
        return true;
    }
    let Some(rest) = date(s, false) else {
        return false;
    };
    let rest = match rest.strip_prefix(['T', 't']) {
        Some(r) => r,
        None if rest.starts_with([' ', '\t']) => rest.trim_start_matches([' ', '\t']),
        None => return false,
    };
    let Some(rest) = digits(rest, 1, 2)
        .and_then(|r| r.strip_prefix(':'))
        .and_then(|r| digits(r, 2, 2))
        .and_then(|r| r.strip_prefix(':'))
        .and_then(|r| digits(r, 2, 2))
    else {
        return false;
    };
    let rest = match rest.strip_prefix('.') {
        Some(r) => r.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    if rest.is_empty() || rest == "Z" {
        return true;
    }
    let Some(zone) = rest.strip_prefix(['+', '-']) else {
        return false;
    };
    match digits(zone, 1, 2) {
        Some("") => true,
        Some(r) => r.strip_prefix(':').and_then(|r| digits(r, 2, 2)) == Some(""),
        None => false,
    }
}

/// The base64 text of a `!!binary` scalar, if `v` is one.
pub fn binary_text(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == BINARY_TAG => t.value.as_str(),
        _ => None,
    }
}

/// Something a reader of the document should hear about that did not stop the reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Where, as `users[1].name` (empty: the document).
    pub path: String,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// A text read as PyYAML would, and what was noticed on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub value: Value,
    pub notes: Vec<Note>,
    /// The upper bound on the tree's memory that was charged, in bytes.
    pub cost: u64,
}

/// Why a text could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    TooDeep(#[from] TooDeep),
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    #[error("invalid YAML: {message}")]
    Invalid {
        message: String,
        line: Option<usize>,
        column: Option<usize>,
    },
}

impl LoadError {
    /// 1-based line and column of the problem, when known.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            LoadError::TooDeep(t) => Some((t.line, 1)),
            LoadError::TooLarge(t) => Some((t.line, 1)),
            LoadError::Invalid { line, column, .. } => line.zip(*column),
        }
    }
}

/// Reads the first document of `text` as PyYAML would: nesting bounded by
/// [`MAX_YAML_DEPTH`], a repeated key keeps its last value (noted with both lines), merge keys
/// are merged (explicit keys win; of several merged maps the first wins), `!!binary` scalars
/// are tagged [`BINARY_TAG`] and plain timestamps [`TIMESTAMP_TAG`]. The tree may take at most
/// [`MAX_TREE_BYTES`].
pub fn load(text: &str) -> Result<Loaded, LoadError> {
    load_within(text, MAX_TREE_BYTES)
}

/// [`load`] with a tree of at most `limit` bytes ([`NODE_COST`] per node, plus its text;
/// an alias costs the tree it repeats): past it, [`LoadError::TooLarge`] before any value is
/// built.
pub fn load_within(text: &str, limit: u64) -> Result<Loaded, LoadError> {
    let scan = bounded(text.as_bytes(), limit)?;
    let value = yaml_serde::from_str::<LastWins>(text).map_err(invalid)?.0;
    let mut value = value;
    for (path, tag) in &scan.tagged {
        if let Some(node) = node_at(&mut value, path) {
            if let Value::String(s) = node {
                let text = std::mem::take(s);
                *node = Value::Tagged(Box::new(TaggedValue {
                    tag: Tag::new(*tag),
                    value: Value::String(text),
                }));
            }
        }
    }
    let mut notes = scan.notes;
    merge_keys(&mut value, "", &mut notes);
    Ok(Loaded {
        value,
        notes,
        cost: scan.cost,
    })
}

/// One step of a path: a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn path_text(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Key(k) if out.is_empty() => out.push_str(k),
            Segment::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn node_at<'v>(mut v: &'v mut Value, path: &[Segment]) -> Option<&'v mut Value> {
    for s in path {
        v = match (s, v) {
            (Segment::Key(k), Value::Mapping(m)) => m.get_mut(k.as_str())?,
            (Segment::Index(i), Value::Sequence(items)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

/// What the event walk found: duplicate keys, and the scalars yaml_serde reads as strings that
/// PyYAML does not (`!!binary`, plain timestamps) with the tag they get.
#[derive(Default)]
struct Scan {
    /// What the tree costs, aliases expanded ([`NODE_COST`] per node plus its text).
    cost: u64,
    notes: Vec<Note>,
    tagged: Vec<(Vec<Segment>, &'static str)>,
}

enum Frame {
    Map {
        /// This map's place in its parent.
        at: Option<Segment>,
        /// Its anchor, how many tagged scalars were recorded before it began, and the cost
        /// charged before it began.
        anchor: Option<(String, usize, u64)>,
        /// Each key's line.
        seen: HashMap<String, usize>,
        /// The key whose value comes next; `None` while a key is expected.
        key: Option<String>,
    },
    Seq {
        at: Option<Segment>,
        anchor: Option<(String, usize, u64)>,
        next: usize,
    },
    /// Inside a complex key (`? [a, b]`): nothing is recorded.
    Skip,
}

/// The place a node arriving now takes in the innermost collection (`None` at the top), or
/// `Err(())` when it is a key or inside a complex key.
fn arriving(stack: &mut [Frame]) -> Result<Option<Segment>, ()> {
    match stack.last_mut() {
        None => Ok(None),
        Some(Frame::Skip) => Err(()),
        Some(Frame::Seq { next, .. }) => {
            *next += 1;
            Ok(Some(Segment::Index(*next - 1)))
        }
        Some(Frame::Map { key, .. }) => match key.take() {
            Some(k) => Ok(Some(Segment::Key(k))),
            None => Err(()),
        },
    }
}

fn stack_path(stack: &[Frame], last: Option<Segment>) -> Vec<Segment> {
    stack
        .iter()
        .filter_map(|f| match f {
            Frame::Map { at, .. } | Frame::Seq { at, .. } => at.clone(),
            Frame::Skip => None,
        })
        .chain(last)
        .collect()
}

/// At most this many tagged scalars are recorded, aliases' copies included: a text whose
/// aliases would expand past it is an alias bomb, which yaml_serde refuses next.
const MAX_TAGGED: usize = 10_000;

/// A NUL-terminated string of libyaml's, if any.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that lives as long as the call.
unsafe fn c_string(p: *const u8) -> Option<String> {
    (!p.is_null()).then(|| {
        String::from_utf8_lossy(std::ffi::CStr::from_ptr(p.cast()).to_bytes()).into_owned()
    })
}

/// Walks the events of the first document of `text`: the nesting bound, the cost of the tree
/// (at most `limit`), duplicate keys, `!!binary` scalars and plain timestamps (also where
/// aliases repeat them). Syntax errors end the walk: yaml_serde reports them next.
fn scan(text: &[u8], max: usize, limit: u64) -> Result<Scan, LoadError> {
    let mut out = Scan::default();
    let mut stack: Vec<Frame> = Vec::new();
    // The tagged scalars under each anchor, by path from the anchored node.
    let mut anchors: HashMap<String, Vec<(Vec<Segment>, &'static str)>> = HashMap::new();
    // What each anchored node costs: an alias repeats it.
    let mut anchor_costs: HashMap<String, u64> = HashMap::new();
    let mut parser = MaybeUninit::<unsafe_yaml::yaml_parser_t>::uninit();
    // SAFETY: the parser is initialised before use and deleted once; `text` outlives it.
    unsafe {
        if unsafe_yaml::yaml_parser_initialize(parser.as_mut_ptr()).fail {
            return Ok(out);
        }
        unsafe_yaml::yaml_parser_set_input_string(
            parser.as_mut_ptr(),
            text.as_ptr(),
            text.len() as u64,
        );
    }
    let parser = parser.as_mut_ptr();
    let mut result = Ok(());
    let mut over = false;
    loop {
        let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
        // SAFETY: every event libyaml filled in is deleted exactly once, after its fields were
        // copied out.
        let (kind, line, column, scalar, anchor, tag) = unsafe {
            if unsafe_yaml::yaml_parser_parse(parser, event.as_mut_ptr()).fail {
                break;
            }
            let event = event.as_mut_ptr();
            let kind = (*event).type_;
            let line = (*event).start_mark.line as usize + 1;
            let column = (*event).start_mark.column as usize + 1;
            let (scalar, anchor, tag) = match kind {
                unsafe_yaml::YAML_SCALAR_EVENT => {
                    let s = (*event).data.scalar;
                    let bytes = std::slice::from_raw_parts(s.value, s.length as usize);
                    let text = String::from_utf8_lossy(bytes).into_owned();
                    let tag = match c_string(s.tag) {
                        Some(t) => (t == "tag:yaml.org,2002:binary").then_some(BINARY_TAG),
                        None if s.style == unsafe_yaml::YAML_PLAIN_SCALAR_STYLE
                            && is_yaml11_timestamp(&text) =>
                        {
                            Some(TIMESTAMP_TAG)
                        }
                        None => None,
                    };
                    (Some(text), c_string(s.anchor), tag)
                }
                unsafe_yaml::YAML_ALIAS_EVENT => (
                    Some(String::new()),
                    c_string((*event).data.alias.anchor),
                    None,
                ),
                unsafe_yaml::YAML_MAPPING_START_EVENT => {
                    (None, c_string((*event).data.mapping_start.anchor), None)
                }
                unsafe_yaml::YAML_SEQUENCE_START_EVENT => {
                    (None, c_string((*event).data.sequence_start.anchor), None)
                }
                _ => (None, None, None),
            };
            unsafe_yaml::yaml_event_delete(event);
            (kind, line, column, scalar, anchor, tag)
        };
        // The node's cost: an alias repeats its anchor's tree, anything else is one node.
        let cost = match kind {
            unsafe_yaml::YAML_ALIAS_EVENT => anchor
                .as_ref()
                .and_then(|a| anchor_costs.get(a).copied())
                .unwrap_or(NODE_COST),
            unsafe_yaml::YAML_SCALAR_EVENT
            | unsafe_yaml::YAML_MAPPING_START_EVENT
            | unsafe_yaml::YAML_SEQUENCE_START_EVENT => {
                NODE_COST.saturating_add(scalar.as_ref().map_or(0, |s| s.len() as u64))
            }
            _ => 0,
        };
        out.cost = out.cost.saturating_add(cost);
        if out.cost > limit {
            result = Err(TooLarge { line, limit }.into());
            break;
        }
        if kind == unsafe_yaml::YAML_SCALAR_EVENT {
            if let Some(a) = &anchor {
                anchor_costs.insert(a.clone(), cost);
            }
        }
        match kind {
            unsafe_yaml::YAML_SCALAR_EVENT | unsafe_yaml::YAML_ALIAS_EVENT => {
                if let Some(Frame::Map {
                    key: None, seen, ..
                }) = stack.last_mut()
                {
                    let name = if kind == unsafe_yaml::YAML_ALIAS_EVENT {
                        "*".to_string()
                    } else {
                        scalar.unwrap_or_default()
                    };
                    if let Some(first) = seen.insert(name.clone(), line) {
                        let mut path = stack_path(&stack, None);
                        path.push(Segment::Key(name.clone()));
                        out.notes.push(Note {
                            path: path_text(&path),
                            line: Some(line),
                            column: Some(column),
                            message: format!(
                                "duplicate key {name:?} (lines {first} and {line}): the last value is used"
                            ),
                        });
                    }
                    if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                        *key = Some(name);
                    }
                    continue;
                }
                let Ok(at) = arriving(&mut stack) else {
                    continue;
                };
                let path = stack_path(&stack, at);
                if kind == unsafe_yaml::YAML_ALIAS_EVENT {
                    // The alias repeats its anchor's tagged scalars here.
                    for (rel, tag) in anchor.and_then(|a| anchors.get(&a)).into_iter().flatten() {
                        if out.tagged.len() < MAX_TAGGED {
                            let mut p = path.clone();
                            p.extend(rel.iter().cloned());
                            out.tagged.push((p, tag));
                        } else {
                            over = true;
                        }
                    }
                } else {
                    if let (Some(a), Some(t)) = (anchor, tag) {
                        anchors.insert(a, vec![(Vec::new(), t)]);
                    }
                    if let Some(t) = tag {
                        if out.tagged.len() < MAX_TAGGED {
                            out.tagged.push((path, t));
                        } else {
                            over = true;
                        }
                    }
                }
            }
            unsafe_yaml::YAML_MAPPING_START_EVENT | unsafe_yaml::YAML_SEQUENCE_START_EVENT => {
                if stack.len() >= max {
                    result = Err(TooDeep { line, max }.into());
                    break;
                }
                // The collection's own node is charged already: its tree starts before it.
                let anchor = anchor.map(|a| (a, out.tagged.len(), out.cost - cost));
                let frame = match arriving(&mut stack) {
                    Err(()) => {
                        // A complex key: its value comes after it.
                        if let Some(Frame::Map {
                            key: key @ None, ..
                        }) = stack.last_mut()
                        {
                            *key = Some("?".into());
                        }
                        Frame::Skip
                    }
                    Ok(at) if kind == unsafe_yaml::YAML_MAPPING_START_EVENT => Frame::Map {
                        at,
                        anchor,
                        seen: HashMap::new(),
                        key: None,
                    },
                    Ok(at) => Frame::Seq {
                        at,
                        anchor,
                        next: 0,
                    },
                };
                stack.push(frame);
            }
            unsafe_yaml::YAML_MAPPING_END_EVENT | unsafe_yaml::YAML_SEQUENCE_END_EVENT => {
                if let Some(
                    Frame::Map {
                        at,
                        anchor: Some((name, start, cost_before)),
                        ..
                    }
                    | Frame::Seq {
                        at,
                        anchor: Some((name, start, cost_before)),
                        ..
                    },
                ) = stack.pop()
                {
                    anchor_costs.insert(name.clone(), out.cost - cost_before);
                    let base = stack_path(&stack, at).len();
                    let inside: Vec<(Vec<Segment>, &'static str)> = out.tagged[start..]
                        .iter()
                        .map(|(p, t)| (p[base.min(p.len())..].to_vec(), *t))
                        .collect();
                    anchors.insert(name, inside);
                }
            }
            unsafe_yaml::YAML_DOCUMENT_END_EVENT | unsafe_yaml::YAML_STREAM_END_EVENT => break,
            _ => {}
        }
    }
    // SAFETY: initialised above, deleted once.
    unsafe { unsafe_yaml::yaml_parser_delete(parser) };
    if over {
        out.notes.push(Note {
            path: String::new(),
            line: None,
            column: None,
            message: format!(
                "more than {MAX_TAGGED} !!binary scalars and dates (aliases counted): the rest are read as plain text"
            ),
        });
    }
    result.map(|()| out)
}

/// A `yaml_serde::Value` whose maps keep the last of repeated keys, as PyYAML does (yaml_serde
/// refuses the whole text).
struct LastWins(Value);

impl<'de> Deserialize<'de> for LastWins {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LastWinsVisitor).map(LastWins)
    }
}

struct LastWinsVisitor;

impl<'de> Visitor<'de> for LastWinsVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Number(i.into()))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::Number(u.into()))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Number(f.into()))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        LastWins::deserialize(d).map(|v| v.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(LastWins(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Sequence(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Mapping::new();
        while let Some((LastWins(k), LastWins(v))) = map.next_entry()? {
            // The key keeps its first place, as in a Python dict.
            out.insert(k, v);
        }
        Ok(Value::Mapping(out))
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, contents) = data.variant::<String>()?;
        let LastWins(value) = contents.newtype_variant()?;
        Ok(Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(tag),
            value,
        })))
    }
}

/// Merges `<<` keys as PyYAML does, innermost maps first: a merged map's keys are added where
/// the map has no such key; of a list of merged maps the earlier ones win. Anything else under
/// `<<` is noted and dropped.
fn merge_keys(v: &mut Value, path: &str, notes: &mut Vec<Note>) {
    match v {
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                merge_keys(item, &format!("{path}[{i}]"), notes);
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                let key = k.as_str().map_or_else(|| "?".to_string(), str::to_string);
                let p = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                merge_keys(item, &p, notes);
            }
            let Some(merged) = m.remove("<<") else {
                return;
            };
            let sources = match merged {
                Value::Mapping(one) => vec![one],
                Value::Sequence(list) => {
                    let mut maps = Vec::new();
                    for item in list {
                        match item {
                            Value::Mapping(one) => maps.push(one),
                            _ => bad_merge(path, notes),
                        }
                    }
                    maps
                }
                _ => {
                    bad_merge(path, notes);
                    Vec::new()
                }
            };
            for source in sources {
                for (k, val) in source {
                    m.entry(k).or_insert(val);
                }
            }
        }
        _ => {}
    }
}

fn bad_merge(path: &str, notes: &mut Vec<Note>) {
    notes.push(Note {
        path: if path.is_empty() {
            "<<".into()
        } else {
            format!("{path}.<<")
        },
        line: None,
        column: None,
        message: "a merge key (<<) takes a map or a list of maps: this one is ignored".into(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_over_flow_and_block_collections() {
        // The top map, the list, then `[1]` and `{b: …}`, then `[2]`: four levels.
        assert_eq!(check_depth(b"a: [[1], {b: [2]}]\n", 4), Ok(()));
        assert_eq!(
            check_depth(b"a: [[1], {b: [2]}]\n", 3),
            Err(TooDeep { line: 1, max: 3 })
        );
        assert_eq!(
            check_depth(b"a:\n  b:\n    - - x\n", 3),
            Err(TooDeep { line: 3, max: 3 })
        );
        // Brackets in scalars and block text are not collections.
        assert_eq!(
            check_depth(b"a: '[[[[' \nb: |\n  [[[[[[\nc: x[[[[\n", 1),
            Ok(())
        );
        // Syntax errors are left to the reader.
        assert_eq!(check_depth(b"a: [unclosed\n", 2), Ok(()));
    }

    #[test]
    fn a_repeated_key_keeps_the_last_value_and_is_noted_with_both_lines() {
        let l = load("hostname: a\nusers:\n  - name: x\n    shell: /bin/sh\n    shell: /bin/ksh\nhostname: b\n").unwrap();
        assert_eq!(l.value["hostname"], Value::from("b"));
        assert_eq!(l.value["users"][0]["shell"], Value::from("/bin/ksh"));
        let got: Vec<(&str, Option<usize>)> =
            l.notes.iter().map(|n| (n.path.as_str(), n.line)).collect();
        assert_eq!(
            got,
            vec![("users[0].shell", Some(5)), ("hostname", Some(6))]
        );
        assert!(
            l.notes[1].message.contains("lines 1 and 6"),
            "{:?}",
            l.notes
        );
    }

    #[test]
    fn merge_keys_are_merged_explicit_keys_and_earlier_maps_win() {
        let l = load(
            "base: &b {owner: root, permissions: '0600'}\nother: &o {owner: bin, append: true}\nwrite_files:\n  - <<: *b\n    path: /etc/a\n  - <<: [*o, *b]\n    path: /etc/b\n    owner: daemon\n",
        )
        .unwrap();
        let a = &l.value["write_files"][0];
        assert_eq!(a["owner"], Value::from("root"));
        assert_eq!(a["path"], Value::from("/etc/a"));
        assert!(a.get("<<").is_none());
        let b = &l.value["write_files"][1];
        assert_eq!(b["owner"], Value::from("daemon"));
        assert_eq!(b["append"], Value::from(true));
        assert_eq!(b["permissions"], Value::from("0600"));
        assert!(l.notes.is_empty(), "{:?}", l.notes);
        let bad = load("a:\n  <<: 5\n  b: 1\n").unwrap();
        assert_eq!(bad.value["a"]["b"], Value::from(1));
        assert_eq!(bad.notes.len(), 1);
        assert_eq!(bad.notes[0].path, "a.<<");
    }

    #[test]
    fn binary_scalars_are_tagged_and_others_are_not() {
        let l = load("f:\n  - content: !!binary aGVsbG8K\n  - content: aGVsbG8K\ng: !!binary |\n  aGVs\n  bG8K\n").unwrap();
        assert_eq!(binary_text(&l.value["f"][0]["content"]), Some("aGVsbG8K"));
        assert_eq!(binary_text(&l.value["f"][1]["content"]), None);
        assert_eq!(
            binary_text(&l.value["g"]).map(str::trim),
            Some("aGVs\nbG8K")
        );
    }

    #[test]
    fn plain_timestamps_are_tagged_quoted_ones_are_not() {
        let l = load("a: 2032-09-01\nb: '2032-09-01'\nc: 2001-12-14 21:59:43.10 -5\nd: 2001-12-14t21:59:43.10-05:00\ne: 2032-9-1\nf: 2032-09-01x\n").unwrap();
        assert_eq!(timestamp_text(&l.value["a"]), Some("2032-09-01"));
        assert_eq!(timestamp_text(&l.value["b"]), None);
        assert!(timestamp_text(&l.value["c"]).is_some());
        assert!(timestamp_text(&l.value["d"]).is_some());
        assert_eq!(
            timestamp_text(&l.value["e"]),
            None,
            "the date alone needs two digits"
        );
        assert_eq!(timestamp_text(&l.value["f"]), None);
    }

    #[test]
    fn alias_bombs_are_refused_cheaply() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let start = std::time::Instant::now();
        assert!(matches!(load(&text), Err(LoadError::TooLarge(_))));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn past_the_bound_on_tagged_scalars_the_rest_is_plain_and_said() {
        let mut text = String::from("d:\n");
        for _ in 0..=MAX_TAGGED {
            text.push_str("  - 2032-09-01\n");
        }
        let l = load(&text).unwrap();
        assert!(timestamp_text(&l.value["d"][0]).is_some());
        assert_eq!(l.value["d"][MAX_TAGGED], Value::from("2032-09-01"));
        assert_eq!(l.notes.len(), 1, "{:?}", l.notes);
        assert!(l.notes[0].message.contains("more than 10000"));
    }

    #[test]
    fn a_long_flow_list_is_refused_by_its_node_count_before_it_is_built() {
        // 200,000 elements in 400 KB of text: about 30 MB of values.
        let text = format!("x: [{}a]\n", "a,".repeat(200_000));
        let limit = 4 * 1024 * 1024;
        let start = std::time::Instant::now();
        let e = load_within(&text, limit).unwrap_err();
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(e, LoadError::TooLarge(TooLarge { line: 1, limit }));
        assert!(e.to_string().contains("more than 4194304 bytes"), "{e}");
        // What fits is read, and its cost said: a node each for the map, the key, the list
        // and its elements, plus their text.
        let small = load_within("x: [a, bb]\n", limit).unwrap();
        assert_eq!(small.cost, 5 * NODE_COST + 4);
        assert_eq!(small.value["x"][1], Value::from("bb"));
    }

    #[test]
    fn aliases_cost_the_tree_they_repeat() {
        // 1 + 4 + 16 + ... nodes: small text, a tree that grows fourfold per line.
        let mut text = String::from("a0: &a0 [x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let limit = 1024 * 1024;
        assert!(matches!(
            load_within(&text, limit),
            Err(LoadError::TooLarge(_))
        ));
        let cheap = load_within("a: &a [x, y]\nb: *a\n", limit).unwrap();
        // The anchored list (3 nodes, 2 bytes of text) counted twice, plus the map and 2 keys.
        assert_eq!(cheap.cost, 2 * (3 * NODE_COST + 2) + 3 * NODE_COST + 2);
    }

    #[test]
    fn every_reader_refuses_deep_nesting_fast() {
        let deep = format!("a: {}", "[".repeat(100_000));
        let start = std::time::Instant::now();
        assert!(matches!(
            from_str::<Value>(&deep),
            Err(LoadError::TooDeep(_))
        ));
        assert!(matches!(
            from_slice::<Value>(deep.as_bytes()),
            Err(LoadError::TooDeep(_))
        ));
        assert!(matches!(deserializer(&deep), Err(LoadError::TooDeep(_))));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(from_str::<Value>("a: [1]").unwrap()["a"][0], Value::from(1));
    }

    #[test]
    fn too_deep_and_invalid_texts_say_where() {
        let deep = format!("a: {}{}\n", "[".repeat(100), "]".repeat(100));
        assert!(matches!(
            load(&deep),
            Err(LoadError::TooDeep(TooDeep { line: 1, .. }))
        ));
        let e = load("a: [unclosed\n").unwrap_err();
        assert!(e.position().is_some(), "{e:?}");
    }
}
