//! Reading YAML the way cloud-init (PyYAML) does, over yaml_serde and the libyaml parser it is
//! built on: a bound on nesting, duplicate keys kept last-wins with a warning, merge keys
//! (`<<`) merged, and `!!binary` scalars marked so that readers can decode them.
//!
//! Every YAML text wisp reads goes through this module ([`load`], [`from_str`], [`from_slice`],
//! [`deserializer`]): each applies the nesting bound and the node budget below before
//! yaml_serde sees the text. The same event walk indexes where each key and value is written
//! ([`Positions`], in [`Loaded::positions`]), so nothing walks a loaded text's events again.
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
    DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
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
    match scan(text, max, u64::MAX, false).1 {
        Ok(()) => Ok(()),
        Err(LoadError::TooDeep(e)) => Err(e),
        Err(_) => Ok(()),
    }
}

/// The bounds every reader applies: nesting, then the memory of the tree (at most `limit`
/// bytes). Returns the cost charged.
fn bounded(text: &[u8], limit: u64, index: bool) -> Result<Scan, LoadError> {
    let (scan, result) = scan(text, MAX_YAML_DEPTH, limit, index);
    result.map(|()| scan)
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
    bounded(text.as_bytes(), MAX_TREE_BYTES, false)?;
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
    bounded(text.as_bytes(), MAX_TREE_BYTES, false)?;
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
/// `2001-12-14 21:59:43.10 -5`, `2001-12-15T02:59:43.1Z`, naming a date and time that exist.
pub fn is_yaml11_timestamp(s: &str) -> bool {
    timestamp_check(s) == Some(Ok(()))
}

/// `None` when `s` does not have a YAML 1.1 timestamp's form; else whether the date and time it
/// names exist, as PyYAML (Python's `datetime`) checks them: a plain `2032-13-45` is a
/// timestamp to the resolver that the constructor then refuses.
fn timestamp_check(s: &str) -> Option<Result<(), &'static str>> {
    fn digits(s: &str, min: usize, max: usize) -> Option<(u32, &str)> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        if !(min..=max).contains(&n) {
            return None;
        }
        // At most four ASCII digits: always a u32.
        Some((s[..n].parse().ok()?, &s[n..]))
    }
    fn date(s: &str, short: bool) -> Option<((u32, u32, u32), &str)> {
        let (lo, hi) = if short { (2, 2) } else { (1, 2) };
        let (year, s) = digits(s, 4, 4)?;
        let (month, s) = digits(s.strip_prefix('-')?, lo, hi)?;
        let (day, s) = digits(s.strip_prefix('-')?, lo, hi)?;
        Some(((year, month, day), s))
    }
    fn valid_date((year, month, day): (u32, u32, u32)) -> Result<(), &'static str> {
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return Err("month must be in 1..12"),
        };
        if year == 0 {
            Err("year 0 is out of range")
        } else if !(1..=days).contains(&day) {
            Err("day is out of range for month")
        } else {
            Ok(())
        }
    }
    if let Some((ymd, "")) = date(s, true) {
        return Some(valid_date(ymd));
    }
    let (ymd, rest) = date(s, false)?;
    let rest = match rest.strip_prefix(['T', 't']) {
        Some(r) => r,
        None if rest.starts_with([' ', '\t']) => rest.trim_start_matches([' ', '\t']),
        None => return None,
    };
    let (hour, rest) = digits(rest, 1, 2)?;
    let (minute, rest) = digits(rest.strip_prefix(':')?, 2, 2)?;
    let (second, rest) = digits(rest.strip_prefix(':')?, 2, 2)?;
    let rest = match rest.strip_prefix('.') {
        Some(r) => r.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    let zone_minutes = if rest.is_empty() || rest == "Z" {
        0
    } else {
        let (zh, r) = digits(rest.strip_prefix(['+', '-'])?, 1, 2)?;
        let zm = match r {
            "" => 0,
            r => match digits(r.strip_prefix(':')?, 2, 2)? {
                (zm, "") => zm,
                _ => return None,
            },
        };
        zh * 60 + zm
    };
    let time = if hour > 23 {
        Err("hour must be in 0..23")
    } else if minute > 59 {
        Err("minute must be in 0..59")
    } else if second > 59 {
        Err("second must be in 0..59")
    } else if zone_minutes >= 24 * 60 {
        Err("the time zone offset must be less than 24 hours")
    } else {
        Ok(())
    };
    Some(valid_date(ymd).and(time))
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
    /// Where each key and value is written, indexed by the same event walk that bounded the
    /// text (no second walk).
    pub positions: Positions,
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
/// [`MAX_YAML_DEPTH`], a repeated key keeps its last value (noted with both lines; keys are
/// compared as values: `1` and `"1"` differ), plain `<<` keys are merged (explicit keys win;
/// of several `<<` keys the later wins; of a list of merged maps the first wins; a `<<` that is
/// not maps is an error), `!!binary` scalars are tagged [`BINARY_TAG`] and plain timestamps
/// [`TIMESTAMP_TAG`] (one naming no real date is an error). The tree may take at most
/// [`MAX_TREE_BYTES`].
pub fn load(text: &str) -> Result<Loaded, LoadError> {
    load_within(text, MAX_TREE_BYTES)
}

/// [`load`] with a tree of at most `limit` bytes ([`NODE_COST`] per node, plus its text;
/// an alias costs the tree it repeats): past it, [`LoadError::TooLarge`] before any value is
/// built.
pub fn load_within(text: &str, limit: u64) -> Result<Loaded, LoadError> {
    let mut scan = bounded(text.as_bytes(), limit, true)?;
    let positions = scan.positions.take().unwrap_or_default();
    if let Some(bad) = scan.bad_date {
        return Err(LoadError::Invalid {
            message: format!(
                "line {}: the plain {:?} is a date to YAML 1.1 but {} (PyYAML refuses the document); quote it to keep it as text",
                bad.line, bad.text, bad.reason
            ),
            line: Some(bad.line),
            column: Some(bad.column),
        });
    }
    let mut walk = Walk {
        nodes: &scan.nodes,
        next: 0,
        replays: Vec::new(),
        path: Vec::new(),
        notes: Vec::new(),
        tagged: 0,
        over: false,
    };
    let de = yaml_serde::Deserializer::from_str(text);
    let (value, _) = NodeSeed {
        walk: &mut walk,
        key: false,
    }
    .deserialize(de)
    .map_err(invalid)?;
    let mut notes = walk.notes;
    if walk.over {
        notes.push(Note {
            path: String::new(),
            line: None,
            column: None,
            message: format!(
                "more than {MAX_TAGGED} !!binary scalars and dates (aliases counted): the rest are read as plain text"
            ),
        });
    }
    Ok(Loaded {
        value,
        notes,
        cost: scan.cost,
        positions,
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

/// The longest key, in characters, a path in a note shows in full: a note's text stays small
/// however long the keys above it are.
const SHOWN_KEY_CHARS: usize = 64;

/// A key as a path in a note shows it: at most [`SHOWN_KEY_CHARS`] of it, copied.
fn key_segment(k: &Value) -> Segment {
    let text = match k {
        Value::String(s) => s.as_str(),
        Value::Number(n) => return Segment::Key(n.to_string()),
        Value::Bool(b) => return Segment::Key(b.to_string()),
        Value::Null => "null",
        _ => "?",
    };
    match text.char_indices().nth(SHOWN_KEY_CHARS) {
        Some((cut, _)) => Segment::Key(format!("{}…", &text[..cut])),
        None => Segment::Key(text.to_owned()),
    }
}

/// A node of the document, in the order of libyaml's events: what reading yaml_serde's values
/// needs besides their text.
#[derive(Debug, Clone, Copy)]
struct Node {
    line: usize,
    column: usize,
    kind: NodeKind,
    /// One past this node's last descendant (the next node for a scalar or an alias).
    end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    Scalar {
        /// The tag wisp gives it ([`BINARY_TAG`], [`TIMESTAMP_TAG`]).
        tag: Option<&'static str>,
        /// A plain `<<`: as a key, a merge (a quoted `"<<"` is an ordinary key).
        merge: bool,
    },
    /// The anchored node it repeats (the latest of that name before it).
    Alias(Option<usize>),
    Collection,
}

/// A plain scalar that reads as a timestamp naming no real date or time.
#[derive(Debug)]
struct BadDate {
    line: usize,
    column: usize,
    text: String,
    reason: &'static str,
}

/// What the event walk found: the tree's cost and its nodes.
#[derive(Default)]
struct Scan {
    /// What the tree costs, aliases expanded ([`NODE_COST`] per node plus its text).
    cost: u64,
    nodes: Vec<Node>,
    /// The first plain timestamp that names no real date.
    bad_date: Option<BadDate>,
    /// The positions of keys and values, when asked for.
    positions: Option<Positions>,
}

/// At most this many tagged scalars are given their tag, aliases' copies included.
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
/// (at most `limit`), and a [`Node`] for each node (one per event: keeping no text but a bad
/// date's, the walk is linear in the text). Syntax errors end the walk: yaml_serde reports
/// them next.
fn scan(text: &[u8], max: usize, limit: u64, index: bool) -> (Scan, Result<(), LoadError>) {
    SCANS.with(|n| n.set(n.get() + 1));
    let mut out = Scan::default();
    let mut indexer = index.then(Indexer::default);
    // The open collections: their node, and their anchor with the cost charged before them.
    let mut open: Vec<(usize, Option<(String, u64)>)> = Vec::new();
    // The latest node of each anchor name, and what its tree costs (an alias repeats it).
    let mut anchors: HashMap<String, usize> = HashMap::new();
    let mut anchor_costs: HashMap<String, u64> = HashMap::new();
    let mut parser = MaybeUninit::<unsafe_yaml::yaml_parser_t>::uninit();
    // SAFETY: the parser is initialised before use and deleted once; `text` outlives it.
    unsafe {
        if unsafe_yaml::yaml_parser_initialize(parser.as_mut_ptr()).fail {
            out.positions = indexer.map(|i| i.positions);
            return (out, Ok(()));
        }
        unsafe_yaml::yaml_parser_set_input_string(
            parser.as_mut_ptr(),
            text.as_ptr(),
            text.len() as u64,
        );
    }
    let parser = parser.as_mut_ptr();
    let mut result = Ok(());
    loop {
        let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
        // SAFETY: every event libyaml filled in is deleted exactly once, after its fields were
        // copied out.
        let (kind, line, column, length, anchor, scalar) = unsafe {
            if unsafe_yaml::yaml_parser_parse(parser, event.as_mut_ptr()).fail {
                break;
            }
            let event = event.as_mut_ptr();
            let kind = (*event).type_;
            let line = (*event).start_mark.line as usize + 1;
            let column = (*event).start_mark.column as usize + 1;
            let (length, anchor, scalar) = match kind {
                unsafe_yaml::YAML_SCALAR_EVENT => {
                    let s = (*event).data.scalar;
                    let bytes = std::slice::from_raw_parts(s.value, s.length as usize);
                    let plain = s.tag.is_null() && s.style == unsafe_yaml::YAML_PLAIN_SCALAR_STYLE;
                    let binary = c_string(s.tag).is_some_and(|t| t == "tag:yaml.org,2002:binary");
                    // Only a plain scalar's text is looked at, and only a short one kept.
                    let date = if plain {
                        std::str::from_utf8(bytes)
                            .ok()
                            .and_then(|t| timestamp_check(t).map(|c| (t.to_owned(), c)))
                    } else {
                        None
                    };
                    let merge = plain && bytes == b"<<";
                    if let Some(ix) = indexer.as_mut() {
                        // Positions keep a key's text and a plain value's, once each.
                        ix.scalar = Some((
                            String::from_utf8_lossy(bytes).into_owned(),
                            s.style == unsafe_yaml::YAML_PLAIN_SCALAR_STYLE,
                        ));
                    }
                    (
                        bytes.len() as u64,
                        c_string(s.anchor),
                        Some((binary, date, merge)),
                    )
                }
                unsafe_yaml::YAML_ALIAS_EVENT => (0, c_string((*event).data.alias.anchor), None),
                unsafe_yaml::YAML_MAPPING_START_EVENT => {
                    (0, c_string((*event).data.mapping_start.anchor), None)
                }
                unsafe_yaml::YAML_SEQUENCE_START_EVENT => {
                    (0, c_string((*event).data.sequence_start.anchor), None)
                }
                _ => (0, None, None),
            };
            unsafe_yaml::yaml_event_delete(event);
            (kind, line, column, length, anchor, scalar)
        };
        // The node's cost: an alias repeats its anchor's tree, anything else is one node.
        let cost = match kind {
            unsafe_yaml::YAML_ALIAS_EVENT => anchor
                .as_ref()
                .and_then(|a| anchor_costs.get(a).copied())
                .unwrap_or(NODE_COST),
            unsafe_yaml::YAML_SCALAR_EVENT
            | unsafe_yaml::YAML_MAPPING_START_EVENT
            | unsafe_yaml::YAML_SEQUENCE_START_EVENT => NODE_COST.saturating_add(length),
            _ => 0,
        };
        out.cost = out.cost.saturating_add(cost);
        if out.cost > limit {
            result = Err(TooLarge { line, limit }.into());
            break;
        }
        if let Some(ix) = indexer.as_mut() {
            let opens = matches!(
                kind,
                unsafe_yaml::YAML_MAPPING_START_EVENT | unsafe_yaml::YAML_SEQUENCE_START_EVENT
            );
            // The collection too deep is not indexed: the walk stops at it below.
            if !(opens && ix.stack.len() >= max) {
                ix.event(kind, Pos { line, column });
            }
        }
        let index = out.nodes.len();
        let node = |kind| Node {
            line,
            column,
            kind,
            end: index + 1,
        };
        match kind {
            unsafe_yaml::YAML_SCALAR_EVENT => {
                let (binary, date, merge) = scalar.unwrap_or_default();
                let tag = match date {
                    _ if binary => Some(BINARY_TAG),
                    Some((_, Ok(()))) => Some(TIMESTAMP_TAG),
                    Some((text, Err(reason))) => {
                        out.bad_date.get_or_insert(BadDate {
                            line,
                            column,
                            text,
                            reason,
                        });
                        None
                    }
                    None => None,
                };
                if let Some(a) = anchor {
                    anchors.insert(a.clone(), index);
                    anchor_costs.insert(a, cost);
                }
                out.nodes.push(node(NodeKind::Scalar { tag, merge }));
            }
            unsafe_yaml::YAML_ALIAS_EVENT => {
                let target = anchor.and_then(|a| anchors.get(&a).copied());
                out.nodes.push(node(NodeKind::Alias(target)));
            }
            unsafe_yaml::YAML_MAPPING_START_EVENT | unsafe_yaml::YAML_SEQUENCE_START_EVENT => {
                if open.len() >= max {
                    result = Err(TooDeep { line, max }.into());
                    break;
                }
                if let Some(a) = &anchor {
                    anchors.insert(a.clone(), index);
                }
                // The collection's own node is charged already: its tree starts before it.
                open.push((index, anchor.map(|a| (a, out.cost - cost))));
                out.nodes.push(node(NodeKind::Collection));
            }
            unsafe_yaml::YAML_MAPPING_END_EVENT | unsafe_yaml::YAML_SEQUENCE_END_EVENT => {
                if let Some((start, anchor)) = open.pop() {
                    let end = out.nodes.len();
                    if let Some(n) = out.nodes.get_mut(start) {
                        n.end = end;
                    }
                    if let Some((name, cost_before)) = anchor {
                        anchor_costs.insert(name, out.cost - cost_before);
                    }
                }
            }
            unsafe_yaml::YAML_DOCUMENT_END_EVENT | unsafe_yaml::YAML_STREAM_END_EVENT => break,
            _ => {}
        }
    }
    // SAFETY: initialised above, deleted once.
    unsafe { unsafe_yaml::yaml_parser_delete(parser) };
    out.positions = indexer.map(|i| i.positions);
    (out, result)
}

std::thread_local! {
    /// How many event walks this thread has made: tests check that a text is walked once.
    static SCANS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many times this thread has walked a text's libyaml events (each [`load`], [`from_str`],
/// [`check_depth`], [`Positions::of`] walks once). For tests that a text is not parsed twice.
#[doc(hidden)]
pub fn event_walks() -> usize {
    SCANS.with(std::cell::Cell::get)
}

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

/// Where each key and value of the first document of a text is written, by path
/// (`users[1].lock_passwd`): yaml_serde's `Value` keeps no positions. Made by [`scan`], the
/// one event walk of a load ([`Loaded::positions`]).
///
/// Nodes are kept as a tree: each knows its own segment (a key or an index) under its parent,
/// never its whole path, so memory stays linear in the text however deep or long-keyed it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Positions {
    nodes: Vec<PosNode>,
    /// A node's child by segment.
    children: HashMap<(usize, PosSegment), usize>,
}

impl Default for Positions {
    fn default() -> Self {
        Positions {
            nodes: vec![PosNode::default()],
            children: HashMap::new(),
        }
    }
}

/// Index 0 is the document itself (the empty path).
const ROOT: usize = 0;

#[derive(Debug, Clone, Default, PartialEq)]
struct PosNode {
    key: Option<Pos>,
    value: Option<Pos>,
    /// The text of an unquoted scalar value, as written (`0644` stays `0644`).
    plain: Option<Box<str>>,
    /// A quoted (or block) scalar value: text to PyYAML whatever it reads like (`'yes'`).
    quoted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PosSegment {
    Key(Box<str>),
    Index(usize),
}

/// An open collection while positions are indexed.
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

/// Builds [`Positions`] from the events [`scan`] walks.
#[derive(Default)]
struct Indexer {
    positions: Positions,
    stack: Vec<Frame>,
    /// The text of the scalar event being indexed, and whether it is plain.
    scalar: Option<(String, bool)>,
}

impl Indexer {
    /// One event of `kind` at `pos` (a scalar's text is in `self.scalar`).
    fn event(&mut self, kind: unsafe_yaml::yaml_event_type_t, pos: Pos) {
        match kind {
            unsafe_yaml::YAML_SCALAR_EVENT | unsafe_yaml::YAML_ALIAS_EVENT => {
                let (text, plain) = match self.scalar.take() {
                    Some((t, plain)) if kind == unsafe_yaml::YAML_SCALAR_EVENT => (Some(t), plain),
                    _ => (None, false),
                };
                let quoted = kind == unsafe_yaml::YAML_SCALAR_EVENT && !plain;
                let plain_text = if plain { text.clone() } else { None };
                if let Some(node) = self.node(pos, text, None) {
                    let n = &mut self.positions.nodes[node];
                    if let Some(t) = plain_text {
                        n.plain = Some(t.into());
                    }
                    n.quoted = quoted;
                }
            }
            unsafe_yaml::YAML_MAPPING_START_EVENT | unsafe_yaml::YAML_SEQUENCE_START_EVENT => {
                let map = kind == unsafe_yaml::YAML_MAPPING_START_EVENT;
                self.node(pos, None, Some(map));
            }
            unsafe_yaml::YAML_MAPPING_END_EVENT | unsafe_yaml::YAML_SEQUENCE_END_EVENT => {
                let ended_skip = matches!(self.stack.pop(), Some(Frame::Skip));
                let complex_key_ended =
                    ended_skip && !matches!(self.stack.last(), Some(Frame::Skip));
                // A container value ended: the map that holds it expects a key again.
                // (A complex key ended: its value comes next.)
                if !complex_key_ended {
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = None;
                    }
                }
            }
            _ => {}
        }
    }

    /// The node at `segment` under `parent`, made if new.
    fn child(&mut self, parent: usize, segment: PosSegment) -> usize {
        let p = &mut self.positions;
        let next = p.nodes.len();
        let id = *p.children.entry((parent, segment)).or_insert(next);
        if id == next {
            p.nodes.push(PosNode::default());
        }
        id
    }

    /// A node arrived: a scalar (`scalar`), or the start of a container (`container`: true for
    /// a map). Returns the value node (`None` for a key or inside a complex key).
    fn node(&mut self, pos: Pos, scalar: Option<String>, container: Option<bool>) -> Option<usize> {
        let id = match self.stack.last_mut() {
            None => ROOT,
            Some(Frame::Skip) => {
                if container.is_some() {
                    self.stack.push(Frame::Skip);
                }
                return None;
            }
            Some(Frame::Seq { node, index }) => {
                let (parent, i) = (*node, *index);
                *index += 1;
                self.child(parent, PosSegment::Index(i))
            }
            Some(Frame::Map { node, key }) => match key.take() {
                None => {
                    // This node is a key.
                    let parent = *node;
                    let name = scalar.unwrap_or_else(|| "?".into());
                    let id = self.child(parent, PosSegment::Key(name.into()));
                    // A repeated key: its last value is the one read ([`load`]).
                    self.positions.nodes[id].key = Some(pos);
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some(id);
                    }
                    if container.is_some() {
                        // A complex key: index nothing inside it.
                        self.stack.push(Frame::Skip);
                    }
                    return None;
                }
                Some(id) => id,
            },
        };
        let n = &mut self.positions.nodes[id];
        n.value = Some(pos);
        n.plain = None;
        n.quoted = false;
        match container {
            Some(true) => self.stack.push(Frame::Map {
                node: id,
                key: None,
            }),
            Some(false) => self.stack.push(Frame::Seq { node: id, index: 0 }),
            None => {}
        }
        Some(id)
    }
}

impl Positions {
    /// Indexes `text` alone, for a text not read with [`load`] (which gives its positions in
    /// [`Loaded::positions`]). A syntax error ends the index where it occurs (the reader
    /// reports it), and so does nesting deeper than [`MAX_YAML_DEPTH`].
    pub fn of(text: &str) -> Positions {
        scan(text.as_bytes(), MAX_YAML_DEPTH, u64::MAX, true)
            .0
            .positions
            .unwrap_or_default()
    }

    /// How many keys and values are indexed, the document included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing but the document is indexed.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
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
                    .and_then(|i| self.children.get(&(at, PosSegment::Index(i))))
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
                if let Some(id) = self.children.get(&(at, PosSegment::Key(r[..cut].into()))) {
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

/// Reading yaml_serde's values alongside the nodes [`scan`] found: yaml_serde visits the
/// document's nodes in order and an alias's tree again where the alias stands, so the node of
/// each value is the next one in that order. Nothing is looked up by path: a repeated key's
/// earlier value, and its tags, are simply replaced.
struct Walk<'n> {
    nodes: &'n [Node],
    /// The next node in document order.
    next: usize,
    /// The aliases being repeated, innermost last: where to go on after each, and the end of
    /// the tree it repeats.
    replays: Vec<(usize, usize)>,
    /// The path of the value being read, for notes.
    path: Vec<Segment>,
    notes: Vec<Note>,
    /// Tags given so far, and whether [`MAX_TAGGED`] was passed.
    tagged: usize,
    over: bool,
}

impl Walk<'_> {
    /// The node of the value yaml_serde visits now.
    fn step(&mut self) -> Option<Node> {
        while let Some(&(resume, end)) = self.replays.last() {
            if self.next < end {
                break;
            }
            self.replays.pop();
            self.next = resume;
        }
        let at = self.next;
        let node = *self.nodes.get(at)?;
        self.next = at + 1;
        if let NodeKind::Alias(Some(target)) = node.kind {
            let anchored = *self.nodes.get(target)?;
            self.replays.push((at + 1, anchored.end));
            self.next = target + 1;
            return Some(anchored);
        }
        Some(node)
    }

    /// The tag for a scalar value read at `node`, within [`MAX_TAGGED`].
    fn tag(&mut self, node: Option<Node>) -> Option<&'static str> {
        let Some(Node {
            kind: NodeKind::Scalar { tag: Some(tag), .. },
            ..
        }) = node
        else {
            return None;
        };
        if self.tagged < MAX_TAGGED {
            self.tagged += 1;
            Some(tag)
        } else {
            self.over = true;
            None
        }
    }
}

/// Reads one value (a key when `key`: keys are not tagged) and says at which node it began.
struct NodeSeed<'w, 'n> {
    walk: &'w mut Walk<'n>,
    key: bool,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_> {
    type Value = (Value, Option<Node>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl NodeSeed<'_, '_> {
    fn leaf(self, v: Value) -> (Value, Option<Node>) {
        let node = self.walk.step();
        (v, node)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, '_> {
    type Value = (Value, Option<Node>);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(self.leaf(Value::Bool(b)))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        Ok(self.leaf(Value::Number(i.into())))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
        Ok(self.leaf(Value::Number(u.into())))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
        Ok(self.leaf(Value::Number(f.into())))
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        self.visit_string(s.to_owned())
    }
    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
        let node = self.walk.step();
        let tag = if self.key { None } else { self.walk.tag(node) };
        let value = match tag {
            Some(tag) => Value::Tagged(Box::new(TaggedValue {
                tag: Tag::new(tag),
                value: Value::String(s),
            })),
            None => Value::String(s),
        };
        Ok((value, node))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.leaf(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        // The empty document: no node.
        Ok((Value::Null, None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Inside a complex key nothing is tagged either.
        let inside_key = self.key;
        let walk = self.walk;
        let node = walk.step();
        let mut items = Vec::new();
        loop {
            walk.path.push(Segment::Index(items.len()));
            let item = seq.next_element_seed(NodeSeed {
                walk: &mut *walk,
                key: inside_key,
            });
            walk.path.pop();
            match item? {
                Some((v, _)) => items.push(v),
                None => break,
            }
        }
        Ok((Value::Sequence(items), node))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let inside_key = self.key;
        let walk = self.walk;
        let node = walk.step();
        let mut explicit = Mapping::new();
        // Each key's latest line, by its value as read (`1` and "1" are different keys).
        let mut lines: HashMap<Value, usize> = HashMap::new();
        // What `<<` keys merge, in PyYAML's order: later pairs win.
        let mut merged: Vec<Mapping> = Vec::new();
        while let Some((key, key_node)) = map.next_key_seed(NodeSeed {
            walk: &mut *walk,
            key: true,
        })? {
            let merge = matches!(
                key_node.map(|n| n.kind),
                Some(NodeKind::Scalar { merge: true, .. })
            );
            // The path is made into text only for a note or an error.
            walk.path.push(key_segment(&key));
            let (value, value_node) = map.next_value_seed(NodeSeed {
                walk: &mut *walk,
                key: inside_key,
            })?;
            if merge {
                let bad = |what: &str| {
                    serde::de::Error::custom(format!(
                        "line {}: {}: a merge key (<<) takes a map or a list of maps, not {what} (PyYAML refuses the document)",
                        value_node.map_or(0, |n| n.line),
                        path_text(&walk.path)
                    ))
                };
                match value {
                    Value::Mapping(m) => merged.push(m),
                    Value::Sequence(list) => {
                        let mut maps = Vec::with_capacity(list.len());
                        for item in list {
                            match item {
                                Value::Mapping(m) => maps.push(m),
                                other => {
                                    return Err(bad(&format!("a list holding {}", kind_of(&other))))
                                }
                            }
                        }
                        // The first map of the list wins: it is merged last.
                        merged.extend(maps.into_iter().rev());
                    }
                    other => return Err(bad(kind_of(&other))),
                }
                walk.path.pop();
                continue;
            }
            if let Some(Node { line, column, .. }) = key_node {
                let earlier = lines.insert(key.clone(), line);
                // A repeated anchored map is noted where it stands, not again at each alias.
                if let (Some(first), true) = (earlier, walk.replays.is_empty()) {
                    let name = match walk.path.last() {
                        Some(Segment::Key(k)) => k.clone(),
                        _ => String::new(),
                    };
                    walk.notes.push(Note {
                        path: path_text(&walk.path),
                        line: Some(line),
                        column: Some(column),
                        message: format!(
                            "duplicate key {name:?} (lines {first} and {line}): the last value is used"
                        ),
                    });
                }
            }
            walk.path.pop();
            // The key keeps its first place, as in a Python dict.
            explicit.insert(key, value);
        }
        if merged.is_empty() {
            return Ok((Value::Mapping(explicit), node));
        }
        let mut out = Mapping::new();
        for (k, v) in merged.into_iter().flatten().chain(explicit) {
            out.insert(k, v);
        }
        Ok((Value::Mapping(out), node))
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        // A local tag (`!foo x`): the value under it is the node's.
        let (tag, contents) = data.variant::<String>()?;
        let (value, node) = contents.newtype_variant_seed(self)?;
        Ok((
            Value::Tagged(Box::new(TaggedValue {
                tag: Tag::new(tag),
                value,
            })),
            node,
        ))
    }
}

/// What a value is, for messages.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
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

    /// The time `load` takes on `text`, best of three runs.
    fn best_of_three(text: &str) -> std::time::Duration {
        (0..3)
            .map(|_| {
                let start = std::time::Instant::now();
                let loaded = load(text);
                let took = start.elapsed();
                assert!(loaded.is_ok(), "{:?}", loaded.err());
                took
            })
            .min()
            .unwrap_or_default()
    }

    #[test]
    fn a_long_key_over_many_items_costs_about_what_a_short_key_does() {
        // Each scalar under the key used to copy the key's text (its path), and each date kept
        // its copy: quadratic in the key's length times the items.
        // `levels` maps nested under explicit keys (plain keys may not pass 1,024 characters).
        let doc = |key: &str, levels: usize, item: &str, items: usize| {
            format!(
                "{}[{}]{}\n",
                format!("{{? {key} : ").repeat(levels),
                vec![item; items].join(", "),
                "}".repeat(levels)
            )
        };
        for (item, key_len, levels, items) in
            [("x", 100_000, 20, 10_000), ("2032-09-01", 50_000, 4, 2_000)]
        {
            let key = "k".repeat(key_len);
            let short = best_of_three(&doc("k", levels, item, items));
            let long_alone = best_of_three(&doc(&key, levels, item, 1));
            let long = best_of_three(&doc(&key, levels, item, items));
            // The costs add up: the long keys' text once, the items once.
            let bound = (long_alone + short) * 2 + std::time::Duration::from_millis(20);
            assert!(
                long < bound,
                "items {item}: {items} under {levels} keys of {key_len} bytes took {long:?}; \
                 the keys alone {long_alone:?}, the items under 1-byte keys {short:?}"
            );
        }
    }

    #[test]
    fn a_repeated_key_does_not_pass_its_tag_to_the_last_value() {
        let l = load("content: !!binary aGVsbG8K\ncontent: plain text here\n").unwrap();
        assert_eq!(l.value["content"], Value::from("plain text here"));
        assert_eq!(l.notes.len(), 1, "{:?}", l.notes);
        let l = load("expiredate: 2032-09-01\nexpiredate: \"2033-01-01\"\n").unwrap();
        assert_eq!(timestamp_text(&l.value["expiredate"]), None);
        assert_eq!(l.value["expiredate"], Value::from("2033-01-01"));
        // The earlier value may be the tagged one, or the later: each keeps its own.
        let l = load("a: plain\na: !!binary aGVsbG8K\n").unwrap();
        assert_eq!(binary_text(&l.value["a"]), Some("aGVsbG8K"));
        // Through an anchor whose map has the repeated key, and an alias of it.
        let l =
            load("base: &b {content: !!binary aGVsbG8K, content: plain}\nf:\n  - *b\n").unwrap();
        assert_eq!(l.value["base"]["content"], Value::from("plain"));
        assert_eq!(l.value["f"][0]["content"], Value::from("plain"));
    }

    #[test]
    fn a_merge_key_that_is_not_maps_refuses_the_document_as_pyyaml_does() {
        for (text, line) in [
            ("a:\n  <<: 5\n  b: 1\n", 2),
            ("x: &x {c: 1}\na:\n  <<: [*x, 5]\n  b: 1\n", 3),
        ] {
            let e = load(text).unwrap_err();
            assert!(matches!(e, LoadError::Invalid { .. }), "{text}: {e:?}");
            assert!(e.to_string().contains("merge"), "{e}");
            assert_eq!(e.position().map(|p| p.0), Some(line), "{text}: {e:?}");
        }
    }

    #[test]
    fn merge_keys_and_repeated_keys_follow_pyyaml() {
        // Two `<<` keys in one map: both merged, the later one's keys win; no warning.
        let l = load("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: *a\n  <<: *b\n  w: 0\n")
            .unwrap();
        let c = &l.value["c"];
        assert_eq!(
            (&c["x"], &c["y"], &c["z"], &c["w"]),
            (
                &Value::from(1),
                &Value::from(2),
                &Value::from(2),
                &Value::from(0)
            )
        );
        assert!(l.notes.is_empty(), "{:?}", l.notes);
        // A quoted "<<" is an ordinary key.
        let l = load("a: &a {x: 1}\nc:\n  \"<<\": *a\n").unwrap();
        assert_eq!(l.value["c"]["<<"]["x"], Value::from(1));
        assert!(l.value["c"].get("x").is_none());
        // `1` (a number) and "1" (a string) are different keys.
        let l = load("1: a\n\"1\": b\n").unwrap();
        assert!(l.notes.is_empty(), "{:?}", l.notes);
        assert_eq!(l.value.as_mapping().map(Mapping::len), Some(2));
        // Alias keys are the values they repeat.
        let l = load("a: &a x\nb: &b y\nm:\n  *a : 1\n  *b : 2\n").unwrap();
        assert!(l.notes.is_empty(), "{:?}", l.notes);
        assert_eq!(l.value["m"]["y"], Value::from(2));
        let l = load("a: &a x\nm:\n  *a : 1\n  x: 2\n").unwrap();
        assert_eq!(l.notes.len(), 1, "{:?}", l.notes);
        assert_eq!(l.notes[0].line, Some(4));
        assert_eq!(l.value["m"]["x"], Value::from(2));
    }

    #[test]
    fn a_load_walks_the_events_once_and_gives_the_positions_of_what_it_read() {
        let text = "a: 1\nb:\n  - 'yes'\n  - 0644\na: 2\n";
        let before = event_walks();
        let l = load(text).unwrap();
        assert_eq!(event_walks() - before, 1);
        let p = &l.positions;
        // A repeated key: the value read is the last, and so is its position.
        assert_eq!(l.value["a"], Value::from(2));
        assert_eq!(p.value("a"), Some(Pos { line: 5, column: 4 }));
        assert_eq!(p.key("b[0]"), Some(Pos { line: 3, column: 5 }));
        assert!(p.quoted("b[0]"));
        assert_eq!(p.plain("b[1]"), Some("0644"));
        // A text only bounded (not loaded) is not indexed.
        assert!(scan(text.as_bytes(), MAX_YAML_DEPTH, u64::MAX, false)
            .0
            .positions
            .is_none());
    }

    #[test]
    fn a_redefined_anchor_repeats_its_latest_value() {
        let l = load("a: &x !!binary aGVsbG8K\nb: &x plain\nd: *x\n").unwrap();
        assert_eq!(binary_text(&l.value["a"]), Some("aGVsbG8K"));
        assert_eq!(l.value["d"], Value::from("plain"));
        let l = load("a: &x plain\nb: &x !!binary aGVsbG8K\nd: *x\n").unwrap();
        assert_eq!(binary_text(&l.value["d"]), Some("aGVsbG8K"));
    }

    #[test]
    fn a_tagged_value_under_a_complex_key_is_tagged() {
        let l = load("? [a, b]\n: !!binary aGVsbG8K\nc: 2032-09-01\n").unwrap();
        let key = Value::Sequence(vec![Value::from("a"), Value::from("b")]);
        assert_eq!(binary_text(&l.value[&key]), Some("aGVsbG8K"));
        assert!(timestamp_text(&l.value["c"]).is_some());
    }

    #[test]
    fn an_impossible_plain_date_is_an_error_as_in_pyyaml() {
        for bad in [
            "2032-13-45",
            "2031-02-29",
            "0000-01-01",
            "2032-09-01 24:00:00",
            "2032-09-01t10:60:00",
        ] {
            assert!(!is_yaml11_timestamp(bad), "{bad}");
            let e = load(&format!("a: 1\nexpiredate: {bad}\n")).unwrap_err();
            assert!(
                matches!(e, LoadError::Invalid { line: Some(2), .. }),
                "{bad}: {e:?}"
            );
            assert!(e.to_string().contains(bad), "{e}");
        }
        // Quoted, it is text; leap days and the last second are dates.
        assert!(load("a: '2032-13-45'\n").is_ok());
        for good in ["2032-02-29", "2000-02-29", "2032-12-31 23:59:59 +23:59"] {
            assert!(is_yaml11_timestamp(good), "{good}");
        }
    }
}
