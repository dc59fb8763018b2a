//! `write_files` (cloud-init's cc_write_files): each file written atomically with its mode and
//! owner, parent directories created. `defer: true` files are written in the final stage, after
//! users exist. `append` adds the content unless the file already ends with it. Files inside a
//! user's home are written without following symlinks. Once per instance.

use super::{Frequency, Inputs, Planned, Stage};
use crate::cloudconfig::lenient::{child, describe, entries, Reader};
use crate::plan::Action;
use base64::Engine;
use serde::Serialize;
use serde_yaml::Value;

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
                        _ => r.string(&p, val).map(String::into_bytes),
                    }
                }
                "source" => r.warn(&p, "write_files source URLs are not fetched by wisp"),
                "encoding" => encoding = r.string(&p, val).unwrap_or_default().to_ascii_lowercase(),
                "owner" => {
                    if let Some(o) = r.string(&p, val) {
                        let (u, g) = o.split_once(':').unwrap_or((o.as_str(), "root"));
                        wf.owner = u.to_string();
                        wf.group = g.to_string();
                    }
                }
                "permissions" => match r.mode(&p, val) {
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
        match decode_content(content.unwrap_or_default(), &encoding) {
            Ok(c) => wf.content = c,
            Err(e) => {
                r.error(&child(&ip, "content"), e);
                continue;
            }
        }
        if ok {
            out.push(wf);
        }
    }
    out
}

/// `b64`, `base64`, `gz`, `gzip`, `gz+b64`, `gz+base64`, `gzip+base64`, `text/plain`.
pub fn decode_content(content: Vec<u8>, encoding: &str) -> Result<Vec<u8>, String> {
    let b64 = |c: Vec<u8>| {
        let clean: Vec<u8> = c.into_iter().filter(|b| !b.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(clean)
            .map_err(|e| format!("invalid base64: {e}"))
    };
    let gunzip = |c: Vec<u8>| {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&c[..])
            .take(64 * 1024 * 1024)
            .read_to_end(&mut out)
            .map_err(|e| format!("invalid gzip data: {e}"))?;
        Ok::<_, String>(out)
    };
    match encoding {
        "" | "text/plain" => Ok(content),
        "b64" | "base64" => b64(content),
        "gz" | "gzip" => gunzip(content),
        "gz+b64" | "gz+base64" | "gzip+b64" | "gzip+base64" => gunzip(b64(content)?),
        other => Err(format!("unknown encoding {other:?}")),
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
