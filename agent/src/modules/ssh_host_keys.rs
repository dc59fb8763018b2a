//! SSH host keys (the host-key part of cloud-init's cc_ssh): an image's keys would be every
//! machine's keys, so on a new instance `ssh_deletekeys` (default true) removes
//! `/etc/ssh/ssh_host_*key*`; `ssh_keys` installs given keys and certificates (private keys
//! 0600, public halves and certificates 0644, `HostCertificate` lines in sshd_config), else
//! fresh keys of `ssh_genkeytypes` are made — by wisp where the OS does not make them when sshd
//! starts (OpenBSD makes them and starts sshd before wisp runs: wisp makes the new ones and
//! reloads a running sshd). A separate module from `ssh`, so that a failed authorized_keys
//! write never makes the keys be deleted again at the next boot. Stage network (before sshd on
//! NetBSD and FreeBSD), once per instance: a reboot keeps the keys.

use std::collections::BTreeSet;

use yaml_serde::Value;

use super::{Frequency, Inputs, Planned, Stage};
use crate::cloudconfig::lenient::{child, describe, entries, Reader};
use crate::plan::Action;

pub const NAME: &str = "ssh_host_keys";
pub const STAGE: Stage = Stage::Network;
pub const FREQUENCY: Frequency = Frequency::PerInstance;

const SSH_DIR: &str = "/etc/ssh";
const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";
/// cloud-init's default `ssh_genkeytypes` (without dsa, which OpenSSH no longer makes).
pub const DEFAULT_GENKEYTYPES: &[&str] = &["rsa", "ecdsa", "ed25519"];
/// The key types `ssh_keys` takes, as `TYPE_private`, `TYPE_public`, `TYPE_certificate`.
pub const KEY_TYPES: &[&str] = &["rsa", "ecdsa", "ed25519"];
/// The largest value of one `ssh_keys` entry: an RSA-16384 private key is about 13 KB.
pub const MAX_KEY_BYTES: usize = 64 << 10;

/// The cloud-config keys this module (and keys_to_console, and the ssh module's
/// `allow_public_ssh_keys`) read.
pub const KEYS: &[&str] = &[
    "ssh_deletekeys",
    "ssh_genkeytypes",
    "ssh_keys",
    "ssh_quiet_keygen",
    "ssh_publish_hostkeys",
    "no_ssh_fingerprints",
    "ssh_fp_console_blacklist",
    "ssh_key_console_blacklist",
    "allow_public_ssh_keys",
];

/// One half of a host key pair, or a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPart {
    Private,
    Public,
    Certificate,
}

/// Where host key `key_type`'s public half is (phone_home posts it).
pub fn public_key_path(key_type: &str) -> String {
    KeyPart::Public.file(key_type).0
}

impl KeyPart {
    /// The file of key `key_type`'s part, and its mode.
    fn file(self, key_type: &str) -> (String, u32) {
        let base = format!("{SSH_DIR}/ssh_host_{key_type}_key");
        match self {
            KeyPart::Private => (base, 0o600),
            KeyPart::Public => (format!("{base}.pub"), 0o644),
            KeyPart::Certificate => (format!("{base}-cert.pub"), 0o644),
        }
    }
}

/// A host key given in `ssh_keys`. `Debug` never shows a private key.
#[derive(Clone, PartialEq, Eq)]
pub struct GivenKey {
    pub key_type: String,
    pub part: KeyPart,
    pub text: String,
}

impl std::fmt::Debug for GivenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}_{:?} ({} bytes)",
            self.key_type,
            self.part,
            self.text.len()
        )
    }
}

/// The host-key settings of a cloud-config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostKeys {
    pub delete: Option<bool>,
    pub genkeytypes: Option<Vec<String>>,
    /// `None`: no `ssh_keys` (keys are made); `Some`: the valid entries given.
    pub keys: Option<Vec<GivenKey>>,
    pub no_fingerprints: Option<bool>,
    pub fp_blacklist: Option<Vec<String>>,
    pub key_blacklist: Option<Vec<String>>,
    /// `false`: the datasource's public keys are not given to the default user.
    pub allow_public_ssh_keys: Option<bool>,
}

/// Whether `text` is a private key in PEM or OpenSSH form (BEGIN and END lines of a private
/// key, base64 between them).
fn is_private_key_text(text: &str) -> bool {
    let lines: Vec<&str> = text.trim().lines().map(str::trim).collect();
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
        return false;
    };
    let label = |l: &str, tag: &str| {
        l.strip_prefix(tag)
            .and_then(|r| r.strip_suffix("-----"))
            .is_some_and(|k| k.ends_with("PRIVATE KEY"))
    };
    lines.len() >= 3
        && label(first, "-----BEGIN ")
        && label(last, "-----END ")
        && lines[1..lines.len() - 1].iter().all(|l| {
            l.is_empty()
                || l.contains(": ")
                || l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
        })
}

/// The key blob of a public key or certificate line (`TYPE BASE64 [COMMENT]`), and its type.
pub fn public_blob(line: &str) -> Option<(String, Vec<u8>)> {
    use base64::Engine;
    let mut f = line.split_whitespace();
    let key_type = f.next()?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(f.next()?)
        .ok()?;
    // The blob starts with its own type, as a length-prefixed string.
    (ssh_string(&blob)?.0 == key_type.as_bytes()).then(|| (key_type.to_string(), blob))
}

/// A length-prefixed string of SSH's wire format (a key blob's fields), and what follows it.
pub fn ssh_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
    Some((b.get(4..4 + len)?, b.get(4 + len..)?))
}

/// The public key in an OpenSSH private key (`openssh-key-v1` keeps it in the clear), as a
/// `.pub` line; `None` for other forms (PEM), whose public half sshd does not need.
fn public_of_openssh_private(text: &str) -> Option<String> {
    use base64::Engine;
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let string = ssh_string;
    let rest = raw.strip_prefix(b"openssh-key-v1\0")?;
    // Cipher, KDF and its options, then the number of keys (one for host keys).
    let (_, rest) = string(rest)?;
    let (_, rest) = string(rest)?;
    let (_, rest) = string(rest)?;
    if rest.get(..4)? != [0, 0, 0, 1] {
        return None;
    }
    let (blob, _) = string(&rest[4..])?;
    let key_type = std::str::from_utf8(string(blob)?.0).ok()?;
    Some(format!(
        "{key_type} {}\n",
        base64::engine::general_purpose::STANDARD.encode(blob)
    ))
}

/// Reads `ssh_keys`: `TYPE_private|public|certificate` for rsa, ecdsa and ed25519. A bad
/// entry is an error naming it (never showing a private key); the others are kept.
fn read_ssh_keys(r: &mut Reader<'_>, path: &str, v: &Value) -> Option<Vec<GivenKey>> {
    let Some(map) = v.as_mapping() else {
        r.error(path, format!("expected a map, got {}", describe(v)));
        return None;
    };
    let mut keys = Vec::new();
    for (key, raw, val) in entries(r, path, map) {
        let p = child(path, &raw);
        let parsed = key.rsplit_once('_').and_then(|(t, part)| {
            let part = match part {
                "private" => KeyPart::Private,
                "public" => KeyPart::Public,
                "certificate" => KeyPart::Certificate,
                _ => return None,
            };
            Some((t.to_string(), part))
        });
        let Some((key_type, part)) = parsed.filter(|(t, _)| KEY_TYPES.contains(&t.as_str())) else {
            r.error(
                &p,
                format!(
                    "unknown host key entry: expected TYPE_private, TYPE_public or \
                     TYPE_certificate with TYPE one of {} (dsa is no longer supported)",
                    KEY_TYPES.join(", ")
                ),
            );
            continue;
        };
        let Some(text) = val.as_str() else {
            r.error(&p, format!("expected a string, got {}", describe(val)));
            continue;
        };
        if text.len() > MAX_KEY_BYTES {
            r.error(
                &p,
                format!("larger than {} KiB: refused", MAX_KEY_BYTES >> 10),
            );
            continue;
        }
        let ok = match part {
            KeyPart::Private => is_private_key_text(text),
            KeyPart::Public | KeyPart::Certificate => {
                let lines: Vec<&str> = text.trim().lines().collect();
                lines.len() == 1
                    && public_blob(lines[0]).is_some_and(|(t, _)| {
                        t.ends_with("-cert-v01@openssh.com") == (part == KeyPart::Certificate)
                    })
            }
        };
        if !ok {
            let what = match part {
                KeyPart::Private => "not a private key in PEM or OpenSSH form",
                KeyPart::Public => "not one public key line (TYPE BASE64 [COMMENT])",
                KeyPart::Certificate => {
                    "not one host certificate line (TYPE-cert-v01@openssh.com BASE64)"
                }
            };
            r.error(&p, what);
            continue;
        }
        keys.push(GivenKey {
            key_type,
            part,
            text: text.to_string(),
        });
    }
    Some(keys)
}

/// Reads one of [`KEYS`] into `hk`.
pub(crate) fn read_key(hk: &mut HostKeys, r: &mut Reader<'_>, key: &str, path: &str, v: &Value) {
    let list = |r: &mut Reader<'_>| Some(r.string_list(path, v));
    match key {
        "ssh_deletekeys" => hk.delete = r.bool(path, v),
        "ssh_genkeytypes" => {
            let types = r.string_list(path, v);
            let mut ok = Vec::new();
            for (i, t) in types.into_iter().enumerate() {
                if KEY_TYPES.contains(&t.as_str()) {
                    ok.push(t);
                } else if ["dsa", "ecdsa-sk", "ed25519-sk"].contains(&t.as_str()) {
                    r.warn(
                        &format!("{path}[{i}]"),
                        format!("{t} host keys are not made (dsa is obsolete, -sk keys need a security key)"),
                    );
                } else {
                    r.error(
                        &format!("{path}[{i}]"),
                        format!("unknown key type {t:?}: expected {}", KEY_TYPES.join(", ")),
                    );
                }
            }
            hk.genkeytypes = Some(ok);
        }
        "ssh_keys" => hk.keys = read_ssh_keys(r, path, v),
        "no_ssh_fingerprints" => hk.no_fingerprints = r.bool(path, v),
        "ssh_fp_console_blacklist" => hk.fp_blacklist = list(r),
        "ssh_key_console_blacklist" => hk.key_blacklist = list(r),
        "allow_public_ssh_keys" => hk.allow_public_ssh_keys = r.bool(path, v),
        "ssh_quiet_keygen" => {
            // ssh-keygen always runs quiet; the fingerprints are printed by keys_to_console.
            r.bool(path, v);
        }
        // cloud-init hands them to the datasource, and its MAAS datasource publishes nothing
        // (MAAS has no endpoint for host keys): accepted, nothing to do.
        "ssh_publish_hostkeys" if !v.is_mapping() && !v.is_null() => {
            r.error(path, format!("expected a map, got {}", describe(v)));
        }
        _ => {}
    }
}

/// Where sshd keeps its process id.
const SSHD_PID: &str = "/var/run/sshd.pid";

/// Whether a pid file's content (as [`crate::rootfs::read`] gives it) names a live process.
fn process_alive(pid_file: &Result<Option<Vec<u8>>, String>) -> bool {
    let Ok(Some(text)) = pid_file else {
        return false;
    };
    let Some(pid) = String::from_utf8_lossy(text)
        .trim()
        .parse::<libc::pid_t>()
        .ok()
        .filter(|p| *p > 0)
    else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether `name` is one of the files cloud-init deletes: `ssh_host_*key*`.
fn is_host_key_file(name: &str) -> bool {
    name.strip_prefix("ssh_host_")
        .is_some_and(|rest| rest.contains("key"))
}

/// `HostCertificate PATH` for each certificate, added to sshd_config before its first `Match`
/// block when it is not there yet.
fn add_host_certificates(current: &str, certs: &[String]) -> Option<String> {
    let lines: Vec<&str> = current.lines().collect();
    let have: BTreeSet<String> = lines
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() == 2 && f[0].eq_ignore_ascii_case("hostcertificate"))
        .map(|f| f[1].to_string())
        .collect();
    let missing: Vec<&String> = certs.iter().filter(|c| !have.contains(*c)).collect();
    if missing.is_empty() {
        return None;
    }
    let first_match = lines
        .iter()
        .position(|l| l.trim_start().to_ascii_lowercase().starts_with("match "))
        .unwrap_or(lines.len());
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    for (i, c) in missing.into_iter().enumerate() {
        out.insert(first_match + i, format!("HostCertificate {c}"));
    }
    Some(out.join("\n") + "\n")
}

pub fn plan(inp: &Inputs<'_>, out: &mut Planned) {
    let hk = &inp.config.host_keys;
    let root = inp.root;
    let owner = ("root", inp.backend.wheel());
    let names = match crate::rootfs::list(root, SSH_DIR) {
        Ok(n) => n,
        Err(e) => {
            out.error(NAME, SSH_DIR, format!("{e}; host keys left alone"));
            return;
        }
    };
    let mut present: BTreeSet<String> = names.iter().flatten().cloned().collect();
    let mut changed = false;
    if hk.delete.unwrap_or(true) {
        // Files and links only: a directory of that name is not a key, and a removal that is
        // refused would leave the module undone — and the new keys deleted at the next boot.
        let is_dir = |name: &str| {
            let path = format!("{SSH_DIR}/{name}");
            !crate::rootfs::is_link(root, &path, None)
                && crate::rootfs::dir_exists(root, &path, None) == Ok(true)
        };
        for name in names
            .iter()
            .flatten()
            .filter(|n| is_host_key_file(n) && !is_dir(n))
        {
            out.actions.push(Action::Remove {
                module: NAME,
                item: name.clone(),
                path: format!("{SSH_DIR}/{name}"),
            });
            present.remove(name);
            changed = true;
        }
    }
    if let Some(keys) = &hk.keys {
        let mut certs = Vec::new();
        for k in keys {
            let (path, mode) = k.part.file(&k.key_type);
            let item = format!("{}_{}", k.key_type, format!("{:?}", k.part).to_lowercase());
            let mut text = k.text.clone();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            out.actions.push(Action::write(
                NAME,
                item,
                &path,
                text.into_bytes(),
                mode,
                owner,
                false,
            ));
            if k.part == KeyPart::Certificate {
                certs.push(path);
            }
            changed = true;
        }
        // A private key given alone: its public half, for the fingerprints.
        for k in keys.iter().filter(|k| k.part == KeyPart::Private) {
            let given_public = keys
                .iter()
                .any(|p| p.key_type == k.key_type && p.part == KeyPart::Public);
            if given_public {
                continue;
            }
            let (path, mode) = KeyPart::Public.file(&k.key_type);
            match public_of_openssh_private(&k.text) {
                Some(line) => out.actions.push(Action::write(
                    NAME,
                    format!("{}_public", k.key_type),
                    &path,
                    line.into_bytes(),
                    mode,
                    owner,
                    false,
                )),
                None => out.warnings.push(format!(
                    "{NAME}: {}_public: not given, and not derived from a PEM private key: \
                     sshd does not need it, but no fingerprint is shown for it",
                    k.key_type
                )),
            }
        }
        if !certs.is_empty() {
            let current = match out.try_current_text(root, SSHD_CONFIG, None) {
                Ok(c) => c,
                Err(e) => {
                    out.error(NAME, "HostCertificate", format!("{e}, not configured"));
                    String::new()
                }
            };
            if let Some(text) = add_host_certificates(&current, &certs) {
                out.actions.push(Action::write(
                    NAME,
                    "HostCertificate",
                    SSHD_CONFIG,
                    text.into_bytes(),
                    0o644,
                    owner,
                    false,
                ));
            }
        }
    }
    // Keys are made when none was given (cloud-init), and also when every given entry was
    // refused: a machine left without host keys could not be reached.
    let given_private = hk.keys.iter().flatten().any(|k| k.part == KeyPart::Private);
    // A running sshd (wisp run again on a live system) makes no keys until it restarts. A pid
    // file a crash left behind names no process: reloading then would fail.
    let sshd_running = root.is_host() && process_alive(&crate::rootfs::read(root, SSHD_PID, None));
    let sshd_makes_them = inp.backend.facts().sshd_makes_host_keys && !sshd_running;
    if given_private {
        // sshd uses the given keys; wisp makes no other type (as cloud-init), though the rc.d
        // script of NetBSD and FreeBSD makes every type missing when sshd starts.
    } else if sshd_makes_them {
        if hk.genkeytypes.is_some() {
            out.warnings.push(format!(
                "{NAME}: ssh_genkeytypes: not applied: this system's sshd start script makes \
                 the missing host keys, of its own types"
            ));
        }
    } else if names.is_some() {
        // No /etc/ssh: no sshd to make keys for.
        let types = hk
            .genkeytypes
            .clone()
            .unwrap_or_else(|| DEFAULT_GENKEYTYPES.iter().map(|t| t.to_string()).collect());
        for t in types {
            let (path, _) = KeyPart::Private.file(&t);
            let file = path.rsplit('/').next().unwrap_or_default().to_string();
            if present.contains(&file) {
                continue;
            }
            out.actions
                .push(Action::exec(NAME, &t, inp.backend.host_keygen(&t, &path)));
            changed = true;
        }
    }
    // OpenBSD's sshd runs already, with the keys it found: it loads the new ones on reload.
    if changed && sshd_running {
        out.actions
            .push(Action::exec(NAME, "sshd", inp.backend.reload_sshd()));
    }
}

/// The module in the registry ([`super::MODULES`]).
pub struct SshHostKeys;

impl super::Module for SshHostKeys {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["ssh_deletekeys", "ssh_genkeytypes", "ssh_keys"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, _run: &mut super::PlanRun<'_>, out: &mut Planned) {
        plan(inp, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_keys_are_recognised_by_their_armour() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\nabc=\n-----END RSA PRIVATE KEY-----\n";
        assert!(is_private_key_text(pem));
        let openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
        assert!(is_private_key_text(openssh));
        assert!(!is_private_key_text(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI x"
        ));
        assert!(!is_private_key_text(
            "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----"
        ));
        assert!(!is_private_key_text(
            "-----BEGIN RSA PRIVATE KEY-----\nnot base64 at all!\n-----END RSA PRIVATE KEY-----"
        ));
    }

    #[test]
    fn only_image_host_key_files_are_deleted() {
        for n in [
            "ssh_host_rsa_key",
            "ssh_host_rsa_key.pub",
            "ssh_host_ed25519_key-cert.pub",
            "ssh_host_key",
        ] {
            assert!(is_host_key_file(n), "{n}");
        }
        for n in ["sshd_config", "ssh_config", "moduli", "ssh_host_notes"] {
            assert!(!is_host_key_file(n), "{n}");
        }
    }

    #[test]
    fn only_a_live_process_counts_as_a_running_sshd() {
        let me = std::process::id().to_string();
        assert!(process_alive(&Ok(Some(format!("{me}\n").into_bytes()))));
        // A pid no process has (above the BSDs' and Linux's pid_max).
        assert!(!process_alive(&Ok(Some(b"2147483000\n".to_vec()))));
        for bad in [&b"0"[..], b"-1", b"sshd", b""] {
            assert!(!process_alive(&Ok(Some(bad.to_vec()))), "{bad:?}");
        }
        assert!(!process_alive(&Ok(None)));
        assert!(!process_alive(&Err("a link".into())));
    }

    #[test]
    fn host_certificates_go_before_match_blocks_once() {
        let cfg = "Port 22\nMatch User bob\n  X11Forwarding yes\n";
        let c = vec!["/etc/ssh/ssh_host_rsa_key-cert.pub".to_string()];
        let got = add_host_certificates(cfg, &c).unwrap();
        assert_eq!(
            got,
            "Port 22\nHostCertificate /etc/ssh/ssh_host_rsa_key-cert.pub\nMatch User bob\n  X11Forwarding yes\n"
        );
        assert_eq!(add_host_certificates(&got, &c), None);
    }

    /// The default user's keys for a document, with one key from the datasource.
    fn default_user_keys(doc: &str) -> Vec<String> {
        let map: yaml_serde::Mapping = yaml_serde::from_str(doc).unwrap();
        let cc = crate::cloudconfig::CloudConfig::read(&mut Reader::default(), &map);
        let backend = crate::platform::Platform::Netbsd.backend(None);
        let accounts = crate::accounts::Accounts::default();
        let root = crate::root::Root::new("/nonexistent-wisp-test-root");
        let metadata = ["ssh-ed25519 AAAAmeta maas".to_string()];
        let inp = Inputs {
            config: &cc,
            metadata_keys: &metadata,
            configured_default_user: None,
            backend: backend.as_ref(),
            accounts: &accounts,
            root: &root,
            disks: None,
        };
        let (users, _) = super::super::users_groups::normalize(&inp);
        users
            .into_iter()
            .find(|u| u.default)
            .map(|u| u.ssh_authorized_keys)
            .unwrap_or_default()
    }

    #[test]
    fn allow_public_ssh_keys_false_keeps_the_metadata_keys_out() {
        let given = "ssh_authorized_keys: [ssh-rsa AAAAgiven me]\n";
        assert_eq!(
            default_user_keys(given),
            ["ssh-rsa AAAAgiven me", "ssh-ed25519 AAAAmeta maas"]
        );
        assert_eq!(
            default_user_keys(&format!("{given}allow_public_ssh_keys: false\n")),
            ["ssh-rsa AAAAgiven me"]
        );
    }

    #[test]
    fn bad_values_are_named_errors() {
        let doc = "ssh_keys:\n  foo_private: x\n  rsa_public: [1]\n  ed25519_public: not a key\nssh_genkeytypes: [rsa, bogus]\nssh_deletekeys: maybe\n";
        let map: yaml_serde::Mapping = yaml_serde::from_str(doc).unwrap();
        let mut r = Reader::default();
        let cc = crate::cloudconfig::CloudConfig::read(&mut r, &map);
        let paths: Vec<&str> = r.problems.iter().map(|p| p.path.as_str()).collect();
        for p in [
            "ssh_keys.foo_private",
            "ssh_keys.rsa_public",
            "ssh_keys.ed25519_public",
            "ssh_genkeytypes[1]",
            "ssh_deletekeys",
        ] {
            assert!(paths.contains(&p), "{p}: {paths:?}");
        }
        assert_eq!(cc.host_keys.keys, Some(vec![]));
        assert_eq!(cc.host_keys.genkeytypes, Some(vec!["rsa".to_string()]));
        assert_eq!(cc.host_keys.delete, None);
    }
}
