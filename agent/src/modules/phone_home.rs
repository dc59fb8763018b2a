//! `phone_home` (cloud-init's cc_phone_home): one form POST of the instance's id, names and
//! host public keys to a URL of the user's, once per instance, at the end of the final stage
//! (before final_message and power_state, as in cloud-init's module order). `$INSTANCE_ID` (or
//! `${INSTANCE_ID}`) in the URL is the instance id. The host keys are read when the POST is
//! made, not when it is planned: ssh_host_keys may generate them earlier in the same run.
//! The URL is a third party's, never MAAS's: nothing is signed, and a redirect to another
//! origin is not followed.

use super::{Frequency, Inputs, Planned, Stage};
use crate::cloudconfig::lenient::{child, describe, entries, Reader};
use crate::plan::{Action, FormField, FormValue, PostUrl};
use wisp_datasources::post;
use yaml_serde::Value;

pub const NAME: &str = "phone_home";
pub const STAGE: Stage = Stage::Final;
pub const FREQUENCY: Frequency = Frequency::PerInstance;
/// cloud-init's `post: all` (its POST_LIST_ALL).
pub const ALL: &[&str] = &[
    "pub_key_rsa",
    "pub_key_ecdsa",
    "pub_key_ed25519",
    "instance_id",
    "hostname",
    "fqdn",
];
/// cloud-init's default `tries`.
pub const DEFAULT_TRIES: u32 = 10;
/// The most tries taken: the boot's end waits for them.
pub const MAX_TRIES: u32 = 30;
/// The most `post` items taken.
pub const MAX_POST: usize = 64;
/// What cloud-init posts for a value it does not have.
pub const UNAVAILABLE: &str = "N/A";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneHome {
    /// As written: `$INSTANCE_ID` is replaced when planned.
    pub url: String,
    /// The fields to post, in order.
    pub post: Vec<String>,
    pub tries: u32,
}

/// `url` with `$INSTANCE_ID` / `${INSTANCE_ID}` replaced. Another `$NAME` is an error, as in
/// cloud-init (its template renderer fails on a name it has no value for); a `$` followed by
/// no name is kept. The URL's user and password are left as they are: a `$` in a password is
/// not a variable, and is never repeated in an error.
pub fn substitute(url: &str, instance_id: &str) -> Result<String, String> {
    let (before, userinfo, after) = wisp_datasources::redact::split_userinfo(url);
    Ok(format!(
        "{}{userinfo}{}",
        substitute_text(before, instance_id)?,
        substitute_text(after, instance_id)?
    ))
}

fn substitute_text(text: &str, instance_id: &str) -> Result<String, String> {
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, used) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) if braced[..end].chars().all(name_char) && end > 0 => {
                    (&braced[..end], end + 2)
                }
                _ => ("", 0),
            },
            None => {
                let end = after.find(|c: char| !name_char(c)).unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        if used == 0 {
            out.push('$');
            rest = after;
        } else if name == "INSTANCE_ID" {
            out.push_str(instance_id);
            rest = &after[used..];
        } else {
            return Err(format!(
                "unknown variable ${name} in the URL (only $INSTANCE_ID or ${{INSTANCE_ID}})"
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The (fqdn, short name) posted, as cloud-init's `cloud.get_hostname()`: the datasource's
/// local-hostname; without one, the system's name as the OS keeps it (the root's hostname
/// file or rc.conf's `hostname`, as the hostname module left it). None: no name anywhere
/// (posted as `N/A`).
fn posted_names(
    inp: &Inputs<'_>,
    local_hostname: Option<&str>,
    out: &Planned,
) -> Option<(String, String)> {
    use crate::platform::HostnameStore;
    let name = match local_hostname.map(str::trim).filter(|h| !h.is_empty()) {
        Some(h) => h.to_string(),
        None => {
            let (file, in_rc_conf) = match inp.backend.hostname_store() {
                HostnameStore::RcConf(f) => (f, true),
                HostnameStore::File(f) => (f, false),
            };
            let text = out.try_current(inp.root, file, None).ok().flatten()?;
            let text = String::from_utf8_lossy(&text);
            let found = if in_rc_conf {
                // The last assignment wins, as when rc.conf is sourced.
                text.lines()
                    .rev()
                    .find_map(|l| l.trim().strip_prefix("hostname="))
                    .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
            } else {
                text.lines().next().map(|l| l.trim().to_string())
            };
            found.filter(|h| !h.is_empty() && !h.chars().any(char::is_control))?
        }
    };
    let short = name.split('.').next().unwrap_or(&name).to_string();
    Some((name, short))
}

/// Plans the POST: the URL with the instance id, and each field's value or the file it is read
/// from.
pub fn plan(inp: &Inputs<'_>, run: &super::PlanRun<'_>, out: &mut Planned) {
    let Some(ph) = &inp.config.phone_home else {
        return;
    };
    let id = run.extras.instance_id;
    let url = match substitute(&ph.url, id).and_then(|u| post::check_url(&u).map(|()| u)) {
        Ok(u) => u,
        Err(e) => {
            out.error(NAME, "url", e);
            return;
        }
    };
    let names = posted_names(inp, run.extras.local_hostname, out);
    let text = |v: Option<&str>| FormValue::Text(v.unwrap_or(UNAVAILABLE).to_string());
    let fields = ph
        .post
        .iter()
        .map(|name| {
            let value = match name.as_str() {
                "instance_id" => text(Some(id)),
                "hostname" => text(names.as_ref().map(|n| n.1.as_str())),
                "fqdn" => text(names.as_ref().map(|n| n.0.as_str())),
                key => match key.strip_prefix("pub_key_") {
                    Some(t) if super::ssh_host_keys::KEY_TYPES.contains(&t) => {
                        FormValue::File(super::ssh_host_keys::public_key_path(t))
                    }
                    _ => text(None),
                },
            };
            FormField {
                name: name.clone(),
                value,
            }
        })
        .collect();
    out.actions.push(Action::HttpPost {
        module: NAME,
        item: post::redact(&url),
        url: PostUrl(url),
        fields,
        tries: ph.tries,
    });
}

// Reading the module's part of a cloud-config document, with cloud-init's leniency.

/// `tries`: cloud-init takes `int(tries)` (a number's whole part: `2.7` is 2; a text must be
/// a whole number) and falls back to 10 (with a warning) when that fails; fewer than one is
/// one try. Bounded by [`MAX_TRIES`].
fn read_tries(r: &mut Reader<'_>, path: &str, v: &Value) -> u32 {
    let n = match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.trunc() as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n > i64::from(MAX_TRIES) => {
            r.warn(path, format!("{n} tries: at most {MAX_TRIES} are made"));
            MAX_TRIES
        }
        Some(n) => n.max(1) as u32,
        None => {
            r.warn(
                path,
                format!(
                    "expected a whole number, got {}: {DEFAULT_TRIES} tries",
                    describe(v)
                ),
            );
            DEFAULT_TRIES
        }
    }
}

pub(crate) fn read_phone_home(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<PhoneHome> {
    let map = match v {
        Value::Null => return None,
        Value::Mapping(m) => m,
        other => {
            r.error(path, format!("expected a map, got {}", describe(other)));
            return None;
        }
    };
    let mut url = None;
    let mut post = Some(ALL.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let mut tries = DEFAULT_TRIES;
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        match key.as_str() {
            "url" => {
                url = r.text(&p, val);
                if let Some(u) = &url {
                    // Checked as written (the instance id goes in when planned): the reason
                    // only, never the URL, which may carry a password.
                    let probe = u
                        .replace("${INSTANCE_ID}", "i")
                        .replace("$INSTANCE_ID", "i");
                    if let Err(e) = post::check_url(&probe) {
                        r.error(&p, format!("{e}; nothing is posted"));
                        return None;
                    }
                }
            }
            "post" => post = read_post(r, &p, val),
            "tries" => tries = read_tries(r, &p, val),
            _ => r.warn(&p, "unknown key (ignored)"),
        }
    }
    let Some(url) = url else {
        r.error(
            &child(path, "url"),
            "required: the http(s) URL to post to; nothing is posted",
        );
        return None;
    };
    Some(PhoneHome {
        url,
        post: post?,
        tries,
    })
}

/// `post`: `all`, or a list of field names. A name cloud-init does not know is posted as
/// `N/A`, as cloud-init does, with a warning.
fn read_post(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) if s == "all" => Some(ALL.iter().map(|s| s.to_string()).collect()),
        Value::Sequence(items) if items.len() <= MAX_POST => {
            let mut names = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                let Some(name) = r.text(&p, item) else {
                    continue;
                };
                if name.chars().any(char::is_control) || name.len() > 64 {
                    r.error(
                        &p,
                        "a field name of at most 64 bytes, no control characters",
                    );
                    continue;
                }
                if name == "pub_key_dsa" {
                    r.warn(&p, "no DSA host key on wisp's systems: posted as N/A");
                } else if !ALL.contains(&name.as_str()) {
                    r.warn(
                        &p,
                        format!(
                            "unknown field {name:?}: posted as N/A (known: all, {})",
                            ALL.join(", ")
                        ),
                    );
                }
                // cloud-init collects the fields in a dict: a name given twice is posted once,
                // where it came first.
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            Some(names)
        }
        Value::Sequence(_) => {
            r.error(
                path,
                format!("at most {MAX_POST} fields; nothing is posted"),
            );
            None
        }
        other => {
            r.error(
                path,
                format!(
                    "expected all or a list of field names, got {}; nothing is posted",
                    describe(other)
                ),
            );
            None
        }
    }
}

/// The module in the registry ([`super::MODULES`]).
pub struct PhoneHomeModule;

impl super::Module for PhoneHomeModule {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["phone_home"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        plan(inp, run, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Option<PhoneHome>, Vec<String>) {
        crate::cloudconfig::lenient::read_for_test(text, "phone_home", read_phone_home)
    }

    #[test]
    fn defaults_as_cloud_init() {
        let (ph, problems) = read("{url: 'http://h/$INSTANCE_ID/'}");
        let ph = ph.unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(ph.post, ALL);
        assert_eq!(ph.tries, DEFAULT_TRIES);
        let (ph, _) = read("{url: 'http://h/', post: [instance_id, fqdn], tries: 0}");
        let ph = ph.unwrap();
        assert_eq!(ph.post, ["instance_id", "fqdn"]);
        assert_eq!(ph.tries, 1);
        let (ph, problems) = read("{url: 'http://h/', tries: many}");
        assert_eq!(ph.unwrap().tries, DEFAULT_TRIES);
        assert!(
            problems[0].starts_with("phone_home.tries: "),
            "{problems:?}"
        );
        // int(2.7) is 2 in cloud-init; int("2.7") fails (the default).
        let (ph, problems) = read("{url: 'http://h/', tries: 2.7}");
        assert_eq!(ph.unwrap().tries, 2);
        assert!(problems.is_empty(), "{problems:?}");
        let (ph, _) = read("{url: 'http://h/', tries: '2.7'}");
        assert_eq!(ph.unwrap().tries, DEFAULT_TRIES);
        let (ph, problems) = read("{url: 'http://h/', tries: 1000}");
        assert_eq!(ph.unwrap().tries, MAX_TRIES);
        assert_eq!(problems.len(), 1);
        let (ph, problems) = read("{url: 'http://h/', post: [hostname, pub_key_dsa, password]}");
        assert_eq!(ph.unwrap().post, ["hostname", "pub_key_dsa", "password"]);
        assert!(
            problems[0].starts_with("phone_home.post[1]: "),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("\"password\": posted as N/A"),
            "{problems:?}"
        );
    }

    #[test]
    fn bad_urls_and_shapes_are_named_and_nothing_is_posted() {
        for (text, path, what) in [
            (
                "{url: 'file:///etc/passwd'}",
                "phone_home.url",
                "scheme file",
            ),
            (
                "{url: 'gopher://h/'}",
                "phone_home.url",
                "only http and https",
            ),
            ("{url: \"http://h/\\nX: y\"}", "phone_home.url", "control"),
            ("{url: '-o /tmp/x'}", "phone_home.url", "blanks"),
            ("{url: 5}", "phone_home.url", "quote it"),
            ("{post: all}", "phone_home.url", "required"),
            (
                "{url: 'http://h/', post: hostname}",
                "phone_home.post",
                "\"hostname\"",
            ),
            ("[http://h/]", "phone_home", "a list"),
        ] {
            let (ph, problems) = read(text);
            assert_eq!(ph, None, "{text}");
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(&format!("{path}: ")) && p.contains(what)),
                "{text}: {problems:?}"
            );
        }
        // The password in a refused URL is not repeated.
        let (_, problems) = read("{url: 'ftp://u:hunter2@h/'}");
        assert!(
            !problems.iter().any(|p| p.contains("hunter2")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_instance_id_goes_into_the_url() {
        assert_eq!(
            substitute("http://h/$INSTANCE_ID/x?i=${INSTANCE_ID}", "i-9").unwrap(),
            "http://h/i-9/x?i=i-9"
        );
        assert_eq!(substitute("http://h/a$", "i").unwrap(), "http://h/a$");
        assert!(substitute("http://h/$INSTANCE/", "i")
            .unwrap_err()
            .contains("$INSTANCE "));
        assert!(substitute("http://h/$INSTANCE_ID.json", "i").is_err());
    }

    /// Review of issue 13 (1): the user part is not substituted, so a `$` in a password is
    /// kept as it is and never named in an error.
    #[test]
    fn the_user_part_of_the_url_is_left_alone() {
        assert_eq!(
            substitute("http://u:pa$SECRET@h/$INSTANCE_ID?a=b@c", "i-9").unwrap(),
            "http://u:pa$SECRET@h/i-9?a=b@c"
        );
        assert_eq!(
            substitute("https://u:x@y@h:8/${INSTANCE_ID}", "i").unwrap(),
            "https://u:x@y@h:8/i"
        );
        let e = substitute("http://u:$SECRET@h/$OTHER", "i").unwrap_err();
        assert!(!e.contains("SECRET") && e.contains("$OTHER"), "{e}");
        assert_eq!(
            substitute("http://h/$INSTANCE_ID", "i").unwrap(),
            "http://h/i"
        );
    }

    /// Review of issue 13 (11): a field given twice is posted once, where it came first (as
    /// cloud-init's dict of fields).
    #[test]
    fn a_field_given_twice_is_posted_once() {
        let (ph, problems) = read("{url: 'http://h/', post: [fqdn, instance_id, fqdn]}");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(ph.unwrap().post, ["fqdn", "instance_id"]);
    }
}
