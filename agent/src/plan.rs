//! Plans: what wisp will do, as data. Modules produce actions; `--dry-run` prints them (JSON or
//! text); [`crate::apply`] carries them out. Secrets in a plan are redacted when shown.

use std::fmt;

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A value that must not be shown: a password, a hash. `Debug` and `Serialize` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} bytes>", self.0.len())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("<redacted {} bytes>", self.0.len()))
    }
}

/// One variable of a tool's environment (a proxy for the package tools). A URL's credentials
/// (`http://user:pass@proxy:3128`) are redacted wherever it is shown, `Debug` included.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: &'static str,
    pub value: String,
}

impl EnvVar {
    /// `NAME=value` for people, with a URL's user and password redacted.
    pub fn shown(&self) -> String {
        format!("{}={}", self.name, redact_userinfo(&self.value))
    }
}

impl std::fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Serialize for EnvVar {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.shown())
    }
}

/// `scheme://user:pass@host…` → `scheme://<redacted>@host…`; anything else as it is (the one
/// redactor, [`wisp_datasources::redact`]).
pub fn redact_userinfo(url: &str) -> String {
    redact_urls(url)
}

pub use wisp_datasources::redact::redact_urls;

fn octal<S: Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{mode:04o}"))
}

/// A field of master.passwd(5) to set.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswdField {
    /// The password: a hash, or plain text to be hashed by the OS's tool.
    Password { secret: Secret, plain: bool },
    /// The password change time; 1 forces a change at the next login.
    Change(u64),
}

/// The URL of a POST, which may carry a password: `Debug` and `Serialize` show it redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PostUrl(pub String);

impl fmt::Debug for PostUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&wisp_datasources::post::redact(&self.0))
    }
}

impl Serialize for PostUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&wisp_datasources::post::redact(&self.0))
    }
}

/// Where a posted field's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FormValue {
    Text(String),
    /// The content of this file (a target path), read when posting; `N/A` when it cannot be.
    File(String),
}

/// One field of a form POST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FormField {
    pub name: String,
    pub value: FormValue,
}

/// One step. Paths are target paths (`/etc/group`); `--root` is applied when carrying out.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Run a tool with this argv (never through a shell), feeding `stdin` if any.
    Exec {
        module: &'static str,
        item: String,
        argv: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        stdin: Option<Secret>,
        /// Set in the tool's environment (over what wisp's own has).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        env: Vec<EnvVar>,
        /// Seconds the tool may take before its process group is killed (package tools).
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout: Option<u64>,
    },
    /// Install `names` with `argv` followed by names: as few runs as the argument space
    /// allows; when a run fails, the database is read again and only the names still missing
    /// are tried alone (until the tool fails the same way a few times in a row), so that one
    /// bad name does not keep the others out. At the end the database is read once more and
    /// a name still missing is failed even when the tool said it was fine. The failed names
    /// are reported with the tool's output tail.
    Install {
        module: &'static str,
        item: String,
        argv: Vec<String>,
        names: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        env: Vec<EnvVar>,
        /// Each name as the database lists it (`names[i]` is `wanted[i]`'s spec).
        #[serde(skip)]
        wanted: Vec<crate::modules::packages::Package>,
        /// Where the installed packages are read after the runs; none: they cannot be (said
        /// in the outcome).
        confirm: Option<crate::modules::packages::InstalledCheck>,
        /// Seconds each run may take before its process group is killed.
        timeout: u64,
        /// The tool's own error log (pkgin's), whose tail goes with a failure.
        #[serde(skip_serializing_if = "Option::is_none")]
        error_log: Option<String>,
    },
    /// Write a file atomically. `in_home`: inside a user's home, so no symlink is followed.
    Write {
        module: &'static str,
        item: String,
        path: String,
        #[serde(serialize_with = "octal")]
        mode: u32,
        owner: String,
        group: String,
        sha256: String,
        size: usize,
        in_home: bool,
        #[serde(skip)]
        content: Vec<u8>,
    },
    /// Create a directory (and set mode and owner even when it exists).
    Mkdir {
        module: &'static str,
        item: String,
        path: String,
        #[serde(serialize_with = "octal")]
        mode: u32,
        owner: String,
        group: String,
        in_home: bool,
    },
    /// Change one field of a user's line in `/etc/master.passwd` (NetBSD, OpenBSD), the way
    /// vipw(8) does: a copy as `/etc/ptmp`, installed by `db` (pwd_mkdb). A plain-text password
    /// is first hashed by `hasher`, which reads it on standard input.
    MasterPasswd {
        module: &'static str,
        user: String,
        field: PasswdField,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        hasher: Vec<String>,
        db: Vec<String>,
    },
    /// Make `path` a symbolic link to `target` (atomically: a new link renamed into place).
    Symlink {
        module: &'static str,
        item: String,
        path: String,
        target: String,
    },
    /// Write `data` into the existing device `path` (`/dev/urandom`), never creating it.
    FeedDevice {
        module: &'static str,
        item: String,
        path: String,
        size: usize,
        #[serde(skip)]
        data: Vec<u8>,
    },
    /// Bring the system down with `argv` (shutdown(8), which schedules it and returns), if
    /// `condition` — when there is one — exits 0 within `timeout` seconds. At boot it is held
    /// back until the final stage has reported to MAAS.
    PowerState {
        module: &'static str,
        item: String,
        argv: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        condition: Option<Vec<String>>,
        timeout: u64,
    },
    /// Remove a file (a link itself, never what it points to); a missing one is fine.
    Remove {
        module: &'static str,
        item: String,
        path: String,
    },
    /// POST `fields` form-urlencoded to `url` (phone_home), tried up to `tries` times with the
    /// HTTP client's retry policy. Never sent in a dry run.
    HttpPost {
        module: &'static str,
        item: String,
        url: PostUrl,
        fields: Vec<FormField>,
        tries: u32,
    },
    /// Print lines to the console (and the log): what people read at the machine's console,
    /// such as the host key fingerprints. Never a secret.
    Console {
        module: &'static str,
        item: String,
        lines: Vec<String>,
    },
}

/// `owner:group` for people; an empty group means the owner's login group, known only once
/// the account exists (at apply time).
fn ownership(owner: &str, group: &str) -> String {
    if group.is_empty() {
        format!("{owner}:<login group>")
    } else {
        format!("{owner}:{group}")
    }
}

impl Action {
    pub fn write(
        module: &'static str,
        item: impl Into<String>,
        path: impl Into<String>,
        content: Vec<u8>,
        mode: u32,
        owner: (&str, &str),
        in_home: bool,
    ) -> Action {
        let digest = Sha256::digest(&content);
        Action::Write {
            module,
            item: item.into(),
            path: path.into(),
            mode,
            owner: owner.0.to_string(),
            group: owner.1.to_string(),
            sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
            size: content.len(),
            in_home,
            content,
        }
    }

    pub fn exec(module: &'static str, item: impl Into<String>, argv: Vec<String>) -> Action {
        Action::Exec {
            module,
            item: item.into(),
            argv,
            stdin: None,
            env: Vec::new(),
            timeout: None,
        }
    }

    pub fn module(&self) -> &'static str {
        match self {
            Action::Exec { module, .. }
            | Action::Install { module, .. }
            | Action::Write { module, .. }
            | Action::Mkdir { module, .. }
            | Action::MasterPasswd { module, .. }
            | Action::Symlink { module, .. }
            | Action::PowerState { module, .. }
            | Action::FeedDevice { module, .. }
            | Action::Remove { module, .. }
            | Action::HttpPost { module, .. }
            | Action::Console { module, .. } => module,
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Action::FeedDevice { path, size, .. } => format!("feed {size} bytes to {path}"),
            Action::PowerState {
                argv,
                condition,
                timeout,
                ..
            } => match condition {
                Some(c) => format!(
                    "{} (if {} exits 0 within {timeout} s)",
                    words(argv),
                    words(c)
                ),
                None => words(argv),
            },
            Action::Install {
                argv, names, env, ..
            } => {
                let mut s = with_env(env, words(argv));
                for n in names.iter().take(SHOWN_NAMES) {
                    s.push(' ');
                    s.push_str(&words(std::slice::from_ref(n)));
                }
                if names.len() > SHOWN_NAMES {
                    s.push_str(&format!(" … ({} packages)", names.len()));
                }
                s
            }
            Action::Exec {
                argv, stdin, env, ..
            } => {
                let mut s = with_env(env, words(argv));
                if let Some(input) = stdin {
                    s.push_str(&format!("  < {input:?}"));
                }
                s
            }
            Action::Write {
                path,
                mode,
                owner,
                group,
                size,
                ..
            } => {
                format!(
                    "write {path} ({size} bytes, {mode:04o} {})",
                    ownership(owner, group)
                )
            }
            Action::Mkdir {
                path,
                mode,
                owner,
                group,
                ..
            } => {
                format!("mkdir {path} ({mode:04o} {})", ownership(owner, group))
            }
            Action::Symlink { path, target, .. } => format!("ln -sf {target} {path}"),
            Action::Remove { path, .. } => format!("rm -f {path}"),
            Action::HttpPost {
                url, fields, tries, ..
            } => format!(
                "POST {} to {url:?} (up to {tries} tries)",
                fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Action::Console { item, lines, .. } => {
                format!("print {item} to the console ({} lines)", lines.len())
            }
            Action::MasterPasswd {
                user,
                field,
                hasher,
                db,
                ..
            } => {
                let what = match field {
                    PasswdField::Password { plain: true, .. } => {
                        format!("password of {user} (hashed by {})", hasher.join(" "))
                    }
                    PasswdField::Password { .. } => format!("password hash of {user}"),
                    PasswdField::Change(v) => format!("password change time of {user} to {v}"),
                };
                format!("set {what} in /etc/master.passwd, then {}", db.join(" "))
            }
        }
    }
}

/// How many package names a plan line shows (the JSON plan has them all).
const SHOWN_NAMES: usize = 20;

/// `NAME=value … command`, as a shell would show it, credentials redacted.
fn with_env(env: &[EnvVar], command: String) -> String {
    let mut parts: Vec<String> = env.iter().map(EnvVar::shown).collect();
    parts.push(command);
    parts.join(" ")
}

/// An argv for reading: words quoted where a shell would split or expand them.
fn words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty()
                || a.contains(|c: char| c.is_whitespace() || "'\"\\$`*?;&|<>()".contains(c))
            {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_everywhere() {
        let a = Action::Exec {
            module: "set_passwords",
            item: "alice".into(),
            argv: vec!["chpasswd".into()],
            stdin: Some(Secret("alice:hunter2".into())),
            env: Vec::new(),
            timeout: None,
        };
        let json = serde_json::to_string(&a).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
        assert!(json.contains("<redacted 13 bytes>"));
        assert!(!format!("{a:?}").contains("hunter2"));
        assert!(!a.describe().contains("hunter2"));
    }

    #[test]
    fn writes_show_digest_and_octal_mode_not_content() {
        let a = Action::write(
            "m",
            "i",
            "/etc/x",
            b"secret".to_vec(),
            0o440,
            ("root", "wheel"),
            false,
        );
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["mode"], "0440");
        assert_eq!(v["size"], 6);
        assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
        assert!(!v.to_string().contains("secret\""));
        assert_eq!(a.describe(), "write /etc/x (6 bytes, 0440 root:wheel)");
    }

    #[test]
    fn proxy_credentials_are_redacted_in_plans() {
        let env = vec![EnvVar {
            name: "http_proxy",
            value: "http://ops:s3cret@proxy.example:3128/".into(),
        }];
        let a = Action::Install {
            module: "package_update_upgrade_install",
            item: "packages".into(),
            argv: vec!["pkgin".into(), "-y".into(), "install".into()],
            names: (0..25).map(|i| format!("p{i}")).collect(),
            env: env.clone(),
            wanted: Vec::new(),
            confirm: None,
            timeout: 60,
            error_log: None,
        };
        let shown = a.describe();
        assert!(
            !shown.contains("s3cret") && !shown.contains("ops:"),
            "{shown}"
        );
        assert!(
            shown.starts_with(
                "http_proxy=http://<redacted>@proxy.example:3128/ pkgin -y install p0"
            ),
            "{shown}"
        );
        assert!(shown.ends_with("p19 … (25 packages)"), "{shown}");
        let json = serde_json::to_string(&a).unwrap();
        assert!(!json.contains("s3cret"), "{json}");
        assert!(json.contains("p24"), "{json}");
        assert_eq!(redact_userinfo("http://proxy:3128"), "http://proxy:3128");
        // Up to the last '@': a raw password may hold '/', '?', '#' or '@'.
        assert_eq!(redact_userinfo("http://a@b/c@d"), "http://<redacted>@d");
        for raw in [
            "http://u:pa/ss@proxy:3128/",
            "http://u:pa?ss@proxy:3128/",
            "http://u:pa#ss@proxy:3128/",
            "http://u:p@ss@proxy:3128/",
        ] {
            assert_eq!(
                redact_userinfo(raw),
                "http://<redacted>@proxy:3128/",
                "{raw}"
            );
        }
        // In a tool's output, each URL up to whitespace or a quote.
        assert_eq!(
            redact_urls("fetch 'http://u:p/w@px:1/a.tgz' via https://x:y@q/ failed"),
            "fetch 'http://<redacted>@px:1/a.tgz' via https://<redacted>@q/ failed"
        );
        // Debug shows no value's credentials either.
        let debug = format!("{:?} {a:?}", env[0]);
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn describe_quotes_arguments_for_reading() {
        let a = Action::exec(
            "m",
            "i",
            vec!["pw".into(), "useradd".into(), "a b".into(), "it's".into()],
        );
        assert_eq!(a.describe(), "pw useradd 'a b' 'it'\\''s'");
    }
}
