//! The system's accounts as the files say (`/etc/passwd`, `/etc/group`, and the password hashes in
//! `/etc/master.passwd` or `/etc/shadow`), read under `--root`: what exists decides what to plan,
//! so that a second run plans nothing. The four systems share these formats.

use crate::root::Root;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    /// name → password field, from master.passwd (BSD) or shadow (Linux), when readable.
    pub hashes: Vec<(String, String)>,
}

/// The records of an account file; a missing one has none. One that cannot be read safely (a
/// link, a FIFO, larger than [`crate::rootfs::MAX_READ`]) is logged and taken as empty.
fn lines(root: &Root, path: &str) -> Vec<Vec<String>> {
    let text = match crate::rootfs::read(root, path, None) {
        Ok(t) => String::from_utf8_lossy(&t.unwrap_or_default()).into_owned(),
        Err(e) => {
            tracing::warn!("{e}");
            String::new()
        }
    };
    text.lines()
        .filter(|l| {
            !l.trim().is_empty()
                && !l.starts_with('#')
                && !l.starts_with('+')
                && !l.starts_with('-')
        })
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

impl Accounts {
    pub fn load(root: &Root) -> Accounts {
        let users = lines(root, "/etc/passwd")
            .into_iter()
            .filter(|f| f.len() >= 7)
            .filter_map(|f| {
                Some(User {
                    name: f[0].clone(),
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                    home: f[5].clone(),
                    shell: f[6].clone(),
                })
            })
            .collect();
        let groups = lines(root, "/etc/group")
            .into_iter()
            .filter(|f| f.len() >= 3)
            .filter_map(|f| {
                Some(Group {
                    name: f[0].clone(),
                    gid: f[2].parse().ok()?,
                    members: f
                        .get(3)
                        .map(|m| {
                            m.split(',')
                                .filter(|s| !s.is_empty())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })
            .collect();
        let mut hashes: Vec<(String, String)> = Vec::new();
        for file in ["/etc/master.passwd", "/etc/shadow"] {
            for f in lines(root, file) {
                if f.len() >= 2 {
                    hashes.push((f[0].clone(), f[1].clone()));
                }
            }
        }
        Accounts {
            users,
            groups,
            hashes,
        }
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The password field of a user, if the hash file was readable.
    pub fn hash(&self, name: &str) -> Option<&str> {
        self.hashes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| h.as_str())
    }

    /// Whether `user` is in `group`, as primary or secondary member.
    pub fn in_group(&self, user: &str, group: &str) -> bool {
        let Some(g) = self.group(group) else {
            return false;
        };
        g.members.iter().any(|m| m == user) || self.user(user).is_some_and(|u| u.gid == g.gid)
    }
}

/// A value for a message: at most 64 characters, never megabytes.
pub fn shown(value: &str) -> String {
    let cut: String = value.chars().take(64).collect();
    if cut.len() < value.len() {
        format!("{cut:?}…")
    } else {
        format!("{value:?}")
    }
}

/// Checks a user or group name before any tool sees it: no option injection (`-oroot`), no paths
/// (`../x`), nothing the files' format or a shell could misread; within the OS's length limit.
pub fn check_name(name: &str, max_len: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.len() > max_len {
        return Err(format!(
            "{} is longer than {max_len} characters",
            shown(name)
        ));
    }
    if name.starts_with('-') {
        return Err(format!(
            "{name:?} starts with '-' (it would be read as an option)"
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a name"));
    }
    let body = name.strip_suffix('$').unwrap_or(name);
    if let Some(bad) = body
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "{} contains {bad:?}: names may hold letters, digits, '_', '-' and '.'",
            shown(name)
        ));
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{name:?} is all digits (tools would read it as an id)"
        ));
    }
    Ok(())
}

/// Checks a value that becomes a field of /etc/passwd (gecos, home, shell, dates): a `:` or a
/// line break would split or add records, whatever tool writes it.
pub fn check_field(what: &str, value: &str, absolute_path: bool) -> Result<(), String> {
    if value.len() > 1024 {
        return Err(format!("{what} is longer than 1024 characters"));
    }
    if let Some(c) = value.chars().find(|c| *c == ':' || c.is_control()) {
        return Err(format!(
            "{what} contains {c:?}, which would corrupt /etc/passwd"
        ));
    }
    if absolute_path && !value.starts_with('/') {
        return Err(format!("{what} {} is not an absolute path", shown(value)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "-oroot", "../x", "a/b", "a:b", "a b", "a\nb", "a\u{7}b", "", "..", "12345", "é", "x,y",
        ] {
            assert!(check_name(bad, 32).is_err(), "{bad:?} accepted");
        }
        for good in ["alice", "svc_backup", "web-1", "j.doe", "host$", "_ntp"] {
            assert!(check_name(good, 32).is_ok(), "{good:?} refused");
        }
        assert!(check_name("seventeen-chars-x", 16).is_err());
    }

    #[test]
    fn passwd_fields_cannot_break_the_file() {
        assert!(check_field("gecos", "Jane Admin, Room 4", false).is_ok());
        assert!(check_field("gecos", "x:0:0", false).is_err());
        assert!(check_field("gecos", "a\nroot2::0:0::/:/bin/sh", false).is_err());
        assert!(check_field("gecos", &"a".repeat(2000), false).is_err());
        assert!(check_field("shell", "bin/sh", true).is_err());
        assert!(check_field("shell", "/bin/sh", true).is_ok());
    }

    #[test]
    fn reads_the_files_under_the_root() {
        let d = std::env::temp_dir().join(format!(
            "wisp-acct-{}",
            wisp_datasources::oauth::new_nonce()
        ));
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(d.join("etc/passwd"), "root:*:0:0:Charlie &:/root:/bin/sh\n# c\nalice:*:1001:1001::/home/alice:/bin/ksh\nbroken:line\n").unwrap();
        std::fs::write(d.join("etc/group"), "wheel:*:0:root,alice\nalice:*:1001:\n").unwrap();
        std::fs::write(
            d.join("etc/master.passwd"),
            "alice:$2b$10$x:1001:1001::0:0::/home/alice:/bin/ksh\n",
        )
        .unwrap();
        let a = Accounts::load(&Root::new(&d));
        assert_eq!(a.users.len(), 2);
        assert_eq!(a.user("alice").unwrap().home, "/home/alice");
        assert_eq!(a.group("wheel").unwrap().members, vec!["root", "alice"]);
        assert!(a.in_group("alice", "wheel") && a.in_group("alice", "alice"));
        assert!(!a.in_group("root", "alice"));
        assert_eq!(a.hash("alice"), Some("$2b$10$x"));
        std::fs::remove_dir_all(d).unwrap();
    }
}
