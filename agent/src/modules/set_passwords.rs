//! Passwords (cloud-init's cc_set_passwords and the password fields of `users`): `passwd` (a
//! hash, when the user is created), `hashed_passwd` and `plain_text_passwd` (every run),
//! top-level `password` for the default user, and `chpasswd` with `expire`. Secrets go to the
//! OS's tools on standard input or through files, never in argv, a plan or a log; generated
//! (RANDOM) passwords are shown once, on the console. Stage network, once per instance.

use super::users_groups::User;
use super::{Frequency, Inputs, Planned, Stage};
use crate::cloudconfig::is_password_hash;
use crate::cloudconfig::lenient::{child, describe, entries, Reader};
use crate::plan::Secret;
use serde::Serialize;
use yaml_serde::Value;

pub const NAME: &str = "set_passwords";
pub const STAGE: Stage = Stage::Network;
pub const FREQUENCY: Frequency = Frequency::PerInstance;

/// The hash in a password field, without the marks a lock adds (`!`, `*LOCKED*`, `*`).
fn unlocked(field: &str) -> &str {
    field
        .strip_prefix("*LOCKED*")
        .or_else(|| field.strip_prefix('!'))
        .or_else(|| field.strip_prefix('*').filter(|r| r.starts_with('$')))
        .unwrap_or(field)
}

/// A password of 20 letters and digits from the OS's random source.
fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 20];
    let hex = wisp_datasources::oauth::new_nonce() + &wisp_datasources::oauth::new_nonce();
    for (i, b) in bytes.iter_mut().enumerate() {
        let v = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap_or(0);
        *b = ALPHABET[v as usize % ALPHABET.len()];
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The password fields of one `users` entry, planned between its creation and its lock.
pub fn user_passwords(inp: &Inputs<'_>, u: &User, created: bool, out: &mut Planned) {
    let b = inp.backend;
    if created {
        if let Some(p) = &u.passwd {
            if is_password_hash(p) {
                out.actions.push(b.set_password(&u.name, p, true));
            } else {
                out.error(
                    NAME,
                    &u.name,
                    "passwd must be a password hash; use plain_text_passwd for plain text",
                );
            }
        }
    }
    if let Some(h) = &u.hashed_passwd {
        if !is_password_hash(h) {
            out.error(NAME, &u.name, "hashed_passwd is not a password hash");
        } else if inp.accounts.hash(&u.name).map(unlocked) != Some(h.as_str()) {
            out.actions.push(b.set_password(&u.name, h, true));
        }
    }
    if let Some(p) = &u.plain_text_passwd {
        out.actions.push(b.set_password(&u.name, p, false));
    }
}

/// Top-level `password` and `chpasswd`.
pub fn plan(inp: &Inputs<'_>, managed: &[User], out: &mut Planned) {
    let b = inp.backend;
    let mut changed: Vec<String> = Vec::new();
    let managed_names: std::collections::HashSet<&str> =
        managed.iter().map(|u| u.name.as_str()).collect();
    let exists = |name: &str| inp.accounts.user(name).is_some() || managed_names.contains(name);
    let mut set = |name: &str, password: &str, kind: PasswordKind, out: &mut Planned| {
        if !exists(name) {
            out.error(NAME, name, "no such user");
            return;
        }
        match kind {
            PasswordKind::Hash if !is_password_hash(password) => {
                out.error(NAME, name, "type hash, but the password is not a hash");
                return;
            }
            PasswordKind::Hash => {
                if inp.accounts.hash(name).map(unlocked) == Some(password) {
                    return;
                }
                out.actions.push(b.set_password(name, password, true));
            }
            PasswordKind::Text => out.actions.push(b.set_password(name, password, false)),
            PasswordKind::Random => {
                let p = random_password();
                out.actions.push(b.set_password(name, &p, false));
                out.random_passwords.push((name.to_string(), Secret(p)));
            }
        }
        changed.push(name.to_string());
    };
    if let Some(p) = &inp.config.password {
        match managed.iter().find(|u| u.default) {
            Some(d) => {
                let kind = if p == "RANDOM" {
                    PasswordKind::Random
                } else if is_password_hash(p) {
                    PasswordKind::Hash
                } else {
                    PasswordKind::Text
                };
                let name = d.name.clone();
                set(&name, p, kind, out);
            }
            None => out
                .warnings
                .push("password: there is no default user to set it for".into()),
        }
    }
    let Some(chpasswd) = &inp.config.chpasswd else {
        return;
    };
    for u in &chpasswd.users {
        set(&u.name, &u.password, u.kind, out);
    }
    if chpasswd.expire.unwrap_or(true) {
        for name in changed {
            out.actions.push(b.expire_password(&name));
        }
    }
}

// Reading the module's part of a cloud-config document, with cloud-init's leniency
// (`cloudconfig::lenient`).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordKind {
    Hash,
    Text,
    Random,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChpasswdUser {
    pub name: String,
    pub password: String,
    pub kind: PasswordKind,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chpasswd {
    pub expire: Option<bool>,
    pub users: Vec<ChpasswdUser>,
}

pub(crate) fn read_chpasswd(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<Chpasswd> {
    let Some(map) = v.as_mapping() else {
        r.error(path, format!("expected a map, got {}", describe(v)));
        return None;
    };
    let mut c = Chpasswd::default();
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        match key.as_str() {
            "expire" => c.expire = r.bool(&p, val),
            "users" => {
                let Some(items) = val.as_sequence() else {
                    r.error(&p, format!("expected a list, got {}", describe(val)));
                    continue;
                };
                for (i, item) in items.iter().enumerate() {
                    let ip = format!("{p}[{i}]");
                    let name = item.get("name").and_then(Value::as_str);
                    let kind = match item.get("type").and_then(Value::as_str).unwrap_or("hash") {
                        "hash" => Some(PasswordKind::Hash),
                        "text" => Some(PasswordKind::Text),
                        "RANDOM" => Some(PasswordKind::Random),
                        other => {
                            r.error(
                                &child(&ip, "type"),
                                format!("expected hash, text or RANDOM, got {other:?}"),
                            );
                            None
                        }
                    };
                    let password = item.get("password").and_then(Value::as_str);
                    match (name, kind, password) {
                        (Some(n), Some(PasswordKind::Random), _) => c.users.push(ChpasswdUser {
                            name: n.into(),
                            password: String::new(),
                            kind: PasswordKind::Random,
                        }),
                        (Some(n), Some(k), Some(pw)) => {
                            // cloud-init: a "password" of RANDOM means a random one.
                            let k = if pw == "RANDOM" {
                                PasswordKind::Random
                            } else {
                                k
                            };
                            c.users.push(ChpasswdUser {
                                name: n.into(),
                                password: pw.into(),
                                kind: k,
                            })
                        }
                        (None, _, _) => r.error(&ip, "needs a name"),
                        (_, None, _) => {}
                        (_, _, None) => r.error(&ip, "needs a password (or type: RANDOM)"),
                    }
                }
            }
            // The old form: "user:password" lines.
            "list" => {
                r.warn(&p, "chpasswd.list is deprecated; use chpasswd.users");
                let lines: Vec<String> = match val {
                    Value::String(s) => s.lines().map(str::to_string).collect(),
                    _ => r.string_or_list(&p, val),
                };
                for (i, line) in lines
                    .iter()
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty())
                    .enumerate()
                {
                    match line.split_once(':') {
                        Some((name, pw)) => {
                            let kind = if pw == "R" || pw == "RANDOM" {
                                PasswordKind::Random
                            } else if crate::cloudconfig::is_password_hash(pw) {
                                PasswordKind::Hash
                            } else {
                                PasswordKind::Text
                            };
                            c.users.push(ChpasswdUser {
                                name: name.into(),
                                password: pw.into(),
                                kind,
                            });
                        }
                        None => r.error(&format!("{p}[{i}]"), "expected user:password"),
                    }
                }
            }
            _ => r.warn(&p, "unknown key (ignored)"),
        }
    }
    Some(c)
}

/// The module in the registry ([`super::MODULES`]).
pub struct SetPasswords;

impl super::Module for SetPasswords {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["chpasswd", "password", "ssh_pwauth"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let managed = run.managed(inp);
        plan(inp, &managed, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_marks_are_not_part_of_the_hash() {
        assert_eq!(unlocked("!$6$a$b"), "$6$a$b");
        assert_eq!(unlocked("*LOCKED*$2b$x"), "$2b$x");
        assert_eq!(unlocked("*$2b$x"), "$2b$x");
        assert_eq!(unlocked("*"), "*");
    }

    #[test]
    fn random_passwords_are_fresh_and_plain() {
        let a = random_password();
        assert_eq!(a.len(), 20);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_password());
    }
}
