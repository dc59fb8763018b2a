//! `final_message` (cloud-init's cc_final_message): the line the final stage ends with, on the
//! console and in the log, with cloud-init's `$UPTIME`, `$TIMESTAMP`, `$VERSION` and
//! `$DATASOURCE` (also lower case, also written `${NAME}`). It plans no action: the boot flow prints it once the
//! final stage's modules have run, at every boot, as cloud-init does.

use super::{Frequency, Inputs, Planned, Stage};

pub const NAME: &str = "final_message";
pub const STAGE: Stage = Stage::Final;
pub const FREQUENCY: Frequency = Frequency::PerBoot;
/// cloud-init's default, with wisp's name.
pub const DEFAULT: &str =
    "wisp v. $VERSION finished at $TIMESTAMP. Datasource $DATASOURCE.  Up $UPTIME seconds";
/// The longest message printed: the rest is cut (it goes to the console and the log).
pub const MAX_LEN: usize = 4096;

/// What the variables stand for.
pub struct Vars<'a> {
    pub version: &'a str,
    /// RFC 2822, as cloud-init's `time_rfc2822`.
    pub timestamp: String,
    pub datasource: &'a str,
    /// Seconds since the OS booted, as `12.34`.
    pub uptime: String,
}

impl Vars<'_> {
    /// The variables for a message printed now.
    pub fn now(datasource: &str) -> Vars<'_> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Vars {
            version: env!("CARGO_PKG_VERSION"),
            timestamp: rfc2822(now),
            datasource,
            uptime: crate::platform::uptime()
                .map(|u| format!("{u:.2}"))
                .unwrap_or_else(|| "unknown".into()),
        }
    }
}

/// The message to render: the configured one without the blanks around it, or [`DEFAULT`]
/// when there is none or it is blank (as cloud-init).
pub fn template(configured: Option<&str>) -> &str {
    match configured.map(str::trim) {
        Some(t) if !t.is_empty() => t,
        _ => DEFAULT,
    }
}

/// How cloud-init names a datasource in the message (its `str()`): `DataSourceMAAS [URL]`
/// for MAAS (with the metadata URL), `DataSourceNAME` for the others.
pub fn datasource_name(name: &str, url: Option<&str>) -> String {
    match url {
        Some(u) if name == "MAAS" => format!("DataSource{name} [{u}]"),
        _ => format!("DataSource{name}"),
    }
}

/// `template` with its variables replaced (cloud-init's names, lower or upper case); unknown
/// ones are left as written. Control characters (terminal escapes) other than newlines and
/// tabs become spaces, and the result is cut at [`MAX_LEN`] bytes.
pub fn render(template: &str, vars: &Vars<'_>) -> String {
    let value = |name: &str| -> Option<String> {
        match name {
            "UPTIME" | "uptime" => Some(vars.uptime.clone()),
            "TIMESTAMP" | "timestamp" => Some(vars.timestamp.clone()),
            "VERSION" | "version" => Some(vars.version.to_string()),
            "DATASOURCE" | "datasource" => Some(vars.datasource.to_string()),
            _ => None,
        }
    };
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, used) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match value(name) {
            Some(v) if used > 0 => {
                out.push_str(&v);
                rest = &after[used..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    let mut out: String = out
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    if out.len() > MAX_LEN {
        let mut cut = MAX_LEN;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// `Mon, 30 Nov 2026 23:21:08 +0000` for seconds since the epoch (UTC).
pub fn rfc2822(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The module in the registry ([`super::MODULES`]): it reads `final_message` and plans nothing.
pub struct FinalMessage;

impl super::Module for FinalMessage {
    fn info(&self) -> super::ModuleInfo {
        super::ModuleInfo {
            name: NAME,
            stage: STAGE,
            frequency: FREQUENCY,
            keys: &["final_message"],
        }
    }

    fn plan(&self, inp: &Inputs<'_>, run: &mut super::PlanRun<'_>, out: &mut Planned) {
        let _ = (inp, run, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars<'static> {
        Vars {
            version: "1.2.3",
            timestamp: rfc2822(1_796_080_868),
            datasource: "MAAS",
            uptime: "42.50".into(),
        }
    }

    #[test]
    fn the_default_names_wisp_and_fills_every_variable() {
        assert_eq!(
            render(DEFAULT, &vars()),
            "wisp v. 1.2.3 finished at Mon, 30 Nov 2026 23:21:08 +0000. Datasource MAAS.  \
             Up 42.50 seconds"
        );
    }

    #[test]
    fn braces_unknown_names_and_escapes() {
        assert_eq!(
            render("${VERSION}x $UPTIMEs $HOME ${NOPE} $ ${UPTIME", &vars()),
            "1.2.3x $UPTIMEs $HOME ${NOPE} $ ${UPTIME"
        );
        assert_eq!(render("a\u{1b}[2Jb\rc", &vars()), "a [2Jb c");
        assert_eq!(render(&"é".repeat(5000), &vars()).len(), MAX_LEN);
    }

    #[test]
    fn as_cloud_init_lowercase_names_lines_and_blank_messages() {
        // cloud-init's documented example.
        let doc = "cloud-init has finished\nversion: $version\ntimestamp: $timestamp\n\
                   datasource: $datasource\nuptime: $uptime";
        assert_eq!(
            render(doc, &vars()),
            "cloud-init has finished\nversion: 1.2.3\ntimestamp: Mon, 30 Nov 2026 23:21:08 +0000\n\
             datasource: MAAS\nuptime: 42.50"
        );
        assert_eq!(template(Some("")), DEFAULT);
        assert_eq!(template(Some("  \n ")), DEFAULT);
        assert_eq!(template(None), DEFAULT);
        assert_eq!(template(Some("  hi $version\n")), "hi $version");
        assert_eq!(
            datasource_name("MAAS", Some("http://maas:5248/MAAS/metadata/")),
            "DataSourceMAAS [http://maas:5248/MAAS/metadata/]"
        );
        assert_eq!(datasource_name("NoCloud", None), "DataSourceNoCloud");
    }

    #[test]
    fn timestamps_as_rfc_2822() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }
}
