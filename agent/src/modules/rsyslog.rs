//! `rsyslog` (cloud-init's cc_rsyslog) with the system's own syslogd: `remotes` become
//! forwarding lines in its syntax (syslog.conf(5) of each BSD), `configs` lines are taken when
//! they are plain `selector<TAB>action` lines it understands. The lines go in a file of wisp's
//! own where the syslogd reads a directory (FreeBSD's `include /etc/syslog.d`), else in a marked
//! block of /etc/syslog.conf that each run replaces; `rsyslog: {}` takes the block (or the
//! file) away. A running syslogd is reloaded when they changed. Once per instance.
//!
//! rsyslog-only syntax (`$` directives, RainerScript) is refused with a named error, as is TCP
//! forwarding (`@@`) where the syslogd forwards over UDP only (FreeBSD, NetBSD) and a port on
//! NetBSD, whose `@host` takes none. Keys naming rsyslog's own files, packages or reload command
//! are warnings: wisp writes the native syslogd's file and reloads it itself.
//!
//! wisp's lines start with the tags that end a program or host block (`!*`, `+*`), and lines
//! that would start one, or read as wisp's markers, are refused: the block stays wisp's and
//! scopes nothing else. A BEGIN marker with no END is an error and the file is left alone. On a
//! retry a running syslogd is reloaded even when the file is right already.

use super::{Frequency, Inputs, Planned, Stage};
use crate::cloudconfig::lenient::{child, describe, entries, Reader};
use crate::plan::Action;
use crate::platform::SyslogFacts;
use serde::Serialize;
use yaml_serde::Value;

pub const NAME: &str = "rsyslog";
pub const STAGE: Stage = Stage::Network;
pub const FREQUENCY: Frequency = Frequency::PerInstance;
/// The lines that delimit wisp's block in syslog.conf.
pub const BEGIN: &str = "# BEGIN wisp rsyslog (cloud-config): replaced by wisp on each run";
pub const END: &str = "# END wisp rsyslog";
/// The most `configs` text taken: a syslog.conf is a few kilobytes.
const MAX_CONFIG: usize = 64 * 1024;

/// One `configs` entry: its text, and where it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigEntry {
    pub path: String,
    pub content: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rsyslog {
    /// `(name, "[selector] [@@|@]host[:port]")`, in the document's order.
    pub remotes: Vec<(String, String)>,
    pub configs: Vec<ConfigEntry>,
}

/// A forwarding destination as cloud-init's `parse_remotes_line` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub selector: String,
    pub tcp: bool,
    pub host: String,
    pub port: Option<u16>,
}

/// Reads `[selector] [@@|@]host[:port] [# comment]`, with cloud-init's forms (`[v6addr]:port`)
/// and refusing what would not be one line of syslog.conf.
pub fn parse_remote(line: &str) -> Result<Remote, String> {
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err("control characters or a newline".into());
    }
    let data = line.split('#').next().unwrap_or_default();
    let words: Vec<&str> = data.split_whitespace().collect();
    let (selector, target) = match words.as_slice() {
        [t] => ("*.*", *t),
        [s, t] => (*s, *t),
        [] => return Err("no host".into()),
        _ => return Err("more than a selector and a host".into()),
    };
    check_selector(selector)?;
    let (tcp, rest) = if let Some(r) = target.strip_prefix("@@") {
        (true, r)
    } else if let Some(r) = target.strip_prefix('@') {
        (false, r)
    } else {
        (false, target)
    };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (addr, after) = r
            .split_once(']')
            .ok_or_else(|| format!("host {rest:?} has an unclosed bracket"))?;
        match after {
            "" => (addr, None),
            p => (
                addr,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("{after:?} after the address"))?,
                ),
            ),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    check_host(host)?;
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("port {p:?} is not a number from 1 to 65535")),
        },
    };
    Ok(Remote {
        selector: selector.to_string(),
        tcp,
        host: host.to_string(),
        port,
    })
}

/// A selector in the syslogd's own syntax: OpenBSD's levels take no comparison flags.
fn native_selector(s: &str, facts: &SyslogFacts, os: &str) -> Result<(), String> {
    check_selector(s)?;
    if !facts.level_comparisons && s.contains(['!', '<', '=', '>']) {
        return Err(format!(
            "selector {s:?}: the syslogd of {os} takes no level comparisons (!, <, =, >)"
        ));
    }
    Ok(())
}

/// Whether `line` would read as one of wisp's block markers (or another wisp block's).
fn is_marker(line: &str) -> bool {
    let t = line.trim();
    t == BEGIN || t == END || t.starts_with("# BEGIN wisp") || t.starts_with("# END wisp")
}

/// A selector: `facility.level` parts joined by `;`, facilities by `,`, levels with
/// comparison flags (`!`, `<`, `=`, `>`).
fn check_selector(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.split(';').all(|part| {
            part.split_once('.').is_some_and(|(fac, level)| {
                !fac.is_empty()
                    && !level.is_empty()
                    && fac
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == ',' || c == '*')
                    && level
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "*!<=>".contains(c))
            })
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "selector {s:?} is not facility.level (such as *.* or auth,authpriv.info)"
        ))
    }
}

/// A host name or address: nothing a syslogd could read as another action or option.
fn check_host(h: &str) -> Result<(), String> {
    if h.is_empty() {
        return Err("no host".into());
    }
    if h.starts_with('-') || h.starts_with('.') {
        return Err(format!("host {h:?} does not start with a letter or digit"));
    }
    if !h
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-_:%".contains(c))
    {
        return Err(format!("host {h:?} is not a host name or address"));
    }
    Ok(())
}

/// The forwarding action in the syslogd's own syntax, or why it has none.
pub fn action(remote: &Remote, facts: &SyslogFacts, os: &str) -> Result<String, String> {
    let prefix = if remote.tcp {
        facts.tcp_prefix.ok_or_else(|| {
            format!("TCP forwarding (@@): the syslogd of {os} forwards over UDP only; use @host")
        })?
    } else {
        "@"
    };
    let v6 = remote.host.contains(':');
    let host = if v6 && facts.bracket_ipv6 {
        format!("[{}]", remote.host)
    } else {
        remote.host.clone()
    };
    // OpenBSD's `@tcp://host` needs its port (syslog.conf(5)): rsyslog's default for `@@`.
    let port = match remote.port {
        None if remote.tcp && prefix.ends_with("://") => Some(514),
        p => p,
    };
    match port {
        Some(p) if !facts.udp_port && !remote.tcp => {
            if p == 514 {
                Ok(format!("{prefix}{host}"))
            } else {
                Err(format!(
                    "port {p}: the syslogd of {os} forwards over UDP to port 514 only"
                ))
            }
        }
        Some(_) if v6 && !facts.bracket_ipv6 => Err(format!(
            "a port after an IPv6 address: the syslogd of {os} takes none there"
        )),
        Some(p) => Ok(format!("{prefix}{host}:{p}")),
        None => Ok(format!("{prefix}{host}")),
    }
}

/// One line of a `configs` entry in the native syntax, or why it is not one.
fn config_line(line: &str, facts: &SyslogFacts, os: &str) -> Result<String, String> {
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err("control characters".into());
    }
    let t = line.trim();
    if is_marker(t) {
        return Err("the line reads as one of wisp's block markers".into());
    }
    if t.starts_with("#!") || t.starts_with("#+") || t.starts_with("#-") {
        return Err(format!(
            "{t:?} is a program or host block tag to the syslogd, not a comment: refused (it \
             would scope the lines after it)"
        ));
    }
    if t.is_empty() || t.starts_with('#') {
        return Ok(line.trim_end().to_string());
    }
    if t.starts_with(['!', '+', '-']) {
        return Err(format!(
            "{t:?} is a program or host block tag: refused (it would scope the lines after it)"
        ));
    }
    if t.starts_with('$') {
        return Err("an rsyslog directive ($...): the system's syslogd has none".into());
    }
    if t.contains('(') || t.contains('{') || t.starts_with("if ") {
        return Err("RainerScript (rsyslog's own syntax): the system's syslogd reads none".into());
    }
    if t.split_whitespace()
        .nth(1)
        .is_some_and(|a| a.starts_with('|'))
    {
        return Err("a pipe action runs a command through the shell as root: refused".into());
    }
    let mut words = t.split_whitespace();
    let (Some(selector), Some(target), None) = (words.next(), words.next(), words.next()) else {
        return Err("not a `selector<TAB>action` line".into());
    };
    native_selector(selector, facts, os)?;
    let url = target
        .strip_prefix('@')
        .and_then(|r| r.split_once("://"))
        .filter(|(scheme, _)| facts.url_schemes.contains(scheme));
    let target = if let Some((scheme, rest)) = url {
        if rest.starts_with('@') {
            return Err(format!("action {target:?} is not @{scheme}://host[:port]"));
        }
        parse_remote(&format!("{selector} @{rest}"))?;
        format!("@{scheme}://{rest}")
    } else if target.starts_with("@[") && !facts.bracket_ipv6 {
        return Err(format!(
            "{target:?}: @[host] forwards over TLS on {os}, which wisp does not set up"
        ));
    } else if target.starts_with('@') {
        let remote = parse_remote(&format!("{selector} {target}"))?;
        action(&remote, facts, os)?
    } else if let Some(path) = target
        .strip_prefix('-')
        .or(Some(target))
        .filter(|p| p.starts_with('/'))
    {
        if path.contains("..") {
            return Err(format!("file {path:?} has `..` in it"));
        }
        target.to_string()
    } else if target == "*"
        || target
            .split(',')
            .all(|u| !u.is_empty() && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        target.to_string()
    } else {
        return Err(format!(
            "action {target:?} is not a file, @host, * or users"
        ));
    };
    Ok(format!("{selector}\t{target}"))
}

/// The lines wisp's part of the configuration holds, with the items refused.
fn render(cfg: &Rsyslog, facts: &SyslogFacts, os: &str, out: &mut Planned) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in &cfg.configs {
        let mut taken = Vec::new();
        let mut refused = None;
        for (n, l) in entry.content.lines().enumerate() {
            match config_line(l, facts, os) {
                Ok(l) => taken.push(l),
                Err(e) => {
                    refused = Some(format!("line {}: {e}", n + 1));
                    break;
                }
            }
        }
        match refused {
            Some(e) => out.error(NAME, &entry.path, e),
            None => lines.extend(taken),
        }
    }
    for (name, spec) in &cfg.remotes {
        let item = format!("rsyslog.remotes.{name}");
        if name.chars().any(char::is_control) {
            out.error(
                NAME,
                &item.escape_default().to_string(),
                "the name has control characters",
            );
            continue;
        }
        if is_marker(&format!("# {name}")) {
            out.error(NAME, &item, "the name reads as one of wisp's block markers");
            continue;
        }
        let parsed = parse_remote(spec).and_then(|r| {
            native_selector(&r.selector, facts, os)?;
            Ok((action(&r, facts, os)?, r))
        });
        match parsed {
            Ok((action, r)) => {
                lines.push(format!("# {name}"));
                lines.push(format!("{}\t{action}", r.selector));
            }
            Err(e) => out.error(NAME, &item, format!("{spec:?}: {e}")),
        }
    }
    lines
}

/// `conf` with wisp's block replaced by `lines` (taken away when there are none), the block
/// starting with the `reset` lines. A BEGIN with no END after it is an error: what follows
/// it is not wisp's to drop.
pub fn with_block(conf: &str, lines: &[String], reset: &[&str]) -> Result<String, String> {
    let mut kept = Vec::new();
    let mut inside = false;
    for l in conf.lines() {
        if l == BEGIN {
            if inside {
                return Err("wisp's block marker BEGIN is there twice, with no END between".into());
            }
            inside = true;
        } else if inside && l == END {
            inside = false;
        } else if !inside {
            kept.push(l);
        }
    }
    if inside {
        return Err(format!(
            "wisp's block has a BEGIN line and no {END:?} line after it: edit the file by hand"
        ));
    }
    let mut text = kept.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    if !lines.is_empty() {
        text.push_str(BEGIN);
        text.push('\n');
        for l in reset
            .iter()
            .map(|r| r.to_string())
            .chain(lines.iter().cloned())
        {
            text.push_str(&l);
            text.push('\n');
        }
        text.push_str(END);
        text.push('\n');
    }
    Ok(text)
}

/// Whether the syslogd reads the drop-in directory: `include` is a line of `conf`.
fn reads_dropin(conf: &str, include: &str) -> bool {
    conf.lines().any(|l| {
        let words = l.split_whitespace().collect::<Vec<_>>().join(" ");
        !words.starts_with('#') && words.contains(include)
    })
}

/// Plans the module; on a `retry` a running syslogd is reloaded even when the files are right
/// already (the run that wrote them may have stopped before its reload).
pub fn plan(inp: &Inputs<'_>, retry: bool, out: &mut Planned) {
    // Reload only a running syslogd of this very system, as sshd is.
    let running = inp.root.is_host() && inp.root.path(inp.backend.facts().syslog.pidfile).exists();
    plan_with(inp, running, retry, out)
}

fn plan_with(inp: &Inputs<'_>, running: bool, retry: bool, out: &mut Planned) {
    let Some(cfg) = &inp.config.rsyslog else {
        return;
    };
    let facts = &inp.backend.facts().syslog;
    let os = inp.backend.facts().name;
    let lines = render(cfg, facts, os, out);
    let wheel = inp.backend.wheel();
    // syslog.conf is edited: one that cannot be read safely is left alone.
    let conf = match out.try_current_text(inp.root, facts.conf, None) {
        Ok(c) => c,
        Err(e) => {
            out.error(NAME, facts.conf, format!("not changed: {e}"));
            return;
        }
    };
    // A block cut short (BEGIN, no END): the file is left alone.
    let without = match with_block(&conf, &[], &[]) {
        Ok(w) => w,
        Err(e) => {
            out.error(NAME, facts.conf, format!("not changed: {e}"));
            return;
        }
    };
    let mut changed = false;
    match facts.dropin {
        Some((file, include)) if reads_dropin(&conf, include) => {
            let current = out.current(inp.root, file);
            if lines.is_empty() {
                if current.is_some() {
                    out.actions.push(Action::Remove {
                        module: NAME,
                        item: file.into(),
                        path: file.into(),
                    });
                    changed = true;
                }
            } else {
                let mut text = String::from("# Written by wisp from cloud-config (rsyslog).\n");
                for l in facts
                    .block_reset
                    .iter()
                    .map(|r| r.to_string())
                    .chain(lines.clone())
                {
                    text.push_str(&l);
                    text.push('\n');
                }
                if current.as_deref() != Some(text.as_bytes()) {
                    out.actions.push(Action::write(
                        NAME,
                        file,
                        file,
                        text.into_bytes(),
                        0o644,
                        ("root", wheel),
                        false,
                    ));
                    changed = true;
                }
            }
            // A block left from a run before the directory was read.
            if conf.contains(BEGIN) && without != conf {
                out.actions.push(Action::write(
                    NAME,
                    facts.conf,
                    facts.conf,
                    without.into_bytes(),
                    0o644,
                    ("root", wheel),
                    false,
                ));
                changed = true;
            }
        }
        _ => {
            let new = match with_block(&conf, &lines, facts.block_reset) {
                Ok(n) => n,
                Err(e) => {
                    out.error(NAME, facts.conf, format!("not changed: {e}"));
                    return;
                }
            };
            let had_block = conf.lines().any(|l| l == BEGIN);
            if new != conf && (had_block || !lines.is_empty()) {
                out.actions.push(Action::write(
                    NAME,
                    facts.conf,
                    facts.conf,
                    new.into_bytes(),
                    0o644,
                    ("root", wheel),
                    false,
                ));
                changed = true;
            }
        }
    }
    if (changed || retry) && running {
        out.actions.push(Action::exec(
            NAME,
            "syslogd",
            facts.reload.iter().map(|a| a.to_string()).collect(),
        ));
    }
}

// Reading the module's part of a cloud-config document, with cloud-init's leniency
// (`cloudconfig::lenient`).

/// `rsyslog`: a map, or (cloud-init's deprecated form) the list of `configs`.
pub(crate) fn read_rsyslog(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<Rsyslog> {
    let mut cfg = Rsyslog::default();
    let map = match v {
        Value::Null => return Some(cfg),
        Value::Sequence(_) => {
            r.warn(
                path,
                "a list here is deprecated (cloud-init 22.2): write rsyslog.configs",
            );
            cfg.configs = read_configs(r, path, v);
            return Some(cfg);
        }
        Value::Mapping(m) => m,
        other => {
            r.error(path, format!("expected a map, got {}", describe(other)));
            return None;
        }
    };
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        match key.as_str() {
            "remotes" => cfg.remotes = read_remotes(r, &p, val),
            "configs" => cfg.configs = read_configs(r, &p, val),
            "service_reload_command" => {
                if val.as_str() != Some("auto") {
                    r.warn(&p, "ignored: wisp reloads the system's syslogd itself");
                }
            }
            "config_dir" | "config_filename" => r.warn(
                &p,
                "ignored: wisp writes the system syslogd's own configuration, not rsyslog's",
            ),
            "install_rsyslog" | "check_exe" | "packages" => r.warn(
                &p,
                "ignored: wisp configures the system's syslogd and installs no rsyslog",
            ),
            _ => r.warn(&p, "unknown key (ignored)"),
        }
    }
    Some(cfg)
}

fn read_remotes(r: &mut Reader<'_>, path: &str, v: &Value) -> Vec<(String, String)> {
    let map = match v {
        Value::Null => return Vec::new(),
        Value::Mapping(m) => m,
        other => {
            r.error(
                path,
                format!("expected a map of names to hosts, got {}", describe(other)),
            );
            return Vec::new();
        }
    };
    let mut remotes = Vec::new();
    for (_, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        // cloud-init skips an empty one.
        if val.is_null() {
            continue;
        }
        if let Some(s) = r.text(&p, val) {
            if !s.trim().is_empty() {
                remotes.push((raw.clone(), s));
            }
        }
    }
    remotes
}

fn read_configs(r: &mut Reader<'_>, path: &str, v: &Value) -> Vec<ConfigEntry> {
    let Value::Sequence(items) = v else {
        if !v.is_null() {
            r.error(path, format!("expected a list, got {}", describe(v)));
        }
        return Vec::new();
    };
    let mut configs = Vec::new();
    let mut total = 0;
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let content = match item {
            Value::Mapping(m) => {
                let mut content = None;
                for (key, raw, val) in entries(r, &p, m) {
                    let kp = child(&p, &raw);
                    match key.as_str() {
                        "content" => content = r.text(&kp, val),
                        "filename" => r.warn(
                            &kp,
                            "ignored: wisp puts every line in the system syslogd's configuration",
                        ),
                        _ => r.warn(&kp, "unknown key (ignored)"),
                    }
                }
                if content.is_none() {
                    r.warn(&p, "no content: skipped");
                }
                content
            }
            other => r.text(&p, other),
        };
        let Some(content) = content else { continue };
        total += content.len();
        if total > MAX_CONFIG {
            r.error(
                &p,
                format!("configs are over {MAX_CONFIG} bytes: the rest is not read"),
            );
            break;
        }
        configs.push(ConfigEntry { path: p, content });
    }
    configs
}

/// The module in the registry ([`super::MODULES`]).
pub struct RsyslogModule;

impl super::Module for RsyslogModule {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["rsyslog", "rsyslog_filename", "rsyslog_dir"],
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

    const CONF: &str = "*.notice\t/var/log/messages\nsecurity.*\t/var/log/security\n";
    /// The lines that open wisp's block on the BSDs: every program, every host.
    const RESET: &str = "!*\n+*\n";

    fn root_with(conf: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(t.path().join("etc/syslog.conf"), conf).unwrap();
        t
    }

    /// Plans as if syslogd ran (the reload is planned only for a running one on the host).
    fn running(p: Platform, root: &std::path::Path, doc: &str) -> Planned {
        plan_in(p, root, doc, |inp, out| plan_with(inp, true, false, out))
    }

    #[test]
    fn remotes_are_read_as_cloud_init_reads_them() {
        let r = parse_remote("10.0.0.1").unwrap();
        assert_eq!(
            r,
            Remote {
                selector: "*.*".into(),
                tcp: false,
                host: "10.0.0.1".into(),
                port: None
            }
        );
        let r = parse_remote("auth.* @@logs.example:10514 # the collector").unwrap();
        assert_eq!(
            (r.selector.as_str(), r.tcp, r.port),
            ("auth.*", true, Some(10514))
        );
        let r = parse_remote("@[2001:db8::1]:514").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("2001:db8::1", Some(514)));
        for (bad, why) in [
            ("@h.example\n*.* /etc/passwd", "control"),
            ("*.* -h.example", "does not start"),
            ("@-h", "does not start"),
            ("@h:0", "port"),
            ("@h:99999", "port"),
            ("@h:x1", "port"),
            ("a.b c d", "more than"),
            ("*.* @h;rm", "not a host"),
            ("kern @h", "selector"),
            ("@[::1", "bracket"),
        ] {
            let e = parse_remote(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn openbsd_gets_a_block_in_its_own_syntax_reloaded_once() {
        let t = root_with(CONF);
        let doc = "rsyslog:\n  remotes:\n    maas: 10.0.0.1\n    tcp: \"auth.* @@logs.example:6514\"\n    v6: \"@[2001:db8::5]:1514\"\n  configs:\n    - \"kern.*\\t/var/log/kern.log\"\n";
        let p = running(Platform::Openbsd, t.path(), doc);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(
            written(&p, "/etc/syslog.conf").unwrap(),
            format!(
                "{CONF}{BEGIN}\n{RESET}kern.*\t/var/log/kern.log\n# maas\n*.*\t@10.0.0.1\n# tcp\nauth.*\t@tcp://logs.example:6514\n# v6\n*.*\t@[2001:db8::5]:1514\n{END}\n"
            )
        );
        assert_eq!(argvs(&p), vec![vec!["rcctl", "reload", "syslogd"]]);
        // A rerun changes nothing and reloads nothing.
        let again = running(Platform::Openbsd, t.path(), doc);
        assert!(again.actions.is_empty(), "{:?}", again.actions);
        // Other remotes replace the block; none take it away, the rest of the file as it was.
        let p = running(
            Platform::Openbsd,
            t.path(),
            "rsyslog:\n  remotes: {a: \"@10.0.0.9:5514\"}\n",
        );
        assert_eq!(
            written(&p, "/etc/syslog.conf").unwrap(),
            format!("{CONF}{BEGIN}\n{RESET}# a\n*.*\t@10.0.0.9:5514\n{END}\n")
        );
        let p = running(Platform::Openbsd, t.path(), "rsyslog: {}\n");
        assert_eq!(written(&p, "/etc/syslog.conf").unwrap(), CONF);
        assert_eq!(argvs(&p).len(), 1);
    }

    #[test]
    fn freebsd_uses_its_syslog_d_when_it_reads_it_and_forwards_over_udp_only() {
        let t = root_with(&format!("{CONF}include\t\t\t/etc/syslog.d\n"));
        let doc = "rsyslog:\n  remotes:\n    maas: \"10.0.0.1:514\"\n    tcp: \"@@logs.example\"\n";
        let p = running(Platform::Freebsd, t.path(), doc);
        assert_eq!(
            written(&p, "/etc/syslog.d/wisp-rsyslog.conf").unwrap(),
            "# Written by wisp from cloud-config (rsyslog).\n!*\n+*\n# maas\n*.*\t@10.0.0.1:514\n"
        );
        assert!(written(&p, "/etc/syslog.conf").is_none());
        assert_eq!(argvs(&p), vec![vec!["service", "syslogd", "reload"]]);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].item, "rsyslog.remotes.tcp");
        assert!(p.errors[0].reason.contains("UDP only"), "{:?}", p.errors);
        assert!(running(Platform::Freebsd, t.path(), doc).actions.is_empty());
        // Without the include line: a block in syslog.conf.
        let t = root_with(CONF);
        let p = running(
            Platform::Freebsd,
            t.path(),
            "rsyslog: {remotes: {m: 10.0.0.1}}\n",
        );
        assert!(written(&p, "/etc/syslog.conf")
            .unwrap()
            .contains("*.*\t@10.0.0.1\n"));
    }

    #[test]
    fn netbsd_forwards_to_port_514_only() {
        let t = root_with(CONF);
        let doc = "rsyslog:\n  remotes:\n    a: \"10.0.0.1:514\"\n    b: \"10.0.0.2:5514\"\n    c: \"@[2001:db8::7]\"\n";
        let p = running(Platform::Netbsd, t.path(), doc);
        assert_eq!(
            written(&p, "/etc/syslog.conf").unwrap(),
            format!("{CONF}{BEGIN}\n{RESET}# a\n*.*\t@10.0.0.1\n# c\n*.*\t@2001:db8::7\n{END}\n")
        );
        assert_eq!(argvs(&p), vec![vec!["/etc/rc.d/syslogd", "reload"]]);
        assert_eq!(p.errors.len(), 1);
        assert!(
            p.errors[0].reason.contains("port 514 only"),
            "{:?}",
            p.errors
        );
    }

    #[test]
    fn rsyslog_only_syntax_and_hostile_values_are_refused_by_name() {
        let t = root_with(CONF);
        let doc = "rsyslog:\n  configs:\n    - \"$ModLoad imudp\"\n    - 'module(load=\"imtcp\")'\n    - \"*.* |/bin/sh -c x\"\n    - \"mail.*\\t/var/log/../../etc/passwd\"\n    - \"mail.*\\t/var/log/\\u001bx\"\n    - \"mail.*\\t@mailhost\"\n  remotes:\n    \"evil\\nname\": 10.0.0.1\n    ok: 10.0.0.2\n";
        let p = running(Platform::Openbsd, t.path(), doc);
        let items: Vec<&str> = p.errors.iter().map(|e| e.item.as_str()).collect();
        assert_eq!(
            items,
            [
                "rsyslog.configs[0]",
                "rsyslog.configs[1]",
                "rsyslog.configs[2]",
                "rsyslog.configs[3]",
                "rsyslog.configs[4]",
                "rsyslog.remotes.evil\\nname"
            ]
        );
        assert!(p.errors[0].reason.contains("rsyslog directive"));
        assert!(p.errors[1].reason.contains("RainerScript"));
        assert!(p.errors[2].reason.contains("pipe"));
        assert!(p.errors[4].reason.contains("control"), "{:?}", p.errors[4]);
        // The rest applied.
        assert_eq!(
            written(&p, "/etc/syslog.conf").unwrap(),
            format!("{CONF}{BEGIN}\n{RESET}mail.*\t@mailhost\n# ok\n*.*\t@10.0.0.2\n{END}\n")
        );
    }

    #[test]
    fn the_list_form_and_rsyslogs_own_keys_are_read_with_warnings() {
        let (got, problems) = crate::cloudconfig::lenient::read_for_test(
            "['*.* @h1', {content: 'kern.* @h2', filename: x.conf}]",
            "rsyslog",
            read_rsyslog,
        );
        let got = got.unwrap();
        assert_eq!(got.configs.len(), 2);
        assert_eq!(got.configs[1].content, "kern.* @h2");
        assert!(problems[0].contains("deprecated"), "{problems:?}");
        assert!(
            problems[1].starts_with("rsyslog[1].filename: ignored"),
            "{problems:?}"
        );
        let (got, problems) = crate::cloudconfig::lenient::read_for_test(
            "{remotes: {a: h, b: null, c: ''}, service_reload_command: [systemctl, restart, rsyslog], install_rsyslog: true}",
            "rsyslog",
            read_rsyslog,
        );
        assert_eq!(
            got.unwrap().remotes,
            vec![("a".to_string(), "h".to_string())]
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn a_retry_reloads_though_the_files_are_right_already() {
        let t = root_with(CONF);
        let doc = "rsyslog: {remotes: {m: 10.0.0.1}}\n";
        let p = running(Platform::Netbsd, t.path(), doc);
        assert_eq!(argvs(&p).len(), 1);
        // The first run wrote the block and stopped before its reload (a crash, a failed
        // tool): a plain rerun sees nothing to do, a retry reloads.
        assert!(running(Platform::Netbsd, t.path(), doc).actions.is_empty());
        let retry = plan_in(Platform::Netbsd, t.path(), doc, |inp, out| {
            plan_with(inp, true, true, out)
        });
        assert_eq!(argvs(&retry), vec![vec!["/etc/rc.d/syslogd", "reload"]]);
        assert!(written(&retry, "/etc/syslog.conf").is_none());
    }

    #[test]
    fn openbsd_tcp_without_a_port_gets_rsyslogs_514() {
        let t = root_with(CONF);
        let p = running(
            Platform::Openbsd,
            t.path(),
            "rsyslog: {remotes: {t: \"@@logs.example\"}}\n",
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert!(written(&p, "/etc/syslog.conf")
            .unwrap()
            .contains("*.*\t@tcp://logs.example:514\n"));
    }

    #[test]
    fn marker_lines_and_a_cut_block_are_refused() {
        let t = root_with(CONF);
        let doc = format!(
            "rsyslog:\n  remotes:\n    \"END wisp rsyslog\": 10.0.0.1\n    ok: 10.0.0.2\n  configs:\n    - \"{END}\"\n    - \"{BEGIN}\"\n"
        );
        let p = running(Platform::Openbsd, t.path(), &doc);
        let items: Vec<&str> = p.errors.iter().map(|e| e.item.as_str()).collect();
        assert_eq!(
            items,
            [
                "rsyslog.configs[0]",
                "rsyslog.configs[1]",
                "rsyslog.remotes.END wisp rsyslog"
            ]
        );
        assert!(p.errors.iter().all(|e| e.reason.contains("marker")));
        assert_eq!(
            written(&p, "/etc/syslog.conf").unwrap(),
            format!("{CONF}{BEGIN}\n{RESET}# ok\n*.*\t@10.0.0.2\n{END}\n")
        );
        // A BEGIN with no END: the admin's lines after it are not dropped, the file is left.
        let cut = format!("{CONF}{BEGIN}\n# ok\n*.*\t@10.0.0.2\nmail.*\t/var/log/maillog\n");
        let t = root_with(&cut);
        for doc in ["rsyslog: {remotes: {a: 10.0.0.3}}\n", "rsyslog: {}\n"] {
            let p = running(Platform::Openbsd, t.path(), doc);
            assert!(p.actions.is_empty(), "{:?}", p.actions);
            assert_eq!(p.errors.len(), 1);
            assert_eq!(p.errors[0].item, "/etc/syslog.conf");
            assert!(p.errors[0].reason.contains("no \"# END wisp rsyslog\""));
        }
        // FreeBSD's drop-in: a cut block in syslog.conf is left alone as well.
        let t = root_with(&format!("include /etc/syslog.d\n{cut}"));
        let p = running(Platform::Freebsd, t.path(), "rsyslog: {remotes: {a: h}}\n");
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert!(p.errors[0].reason.contains("BEGIN line and no"));
    }

    #[test]
    fn block_tags_are_refused_and_wisps_block_resets_them() {
        let t = root_with(&format!("{CONF}!ppp\n*.*\t/var/log/ppp.log\n"));
        let doc = "rsyslog:\n  configs:\n    - \"#!sshd\"\n    - \"#+loghost\"\n    - \"!ntpd\"\n    - \"+*\"\n    - \"# a comment\\nkern.*\\t/var/log/kern\"\n";
        let p = running(Platform::Freebsd, t.path(), doc);
        let items: Vec<&str> = p.errors.iter().map(|e| e.item.as_str()).collect();
        assert_eq!(
            items,
            [
                "rsyslog.configs[0]",
                "rsyslog.configs[1]",
                "rsyslog.configs[2]",
                "rsyslog.configs[3]"
            ]
        );
        assert!(p.errors.iter().all(|e| e.reason.contains("block tag")));
        // After the admin's `!ppp` block, wisp's lines apply to every program again.
        assert!(written(&p, "/etc/syslog.conf").unwrap().ends_with(&format!(
            "{BEGIN}\n!*\n+*\n# a comment\nkern.*\t/var/log/kern\n{END}\n"
        )));
    }

    #[test]
    fn each_syslogds_own_forwarding_forms_in_configs() {
        // NetBSD: @[host] is TLS there, not an address in brackets.
        let t = root_with(CONF);
        let p = running(
            Platform::Netbsd,
            t.path(),
            "rsyslog: {configs: [\"*.*\\t@[loghost.example]\", \"*.*\\t@[2001:db8::1]:6514\"]}\n",
        );
        assert_eq!(p.errors.len(), 2, "{:?}", p.errors);
        assert!(p.errors.iter().all(|e| e.reason.contains("TLS on netbsd")));
        assert!(p.actions.is_empty());
        // OpenBSD: its udp://, tcp://, tls:// prefixes; no level comparisons.
        let doc = "rsyslog:\n  configs:\n    - \"*.*\\t@tls://logs.example:6514\"\n    - \"auth.*\\t@udp6://[2001:db8::1]:514\"\n    - \"mail.!info\\t/var/log/m\"\n    - \"mail.=info\\t/var/log/m\"\n    - \"*.*\\t@gopher://h:1\"\n    - \"*.*\\t@tls://-h:1\"\n  remotes:\n    cmp: \"kern.>err @h\"\n";
        let t = root_with(CONF);
        let p = running(Platform::Openbsd, t.path(), doc);
        let items: Vec<&str> = p.errors.iter().map(|e| e.item.as_str()).collect();
        assert_eq!(
            items,
            [
                "rsyslog.configs[2]",
                "rsyslog.configs[3]",
                "rsyslog.configs[4]",
                "rsyslog.configs[5]",
                "rsyslog.remotes.cmp"
            ],
            "{:?}",
            p.errors
        );
        assert!(p.errors[0].reason.contains("no level comparisons"));
        assert!(p.errors[4].reason.contains("no level comparisons"));
        assert_eq!(
            written(&p, "/etc/syslog.conf").unwrap(),
            format!("{CONF}{BEGIN}\n{RESET}*.*\t@tls://logs.example:6514\nauth.*\t@udp6://[2001:db8::1]:514\n{END}\n")
        );
        // FreeBSD reads comparisons.
        let t = root_with(CONF);
        let p = running(
            Platform::Freebsd,
            t.path(),
            "rsyslog: {configs: [\"mail.!info\\t/var/log/m\"]}\n",
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }
}
