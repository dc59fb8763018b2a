//! `ca_certs` (cloud-init's cc_ca_certs; `ca-certs` too): `trusted` certificates become trust
//! anchors the system's TLS clients use, and `remove_defaults` drops the system's own set.
//! Runs in the network stage before anything of wisp's that fetches over TLS. Once per
//! instance.
//!
//! - FreeBSD: each certificate in /usr/local/share/certs (a directory of certctl(8)'s default
//!   search path), then `certctl rehash`. `remove_defaults` is refused: FreeBSD's certctl has no
//!   persistent way to drop a whole directory from its search path.
//! - NetBSD (10+): each certificate in /etc/openssl/wisp-trusted, a `path` line for it in
//!   /etc/openssl/certs.conf, then `certctl rehash`; `remove_defaults` comments out the other
//!   `path` lines (the Mozilla set).
//! - OpenBSD: the certificates in a marked block at the end of /etc/ssl/cert.pem; with
//!   `remove_defaults` the file is the block alone, the original kept once as
//!   /etc/ssl/cert.pem.wisp-orig.
//!
//! Certificates of an earlier run that the document no longer lists are removed. Each must be
//! PEM (`-----BEGIN CERTIFICATE-----`, base64, `-----END CERTIFICATE-----`); any other is
//! refused by its index, and the others are applied.

use super::{Frequency, Inputs, Planned, Stage};
use crate::cloudconfig::lenient::{child, describe, entries, Reader};
use crate::plan::Action;
use crate::platform::TrustStore;
use serde::Serialize;
use yaml_serde::Value;

pub const NAME: &str = "ca_certs";
pub const STAGE: Stage = Stage::Network;
pub const FREQUENCY: Frequency = Frequency::PerInstance;
/// wisp's certificate files: `PREFIX<n>.pem`.
pub const PREFIX: &str = "wisp-cloud-init-ca-cert-";
pub const BEGIN: &str = "# BEGIN wisp ca_certs (cloud-config): replaced by wisp on each run";
pub const END: &str = "# END wisp ca_certs";
/// The most certificates taken, and the largest one: a CA certificate is a few kilobytes.
pub const MAX_CERTS: usize = 100;
pub const MAX_CERT_BYTES: usize = 64 * 1024;
const BEGIN_CERT: &str = "-----BEGIN CERTIFICATE-----";
const END_CERT: &str = "-----END CERTIFICATE-----";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaCerts {
    pub trusted: Vec<String>,
    pub remove_defaults: bool,
}

/// A certificate in PEM, normalised: its lines trimmed, ending in a newline.
pub fn check_pem(text: &str) -> Result<String, String> {
    if text.len() > MAX_CERT_BYTES {
        return Err(format!("over {MAX_CERT_BYTES} bytes"));
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() < 3 || lines[0] != BEGIN_CERT || lines[lines.len() - 1] != END_CERT {
        return Err(format!(
            "not a PEM certificate: it must start with {BEGIN_CERT} and end with {END_CERT}"
        ));
    }
    let mut body_len = 0;
    let mut inside = false;
    for l in &lines {
        match *l {
            BEGIN_CERT if !inside => inside = true,
            END_CERT if inside => inside = false,
            l if inside
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) =>
            {
                body_len += l.len();
            }
            _ => return Err("not a PEM certificate: a line is not base64".into()),
        }
    }
    if body_len == 0 || body_len % 4 != 0 {
        return Err("not a PEM certificate: its base64 body is cut short".into());
    }
    Ok(lines.join("\n") + "\n")
}

pub fn plan(inp: &Inputs<'_>, out: &mut Planned) {
    let Some(cfg) = &inp.config.ca_certs else {
        return;
    };
    let mut certs = Vec::new();
    for (i, c) in cfg.trusted.iter().enumerate().take(MAX_CERTS) {
        match check_pem(c) {
            Ok(pem) => certs.push(pem),
            Err(e) => out.error(NAME, &format!("ca_certs.trusted[{i}]"), e),
        }
    }
    if cfg.trusted.len() > MAX_CERTS {
        out.error(
            NAME,
            "ca_certs.trusted",
            format!("more than {MAX_CERTS} certificates: the rest are not added"),
        );
    }
    let facts = inp.backend.facts();
    match facts.trust {
        TrustStore::Certctl { dir, config } => {
            if cfg.remove_defaults && config.is_none() {
                out.error(
                    NAME,
                    "ca_certs.remove_defaults",
                    format!(
                        "not supported on {}: its certctl cannot drop the system's set for good",
                        facts.name
                    ),
                );
            }
            certctl(inp, out, &certs, dir, config, cfg.remove_defaults);
        }
        TrustStore::Bundle(file) => bundle(inp, out, &certs, file, cfg.remove_defaults),
        TrustStore::None => out.warnings.push(format!(
            "ca_certs: not applicable on {}: wisp manages no trust store there",
            facts.name
        )),
    }
}

fn certctl(
    inp: &Inputs<'_>,
    out: &mut Planned,
    certs: &[String],
    dir: &str,
    config: Option<&str>,
    remove_defaults: bool,
) {
    let wheel = inp.backend.wheel();
    let before = out.actions.len();
    for (i, pem) in certs.iter().enumerate() {
        let path = format!("{dir}/{PREFIX}{i}.pem");
        if out.current(inp.root, &path).as_deref() != Some(pem.as_bytes()) {
            out.actions.push(Action::write(
                NAME,
                format!("ca_certs.trusted[{i}]"),
                &path,
                pem.clone().into_bytes(),
                0o644,
                ("root", wheel),
                false,
            ));
        }
    }
    // Those of an earlier run beyond today's list.
    match crate::rootfs::list(inp.root, dir) {
        Ok(names) => {
            for n in names.unwrap_or_default() {
                let index = n
                    .strip_prefix(PREFIX)
                    .and_then(|r| r.strip_suffix(".pem"))
                    .and_then(|i| i.parse::<usize>().ok());
                if index.is_some_and(|i| i >= certs.len()) {
                    let path = format!("{dir}/{n}");
                    out.actions.push(Action::Remove {
                        module: NAME,
                        item: path.clone(),
                        path,
                    });
                }
            }
        }
        Err(e) => out.error(NAME, dir, e),
    }
    if let Some(config) = config {
        // certs.conf is edited: one that cannot be read safely is left alone.
        match out.try_current_text(inp.root, config, None) {
            Ok(text) if text.is_empty() => out.error(
                NAME,
                config,
                format!("{config} is missing: this system's certctl is not set up"),
            ),
            Ok(text) => {
                let new = certs_conf(&text, dir, remove_defaults);
                if new != text {
                    out.actions.push(Action::write(
                        NAME,
                        config,
                        config,
                        new.into_bytes(),
                        0o644,
                        ("root", wheel),
                        false,
                    ));
                }
            }
            Err(e) => out.error(NAME, config, format!("not changed: {e}")),
        }
    }
    if out.actions.len() > before {
        out.actions
            .push(Action::exec(NAME, "certctl", inp.backend.trust_rehash()));
    }
}

/// The marker wisp puts on a `path` line it comments out.
const DISABLED: &str = "# disabled by wisp (ca_certs.remove_defaults): ";

/// NetBSD's certs.conf with a `path` line for `dir`, and (for `remove_defaults`) every other
/// `path` line commented out; without it, lines wisp commented out come back.
pub fn certs_conf(text: &str, dir: &str, remove_defaults: bool) -> String {
    let ours = format!("path {dir}");
    let mut out = String::new();
    let mut has_ours = false;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        let words: Vec<&str> = bare.split_whitespace().collect();
        if words.first() == Some(&"path") {
            if words.get(1) == Some(&dir) {
                has_ours = true;
                out.push_str(line);
            } else if remove_defaults {
                out.push_str(DISABLED);
                out.push_str(line);
            } else {
                out.push_str(line);
            }
        } else if let Some(orig) = line.strip_prefix(DISABLED).filter(|_| !remove_defaults) {
            out.push_str(orig);
        } else {
            out.push_str(line);
        }
    }
    if !has_ours {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&ours);
        out.push('\n');
    }
    out
}

/// `text` without wisp's block.
fn without_block(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if bare == BEGIN {
            inside = true;
        } else if inside && bare == END {
            inside = false;
        } else if !inside {
            out.push_str(line);
        }
    }
    out
}

fn bundle(inp: &Inputs<'_>, out: &mut Planned, certs: &[String], file: &str, remove: bool) {
    let wheel = inp.backend.wheel();
    let text = match out.try_current_text(inp.root, file, None) {
        Ok(t) => t,
        Err(e) => {
            out.error(NAME, file, format!("not changed: {e}"));
            return;
        }
    };
    let backup = format!("{file}.wisp-orig");
    let mut system = without_block(&text);
    // remove_defaults taken back: the system's set comes back from the copy kept.
    if !remove && system.trim().is_empty() {
        if let Some(kept) = out.current(inp.root, &backup) {
            system = String::from_utf8_lossy(&kept).into_owned();
        }
    }
    let mut new = if remove {
        String::new()
    } else {
        system.clone()
    };
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    if !certs.is_empty() {
        new.push_str(BEGIN);
        new.push('\n');
        for c in certs {
            new.push_str(c);
        }
        new.push_str(END);
        new.push('\n');
    }
    if new == text {
        return;
    }
    if remove && !system.is_empty() && out.current(inp.root, &backup).is_none() {
        out.actions.push(Action::write(
            NAME,
            "ca_certs.remove_defaults",
            &backup,
            system.into_bytes(),
            0o444,
            ("root", wheel),
            false,
        ));
    }
    out.actions.push(Action::write(
        NAME,
        file,
        file,
        new.into_bytes(),
        0o444,
        ("root", wheel),
        false,
    ));
}

// Reading the module's part of a cloud-config document, with cloud-init's leniency
// (`cloudconfig::lenient`).

pub(crate) fn read_ca_certs(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<CaCerts> {
    let map = match v {
        Value::Null => return Some(CaCerts::default()),
        Value::Mapping(m) => m,
        other => {
            r.error(path, format!("expected a map, got {}", describe(other)));
            return None;
        }
    };
    let mut cfg = CaCerts::default();
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        match key.as_str() {
            "trusted" => cfg.trusted = r.string_or_list_said(&p, val),
            "remove_defaults" => cfg.remove_defaults = r.bool(&p, val).unwrap_or(false),
            _ => r.warn(&p, "unknown key (ignored)"),
        }
    }
    Some(cfg)
}

/// The module in the registry ([`super::MODULES`]).
pub struct CaCertsModule;

impl super::Module for CaCertsModule {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["ca_certs"],
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
    use crate::modules::testing::{argvs, plan_in, written};
    use crate::platform::Platform;

    /// A self-signed test certificate (CN "wisp test CA one").
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBjTCCATOgAwIBAgIUN1AvqrOgJvHa8dBCQWxMmhkCC6cwCgYIKoZIzj0EAwIw\nGzEZMBcGA1UEAwwQd2lzcCB0ZXN0IENBIG9uZTAgFw0yNjEyMDEwMTI2NDFaGA8y\nMTI2MTEwNzAxMjY0MVowGzEZMBcGA1UEAwwQd2lzcCB0ZXN0IENBIG9uZTBZMBMG\nByqGSM49AgEGCCqGSM49AwEHA0IABJs+WimOxJ7AcuFUYBdR2D2BznEU/pwYe0c1\nFVpVyVDAy+Cz0T1FejNARkRdoNopc5/UNEuIL07yP6q6cMYUP0qjUzBRMB0GA1Ud\nDgQWBBRctRUVJTuVBMBSOZ7vmtbjSceL8TAfBgNVHSMEGDAWgBRctRUVJTuVBMBS\nOZ7vmtbjSceL8TAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIC8r\nXsbLxAU0yfXPf6Zz8PEyNa+pZeTu2774WGieikqTAiEAgJ+NOLP7APCcmGXhrL3k\nZVz7NMHGVaUJbxQCgSscb+s=\n-----END CERTIFICATE-----\n";

    fn doc(remove_defaults: bool) -> String {
        let indented: String = CERT.lines().map(|l| format!("      {l}\n")).collect();
        format!(
            "ca_certs:\n  remove_defaults: {remove_defaults}\n  trusted:\n    - |\n{indented}    - not a certificate\n"
        )
    }

    #[test]
    fn only_pem_certificates_are_taken() {
        assert_eq!(check_pem(&format!("\n  {CERT}")).unwrap(), CERT);
        for (bad, why) in [
            ("not a certificate", "must start"),
            (
                &CERT.replace("CERTIFICATE-----\n", "PRIVATE KEY-----\n"),
                "must start",
            ),
            (&CERT.replacen("\n", "\nrm -rf /\n", 1), "base64"),
            (&CERT.replacen("\n", "\nAAA\n", 1), "cut short"),
            (&"A".repeat(MAX_CERT_BYTES + 1), "over"),
        ] {
            let e = check_pem(bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn freebsd_adds_to_certctls_search_path_and_rehashes_once() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("usr/local/share/certs");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{PREFIX}3.pem")), CERT).unwrap();
        std::fs::write(dir.join("someone-else.pem"), CERT).unwrap();
        let p = plan_in(Platform::Freebsd, t.path(), &doc(false), plan);
        let file = format!("/usr/local/share/certs/{PREFIX}0.pem");
        assert_eq!(written(&p, &file).unwrap(), CERT);
        assert!(p
            .actions
            .iter()
            .any(|a| matches!(a, Action::Remove { path, .. }
            if path == &format!("/usr/local/share/certs/{PREFIX}3.pem"))));
        assert_eq!(argvs(&p), vec![vec!["certctl", "rehash"]]);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].item, "ca_certs.trusted[1]");
        assert!(dir.join("someone-else.pem").exists());
        let again = plan_in(Platform::Freebsd, t.path(), &doc(false), plan);
        assert!(again.actions.is_empty(), "{:?}", again.actions);
        let p = plan_in(Platform::Freebsd, t.path(), &doc(true), plan);
        assert!(p.errors.iter().any(|e| e.item == "ca_certs.remove_defaults"
            && e.reason.contains("not supported on freebsd")));
    }

    #[test]
    fn netbsd_adds_a_path_to_certs_conf_and_remove_defaults_comments_the_others_out() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc/openssl")).unwrap();
        let conf =
            "netbsd-certctl 20230816\n\n# the Mozilla set\npath /usr/share/certs/mozilla/server\n";
        std::fs::write(t.path().join("etc/openssl/certs.conf"), conf).unwrap();
        let p = plan_in(Platform::Netbsd, t.path(), &doc(true), plan);
        assert_eq!(
            written(&p, "/etc/openssl/certs.conf").unwrap(),
            format!("netbsd-certctl 20230816\n\n# the Mozilla set\n{DISABLED}path /usr/share/certs/mozilla/server\npath /etc/openssl/wisp-trusted\n")
        );
        assert_eq!(
            written(&p, &format!("/etc/openssl/wisp-trusted/{PREFIX}0.pem")).unwrap(),
            CERT
        );
        assert_eq!(argvs(&p), vec![vec!["certctl", "rehash"]]);
        assert!(plan_in(Platform::Netbsd, t.path(), &doc(true), plan)
            .actions
            .is_empty());
        // Without remove_defaults the system's set is searched again.
        let p = plan_in(Platform::Netbsd, t.path(), &doc(false), plan);
        assert_eq!(
            written(&p, "/etc/openssl/certs.conf").unwrap(),
            format!("{conf}path /etc/openssl/wisp-trusted\n")
        );
    }

    #[test]
    fn openbsd_keeps_its_bundle_and_adds_a_block() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc/ssl")).unwrap();
        let system =
            "### the system's set\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        std::fs::write(t.path().join("etc/ssl/cert.pem"), system).unwrap();
        let p = plan_in(Platform::Openbsd, t.path(), &doc(false), plan);
        assert_eq!(
            written(&p, "/etc/ssl/cert.pem").unwrap(),
            format!("{system}{BEGIN}\n{CERT}{END}\n")
        );
        assert!(argvs(&p).is_empty());
        assert!(plan_in(Platform::Openbsd, t.path(), &doc(false), plan)
            .actions
            .is_empty());
        // remove_defaults: the block alone, the system's bundle kept aside once.
        let p = plan_in(Platform::Openbsd, t.path(), &doc(true), plan);
        assert_eq!(written(&p, "/etc/ssl/cert.pem.wisp-orig").unwrap(), system);
        assert_eq!(
            written(&p, "/etc/ssl/cert.pem").unwrap(),
            format!("{BEGIN}\n{CERT}{END}\n")
        );
        assert!(plan_in(Platform::Openbsd, t.path(), &doc(true), plan)
            .actions
            .is_empty());
        // And back.
        let p = plan_in(Platform::Openbsd, t.path(), &doc(false), plan);
        assert_eq!(
            written(&p, "/etc/ssl/cert.pem").unwrap(),
            format!("{system}{BEGIN}\n{CERT}{END}\n")
        );
    }
}
