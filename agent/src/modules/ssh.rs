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

pub fn plan(inp: &Inputs<'_>, users: &[User], out: &mut Planned) {
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
    let host_dir = inp.root.path(&ssh_dir);
    match std::fs::symlink_metadata(&host_dir) {
        Ok(m) if m.file_type().is_symlink() => {
            out.error(
                NAME,
                user,
                format!("{ssh_dir} is a symbolic link: refused, nothing written"),
            );
            return;
        }
        Ok(m) if !m.is_dir() => {
            out.error(NAME, user, format!("{ssh_dir} is not a directory: refused"));
            return;
        }
        Ok(_) => {}
        Err(_) => out.actions.push(Action::Mkdir {
            module: NAME,
            item: user.to_string(),
            path: ssh_dir.clone(),
            mode: 0o700,
            owner: user.to_string(),
            group: String::new(),
            in_home: true,
        }),
    }
    let host_file = inp.root.path(&file);
    if std::fs::symlink_metadata(&host_file).is_ok_and(|m| m.file_type().is_symlink()) {
        out.error(
            NAME,
            user,
            format!("{file} is a symbolic link: refused, nothing written"),
        );
        return;
    }
    let current = out.current_text(inp.root, &file);
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
