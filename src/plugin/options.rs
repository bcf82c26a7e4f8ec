//! Plugin-mode options. Grafana passes a renderer plugin its settings only as environment
//! variables: `[plugin.grafana-image-renderer] rendering_*` keys become
//! `GF_PLUGIN_RENDERING_*`, `auth_token` becomes `GF_PLUGIN_AUTH_TOKEN`. They map onto the
//! same options as `grender server`, through the Node service's names (which these are).

/// The plugin variable that stands for a Node service name, if any.
fn plugin_name_of(node_name: &str) -> Option<String> {
    match node_name {
        "BROWSER_TZ" => Some("GF_PLUGIN_RENDERING_TIMEZONE".into()),
        "IGNORE_HTTPS_ERRORS" => Some("GF_PLUGIN_RENDERING_IGNORE_HTTPS_ERRORS".into()),
        "GF_PLUGIN_AUTH_TOKEN" => Some("GF_PLUGIN_AUTH_TOKEN".into()),
        other if other.starts_with("RENDERING_") => Some(format!("GF_PLUGIN_{other}")),
        _ => None,
    }
}

/// grender environment settings (`NAME`, value) from the plugin's environment, read by `get`.
/// grender's own names, when also set, win.
pub fn environment(get: impl Fn(&str) -> Option<String>) -> Vec<(&'static str, String)> {
    let node_view = |name: &str| match name {
        // The plugin listens where go-plugin says, not on the Node server's port.
        "HTTP_PORT" | "HTTP_HOST" => None,
        _ => match plugin_name_of(name) {
            Some(plugin) => get(&plugin),
            // grender's own names (BROWSER_FLAG, AUTH_TOKEN, …) as they are.
            None => get(name),
        },
    };
    let mut out = crate::config::node_env_aliases(node_view);
    let mut set = |name: &'static str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.trim().is_empty())
            && get(name).is_none()
            && !out.iter().any(|(n, _)| *n == name)
        {
            out.push((name, v));
        }
    };
    set("BROWSER_PATH", get("GF_PLUGIN_RENDERING_CHROME_BIN"));
    set("PLUGIN_OUTPUT_DIR", get("GF_PLUGIN_OUTPUT_DIR"));
    set(
        "LOG_LEVEL",
        get("GF_PLUGIN_RENDERING_VERBOSE_LOGGING")
            .filter(|v| v.eq_ignore_ascii_case("true"))
            .map(|_| "debug".into()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(env: &[(&str, &str)]) -> HashMap<&'static str, String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        environment(|k| env.get(k).cloned()).into_iter().collect()
    }

    #[test]
    fn grafana_plugin_settings_map_onto_grenders_options() {
        let s = settings(&[
            ("GF_PLUGIN_AUTH_TOKEN", "one two"),
            ("GF_PLUGIN_RENDERING_CHROME_BIN", "/usr/bin/chromium"),
            ("GF_PLUGIN_RENDERING_ARGS", "--no-sandbox,--disable-gpu"),
            ("GF_PLUGIN_RENDERING_IGNORE_HTTPS_ERRORS", "true"),
            ("GF_PLUGIN_RENDERING_TIMEZONE", "Europe/Berlin"),
            ("GF_PLUGIN_RENDERING_VIEWPORT_MAX_WIDTH", "2000"),
            ("GF_PLUGIN_RENDERING_VIEWPORT_MAX_DEVICE_SCALE_FACTOR", "2"),
            ("GF_PLUGIN_RENDERING_CLUSTERING_MAX_CONCURRENCY", "3"),
            ("GF_PLUGIN_RENDERING_VERBOSE_LOGGING", "true"),
            (
                "GF_PLUGIN_OUTPUT_DIR",
                "/var/lib/grafana/png,/var/lib/grafana/csv",
            ),
        ]);
        assert_eq!(s["AUTH_TOKEN"], "one,two");
        assert_eq!(s["BROWSER_PATH"], "/usr/bin/chromium");
        assert_eq!(
            s["BROWSER_FLAG"],
            "--no-sandbox --disable-gpu --ignore-certificate-errors"
        );
        assert_eq!(s["BROWSER_TIMEZONE"], "Europe/Berlin");
        assert_eq!(s["BROWSER_MAX_WIDTH"], "2000");
        assert_eq!(s["BROWSER_MAX_PAGE_SCALE_FACTOR"], "2");
        assert_eq!(s["RENDER_CONCURRENCY"], "3");
        assert_eq!(s["LOG_LEVEL"], "debug");
        assert_eq!(
            s["PLUGIN_OUTPUT_DIR"],
            "/var/lib/grafana/png,/var/lib/grafana/csv"
        );
    }

    #[test]
    fn server_mode_names_do_not_leak_into_plugin_mode_and_grenders_own_win() {
        let s = settings(&[
            ("RENDERING_VIEWPORT_MAX_WIDTH", "1234"),
            ("HTTP_PORT", "9999"),
            ("GF_PLUGIN_RENDERING_VIEWPORT_MAX_HEIGHT", "900"),
            ("BROWSER_MAX_HEIGHT", "1800"),
        ]);
        assert!(!s.contains_key("BROWSER_MAX_WIDTH"), "{s:?}");
        assert!(!s.contains_key("SERVER_ADDR"), "{s:?}");
        assert!(
            !s.contains_key("BROWSER_MAX_HEIGHT"),
            "grender's own name must win: {s:?}"
        );
    }
}
