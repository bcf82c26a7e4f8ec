//! grender: a fast, drop-in replacement for Grafana's image renderer.
//!
//! A request flows top to bottom through the modules:
//! [`api`] (routes, auth, parsing into a [`request::RenderRequest`]) →
//! [`render`] (queue slot and the one deadline) →
//! [`browser`] (one supervised, warm Chromium) →
//! [`page`] (an isolated context per render: emulation, cookie, navigation, readiness, capture).
//! [`config`] holds every option.

pub mod api;
pub mod browser;
pub(crate) mod cdp_health;
pub mod cli;
pub mod config;
pub mod duration;
pub mod error;
pub mod metrics;
pub mod output;
pub mod overrides;
pub mod page;
pub mod plugin;
pub mod render;
pub mod request;
pub mod serve;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use api::AppState;
use api::auth::TokenCheck;
use api::params::Limits;
use browser::{BrowserOptions, BrowserSupervisor, LaunchOptions};
use config::{ConfigError, ServerOptions};
use page::{PageOptions, ReadinessOptions};
use render::Renderer;

/// Installs the process's logger: `filter` decides what is printed (to stderr, as text or
/// JSON); the CDP client's own messages are never printed but counted (see `cdp_health`).
pub fn init_logging(filter: tracing_subscriber::EnvFilter, json: bool) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let printed = if json {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(printed)
        .with(cdp_health::layer())
        .try_init();
}

/// The origins of server.allowed-origin (validated at start-up).
fn allowed_origins(origins: &[String]) -> Vec<url::Origin> {
    origins
        .iter()
        .filter_map(|o| url::Url::parse(o).ok().map(|u| u.origin()))
        .collect()
}

/// A configured service: the HTTP state plus the browser it renders with.
pub struct Service {
    pub state: Arc<AppState>,
    pub browsers: Arc<BrowserSupervisor>,
    /// HTTPS settings, when server.certificate-file and server.key-file are set.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Limits of the HTTP connection loop.
    pub connections: serve::ConnectionLimits,
}

impl Service {
    /// Resolves the browser, starts its supervisor and builds the HTTP state.
    /// Must run inside a tokio runtime.
    pub fn start(opts: &ServerOptions) -> Result<Service, ConfigError> {
        opts.validate()?;
        let tls = match (&opts.certificate_file, &opts.key_file) {
            (Some(cert), Some(key)) => Some(tls::server_config(cert, key, &opts.min_tls_version)?),
            _ => None,
        };
        let path = opts.resolve_browser()?;
        let timezone = opts.default_timezone();
        let browsers = BrowserSupervisor::start(BrowserOptions {
            launch: LaunchOptions {
                path,
                extra_flags: config::split_browser_flags(&opts.browser_flags),
                timezone: timezone.clone(),
                launch_timeout: Duration::from_secs(20),
                ca_file: opts.ca_file.clone(),
                sandbox: opts.sandbox,
            },
            context_reuse: opts.context_reuse,
            tabs: opts.effective_concurrency(),
            process_per_render: opts.isolation == "process",
            recycle_after: opts.recycle_after,
            memory_budget_mib: opts.memory_budget_mib,
        });
        let page = PageOptions {
            default_timezone: timezone,
            readiness: ReadinessOptions {
                timeout: opts.readiness_timeout,
                first_signal_grace: opts.give_up_on_first_query,
            },
            max_pixels: opts.max_pixels,
            max_csv_bytes: opts.max_csv_bytes,
            origins: page::guard::OriginPolicy {
                allowed: allowed_origins(&opts.allowed_origins),
                block_other_hosts: opts.block_other_hosts,
            },
        };
        let metrics =
            Arc::new(metrics::Metrics::new().map_err(|e| ConfigError(format!("metrics: {e}")))?);
        let renderer = Arc::new(Renderer::new(
            browsers.clone(),
            opts.effective_concurrency(),
            opts.queue_size,
            page,
            metrics.clone(),
        ));
        let allowed_origins = allowed_origins(&opts.allowed_origins);
        let limits = Limits {
            min_width: opts.min_width,
            min_height: opts.min_height,
            max_width: opts.max_width,
            max_height: opts.max_height,
            default_scale: opts.page_scale_factor,
            max_scale: opts.max_page_scale_factor,
            default_encoding: opts.default_encoding.clone(),
            default_timeout: opts.default_timeout,
            max_timeout: opts.max_timeout,
            max_pdf_pages: opts.max_pdf_pages,
            landscape: !opts.portrait,
            max_pixels: opts.max_pixels,
            optimize_png: opts.optimize_png,
            allowed_origins,
            overrides: overrides::parse_all(&opts.browser_overrides)?,
        };
        let tokens = TokenCheck::new(&opts.auth_tokens, opts.allow_missing_token);
        Ok(Service {
            state: Arc::new(AppState {
                renderer,
                tokens,
                limits,
                metrics,
                sizes: api::RequestSizeLimits {
                    max_url_bytes: opts.max_url_bytes,
                    max_header_bytes: opts.max_header_bytes,
                },
            }),
            browsers,
            tls,
            connections: serve::ConnectionLimits {
                max_connections: opts.max_connections,
                header_read_timeout: opts.header_read_timeout,
                // Twice the named limits, so heads just over them get the named answer.
                max_head_bytes: 2 * (opts.max_url_bytes + opts.max_header_bytes),
            },
        })
    }

    /// The axum router serving this service.
    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, then closes Chromium.
    /// On shutdown it stops accepting, lets renders in progress finish for up to
    /// `drain_limit`, then closes Chromium.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        drain_limit: Duration,
    ) -> std::io::Result<()> {
        let (stopping_tx, stopping) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = stopping_tx.send(());
        };
        let router = self.router();
        let limits = self.connections.clone();
        let refused = self
            .state
            .metrics
            .limits_refused
            .with_label_values(&["server.max-connections"]);
        let acceptor = self.tls.clone().map(tokio_rustls::TlsAcceptor::from);
        let server = serve::serve(listener, router, limits, acceptor, refused, signal);
        let browsers = self.browsers.clone();
        let result = tokio::select! {
            result = server => result,
            _ = async {
                if stopping.await.is_err() {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(drain_limit).await;
            } => {
                tracing::warn!("renders still running after {drain_limit:?} (server.shutdown-timeout); stopping anyway");
                Ok(())
            }
        };
        browsers.shutdown().await;
        result
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
