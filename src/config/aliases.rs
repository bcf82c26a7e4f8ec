//! The Node service's (grafana-image-renderer 3.x/4.x) environment names, mapped to grender's.

/// Environment names of the Node service (grafana-image-renderer 3.x/4.x), mapped to grender's
/// options, so a v3 deployment keeps its settings. A Go/grender name always wins over these.
pub fn node_env_aliases(get: impl Fn(&str) -> Option<String>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut set = |name: &'static str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty())
            && get(name).is_none()
        {
            out.push((name, v));
        }
    };
    let port = get("HTTP_PORT");
    let host = get("HTTP_HOST").unwrap_or_default();
    set(
        "SERVER_ADDR",
        port.map(|p| {
            if host.contains(':') {
                format!("[{host}]:{p}")
            } else {
                format!("{host}:{p}")
            }
        }),
    );
    set("BROWSER_TIMEZONE", get("BROWSER_TZ"));
    set("BROWSER_MAX_WIDTH", get("RENDERING_VIEWPORT_MAX_WIDTH"));
    set("BROWSER_MAX_HEIGHT", get("RENDERING_VIEWPORT_MAX_HEIGHT"));
    set(
        "BROWSER_MAX_PAGE_SCALE_FACTOR",
        get("RENDERING_VIEWPORT_MAX_DEVICE_SCALE_FACTOR"),
    );
    set(
        "BROWSER_PAGE_SCALE_FACTOR",
        get("RENDERING_VIEWPORT_DEVICE_SCALE_FACTOR"),
    );
    set(
        "RENDER_CONCURRENCY",
        get("RENDERING_CLUSTERING_MAX_CONCURRENCY"),
    );
    // Node split its token list on spaces; grender splits on commas.
    set(
        "AUTH_TOKEN",
        get("GF_PLUGIN_AUTH_TOKEN").map(|t| t.split_whitespace().collect::<Vec<_>>().join(",")),
    );
    let mut flags: Vec<String> = get("RENDERING_ARGS")
        .map(|a| {
            a.split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if get("IGNORE_HTTPS_ERRORS").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        flags.push("--ignore-certificate-errors".into());
    }
    set("BROWSER_FLAG", (!flags.is_empty()).then(|| flags.join(" ")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_environment_names_map_to_grenders() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let mapped = node_env_aliases(env(&[
            ("HTTP_PORT", "9090"),
            ("BROWSER_TZ", "Europe/Paris"),
            ("RENDERING_ARGS", "--no-sandbox,--disable-gpu"),
            ("IGNORE_HTTPS_ERRORS", "true"),
            ("RENDERING_CLUSTERING_MAX_CONCURRENCY", "3"),
            ("GF_PLUGIN_AUTH_TOKEN", "a b"),
        ]));
        let get = |k: &str| mapped.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("SERVER_ADDR").as_deref(), Some(":9090"));
        assert_eq!(get("BROWSER_TIMEZONE").as_deref(), Some("Europe/Paris"));
        assert_eq!(get("RENDER_CONCURRENCY").as_deref(), Some("3"));
        assert_eq!(get("AUTH_TOKEN").as_deref(), Some("a,b"));
        assert_eq!(
            get("BROWSER_FLAG").as_deref(),
            Some("--no-sandbox --disable-gpu --ignore-certificate-errors")
        );
        // grender's own name wins.
        assert!(
            node_env_aliases(env(&[("BROWSER_TZ", "X"), ("BROWSER_TIMEZONE", "Y")])).is_empty()
        );
    }
}
