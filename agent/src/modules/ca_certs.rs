//! `ca_certs` (cloud-init's cc_ca_certs; `ca-certs` too): `trusted` certificates become trust
//! anchors the system's TLS clients use, and `remove_defaults` drops the system's own set.
//! Runs in the network stage before anything of wisp's that fetches over TLS. Once per
//! instance.
//!
//! - FreeBSD: each certificate in /usr/local/share/certs (a directory of certctl(8)'s default
//!   search path) after a `Certificate:` header line (the shell certctl of FreeBSD 14 counts
//!   those lines and skips a file with none), then `certctl rehash`. A certificate taken away
//!   is removed from /etc/ssl/certs as well: the C certctl of FreeBSD 15 reads that store back
//!   on each rehash. `remove_defaults` puts a copy of each file of the base set
//!   (/usr/share/certs/trusted) in /usr/share/certs/untrusted, which the shell certctl of
//!   14.x (`UNTRUSTPATH`) and the C certctl of 15 both read as untrusted, then rehashes;
//!   without it the copies (and certctl's installed untrusted copies of them) are removed.
//! - NetBSD (10+): each certificate in /etc/openssl/wisp-trusted, a `path` line for it in
//!   /etc/openssl/certs.conf, then `certctl rehash`; `remove_defaults` comments out the other
//!   `path` lines (the Mozilla set). No certs.conf (NetBSD 9: no certctl) or a `manual` one
//!   is an error, and nothing is written.
//! - OpenBSD: the certificates in a marked block at the end of /etc/ssl/cert.pem; with
//!   `remove_defaults` the file is the block alone, the original kept once as
//!   /etc/ssl/cert.pem.wisp-orig.
//!
//! An entry with several certificates is one file per certificate. On a retry (an earlier
//! boot started the module and did not finish) certctl runs even when the files are right.
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

/// The certificates of one `trusted` entry in PEM, each normalised on its own (lines trimmed,
/// ending in a newline): an entry may hold a chain.
pub fn split_pems(text: &str) -> Result<Vec<String>, String> {
    check_pem(text)?;
    let mut certs = Vec::new();
    let mut cur = String::new();
    for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        cur.push_str(l);
        cur.push('\n');
        if l == END_CERT {
            certs.push(std::mem::take(&mut cur));
        }
    }
    Ok(certs)
}

/// The base64 of a PEM certificate's body, on one line: the same certificate whatever its
/// line lengths.
fn pem_body(text: &str) -> String {
    let mut inside = false;
    let mut body = String::new();
    for l in text.lines().map(str::trim) {
        match l {
            BEGIN_CERT => inside = true,
            END_CERT => inside = false,
            l if inside => body.push_str(l),
            _ => {}
        }
    }
    body
}

/// A certificate file of wisp's in a certctl directory: a text header with a `Certificate:`
/// line before the PEM, as the system's own files have (FreeBSD's shell certctl skips a file
/// without one; PEM readers skip text before BEGIN).
pub fn certctl_file(item: &str, pem: &str) -> String {
    format!("Certificate:\n    Added by wisp from cloud-config ({item}).\n{pem}")
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

/// Plans the module; on a `retry` the trust store is rebuilt even when the files are right
/// already (the run that wrote them may have stopped before its rehash).
pub fn plan(inp: &Inputs<'_>, retry: bool, out: &mut Planned) {
    let Some(cfg) = &inp.config.ca_certs else {
        return;
    };
    // Each certificate with the entry it came from.
    let mut certs: Vec<(String, String)> = Vec::new();
    for (i, c) in cfg.trusted.iter().enumerate().take(MAX_CERTS) {
        match split_pems(c) {
            Ok(pems) => {
                let many = pems.len() > 1;
                for (j, pem) in pems.into_iter().enumerate() {
                    let item = if many {
                        format!("ca_certs.trusted[{i}] certificate {}", j + 1)
                    } else {
                        format!("ca_certs.trusted[{i}]")
                    };
                    certs.push((item, pem));
                }
            }
            Err(e) => out.error(NAME, &format!("ca_certs.trusted[{i}]"), e),
        }
    }
    if certs.len() > MAX_CERTS {
        // Entries holding several certificates (a chain) can pass the limit: each left out is
        // named.
        for (item, _) in certs.drain(MAX_CERTS..) {
            out.error(
                NAME,
                &item,
                format!("more than {MAX_CERTS} certificates in all: not added"),
            );
        }
    }
    if cfg.trusted.len() > MAX_CERTS {
        out.error(
            NAME,
            "ca_certs.trusted",
            format!("more than {MAX_CERTS} entries: the rest are not added"),
        );
    }
    let facts = inp.backend.facts();
    match facts.trust {
        TrustStore::Certctl {
            dir,
            config,
            installed,
            untrust,
        } => {
            if cfg.remove_defaults && config.is_none() && untrust.is_none() {
                out.error(
                    NAME,
                    "ca_certs.remove_defaults",
                    format!(
                        "not implemented by wisp on {}: the system's certificates stay trusted",
                        facts.name
                    ),
                );
            }
            let store = Store {
                dir,
                config,
                installed,
                untrust,
            };
            certctl(inp, out, &certs, &store, cfg.remove_defaults, retry);
        }
        TrustStore::Bundle(file) => {
            let pems: Vec<String> = certs.into_iter().map(|(_, p)| p).collect();
            bundle(inp, out, &pems, file, cfg.remove_defaults)
        }
        TrustStore::None => out.warnings.push(format!(
            "ca_certs: not applicable on {}: wisp manages no trust store there",
            facts.name
        )),
    }
}

/// A certctl trust store (see [`TrustStore::Certctl`]).
struct Store<'a> {
    dir: &'a str,
    config: Option<&'a str>,
    installed: Option<&'a str>,
    untrust: Option<crate::platform::Untrust>,
}

/// Whether NetBSD's certs.conf leaves /etc/openssl/certs to the administrator: a `manual`
/// line (certctl(8)), with which `certctl rehash` changes nothing.
fn is_manual(certs_conf: &str) -> bool {
    certs_conf
        .lines()
        .any(|l| l.split_whitespace().next() == Some("manual"))
}

fn certctl(
    inp: &Inputs<'_>,
    out: &mut Planned,
    certs: &[(String, String)],
    store: &Store<'_>,
    remove_defaults: bool,
    retry: bool,
) {
    let wheel = inp.backend.wheel();
    let dir = store.dir;
    // certs.conf first: without a usable one certctl would not take the certificates, and
    // nothing is written.
    let mut conf_write = None;
    if let Some(config) = store.config {
        match out.try_current_text(inp.root, config, None) {
            Ok(text) if text.is_empty() => {
                return out.error(
                    NAME,
                    config,
                    format!("{config} is missing: this system has no certctl (NetBSD 10 or later has): nothing changed"),
                )
            }
            Ok(text) if is_manual(&text) => {
                return out.error(
                    NAME,
                    config,
                    format!("{config} says `manual`: certctl leaves the trust store to the administrator: nothing changed"),
                )
            }
            Ok(text) => {
                let new = certs_conf(&text, dir, remove_defaults);
                if new != text {
                    conf_write = Some((config, new));
                }
            }
            Err(e) => return out.error(NAME, config, format!("not changed: {e}")),
        }
    }
    let before = out.actions.len();
    // The certificates a file of wisp's held before this run, where it changes.
    let mut dropped = Vec::new();
    for (n, (item, pem)) in certs.iter().enumerate() {
        let path = format!("{dir}/{PREFIX}{n}.pem");
        let text = certctl_file(item, pem);
        let current = out.current(inp.root, &path);
        if current.as_deref() != Some(text.as_bytes()) {
            if let Some(old) = &current {
                dropped.push(pem_body(&String::from_utf8_lossy(old)));
            }
            out.actions.push(Action::write(
                NAME,
                item.clone(),
                &path,
                text.into_bytes(),
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
                    if let Some(old) = out.current(inp.root, &path) {
                        dropped.push(pem_body(&String::from_utf8_lossy(&old)));
                    }
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
    let kept: Vec<String> = certs.iter().map(|(_, p)| pem_body(p)).collect();
    if let Some(installed) = store.installed {
        dropped.retain(|b| !b.is_empty() && !kept.contains(b));
        untrust_installed(inp, out, installed, &dropped);
    }
    if let Some(untrust) = store.untrust {
        untrust_defaults(inp, out, &untrust, remove_defaults, &kept);
    }
    if let Some((config, new)) = conf_write {
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
    if out.actions.len() > before || retry {
        out.actions
            .push(Action::exec(NAME, "certctl", inp.backend.trust_rehash()));
    }
}

/// The prefix of wisp's copies of the base set in the untrusted directory.
pub const UNTRUSTED_PREFIX: &str = "wisp-default-";

/// FreeBSD's `remove_defaults`: a copy of each file of the base set (`untrust.base`) in
/// `untrust.dir`, which both certctls read as untrusted, so that `certctl rehash` leaves them
/// out of /etc/ssl/certs; a certificate the document trusts itself is not copied. Without
/// `remove_defaults` (or once a base file is gone) wisp's copies are removed, with the
/// untrusted copies certctl installed of them (the C certctl reads those back), and the base
/// set is trusted again on the rehash.
fn untrust_defaults(
    inp: &Inputs<'_>,
    out: &mut Planned,
    untrust: &crate::platform::Untrust,
    remove_defaults: bool,
    kept: &[String],
) {
    let wheel = inp.backend.wheel();
    let cert_file = |n: &str| [".pem", ".crt", ".cer"].iter().any(|e| n.ends_with(e));
    let mut wanted: Vec<String> = Vec::new();
    if remove_defaults {
        let names = match crate::rootfs::list(inp.root, untrust.base) {
            Ok(n) => n.unwrap_or_default(),
            Err(e) => return out.error(NAME, untrust.base, e),
        };
        if names.is_empty() {
            out.warnings.push(format!(
                "ca_certs.remove_defaults: {} has no certificates: nothing to distrust",
                untrust.base
            ));
        }
        for n in names.iter().filter(|n| cert_file(n)) {
            let base = format!("{}/{n}", untrust.base);
            let text = match crate::rootfs::read(inp.root, &base, None) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    out.error(NAME, &base, e);
                    continue;
                }
            };
            let body = pem_body(&String::from_utf8_lossy(&text));
            if body.is_empty() || kept.contains(&body) {
                continue;
            }
            let copy = format!("{}/{UNTRUSTED_PREFIX}{n}", untrust.dir);
            if out.current(inp.root, &copy).as_deref() != Some(&text[..]) {
                out.actions.push(Action::write(
                    NAME,
                    "ca_certs.remove_defaults",
                    &copy,
                    text,
                    0o444,
                    ("root", wheel),
                    false,
                ));
            }
            wanted.push(copy);
        }
    }
    // Copies of an earlier run no longer wanted.
    let names = match crate::rootfs::list(inp.root, untrust.dir) {
        Ok(n) => n.unwrap_or_default(),
        Err(e) => return out.error(NAME, untrust.dir, e),
    };
    let mut dropped = Vec::new();
    for n in names.iter().filter(|n| n.starts_with(UNTRUSTED_PREFIX)) {
        let path = format!("{}/{n}", untrust.dir);
        if wanted.contains(&path) {
            continue;
        }
        if let Some(old) = out.current(inp.root, &path) {
            dropped.push(pem_body(&String::from_utf8_lossy(&old)));
        }
        out.actions.push(Action::Remove {
            module: NAME,
            item: "ca_certs.remove_defaults".into(),
            path,
        });
    }
    dropped.retain(|b| !b.is_empty());
    untrust_installed(inp, out, untrust.installed, &dropped);
}

/// Removes the copies certctl installed of certificates wisp no longer trusts: FreeBSD 15's
/// certctl reads its own store back on each rehash, so the copy would keep them trusted. Its
/// files are `<subject hash>.<n>` (the shell certctl's links, which it deletes itself on each
/// rehash, are not files and are left to it).
fn untrust_installed(inp: &Inputs<'_>, out: &mut Planned, installed: &str, dropped: &[String]) {
    if dropped.is_empty() {
        return;
    }
    let names = match crate::rootfs::list(inp.root, installed) {
        Ok(n) => n.unwrap_or_default(),
        Err(e) => return out.error(NAME, installed, e),
    };
    for n in names {
        let hashed = n.split_once('.').is_some_and(|(h, c)| {
            h.len() == 8
                && h.bytes().all(|b| b.is_ascii_hexdigit())
                && !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_digit())
        });
        if !hashed {
            continue;
        }
        let path = format!("{installed}/{n}");
        let Ok(Some(text)) = crate::rootfs::read(inp.root, &path, None) else {
            continue;
        };
        if dropped.contains(&pem_body(&String::from_utf8_lossy(&text))) {
            out.actions.push(Action::Remove {
                module: NAME,
                item: path.clone(),
                path,
            });
        }
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

/// `text` without wisp's block; a BEGIN with no END after it is an error (what follows is
/// not wisp's to drop).
fn without_block(text: &str) -> Result<String, String> {
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
    if inside {
        return Err(format!(
            "wisp's block has a BEGIN line and no {END:?} line after it: edit the file by hand"
        ));
    }
    Ok(out)
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
    let mut system = match without_block(&text) {
        Ok(s) => s,
        Err(e) => return out.error(NAME, file, format!("not changed: {e}")),
    };
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
        plan(inp, run.extras.is_retry(NAME), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{argvs, plan_in, written};
    use crate::platform::Platform;

    /// A self-signed test certificate (CN "wisp test CA one").
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBjTCCATOgAwIBAgIUN1AvqrOgJvHa8dBCQWxMmhkCC6cwCgYIKoZIzj0EAwIw\nGzEZMBcGA1UEAwwQd2lzcCB0ZXN0IENBIG9uZTAgFw0yNjEyMDEwMTI2NDFaGA8y\nMTI2MTEwNzAxMjY0MVowGzEZMBcGA1UEAwwQd2lzcCB0ZXN0IENBIG9uZTBZMBMG\nByqGSM49AgEGCCqGSM49AwEHA0IABJs+WimOxJ7AcuFUYBdR2D2BznEU/pwYe0c1\nFVpVyVDAy+Cz0T1FejNARkRdoNopc5/UNEuIL07yP6q6cMYUP0qjUzBRMB0GA1Ud\nDgQWBBRctRUVJTuVBMBSOZ7vmtbjSceL8TAfBgNVHSMEGDAWgBRctRUVJTuVBMBS\nOZ7vmtbjSceL8TAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIC8r\nXsbLxAU0yfXPf6Zz8PEyNa+pZeTu2774WGieikqTAiEAgJ+NOLP7APCcmGXhrL3k\nZVz7NMHGVaUJbxQCgSscb+s=\n-----END CERTIFICATE-----\n";

    fn first(inp: &Inputs<'_>, out: &mut Planned) {
        plan(inp, false, out)
    }

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
        let p = plan_in(Platform::Freebsd, t.path(), &doc(false), first);
        let file = format!("/usr/local/share/certs/{PREFIX}0.pem");
        assert_eq!(
            written(&p, &file).unwrap(),
            certctl_file("ca_certs.trusted[0]", CERT)
        );
        assert!(p
            .actions
            .iter()
            .any(|a| matches!(a, Action::Remove { path, .. }
            if path == &format!("/usr/local/share/certs/{PREFIX}3.pem"))));
        assert_eq!(argvs(&p), vec![vec!["certctl", "rehash"]]);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].item, "ca_certs.trusted[1]");
        assert!(dir.join("someone-else.pem").exists());
        let again = plan_in(Platform::Freebsd, t.path(), &doc(false), first);
        assert!(again.actions.is_empty(), "{:?}", again.actions);
    }

    /// Final review of issue 13 (5): FreeBSD's remove_defaults copies the base set into
    /// /usr/share/certs/untrusted (which the shell certctl of 14.x and the C certctl of 15
    /// both read as untrusted) and rehashes; a certificate the document trusts is not copied;
    /// dropping remove_defaults removes the copies (and certctl's installed untrusted copy).
    #[test]
    fn freebsd_remove_defaults_distrusts_the_base_set_and_is_reversible() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let base = r.join("usr/share/certs/trusted");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::create_dir_all(r.join("usr/share/certs/untrusted")).unwrap();
        std::fs::create_dir_all(r.join("etc/ssl/untrusted")).unwrap();
        let base_other = format!("##\n## Some Root CA\nCertificate:\n    Data:\n{OTHER}");
        std::fs::write(base.join("Some_Root_CA.pem"), &base_other).unwrap();
        // The document trusts this one itself: it stays trusted.
        std::fs::write(
            base.join("Test_CA_One.pem"),
            format!("Certificate:\n{CERT}"),
        )
        .unwrap();
        std::fs::write(base.join("README"), "not a certificate file").unwrap();
        let p = plan_in(Platform::Freebsd, r, &doc(true), first);
        assert!(
            !p.errors
                .iter()
                .any(|e| e.item == "ca_certs.remove_defaults"),
            "{:?}",
            p.errors
        );
        let copy = format!("/usr/share/certs/untrusted/{UNTRUSTED_PREFIX}Some_Root_CA.pem");
        assert_eq!(written(&p, &copy).unwrap(), base_other);
        let untrusted: Vec<&str> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Write { path, .. } if path.starts_with("/usr/share/certs/untrusted") => {
                    Some(path.as_str())
                }
                _ => None,
            })
            .collect();
        assert_eq!(untrusted, [copy.as_str()]);
        assert_eq!(argvs(&p), vec![vec!["certctl", "rehash"]]);
        // As applied (and certctl's installed untrusted copy): a second run changes nothing.
        for a in &p.actions {
            if let Action::Write { path, content, .. } = a {
                let f = r.join(path.trim_start_matches('/'));
                std::fs::create_dir_all(f.parent().unwrap()).unwrap();
                std::fs::write(f, content).unwrap();
            }
        }
        std::fs::write(r.join("etc/ssl/untrusted/0123abcd.0"), OTHER).unwrap();
        let again = plan_in(Platform::Freebsd, r, &doc(true), first);
        assert!(again.actions.is_empty(), "{:?}", again.actions);
        // remove_defaults dropped: the copies go, the base set is trusted again.
        let p = plan_in(Platform::Freebsd, r, &doc(false), first);
        let removed: Vec<&str> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Remove { path, .. } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(removed, [copy.as_str(), "/etc/ssl/untrusted/0123abcd.0"]);
        assert_eq!(argvs(&p), vec![vec!["certctl", "rehash"]]);
    }

    #[test]
    fn netbsd_adds_a_path_to_certs_conf_and_remove_defaults_comments_the_others_out() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc/openssl")).unwrap();
        let conf =
            "netbsd-certctl 20230816\n\n# the Mozilla set\npath /usr/share/certs/mozilla/server\n";
        std::fs::write(t.path().join("etc/openssl/certs.conf"), conf).unwrap();
        let p = plan_in(Platform::Netbsd, t.path(), &doc(true), first);
        assert_eq!(
            written(&p, "/etc/openssl/certs.conf").unwrap(),
            format!("netbsd-certctl 20230816\n\n# the Mozilla set\n{DISABLED}path /usr/share/certs/mozilla/server\npath /etc/openssl/wisp-trusted\n")
        );
        assert_eq!(
            written(&p, &format!("/etc/openssl/wisp-trusted/{PREFIX}0.pem")).unwrap(),
            certctl_file("ca_certs.trusted[0]", CERT)
        );
        assert_eq!(argvs(&p), vec![vec!["certctl", "rehash"]]);
        assert!(plan_in(Platform::Netbsd, t.path(), &doc(true), first)
            .actions
            .is_empty());
        // Without remove_defaults the system's set is searched again.
        let p = plan_in(Platform::Netbsd, t.path(), &doc(false), first);
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
        let p = plan_in(Platform::Openbsd, t.path(), &doc(false), first);
        assert_eq!(
            written(&p, "/etc/ssl/cert.pem").unwrap(),
            format!("{system}{BEGIN}\n{CERT}{END}\n")
        );
        assert!(argvs(&p).is_empty());
        assert!(plan_in(Platform::Openbsd, t.path(), &doc(false), first)
            .actions
            .is_empty());
        // remove_defaults: the block alone, the system's bundle kept aside once.
        let p = plan_in(Platform::Openbsd, t.path(), &doc(true), first);
        assert_eq!(written(&p, "/etc/ssl/cert.pem.wisp-orig").unwrap(), system);
        assert_eq!(
            written(&p, "/etc/ssl/cert.pem").unwrap(),
            format!("{BEGIN}\n{CERT}{END}\n")
        );
        assert!(plan_in(Platform::Openbsd, t.path(), &doc(true), first)
            .actions
            .is_empty());
        // And back.
        let p = plan_in(Platform::Openbsd, t.path(), &doc(false), first);
        assert_eq!(
            written(&p, "/etc/ssl/cert.pem").unwrap(),
            format!("{system}{BEGIN}\n{CERT}{END}\n")
        );
    }

    /// A second test certificate's shape (only the PEM form is checked here).
    const OTHER: &str = "-----BEGIN CERTIFICATE-----\nAAAABBBB\n-----END CERTIFICATE-----\n";

    fn trusted_doc(certs: &[&str]) -> String {
        let mut doc = String::from("ca_certs:\n  trusted:\n");
        for c in certs {
            doc.push_str("    - |\n");
            for l in c.lines() {
                doc.push_str(&format!("      {l}\n"));
            }
        }
        doc
    }

    #[test]
    fn a_retry_rehashes_though_the_files_are_right_already() {
        let t = tempfile::tempdir().unwrap();
        let p = plan_in(Platform::Freebsd, t.path(), &trusted_doc(&[CERT]), first);
        assert_eq!(argvs(&p), vec![vec!["certctl", "rehash"]]);
        // The first run wrote the file and stopped before (or failed in) certctl.
        assert!(
            plan_in(Platform::Freebsd, t.path(), &trusted_doc(&[CERT]), first)
                .actions
                .is_empty()
        );
        let retry = plan_in(
            Platform::Freebsd,
            t.path(),
            &trusted_doc(&[CERT]),
            |i, o| plan(i, true, o),
        );
        assert_eq!(argvs(&retry), vec![vec!["certctl", "rehash"]]);
        assert_eq!(retry.actions.len(), 1);
    }

    #[test]
    fn a_chain_is_one_file_per_certificate_with_a_certificate_header() {
        let t = tempfile::tempdir().unwrap();
        let chain = format!("{CERT}{OTHER}");
        let p = plan_in(
            Platform::Freebsd,
            t.path(),
            &trusted_doc(&[&chain, CERT]),
            first,
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let dir = "/usr/local/share/certs";
        let files: Vec<String> = (0..3)
            .map(|n| written(&p, &format!("{dir}/{PREFIX}{n}.pem")).unwrap())
            .collect();
        assert_eq!(
            files,
            [
                certctl_file("ca_certs.trusted[0] certificate 1", CERT),
                certctl_file("ca_certs.trusted[0] certificate 2", OTHER),
                certctl_file("ca_certs.trusted[1]", CERT),
            ]
        );
        // FreeBSD 14's shell certctl takes a file with exactly one `Certificate:` line.
        for f in &files {
            assert_eq!(f.lines().filter(|l| *l == "Certificate:").count(), 1);
            assert_eq!(f.matches(BEGIN_CERT).count(), 1);
        }
    }

    /// Final review of issue 13 (9): certificates past the limit after chains are split are
    /// named in an error each, not dropped in silence.
    #[test]
    fn certificates_past_the_limit_are_named() {
        let t = tempfile::tempdir().unwrap();
        let chain = format!("{CERT}{OTHER}");
        let entries: Vec<&str> = (0..MAX_CERTS / 2 + 1).map(|_| chain.as_str()).collect();
        let p = plan_in(Platform::Freebsd, t.path(), &trusted_doc(&entries), first);
        let last = MAX_CERTS / 2;
        let errors: Vec<String> = p.errors.iter().map(|e| format!("{e:?}")).collect();
        assert_eq!(errors.len(), 2, "{errors:#?}");
        for n in [1, 2] {
            let item = format!("ca_certs.trusted[{last}] certificate {n}");
            assert!(
                errors
                    .iter()
                    .any(|e| e.contains(&item) && e.contains("not added")),
                "{item}: {errors:#?}"
            );
        }
    }

    #[test]
    fn freebsd_untrusts_the_installed_copy_of_a_certificate_taken_away() {
        let t = tempfile::tempdir().unwrap();
        plan_in(
            Platform::Freebsd,
            t.path(),
            &trusted_doc(&[CERT, OTHER]),
            first,
        );
        // What FreeBSD 15's certctl rehash installed: the PEM in 64-column lines.
        let store = t.path().join("etc/ssl/certs");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(store.join("0a1b2c3d.0"), CERT).unwrap();
        std::fs::write(store.join("99999999.0"), OTHER).unwrap();
        std::fs::write(
            store.join("11111111.0"),
            "-----BEGIN CERTIFICATE-----\nCCCC\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let p = plan_in(Platform::Freebsd, t.path(), &trusted_doc(&[OTHER]), first);
        let removed: Vec<&str> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Remove { path, .. } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            removed,
            [
                format!("/usr/local/share/certs/{PREFIX}1.pem").as_str(),
                "/etc/ssl/certs/0a1b2c3d.0"
            ]
        );
        assert_eq!(argvs(&p), vec![vec!["certctl", "rehash"]]);
    }

    #[test]
    fn netbsd_without_a_usable_certs_conf_changes_nothing() {
        let t = tempfile::tempdir().unwrap();
        let p = plan_in(Platform::Netbsd, t.path(), &trusted_doc(&[CERT]), first);
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert_eq!(p.errors.len(), 1);
        assert!(p.errors[0].reason.contains("is missing"), "{:?}", p.errors);
        std::fs::create_dir_all(t.path().join("etc/openssl")).unwrap();
        std::fs::write(
            t.path().join("etc/openssl/certs.conf"),
            "netbsd-certctl 20230816\nmanual\n",
        )
        .unwrap();
        let p = plan_in(Platform::Netbsd, t.path(), &trusted_doc(&[CERT]), first);
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert_eq!(p.errors.len(), 1);
        assert!(p.errors[0].reason.contains("`manual`"), "{:?}", p.errors);
    }

    #[test]
    fn openbsd_leaves_a_bundle_with_a_cut_block_alone() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc/ssl")).unwrap();
        let cut = format!("{BEGIN}\n{CERT}### the system's set\n{OTHER}");
        std::fs::write(t.path().join("etc/ssl/cert.pem"), &cut).unwrap();
        for doc in [trusted_doc(&[CERT]), "ca_certs: {}\n".to_string()] {
            let p = plan_in(Platform::Openbsd, t.path(), &doc, first);
            assert!(p.actions.is_empty(), "{:?}", p.actions);
            assert_eq!(p.errors[0].item, "/etc/ssl/cert.pem");
            assert!(p.errors[0].reason.contains("no \"# END wisp ca_certs\""));
        }
    }
}
