//! The one redactor of URLs for logs, errors, plans, events and results, and the one splitter
//! of a URL's user part: both crates use them (the agent's plans and tool output, the POST's
//! errors), so that what is hidden in one place is hidden in all.
//!
//! The user part (`user`, `user:password`, or a token alone as in `https://TOKEN@host/`) goes
//! whole: everything between `://` and the last `@` before the URL's end. A query's values are
//! hidden only where the URL is the user's own ([`redact_url_and_query`]: phone_home's URL,
//! which may carry a token as `?token=…`); a tool's output keeps them (package mirrors' URLs
//! carry no secrets there, and the names are what a reader needs).

/// `scheme://user:pass@host…` → `scheme://<redacted>@host…`, for each URL in `text` (a URL
/// runs from its `://` to the next whitespace or quote). Everything between `://` and the last
/// `@` of the URL goes, whatever it holds: a raw password may have `/`, `?`, `#` or `@` in it,
/// and an `@` only ever ends the user part.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The user part first: a password may hold a quote or `<`, so the last `@` before
        // the next whitespace ends it, and only the rest ends at a quote.
        let word_end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        let user_end = tail[..word_end].rfind('@');
        let host_start = user_end.unwrap_or(0);
        let end = tail[host_start..]
            .find(|c: char| c.is_whitespace() || "\"'<>`".contains(c))
            .map_or(tail.len(), |i| host_start + i);
        if user_end.is_some() {
            out.push_str("<redacted>");
        }
        out.push_str(&tail[host_start..end]);
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// [`redact_urls`] for a URL the user gave, its query's values hidden too (`?token=<redacted>`,
/// names kept). A text that does not parse as a URL is shown as `<invalid URL>`: it could hold
/// anything.
pub fn redact_url_and_query(url: &str) -> String {
    if url::Url::parse(url).is_err() {
        return "<invalid URL>".into();
    }
    // One URL: its user part is the authority's (a password may hold a quote, `<` or a
    // space, which would end a URL in free text).
    let (scheme, user, rest) = split_userinfo(url);
    let shown = if user.is_empty() {
        url.to_string()
    } else {
        format!("{scheme}<redacted>@{rest}")
    };
    let Some(q) = shown.find('?') else {
        return shown;
    };
    let (head, query) = shown.split_at(q + 1);
    let (query, fragment) = match query.find('#') {
        Some(h) => query.split_at(h),
        None => (query, ""),
    };
    let hidden: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() => format!("{name}=<redacted>"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{head}{}{fragment}", hidden.join("&"))
}

/// `url` as (scheme and `//`, the user part with its `@`, the rest): the user part is what
/// comes before the last `@` of the authority (which ends at the first `/`, `?` or `#`).
pub fn split_userinfo(url: &str) -> (&str, &str, &str) {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return (url, "", "");
    };
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => (
            &url[..start],
            &url[start..start + at + 1],
            &url[start + at + 1..],
        ),
        None => (&url[..start], "", &url[start..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Final review of issue 13 (3): a token alone in the user part is hidden as a password is.
    #[test]
    fn the_whole_user_part_goes() {
        for (raw, shown) in [
            (
                "https://TOKEN@h.example/p",
                "https://<redacted>@h.example/p",
            ),
            ("https://u:pw@h.example/p", "https://<redacted>@h.example/p"),
            ("http://u:p@ss@h:80/", "http://<redacted>@h:80/"),
            ("http://h.example/p", "http://h.example/p"),
        ] {
            assert_eq!(redact_urls(raw), shown, "{raw}");
            assert_eq!(redact_url_and_query(raw), shown, "{raw}");
        }
        assert_eq!(
            redact_url_and_query("https://T0K@h/p?id=i-1&token=s3cret&flag#frag"),
            "https://<redacted>@h/p?id=<redacted>&token=<redacted>&flag#frag"
        );
        assert_eq!(redact_url_and_query("not a url s3cret"), "<invalid URL>");
    }

    /// Last review (1): a password holding a quote, `<`, a backtick or a space is hidden whole.
    #[test]
    fn a_password_with_quotes_or_spaces_is_hidden() {
        for pw in [
            "s3cr'etpw",
            "s3cr\"etpw",
            "s3cr<etpw",
            "s3cr`etpw",
            "s3cr etpw",
        ] {
            let url = format!("https://maas:{pw}@example.org/p?x");
            let shown = redact_url_and_query(&url);
            assert!(!shown.contains("etpw"), "{url} -> {shown}");
            assert!(
                shown.starts_with("https://<redacted>@example.org/p?x"),
                "{shown}"
            );
            if !pw.contains(' ') {
                let text = format!("fetching {url} failed");
                let shown = redact_urls(&text);
                assert_eq!(
                    shown, "fetching https://<redacted>@example.org/p?x failed",
                    "{text}"
                );
            }
        }
        // A quote after the URL still ends it.
        assert_eq!(
            redact_urls("'https://u:pw@h/p' and 'x@y'"),
            "'https://<redacted>@h/p' and 'x@y'"
        );
    }

    #[test]
    fn the_user_part_is_split_at_the_authoritys_last_at() {
        assert_eq!(
            split_userinfo("https://u:p@ss@h/x@y"),
            ("https://", "u:p@ss@", "h/x@y")
        );
        assert_eq!(split_userinfo("https://h/x@y"), ("https://", "", "h/x@y"));
        assert_eq!(split_userinfo("h/x"), ("h/x", "", ""));
    }
}
