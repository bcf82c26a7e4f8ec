//! The HTTP adapter: the routes Grafana calls, with the official service's status codes and a
//! one-line plain-text reason on every error, over the transport-neutral [`crate::service`].
//! Its own parts: the connection loop with its limits ([`serve`]) and HTTPS ([`tls`]).

pub(crate) mod serve;
pub mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Extension, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::browser::BrowserState;
use crate::config::{ConfigError, HttpOptions};
use crate::error::{ErrorCode, RenderError};
use crate::output::csv;
use crate::service::{AuthOutcome, COMPATIBLE_RENDERER_VERSION, Route, Service};

/// Everything the handlers share.
struct AppState {
    service: Arc<Service>,
    sizes: RequestSizeLimits,
    /// The scheduled reports, when `--reports` is set (`GET /reports`).
    reports: Option<Arc<crate::report::Reports>>,
}

/// Size limits of a request head, answered with a message naming the option to raise.
#[derive(Debug, Clone, Copy)]
struct RequestSizeLimits {
    /// server.max-url-bytes: path and query.
    max_url_bytes: usize,
    /// server.max-header-bytes: all header names and values.
    max_header_bytes: usize,
}

/// The HTTP service: the routes, the connection loop's limits, and HTTPS when configured.
pub struct HttpServer {
    service: Arc<Service>,
    router: Router,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    connections: serve::ConnectionLimits,
}

impl HttpServer {
    /// The HTTP service of `service` with the `server.*` options.
    pub fn new(service: Arc<Service>, opts: &HttpOptions) -> Result<Self, ConfigError> {
        Self::with_reports(service, opts, None)
    }

    /// [`HttpServer::new`], also answering `GET /reports` with the status of `reports`.
    pub fn with_reports(
        service: Arc<Service>,
        opts: &HttpOptions,
        reports: Option<Arc<crate::report::Reports>>,
    ) -> Result<Self, ConfigError> {
        let tls = match (&opts.certificate_file, &opts.key_file) {
            (Some(cert), Some(key)) => Some(tls::server_config(cert, key, opts.min_tls_version)?),
            _ => None,
        };
        let state = Arc::new(AppState {
            service: service.clone(),
            sizes: RequestSizeLimits {
                max_url_bytes: opts.max_url_bytes,
                max_header_bytes: opts.max_header_bytes,
            },
            reports,
        });
        Ok(HttpServer {
            service,
            router: router(state),
            tls,
            connections: serve::ConnectionLimits {
                max_connections: opts.max_connections,
                header_read_timeout: opts.header_read_timeout,
                // Twice the named limits, so heads just over them get the named answer.
                max_head_bytes: 2 * (opts.max_url_bytes + opts.max_header_bytes),
            },
        })
    }

    /// The routes, for serving them another way (tests).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves on `listener` until `shutdown` resolves: then it stops accepting, lets renders
    /// in progress finish for up to `drain_limit`, and closes Chromium.
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
        let refused = self
            .service
            .metrics()
            .limits_refused
            .with_label_values(&["server.max-connections"]);
        let acceptor = self.tls.clone().map(tokio_rustls::TlsAcceptor::from);
        let server = serve::serve(
            listener,
            self.router.clone(),
            self.connections.clone(),
            acceptor,
            refused,
            signal,
        );
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
        self.service.shutdown().await;
        result
    }
}

/// Builds the router with all routes.
fn router(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/render", get(render))
        .route("/render/csv", get(render_csv))
        .route("/reports", get(reports_status))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(protected)
        .route("/render/version", get(render_version))
        .route("/healthz", get(|| async { "OK" }))
        .route("/metrics", get(metrics))
        .route("/version", get(version))
        .route("/", get(|| async { "Grafana Image Renderer (grender)" }))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_oversized_heads,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error (a bug in grender; please report it)",
            )
        }))
        .with_state(state)
}

/// A plain-text error answer, like Go's `http.Error`.
pub(crate) fn text_error(status: StatusCode, message: &str) -> Response {
    let mut resp = (status, format!("{message}\n")).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// 414 / 431 for request heads over the configured sizes, before any other work.
async fn refuse_oversized_heads(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let limits = state.sizes;
    let refuse = |option: &str, code: ErrorCode, message: String| {
        state.service.count_refusal(option);
        coded_error(code, &message)
    };
    let url_bytes = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if url_bytes > limits.max_url_bytes {
        return refuse(
            "server.max-url-bytes",
            ErrorCode::UrlTooLong,
            format!(
                "the request URL is {url_bytes} bytes, over server.max-url-bytes={}; \
                 shorten the dashboard URL (fewer variable values) or raise server.max-url-bytes",
                limits.max_url_bytes
            ),
        );
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > limits.max_header_bytes {
        return refuse(
            "server.max-header-bytes",
            ErrorCode::HeadersTooLarge,
            format!(
                "the request headers are {header_bytes} bytes, over server.max-header-bytes={}; \
                 raise server.max-header-bytes if a proxy adds large headers",
                limits.max_header_bytes
            ),
        );
    }
    next.run(req).await
}

async fn require_token(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let header = req.headers().get("x-auth-token").map(|v| v.as_bytes());
    match state.service.authenticate(header) {
        AuthOutcome::Valid(index) => {
            let mut req = req;
            req.extensions_mut().insert(AuthenticatedWith(index));
            next.run(req).await
        }
        AuthOutcome::MissingButAllowed => next.run(req).await,
        AuthOutcome::Missing => coded_error(
            ErrorCode::MissingToken,
            "Missing X-Auth-Token header: set Grafana's [rendering] renderer_token (GF_RENDERING_RENDERER_TOKEN) \
             to one of grender's server.auth-token values (AUTH_TOKEN)",
        ),
        AuthOutcome::Invalid => coded_error(
            ErrorCode::InvalidToken,
            "Unauthorized: X-Auth-Token matches none of grender's server.auth-token values; \
             it must equal Grafana's [rendering] renderer_token",
        ),
    }
}

/// A plain-text error answer starting with its `[code]`, with the code's status.
fn coded_error(code: ErrorCode, message: &str) -> Response {
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    text_error(status, &format!("[{code}] {message}"))
}

/// Which of the accepted tokens the request carried.
#[derive(Clone, Copy)]
struct AuthenticatedWith(usize);

async fn render_csv(
    State(state): State<Arc<AppState>>,
    auth: Option<Extension<AuthenticatedWith>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    parse_and_run(&state, auth, query, &headers, Route::HttpCsv).await
}

async fn render(
    State(state): State<Arc<AppState>>,
    auth: Option<Extension<AuthenticatedWith>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    parse_and_run(&state, auth, query, &headers, Route::HttpRender).await
}

async fn parse_and_run(
    state: &AppState,
    auth: Option<Extension<AuthenticatedWith>>,
    query: Option<String>,
    headers: &HeaderMap,
    route: Route,
) -> Response {
    let lang = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    match state
        .service
        .parse(route, query.as_deref().unwrap_or(""), lang)
    {
        Ok(req) => run(state, auth, req, route).await,
        Err(e) => coded_error(e.code(), &e.to_string()),
    }
}

/// Renders a parsed request and answers with the bytes or the error.
async fn run(
    state: &AppState,
    auth: Option<Extension<AuthenticatedWith>>,
    req: crate::request::RenderRequest,
    route: Route,
) -> Response {
    let started = Instant::now();
    let id = request_id();
    let target = crate::request::redacted(&req.url);
    let content_type = req.output.content_type();
    let token = auth.map(|Extension(AuthenticatedWith(i))| i);
    let outcome = state.service.render(req, token, route).await;
    let mut resp = match outcome {
        Ok(capture) => {
            let steps: Vec<String> = capture
                .steps
                .iter()
                .map(|(stage, took)| format!("{}={}ms", stage.step_label(), took.as_millis()))
                .collect();
            tracing::info!(request = %id, status = 200, url = %target, mode = capture.mode.label(), reuse = %capture.reuse, bytes = capture.bytes.len(),
                ms = started.elapsed().as_millis() as u64, steps = %steps.join(" "), "rendered");
            let mut resp = (
                [(header::CONTENT_TYPE, content_type)],
                capture.bytes.clone(),
            )
                .into_response();
            if let Some(value) = capture
                .file_name
                .as_deref()
                .and_then(|n| HeaderValue::from_str(&csv::content_disposition(n)).ok())
            {
                resp.headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
            resp
        }
        Err(err) => {
            tracing::warn!(request = %id, code = err.code().as_str(), url = %target, status = err.status(),
                ms = started.elapsed().as_millis() as u64, "render failed: {err}");
            error_response(&err)
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", value);
    }
    resp
}

/// A short id tying a response to its log line.
fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static BOOT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let boot = *BOOT.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    format!(
        "{:06x}-{:06x}",
        (boot >> 8) & 0xff_ffff,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The HTTP answer for a failed render.
fn error_response(err: &RenderError) -> Response {
    let mut resp = coded_error(err.code(), &err.to_string());
    let retry_after = match err {
        RenderError::Overloaded { retry_after, .. } => Some(*retry_after),
        RenderError::BrowserUnavailable(_) => Some(5),
        _ => None,
    };
    if let Some(secs) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        resp.headers_mut().insert(header::RETRY_AFTER, secs);
    }
    resp
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.service.metrics_text(),
    )
        .into_response()
}

/// The scheduled reports: next run and last result of each (behind the token: it names
/// dashboards and recipients' count).
async fn reports_status(State(state): State<Arc<AppState>>) -> Response {
    match &state.reports {
        Some(reports) => axum::Json(reports.status()).into_response(),
        None => text_error(
            StatusCode::NOT_FOUND,
            "no reports are configured (start grender server with --reports FILE)",
        ),
    }
}

async fn render_version() -> Response {
    let body = format!("{{\"version\": \"{COMPATIBLE_RENDERER_VERSION}\"}}");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn version(State(state): State<Arc<AppState>>) -> Response {
    let browser = match state.service.browser_state() {
        BrowserState::Ready(b) => b.version.clone(),
        BrowserState::Starting => "starting".into(),
        BrowserState::Failed(m) => format!("unavailable ({m})"),
        BrowserState::Stopped => "stopped".into(),
    };
    format!("grender {}\nbrowser {browser}\n", env!("CARGO_PKG_VERSION")).into_response()
}

async fn not_found() -> Response {
    text_error(
        StatusCode::NOT_FOUND,
        "not found; grender serves /render, /render/version, /healthz and /version",
    )
}
