//! Scripts that modules write and run: kept under the state directory, root-only, run inside
//! the target root (`chroot`) when it is not `/`.

use super::{Inputs, Planned};
use crate::cloudconfig::lenient::{describe, Reader};
use crate::plan::Action;
use serde::Serialize;
use yaml_serde::Value;

/// Where the scripts of this instance are kept.
pub const SCRIPTS_DIR: &str = "/var/db/wisp/scripts";

/// A command list as a shell script: strings verbatim, argv lists quoted word by word.
pub fn to_script(commands: &[Command]) -> String {
    let mut s = String::from("#!/bin/sh\n");
    for c in commands {
        match c {
            Command::Shell(line) => s.push_str(line),
            Command::Argv(argv) => {
                s.push_str(&argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "))
            }
        }
        s.push('\n');
    }
    s
}

/// Single-quotes a word for sh.
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@%".contains(c))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// Plans writing `content` as an executable script and running it (with `interpreter` first,
/// when given, else directly by its `#!` line).
pub fn write_and_run(
    inp: &Inputs<'_>,
    out: &mut Planned,
    module: &'static str,
    name: &str,
    content: Vec<u8>,
    interpreter: Option<&str>,
) {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = format!("{SCRIPTS_DIR}/{module}-{safe}");
    out.actions.push(Action::write(
        module,
        name,
        path.clone(),
        content,
        0o700,
        ("root", inp.backend.wheel()),
        false,
    ));
    let mut argv: Vec<String> = Vec::new();
    let root = inp.root.path("/");
    if root != std::path::Path::new("/") {
        argv.push("chroot".into());
        argv.push(root.display().to_string());
    }
    if let Some(i) = interpreter {
        argv.push(i.into());
    }
    argv.push(path);
    out.actions.push(Action::exec(module, name, argv));
}

// Reading the module's part of a cloud-config document, with cloud-init's leniency
// (`cloudconfig::lenient`).

/// A command: a string for `sh -c`, or an argv list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Shell(String),
    Argv(Vec<String>),
}

pub(crate) fn read_commands(r: &mut Reader<'_>, path: &str, v: &Value) -> Vec<Command> {
    let Some(items) = v.as_sequence() else {
        if !v.is_null() {
            r.error(
                path,
                format!("expected a list of commands, got {}", describe(v)),
            );
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        match item {
            Value::String(s) => out.push(Command::Shell(s.clone())),
            Value::Sequence(args) => {
                let argv: Vec<String> = args
                    .iter()
                    .enumerate()
                    .filter_map(|(j, a)| r.string(&format!("{ip}[{j}]"), a))
                    .collect();
                if argv.len() == args.len() && !argv.is_empty() {
                    out.push(Command::Argv(argv));
                } else if args.is_empty() {
                    r.error(&ip, "an empty command");
                }
            }
            Value::Null => {}
            other => r.error(
                &ip,
                format!("expected a string or an argv list, got {}", describe(other)),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_keep_strings_and_quote_argv() {
        let s = to_script(&[
            Command::Shell("cd /tmp && echo $HOME > x".into()),
            Command::Argv(vec![
                "touch".into(),
                "a file".into(),
                "it's".into(),
                "$(x)".into(),
            ]),
        ]);
        assert_eq!(
            s,
            "#!/bin/sh\ncd /tmp && echo $HOME > x\ntouch 'a file' 'it'\\''s' '$(x)'\n"
        );
    }
}
