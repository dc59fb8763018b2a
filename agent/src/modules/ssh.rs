//! SSH keys (cloud-init's cc_ssh and the key part of cc_users_groups): each user's
//! `ssh_authorized_keys`, the metadata keys for the default user, and root's keys under
//! `disable_root`. `~/.ssh` is 0700 and `authorized_keys` 0600, owned by the user, each key once,
//! written without following symlinks. Stage network, once per instance.

use std::collections::BTreeSet;

use super::users_groups::User;
use super::{Frequency, Inputs, Planned, Stage};
use crate::plan::Action;

pub const NAME: &str = "ssh";
pub const STAGE: Stage = Stage::Network;
pub const FREQUENCY: Frequency = Frequency::PerInstance;

/// cloud-init's default `disable_root_opts`.
pub const DISABLE_ROOT_OPTS: &str = "no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command=\"echo 'Please login as the user \\\"$USER\\\" rather than the user \\\"$DISABLE_USER\\\".';echo;sleep 10;exit 142\"";

const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";

/// `PasswordAuthentication yes|no` in sshd_config: the first setting outside a `Match` block is
/// the one sshd uses, so that one is replaced, or a line is added before the first `Match`.
pub fn set_password_authentication(current: &str, on: bool) -> Option<String> {
    let value = if on { "yes" } else { "no" };
    let wanted = format!("PasswordAuthentication {value}");
    let lines: Vec<&str> = current.lines().collect();
    let first_match = lines
        .iter()
        .position(|l| l.trim_start().to_ascii_lowercase().starts_with("match "))
        .unwrap_or(lines.len());
    let existing = lines[..first_match].iter().position(|l| {
        let t = l.trim_start();
        !t.starts_with('#') && t.to_ascii_lowercase().starts_with("passwordauthentication")
    });
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match existing {
        Some(i)
            if out[i]
                .split_whitespace()
                .nth(1)
                .is_some_and(|v| v.eq_ignore_ascii_case(value)) =>
        {
            return None
        }
        Some(i) => out[i] = wanted,
        None => out.insert(first_match, wanted),
    }
    Some(out.join("\n") + "\n")
}

fn pwauth(inp: &Inputs<'_>, out: &mut Planned) {
    let Some(on) = inp.config.ssh_pwauth else {
        return;
    };
    // sshd_config is edited, not rewritten: one that cannot be read safely (a link, a FIFO)
    // is refused, never replaced by this one line (sshd would lose Subsystem sftp and more).
    let current = match out.try_current_text(inp.root, SSHD_CONFIG, None) {
        Ok(c) => c,
        Err(e) => {
            out.error(NAME, "ssh_pwauth", format!("not set: {e}"));
            return;
        }
    };
    let Some(text) = set_password_authentication(&current, on) else {
        return;
    };
    out.actions.push(Action::write(
        NAME,
        "ssh_pwauth",
        SSHD_CONFIG,
        text.into_bytes(),
        0o644,
        ("root", inp.backend.wheel()),
        false,
    ));
    // Reload only a running sshd on this very system; at first boot it starts after wisp.
    if inp.root.path("/") == std::path::Path::new("/")
        && std::path::Path::new("/var/run/sshd.pid").exists()
    {
        out.actions
            .push(Action::exec(NAME, "ssh_pwauth", inp.backend.reload_sshd()));
    }
}

pub fn plan(inp: &Inputs<'_>, users: &[User], out: &mut Planned) {
    pwauth(inp, out);
    for u in users.iter().filter(|u| !u.ssh_authorized_keys.is_empty()) {
        keys_for(inp, out, &u.name, &u.homedir, &u.ssh_authorized_keys);
    }
    // Root gets the default user's keys, fenced off unless disable_root is false.
    let Some(default) = users.iter().find(|u| u.default) else {
        return;
    };
    if default.ssh_authorized_keys.is_empty() {
        return;
    }
    let disable = inp.config.disable_root.unwrap_or(true);
    let keys: Vec<String> = if disable {
        let opts = inp
            .config
            .disable_root_opts
            .as_deref()
            .unwrap_or(DISABLE_ROOT_OPTS)
            .replace("$USER", &default.name)
            .replace("$DISABLE_USER", "root");
        default
            .ssh_authorized_keys
            .iter()
            .map(|k| format!("{opts} {k}"))
            .collect()
    } else {
        default.ssh_authorized_keys.clone()
    };
    keys_for(inp, out, "root", "/root", &keys);
}

fn keys_for(inp: &Inputs<'_>, out: &mut Planned, user: &str, home: &str, keys: &[String]) {
    let ssh_dir = format!("{}/.ssh", home.trim_end_matches('/'));
    let file = format!("{ssh_dir}/authorized_keys");
    // root's home is a system directory by design; anyone else's may not be one.
    if user != "root" {
        if let Err(e) = crate::rootfs::check_home(home) {
            out.error(NAME, user, format!("keys not written: {e}"));
            return;
        }
    }
    match crate::rootfs::dir_exists(inp.root, &ssh_dir, Some(home)) {
        Err(e) => {
            out.error(NAME, user, format!("{e}, nothing written"));
            return;
        }
        Ok(true) => {}
        Ok(false) => out.actions.push(Action::Mkdir {
            module: NAME,
            item: user.to_string(),
            path: ssh_dir.clone(),
            mode: 0o700,
            owner: user.to_string(),
            group: String::new(),
            in_home: true,
        }),
    }
    // A link, a FIFO (which would block until someone writes to it) or a device is refused.
    let current = match out.try_current_text(inp.root, &file, Some(home)) {
        Ok(c) => c,
        Err(e) => {
            out.error(NAME, user, format!("{e}, nothing written"));
            return;
        }
    };
    let have: BTreeSet<&str> = current.lines().map(str::trim).collect();
    let missing: Vec<&String> = keys.iter().filter(|k| !have.contains(k.trim())).collect();
    if missing.is_empty() {
        return;
    }
    let mut text = current.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for k in missing {
        text.push_str(k.trim());
        text.push('\n');
    }
    // An empty group is the user's primary group, known once the user exists.
    out.actions.push(Action::write(
        NAME,
        user,
        file,
        text.into_bytes(),
        0o600,
        (user, ""),
        true,
    ));
}

/// The module in the registry ([`super::MODULES`]).
pub struct Ssh;

impl super::Module for Ssh {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &[
                "ssh_authorized_keys",
                "disable_root",
                "disable_root_opts",
                "ssh_pwauth",
            ],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let managed = run.managed(inp);
        plan(inp, &managed, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_authentication_outside_match_blocks() {
        let cfg = "# sshd_config\n#PasswordAuthentication yes\nPermitRootLogin no\nMatch User bob\n  PasswordAuthentication yes\n";
        assert_eq!(
            set_password_authentication(cfg, false).unwrap(),
            "# sshd_config\n#PasswordAuthentication yes\nPermitRootLogin no\nPasswordAuthentication no\nMatch User bob\n  PasswordAuthentication yes\n"
        );
        let set = "PasswordAuthentication no\n";
        assert_eq!(set_password_authentication(set, false), None);
        assert_eq!(
            set_password_authentication(set, true).unwrap(),
            "PasswordAuthentication yes\n"
        );
        assert_eq!(
            set_password_authentication("", true).unwrap(),
            "PasswordAuthentication yes\n"
        );
    }
}
