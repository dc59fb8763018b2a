//! `locale` (cloud-init's cc_locale) where the OS has a system-wide setting: FreeBSD's
//! /etc/login.conf, whose `default` class gets `lang=` (and `charset=` from the locale's
//! codeset; `C` and `POSIX` have none, and a `charset=` there is taken away), edited in place
//! with the rest of the file kept byte for byte, then `cap_mkdb` (on a retry too).
//! NetBSD and OpenBSD set no language for every login in login.conf (their login.conf(5) has
//! no `lang` capability): a warning there. Once per instance, and only when the document sets
//! `locale` (cloud-init would otherwise apply the distribution's default).

use super::{Frequency, Inputs, Planned, Stage};
use crate::cloudconfig::lenient::{describe, yaml11_bool, Reader};
use crate::plan::Action;
use yaml_serde::Value;

pub const NAME: &str = "locale";
pub const STAGE: Stage = Stage::Network;
pub const FREQUENCY: Frequency = Frequency::PerInstance;
const LOGIN_CONF: &str = "/etc/login.conf";

/// A locale name: `C`, `POSIX`, `en_US.UTF-8`, `de_DE.ISO8859-15@euro`; nothing that could
/// end a login.conf capability (`:`) or line.
pub fn check_locale(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a locale name such as en_US.UTF-8, C or POSIX",
            name.escape_default().to_string()
        ))
    }
}

/// The codeset of a locale (`UTF-8` of `en_US.UTF-8`), if it names one.
fn codeset(name: &str) -> Option<&str> {
    let after = name.split_once('.')?.1;
    Some(after.split('@').next().unwrap_or(after)).filter(|c| !c.is_empty())
}

/// `conf` with capability `cap` of the `default` class set to `value`: replaced where the
/// class has it, else added as a line of its own after the class's first line. `None` when
/// there is no `default` class.
pub fn set_default_capability(conf: &str, cap: &str, value: &str) -> Option<String> {
    let lines: Vec<&str> = conf.split_inclusive('\n').collect();
    let start = default_class_start(&lines)?;
    let mut end = start;
    while end + 1 < lines.len() && lines[end].trim_end_matches(['\n', '\r']).ends_with('\\') {
        end += 1;
    }
    let prefix = format!("{cap}=");
    let wanted = format!("{cap}={value}");
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    for line in out.iter_mut().take(end + 1).skip(start) {
        let fields: Vec<&str> = line.split(':').collect();
        if let Some(i) = fields
            .iter()
            .skip(1)
            .position(|f| f.starts_with(&prefix))
            .map(|i| i + 1)
        {
            let mut fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
            fields[i] = wanted;
            *line = fields.join(":");
            return Some(out.concat());
        }
    }
    if start == end {
        // One line, `default:cap=x:...:`: the capability goes after the name.
        let line = &out[start];
        let (names, rest) = line.split_once(':')?;
        out[start] = format!("{names}:{wanted}:{rest}");
    } else {
        out.insert(start + 1, format!("\t:{wanted}:\\\n"));
    }
    Some(out.concat())
}

/// `conf` without capability `cap` in the `default` class (unchanged when it has none, or
/// there is no such class).
pub fn remove_default_capability(conf: &str, cap: &str) -> String {
    let lines: Vec<&str> = conf.split_inclusive('\n').collect();
    let Some(start) = default_class_start(&lines) else {
        return conf.to_string();
    };
    let mut end = start;
    while end + 1 < lines.len() && lines[end].trim_end_matches(['\n', '\r']).ends_with('\\') {
        end += 1;
    }
    let prefix = format!("{cap}=");
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        if n < start || n > end {
            out.push(line.to_string());
            continue;
        }
        let fields: Vec<&str> = line.split(':').collect();
        if !fields.iter().skip(1).any(|f| f.starts_with(&prefix)) {
            out.push(line.to_string());
            continue;
        }
        let kept: Vec<&str> = fields
            .iter()
            .enumerate()
            .filter(|(i, f)| *i == 0 || !f.starts_with(&prefix))
            .map(|(_, f)| *f)
            .collect();
        let joined = kept.join(":");
        // A continuation line that held only this capability (`\t:cap=x:\`) goes.
        if n != start && joined.trim_start().trim_start_matches(':').trim() == "\\" {
            continue;
        }
        out.push(joined);
    }
    out.concat()
}

fn default_class_start(lines: &[&str]) -> Option<usize> {
    lines.iter().position(|l| {
        !l.starts_with(|c: char| c.is_whitespace() || c == '#')
            && l.split(':')
                .next()
                .is_some_and(|names| names.split('|').any(|n| n.trim() == "default"))
    })
}

/// Plans the module; on a `retry` the database is rebuilt even when login.conf is right
/// already (the run that wrote it may have stopped before cap_mkdb).
pub fn plan(inp: &Inputs<'_>, retry: bool, out: &mut Planned) {
    let Some(locale) = &inp.config.locale else {
        return;
    };
    if let Err(e) = check_locale(locale) {
        out.error(NAME, "locale", e);
        return;
    }
    let facts = inp.backend.facts();
    if !facts.login_conf_locale {
        out.warnings.push(format!(
            "locale: not applicable on {}: the system has no system-wide locale setting",
            facts.name
        ));
        return;
    }
    // login.conf is edited: one that cannot be read safely is left alone.
    let conf = match out.try_current_text(inp.root, LOGIN_CONF, None) {
        Ok(c) => c,
        Err(e) => {
            out.error(NAME, LOGIN_CONF, format!("not changed: {e}"));
            return;
        }
    };
    let system_locale = locale == "C" || locale == "POSIX";
    if !system_locale
        && crate::rootfs::dir_exists(inp.root, &format!("/usr/share/locale/{locale}"), None)
            != Ok(true)
    {
        out.warnings.push(format!(
            "locale: /usr/share/locale/{locale} does not exist: the system may not know {locale:?}"
        ));
    }
    let mut new = conf.clone();
    let mut caps = vec![("lang", locale.as_str())];
    match codeset(locale) {
        Some(cs) => caps.push(("charset", cs)),
        // A locale without a codeset has no charset (cloud-init's FreeBSD sets only lang).
        None => new = remove_default_capability(&new, "charset"),
    }
    for (cap, value) in caps {
        match set_default_capability(&new, cap, value) {
            Some(n) => new = n,
            None => {
                out.error(
                    NAME,
                    LOGIN_CONF,
                    "no `default` class in /etc/login.conf: the locale is not set",
                );
                return;
            }
        }
    }
    if new == conf {
        if retry {
            out.actions.push(Action::exec(
                NAME,
                locale.as_str(),
                inp.backend.login_conf_db(),
            ));
        }
        return;
    }
    out.actions.push(Action::write(
        NAME,
        locale.as_str(),
        LOGIN_CONF,
        new.into_bytes(),
        0o644,
        ("root", inp.backend.wheel()),
        false,
    ));
    out.actions.push(Action::exec(
        NAME,
        locale.as_str(),
        inp.backend.login_conf_db(),
    ));
}

/// `locale`: a name, or false (leave it alone). Returns the name to set.
pub(crate) fn read_locale(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        // cloud-init's util.is_false: `false`, `no`, `off` (quoted or not) skip the module.
        v if yaml11_bool(v) == Some(false) => None,
        Value::String(s) => Some(s.clone()),
        other => {
            r.error(
                path,
                format!("expected a locale name or false, got {}", describe(other)),
            );
            None
        }
    }
}

/// The module in the registry ([`super::MODULES`]).
pub struct Locale;

impl super::Module for Locale {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["locale", "locale_configfile"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        plan(inp, run.extras.is_retry(NAME), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{argvs, plan_in, written};
    use crate::platform::Platform;

    const LOGIN_CONF_TEXT: &str = "# login.conf\n\
default:\\\n\
\t:passwd_format=sha512:\\\n\
\t:path=/sbin /bin /usr/sbin /usr/bin ~/bin:\\\n\
\t:umask=022:\n\
\n\
russian|Russian Users Accounts:\\\n\
\t:charset=UTF-8:\\\n\
\t:lang=ru_RU.UTF-8:\\\n\
\t:tc=default:\n";

    fn first(inp: &Inputs<'_>, out: &mut Planned) {
        plan(inp, false, out)
    }

    fn root_with(conf: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(t.path().join("etc/login.conf"), conf).unwrap();
        t
    }

    #[test]
    fn freebsd_sets_the_default_class_and_rebuilds_the_database_once() {
        let t = root_with(LOGIN_CONF_TEXT);
        let p = plan_in(Platform::Freebsd, t.path(), "locale: en_GB.UTF-8\n", first);
        let want = LOGIN_CONF_TEXT.replace(
            "default:\\\n",
            "default:\\\n\t:charset=UTF-8:\\\n\t:lang=en_GB.UTF-8:\\\n",
        );
        assert_eq!(written(&p, LOGIN_CONF).unwrap(), want);
        assert_eq!(argvs(&p), vec![vec!["cap_mkdb", "/etc/login.conf"]]);
        // A rerun changes nothing; another locale replaces the values in place.
        let again = plan_in(Platform::Freebsd, t.path(), "locale: en_GB.UTF-8\n", first);
        assert!(again.actions.is_empty(), "{:?}", again.actions);
        let p = plan_in(Platform::Freebsd, t.path(), "locale: C\n", first);
        assert_eq!(
            written(&p, LOGIN_CONF).unwrap(),
            want.replace(":lang=en_GB.UTF-8:", ":lang=C:")
                .replace("\t:charset=UTF-8:\\\n\t:lang=C", "\t:lang=C")
        );
        // The other classes are untouched.
        assert!(written(&p, LOGIN_CONF)
            .unwrap()
            .contains("\t:lang=ru_RU.UTF-8:\\\n"));
    }

    #[test]
    fn a_one_line_class_and_a_missing_one() {
        assert_eq!(
            set_default_capability("x:a=1:\ndefault|Default:umask=022:\n", "lang", "C").unwrap(),
            "x:a=1:\ndefault|Default:lang=C:umask=022:\n"
        );
        assert_eq!(
            set_default_capability("other:\\\n\t:tc=default:\n", "lang", "C"),
            None
        );
        let t = root_with("other:\\\n\t:lang=C:\n");
        let p = plan_in(Platform::Freebsd, t.path(), "locale: C.UTF-8\n", first);
        assert!(p.actions.is_empty());
        assert!(
            p.errors[0].reason.contains("no `default` class"),
            "{:?}",
            p.errors
        );
    }

    #[test]
    fn hostile_names_are_refused_and_other_systems_warn() {
        for bad in ["en_US:lang=x", "en_US.UTF-8\n\t:tc=x", "-C", "", "a b", "ü"] {
            let t = root_with(LOGIN_CONF_TEXT);
            let doc = format!("locale: {:?}\n", bad);
            let p = plan_in(Platform::Freebsd, t.path(), &doc, first);
            assert!(p.actions.is_empty(), "{bad:?}");
            assert_eq!(p.errors.len(), 1, "{bad:?}");
            assert!(p.errors[0].reason.contains("not a locale name"));
        }
        for os in [Platform::Netbsd, Platform::Openbsd] {
            let t = root_with(LOGIN_CONF_TEXT);
            let p = plan_in(os, t.path(), "locale: en_US.UTF-8\n", first);
            assert!(p.actions.is_empty());
            assert!(
                p.warnings[0].contains(&format!("not applicable on {}", os.name())),
                "{:?}",
                p.warnings
            );
        }
        // `false` leaves it alone, as in cloud-init.
        let t = root_with(LOGIN_CONF_TEXT);
        let p = plan_in(Platform::Freebsd, t.path(), "locale: false\n", first);
        assert!(p.actions.is_empty() && p.errors.is_empty());
    }

    #[test]
    fn a_retry_rebuilds_the_database_though_login_conf_is_right_already() {
        let t = root_with(LOGIN_CONF_TEXT);
        let doc = "locale: en_GB.UTF-8\n";
        assert_eq!(
            argvs(&plan_in(Platform::Freebsd, t.path(), doc, first)).len(),
            1
        );
        // cap_mkdb failed or never ran: a plain rerun sees login.conf right, a retry rebuilds.
        assert!(plan_in(Platform::Freebsd, t.path(), doc, first)
            .actions
            .is_empty());
        let retry = plan_in(Platform::Freebsd, t.path(), doc, |i, o| plan(i, true, o));
        assert_eq!(argvs(&retry), vec![vec!["cap_mkdb", "/etc/login.conf"]]);
        assert_eq!(retry.actions.len(), 1);
    }

    #[test]
    fn c_and_posix_drop_the_charset_and_unknown_locales_warn() {
        let with_charset =
            "default:\\\n\t:charset=UTF-8:\\\n\t:lang=en_US.UTF-8:\\\n\t:umask=022:\n";
        for name in ["C", "POSIX"] {
            let t = root_with(with_charset);
            let p = plan_in(
                Platform::Freebsd,
                t.path(),
                &format!("locale: {name}\n"),
                first,
            );
            assert_eq!(
                written(&p, LOGIN_CONF).unwrap(),
                format!("default:\\\n\t:lang={name}:\\\n\t:umask=022:\n")
            );
            assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        }
        assert_eq!(
            remove_default_capability("default:charset=x:lang=C:\n", "charset"),
            "default:lang=C:\n"
        );
        // A locale the system does not have: set all the same (cloud-init does), with a warning.
        let t = root_with(LOGIN_CONF_TEXT);
        let p = plan_in(Platform::Freebsd, t.path(), "locale: xx_YY.UTF-8\n", first);
        assert!(written(&p, LOGIN_CONF).is_some());
        assert!(
            p.warnings[0].contains("/usr/share/locale/xx_YY.UTF-8 does not exist"),
            "{:?}",
            p.warnings
        );
        std::fs::create_dir_all(t.path().join("usr/share/locale/de_DE.UTF-8")).unwrap();
        let p = plan_in(Platform::Freebsd, t.path(), "locale: de_DE.UTF-8\n", first);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn cap_mkdb_names_the_database_after_the_file_under_a_root() {
        let backend = Platform::Freebsd.backend(Some("/mnt/img".into()));
        assert_eq!(
            backend.login_conf_db(),
            vec![
                "cap_mkdb".to_string(),
                "/mnt/img/etc/login.conf".to_string()
            ]
        );
    }
}
