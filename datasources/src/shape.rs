//! What a metadata answer must look like before wisp believes it. An answer of the wrong shape —
//! an HTML page from a proxy or a captive portal, a multi-line or binary instance id, a
//! hostname that is no hostname, a key line that is no key — fails the datasource with the
//! reason, instead of becoming the instance id, the hostname or a line of `authorized_keys`.

use base64::Engine;

/// Longest instance id taken (MAAS's system ids have 6 characters; cloud-init's `v1:` ids 67).
pub const MAX_INSTANCE_ID: usize = 255;
/// RFC 1035: a name is at most 253 characters, a label at most 63.
pub const MAX_HOSTNAME: usize = 253;
const MAX_LABEL: usize = 63;
/// Longest key line taken (a 16384-bit RSA key is about 2.8 KB; certificates are longer).
pub const MAX_KEY_LINE: usize = 16 * 1024;

/// Key types OpenSSH accepts in `authorized_keys`.
const KEY_TYPES: &[&str] = &[
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
];

/// Whether an answer is an HTML page: by its `Content-Type`, or by how its body starts.
pub fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    let by_type = content_type.is_some_and(|t| {
        let media = t.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case("text/html")
            || media.eq_ignore_ascii_case("application/xhtml+xml")
    });
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &body[i..]);
    by_type || start.starts_with(b"<")
}

/// An instance id: one line of letters, digits and `-._:` (`i-…`, a MAAS system id, `v1:…`).
pub fn check_instance_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty".into());
    }
    if id.len() > MAX_INSTANCE_ID {
        return Err(format!("longer than {MAX_INSTANCE_ID} characters"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':')))
    {
        return Err(format!(
            "{} is not allowed (letters, digits and -._: only)",
            describe(c)
        ));
    }
    Ok(())
}

/// A hostname per RFC 1123: dot-separated labels of letters, digits and hyphens, 1–63
/// characters each, not starting or ending with a hyphen; 253 characters at most (a final dot
/// allowed).
pub fn check_hostname(name: &str) -> Result<(), String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err("empty".into());
    }
    if bare.len() > MAX_HOSTNAME {
        return Err(format!("longer than {MAX_HOSTNAME} characters"));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err("an empty label (two dots in a row, or a leading dot)".into());
        }
        if label.len() > MAX_LABEL {
            return Err(format!("a label is longer than {MAX_LABEL} characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{} is not allowed (letters, digits, hyphens and dots only)",
                describe(c)
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with a hyphen"));
        }
    }
    Ok(())
}

/// One `authorized_keys` line as MAAS gives it: `TYPE BASE64 [COMMENT]`, the type one OpenSSH
/// knows and the same as the one the key blob names.
pub fn check_public_key(line: &str) -> Result<(), String> {
    if line.len() > MAX_KEY_LINE {
        return Err(format!("longer than {MAX_KEY_LINE} characters"));
    }
    if let Some(c) = line.chars().find(|c| c.is_control()) {
        return Err(format!("{} is not allowed", describe(c)));
    }
    let mut fields = line.split_ascii_whitespace();
    let kind = fields.next().unwrap_or("");
    if !KEY_TYPES.contains(&kind) {
        return Err("does not start with an SSH key type (ssh-ed25519, ssh-rsa, ecdsa-…)".into());
    }
    let blob = fields.next().unwrap_or("");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(blob))
        .map_err(|_| format!("the {kind} key is not base64"))?;
    // The blob starts with its own type: a length (4 bytes, big-endian) and the name.
    let named = decoded
        .get(..4)
        .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize)
        .and_then(|n| decoded.get(4..4usize.checked_add(n)?));
    if named != Some(kind.as_bytes()) {
        return Err(format!("the key is not a {kind} key"));
    }
    Ok(())
}

/// A character for an error message: printable ones quoted, others by code.
fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("character U+{:04X}", c as u32)
    } else {
        format!("character {c:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn0YbYy2CzC8tq1M6dVtT5q8Zb3K0rJmJdX9w0r2y3q jane@laptop";

    #[test]
    fn html_by_type_or_body() {
        assert!(is_html(Some("text/html; charset=utf-8"), b"i-1"));
        assert!(is_html(Some("TEXT/HTML"), b""));
        assert!(is_html(None, b"\n  <!DOCTYPE html><html>"));
        assert!(is_html(Some("text/plain"), b"<html>"));
        assert!(!is_html(Some("text/plain"), b"8kq3dx"));
        assert!(!is_html(None, b""));
    }

    #[test]
    fn instance_ids() {
        for ok in ["8kq3dx", "i-0123abcd", "v1:98eb", "node_1.x"] {
            assert_eq!(check_instance_id(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a b", "x\ny", "<html>", "evil/../x"] {
            assert!(check_instance_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_instance_id(&"a".repeat(256))
            .unwrap_err()
            .contains("255"));
    }

    #[test]
    fn hostnames() {
        for ok in ["node1.maas", "node1", "1node.example.com.", "a-b.c"] {
            assert_eq!(check_hostname(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".", "a..b", "-a.b", "a-.b", "a_b", "a b", "x\ny", "<p>"] {
            assert!(check_hostname(bad).is_err(), "{bad:?}");
        }
        assert!(check_hostname(&format!("{}.x", "a".repeat(64))).is_err());
        assert!(check_hostname(&format!("{}a", "a.".repeat(127))).is_err());
    }

    #[test]
    fn public_keys() {
        assert_eq!(check_public_key(ED25519), Ok(()));
        let e = check_public_key(
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIHn0YbYy2CzC8tq1M6dVtT5q8Zb3K0rJmJdX9w0r2y3q",
        )
        .unwrap_err();
        assert!(e.contains("not a ssh-rsa key"), "{e}");
        assert!(check_public_key("<html><body>hello</body></html>").is_err());
        assert!(check_public_key("ssh-ed25519 !!!notbase64").is_err());
        assert!(check_public_key("ssh-ed25519 AAAA").is_err());
        assert!(check_public_key("command=\"sh\" ssh-ed25519 AAAA").is_err());
        assert!(check_public_key(&format!("{ED25519}\u{1b}[2J")).is_err());
    }
}
