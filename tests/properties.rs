//! Property tests of everything that parses untrusted input: whatever arrives, the parsers
//! answer (Ok or a clear error) and never panic; accepted values respect the limits.
//!
//! Longer runs: `PROPTEST_CASES=200000 cargo test --release --test properties`.

use grender::output::csv::{content_disposition, file_name_from};
use grender::request::{Limits, parse_csv_query, parse_render_query};
use proptest::prelude::*;

fn limits() -> Limits {
    Limits::default()
}

/// Query values that look like what Grafana sends, and garbage.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{0,12}",
        "-?[0-9]{0,4}\\.[0-9]{0,8}",
        "[0-9]{1,5}(ns|us|ms|s|m|h)",
        "(png|pdf|csv|PNG| pdf |jpeg|jpg|webp|gif)",
        "(a[0-6]|letter|legal|tabloid|ledger|b5)",
        "[0-9 ,-]{0,12}",
        "(true|false|1|0|maybe)",
        "(https?|file|chrome|ftp|data|javascript)://[a-z0-9.:\\[\\]-]{0,20}/[ -~]{0,30}",
        any::<String>(),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("url".to_string()),
        Just("width".to_string()),
        Just("height".to_string()),
        Just("deviceScaleFactor".to_string()),
        Just("timeout".to_string()),
        Just("timezone".to_string()),
        Just("encoding".to_string()),
        Just("renderKey".to_string()),
        Just("domain".to_string()),
        Just("landscape".to_string()),
        Just("pdf.format".to_string()),
        Just("pdf.landscape".to_string()),
        Just("pdf.printBackground".to_string()),
        Just("pdf.pageRanges".to_string()),
        Just("filePath".to_string()),
        Just("quality".to_string()),
        Just("optimize".to_string()),
        Just("colors".to_string()),
        Just("thumbnail".to_string()),
        Just("greyscale".to_string()),
        any::<String>(),
    ];
    proptest::collection::vec((key, value()), 0..12).prop_map(|pairs| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(&k, &v);
        }
        s.finish()
    })
}

proptest! {
    #[test]
    fn render_queries_never_panic_and_respect_the_limits(q in query(), raw in any::<String>()) {
        for input in [q.as_str(), raw.as_str()] {
            match parse_render_query(input, Some("de-DE"), &limits()) {
                Ok(req) => {
                    let v = req.viewport;
                    prop_assert!((1000..=3000).contains(&v.width));
                    if let Some(h) = v.height {
                        prop_assert!((500..=3000).contains(&h));
                        prop_assert!(v.width as f64 * h as f64 * v.scale * v.scale <= 60_000_000.0);
                    }
                    prop_assert!(v.scale > 0.0 && v.scale <= 4.0);
                    // render.max-timeout (5 min by default) bounds every deadline.
                    prop_assert!(req.deadline.remaining() <= std::time::Duration::from_secs(300));
                    if let grender::output::Output::Pdf(p) = &req.output {
                        prop_assert_eq!(p.max_pages, 100);
                    }
                    let scheme = url::Url::parse(&req.url).map(|u| u.scheme().to_string()).unwrap_or_default();
                    prop_assert!(scheme == "http" || scheme == "https", "accepted {:?}", req.url);
                    if let grender::output::Output::Picture(p) = &req.output {
                        prop_assert!(p.quality.is_none_or(|q| (1..=100).contains(&q)));
                        prop_assert!(p.colors.is_none_or(|c| (2..=256).contains(&c)));
                        prop_assert!(p.thumbnail.is_none_or(|t| (16..=4096).contains(&t)));
                    }
                }
                Err(e) => {
                    let m = e.to_string();
                    prop_assert!(!m.is_empty() && !m.contains('\n'));
                }
            }
        }
    }

    #[test]
    fn csv_queries_never_panic(q in query()) {
        if let Ok(req) = parse_csv_query(&q, None, &limits())
            && let grender::output::Output::Csv { file_name: Some(name) } = &req.output
        {
            prop_assert!(!name.contains('/') && !name.contains('\\'));
            prop_assert!(name.to_ascii_lowercase().ends_with(".csv"));
        }
    }

    #[test]
    fn download_names_are_safe(raw in any::<String>()) {
        if let Some(name) = file_name_from(&raw) {
            prop_assert!(!name.contains('/') && !name.contains('\\'));
            prop_assert!(name.to_ascii_lowercase().ends_with(".csv"));
            let header = content_disposition(&name);
            prop_assert!(axum::http::HeaderValue::from_str(&header).is_ok(), "not a valid header: {header:?}");
        }
    }

    #[test]
    fn durations_never_panic(raw in any::<String>(), n in 0u64..1_000_000, unit in "(ns|us|ms|s|m|h)") {
        let _ = grender::config::parse_duration(&raw);
        let d = grender::config::parse_duration(&format!("{n}{unit}")).unwrap();
        prop_assert!(d.as_nanos() > 0 || n == 0);
    }

    #[test]
    fn config_files_never_panic(yaml in prop_oneof![config_file(), "[a-z.:\\- \\n{}\\[\\],0-9\"]{0,80}"]) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, &yaml).unwrap();
        if let Ok((cli, _)) = grender::cli::Cli::parse_args(["grender", "server", &format!("--config={}", path.display())])
            && let grender::cli::Command::Server(opts) = cli.command
            && let Err(e) = opts.validate()
        {
            prop_assert!(!e.to_string().is_empty() && !e.to_string().contains('\n'));
        }
    }

    #[test]
    fn browser_overrides_never_panic(values in proptest::collection::vec("[ -~]{0,60}", 0..4)) {
        let base = grender::config::RequestDefaults::default();
        let _ = grender::config::RequestDefaultsByUrl::resolve(&base, &values);
    }
}

/// Option names that the config file accepts (dotted, as in the Go service's YAML).
const CONFIG_KEYS: &[&str] = &[
    "log.level",
    "log.format",
    "server.addr",
    "server.shutdown-timeout",
    "server.auth-token",
    "server.allow-missing-token",
    "server.allowed-origin",
    "server.block-other-hosts",
    "api.default-encoding",
    "browser.timezone",
    "browser.min-width",
    "browser.max-width",
    "browser.max-height",
    "browser.page-scale-factor",
    "browser.max-page-scale-factor",
    "browser.readiness.timeout",
    "browser.context-reuse",
    "browser.recycle-after",
    "browser.memory-budget",
    "browser.override",
    "render.isolation",
    "render.concurrency",
    "render.queue-size",
    "render.default-timeout",
    "render.max-pixels",
    "render.max-timeout",
    "render.max-pdf-pages",
    "plugin.output-dir",
    "server.max-url-bytes",
    "server.max-header-bytes",
    "server.max-connections",
    "server.header-read-timeout",
];

/// YAML documents built from real option names (flat or nested) with plausible and hostile values.
fn config_file() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "-?[0-9]{0,20}",
        "[0-9]{1,6}(ns|us|ms|s|m|h|d|)",
        "(true|false|yes|no|~|null|\"\")",
        "\"[ -~]{0,24}\"",
        "\\[[0-9a-z, \"]{0,24}\\]",
        "\\{[a-z: ,]{0,16}\\}",
        "(127.0.0.1|\\[::1\\]|0.0.0.0|):[0-9]{0,6}",
        "[ -~]{0,24}",
    ];
    proptest::collection::vec(
        (proptest::sample::select(CONFIG_KEYS), value, any::<bool>()),
        0..8,
    )
    .prop_map(|entries| {
        entries
            .into_iter()
            .map(|(key, value, nested)| match key.split_once('.') {
                Some((section, rest)) if nested => format!("{section}:\n  {rest}: {value}\n"),
                _ => format!("{key}: {value}\n"),
            })
            .collect()
    })
}
