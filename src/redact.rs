//! URLs without their secrets, for logs and error messages.

/// `url` as `scheme://host:port/path`: without its query, fragment and user-info, which can
/// carry secrets (render keys, tokens, passwords). Fit for logs and error messages. `None`
/// when it does not parse.
pub fn without_secrets(url: &str) -> Option<String> {
    let mut u = url::Url::parse(url).ok()?;
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    Some(u.to_string())
}

/// [`without_secrets`], or a placeholder for a URL that does not parse (which is then never
/// repeated, since it could be anything).
pub fn redacted(url: &str) -> String {
    without_secrets(url).unwrap_or_else(|| "<unparseable url>".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn redaction_keeps_only_scheme_host_port_and_path() {
        assert_eq!(
            super::redacted("https://user:pass@grafana:3000/d/x?renderKey=k&secret=s#frag"),
            "https://grafana:3000/d/x"
        );
        assert_eq!(super::redacted("http://tok@g/a"), "http://g/a");
        assert_eq!(super::redacted("not a url ?secret=s"), "<unparseable url>");
    }
}
