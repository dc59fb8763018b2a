//! Setting one variable in an rc.conf(5)-style file (NetBSD and FreeBSD `/etc/rc.conf`, OpenBSD
//! `/etc/rc.conf.local`): the last assignment wins in sh, so an existing one is replaced in
//! place and a new one appended; comments and everything else are kept.

/// The new text of `current` with `var="value"`, or `None` when it says so already.
pub fn set_var(current: &str, var: &str, value: &str) -> Option<String> {
    let line = format!("{var}=\"{value}\"");
    let assigns = |l: &str| {
        let t = l.trim_start();
        t.strip_prefix(var)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let lines: Vec<&str> = current.lines().collect();
    let last = lines.iter().rposition(|l| assigns(l));
    if let Some(i) = last {
        let existing = current.lines().nth(i).unwrap_or("");
        let value_now = existing
            .split_once('=')
            .map(|(_, v)| {
                v.split('#')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches(|c| c == '"' || c == '\'')
            })
            .unwrap_or("");
        if value_now == value {
            return None;
        }
        let mut out: Vec<String> = current.lines().map(str::to_string).collect();
        out[i] = line;
        let mut text = out.join("\n");
        text.push('\n');
        return Some(text);
    }
    let mut text = current.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&line);
    text.push('\n');
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_last_assignment_and_keeps_the_rest() {
        let rc = "# rc.conf\nhostname=old\nsshd=YES\nhostname=\"older\" # comment\n";
        assert_eq!(
            set_var(rc, "hostname", "node1.maas").unwrap(),
            "# rc.conf\nhostname=old\nsshd=YES\nhostname=\"node1.maas\"\n"
        );
    }

    #[test]
    fn appends_when_absent_and_is_idempotent() {
        let once = set_var("sshd=YES", "ntpd_enable", "YES").unwrap();
        assert_eq!(once, "sshd=YES\nntpd_enable=\"YES\"\n");
        assert_eq!(set_var(&once, "ntpd_enable", "YES"), None);
        assert_eq!(set_var("ntpd=YES\n", "ntpd", "YES"), None);
        // A longer name that starts the same is another variable.
        assert_eq!(
            set_var("ntpd_flags=-x\n", "ntpd", "YES").unwrap(),
            "ntpd_flags=-x\nntpd=\"YES\"\n"
        );
    }
}
