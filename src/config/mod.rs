//! Every option of the service, with the official Go renderer's names, in the Go service's
//! groups: logging, the HTTP server, Chromium, request defaults (overridable per URL pattern),
//! rendering, plugin mode.
//!
//! This module depends on no other module of grender: it is plain data, checked once at
//! start-up ([`ServerOptions::validate`]). Sources and their precedence: [`file`].

mod aliases;
mod budget;
mod duration;
mod file;
mod overrides;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};

pub use aliases::node_env_aliases;
pub use budget::MemoryPlan;
pub use duration::parse_duration;
pub use file::{OptionSource, parse_layered};
pub use overrides::{RequestDefaultsByUrl, UrlOverride};

/// Options of `grender server` (and of the one-shot commands that start a renderer).
#[derive(Debug, Clone, Args)]
pub struct ServerOptions {
    /// Config file (YAML or JSON). Default: config.yaml, config.yml or config.json in the working directory.
    #[arg(long = "config", env = "GRENDER_CONFIG")]
    pub config_file: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogOptions,
    #[command(flatten)]
    pub server: HttpOptions,
    #[command(flatten)]
    pub browser: ChromiumOptions,
    #[command(flatten)]
    pub request: RequestDefaults,
    /// Per-URL request settings: "REGEX=--browser.min-width=500 --browser.min-height=500".
    /// The first pattern matching the target URL wins.
    #[arg(long = "browser.override", env = "BROWSER_OVERRIDE", action = ArgAction::Append)]
    pub request_overrides: Vec<String>,
    #[command(flatten)]
    pub render: RenderOptions,
    #[command(flatten)]
    pub plugin: PluginOptions,
    /// Scheduled e-mail reports: a YAML file of SMTP settings and reports (docs/reports.md).
    #[arg(long = "reports", env = "GRENDER_REPORTS")]
    pub reports_file: Option<PathBuf>,
}

/// `log.*`
#[derive(Debug, Clone, Args)]
pub struct LogOptions {
    /// Log level: debug, info, warn or error.
    #[arg(long = "log.level", env = "LOG_LEVEL", default_value = "info")]
    pub level: String,
    /// Log format: text or json.
    #[arg(
        long = "log.format",
        env = "LOG_FORMAT",
        default_value = "text",
        value_enum
    )]
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `server.*` and `api.*`: the HTTP service Grafana calls.
#[derive(Debug, Clone, Args)]
pub struct HttpOptions {
    /// Address to listen on: ":8081", "127.0.0.1:8081" or "[::1]:8081".
    #[arg(long = "server.addr", env = "SERVER_ADDR", default_value = ":8081", value_parser = parse_listen_addr)]
    pub addr: SocketAddr,

    /// Serve HTTPS with this PEM certificate chain (with server.key-file).
    #[arg(
        long = "server.certificate-file",
        env = "SERVER_CERTIFICATE_FILE",
        requires = "key_file"
    )]
    pub certificate_file: Option<PathBuf>,
    /// The PEM private key of server.certificate-file.
    #[arg(
        long = "server.key-file",
        env = "SERVER_KEY_FILE",
        requires = "certificate_file"
    )]
    pub key_file: Option<PathBuf>,
    /// Lowest TLS version accepted when serving HTTPS.
    #[arg(
        long = "server.min-tls-version",
        env = "SERVER_MIN_TLS_VERSION",
        default_value = "1.2",
        value_enum
    )]
    pub min_tls_version: TlsVersion,

    /// How long a stopping service lets renders in progress finish.
    #[arg(long = "server.shutdown-timeout", env = "SERVER_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Longest request URL (path and query) accepted; longer ones get 414.
    #[arg(
        long = "server.max-url-bytes",
        env = "SERVER_MAX_URL_BYTES",
        default_value_t = 65536
    )]
    pub max_url_bytes: usize,

    /// Largest total size of a request's headers; larger ones get 431.
    #[arg(
        long = "server.max-header-bytes",
        env = "SERVER_MAX_HEADER_BYTES",
        default_value_t = 65536
    )]
    pub max_header_bytes: usize,

    /// Open client connections served at once; further ones get 503 with Retry-After.
    #[arg(
        long = "server.max-connections",
        env = "SERVER_MAX_CONNECTIONS",
        default_value_t = 512
    )]
    pub max_connections: usize,

    /// How long a client may take to send a request's headers (and how long an idle
    /// keep-alive connection stays open), against slow-client (slowloris) attacks.
    #[arg(long = "server.header-read-timeout", env = "SERVER_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Accepted X-Auth-Token values (Grafana's [rendering] renderer_token). Comma-separated in the environment.
    #[arg(long = "server.auth-token", env = "AUTH_TOKEN", default_value = "-", value_delimiter = ',', action = ArgAction::Append)]
    pub auth_tokens: Vec<String>,

    /// Accept requests that carry no X-Auth-Token at all, for Grafana releases from before the
    /// 2022 token fix (7.x, early 8.x). A wrong token is still refused.
    #[arg(long = "server.allow-missing-token", env = "SERVER_ALLOW_MISSING_TOKEN", default_value = "false",
          num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub allow_missing_token: bool,

    /// Origins (scheme://host[:port]) that render URLs may point at; empty allows any http(s) URL.
    #[arg(long = "server.allowed-origin", env = "SERVER_ALLOWED_ORIGINS", value_delimiter = ',', action = ArgAction::Append)]
    pub allowed_origins: Vec<String>,

    /// With server.allowed-origin: also refuse sub-resources (images, scripts, iframes) from
    /// other origins, not only navigations.
    #[arg(long = "server.block-other-hosts", env = "SERVER_BLOCK_OTHER_HOSTS", default_value = "false",
          num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub block_other_hosts: bool,

    /// Encoding used when a request names none (older Grafana sends an empty one and wants PNG).
    #[arg(
        long = "api.default-encoding",
        env = "API_DEFAULT_ENCODING",
        default_value = "png",
        value_enum
    )]
    pub default_encoding: DefaultEncoding,
}

impl HttpOptions {
    /// The origins of server.allowed-origin (checked by [`ServerOptions::validate`]).
    pub fn allowed_origins(&self) -> Vec<url::Origin> {
        self.allowed_origins
            .iter()
            .filter_map(|o| url::Url::parse(o).ok().map(|u| u.origin()))
            .collect()
    }
}

/// Lowest TLS version served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsVersion {
    #[value(name = "1.2")]
    V1_2,
    #[value(name = "1.3")]
    V1_3,
}

/// What a request without `encoding` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DefaultEncoding {
    Png,
    Pdf,
}

/// `browser.*`: the Chromium grender runs.
#[derive(Debug, Clone, Args)]
pub struct ChromiumOptions {
    /// Chromium binary. Default: CHROME_BIN, else the first of chromium-headless-shell, chromium,
    /// chromium-browser, google-chrome found.
    #[arg(long = "browser.path", env = "BROWSER_PATH")]
    pub path: Option<PathBuf>,

    /// PEM file of CA certificates Chromium trusts, for Grafana behind a private CA.
    #[arg(long = "browser.ca-file", env = "BROWSER_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// Chromium's sandbox: auto keeps it when running as a non-root user and drops it with a
    /// warning where it cannot start (no user namespaces); on refuses to run without it.
    #[arg(
        long = "browser.sandbox",
        env = "BROWSER_SANDBOX",
        default_value = "auto",
        value_enum
    )]
    pub sandbox: SandboxMode,

    /// Extra Chromium flags; one value may hold several ("--a=1 --b").
    #[arg(long = "browser.flag", env = "BROWSER_FLAG", action = ArgAction::Append)]
    pub flags: Vec<String>,

    /// Default time zone of renders (IANA name). Also read from TZ.
    #[arg(long = "browser.timezone", env = "BROWSER_TIMEZONE")]
    pub timezone: Option<String>,

    /// Renders one browser context serves, scrubbed between them, before it is replaced.
    /// 1 gives every render a brand-new context (slower: Grafana's bundle loads every time).
    #[arg(long = "browser.context-reuse", env = "BROWSER_CONTEXT_REUSE", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub context_reuse: u32,

    /// Close warm tabs (each a browser context and a renderer process) that stayed unused this
    /// long, down to one, which keeps Grafana's cached assets for the next render (0: never).
    #[arg(long = "browser.idle-timeout", env = "BROWSER_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Close the last warm tab too once it stayed unused this long, keeping its browser context
    /// with Grafana's cached assets: an idle grender then runs no renderer process (~140 MiB
    /// RSS less), and the next render opens a tab in that context (it costs about what the
    /// first render after start costs, less than a new context) (0: never).
    #[arg(long = "browser.idle-close-last", env = "BROWSER_IDLE_CLOSE_LAST", default_value = "45s", value_parser = parse_duration)]
    pub idle_close_last: Duration,

    /// Restart Chromium after this many renders, draining renders in flight first (0: never).
    #[arg(
        long = "browser.recycle-after",
        env = "BROWSER_RECYCLE_AFTER",
        default_value_t = 1000
    )]
    pub recycle_after: u64,

    /// MiB of RSS grender's Chromium tree may use (0: no limit). The one memory knob: unless
    /// render.concurrency is set, renders at once (and warm tabs) are derived from it and the
    /// measured cost of Chromium (~300 MiB) and of each concurrent render (~180 MiB), at most
    /// 2 per core, and V8 favours memory over speed unless the budget has room for those renders
    /// at full speed (~240 MiB each); the start-up log says what it allows. Past it, Chromium
    /// is recycled: drained first, then relaunched, so two never run at once.
    #[arg(
        long = "browser.memory-budget",
        env = "BROWSER_MEMORY_BUDGET",
        default_value_t = 0
    )]
    pub memory_budget_mib: u64,
}

impl ChromiumOptions {
    /// The time zone renders use unless the request names a valid one.
    pub fn default_timezone(&self) -> String {
        self.timezone
            .clone()
            .or_else(|| std::env::var("TZ").ok())
            .map(|tz| tz.trim_start_matches(':').to_string())
            .filter(|tz| !tz.is_empty())
            .unwrap_or_else(|| "Etc/UTC".to_string())
    }

    /// browser.flag split into single flags.
    pub fn split_flags(&self) -> Vec<String> {
        split_browser_flags(&self.flags)
    }
}

/// Chromium's sandbox choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SandboxMode {
    /// Sandboxed unless running as root or the sandbox cannot start (then a warning).
    Auto,
    /// Always sandboxed: refuse to start without it (root cannot use it).
    #[value(alias = "true")]
    On,
    /// Never sandboxed (`--no-sandbox`).
    #[value(alias = "false")]
    Off,
}

/// The request settings a `browser.override` may change for the URLs its pattern matches.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct RequestDefaults {
    /// Smallest and default viewport width.
    #[arg(
        long = "browser.min-width",
        env = "BROWSER_MIN_WIDTH",
        default_value_t = 1000
    )]
    pub min_width: i64,
    /// Smallest and default viewport height.
    #[arg(
        long = "browser.min-height",
        env = "BROWSER_MIN_HEIGHT",
        default_value_t = 500
    )]
    pub min_height: i64,
    /// Largest viewport width; negative means no limit.
    #[arg(
        long = "browser.max-width",
        env = "BROWSER_MAX_WIDTH",
        default_value_t = 3000,
        allow_negative_numbers = true
    )]
    pub max_width: i64,
    /// Largest viewport height; negative means no limit (full-page captures are not capped by it).
    #[arg(
        long = "browser.max-height",
        env = "BROWSER_MAX_HEIGHT",
        default_value_t = 3000,
        allow_negative_numbers = true
    )]
    pub max_height: i64,
    /// Default device scale factor of renders.
    #[arg(
        long = "browser.page-scale-factor",
        env = "BROWSER_PAGE_SCALE_FACTOR",
        default_value_t = 1.0
    )]
    pub page_scale_factor: f64,
    /// Requests asking for a larger scale factor are clamped to this.
    #[arg(
        long = "browser.max-page-scale-factor",
        env = "BROWSER_MAX_PAGE_SCALE_FACTOR",
        default_value_t = 4.0
    )]
    pub max_page_scale_factor: f64,
    /// Emulate a portrait screen instead of landscape.
    #[arg(long = "browser.portrait", env = "BROWSER_PORTRAIT", default_value = "false",
          num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub portrait: bool,

    /// How long a render may wait for the page to report that its panels are drawn.
    #[arg(long = "browser.readiness.timeout", env = "BROWSER_READINESS_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub readiness_timeout: Duration,
    /// How long to wait for any Grafana readiness signal before treating the page as a plain page.
    #[arg(long = "browser.readiness.give-up-on-first-query", env = "BROWSER_READINESS_GIVE_UP_ON_FIRST_QUERY",
          default_value = "3s", value_parser = parse_duration)]
    pub give_up_on_first_query: Duration,
}

impl Default for RequestDefaults {
    /// The defaults of `grender server`, read from the option definitions themselves.
    fn default() -> Self {
        use clap::FromArgMatches;
        let cmd = RequestDefaults::augment_args(clap::Command::new("defaults"))
            .mut_args(|a| a.env(None::<&str>));
        let matches = cmd.get_matches_from(["defaults"]);
        RequestDefaults::from_arg_matches(&matches).expect("the request defaults parse")
    }
}

impl RequestDefaults {
    /// Checks the settings' relations.
    fn validate(&self) -> Result<(), String> {
        if self.min_width < 100 || self.min_height < 100 {
            return Err("browser.min-width and browser.min-height must be at least 100".into());
        }
        if self.max_width >= 0 && self.max_width < self.min_width {
            return Err(format!(
                "browser.max-width ({}) is below browser.min-width ({})",
                self.max_width, self.min_width
            ));
        }
        if self.max_height >= 0 && self.max_height < self.min_height {
            return Err(format!(
                "browser.max-height ({}) is below browser.min-height ({})",
                self.max_height, self.min_height
            ));
        }
        let (psf, max) = (self.page_scale_factor, self.max_page_scale_factor);
        if !(psf.is_finite() && psf > 0.0 && max.is_finite() && max > 0.0) {
            return Err("browser.page-scale-factor and browser.max-page-scale-factor must be positive numbers".into());
        }
        if psf > max {
            return Err(format!(
                "browser.page-scale-factor ({psf}) is above browser.max-page-scale-factor ({max})"
            ));
        }
        Ok(())
    }
}

/// `render.*`: how renders are run and bounded.
#[derive(Debug, Clone, Args)]
pub struct RenderOptions {
    /// Recompress PNG pictures losslessly by default (a request's optimize=false turns it off).
    /// Grafana itself gets the same pixels in a smaller file, for some CPU per render.
    #[arg(long = "render.optimize-png", env = "RENDER_OPTIMIZE_PNG", default_value = "false",
          num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub optimize_png: bool,

    /// How renders are kept apart: "context" (warm, scrubbed browser contexts in one Chromium)
    /// or "process" (a fresh Chromium per render, launched ahead of time; slower, strictest).
    #[arg(
        long = "render.isolation",
        env = "RENDER_ISOLATION",
        default_value = "context",
        value_enum
    )]
    pub isolation: Isolation,

    /// Keep Grafana's app loaded between renders of the same verified viewer (a JWT render
    /// key, or none) and move it to the next dashboard inside the page instead of loading
    /// Grafana again; checked before every reuse, cold on any doubt (docs/adr/0013).
    #[arg(long = "render.reuse-app", env = "RENDER_REUSE_APP", default_value = "false",
          num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub reuse_app: bool,

    /// Renders running at once; the rest wait in the queue. Default: 2 per core, or what
    /// browser.memory-budget allows when it is set.
    #[arg(long = "render.concurrency", env = "RENDER_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Requests allowed to wait for a render slot; more are refused with 429.
    #[arg(
        long = "render.queue-size",
        env = "RENDER_QUEUE_SIZE",
        default_value_t = 200
    )]
    pub queue_size: usize,
    /// Deadline of a request that carries no `timeout` (or `timeout=0`).
    #[arg(long = "render.default-timeout", env = "RENDER_DEFAULT_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub default_timeout: Duration,
    /// Largest picture in pixels (width × height × scale²); larger explicit sizes are refused, full pages are cut.
    #[arg(
        long = "render.max-pixels",
        env = "RENDER_MAX_PIXELS",
        default_value_t = 60_000_000
    )]
    pub max_pixels: u64,
    /// Largest CSV download a render may produce, in bytes; a larger one is cancelled and refused (413).
    #[arg(
        long = "render.max-csv-bytes",
        env = "RENDER_MAX_CSV_BYTES",
        default_value_t = 100 * 1024 * 1024
    )]
    pub max_csv_bytes: u64,
    /// Longest deadline a request may ask for with `timeout`; longer ones are clamped to it.
    #[arg(long = "render.max-timeout", env = "RENDER_MAX_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub max_timeout: Duration,
    /// Most pages a PDF may have; a longer one is refused with 413 (narrow it with pdf.pageRanges).
    #[arg(long = "render.max-pdf-pages", env = "RENDER_MAX_PDF_PAGES", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pdf_pages: u32,
}

impl RenderOptions {
    /// Renders running at once without a memory budget: two per core, the knee of throughput
    /// measured on 2 cores.
    fn cpu_concurrency() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get() * 2)
            .unwrap_or(4)
    }
}

/// How renders are kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Isolation {
    /// Warm, scrubbed browser contexts in one Chromium.
    Context,
    /// A fresh Chromium per render, launched ahead of time.
    Process,
}

/// `plugin.*`: plugin mode only.
#[derive(Debug, Clone, Args)]
pub struct PluginOptions {
    /// Plugin mode: directories Grafana's filePath may point into (comma-separated in the
    /// environment; also GF_PLUGIN_OUTPUT_DIR). Default: a directory named png, csv or pdf, as in
    /// Grafana's data directory.
    #[arg(long = "plugin.output-dir", env = "PLUGIN_OUTPUT_DIR", value_delimiter = ',', action = ArgAction::Append)]
    pub output_dirs: Vec<PathBuf>,
}

/// Parses Go-style listen addresses, where ":8081" means every interface.
fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse().map_err(|_| {
        format!("'{s}' is not a listen address; use ':8081', '127.0.0.1:8081' or '[::1]:8081'")
    })
}

/// A checked option problem, printed as one line before exiting with code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ServerOptions {
    /// Cross-option checks that clap cannot express; gives the message a user needs to fix it.
    /// (`browser.override` values are checked where they are resolved, once, by
    /// [`ServerOptions::request_defaults_by_url`].)
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        self.request.validate().map_err(ConfigError)?;
        let (server, browser, render) = (&self.server, &self.browser, &self.render);
        if server.auth_tokens.iter().all(|t| t.is_empty()) {
            return bad(
                "server.auth-token is empty; set it to Grafana's [rendering] renderer_token".into(),
            );
        }
        for (name, file) in [
            ("browser.ca-file", &browser.ca_file),
            ("server.certificate-file", &server.certificate_file),
            ("server.key-file", &server.key_file),
        ] {
            if let Some(path) = file
                && !path.is_file()
            {
                return bad(format!("{name} {} is not a readable file", path.display()));
            }
        }
        if browser.sandbox == SandboxMode::On
            && browser
                .split_flags()
                .iter()
                .any(|f| f == "--no-sandbox" || f.starts_with("--no-sandbox="))
        {
            return bad(
                "browser.sandbox=on conflicts with --no-sandbox in browser.flag (BROWSER_FLAG / RENDERING_ARGS): \
                 remove one of them"
                    .into(),
            );
        }
        if server.max_url_bytes < 1024 || server.max_header_bytes < 1024 {
            return bad(
                "server.max-url-bytes and server.max-header-bytes must be at least 1024".into(),
            );
        }
        if server.max_connections == 0 {
            return bad("server.max-connections must be at least 1".into());
        }
        if server.header_read_timeout.is_zero() {
            return bad("server.header-read-timeout must be above 0".into());
        }
        if render.max_timeout.is_zero() {
            return bad("render.max-timeout must be above 0".into());
        }
        if render.default_timeout > render.max_timeout {
            return bad(format!(
                "render.default-timeout ({:?}) is above render.max-timeout ({:?})",
                render.default_timeout, render.max_timeout
            ));
        }
        for dir in &self.plugin.output_dirs {
            if !dir.is_absolute() {
                return bad(format!(
                    "plugin.output-dir '{}' is not an absolute path",
                    dir.display()
                ));
            }
        }
        if render.concurrency == Some(0) {
            return bad("render.concurrency must be at least 1".into());
        }
        for origin in &server.allowed_origins {
            match url::Url::parse(origin) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => {
                    return bad(format!(
                        "server.allowed-origin '{origin}' is not an http(s) origin like http://grafana:3000"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The options given only by environment variables (and defaults): how plugin mode, which
    /// Grafana starts without arguments, is configured.
    pub fn from_env() -> Result<ServerOptions, clap::Error> {
        use clap::FromArgMatches;
        let cmd = ServerOptions::augment_args(clap::Command::new("grender"));
        let matches = cmd.try_get_matches_from(["grender"])?;
        ServerOptions::from_arg_matches(&matches)
    }

    /// Renders at once and warm tabs, from render.concurrency and browser.memory-budget.
    pub fn memory_plan(&self) -> MemoryPlan {
        MemoryPlan::derive(
            self.browser.memory_budget_mib,
            self.render.concurrency,
            RenderOptions::cpu_concurrency(),
            self.render.isolation,
        )
    }

    /// Renders running at once (see [`ServerOptions::memory_plan`]).
    pub fn effective_concurrency(&self) -> usize {
        self.memory_plan().concurrency
    }

    /// The request defaults, with every `browser.override` resolved against them.
    pub fn request_defaults_by_url(&self) -> Result<RequestDefaultsByUrl, ConfigError> {
        RequestDefaultsByUrl::resolve(&self.request, &self.request_overrides)
    }
}

/// Splits browser.flag values the Go way: a new flag starts at each "--".
fn split_browser_flags(values: &[String]) -> Vec<String> {
    let mut flags = Vec::new();
    for value in values {
        for part in value.split(" --") {
            let part = part.trim().trim_end_matches(',').trim();
            if part.is_empty() {
                continue;
            }
            flags.push(if part.starts_with("--") {
                part.to_string()
            } else {
                format!("--{part}")
            });
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

    #[derive(Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: TestCommand,
    }

    #[derive(Subcommand)]
    enum TestCommand {
        Server(ServerOptions),
    }

    fn parse(args: &[&str]) -> Result<(ServerOptions, Vec<OptionSource>), clap::Error> {
        let mut argv: Vec<std::ffi::OsString> = vec!["grender".into(), "server".into()];
        argv.extend(args.iter().map(Into::into));
        let (matches, sources) = parse_layered(TestCli::command(), argv)?;
        let TestCommand::Server(o) = TestCli::from_arg_matches(&matches)?.command;
        Ok((o, sources))
    }

    fn server(args: &[&str]) -> ServerOptions {
        parse(args).expect("parses").0
    }

    #[test]
    fn print_config_says_where_values_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "browser:\n  min-width: 1200\n").unwrap();
        let cfg = format!("--config={}", path.display());
        let (_, sources) = parse(&[&cfg, "--server.addr=127.0.0.1:7000"]).unwrap();
        let find = |n: &str| sources.iter().find(|s| s.name == n).cloned().unwrap();
        assert_eq!(
            (
                find("server.addr").value.as_str(),
                find("server.addr").source.as_str()
            ),
            ("127.0.0.1:7000", "flag")
        );
        assert_eq!(find("browser.min-width").source, "config file");
        assert_eq!(find("browser.max-width").source, "default");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_go_service_except_png() {
        let o = server(&["--config=/dev/null"]);
        assert_eq!(o.server.addr.port(), 8081);
        assert_eq!(o.server.auth_tokens, vec!["-"]);
        assert_eq!(o.server.default_encoding, DefaultEncoding::Png);
        let r = &o.request;
        assert_eq!(
            (r.min_width, r.min_height, r.max_width, r.max_height),
            (1000, 500, 3000, 3000)
        );
        assert_eq!(r.readiness_timeout, Duration::from_secs(30));
        assert_eq!(*r, RequestDefaults::default());
        assert!(!o.server.allow_missing_token);
    }

    #[test]
    fn auth_tokens_split_on_commas() {
        let o = server(&[
            "--config=/dev/null",
            "--server.auth-token=a,b",
            "--server.auth-token=c",
        ]);
        assert_eq!(o.server.auth_tokens, vec!["a", "b", "c"]);
    }

    #[test]
    fn file_values_apply_below_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "server:\n  addr: \":9999\"\nbrowser.min-width: 1200\nbrowser:\n  portrait: true\n",
        )
        .unwrap();
        let cfg = format!("--config={}", path.display());
        let o = server(&[&cfg, "--server.addr=127.0.0.1:7000"]);
        assert_eq!(o.server.addr.port(), 7000, "flag beats file");
        assert_eq!(o.request.min_width, 1200);
        assert!(o.request.portrait);
    }

    #[test]
    fn unknown_file_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, r#"{"server": {"adr": ":1"}}"#).unwrap();
        let err = parse(&[&format!("--config={}", path.display())]).unwrap_err();
        assert!(err.to_string().contains("server.adr"), "{err}");
    }

    #[test]
    fn validation_names_the_option() {
        let o = server(&["--config=/dev/null", "--browser.max-width=500"]);
        assert!(
            o.validate()
                .unwrap_err()
                .to_string()
                .contains("browser.max-width")
        );
        for (args, option) in [
            (&["--render.default-timeout=10m"][..], "render.max-timeout"),
            (&["--plugin.output-dir=png"][..], "plugin.output-dir"),
            (
                &["--browser.sandbox=on", "--browser.flag=--no-sandbox"][..],
                "browser.sandbox=on",
            ),
        ] {
            let mut argv = vec!["--config=/dev/null"];
            argv.extend_from_slice(args);
            let err = server(&argv).validate().unwrap_err().to_string();
            assert!(err.contains(option), "{args:?}: {err}");
        }
        assert!(
            server(&[
                "--config=/dev/null",
                "--browser.sandbox=off",
                "--browser.flag=--no-sandbox"
            ])
            .validate()
            .is_ok()
        );
        let o = server(&["--config=/dev/null", "--browser.page-scale-factor=5"]);
        assert!(
            o.validate()
                .unwrap_err()
                .to_string()
                .contains("max-page-scale-factor")
        );
    }

    #[test]
    fn browser_flags_split_at_double_dash() {
        let flags = split_browser_flags(&["--a=1 --b, --c".to_string(), "--d".to_string()]);
        assert_eq!(flags, vec!["--a=1", "--b", "--c", "--d"]);
    }
}
