//! `packages`, `package_update`, `package_upgrade`, `package_reboot_if_required` (cloud-init's
//! cc_package_update_upgrade_install, whose name it keeps so cloud_final_modules lists match),
//! with each system's own tool: pkgin on NetBSD, pkg on FreeBSD, pkg_add on OpenBSD (per-OS
//! facts in the backends: [`crate::platform::PackageFacts`]). Once per instance, in the final
//! stage. Only packages not installed yet are installed: a rerun with all of them present runs
//! no tool. The tool gets MAAS's proxy (`apt: {proxy}` in vendor-data, or wisp.yaml's
//! `package_proxy`) in its environment.

use super::{Frequency, Inputs, Planned, Stage};
use crate::cloudconfig::lenient::{child, describe, entries, Reader};
use crate::plan::{Action, EnvVar};
use crate::platform::{InstalledDb, PackageFacts};
use serde::Serialize;
use yaml_serde::Value;

pub const NAME: &str = "package_update_upgrade_install";
pub const STAGE: Stage = Stage::Final;
pub const FREQUENCY: Frequency = Frequency::PerInstance;
/// The most packages taken: more is refused with an error naming the count (the first ones are
/// still installed). The install runs are cut to fit the argument space, so this bounds the
/// plan, not the argv.
pub const MAX_PACKAGES: usize = 10_000;
/// The longest package name or version taken.
pub const MAX_NAME: usize = 255;
/// The longest proxy URL taken.
pub const MAX_URL: usize = 2048;
/// Seconds one run of the package tool may take (`package_timeout`): a stalled pkgin would
/// hold the boot (rc waits for wisp's final stage) and MAAS would never hear the end.
pub const DEFAULT_TIMEOUT: u64 = 30 * 60;
/// The most `package_timeout` takes (a day).
pub const MAX_TIMEOUT: u64 = 24 * 60 * 60;
/// The file cloud-init reboots for (when asked, after an install or upgrade).
pub const REBOOT_MARKER: &str = "/var/run/reboot-required";

/// One package: a name, with a version if one was given (`[name, version]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    pub name: String,
    pub version: Option<String>,
}

impl Package {
    /// The name the tools take: `name-version` on all three BSDs.
    pub fn spec(&self) -> String {
        match &self.version {
            Some(v) => format!("{}-{v}", self.name),
            None => self.name.clone(),
        }
    }
}

/// What the document asks of the package tool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageConfig {
    pub update: bool,
    pub upgrade: bool,
    pub reboot_if_required: bool,
    /// For this system's tool (plain entries, and a per-manager map's `pkg:` part).
    pub packages: Vec<Package>,
    /// The proxy for http and https (`package_proxy`, `apt: {proxy, http_proxy}`, `apt_proxy`,
    /// `apt_http_proxy`).
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    /// `package_proxy` (wisp.yaml): it wins over apt's proxy, which is meant for Ubuntu.
    pub package_proxy: Option<String>,
    /// `package_timeout` (wisp.yaml): seconds each tool run may take.
    pub timeout: Option<u64>,
    /// MAAS's proxy from its vendor-data's snap command: the last resort.
    pub snap_http_proxy: Option<String>,
    pub snap_https_proxy: Option<String>,
}

impl PackageConfig {
    fn wanted(&self) -> bool {
        self.update || self.upgrade || !self.packages.is_empty()
    }

    /// The tool's proxy variables: both spellings, as fetch(3) (pkgin, pkg) reads the upper
    /// and ftp(1) (pkg_add) the lower case.
    fn proxy_env(&self) -> Vec<EnvVar> {
        let http = self
            .package_proxy
            .as_ref()
            .or(self.http_proxy.as_ref())
            .or(self.snap_http_proxy.as_ref());
        let https = self
            .package_proxy
            .as_ref()
            .or(self.https_proxy.as_ref())
            .or(self.http_proxy.as_ref())
            .or(self.snap_https_proxy.as_ref())
            .or(http);
        let mut env = Vec::new();
        for (names, value) in [
            (["http_proxy", "HTTP_PROXY"], http),
            (["https_proxy", "HTTPS_PROXY"], https),
        ] {
            if let Some(v) = value {
                for name in names {
                    env.push(EnvVar {
                        name,
                        value: v.clone(),
                    });
                }
            }
        }
        env
    }
}

/// One installed package as its database lists it: the name, the version, and what else it
/// can be asked for by (OpenBSD's flavor, FreeBSD's origin `www/nginx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPkg {
    pub name: String,
    pub version: String,
    /// OpenBSD: the flavor (`no_x11`, empty for none); FreeBSD: the origin.
    pub extra: String,
}

/// Where the installed packages are read, as planned (the database as found at plan time),
/// so that the install can read it again after its runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstalledCheck {
    /// One directory per package in this directory of the root.
    Dir { path: String, flavors: bool },
    /// This read-only query's output, on the running system.
    Query { argv: Vec<String> },
}

impl InstalledCheck {
    /// The installed packages now.
    pub fn read(&self, root: &crate::root::Root) -> Result<Vec<InstalledPkg>, String> {
        match self {
            InstalledCheck::Dir { path, flavors } => {
                let names = crate::rootfs::list(root, path)
                    .map_err(|e| format!("the package database {path}: {e}"))?
                    .unwrap_or_default();
                Ok(names
                    .iter()
                    .filter_map(|n| split_installed(n, *flavors))
                    .collect())
            }
            InstalledCheck::Query { argv } => {
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                let text = crate::platform::disks::Probe::Host.output(&argv)?;
                Ok(parse_query(&text))
            }
        }
    }
}

/// `pkg query -a '%n-%v %o'`: `name-version origin` lines.
fn parse_query(text: &str) -> Vec<InstalledPkg> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let mut p = split_installed(words.next()?, false)?;
            p.extra = words.next().unwrap_or_default().to_string();
            Some(p)
        })
        .collect()
}

/// pkg_install's configuration file: pkgsrc's pkg_install (the one pkgin runs) reads it from
/// its own `${PREFIX}/etc` (SYSCONFDIR in pkgsrc's pkgtools/pkg_install lib/parse-config.c),
/// not NetBSD base's /etc; its `PKG_DBDIR` moves the database.
pub const PKG_INSTALL_CONF: &str = "/usr/pkg/etc/pkg_install.conf";

/// Where the installed packages are read, or why they cannot be.
fn installed_check(
    inp: &Inputs<'_>,
    facts: &PackageFacts,
) -> Result<Option<InstalledCheck>, String> {
    match facts.installed {
        InstalledDb::Dirs { dirs, flavors } => {
            let mut dir = None;
            if !flavors {
                if let Ok(Some(conf)) = crate::rootfs::read(inp.root, PKG_INSTALL_CONF, None) {
                    dir = String::from_utf8_lossy(&conf)
                        .lines()
                        .filter_map(|l| l.trim().strip_prefix("PKG_DBDIR="))
                        .map(|d| d.trim().to_string())
                        .rfind(|d| d.starts_with('/'));
                }
            }
            let dir = dir.or_else(|| {
                dirs.iter()
                    .find(|d| std::fs::symlink_metadata(inp.root.path(d)).is_ok())
                    .map(|d| d.to_string())
            });
            Ok(dir.map(|path| InstalledCheck::Dir { path, flavors }))
        }
        InstalledDb::Query(argv) => {
            if inp.root.is_host() && inp.disks.is_none() {
                return Ok(Some(InstalledCheck::Query {
                    argv: argv.iter().map(|a| a.to_string()).collect(),
                }));
            }
            Err(format!(
                "--root is not this system: `{}` cannot read its database after the install",
                argv.join(" ")
            ))
        }
    }
}

/// The installed packages, or why they are not known.
fn installed(inp: &Inputs<'_>, facts: &PackageFacts) -> Result<Vec<InstalledPkg>, String> {
    match facts.installed {
        InstalledDb::Dirs { .. } => match installed_check(inp, facts)? {
            Some(check) => check.read(inp.root),
            None => Ok(Vec::new()),
        },
        InstalledDb::Query(argv) => {
            let host;
            let probe = match inp.disks {
                Some(Ok(p)) => p,
                Some(Err(e)) => return Err(e.clone()),
                None if inp.root.is_host() => {
                    host = crate::platform::disks::Probe::Host;
                    &host
                }
                None => {
                    return Err(format!(
                        "--root is not this system and no --probes file gives `{}`",
                        argv.join(" ")
                    ))
                }
            };
            Ok(parse_query(&probe.output(argv)?))
        }
    }
}

/// `name-version` (pkgsrc, FreeBSD: the version is after the last `-`, and starts with a
/// digit) or
/// `stem-version[-flavor]` (OpenBSD: the version is the first part that starts with a digit).
fn split_installed(entry: &str, flavors: bool) -> Option<InstalledPkg> {
    if flavors {
        let at = entry
            .match_indices('-')
            .map(|(i, _)| i)
            .find(|&i| entry[i + 1..].starts_with(|c: char| c.is_ascii_digit()))?;
        let rest = &entry[at + 1..];
        let (version, flavor) = rest.split_once('-').unwrap_or((rest, ""));
        Some(InstalledPkg {
            name: entry[..at].to_string(),
            version: version.to_string(),
            extra: flavor.to_string(),
        })
    } else {
        // A version starts with a digit: pkgsrc's PKG_DBDIR also holds `pkg-vulnerabilities`,
        // which is no package. (A package whose version does not is only planned again, and
        // the tool skips it.)
        let (name, version) = entry.rsplit_once('-')?;
        (!name.is_empty() && version.starts_with(|c: char| c.is_ascii_digit())).then(|| {
            InstalledPkg {
                name: name.into(),
                version: version.into(),
                extra: String::new(),
            }
        })
    }
}

/// Whether `p` is installed. OpenBSD (`flavors`): a name is `stem[--flavor][%branch]`
/// (pkg_add(1)): the stem is matched, the flavor when given (`vim--` is the unflavored one),
/// and the branch as the version's start (`python%3.11` is python-3.11.x). FreeBSD: a name
/// with `/` is an origin (`www/nginx`), matched against each package's origin.
pub fn is_installed(p: &Package, installed: &[InstalledPkg], flavors: bool) -> bool {
    let version_ok = |have: &str| p.version.as_ref().is_none_or(|want| want == have);
    if flavors {
        let (base, branch) = match p.name.split_once('%') {
            Some((b, br)) => (b, Some(br)),
            None => (p.name.as_str(), None),
        };
        let (stem, flavor) = match base.split_once("--") {
            Some((s, f)) => (s, Some(f)),
            None => (base, None),
        };
        return installed.iter().any(|i| {
            i.name == stem
                && flavor.is_none_or(|f| f == i.extra)
                && branch.is_none_or(|b| {
                    i.version == b
                        || i.version
                            .strip_prefix(b)
                            .is_some_and(|r| r.starts_with(|c: char| !c.is_ascii_digit()))
                })
                && version_ok(&i.version)
        });
    }
    if p.name.contains('/') {
        return installed
            .iter()
            .any(|i| i.extra == p.name && version_ok(&i.version));
    }
    installed
        .iter()
        .any(|i| i.name == p.name && version_ok(&i.version))
}

pub fn plan(inp: &Inputs<'_>, out: &mut Planned) {
    let cfg = &inp.config.packages;
    if !cfg.wanted() {
        if cfg.reboot_if_required {
            tracing::info!("{NAME}: nothing installed or upgraded: no reboot considered");
        }
        return;
    }
    let Some(facts) = inp.backend.packages() else {
        out.error(NAME, "packages", "wisp installs no packages on this system");
        return;
    };
    let root = inp.root.path("/");
    let root = (root != std::path::Path::new("/")).then(|| root.display().to_string());
    let chrooted = |argv: Vec<&str>| crate::platform::chrooted(&root, argv);
    let mut env: Vec<EnvVar> = facts
        .env
        .iter()
        .map(|(name, value)| EnvVar {
            name,
            value: value.to_string(),
        })
        .collect();
    env.extend(cfg.proxy_env());
    let timeout = cfg.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let exec = |item: &str, argv: Vec<String>| Action::Exec {
        module: NAME,
        item: item.to_string(),
        argv,
        stdin: None,
        env: env.clone(),
        timeout: Some(timeout),
    };

    let tool_present = std::fs::symlink_metadata(inp.root.path(facts.tool)).is_ok();
    let mut actions = Vec::new();
    if !tool_present {
        let Some(bootstrap) = facts.bootstrap else {
            out.error(NAME, facts.tool, facts.missing);
            return;
        };
        actions.push(exec("bootstrap", chrooted(bootstrap.to_vec())));
    }
    if let Some(file) = facts.mirror_file {
        // installurl(5) exists only on a system installed from a mirror, and pkg_add also
        // takes PKG_PATH: the tool says what it lacks.
        if std::fs::symlink_metadata(inp.root.path(file)).is_err() {
            out.warnings.push(format!(
                "{NAME}: {file} does not exist: unless PKG_PATH names a mirror, {} has none \
                 to install from (installurl(5); wisp does not choose one)",
                facts.tool
            ));
        }
    }

    // Each name as this system's tool takes it: the characters beyond letters, digits and
    // `._+-` are the tool's own (`/`: FreeBSD's origins, `%`: OpenBSD's branches); `--` (a
    // flavor) only for pkg_add. Others are refused by name.
    let flavors = matches!(facts.installed, InstalledDb::Dirs { flavors: true, .. });
    let mut wanted: Vec<&Package> = Vec::new();
    for p in &cfg.packages {
        let bad = p
            .name
            .chars()
            .find(|c| "/%".contains(*c) && !facts.name_chars.contains(*c));
        if let Some(c) = bad {
            out.error(
                NAME,
                &p.name,
                format!(
                    "{:?} has {c:?}, which {} does not take in a name: not installed",
                    p.name, facts.tool
                ),
            );
            continue;
        }
        if p.name.contains("--") && !flavors {
            out.error(
                NAME,
                &p.name,
                format!(
                    "{:?} has \"--\" (a pkg_add flavor), which {} does not take: not installed",
                    p.name, facts.tool
                ),
            );
            continue;
        }
        if flavors && p.version.is_some() {
            out.warnings.push(format!(
                "{NAME}: {}: a version for pkg_add rarely matches (it has flavors and pN \
                 revisions: `stem--flavor` or `stem%branch` name what is meant); asked for as {}",
                p.name,
                p.spec()
            ));
        }
        wanted.push(p);
    }

    // What is missing: all of it before a bootstrap; else what the database does not list.
    let missing: Vec<&Package> = if !tool_present {
        wanted.clone()
    } else {
        match installed(inp, facts) {
            Ok(have) => wanted
                .iter()
                .copied()
                .filter(|p| !is_installed(p, &have, flavors))
                .collect(),
            Err(e) => {
                out.warnings.push(format!(
                    "{NAME}: the installed packages are not known ({e}): every package is \
                     planned, and {} skips those installed",
                    facts.tool
                ));
                wanted.clone()
            }
        }
    };
    // Read again after the install, to confirm it (on FreeBSD only on the running system).
    let confirm = match installed_check(inp, facts) {
        Ok(c) => c,
        Err(e) => {
            if !missing.is_empty() {
                out.warnings.push(format!(
                    "{NAME}: the install is not confirmed against the package database: {e}"
                ));
            }
            None
        }
    };
    // Before a bootstrap (or with no database yet), the place pkg_install makes.
    let confirm = confirm.or_else(|| match facts.installed {
        InstalledDb::Dirs { dirs, flavors } => dirs.first().map(|d| InstalledCheck::Dir {
            path: d.to_string(),
            flavors,
        }),
        InstalledDb::Query(_) => None,
    });

    let tool = |args: &[&str]| {
        let mut argv = vec![facts.tool];
        argv.extend(args);
        chrooted(argv)
    };
    if cfg.update || cfg.upgrade {
        match facts.update {
            Some(args) => actions.push(exec("update", tool(args))),
            None if cfg.update => out.warnings.push(format!(
                "{NAME}: package_update: {} has no catalogue to refresh: not applicable",
                facts.tool
            )),
            None => {}
        }
    }
    if cfg.upgrade {
        actions.push(exec("upgrade", tool(facts.upgrade)));
    }
    if !missing.is_empty() {
        actions.push(Action::Install {
            module: NAME,
            item: "packages".into(),
            argv: tool(facts.install),
            names: missing.iter().map(|p| p.spec()).collect(),
            env: env.clone(),
            wanted: missing.iter().map(|p| (*p).clone()).collect(),
            confirm,
            timeout,
            error_log: facts.error_log.map(str::to_string),
        });
    }
    // cloud-init reboots after an install or upgrade when asked and the marker says so; here
    // through power_state's way, after the final report. No BSD package tool writes the marker:
    // a package's script or the image may.
    if cfg.reboot_if_required && (cfg.upgrade || !missing.is_empty()) {
        let mut argv = vec![inp.backend.shutdown_tool()];
        argv.extend(
            inp.backend
                .shutdown_flags(super::power_state::PowerMode::Reboot),
        );
        argv.push("now");
        actions.push(Action::PowerState {
            module: NAME,
            item: "reboot".into(),
            argv: chrooted(argv),
            condition: Some(chrooted(vec!["/bin/test", "-f", REBOOT_MARKER])),
            timeout: super::power_state::DEFAULT_TIMEOUT,
        });
    }
    out.actions.extend(actions);
}

// Reading the module's part of a cloud-config document, with cloud-init's leniency
// (`cloudconfig::lenient`).

/// The per-manager map's keys that mean this system's tool.
const OWN_MANAGERS: &[&str] = &["pkg", "pkgin", "pkg_add"];

/// A package name as the three tools take it: letters, digits and `._+-%/` (`p5-Foo`,
/// `py311-foo`, `gtk+3`, OpenBSD's `python%3.11`, FreeBSD's `www/nginx`), not starting with
/// `-` (an option) or `/`, no `..`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an empty package name".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("a package name longer than {MAX_NAME} bytes"));
    }
    if name.starts_with('-') {
        return Err(format!(
            "{:?} starts with '-': it would be taken for an option",
            name
        ));
    }
    if name.starts_with('/') || name.split('/').any(|c| c.is_empty() || c == "..") {
        return Err(format!("{name:?} is a path, not a package name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._+-%/".contains(*c)))
    {
        return Err(format!("{name:?} has {c:?}, which no package name has"));
    }
    Ok(())
}

/// A version: letters, digits and `._+,~` (`1.2nb3`, `1.2_1,1`, `1.2p0v0`).
fn check_version(v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > MAX_NAME {
        return Err(format!("a version of 1 to {MAX_NAME} bytes"));
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._+,~".contains(*c)))
    {
        return Err(format!("version {v:?} has {c:?}, which no version has"));
    }
    Ok(())
}

/// One entry: `name` or `[name, version]`.
fn read_item(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<Package> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let (name, version) = match v {
        Value::Sequence(items) if (1..=2).contains(&items.len()) => {
            let name = scalar(&items[0]);
            let version = items.get(1).map(scalar);
            match (name, version) {
                (Some(n), None) => (n, None),
                (Some(n), Some(Some(v))) => (n, Some(v)),
                _ => {
                    r.error(path, "expected [name, version], strings");
                    return None;
                }
            }
        }
        other => match scalar(other) {
            Some(n) => (n, None),
            None => {
                r.error(
                    path,
                    format!(
                        "expected a package name, [name, version] or a map of package \
                         managers, got {}",
                        describe(other)
                    ),
                );
                return None;
            }
        },
    };
    if let Err(e) = check_name(&name) {
        r.error(path, format!("{e}: not installed"));
        return None;
    }
    if let Some(ver) = &version {
        if let Err(e) = check_version(ver) {
            r.error(path, format!("{e}: {name} not installed"));
            return None;
        }
    }
    Some(Package { name, version })
}

/// `packages`: a list of entries, each a name, `[name, version]`, or a map of package manager
/// to such entries (cloud-init's `apt:`, `snap:`; `pkg:` here is this system's tool). Others'
/// packages are reported, not installed.
pub(crate) fn read_packages(r: &mut Reader<'_>, path: &str, v: &Value, out: &mut Vec<Package>) {
    // cloud-init reads the key with get_cfg_option_list, which makes a lone string a list of
    // one: taken so, with a warning (the schema wants a list).
    let one;
    let items = match v {
        Value::Sequence(items) => items,
        Value::String(_) => {
            r.warn(path, "a string, not a list: taken as a list of one package");
            one = vec![v.clone()];
            &one
        }
        _ => {
            if !v.is_null() {
                r.error(path, format!("expected a list, got {}", describe(v)));
            }
            return;
        }
    };
    let push = |r: &mut Reader<'_>, p: &str, item: &Value, out: &mut Vec<Package>| {
        if out.len() >= MAX_PACKAGES {
            r.error(
                p,
                format!("more than {MAX_PACKAGES} packages: this one and the rest not installed"),
            );
            return false;
        }
        if let Some(pkg) = read_item(r, p, item) {
            if !out.contains(&pkg) {
                out.push(pkg);
            }
        }
        true
    };
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Value::Mapping(map) = item else {
            if !push(r, &p, item, out) {
                return;
            }
            continue;
        };
        for (key, raw, list) in entries(r, &p, map) {
            let kp = child(&p, &raw);
            let Value::Sequence(pkgs) = list else {
                r.error(&kp, format!("expected a list, got {}", describe(list)));
                continue;
            };
            if OWN_MANAGERS.contains(&key.as_str()) {
                for (j, it) in pkgs.iter().enumerate() {
                    if !push(r, &format!("{kp}[{j}]"), it, out) {
                        return;
                    }
                }
            } else {
                r.warn(
                    &kp,
                    format!(
                        "{} {key} package(s) not installed: {key} is not this system's \
                         package manager (pkg: is)",
                        pkgs.len()
                    ),
                );
            }
        }
    }
}

/// A boolean key (`package_update` and its old name `apt_update`, …): any true one wins, as in
/// cloud-init.
pub(crate) fn read_flag(r: &mut Reader<'_>, path: &str, v: &Value, flag: &mut bool) {
    if v.is_null() {
        return;
    }
    if let Some(b) = r.bool(path, v) {
        *flag |= b;
    }
}

/// A proxy URL: `http://` only (pkgin and pkg reach it through fetch(3), pkg_add through
/// ftp(1), each by a plain-HTTP proxy: an `https://` proxy would be spoken to in plain HTTP or
/// not at all), no whitespace or control characters. A refused value is never echoed (it may
/// hold a password): only its scheme and length are said.
pub(crate) fn read_proxy(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<String> {
    let s = r.opt_string(path, v)?;
    let s = s.trim();
    if !s.starts_with("http://")
        || s.len() > MAX_URL
        || s.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        let scheme = match s.split_once("://") {
            Some((sc, _))
                if !sc.is_empty()
                    && sc.len() <= 16
                    && sc
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)) =>
            {
                format!("a {sc}:// value")
            }
            _ => "a value with no URL scheme".to_string(),
        };
        r.error(
            path,
            format!(
                "expected an http:// URL of at most {MAX_URL} bytes with no whitespace or \
                 control characters, got {scheme} of {} bytes (not shown)",
                s.len()
            ),
        );
        return None;
    }
    Some(s.to_string())
}

/// `package_timeout`: seconds each package tool run may take.
pub(crate) fn read_timeout(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<u64> {
    let n = r.uint(path, v, MAX_TIMEOUT)?;
    if n == 0 {
        r.error(path, "expected at least 1 second");
        return None;
    }
    Some(n)
}

/// `apt: {proxy, http_proxy, https_proxy}`: a proxy as cloud-init's apt module takes it (MAAS
/// writes it into curtin's config, which `wisp curtin-hook` carries over as `package_proxy`).
/// The rest of `apt` is Ubuntu's and ignored. Whether a proxy was taken.
pub(crate) fn read_apt_proxy(
    r: &mut Reader<'_>,
    path: &str,
    v: &Value,
    cfg: &mut PackageConfig,
) -> bool {
    let Value::Mapping(map) = v else {
        return false;
    };
    let mut taken = false;
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        match key.as_str() {
            "proxy" | "http_proxy" => cfg.http_proxy = read_proxy(r, &p, val),
            "https_proxy" => cfg.https_proxy = read_proxy(r, &p, val),
            _ => continue,
        }
        taken |= cfg.http_proxy.is_some() || cfg.https_proxy.is_some();
    }
    taken
}

/// MAAS's proxy as its vendor-data for a deployed machine carries it (metadataserver
/// vendor_data.py): `snap: {commands: ['snap set system proxy.http="URL" proxy.https="URL"']}`.
/// Only that exact command is read (a string, the words as MAAS writes them, `http://` URLs);
/// any other snap command is not ours and left alone. The last proxy for apt or
/// `package_proxy` wins over this one. Whether a proxy was taken.
pub(crate) fn read_snap_proxy(v: &Value, cfg: &mut PackageConfig) -> bool {
    let commands: Vec<&Value> = match v.get("commands") {
        Some(Value::Sequence(list)) => list.iter().collect(),
        Some(Value::Mapping(map)) => map.values().collect(),
        _ => return false,
    };
    let mut taken = false;
    for c in commands {
        if let Some((http, https)) = c.as_str().and_then(parse_snap_proxy) {
            cfg.snap_https_proxy = https.or_else(|| Some(http.clone()));
            cfg.snap_http_proxy = Some(http);
            taken = true;
        }
    }
    taken
}

/// `snap set system proxy.http="URL" [proxy.https="URL"]`, nothing else.
fn parse_snap_proxy(command: &str) -> Option<(String, Option<String>)> {
    let words: Vec<&str> = command.trim().split(' ').collect();
    let url = |word: &str, key: &str| -> Option<String> {
        let u = word
            .strip_prefix(key)?
            .strip_prefix("=\"")?
            .strip_suffix('"')?;
        let ok = u.starts_with("http://")
            && u.len() <= MAX_URL
            && !u
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '"');
        ok.then(|| u.to_string())
    };
    match words.as_slice() {
        ["snap", "set", "system", http] => Some((url(http, "proxy.http")?, None)),
        ["snap", "set", "system", http, https] => {
            Some((url(http, "proxy.http")?, Some(url(https, "proxy.https")?)))
        }
        _ => None,
    }
}

/// The module in the registry ([`super::MODULES`]).
pub struct PackagesModule;

impl super::Module for PackagesModule {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &[
                "packages",
                "package_update",
                "package_upgrade",
                "package_reboot_if_required",
                "apt_update",
                "apt_upgrade",
                "apt_reboot_if_required",
                "package_proxy",
                "package_timeout",
                "apt_proxy",
                "apt_http_proxy",
                "apt_https_proxy",
            ],
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

    fn read(text: &str) -> (Vec<Package>, Vec<String>) {
        let (got, problems) =
            crate::cloudconfig::lenient::read_for_test(text, "packages", |r, p, v| {
                let mut out = Vec::new();
                read_packages(r, p, v, &mut out);
                Some(out)
            });
        (got.unwrap_or_default(), problems)
    }

    fn pkg(name: &str, version: Option<&str>) -> Package {
        Package {
            name: name.into(),
            version: version.map(str::to_string),
        }
    }

    #[test]
    fn entries_as_cloud_init_takes_them() {
        let (got, problems) =
            read("[curl, [vim, 9.0.2100], [tmux], {pkg: [jq, [git, 2.43]], apt: [gcc]}, curl]");
        assert_eq!(
            got,
            vec![
                pkg("curl", None),
                pkg("vim", Some("9.0.2100")),
                pkg("tmux", None),
                pkg("jq", None),
                pkg("git", Some("2.43")),
            ]
        );
        // The apt part is reported, not installed.
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("packages[3].apt: ") && problems[0].contains("1 apt"),
            "{problems:?}"
        );
        assert_eq!(got[1].spec(), "vim-9.0.2100");
    }

    #[test]
    fn hostile_names_and_versions_are_refused_by_name_and_the_rest_kept() {
        let (got, problems) = read(
            "[ok, -rf, '--force', 'a b', 'x;reboot', '', ../../etc/passwd, /usr/bin/evil, \
             \"tab\\there\", \"nl\\nx\", [ok2, '1.0 --force'], [ok3, '-1'], [a, b, c], \
             {pkg: ['-n']}, {name: x}, 'p5-Foo+Bar', 'python%3.11', www/nginx]",
        );
        assert_eq!(
            got,
            vec![
                pkg("ok", None),
                pkg("p5-Foo+Bar", None),
                pkg("python%3.11", None),
                pkg("www/nginx", None),
            ]
        );
        for (path, what) in [
            ("packages[1]", "starts with '-'"),
            ("packages[2]", "starts with '-'"),
            ("packages[3]", "' '"),
            ("packages[4]", "';'"),
            ("packages[5]", "empty"),
            ("packages[6]", "a path"),
            ("packages[7]", "a path"),
            ("packages[8]", "'\\t'"),
            ("packages[9]", "'\\n'"),
            ("packages[10]", "version \"1.0 --force\""),
            ("packages[11]", "version \"-1\""),
            ("packages[12]", "[name, version]"),
            ("packages[13].pkg[0]", "starts with '-'"),
            ("packages[14].name", "expected a list"),
        ] {
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(&format!("{path}: ")) && p.contains(what)),
                "{path} {what}: {problems:?}"
            );
        }
    }

    #[test]
    fn a_thousand_packages_are_taken_and_more_than_the_bound_named() {
        let many = |n: usize| {
            format!(
                "[{}]",
                (0..n)
                    .map(|i| format!("p{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let (got, problems) = read(&many(1000));
        assert_eq!(got.len(), 1000);
        assert!(problems.is_empty(), "{problems:?}");
        let (got, problems) = read(&many(MAX_PACKAGES + 5));
        assert_eq!(got.len(), MAX_PACKAGES);
        assert_eq!(
            problems.len(),
            1,
            "{:?}",
            &problems[..problems.len().min(3)]
        );
        assert!(
            problems[0].starts_with(&format!("packages[{MAX_PACKAGES}]: more than")),
            "{problems:?}"
        );
    }

    fn have(name: &str, version: &str, extra: &str) -> InstalledPkg {
        InstalledPkg {
            name: name.into(),
            version: version.into(),
            extra: extra.into(),
        }
    }

    #[test]
    fn installed_entries_by_each_systems_naming() {
        // pkgsrc and FreeBSD: the version is after the last '-'.
        assert_eq!(
            split_installed("p5-Net-SSLeay-1.92nb1", false),
            Some(have("p5-Net-SSLeay", "1.92nb1", ""))
        );
        // OpenBSD: the first part that starts with a digit; a flavor may follow.
        assert_eq!(
            split_installed("vim-9.0.2100-no_x11", true),
            Some(have("vim", "9.0.2100", "no_x11"))
        );
        assert_eq!(
            split_installed("py3-cryptography-41.0.7", true),
            Some(have("py3-cryptography", "41.0.7", ""))
        );
        assert_eq!(split_installed("+CONTENTS", false), None);
        assert_eq!(split_installed("pkg-vulnerabilities", false), None);
        assert_eq!(split_installed("pkgdb.byfile.db", false), None);
        let db = vec![have("vim", "9.0.2100", "")];
        assert!(is_installed(&pkg("vim", None), &db, false));
        assert!(is_installed(&pkg("vim", Some("9.0.2100")), &db, false));
        assert!(!is_installed(&pkg("vim", Some("9.1")), &db, false));
        assert!(!is_installed(&pkg("vi", None), &db, false));
    }

    #[test]
    fn each_tools_name_forms_match_what_it_installed() {
        // OpenBSD: stem--flavor, the unflavored `stem--`, stem%branch.
        let obsd = vec![
            have("vim", "9.0.2100", "no_x11"),
            have("python", "3.11.7", ""),
            have("curl", "8.5.0", ""),
        ];
        assert!(is_installed(&pkg("vim--no_x11", None), &obsd, true));
        assert!(is_installed(&pkg("vim", None), &obsd, true));
        assert!(!is_installed(&pkg("vim--", None), &obsd, true));
        assert!(!is_installed(&pkg("vim--gtk3", None), &obsd, true));
        assert!(is_installed(&pkg("curl--", None), &obsd, true));
        assert!(is_installed(&pkg("python%3.11", None), &obsd, true));
        assert!(!is_installed(&pkg("python%3.1", None), &obsd, true));
        assert!(!is_installed(&pkg("python%3.12", None), &obsd, true));
        // FreeBSD: an origin is matched against each package's origin.
        let fbsd = parse_query("nginx-1.24.0_1,3 www/nginx\ncurl-8.5.0 ftp/curl\n");
        assert_eq!(fbsd[0], have("nginx", "1.24.0_1,3", "www/nginx"));
        assert!(is_installed(&pkg("www/nginx", None), &fbsd, false));
        assert!(is_installed(&pkg("nginx", None), &fbsd, false));
        assert!(!is_installed(&pkg("www/apache24", None), &fbsd, false));
    }

    #[test]
    fn a_lone_string_is_a_list_of_one_as_in_cloud_init() {
        let (got, problems) = read("vim");
        assert_eq!(got, vec![pkg("vim", None)]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("packages: a string"),
            "{problems:?}"
        );
        let (got, problems) = read("'-rf'");
        assert!(got.is_empty());
        assert!(
            problems.iter().any(|p| p.contains("starts with '-'")),
            "{problems:?}"
        );
    }

    #[test]
    fn maas_s_snap_proxy_command_is_read_exactly_and_nothing_else() {
        let vendor = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/fixtures/vendor-data.yaml"),
        )
        .unwrap();
        let outer: Value = yaml_serde::from_str(&vendor).unwrap();
        let doc: Value = yaml_serde::from_str(outer["cloud-init"].as_str().unwrap()).unwrap();
        let mut cfg = PackageConfig::default();
        assert!(read_snap_proxy(&doc["snap"], &mut cfg));
        let env = cfg.proxy_env();
        assert!(
            env.iter().all(|v| v.value == "http://10.20.0.2:8000/") && env.len() == 4,
            "{env:?}"
        );
        for other in [
            "snap set system proxy.http=\"http://p/\" ; reboot",
            "snap set system proxy.http=http://p/",
            "snap set system proxy.http=\"ftp://p/\"",
            "snap set system proxy.https=\"http://p/\"",
            "snap set  system proxy.http=\"http://p/\"",
            "snap set system proxy.http=\"http://p/\" proxy.https=\"http://q/\" x=1",
            "snap install lxd",
        ] {
            assert_eq!(parse_snap_proxy(other), None, "{other}");
        }
        assert_eq!(
            parse_snap_proxy("snap set system proxy.http=\"http://p:1/\""),
            Some(("http://p:1/".into(), None))
        );
        // apt's (or package_proxy) wins over the snap command's.
        cfg.http_proxy = Some("http://apt:1/".into());
        assert!(cfg.proxy_env().iter().all(|v| v.value == "http://apt:1/"));
    }

    #[test]
    fn proxies_are_http_urls_and_package_proxy_wins() {
        let read_one = |text: &str| {
            crate::cloudconfig::lenient::read_for_test(text, "package_proxy", |r, p, v| {
                read_proxy(r, p, v)
            })
        };
        assert_eq!(
            read_one("http://p:3128/").0.as_deref(),
            Some("http://p:3128/")
        );
        for bad in [
            "ftp://p/",
            "https://p/",
            "'http://a b/'",
            "file:///etc/passwd",
            "\"http://p/\\nX: y\"",
        ] {
            let (got, problems) = read_one(bad);
            assert_eq!(got, None, "{bad}");
            assert!(
                problems[0].starts_with("package_proxy: expected an http"),
                "{problems:?}"
            );
        }
        // A refused value is not echoed at all: a password of any length, or one cut short,
        // stays out; its scheme and length are said.
        for bad in [
            "ftp://u:hunter2@p/".to_string(),
            format!("ftp://u:{}hunter2@p/", "x".repeat(100)),
            "'http://u:hunter2 @p/'".to_string(),
            "hunter2".to_string(),
        ] {
            let (_, problems) = read_one(&bad);
            assert!(!problems[0].contains("hunter2"), "{problems:?}");
            assert!(problems[0].contains("bytes (not shown)"), "{problems:?}");
        }
        let (_, problems) = read_one("ftp://u:hunter2@p/");
        assert!(
            problems[0].contains("got a ftp:// value of 18 bytes"),
            "{problems:?}"
        );
        let cfg = PackageConfig {
            http_proxy: Some("http://apt:1/".into()),
            package_proxy: Some("http://ops:2/".into()),
            ..Default::default()
        };
        let env = cfg.proxy_env();
        assert!(env.iter().all(|v| v.value == "http://ops:2/"), "{env:?}");
        let names: Vec<&str> = env.iter().map(|v| v.name).collect();
        assert_eq!(
            names,
            ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"]
        );
    }

    use crate::platform::Platform;

    /// A root with the package tools in place and these package entries (`dir/entry`).
    fn pkg_root(entries: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "usr/pkg/bin/pkgin",
            "usr/sbin/pkg_add",
            "usr/local/sbin/pkg",
            "etc/installurl",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        for e in entries {
            std::fs::create_dir_all(d.path().join(e)).unwrap();
        }
        d
    }

    fn plan_for(platform: Platform, root: &std::path::Path, doc: &str) -> Planned {
        super::super::testing::plan_in(platform, root, doc, plan)
    }

    fn install_names(p: &Planned) -> Vec<String> {
        p.actions
            .iter()
            .find_map(|a| match a {
                Action::Install { names, .. } => Some(names.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    #[test]
    fn pkgsrc_s_own_pkg_install_conf_moves_the_database() {
        // pkg_install.conf in pkgsrc's PREFIX/etc, not NetBSD base's /etc, names the place.
        let d = pkg_root(&["usr/pkg/pkgdb/curl-8.5.0", "var/db/pkgsrc/vim-9.0"]);
        std::fs::create_dir_all(d.path().join("usr/pkg/etc")).unwrap();
        std::fs::write(
            d.path().join("usr/pkg/etc/pkg_install.conf"),
            "PKG_DBDIR=/var/db/pkgsrc\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/pkg_install.conf"),
            "PKG_DBDIR=/nowhere\n",
        )
        .unwrap();
        let p = plan_for(Platform::Netbsd, d.path(), "packages: [curl, vim]\n");
        assert_eq!(install_names(&p), vec!["curl".to_string()], "{p:?}");
        let confirm = p.actions.iter().find_map(|a| match a {
            Action::Install { confirm, .. } => confirm.clone(),
            _ => None,
        });
        assert_eq!(
            confirm,
            Some(InstalledCheck::Dir {
                path: "/var/db/pkgsrc".into(),
                flavors: false
            })
        );
    }

    #[test]
    fn each_tool_takes_only_its_own_name_forms() {
        let d = pkg_root(&["var/db/pkg/vim-9.0.2100-no_x11", "usr/pkg/pkgdb/jq-1.7"]);
        let doc = "packages: [www/nginx, 'python%3.11', vim--no_x11, jq]\n";
        // pkgin: none of the three.
        let p = plan_for(Platform::Netbsd, d.path(), doc);
        assert_eq!(install_names(&p), Vec::<String>::new(), "{p:?}");
        assert_eq!(p.errors.len(), 3, "{:?}", p.errors);
        assert!(p.errors[0].item == "www/nginx" && p.errors[0].reason.contains("'/'"));
        assert!(p.errors[2].reason.contains("\"--\""), "{:?}", p.errors);
        // pkg_add: branch and flavor, not an origin (a file path to it); the installed
        // vim--no_x11 is matched by its stem and flavor.
        let p = plan_for(Platform::Openbsd, d.path(), doc);
        assert_eq!(install_names(&p), vec!["python%3.11", "jq"], "{p:?}");
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
        assert_eq!(p.errors[0].item, "www/nginx");
        // pkg: the origin.
        let p = plan_for(Platform::Freebsd, d.path(), doc);
        assert_eq!(p.errors.len(), 2, "{:?}", p.errors);
        assert!(
            install_names(&p).contains(&"www/nginx".to_string()),
            "{p:?}"
        );
    }

    #[test]
    fn openbsd_version_pins_and_a_missing_installurl_are_warnings() {
        let d = pkg_root(&[]);
        std::fs::remove_file(d.path().join("etc/installurl")).unwrap();
        let p = plan_for(Platform::Openbsd, d.path(), "packages: [[vim, 9.0.2100]]\n");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(install_names(&p), vec!["vim-9.0.2100"]);
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("/etc/installurl does not exist") && w.contains("PKG_PATH")),
            "{:?}",
            p.warnings
        );
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("vim: a version for pkg_add rarely matches")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn each_run_has_the_configured_deadline() {
        let d = pkg_root(&[]);
        let timeouts = |doc: &str| -> Vec<u64> {
            plan_for(Platform::Netbsd, d.path(), doc)
                .actions
                .iter()
                .filter_map(|a| match a {
                    Action::Install { timeout, .. } => Some(*timeout),
                    Action::Exec { timeout, .. } => *timeout,
                    _ => None,
                })
                .collect()
        };
        assert_eq!(
            timeouts("package_update: true\npackages: [jq]\n"),
            vec![DEFAULT_TIMEOUT, DEFAULT_TIMEOUT]
        );
        assert_eq!(
            timeouts("package_update: true\npackages: [jq]\npackage_timeout: 90\n"),
            vec![90, 90]
        );
    }
}
