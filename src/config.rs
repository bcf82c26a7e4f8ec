//! Every option of the service, with the official Go renderer's names.
//!
//! Sources, highest precedence first: command-line flag, environment variable,
//! then `config.yaml` / `config.yml` / `config.json` in the working directory
//! (or the file named by `--config`). Keys in the file are the flag names,
//! either dotted (`server.addr: ":8081"`) or nested (`server: {addr: ...}`).
//!
//! The file is layered in by re-parsing: after a first parse we know which
//! options the user gave on the command line or in the environment; every
//! other option found in the file is appended as `--name=value` and the
//! arguments are parsed again. Clap then does all type checking in one place.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::duration::parse_duration;

/// The command line of the `grender` binary.
#[derive(Debug, Parser)]
#[command(
    name = "grender",
    version,
    about = "A fast, drop-in replacement for Grafana's image renderer"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What the binary is asked to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP render service that Grafana's `[rendering] server_url` points at.
    Server(Box<ServerOptions>),
    /// Render one page to a file, for scripts and cron jobs.
    Render(Box<crate::cli::render::RenderArgs>),
    /// Check a setup end to end: Chromium, fonts, the renderer, Grafana, a real render.
    Doctor(Box<crate::cli::doctor::DoctorArgs>),
    /// Exit 0 when the service at server.addr answers /healthz (for Docker HEALTHCHECK).
    Healthcheck(Box<ServerOptions>),
    /// Print the effective configuration, secrets masked, with where each value came from.
    PrintConfig(Box<ServerOptions>),
}

/// Options of `grender server`. Names follow the official Go service.
#[derive(Debug, Clone, Args)]
pub struct ServerOptions {
    /// Config file (YAML or JSON). Default: config.yaml, config.yml or config.json in the working directory.
    #[arg(long = "config", env = "GRENDER_CONFIG")]
    pub config_file: Option<PathBuf>,

    /// Log level: debug, info, warn or error.
    #[arg(long = "log.level", env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log format: text or json.
    #[arg(long = "log.format", env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

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
    #[arg(long = "server.min-tls-version", env = "SERVER_MIN_TLS_VERSION", default_value = "1.2", value_parser = ["1.2", "1.3"])]
    pub min_tls_version: String,

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
    #[arg(long = "api.default-encoding", env = "API_DEFAULT_ENCODING", default_value = "png", value_parser = ["png", "pdf"])]
    pub default_encoding: String,

    /// Chromium binary. Default: CHROME_BIN, else the first of chromium-headless-shell, chromium,
    /// chromium-browser, google-chrome found.
    #[arg(long = "browser.path", env = "BROWSER_PATH")]
    pub browser_path: Option<PathBuf>,

    /// Per-URL request settings: "REGEX=--browser.min-width=500 --browser.min-height=500".
    /// The first pattern matching the target URL wins.
    #[arg(long = "browser.override", env = "BROWSER_OVERRIDE", action = ArgAction::Append)]
    pub browser_overrides: Vec<String>,

    /// PEM file of CA certificates Chromium trusts, for Grafana behind a private CA.
    #[arg(long = "browser.ca-file", env = "BROWSER_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// Chromium's sandbox: auto keeps it when running as a non-root user and drops it with a
    /// warning where it cannot start (no user namespaces); on refuses to run without it.
    #[arg(
        long = "browser.sandbox",
        env = "BROWSER_SANDBOX",
        default_value = "auto"
    )]
    pub sandbox: crate::browser::launch::SandboxMode,

    /// Recompress PNG pictures losslessly by default (a request's optimize=false turns it off).
    /// Grafana itself gets the same pixels in a smaller file, for some CPU per render.
    #[arg(long = "render.optimize-png", env = "RENDER_OPTIMIZE_PNG", default_value = "false",
          num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub optimize_png: bool,

    /// Extra Chromium flags; one value may hold several ("--a=1 --b").
    #[arg(long = "browser.flag", env = "BROWSER_FLAG", action = ArgAction::Append)]
    pub browser_flags: Vec<String>,

    /// Default time zone of renders (IANA name). Also read from TZ.
    #[arg(long = "browser.timezone", env = "BROWSER_TIMEZONE")]
    pub timezone: Option<String>,

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

    /// Renders one browser context serves, scrubbed between them, before it is replaced.
    /// 1 gives every render a brand-new context (slower: Grafana's bundle loads every time).
    #[arg(long = "browser.context-reuse", env = "BROWSER_CONTEXT_REUSE", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub context_reuse: u32,

    /// How renders are kept apart: "context" (warm, scrubbed browser contexts in one Chromium)
    /// or "process" (a fresh Chromium per render, launched ahead of time; slower, strictest).
    #[arg(long = "render.isolation", env = "RENDER_ISOLATION", default_value = "context", value_parser = ["context", "process"])]
    pub isolation: String,

    /// Restart Chromium after this many renders, draining renders in flight first (0: never).
    #[arg(
        long = "browser.recycle-after",
        env = "BROWSER_RECYCLE_AFTER",
        default_value_t = 1000
    )]
    pub recycle_after: u64,

    /// Restart Chromium (draining first) when its processes use more than this many MiB (0: no limit).
    #[arg(
        long = "browser.memory-budget",
        env = "BROWSER_MEMORY_BUDGET",
        default_value_t = 0
    )]
    pub memory_budget_mib: u64,

    /// Renders running at once; the rest wait in the queue.
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
    /// Plugin mode: directories Grafana's filePath may point into (comma-separated in the
    /// environment; also GF_PLUGIN_OUTPUT_DIR). Default: a directory named png, csv or pdf, as in
    /// Grafana's data directory.
    #[arg(long = "plugin.output-dir", env = "PLUGIN_OUTPUT_DIR", value_delimiter = ',', action = ArgAction::Append)]
    pub plugin_output_dirs: Vec<PathBuf>,
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
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        if self.min_width < 100 || self.min_height < 100 {
            return bad("browser.min-width and browser.min-height must be at least 100".into());
        }
        if self.max_width >= 0 && self.max_width < self.min_width {
            return bad(format!(
                "browser.max-width ({}) is below browser.min-width ({})",
                self.max_width, self.min_width
            ));
        }
        if self.max_height >= 0 && self.max_height < self.min_height {
            return bad(format!(
                "browser.max-height ({}) is below browser.min-height ({})",
                self.max_height, self.min_height
            ));
        }
        let (psf, max) = (self.page_scale_factor, self.max_page_scale_factor);
        if !(psf.is_finite() && psf > 0.0 && max.is_finite() && max > 0.0) {
            return bad("browser.page-scale-factor and browser.max-page-scale-factor must be positive numbers".into());
        }
        if psf > max {
            return bad(format!(
                "browser.page-scale-factor ({psf}) is above browser.max-page-scale-factor ({max})"
            ));
        }
        if self.auth_tokens.iter().all(|t| t.is_empty()) {
            return bad(
                "server.auth-token is empty; set it to Grafana's [rendering] renderer_token".into(),
            );
        }
        crate::overrides::parse_all(&self.browser_overrides)?;
        for (name, file) in [
            ("browser.ca-file", &self.ca_file),
            ("server.certificate-file", &self.certificate_file),
            ("server.key-file", &self.key_file),
        ] {
            if let Some(path) = file
                && !path.is_file()
            {
                return bad(format!("{name} {} is not a readable file", path.display()));
            }
        }
        if self.sandbox == crate::browser::launch::SandboxMode::On
            && split_browser_flags(&self.browser_flags)
                .iter()
                .any(|f| f == "--no-sandbox" || f.starts_with("--no-sandbox="))
        {
            return bad(
                "browser.sandbox=on conflicts with --no-sandbox in browser.flag (BROWSER_FLAG / RENDERING_ARGS): \
                 remove one of them"
                    .into(),
            );
        }
        if self.max_url_bytes < 1024 || self.max_header_bytes < 1024 {
            return bad(
                "server.max-url-bytes and server.max-header-bytes must be at least 1024".into(),
            );
        }
        if self.max_connections == 0 {
            return bad("server.max-connections must be at least 1".into());
        }
        if self.header_read_timeout.is_zero() {
            return bad("server.header-read-timeout must be above 0".into());
        }
        if self.max_timeout.is_zero() {
            return bad("render.max-timeout must be above 0".into());
        }
        if self.default_timeout > self.max_timeout {
            return bad(format!(
                "render.default-timeout ({:?}) is above render.max-timeout ({:?})",
                self.default_timeout, self.max_timeout
            ));
        }
        for dir in &self.plugin_output_dirs {
            if !dir.is_absolute() {
                return bad(format!(
                    "plugin.output-dir '{}' is not an absolute path",
                    dir.display()
                ));
            }
        }
        if self.concurrency == Some(0) {
            return bad("render.concurrency must be at least 1".into());
        }
        for origin in &self.allowed_origins {
            match url::Url::parse(origin) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => {
                    return bad(format!(
                        "server.allowed-origin '{origin}' is not an http(s) origin like http://grafana:3000"
                    ));
                }
            }
        }
        if let Some(path) = &self.browser_path
            && !path.exists()
            && which(path.as_os_str().to_string_lossy().as_ref()).is_none()
        {
            return bad(format!("browser.path '{}' does not exist", path.display()));
        }
        Ok(())
    }

    /// The time zone renders use unless the request names a valid one.
    pub fn default_timezone(&self) -> String {
        self.timezone
            .clone()
            .or_else(|| std::env::var("TZ").ok())
            .map(|tz| tz.trim_start_matches(':').to_string())
            .filter(|tz| !tz.is_empty())
            .unwrap_or_else(|| "Etc/UTC".to_string())
    }

    /// Renders running at once: two per core, the knee measured in STACK.md on 2 cores.
    pub fn effective_concurrency(&self) -> usize {
        self.concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get() * 2)
                .unwrap_or(4)
        })
    }

    /// The Chromium binary to launch, or why none was found.
    pub fn resolve_browser(&self) -> Result<PathBuf, ConfigError> {
        if let Some(path) = &self.browser_path {
            return which(path.as_os_str().to_string_lossy().as_ref()).ok_or_else(|| {
                ConfigError(format!("browser.path '{}' was not found", path.display()))
            });
        }
        if let Some(bin) = std::env::var_os("CHROME_BIN").filter(|b| !b.is_empty()) {
            let bin = bin.to_string_lossy().to_string();
            return which(&bin)
                .ok_or_else(|| ConfigError(format!("CHROME_BIN '{bin}' was not found")));
        }
        // The real binaries first: Debian's /usr/bin wrappers for the shell do not `exec`,
        // so a kill of the wrapper would orphan Chromium.
        const CANDIDATES: [&str; 6] = [
            "/usr/lib/chromium/chromium-headless-shell",
            "chromium-headless-shell",
            "/usr/lib/chromium/chromium",
            "chromium",
            "chromium-browser",
            "google-chrome",
        ];
        CANDIDATES.iter().find_map(|c| which(c)).ok_or_else(|| {
            ConfigError(
                "no Chromium found: install it (Debian/Ubuntu: apt-get install chromium-headless-shell) \
                 or set browser.path / BROWSER_PATH"
                    .into(),
            )
        })
    }
}

/// Finds an executable by path or on PATH.
fn which(name: &str) -> Option<PathBuf> {
    let is_exe = |p: &Path| p.is_file();
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exe(&p).then_some(p);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| is_exe(p))
}

/// Parses the command line, layering the config file under flags and env vars.
pub fn parse_cli<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    parse_cli_with_sources(args).map(|(cli, _)| cli)
}

/// Where an option's value came from, for `print-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionSource {
    /// The flag name, e.g. `server.addr`.
    pub name: String,
    /// The raw value(s), comma-joined.
    pub value: String,
    /// flag, env NAME, config file, or default.
    pub source: String,
}

/// Like [`parse_cli`], also saying where every option of the subcommand came from.
pub fn parse_cli_with_sources<I, T>(args: I) -> Result<(Cli, Vec<OptionSource>), clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let argv: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let first = Cli::command().try_get_matches_from(&argv)?;
    let Some((name, sub)) = first.subcommand() else {
        return Ok((Cli::from_arg_matches(&first)?, Vec::new()));
    };
    let name = name.to_string();
    let explicit = sub
        .try_get_one::<PathBuf>("config_file")
        .ok()
        .flatten()
        .cloned();
    let file = match load_config_file(explicit.as_deref()) {
        Ok(file) => file,
        Err(msg) => return Err(Cli::command().error(clap::error::ErrorKind::Io, msg)),
    };
    let cmd = Cli::command();
    let Some(sub_cmd) = cmd.find_subcommand(&name) else {
        return Ok((Cli::from_arg_matches(&first)?, Vec::new()));
    };
    let mut extra = Vec::new();
    let mut from_file = std::collections::HashSet::new();
    for (key, values) in file {
        let Some(arg) = sub_cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
        else {
            return Err(Cli::command().error(
                clap::error::ErrorKind::UnknownArgument,
                format!("unknown option '{key}' in the config file"),
            ));
        };
        let given = matches!(
            sub.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if !given {
            from_file.insert(arg.get_id().to_string());
            extra.extend(
                values
                    .into_iter()
                    .map(|v| std::ffi::OsString::from(format!("--{key}={v}"))),
            );
        }
    }
    let mut full = argv;
    full.extend(extra);
    let second = Cli::command().try_get_matches_from(full)?;
    let mut sources = Vec::new();
    if let Some((_, sub)) = second.subcommand() {
        for arg in sub_cmd.get_arguments() {
            let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
                continue;
            };
            let value = sub
                .get_raw(id)
                .map(|vals| {
                    vals.map(|v| v.to_string_lossy().to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let source = match sub.value_source(id) {
                _ if from_file.contains(id) => "config file".to_string(),
                Some(ValueSource::CommandLine) => "flag".to_string(),
                Some(ValueSource::EnvVariable) => {
                    format!(
                        "env {}",
                        arg.get_env()
                            .map(|e| e.to_string_lossy().to_string())
                            .unwrap_or_default()
                    )
                }
                Some(ValueSource::DefaultValue) => "default".to_string(),
                _ => "unset".to_string(),
            };
            sources.push(OptionSource {
                name: long.to_string(),
                value,
                source,
            });
        }
    }
    Ok((Cli::from_arg_matches(&second)?, sources))
}

/// Reads the config file into `dotted.key → values`; an absent default file is empty.
fn load_config_file(explicit: Option<&Path>) -> Result<Vec<(String, Vec<String>)>, String> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match ["config.yaml", "config.yml", "config.json"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
        {
            Some(p) => p,
            None => return Ok(Vec::new()),
        },
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    // JSON is YAML, so one parser serves both, as in the Go service.
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| format!("config file {} is not valid YAML/JSON: {e}", path.display()))?;
    let mut out = Vec::new();
    flatten("", &value, &mut out).map_err(|e| format!("config file {}: {e}", path.display()))?;
    Ok(out)
}

fn flatten(
    prefix: &str,
    value: &serde_yaml_ng::Value,
    out: &mut Vec<(String, Vec<String>)>,
) -> Result<(), String> {
    use serde_yaml_ng::Value;
    let scalar = |v: &Value| -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(format!(
                "'{prefix}' must be a string, number, boolean or list of them"
            )),
        }
    };
    match value {
        Value::Null if prefix.is_empty() => Ok(()),
        Value::Mapping(map) => {
            for (k, v) in map {
                let k = k.as_str().ok_or("keys must be strings")?;
                let key = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out)?;
            }
            Ok(())
        }
        Value::Sequence(items) => {
            out.push((
                prefix.to_string(),
                items.iter().map(scalar).collect::<Result<_, _>>()?,
            ));
            Ok(())
        }
        other => {
            out.push((prefix.to_string(), vec![scalar(other)?]));
            Ok(())
        }
    }
}

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

/// Splits browser.flag values the Go way: a new flag starts at each "--".
pub fn split_browser_flags(values: &[String]) -> Vec<String> {
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

    fn server(args: &[&str]) -> ServerOptions {
        let mut argv = vec!["grender", "server"];
        argv.extend_from_slice(args);
        match parse_cli(argv).expect("parses").command {
            Command::Server(o) => *o,
            _ => unreachable!("a server command line"),
        }
    }

    #[test]
    fn print_config_says_where_values_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "browser:\n  min-width: 1200\n").unwrap();
        let cfg = format!("--config={}", path.display());
        let (_, sources) = parse_cli_with_sources([
            "grender",
            "print-config",
            &cfg,
            "--server.addr=127.0.0.1:7000",
        ])
        .unwrap();
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

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_go_service_except_png() {
        let o = server(&["--config=/dev/null"]);
        assert_eq!(o.addr.port(), 8081);
        assert_eq!(o.auth_tokens, vec!["-"]);
        assert_eq!(o.default_encoding, "png");
        assert_eq!(
            (o.min_width, o.min_height, o.max_width, o.max_height),
            (1000, 500, 3000, 3000)
        );
        assert_eq!(o.readiness_timeout, Duration::from_secs(30));
        assert!(!o.allow_missing_token);
    }

    #[test]
    fn auth_tokens_split_on_commas() {
        let o = server(&[
            "--config=/dev/null",
            "--server.auth-token=a,b",
            "--server.auth-token=c",
        ]);
        assert_eq!(o.auth_tokens, vec!["a", "b", "c"]);
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
        assert_eq!(o.addr.port(), 7000, "flag beats file");
        assert_eq!(o.min_width, 1200);
        assert!(o.portrait);
    }

    #[test]
    fn unknown_file_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, r#"{"server": {"adr": ":1"}}"#).unwrap();
        let err =
            parse_cli(["grender", "server", &format!("--config={}", path.display())]).unwrap_err();
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
