//! Plugin mode: grender as the `grafana-image-renderer` backend plugin that Grafana 7.x–11.x
//! start themselves (hashicorp go-plugin over gRPC), instead of a separate HTTP service.
//!
//! Grafana runs the plugin's executable with a magic cookie in the environment, reads one
//! handshake line from its stdout (`1|2|tcp|127.0.0.1:PORT|grpc`), then calls the gRPC
//! services of [`services`] and reads the plugin's logs from stderr (hclog JSON lines).

pub(crate) mod options;
pub(crate) mod output;
pub mod proto;
pub(crate) mod services;

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ServerOptions;
use crate::service::Service;
use crate::startup::{LogStyle, init_logging};

/// go-plugin's handshake cookie for Grafana's backend plugins.
pub const MAGIC_COOKIE_KEY: &str = "grafana_plugin_type";
/// The cookie's value.
pub const MAGIC_COOKIE_VALUE: &str = "datasource";
/// The plugin protocol version grender speaks (Grafana 7+).
pub const PROTOCOL_VERSION: u32 = 2;

/// What a person who runs the binary by hand is told.
pub const NOT_A_PLUGIN_HOST: &str = "\
This is grender, a renderer for Grafana. It runs in one of two ways:
  - as a service that Grafana calls over HTTP:  grender server   (see grender --help);
  - as Grafana's image renderer plugin: Grafana starts it itself from
    data/plugins/grafana-image-renderer/ (the magic cookie grafana_plugin_type is missing,
    so Grafana did not start this process).";

/// Decides from the environment and arguments whether this process is a plugin: `Some` exit
/// code when it was handled here (plugin mode, or a plugin executable started by hand).
pub fn entry() -> Option<ExitCode> {
    if std::env::var(MAGIC_COOKIE_KEY).is_ok_and(|v| v == MAGIC_COOKIE_VALUE) {
        return Some(run());
    }
    let mut args = std::env::args_os();
    let started_as_plugin = args
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().starts_with("plugin_start"))
        })
        .unwrap_or(false);
    if started_as_plugin || args.next().is_none() {
        eprintln!("{NOT_A_PLUGIN_HOST}");
        return Some(ExitCode::from(2));
    }
    None
}

/// How to get Chromium into Grafana's own image, where the plugin runs.
const INSTALL_CHROMIUM: &str = "install Chromium in the Grafana image: Alpine-based images \
     (grafana/grafana): apk add --no-cache chromium nss freetype harfbuzz ttf-freefont font-noto-cjk; \
     Ubuntu-based (grafana/grafana:*-ubuntu): apt-get install -y chromium-browser fonts-noto-cjk; \
     or point GF_PLUGIN_RENDERING_CHROME_BIN at a Chromium binary";

/// Runs the plugin until Grafana stops it. Logs go to stderr as hclog JSON lines.
fn run() -> ExitCode {
    let offered = std::env::var("PLUGIN_PROTOCOL_VERSIONS").unwrap_or_else(|_| "2".into());
    for (name, value) in options::environment(|k| std::env::var(k).ok()) {
        // SAFETY: no other thread exists yet; the runtime starts below.
        unsafe { std::env::set_var(name, value) };
    }
    let opts = match ServerOptions::from_env() {
        Ok(opts) => opts,
        Err(e) => {
            init_logging("info", LogStyle::Hclog);
            tracing::error!(
                "invalid plugin settings (GF_PLUGIN_*): {}",
                first_line(&e.to_string())
            );
            return ExitCode::FAILURE;
        }
    };
    init_logging(&opts.log.level, LogStyle::Hclog);
    if !offered
        .split(',')
        .any(|v| v.trim().parse() == Ok(PROTOCOL_VERSION))
    {
        tracing::error!(
            "Grafana offers plugin protocol versions {offered}; grender speaks version {PROTOCOL_VERSION} \
             (Grafana 7 and later). Use grender as an HTTP service (grender server) instead"
        );
        return ExitCode::FAILURE;
    }
    match crate::startup::runtime() {
        Ok(runtime) => runtime.block_on(serve(opts)),
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(opts: ServerOptions) -> ExitCode {
    let service = match Service::start(&opts) {
        Ok(s) => s,
        Err(e) => {
            let fix = if e.to_string().contains("browser.path")
                || e.to_string().contains("Chromium")
                || e.to_string().contains("CHROME_BIN")
            {
                format!(" (GF_PLUGIN_RENDERING_CHROME_BIN). Fix: {INSTALL_CHROMIUM}")
            } else {
                String::new()
            };
            tracing::error!("invalid plugin settings (GF_PLUGIN_*): {e}{fix}");
            return ExitCode::FAILURE;
        }
    };
    let started = tokio::time::timeout(Duration::from_secs(30), service.wait_started());
    match started.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!("Chromium cannot start: {e}. Fix: {INSTALL_CHROMIUM}");
            service.shutdown().await;
            return ExitCode::FAILURE;
        }
        Err(_) => {
            tracing::error!("Chromium did not start within 30 s. Fix: {INSTALL_CHROMIUM}");
            service.shutdown().await;
            return ExitCode::FAILURE;
        }
    }
    let host = std::env::var("GF_PLUGIN_GRPC_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("GF_PLUGIN_GRPC_PORT").unwrap_or_else(|_| "0".into());
    let joined = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let addr: SocketAddr = match joined.parse() {
        Ok(a) => a,
        Err(_) => {
            tracing::error!("GF_PLUGIN_GRPC_HOST/PORT ({host}:{port}) is not an address");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("cannot read the listening address: {e}");
            return ExitCode::FAILURE;
        }
    };
    let services = services::PluginServices {
        service: service.clone(),
        shutdown: Arc::new(tokio::sync::Notify::new()),
        output_dirs: Arc::new(opts.plugin.output_dirs.clone()),
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in ["", "plugin"] {
        health
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
    }
    // go-plugin reads exactly one line: core protocol | app protocol | network | address | grpc.
    let handshake = format!("1|{PROTOCOL_VERSION}|tcp|{local}|grpc\n");
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(handshake.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        tracing::error!("cannot write the handshake to stdout");
        return ExitCode::FAILURE;
    }
    drop(stdout);
    tracing::info!(addr = %local, sandbox = crate::browser::launch::sandbox_state(opts.browser.sandbox), "grender plugin serving");
    if opts.server.auth_tokens.iter().any(|t| t == "-") {
        tracing::warn!(
            "the default auth token '-' is accepted: any local process that reaches {local} can render with it. \
             Set [plugin.grafana-image-renderer] auth_token (GF_PLUGIN_AUTH_TOKEN) and Grafana's [rendering] \
             renderer_token to the same secret"
        );
    }
    let stop = services.shutdown.clone();
    let signal = async move {
        tokio::select! {
            () = stop.notified() => {}
            () = crate::startup::shutdown_signal() => {}
        }
    };
    use proto::plugin::grpc_controller_server::GrpcControllerServer;
    use proto::pluginextensionv2::renderer_server::RendererServer;
    use proto::pluginv2::diagnostics_server::DiagnosticsServer;
    let result = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(RendererServer::new(services.clone()))
        .add_service(DiagnosticsServer::new(services.clone()))
        .add_service(GrpcControllerServer::new(services))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            signal,
        )
        .await;
    service.shutdown().await;
    match result {
        Ok(()) => {
            tracing::info!("grender plugin stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("the gRPC server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim_start_matches("error: ")
        .to_string()
}
