//! `write_files` (cloud-init's cc_write_files): each file written atomically with its mode and
//! owner, parent directories created. `defer: true` files are written in the final stage, after
//! users exist. `append` adds the content unless the file already ends with it. Files inside a
//! user's home are written without following symlinks. Once per instance.

use super::{Frequency, Inputs, Planned, Stage};
use crate::cloudconfig::lenient::{child, describe, entries, Reader};
use crate::plan::Action;
use serde::Serialize;
use wisp_datasources::userdata::yaml::binary_text;
use wisp_datasources::userdata::{Budget, DecodeError};
use yaml_serde::Value;

pub const NAME: &str = "write_files";
/// Deferred files are their own module: they run in another stage.
pub const DEFERRED_NAME: &str = "write_files_deferred";
pub const STAGE: Stage = Stage::Network;
pub const DEFERRED_STAGE: Stage = Stage::Final;
pub const FREQUENCY: Frequency = Frequency::PerInstance;

/// Plans the files with `defer == deferred`.
pub fn plan(inp: &Inputs<'_>, deferred: bool, homes: &[String], out: &mut Planned) {
    let module = if deferred { DEFERRED_NAME } else { NAME };
    for f in inp
        .config
        .write_files
        .iter()
        .filter(|f| f.defer == deferred)
    {
        if f.path.split('/').any(|c| c == "..") {
            out.error(module, &f.path, "a path with '..' is refused");
            continue;
        }
        if let Err(e) = crate::rootfs::check_write_target(&f.path) {
            out.error(module, &f.path, e);
            continue;
        }
        // In a home, nothing from the home down may be a link.
        let home = homes
            .iter()
            .filter(|h| f.path.starts_with(&format!("{}/", h.trim_end_matches('/'))))
            .max_by_key(|h| h.len())
            .map(String::as_str);
        // A link in place of a whole file is replaced (by rename, never written through), so it
        // is not read; an appended one is refused, as are a FIFO (reading it would block) and
        // a device.
        let replaced_link = !f.append && crate::rootfs::is_link(inp.root, &f.path, home);
        let current = match out.try_current(inp.root, &f.path, home) {
            _ if replaced_link => None,
            Ok(c) => c,
            Err(e) => {
                out.error(module, &f.path, e);
                continue;
            }
        };
        let content = if f.append {
            let mut c = current.clone().unwrap_or_default();
            if c.ends_with(&f.content) && !f.content.is_empty() {
                continue;
            }
            c.extend_from_slice(&f.content);
            c
        } else {
            f.content.clone()
        };
        let same_mode = crate::rootfs::mode(inp.root, &f.path, home)
            .ok()
            .flatten()
            .is_some_and(|m| m == f.permissions);
        if current.as_deref() == Some(&content[..]) && same_mode {
            continue;
        }
        // cloud-init's default owner is root:root, but the BSDs have no group `root`: gid 0 is
        // `wheel` there. Writing the file and then failing to chown it would help nobody.
        let group = if f.group == "root" && inp.accounts.group("root").is_none() {
            inp.backend.wheel()
        } else {
            f.group.as_str()
        };
        let in_home = home.is_some();
        out.actions.push(Action::write(
            module,
            f.path.as_str(),
            f.path.as_str(),
            content,
            f.permissions,
            (&f.owner, group),
            in_home,
        ));
    }
}

// Reading the module's part of a cloud-config document, with cloud-init's leniency
// (`cloudconfig::lenient`).

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteFile {
    pub path: String,
    #[serde(skip)]
    pub content: Vec<u8>,
    pub owner: String,
    pub group: String,
    pub permissions: u32,
    pub append: bool,
    pub defer: bool,
}

pub(crate) fn read_write_files(r: &mut Reader<'_>, path: &str, v: &Value) -> Vec<WriteFile> {
    let Some(items) = v.as_sequence() else {
        if !v.is_null() {
            r.error(
                path,
                format!("expected a list of files, got {}", describe(v)),
            );
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let Some(map) = item.as_mapping() else {
            r.error(
                &ip,
                format!("expected a map with a path, got {}", describe(item)),
            );
            continue;
        };
        let mut wf = WriteFile {
            path: String::new(),
            content: Vec::new(),
            owner: "root".into(),
            group: "root".into(),
            permissions: 0o644,
            append: false,
            defer: false,
        };
        let mut content: Option<Vec<u8>> = None;
        let mut encoding = String::from("text/plain");
        let mut ok = true;
        for (key, raw, val) in entries(r, &ip, map) {
            let p = child(&ip, &raw);
            match key.as_str() {
                "path" => match r.string(&p, val) {
                    Some(s) if s.starts_with('/') => wf.path = s,
                    Some(s) => {
                        r.error(&p, format!("{s:?} is not an absolute path"));
                        ok = false;
                    }
                    None => ok = false,
                },
                "content" => {
                    content = match val {
                        Value::Null => Some(Vec::new()),
                        // cloud-init's documented way to ship bytes: decoded here, from the
                        // document's budget; `encoding` then applies to the bytes.
                        v if binary_text(v).is_some() => {
                            let text = binary_text(v).unwrap_or_default();
                            match with_budget(r.budget, |b| b.base64(text.as_bytes())) {
                                Ok(bytes) => Some(bytes),
                                Err(e) => {
                                    r.error(&p, format!("!!binary: {e}"));
                                    ok = false;
                                    None
                                }
                            }
                        }
                        Value::String(s) => Some(s.clone().into_bytes()),
                        other => {
                            r.error(
                                &p,
                                format!(
                                    "expected a string (quote a number), got {}",
                                    describe(other)
                                ),
                            );
                            ok = false;
                            None
                        }
                    }
                }
                "source" => r.warn(&p, "write_files source URLs are not fetched by wisp"),
                "encoding" => encoding = r.string(&p, val).unwrap_or_default().to_ascii_lowercase(),
                "owner" => {
                    if let Some(o) = r.text(&p, val) {
                        let (u, g) = o.split_once(':').unwrap_or((o.as_str(), "root"));
                        wf.owner = u.to_string();
                        wf.group = g.to_string();
                    }
                }
                "permissions" => match permissions(r, &p, val) {
                    Some(m) => wf.permissions = m,
                    None => ok = false,
                },
                "append" => wf.append = r.bool(&p, val).unwrap_or(false),
                "defer" => wf.defer = r.bool(&p, val).unwrap_or(false),
                _ => r.warn(&p, "unknown key (ignored)"),
            }
        }
        if wf.path.is_empty() {
            if ok {
                r.error(&ip, "a file needs a path");
            }
            continue;
        }
        match with_budget(r.budget, |b| {
            decode_content(content.unwrap_or_default(), &encoding, b)
        }) {
            Ok(c) => wf.content = c,
            Err(e) => {
                // The entry's path (`write_files[3].content`) names the file.
                r.error(&child(&ip, "content"), e.to_string());
                continue;
            }
        }
        if ok {
            out.push(wf);
        }
    }
    out
}

/// Runs `f` with the document's budget, or a whole one of its own when there is none.
/// A file's mode. cloud-init's schema wants a string (`'0644'`); an unquoted number written
/// with a leading zero is the octal mode it looks like (YAML 1.1 reads it so, and cloud-init
/// applies it). One written without (`644`) is a decimal number: cloud-init would apply it as
/// such (mode 01204), which is never what was meant, so it is an error and the file is not
/// written. Where the text is not known (several parts merged), the number is the mode.
fn permissions(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<u32> {
    let written = r.positions.and_then(|p| p.plain(path));
    if let (Value::Number(n), Some(text)) = (v, written) {
        if let Some(decimal) = n.as_u64().filter(|_| !text.starts_with('0')) {
            r.error(
                path,
                format!(
                    "expected a string such as '0644', got the number {decimal}, which is the mode 0{decimal:o} as cloud-init reads it: quote the octal mode"
                ),
            );
            return None;
        }
    }
    r.mode(path, v)
}

fn with_budget<T>(budget: Option<&Budget>, f: impl FnOnce(&Budget) -> T) -> T {
    match budget {
        Some(b) => f(b),
        None => f(&Budget::default()),
    }
}

/// `b64`, `base64`, `gz`, `gzip`, `gz+b64`, `gz+base64`, `gzip+base64`, `text/plain`. What
/// decoding produces is drawn from `budget`, the one of the user-data the file came from: a
/// few KB of gzip must not grow past it.
pub fn decode_content(
    content: Vec<u8>,
    encoding: &str,
    budget: &Budget,
) -> Result<Vec<u8>, DecodeError> {
    // One file alone is also capped (cloud-init has no cap; 64 MiB is far beyond a config file).
    const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
    match encoding {
        "" | "text/plain" => Ok(content),
        "b64" | "base64" => budget.base64(&content),
        "gz" | "gzip" => budget.gunzip(&content, MAX_FILE_BYTES),
        "gz+b64" | "gz+base64" | "gzip+b64" | "gzip+base64" => {
            budget.gunzip(&budget.base64(&content)?, MAX_FILE_BYTES)
        }
        other => Err(DecodeError::UnknownEncoding(other.to_string())),
    }
}

/// The module in the registry ([`super::MODULES`]).
pub struct WriteFiles;

impl super::Module for WriteFiles {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["write_files"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let homes = run.homes(inp);
        plan(inp, false, &homes, out)
    }
}

/// The module in the registry ([`super::MODULES`]).
pub struct WriteFilesDeferred;

impl super::Module for WriteFilesDeferred {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: DEFERRED_NAME,
            stage: DEFERRED_STAGE,
            frequency: FREQUENCY,
            keys: &["write_files"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let homes = run.homes(inp);
        plan(inp, true, &homes, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    use base64::Engine;
    use wisp_datasources::userdata::{decode, DecodeOptions};

    fn gz_b64(len: usize) -> String {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![b'x'; len]).unwrap();
        base64::engine::general_purpose::STANDARD.encode(e.finish().unwrap())
    }

    /// A cloud-config with a gz+b64 file at each path (`len` bytes decoded) and a plain one.
    fn doc(paths: &[&str], len: usize) -> String {
        let mut s = String::from("#cloud-config\nwrite_files:\n");
        for p in paths {
            s.push_str(&format!(
                "  - path: {p}\n    encoding: gz+b64\n    content: {}\n",
                gz_b64(len)
            ));
        }
        s.push_str("  - path: /etc/plain\n    content: kept\n");
        s
    }

    #[test]
    fn encoded_contents_share_one_budget_and_the_rest_is_read() {
        let v: Value = yaml_serde::from_str(&doc(&["/etc/a", "/etc/b"], 600 * 1024)).unwrap();
        let budget = Budget::new(1024 * 1024);
        let mut r = Reader {
            budget: Some(&budget),
            ..Default::default()
        };
        let files = read_write_files(&mut r, "write_files", &v["write_files"]);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/etc/a", "/etc/plain"]);
        assert_eq!(files[0].content.len(), 600 * 1024);
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert_eq!(r.problems[0].path, "write_files[1].content");
        assert!(
            r.problems[0].message.contains("1048576-byte limit"),
            "{:?}",
            r.problems[0]
        );
    }

    #[test]
    fn a_file_past_its_own_cap_is_refused_not_cut() {
        // 64 MiB + 1 of one byte is ~65 KB of gzip.
        let v: Value = yaml_serde::from_str(&doc(&["/etc/big"], 64 * 1024 * 1024 + 1)).unwrap();
        let budget = Budget::new(u64::MAX);
        let mut r = Reader {
            budget: Some(&budget),
            ..Default::default()
        };
        let files = read_write_files(&mut r, "write_files", &v["write_files"]);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "/etc/plain");
        assert!(r.problems[0]
            .message
            .contains("beyond the 67108864-byte limit"));
    }

    #[test]
    fn files_draw_from_what_their_user_data_left() {
        // The user-data's decoding uses most of its budget (a gzip document); its files get the
        // rest, not a fresh budget of their own.
        let mut text = doc(&["/etc/a"], 600 * 1024);
        // 150 KB of comment: decoded (gunzip) and read (the part and its YAML) it takes ~450 KB.
        text.push_str(&format!("# {}\n", "x".repeat(150 * 1024)));
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(text.as_bytes()).unwrap();
        let opts = DecodeOptions {
            max_decoded_bytes: 1024 * 1024,
            ..Default::default()
        };
        let user = decode(&e.finish().unwrap(), "user-data", &opts);
        assert!(user.problems.is_empty(), "{:?}", user.problems);
        assert!(user.budget_left < 600 * 1024);
        let docs = crate::engine::Documents {
            user: Some(&user),
            vendor: None,
            metadata_keys: &[],
            local_hostname: None,
            instance_id: "i-1",
            source: "user-data",
        };
        let read = crate::engine::Read::new(
            crate::platform::Platform::Netbsd,
            &crate::config::Config::default(),
            &docs,
        );
        // An error of the document: reported as an error, as `wisp schema` calls it.
        assert!(
            read.errors.iter().any(|e| e.module == NAME
                && e.item.contains("write_files[0].content")
                && e.reason.contains("1048576-byte limit")),
            "{:?}",
            read.errors
        );
    }
}
