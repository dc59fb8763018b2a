//! User-data decoding as cloud-init does it (`cloudinit/user_data.py` and the part handlers):
//! gzip, MIME multipart (nested), `#include`, `#cloud-config-archive` and `## template: jinja`
//! are unpacked into parts; `#cloud-config` parts are merged; `#!` scripts and boothooks are kept
//! for the stages that run them. Anything else is reported and skipped — one bad part never
//! loses the others.

pub mod budget;
pub mod jinja;
pub mod merge;
pub mod mime;
pub mod yaml;

use std::time::{Duration, Instant};

use serde::Serialize;
use yaml_serde::{Mapping, Value};

use crate::http::DEFAULT_MAX_BYTES;
pub use budget::{Budget, DecodeError, MAX_DECODED_BYTES};

/// How deep parts may nest (MIME inside includes inside archives…). Checked before each
/// level is parsed, so a deeper document costs no more than this many levels.
pub const MAX_DEPTH: usize = 8;
/// At most this many parts from one document.
const MAX_PARTS: usize = 256;

/// What a part is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartKind {
    /// `#cloud-config`: merged into [`Decoded::cloud_config`].
    CloudConfig,
    /// `#!…`: run once per instance in the final stage.
    Script,
    /// `#cloud-boothook`: run early on every boot.
    Boothook,
}

impl PartKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PartKind::CloudConfig => "cloud-config",
            PartKind::Script => "script",
            PartKind::Boothook => "boothook",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    pub kind: PartKind,
    /// The MIME filename, or `part-NNN`.
    pub name: String,
    #[serde(skip)]
    pub content: Vec<u8>,
    pub size: usize,
    /// The part's launch index (cloud-init's `Launch-Index`): from its MIME header, its
    /// archive item's `launch-index`, or a cloud-config's `launch-index` key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_index: Option<i64>,
}

/// A part that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub part: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decoded {
    pub parts: Vec<Part>,
    /// All `#cloud-config` parts merged, in order.
    #[serde(skip)]
    pub cloud_config: Mapping,
    pub problems: Vec<Problem>,
    /// What was read all the same but deserves a word (a repeated key: its last value is used).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Problem>,
    /// The decoding budget: its total, and what decoding left of it. The documents' encoded
    /// `write_files` contents are decoded from what is left ([`Decoded::budget`]).
    #[serde(skip)]
    pub budget_total: u64,
    #[serde(skip)]
    pub budget_left: u64,
}

impl Default for Decoded {
    fn default() -> Self {
        Decoded {
            parts: Vec::new(),
            cloud_config: Mapping::new(),
            problems: Vec::new(),
            warnings: Vec::new(),
            budget_total: MAX_DECODED_BYTES,
            budget_left: MAX_DECODED_BYTES,
        }
    }
}

impl Decoded {
    /// What is left of the budget the document was decoded with, for decoding what its
    /// cloud-config holds (`write_files` contents).
    pub fn budget(&self) -> Budget {
        Budget::with_left(self.budget_total, self.budget_left)
    }
}

/// How long one `#include` URL may take when the datasource names no `timeout`.
pub const INCLUDE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long all the `#include` URLs of a document may take together: URLs that never answer
/// must not hold the boot (16 of them took 8 minutes at 30 s each).
pub const INCLUDES_DEADLINE: Duration = Duration::from_secs(30);

/// Fetches `#include` URLs (the datasource's HTTP client in the agent; a map in tests).
pub trait IncludeFetcher {
    /// The answer to a GET of `url`: at most `max_bytes`, within `timeout` in all.
    fn fetch(&self, url: &str, max_bytes: u64, timeout: Duration) -> Result<Vec<u8>, String>;
}

impl IncludeFetcher for crate::http::HttpClient {
    fn fetch(&self, url: &str, max_bytes: u64, timeout: Duration) -> Result<Vec<u8>, String> {
        let mut req = crate::http::Request::get(url, timeout);
        req.max_bytes = max_bytes;
        let resp = self.send(req).map_err(|e| e.to_string())?;
        if resp.is_success() {
            Ok(resp.body)
        } else {
            Err(resp.into_error().to_string())
        }
    }
}

pub struct DecodeOptions<'a> {
    /// Cap on the document, on each decompressed payload and on each include.
    pub max_bytes: u64,
    /// Cap on all that decoding the document produces ([`MAX_DECODED_BYTES`]).
    pub max_decoded_bytes: u64,
    /// At most this many `#include` URLs are fetched in all.
    pub max_includes: usize,
    /// How long one `#include` may take (the datasource's request timeout).
    pub include_timeout: Duration,
    /// How long all `#include`s together may take, from the first.
    pub includes_deadline: Duration,
    pub fetcher: Option<&'a dyn IncludeFetcher>,
    /// Instance data for jinja templates (see [`crate::Metadata::instance_data`]).
    pub instance_data: Option<&'a serde_json::Value>,
    /// The instance's launch index, when the datasource has one
    /// ([`crate::Metadata::launch_index`]): parts that carry another one are left out, as
    /// cloud-init's launch-index filter does. None: nothing is left out.
    pub launch_index: Option<i64>,
}

impl Default for DecodeOptions<'_> {
    fn default() -> Self {
        DecodeOptions {
            max_bytes: DEFAULT_MAX_BYTES,
            max_decoded_bytes: MAX_DECODED_BYTES,
            max_includes: 16,
            include_timeout: INCLUDE_TIMEOUT,
            includes_deadline: INCLUDES_DEADLINE,
            fetcher: None,
            instance_data: None,
            launch_index: None,
        }
    }
}

/// Decodes a user-data (or vendor-data) document. `source` names it in problems.
pub fn decode(raw: &[u8], source: &str, opts: &DecodeOptions<'_>) -> Decoded {
    let mut d = Decoder {
        opts,
        out: Decoded::default(),
        includes: 0,
        counter: 0,
        source,
        budget: Budget::new(opts.max_decoded_bytes),
        includes_end: None,
        inherited_index: None,
    };
    if raw.len() as u64 > opts.max_bytes {
        d.problem(
            source,
            format!("larger than the {}-byte limit", opts.max_bytes),
        );
    } else {
        d.payload(raw, None, None, 0);
    }
    d.out.budget_total = d.budget.total();
    d.out.budget_left = d.budget.left();
    d.out
}

/// Header prefixes, longest first where one is a prefix of another.
const STARTS_WITH: &[(&str, Kind)] = &[
    ("#include-once", Kind::Include),
    ("#include", Kind::Include),
    ("#cloud-config-archive", Kind::Archive),
    (
        "#cloud-config-jsonp",
        Kind::Unsupported("#cloud-config-jsonp"),
    ),
    ("#cloud-config", Kind::CloudConfig),
    ("#cloud-boothook", Kind::Boothook),
    ("#part-handler", Kind::Unsupported("#part-handler")),
    ("#upstart-job", Kind::Unsupported("#upstart-job")),
    ("#!", Kind::Script),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    CloudConfig,
    Script,
    Boothook,
    Include,
    Archive,
    Jinja,
    Gzip,
    Unsupported(&'static str),
    Unknown,
}

fn kind_from_content(data: &[u8]) -> Kind {
    if data.starts_with(&[0x1f, 0x8b]) {
        return Kind::Gzip;
    }
    let head = &data[..data.len().min(64)];
    let head = String::from_utf8_lossy(head);
    let first_line = head.lines().next().unwrap_or("");
    if is_jinja_header(first_line) {
        return Kind::Jinja;
    }
    let lower = first_line.to_ascii_lowercase();
    STARTS_WITH
        .iter()
        .find(|(p, _)| lower.starts_with(p))
        .map(|(_, k)| *k)
        .unwrap_or(Kind::Unknown)
}

/// `## template: jinja`, spacing and case as cloud-init accepts.
fn is_jinja_header(line: &str) -> bool {
    let compact: String = line
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    compact == "##template:jinja"
}

fn kind_from_mime(ctype: &str) -> Option<Kind> {
    Some(match ctype {
        "text/cloud-config" => Kind::CloudConfig,
        "text/x-shellscript" => Kind::Script,
        "text/cloud-boothook" => Kind::Boothook,
        "text/x-include-url" | "text/x-include-once-url" => Kind::Include,
        "text/cloud-config-archive" => Kind::Archive,
        "text/jinja2" => Kind::Jinja,
        "application/gzip" | "application/x-gzip" => Kind::Gzip,
        "text/part-handler" => Kind::Unsupported("text/part-handler"),
        "text/cloud-config-jsonp" => Kind::Unsupported("text/cloud-config-jsonp"),
        // Types that say nothing: look at the content.
        "text/plain" | "text/x-not-multipart" | "application/octet-stream" => return None,
        _ => Kind::Unknown,
    })
}

struct Decoder<'a, 'o> {
    opts: &'a DecodeOptions<'o>,
    out: Decoded,
    includes: usize,
    counter: usize,
    source: &'a str,
    budget: Budget,
    /// When the time for all `#include`s ends (set at the first one).
    includes_end: Option<Instant>,
    /// The `Launch-Index` header of a gzip part, for what it decompresses to (cloud-init
    /// copies the header onto the decompressed part).
    inherited_index: Option<String>,
}

/// cloud-init's `safe_int` of a launch index: an integer, or text that is one.
fn index_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Decoder<'_, '_> {
    fn problem(&mut self, part: &str, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!(part, %message, "user-data part skipped");
        self.out.problems.push(Problem {
            part: part.to_string(),
            message,
        });
    }

    fn next_name(&mut self, filename: Option<String>) -> String {
        self.counter += 1;
        filename.unwrap_or_else(|| format!("part-{:03}", self.counter))
    }

    /// One payload: a whole document, a MIME part's body, an include's answer, an archive item.
    fn payload(
        &mut self,
        data: &[u8],
        mime: Option<&mime::Message>,
        name: Option<String>,
        depth: usize,
    ) {
        if self.too_deep(depth) {
            return;
        }
        if self.out.parts.len() + self.out.problems.len() >= MAX_PARTS {
            if self.out.problems.last().map(|p| p.message.as_str()) != Some("too many parts") {
                self.problem(self.source, "too many parts");
            }
            return;
        }
        // A top-level document or include answer may be a MIME message.
        if mime.is_none() && looks_like_mime(data) {
            // Parsing copies the body.
            if let Err(e) = self.budget.take(data.len()) {
                let n = self.next_name(name);
                return self.problem(&n, e.to_string());
            }
            let msg = mime::parse(data);
            self.message(&msg, depth);
            return;
        }
        let declared = mime
            .and_then(|m| m.content_type())
            .and_then(|c| kind_from_mime(&c));
        let kind = match declared {
            Some(Kind::Unknown) => {
                let ct = mime.and_then(|m| m.content_type()).unwrap_or_default();
                let n = self.next_name(name);
                self.problem(&n, format!("unknown content type {ct}, skipped"));
                return;
            }
            Some(k) if k != Kind::Gzip && data.starts_with(&[0x1f, 0x8b]) => Kind::Gzip,
            Some(k) => k,
            None => kind_from_content(data),
        };
        let merge_header = mime
            .and_then(|m| m.header("merge-type").or(m.header("x-merge-type")))
            .map(str::to_string);
        let index_header = mime
            .and_then(|m| m.header("launch-index"))
            .map(str::to_string)
            .or_else(|| self.inherited_index.take());
        match kind {
            Kind::Gzip => match self.budget.gunzip(data, self.opts.max_bytes) {
                Ok(plain) => {
                    self.inherited_index = index_header;
                    self.payload(&plain, None, name, depth + 1);
                    self.inherited_index = None;
                }
                Err(e) => {
                    let n = self.next_name(name);
                    self.problem(&n, e.to_string())
                }
            },
            Kind::CloudConfig => {
                let n = self.next_name(name);
                self.cloud_config(data, &n, merge_header.as_deref(), index_header.as_deref());
            }
            Kind::Script | Kind::Boothook => {
                let n = self.next_name(name);
                let Some(launch_index) = self.selected(&n, index_header.as_deref(), None) else {
                    return;
                };
                if let Err(e) = self.budget.take(data.len()) {
                    return self.problem(&n, e.to_string());
                }
                self.out.parts.push(Part {
                    kind: if kind == Kind::Script {
                        PartKind::Script
                    } else {
                        PartKind::Boothook
                    },
                    name: n,
                    size: data.len(),
                    content: data.to_vec(),
                    launch_index,
                });
            }
            Kind::Include => self.include(data, name, depth),
            Kind::Archive => self.archive(data, name, depth),
            Kind::Jinja => self.jinja(data, name, depth),
            Kind::Unsupported(what) => {
                let n = self.next_name(name);
                self.problem(
                    &n,
                    format!("{what} parts are not supported by wisp, skipped"),
                );
            }
            Kind::Unknown => {
                if data.iter().all(u8::is_ascii_whitespace) {
                    return;
                }
                let n = self.next_name(name);
                let what = if std::str::from_utf8(data).is_err() {
                    "binary data"
                } else {
                    "text"
                };
                self.problem(
                    &n,
                    format!(
                        "{what} without a known header (#cloud-config, #!, #include, \
                         #cloud-config-archive, #cloud-boothook, ## template: jinja), skipped"
                    ),
                );
            }
        }
    }

    /// Whether part `name` is this instance's, as cloud-init's launch-index filter decides
    /// (given the part's `Launch-Index` header, else the index its content names): `None` when
    /// it is left out, else the index it carries. A part with none is everyone's; a header
    /// that is not a number matches no instance.
    fn selected(
        &mut self,
        name: &str,
        header: Option<&str>,
        content: Option<&Value>,
    ) -> Option<Option<i64>> {
        let (given, index) = match (header, content) {
            (Some(h), _) => (true, h.trim().parse::<i64>().ok()),
            (None, Some(v)) => {
                let i = index_value(v);
                // cloud-init attaches a content's index only when it is a number.
                (i.is_some(), i)
            }
            (None, None) => (false, None),
        };
        match self.opts.launch_index {
            Some(wanted) if given && index != Some(wanted) => {
                let shown = header
                    .map(str::to_string)
                    .or(index.map(|i| i.to_string()))
                    .unwrap_or_default();
                self.out.warnings.push(Problem {
                    part: name.to_string(),
                    message: format!(
                        "launch-index {shown} is not this instance's ({wanted}): part left out"
                    ),
                });
                None
            }
            _ => Some(index),
        }
    }

    /// Reports and refuses a level past [`MAX_DEPTH`] before anything of it is parsed.
    fn too_deep(&mut self, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            self.problem(
                self.source,
                format!("parts nest deeper than {MAX_DEPTH} levels"),
            );
        }
        depth > MAX_DEPTH
    }

    fn message(&mut self, msg: &mime::Message, depth: usize) {
        if self.too_deep(depth) {
            return;
        }
        let ctype = msg.content_type().unwrap_or_default();
        if ctype.starts_with("multipart/") {
            // A container's own `Launch-Index` is not read: cloud-init skips containers when it
            // takes the parts out, and filters only the parts.
            let Some(boundary) = msg.param("content-type", "boundary") else {
                self.problem(self.source, format!("{ctype} without a boundary, skipped"));
                return;
            };
            for raw in mime::split_multipart(&msg.body, &boundary) {
                // Parsing copies the part's body.
                if let Err(e) = self.budget.take(raw.len()) {
                    let n = self.next_name(None);
                    self.problem(&n, e.to_string());
                    continue;
                }
                let part = mime::parse(raw);
                if part
                    .content_type()
                    .is_some_and(|c| c.starts_with("multipart/"))
                {
                    self.message(&part, depth + 1);
                } else {
                    self.mime_leaf(&part, depth + 1);
                }
            }
        } else {
            self.mime_leaf(msg, depth);
        }
    }

    fn mime_leaf(&mut self, part: &mime::Message, depth: usize) {
        let name = part.filename();
        let decoded = part.decoded_body(&self.budget);
        match decoded {
            Ok(body) => self.payload(&body, Some(part), name, depth),
            Err(e) => {
                let n = self.next_name(name);
                self.problem(&n, format!("body: {e}"));
            }
        }
    }

    fn cloud_config(
        &mut self,
        data: &[u8],
        name: &str,
        merge_header: Option<&str>,
        index_header: Option<&str>,
    ) {
        // The part is kept (its size), and the merge into the document and the readers copy
        // its text once more (its size again). Its parsed tree is charged node by node below.
        if let Err(e) = self.budget.take(data.len().saturating_mul(2)) {
            return self.problem(name, e.to_string());
        }
        let text = match std::str::from_utf8(data) {
            Ok(t) => t,
            Err(_) => return self.problem(name, "#cloud-config is not valid UTF-8"),
        };
        // PyYAML's reading: a repeated key keeps its last value, merge keys are merged. The
        // tree may take what is left of the budget, counted before it is built.
        let doc = match yaml::load_within(text, self.budget.left()) {
            Ok(loaded) => {
                if let Err(e) = self
                    .budget
                    .take(usize::try_from(loaded.cost).unwrap_or(usize::MAX))
                {
                    return self.problem(name, e.to_string());
                }
                for n in loaded.notes {
                    let at = n.line.map(|l| format!("line {l}: ")).unwrap_or_default();
                    let path = if n.path.is_empty() {
                        String::new()
                    } else {
                        format!("{}: ", n.path)
                    };
                    self.out.warnings.push(Problem {
                        part: name.to_string(),
                        message: format!("{at}{path}{}", n.message),
                    });
                }
                loaded.value
            }
            Err(e @ yaml::LoadError::TooDeep(_)) => {
                return self.problem(name, format!("{}: {e}", self.source))
            }
            Err(e @ yaml::LoadError::TooLarge(_)) => {
                return self.problem(
                    name,
                    format!(
                    "{}: {e}: refused, it would pass the {}-byte limit on all decoded user-data",
                    self.source,
                    self.budget.total()
                ),
                )
            }
            Err(e) => return self.problem(name, e.to_string()),
        };
        let map = match doc {
            Value::Mapping(m) => m,
            Value::Null => Mapping::new(),
            _ => return self.problem(name, "#cloud-config must be a YAML map"),
        };
        let Some(launch_index) = self.selected(name, index_header, map.get("launch-index")) else {
            return;
        };
        let mergers = match merge::mergers_for(&map, merge_header) {
            Ok(m) => m,
            Err(e) => {
                self.problem(name, format!("{e}; using the default merge"));
                merge::Mergers::default()
            }
        };
        let mut map = map;
        map.remove("merge_how");
        map.remove("merge_type");
        let old = std::mem::take(&mut self.out.cloud_config);
        if let Value::Mapping(m) = mergers.merge(Value::Mapping(old), Value::Mapping(map)) {
            self.out.cloud_config = m;
        }
        self.out.parts.push(Part {
            kind: PartKind::CloudConfig,
            name: name.to_string(),
            size: data.len(),
            content: data.to_vec(),
            launch_index,
        });
    }

    fn include(&mut self, data: &[u8], name: Option<String>, depth: usize) {
        let label = self.next_name(name);
        let text = String::from_utf8_lossy(data);
        let urls: Vec<String> = text
            .lines()
            .skip(1)
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        for url in urls {
            if self.includes >= self.opts.max_includes {
                self.problem(
                    &label,
                    format!(
                        "more than {} #include URLs, {url} not fetched",
                        self.opts.max_includes
                    ),
                );
                continue;
            }
            self.includes += 1;
            let Some(fetcher) = self.opts.fetcher else {
                self.problem(&label, format!("{url}: #include cannot be fetched here"));
                continue;
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                self.problem(&label, format!("{url}: #include takes http(s) URLs only"));
                continue;
            }
            if self.budget.left() == 0 {
                self.problem(
                    &label,
                    format!("#include {url}: {}", self.budget.exceeded()),
                );
                continue;
            }
            let end = *self
                .includes_end
                .get_or_insert_with(|| Instant::now() + self.opts.includes_deadline);
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.problem(
                    &label,
                    format!(
                        "#include {url}: not fetched: the {:?} for all #include URLs have passed",
                        self.opts.includes_deadline
                    ),
                );
                continue;
            }
            let max = self.opts.max_bytes.min(self.budget.left());
            match fetcher.fetch(&url, max, self.opts.include_timeout.min(left)) {
                Ok(body) => match self.budget.take(body.len()) {
                    Ok(()) => self.payload(&body, None, Some(url.clone()), depth + 1),
                    Err(e) => self.problem(&label, format!("#include {url}: {e}")),
                },
                Err(e) => self.problem(&label, format!("#include {url}: {e}")),
            }
        }
    }

    fn archive(&mut self, data: &[u8], name: Option<String>, depth: usize) {
        let label = name.unwrap_or_else(|| format!("{}#cloud-config-archive", self.source));
        let text = match std::str::from_utf8(data) {
            Ok(t) => t,
            Err(_) => return self.problem(&label, "#cloud-config-archive is not valid UTF-8"),
        };
        // Its tree is charged node by node before it is built.
        let items = match yaml::load_within(text, self.budget.left()) {
            Ok(loaded) => match self
                .budget
                .take(usize::try_from(loaded.cost).unwrap_or(usize::MAX))
            {
                Ok(()) => loaded.value,
                Err(e) => return self.problem(&label, e.to_string()),
            },
            Err(e @ yaml::LoadError::Invalid { .. }) => return self.problem(&label, e.to_string()),
            Err(e) => return self.problem(&label, format!("{}: {e}", self.source)),
        };
        let Value::Sequence(items) = items else {
            return self.problem(&label, "#cloud-config-archive must be a YAML list");
        };
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => self.payload(s.as_bytes(), None, None, depth + 1),
                Value::Mapping(m) => {
                    let Some(content) = m.get("content").and_then(Value::as_str) else {
                        self.problem(
                            &format!("{label}[{i}]"),
                            "archive item without a content string",
                        );
                        continue;
                    };
                    let filename = m
                        .get("filename")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    let mut headers = Vec::new();
                    if let Some(t) = m.get("type").and_then(Value::as_str) {
                        headers.push(("content-type".to_string(), t.to_string()));
                    }
                    // cloud-init makes the item's `launch-index` its part's header.
                    if let Some(i) = m.get("launch-index") {
                        let text = match i {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            other => format!("{other:?}"),
                        };
                        headers.push(("launch-index".to_string(), text));
                    }
                    let fake = mime::Message {
                        headers,
                        body: Vec::new(),
                    };
                    self.payload(content.as_bytes(), Some(&fake), filename, depth + 1);
                }
                _ => self.problem(
                    &format!("{label}[{i}]"),
                    "archive item must be a string or a map",
                ),
            }
        }
    }

    fn jinja(&mut self, data: &[u8], name: Option<String>, depth: usize) {
        let text = String::from_utf8_lossy(data);
        // Drop the `## template: jinja` line.
        let body = text.split_once('\n').map(|(_, b)| b).unwrap_or("");
        let Some(instance) = self.opts.instance_data else {
            let n = self.next_name(name);
            return self.problem(
                &n,
                "jinja template needs instance data, which is not available here",
            );
        };
        match jinja::render(body, instance) {
            Ok(r) => {
                if let Err(e) = self.budget.take(r.text.len()) {
                    let n = self.next_name(name);
                    return self.problem(&n, e.to_string());
                }
                for v in &r.missing {
                    let label = name.clone().unwrap_or_else(|| "jinja template".into());
                    self.problem(&label, format!("variable {v} is not in the instance data"));
                }
                // Rendered output is classified again (it starts with #cloud-config, #! …).
                self.payload(r.text.as_bytes(), None, name, depth + 1);
            }
            Err(e) => {
                let n = self.next_name(name);
                self.problem(&n, e);
            }
        }
    }
}

/// cloud-init treats a document as MIME when `mime-version:` appears in its first 4 KiB, or when
/// it begins with a `Content-Type:` header.
fn looks_like_mime(data: &[u8]) -> bool {
    let head = &data[..data.len().min(4096)];
    let lower = head.to_ascii_lowercase();
    lower.starts_with(b"content-type:") || lower.windows(13).any(|w| w == b"mime-version:")
}
