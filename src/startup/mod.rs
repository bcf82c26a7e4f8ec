//! What every way of running grender does first: install the logger (text, JSON, or
//! [`hclog`] for plugin mode), build the async runtime, and learn when to stop.

mod hclog;

use std::process::ExitCode;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStyle {
    /// Human-readable lines on stderr.
    Text,
    /// One JSON object per line on stderr.
    Json,
    /// hashicorp's hclog JSON, which Grafana reads from a plugin's stderr.
    Hclog,
}

/// Installs the process's logger at `level` (debug, info, warn, error). The CDP client's own
/// messages are never printed (its parse-error message holds whole protocol messages, render
/// keys included) but counted and named by method (see `cdp_health`).
pub fn init_logging(level: &str, style: LogStyle) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter =
        tracing_subscriber::EnvFilter::try_new(format!("{level},chromiumoxide=off,chromium=warn"))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,chromiumoxide=off"));
    let fmt = || tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let printed = match style {
        LogStyle::Text => fmt().with_filter(filter).boxed(),
        LogStyle::Json => fmt().json().with_filter(filter).boxed(),
        LogStyle::Hclog => hclog::HclogLayer.with_filter(filter).boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(printed)
        .with(crate::cdp_health::layer())
        .try_init();
}

/// The multi-threaded runtime every command runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Runs `command` on a new runtime; its result is the exit code.
pub fn block_on(command: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match runtime() {
        Ok(rt) => rt.block_on(command),
        Err(e) => {
            eprintln!("grender: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or SIGINT: how Docker, Kubernetes and Grafana ask grender to stop.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; finishing renders in progress"),
        _ = int.recv() => tracing::info!("SIGINT received; finishing renders in progress"),
    }
}
