//! The host keys' fingerprints on the console (cloud-init's cc_keys_to_console): for each
//! `/etc/ssh/ssh_host_*key.pub`, its SHA256 fingerprint as `ssh-keygen -l` shows it, then the
//! keys themselves, between cloud-init's BEGIN/END lines, so that people can check the host
//! they first connect to. `no_ssh_fingerprints` turns it off; `ssh_fp_console_blacklist` and
//! `ssh_key_console_blacklist` (default `ssh-dss`) leave out key types. Stage final (after
//! sshd made its keys), once per instance. Only public keys are read.

use base64::Engine;
use sha2::{Digest, Sha256};

use super::{Frequency, Inputs, Planned, Stage};
use crate::plan::Action;

pub const NAME: &str = "keys_to_console";
pub const STAGE: Stage = Stage::Final;
pub const FREQUENCY: Frequency = Frequency::PerInstance;

const SSH_DIR: &str = "/etc/ssh";
const RULE: &str = "#############################################################";

use super::ssh_host_keys::ssh_string;

/// The bits of an integer stored big-endian (an SSH mpint, maybe with a leading zero).
fn bits(n: &[u8]) -> usize {
    match n.iter().position(|&b| b != 0) {
        Some(i) => (n.len() - i - 1) * 8 + (8 - n[i].leading_zeros() as usize),
        None => 0,
    }
}

/// The key's size and type label as `ssh-keygen -l` shows them.
fn size_and_label(key_type: &str, blob: &[u8]) -> Option<(usize, &'static str)> {
    let (_, rest) = ssh_string(blob)?;
    Some(match key_type {
        "ssh-rsa" => {
            let (_e, rest) = ssh_string(rest)?;
            (bits(ssh_string(rest)?.0), "RSA")
        }
        "ssh-dss" => (bits(ssh_string(rest)?.0), "DSA"),
        "ssh-ed25519" => (256, "ED25519"),
        "sk-ssh-ed25519@openssh.com" => (256, "ED25519-SK"),
        t if t.starts_with("ecdsa-sha2-") || t.starts_with("sk-ecdsa-sha2-") => {
            let curve = ssh_string(rest)?.0;
            let size = match curve {
                b"nistp256" => 256,
                b"nistp384" => 384,
                b"nistp521" => 521,
                _ => return None,
            };
            (
                size,
                if t.starts_with("sk-") {
                    "ECDSA-SK"
                } else {
                    "ECDSA"
                },
            )
        }
        _ => return None,
    })
}

/// `BITS SHA256:FP COMMENT (TYPE)` for a public key line, as `ssh-keygen -l -f` prints it.
pub fn fingerprint_line(line: &str) -> Option<(String, String)> {
    let (key_type, blob) = super::ssh_host_keys::public_blob(line)?;
    let (size, label) = size_and_label(&key_type, &blob)?;
    let fp = base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&blob));
    let comment = line
        .split_whitespace()
        .skip(2)
        .collect::<Vec<_>>()
        .join(" ");
    let comment = if comment.is_empty() {
        "no comment".to_string()
    } else {
        comment
    };
    Some((key_type, format!("{size} SHA256:{fp} {comment} ({label})")))
}

pub fn plan(inp: &Inputs<'_>, out: &mut Planned) {
    let hk = &inp.config.host_keys;
    if hk.no_fingerprints == Some(true) {
        return;
    }
    let mut names: std::collections::BTreeSet<String> = match crate::rootfs::list(inp.root, SSH_DIR)
    {
        Ok(n) => n.unwrap_or_default().into_iter().collect(),
        Err(e) => {
            out.error(NAME, SSH_DIR, e);
            return;
        }
    };
    // Planned in this pass (`wisp apply` plans every stage at once): files written are shown
    // as they will be, files removed are not shown.
    let prefix = format!("{SSH_DIR}/");
    for a in &out.actions {
        match a {
            Action::Write { path, .. } => {
                if let Some(n) = path.strip_prefix(&prefix) {
                    names.insert(n.to_string());
                }
            }
            Action::Remove { path, .. } => {
                if let Some(n) = path.strip_prefix(&prefix) {
                    names.remove(n);
                }
            }
            _ => {}
        }
    }
    let fp_blacklist = hk.fp_blacklist.clone().unwrap_or_default();
    let key_blacklist = hk
        .key_blacklist
        .clone()
        .unwrap_or_else(|| vec!["ssh-dss".to_string()]);
    let mut fps = Vec::new();
    let mut keys = Vec::new();
    for name in names
        .iter()
        .filter(|n| n.starts_with("ssh_host_") && n.ends_with("key.pub"))
    {
        let path = format!("{SSH_DIR}/{name}");
        let text = match out.try_current(inp.root, &path, None) {
            Ok(Some(t)) => String::from_utf8_lossy(&t).into_owned(),
            Ok(None) => continue,
            Err(e) => {
                out.error(NAME, &path, e);
                continue;
            }
        };
        let line = text.lines().next().unwrap_or_default().trim();
        let Some((key_type, fp)) = fingerprint_line(line) else {
            out.error(NAME, &path, "not a public key line (TYPE BASE64 [COMMENT])");
            continue;
        };
        if !fp_blacklist.contains(&key_type) {
            fps.push(fp);
        }
        if !key_blacklist.contains(&key_type) {
            keys.push(line.to_string());
        }
    }
    if fps.is_empty() && keys.is_empty() {
        return;
    }
    let mut lines = vec![
        RULE.to_string(),
        "-----BEGIN SSH HOST KEY FINGERPRINTS-----".to_string(),
    ];
    lines.extend(fps);
    lines.push("-----END SSH HOST KEY FINGERPRINTS-----".to_string());
    lines.push(RULE.to_string());
    lines.push("-----BEGIN SSH HOST KEY KEYS-----".to_string());
    lines.extend(keys);
    lines.push("-----END SSH HOST KEY KEYS-----".to_string());
    out.actions.push(Action::Console {
        module: NAME,
        item: "host key fingerprints".into(),
        lines,
    });
}

/// The module in the registry ([`super::MODULES`]).
pub struct KeysToConsole;

impl super::Module for KeysToConsole {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &[
                "no_ssh_fingerprints",
                "ssh_fp_console_blacklist",
                "ssh_key_console_blacklist",
            ],
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
    fn bits_of_big_endian_integers() {
        assert_eq!(bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bits(&[0x01]), 1);
        assert_eq!(bits(&[0, 0]), 0);
    }

    #[test]
    fn fingerprints_match_ssh_keygen() {
        // Test keys made by `ssh-keygen -t TYPE`; TYPE.fp is what `ssh-keygen -l -f` printed.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host-keys");
        for (t, name) in [
            ("ed25519", "ssh-ed25519"),
            ("rsa", "ssh-rsa"),
            ("ecdsa", "ecdsa-sha2-nistp256"),
        ] {
            let read = |f: String| std::fs::read_to_string(dir.join(f)).unwrap();
            let line = read(format!("ssh_host_{t}_key.pub"));
            let (key_type, got) = fingerprint_line(line.trim()).unwrap();
            assert_eq!(key_type, name);
            assert_eq!(got, read(format!("{t}.fp")).trim(), "{t}");
        }
        assert_eq!(fingerprint_line("ssh-ed25519 !!!"), None);
        assert_eq!(
            fingerprint_line(
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIABNZtRAVa0mXZze7RbywGAB+DisQtxMKqzv5e7gmwpW"
            ),
            None
        );
    }
}
