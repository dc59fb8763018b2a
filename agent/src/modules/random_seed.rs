//! `random_seed` (cloud-init's cc_seed_random): `data` (decoded by `encoding`) is added to
//! `file` — by default `/dev/urandom` — and then `command` runs with `RANDOM_SEED_FILE` in its
//! environment. Once per instance, first of the config modules: before the modules that need
//! entropy. MAAS's metadata has no seed of its own.
//!
//! `/dev/urandom` or `/dev/random` is fed in place ([`crate::rootfs::feed_device`]: never
//! created, no link followed, refused unless it is a character device or a FIFO); any other
//! device under `/dev` is refused (a disk is a character device too); any other file gets the data
//! appended, as cloud-init does, by an atomic rewrite (mode 0600: the seed is secret).

use super::{Frequency, Inputs, Planned, Stage};
use crate::cloudconfig::lenient::{child, describe, entries, Reader};
use crate::plan::Action;
use serde::Serialize;
use wisp_datasources::userdata::Budget;
use yaml_serde::Value;

pub const NAME: &str = "random_seed";
pub const STAGE: Stage = Stage::Network;
pub const FREQUENCY: Frequency = Frequency::PerInstance;
pub const DEFAULT_FILE: &str = "/dev/urandom";
/// The only devices a seed is written to.
pub const ENTROPY_DEVICES: &[&str] = &["/dev/urandom", "/dev/random"];
/// The most seed data taken (decoded): a seed is a few hundred bytes.
pub const MAX_DATA: usize = 64 * 1024;
/// Where a command named without a path is looked for, inside the root.
const PATH: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/pkg/bin",
    "/usr/pkg/sbin",
];

#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct RandomSeed {
    pub file: String,
    /// Decoded; never shown.
    #[serde(skip)]
    pub data: Vec<u8>,
    pub command: Vec<String>,
    pub command_required: bool,
}

impl std::fmt::Debug for RandomSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RandomSeed")
            .field("file", &self.file)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("command", &self.command)
            .field("command_required", &self.command_required)
            .finish()
    }
}

pub fn plan(inp: &Inputs<'_>, out: &mut Planned) {
    let Some(seed) = &inp.config.random_seed else {
        return;
    };
    let file = crate::rootfs::normalize(&seed.file);
    if !seed.data.is_empty() {
        if file.starts_with("/dev/") && !ENTROPY_DEVICES.contains(&file.as_str()) {
            // On the BSDs every disk is a character device too (/dev/ada0, /dev/rwd0d): a seed
            // written there would overwrite its partition table.
            out.error(
                NAME,
                &file,
                format!(
                    "random_seed.file: {file} is not a random device: under /dev only {} are fed",
                    ENTROPY_DEVICES.join(" and ")
                ),
            );
        } else if file.starts_with("/dev/") {
            out.actions.push(Action::FeedDevice {
                module: NAME,
                item: file.clone(),
                path: file.clone(),
                size: seed.data.len(),
                data: seed.data.clone(),
            });
        } else if let Err(e) = crate::rootfs::check_write_target(&file) {
            out.error(NAME, &file, e);
        } else {
            match out.try_current(inp.root, &file, None) {
                Ok(current) => {
                    let mut content = current.unwrap_or_default();
                    content.extend_from_slice(&seed.data);
                    out.actions.push(Action::write(
                        NAME,
                        file.clone(),
                        file.clone(),
                        content,
                        0o600,
                        ("root", inp.backend.wheel()),
                        false,
                    ));
                }
                Err(e) => out.error(NAME, &file, e),
            }
        }
    }
    let Some(tool) = seed.command.first() else {
        if seed.command_required {
            out.error(
                NAME,
                "command",
                "command_required is true but there is no command",
            );
        }
        return;
    };
    if !command_exists(inp, tool) {
        if seed.command_required {
            out.error(
                NAME,
                tool,
                format!("command {tool} not found in the root, and command_required is true"),
            );
        } else {
            tracing::info!("{NAME}: command {tool} not found: skipped");
        }
        return;
    }
    let root = inp.root.path("/");
    let root = (root != std::path::Path::new("/")).then(|| root.display().to_string());
    let setting = format!("RANDOM_SEED_FILE={file}");
    let mut argv: Vec<&str> = vec!["/usr/bin/env", &setting];
    argv.extend(seed.command.iter().map(String::as_str));
    out.actions.push(Action::exec(
        NAME,
        tool.clone(),
        crate::platform::chrooted(&root, argv),
    ));
}

/// Whether the command is there inside the root: a path as written, else in the usual
/// directories (cloud-init's `which`). Looked up confined to the root
/// ([`crate::rootfs::mode`]: the directories' links resolved inside it, never on the host):
/// an executable file, or a link (which the chroot resolves).
fn command_exists(inp: &Inputs<'_>, tool: &str) -> bool {
    let executable = |path: &str| matches!(crate::rootfs::mode(inp.root, path, None), Ok(Some(m)) if m & 0o111 != 0);
    if tool.contains('/') {
        return tool.starts_with('/') && executable(tool);
    }
    PATH.iter().any(|d| executable(&format!("{d}/{tool}")))
}

// Reading the module's part of a cloud-config document, with cloud-init's leniency
// (`cloudconfig::lenient`).

pub(crate) fn read_random_seed(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<RandomSeed> {
    let map = match v {
        Value::Null => return None,
        Value::Mapping(m) => m,
        other => {
            r.error(path, format!("expected a map, got {}", describe(other)));
            return None;
        }
    };
    let mut file = DEFAULT_FILE.to_string();
    let mut data: Option<String> = None;
    let mut encoding = String::from("raw");
    let mut command = Vec::new();
    let mut command_required = false;
    let mut ok = true;
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        match key.as_str() {
            "file" => match r.string(&p, val) {
                Some(f) if f.starts_with('/') && !f.split('/').any(|c| c == "..") => file = f,
                Some(_) => {
                    r.error(&p, "expected an absolute path with no '..'");
                    ok = false;
                }
                None => ok = false,
            },
            "data" => data = r.opt_string(&p, val),
            "encoding" => {
                encoding = r.string(&p, val).unwrap_or_default().to_ascii_lowercase();
            }
            "command" => match val {
                Value::Sequence(_) => command = r.string_or_list(&p, val),
                Value::Null => {}
                other => {
                    r.error(
                        &p,
                        format!("expected a list (argv), got {}", describe(other)),
                    );
                    ok = false;
                }
            },
            "command_required" => command_required = r.bool(&p, val).unwrap_or(false),
            _ => r.warn(&p, "unknown key (ignored)"),
        }
    }
    let data = data.unwrap_or_default().into_bytes();
    let budget = Budget::default();
    let budget = r.budget.unwrap_or(&budget);
    let decoded = match encoding.as_str() {
        // cloud-init's names; `raw` is the text as it is.
        "raw" => Ok(data),
        other => super::write_files::decode_content(data, other, budget).map_err(|e| e.to_string()),
    };
    let data = match decoded {
        Ok(d) if d.len() <= MAX_DATA => d,
        Ok(d) => {
            r.error(
                &child(path, "data"),
                format!("{} bytes decoded: at most {MAX_DATA} are taken", d.len()),
            );
            return None;
        }
        Err(e) => {
            r.error(&child(path, "data"), format!("{e} (encoding {encoding:?})"));
            return None;
        }
    };
    ok.then_some(RandomSeed {
        file,
        data,
        command,
        command_required,
    })
}

/// The module in the registry ([`super::MODULES`]).
pub struct RandomSeedModule;

impl super::Module for RandomSeedModule {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["random_seed"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let _ = run;
        plan(inp, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Option<RandomSeed>, Vec<String>) {
        crate::cloudconfig::lenient::read_for_test(text, "random_seed", read_random_seed)
    }

    #[test]
    fn encodings_as_cloud_init_names_them() {
        let (s, p) = read("{data: my random string}");
        let s = s.unwrap();
        assert_eq!(s.data, b"my random string");
        assert_eq!(s.file, DEFAULT_FILE);
        assert!(p.is_empty(), "{p:?}");
        for enc in ["base64", "b64", "B64"] {
            let (s, p) = read(&format!("{{data: aGVsbG8=, encoding: {enc}}}"));
            assert_eq!(s.map(|s| s.data), Some(b"hello".to_vec()), "{enc}: {p:?}");
        }
        // gzip of "hello", base64: gz+b64.
        let (s, p) = read("{data: H4sIAAAAAAAAA8tIzcnJBwCGphA2BQAAAA==, encoding: gz+b64}");
        assert_eq!(s.map(|s| s.data), Some(b"hello".to_vec()), "{p:?}");
    }

    #[test]
    fn bad_values_are_named() {
        for (text, path) in [
            ("{data: '%%%', encoding: base64}", "random_seed.data"),
            ("{data: x, encoding: rot13}", "random_seed.data"),
            ("{file: ../etc/passwd, data: x}", "random_seed.file"),
            ("{command: pollinate}", "random_seed.command"),
            ("[x]", "random_seed"),
        ] {
            let (s, p) = read(text);
            assert!(s.is_none(), "{text}");
            assert!(
                p.iter().any(|m| m.starts_with(&format!("{path}: "))),
                "{text}: {p:?}"
            );
        }
        let big = format!("{{data: {}}}", "x".repeat(MAX_DATA + 1));
        assert!(read(&big).0.is_none());
    }

    #[test]
    fn the_seed_is_never_shown() {
        let (s, _) = read("{data: s3cr3t-entropy}");
        let s = s.unwrap();
        assert!(!format!("{s:?}").contains("s3cr3t"));
        assert!(!serde_json::to_string(&s).unwrap().contains("s3cr3t"));
    }
}
