//! The `grender` binary: parse options, start the service, stop cleanly on signals.

use std::process::ExitCode;

use grender::Service;
use grender::config::{Command, ServerOptions, parse_cli_with_sources};

fn main() -> ExitCode {
    // Started by Grafana as its renderer plugin (or a plugin executable run by hand).
    if let Some(code) = grender::plugin::entry() {
        return code;
    }
    for (name, value) in grender::config::node_env_aliases(|k| std::env::var(k).ok()) {
        // SAFETY: no other thread exists yet; the runtime starts later.
        unsafe { std::env::set_var(name, value) };
    }
    let (cli, sources) = match parse_cli_with_sources(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One clear line, not a page of usage.
            let text = e.to_string();
            let line = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            eprintln!("grender: {}", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Server(opts) => run_server(*opts),
        Command::Render(args) => run_once(&args.server.clone(), grender::cli::render::run(*args)),
        Command::Doctor(args) => run_once(&args.server.clone(), grender::cli::doctor::run(*args)),
        Command::Healthcheck(opts) => {
            let opts = *opts;
            run_once(&opts.clone(), async move {
                grender::cli::healthcheck(&opts).await
            })
        }
        Command::PrintConfig(_) => {
            grender::cli::print_config(&sources);
            ExitCode::SUCCESS
        }
    }
}

/// Runs a one-shot command (render, doctor) on a runtime of its own.
fn run_once(opts: &ServerOptions, command: impl std::future::Future<Output = u8>) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{},chromiumoxide=off",
        opts.log_level.replace("info", "warn")
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,chromiumoxide=off"));
    grender::init_logging(filter, false);
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => ExitCode::from(rt.block_on(command)),
        Err(e) => {
            eprintln!("grender: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_server(opts: ServerOptions) -> ExitCode {
    if let Err(e) = opts.validate() {
        eprintln!("grender: {e}");
        return ExitCode::from(2);
    }
    init_logging(&opts);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("grender: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let service = match Service::start(&opts) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("grender: {e}");
                return ExitCode::from(2);
            }
        };
        let listener = match tokio::net::TcpListener::bind(opts.addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("grender: cannot listen on {}: {e} (set server.addr / SERVER_ADDR)", opts.addr);
                service.browsers.shutdown().await;
                return ExitCode::FAILURE;
            }
        };
        if opts.allow_missing_token {
            tracing::warn!("server.allow-missing-token is on: requests without X-Auth-Token are accepted (only for Grafana releases from before the 2022 token fix)");
        }
        if opts.allowed_origins.is_empty() {
            tracing::warn!("server.allowed-origin is not set: grender renders any http(s) URL a token holder sends; set it to your Grafana's origin");
        }
        if opts.auth_tokens.iter().any(|t| t == "-") {
            tracing::warn!("the default auth token '-' is accepted; set server.auth-token to Grafana's renderer_token");
        }
        tracing::info!(addr = %opts.addr, concurrency = opts.effective_concurrency(), "grender listening");
        let browsers = service.browsers.clone();
        tokio::spawn(async move {
            if let Err(e) = browsers.wait_started().await {
                tracing::error!("Chromium could not be started: {e}");
            }
        });
        match service.serve(listener, grender::shutdown_signal(), opts.shutdown_timeout).await {
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

fn init_logging(opts: &ServerOptions) {
    // The CDP crate logs whole protocol messages (render keys included) when it cannot
    // parse one: it never prints; grender counts those and names their method instead.
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{},chromiumoxide=off,chromium=warn",
        opts.log_level
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,chromiumoxide=off"));
    grender::init_logging(filter, opts.log_format == "json");
}
