//! The command line: `grender server` and the one-shot commands (`render`, `doctor`,
//! `healthcheck`, `print-config`). Options are parsed here once, with the config file layered
//! under flags and environment variables ([`crate::config`]).

mod doctor;
mod render;
mod report;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::api::HttpServer;
use crate::config::{LogFormat, OptionSource, ServerOptions};
use crate::service::Service;
use crate::startup::{LogStyle, block_on, init_logging, shutdown_signal};

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
    Render(Box<render::RenderArgs>),
    /// Check a setup end to end: Chromium, fonts, the renderer, Grafana, a real render.
    Doctor(Box<doctor::DoctorArgs>),
    /// Exit 0 when the service at server.addr answers /healthz (for Docker HEALTHCHECK).
    Healthcheck(Box<ServerOptions>),
    /// Print the effective configuration, secrets masked, with where each value came from.
    PrintConfig(Box<ServerOptions>),
    /// Scheduled e-mail reports: `report list`, or `report send NAME [--to ADDR]` to send one now.
    Report(Box<report::ReportArgs>),
}

impl Cli {
    /// Parses `args` with the config file layered under flags and environment variables,
    /// also saying where every option of the subcommand came from.
    pub fn parse_args<I, T>(args: I) -> Result<(Cli, Vec<OptionSource>), clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let argv = args.into_iter().map(Into::into).collect();
        let (matches, sources) = crate::config::parse_layered(Cli::command(), argv)?;
        Ok((Cli::from_arg_matches(&matches)?, sources))
    }
}

/// Runs the binary: parses the command line and runs the command; the result is the exit code.
pub fn run() -> ExitCode {
    for (name, value) in crate::config::node_env_aliases(|k| std::env::var(k).ok()) {
        // SAFETY: no other thread exists yet; the runtime starts later.
        unsafe { std::env::set_var(name, value) };
    }
    let (cli, sources) = match Cli::parse_args(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(e) => return usage_error(e),
    };
    match cli.command {
        Command::Server(opts) => run_server(*opts),
        Command::Render(args) => {
            init_logging(&quieter(&args.server.log.level), LogStyle::Text);
            block_on(async move { ExitCode::from(render::run(*args).await) })
        }
        Command::Doctor(args) => {
            init_logging(&quieter(&args.server.log.level), LogStyle::Text);
            block_on(async move { ExitCode::from(doctor::run(*args).await) })
        }
        Command::Healthcheck(opts) => {
            block_on(async move { ExitCode::from(healthcheck(&opts).await) })
        }
        Command::Report(args) => {
            init_logging(&quieter(&args.server.log.level), LogStyle::Text);
            block_on(async move { ExitCode::from(report::run(*args).await) })
        }
        Command::PrintConfig(_) => {
            print_config(&sources);
            ExitCode::SUCCESS
        }
    }
}

/// One-shot commands print warnings and errors, not the service's info lines.
fn quieter(level: &str) -> String {
    level.replace("info", "warn")
}

/// Help and version go to stdout with 0; a bad command line is one clear line and 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(2)
        }
        _ => {
            let text = e.to_string();
            let line = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            eprintln!("grender: {}", line.trim_start_matches("error: "));
            ExitCode::from(2)
        }
    }
}

/// `grender server`: serves until SIGTERM or SIGINT, then drains and stops Chromium.
fn run_server(opts: ServerOptions) -> ExitCode {
    let style = match opts.log.format {
        LogFormat::Text => LogStyle::Text,
        LogFormat::Json => LogStyle::Json,
    };
    init_logging(&opts.log.level, style);
    block_on(async move {
        let service = match Service::start(&opts) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("grender: {e}");
                return ExitCode::from(2);
            }
        };
        let reports = match &opts.reports_file {
            Some(path) => match crate::report::Reports::open(path, service.clone()) {
                Ok(reports) => {
                    reports.start();
                    Some(reports)
                }
                Err(e) => {
                    eprintln!("grender: {e}");
                    service.shutdown().await;
                    return ExitCode::from(2);
                }
            },
            None => None,
        };
        let http = match HttpServer::with_reports(service.clone(), &opts.server, reports.clone()) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("grender: {e}");
                service.shutdown().await;
                return ExitCode::from(2);
            }
        };
        let addr = opts.server.addr;
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("grender: cannot listen on {addr}: {e} (set server.addr / SERVER_ADDR)");
                service.shutdown().await;
                return ExitCode::FAILURE;
            }
        };
        warn_about_open_settings(&opts);
        tracing::info!(%addr, concurrency = opts.effective_concurrency(), "grender listening");
        let starting = service.clone();
        tokio::spawn(async move {
            if let Err(e) = starting.wait_started().await {
                tracing::error!("Chromium could not be started: {e}");
            }
        });
        let served = http
            .serve(listener, shutdown_signal(), opts.server.shutdown_timeout)
            .await;
        if let Some(reports) = reports {
            reports.release();
        }
        match served {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!("server error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Start-up warnings about settings that leave the service open or do nothing.
fn warn_about_open_settings(opts: &ServerOptions) {
    if opts.server.allow_missing_token {
        tracing::warn!(
            "server.allow-missing-token is on: requests without X-Auth-Token are accepted (only for Grafana releases from before the 2022 token fix)"
        );
    }
    if opts.server.allowed_origins.is_empty() {
        tracing::warn!(
            "server.allowed-origin is not set: grender renders any http(s) URL a token holder sends; set it to your Grafana's origin"
        );
    }
    if opts.render.reuse_app && opts.render.isolation != crate::config::Isolation::Context {
        tracing::warn!(
            "render.reuse-app has no effect with render.isolation=process: every render gets a fresh Chromium"
        );
    }
    if opts.server.auth_tokens.iter().any(|t| t == "-") {
        tracing::warn!(
            "the default auth token '-' is accepted; set server.auth-token to Grafana's renderer_token"
        );
    }
}

/// Starts a service (browser only, no HTTP) for a one-shot command.
async fn start_service(opts: &ServerOptions) -> Result<Arc<Service>, String> {
    let service = Service::start(opts).map_err(|e| e.to_string())?;
    if let Err(e) = service.wait_started().await {
        service.shutdown().await;
        return Err(format!("Chromium could not be started: {e}"));
    }
    Ok(service)
}

/// Whether standard error is a terminal (for progress lines).
fn stderr_is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(2) == 1 }
}

/// `grender healthcheck`: GET /healthz of the service at server.addr; 0 when it says OK.
/// Over HTTPS when the service serves it (without verifying its certificate, as the
/// official healthcheck does: it only asks whether this very service answers).
async fn healthcheck(opts: &ServerOptions) -> u8 {
    let mut addr = opts.server.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    if opts.server.certificate_file.is_some() {
        return match crate::api::tls::insecure_get_status(addr, "/healthz").await {
            Ok(200) => 0,
            Ok(status) => {
                eprintln!("grender: https://{addr}/healthz answered {status}");
                1
            }
            Err(e) => {
                eprintln!("grender: https://{addr}/healthz is not reachable: {e}");
                1
            }
        };
    }
    let url = format!("http://{addr}/healthz");
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("grender: {e}");
            return 1;
        }
    };
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => 0,
        Ok(r) => {
            eprintln!("grender: {url} answered {}", r.status());
            1
        }
        Err(e) => {
            eprintln!("grender: {url} is not reachable: {e}");
            1
        }
    }
}

/// `grender print-config`: every option with its value and source; tokens masked.
fn print_config(sources: &[OptionSource]) {
    let width = sources.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in sources {
        let value = if s.name == "server.auth-token" && !s.value.is_empty() {
            let count = s.value.split(',').count();
            format!("<{count} secret{}>", if count == 1 { "" } else { "s" })
        } else {
            s.value.clone()
        };
        println!("--{:width$} = {:30} ({})", s.name, value, s.source);
    }
}
