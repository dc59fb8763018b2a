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
}

impl PackageConfig {
    fn wanted(&self) -> bool {
        self.update || self.upgrade || !self.packages.is_empty()
    }

    /// The tool's proxy variables: both spellings, as fetch(3) (pkgin, pkg) reads the upper
    /// and ftp(1) (pkg_add) the lower case.
    fn proxy_env(&self) -> Vec<EnvVar> {
        let http = self.package_proxy.as_ref().or(self.http_proxy.as_ref());
        let https = self
            .package_proxy
            .as_ref()
            .or(self.https_proxy.as_ref())
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

/// The installed packages as `(name, version)`, or why they are not known.
fn installed(inp: &Inputs<'_>, facts: &PackageFacts) -> Result<Vec<(String, String)>, String> {
    match facts.installed {
        InstalledDb::Dirs { dirs, flavors } => {
            let mut dir = None;
            // pkg_install's own configuration may move the database.
            if let Ok(Some(conf)) = crate::rootfs::read(inp.root, "/etc/pkg_install.conf", None) {
                dir = String::from_utf8_lossy(&conf)
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("PKG_DBDIR="))
                    .map(|d| d.trim().to_string())
                    .rfind(|d| d.starts_with('/'));
            }
            let dir = dir.or_else(|| {
                dirs.iter()
                    .find(|d| std::fs::symlink_metadata(inp.root.path(d)).is_ok())
                    .map(|d| d.to_string())
            });
            let Some(dir) = dir else {
                return Ok(Vec::new());
            };
            let names = crate::rootfs::list(inp.root, &dir)
                .map_err(|e| format!("the package database {dir}: {e}"))?
                .unwrap_or_default();
            Ok(names
                .iter()
                .filter_map(|n| split_installed(n, flavors))
                .collect())
        }
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
            let text = probe.output(argv)?;
            Ok(text
                .lines()
                .filter_map(|l| split_installed(l.trim(), false))
                .collect())
        }
    }
}

/// `name-version` (pkgsrc, FreeBSD: the version is after the last `-`, and starts with a
/// digit) or
/// `stem-version[-flavor]` (OpenBSD: the version is the first part that starts with a digit).
fn split_installed(entry: &str, flavors: bool) -> Option<(String, String)> {
    if flavors {
        let at = entry
            .match_indices('-')
            .map(|(i, _)| i)
            .find(|&i| entry[i + 1..].starts_with(|c: char| c.is_ascii_digit()))?;
        let rest = &entry[at + 1..];
        let version = rest.split('-').next().unwrap_or(rest);
        Some((entry[..at].to_string(), version.to_string()))
    } else {
        // A version starts with a digit: pkgsrc's PKG_DBDIR also holds `pkg-vulnerabilities`,
        // which is no package. (A package whose version does not is only planned again, and
        // the tool skips it.)
        let (name, version) = entry.rsplit_once('-')?;
        (!name.is_empty() && version.starts_with(|c: char| c.is_ascii_digit()))
            .then(|| (name.into(), version.into()))
    }
}

fn is_installed(p: &Package, installed: &[(String, String)]) -> bool {
    installed
        .iter()
        .any(|(n, v)| *n == p.name && p.version.as_ref().is_none_or(|want| want == v))
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
    let exec = |item: &str, argv: Vec<String>| Action::Exec {
        module: NAME,
        item: item.to_string(),
        argv,
        stdin: None,
        env: env.clone(),
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
        if std::fs::symlink_metadata(inp.root.path(file)).is_err() {
            out.error(
                NAME,
                file,
                format!(
                    "{file} does not exist: {} has no mirror to install from \
                     (installurl(5) names one; wisp does not choose it)",
                    facts.tool
                ),
            );
            return;
        }
    }

    // What is missing: all of it before a bootstrap; else what the database does not list.
    let missing: Vec<&Package> = if !tool_present {
        cfg.packages.iter().collect()
    } else {
        match installed(inp, facts) {
            Ok(have) => cfg
                .packages
                .iter()
                .filter(|p| !is_installed(p, &have))
                .collect(),
            Err(e) => {
                out.warnings.push(format!(
                    "{NAME}: the installed packages are not known ({e}): every package is \
                     planned, and {} skips those installed",
                    facts.tool
                ));
                cfg.packages.iter().collect()
            }
        }
    };

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
    let Value::Sequence(items) = v else {
        if !v.is_null() {
            r.error(path, format!("expected a list, got {}", describe(v)));
        }
        return;
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

/// A proxy URL: http or https, no whitespace or control characters.
pub(crate) fn read_proxy(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<String> {
    let s = r.opt_string(path, v)?;
    let s = s.trim();
    let scheme_ok = s.starts_with("http://") || s.starts_with("https://");
    if !scheme_ok || s.len() > MAX_URL || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        r.error(
            path,
            format!(
                "expected an http:// or https:// URL of at most {MAX_URL} bytes, got {:?}",
                crate::plan::redact_userinfo(&s.chars().take(80).collect::<String>())
            ),
        );
        return None;
    }
    Some(s.to_string())
}

/// `apt: {proxy, http_proxy, https_proxy}`: MAAS's proxy as its vendor-data gives it. The rest
/// of `apt` is Ubuntu's and ignored.
pub(crate) fn read_apt_proxy(r: &mut Reader<'_>, path: &str, v: &Value, cfg: &mut PackageConfig) {
    let Value::Mapping(map) = v else {
        return;
    };
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        match key.as_str() {
            "proxy" | "http_proxy" => cfg.http_proxy = read_proxy(r, &p, val),
            "https_proxy" => cfg.https_proxy = read_proxy(r, &p, val),
            _ => {}
        }
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

    #[test]
    fn installed_entries_by_each_systems_naming() {
        // pkgsrc and FreeBSD: the version is after the last '-'.
        assert_eq!(
            split_installed("p5-Net-SSLeay-1.92nb1", false),
            Some(("p5-Net-SSLeay".into(), "1.92nb1".into()))
        );
        // OpenBSD: the first part that starts with a digit; a flavor may follow.
        assert_eq!(
            split_installed("vim-9.0.2100-no_x11", true),
            Some(("vim".into(), "9.0.2100".into()))
        );
        assert_eq!(
            split_installed("py3-cryptography-41.0.7", true),
            Some(("py3-cryptography".into(), "41.0.7".into()))
        );
        assert_eq!(split_installed("+CONTENTS", false), None);
        assert_eq!(split_installed("pkg-vulnerabilities", false), None);
        assert_eq!(split_installed("pkgdb.byfile.db", false), None);
        let have = vec![("vim".to_string(), "9.0.2100".to_string())];
        assert!(is_installed(&pkg("vim", None), &have));
        assert!(is_installed(&pkg("vim", Some("9.0.2100")), &have));
        assert!(!is_installed(&pkg("vim", Some("9.1")), &have));
        assert!(!is_installed(&pkg("vi", None), &have));
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
        // Credentials are not echoed in the error either.
        let (_, problems) = read_one("ftp://u:hunter2@p/");
        assert!(!problems[0].contains("hunter2"), "{problems:?}");
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
}
