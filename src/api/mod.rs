//! HTTP routes: what Grafana calls, with the official service's status codes and a
//! one-line plain-text reason on every error.

pub mod auth;
pub mod params;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Extension, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::browser::BrowserState;
use crate::error::RenderError;
use crate::output::csv;
use crate::render::Renderer;
use crate::render::identity::identify;
use auth::{AuthOutcome, TokenCheck};
use params::{Limits, ParamError};

/// The version Grafana's capability checks read from `/render/version`. Grafana gates
/// features on it (PDF needs ≥ 3.10.0); the official Go service reports this value.
pub const COMPATIBLE_RENDERER_VERSION: &str = "5.0.0";

/// Everything the handlers share.
pub struct AppState {
    pub renderer: Arc<Renderer>,
    pub tokens: TokenCheck,
    pub limits: Limits,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub sizes: RequestSizeLimits,
}

impl AppState {
    /// Renders `req` for the holder of accepted token `token` (its identity decides which
    /// requests may share a render) and records it in both official services' metrics.
    /// Shared by the HTTP routes and plugin mode; `path` labels the metrics.
    pub async fn render_counted(
        &self,
        req: crate::request::RenderRequest,
        token: Option<usize>,
        path: &str,
    ) -> crate::render::coalesce::SharedOutcome {
        let started = Instant::now();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let identity = identify(
            req.cookie.as_ref(),
            token.and_then(|i| self.tokens.token(i).map(|t| (i, t))),
            now,
        );
        let encoding = req.output.encoding_name();
        let _in_flight = crate::metrics::InFlight::start(&self.metrics);
        let outcome = self.renderer.render(req, identity).await;
        let (status, mode, bytes) = match &outcome {
            Ok(c) => (200, format!("{:?}", c.mode).to_lowercase(), c.bytes.len()),
            Err(e) => (e.status(), "unknown".into(), 0),
        };
        self.metrics
            .observe_request(path, status, encoding, &mode, started.elapsed(), bytes);
        let (admitted, reason) = if status == 429 {
            ("rejected", "overloaded")
        } else {
            ("accepted", "")
        };
        self.metrics
            .rate_limiter
            .with_label_values(&[admitted, reason])
            .inc();
        if let Err(e) = &outcome {
            self.metrics.errors.with_label_values(&[e.code()]).inc();
        }
        outcome
    }
}

/// Size limits of a request head, answered with a message naming the option to raise.
#[derive(Debug, Clone, Copy)]
pub struct RequestSizeLimits {
    /// server.max-url-bytes: path and query.
    pub max_url_bytes: usize,
    /// server.max-header-bytes: all header names and values.
    pub max_header_bytes: usize,
}

/// Builds the router with all routes.
pub fn router(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/render", get(render))
        .route("/render/csv", get(render_csv))
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
pub fn text_error(status: StatusCode, message: &str) -> Response {
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
    let refuse = |option: &str, status: StatusCode, message: String| {
        state
            .metrics
            .limits_refused
            .with_label_values(&[option])
            .inc();
        text_error(status, &message)
    };
    let url_bytes = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if url_bytes > limits.max_url_bytes {
        return refuse(
            "server.max-url-bytes",
            StatusCode::URI_TOO_LONG,
            format!(
                "[url-too-long] the request URL is {url_bytes} bytes, over server.max-url-bytes={}; \
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
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "[headers-too-large] the request headers are {header_bytes} bytes, over server.max-header-bytes={}; \
                 raise server.max-header-bytes if a proxy adds large headers",
                limits.max_header_bytes
            ),
        );
    }
    next.run(req).await
}

async fn require_token(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let header = req.headers().get("x-auth-token").map(|v| v.as_bytes());
    let outcome = state.tokens.check(header);
    let result = match outcome {
        AuthOutcome::Valid(_) | AuthOutcome::MissingButAllowed => "valid-token",
        AuthOutcome::Missing => "missing-header",
        AuthOutcome::Invalid => "invalid-token",
    };
    state
        .metrics
        .auth_attempts
        .with_label_values(&[result])
        .inc();
    match outcome {
        AuthOutcome::Valid(index) => {
            state
                .metrics
                .token_usage
                .with_label_values(&[index.to_string().as_str()])
                .inc();
            let mut req = req;
            req.extensions_mut().insert(AuthenticatedWith(index));
            next.run(req).await
        }
        AuthOutcome::MissingButAllowed => next.run(req).await,
        AuthOutcome::Missing => text_error(
            StatusCode::UNAUTHORIZED,
            "[missing-token] Missing X-Auth-Token header: set Grafana's [rendering] renderer_token (GF_RENDERING_RENDERER_TOKEN) \
             to one of grender's server.auth-token values (AUTH_TOKEN)",
        ),
        AuthOutcome::Invalid => text_error(
            StatusCode::UNAUTHORIZED,
            "[invalid-token] Unauthorized: X-Auth-Token matches none of grender's server.auth-token values; \
             it must equal Grafana's [rendering] renderer_token",
        ),
    }
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
    parse_and_run(&state, auth, query, &headers, params::parse_csv_query).await
}

async fn render(
    State(state): State<Arc<AppState>>,
    auth: Option<Extension<AuthenticatedWith>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    parse_and_run(&state, auth, query, &headers, params::parse_render_query).await
}

type Parser = fn(&str, Option<&str>, &Limits) -> Result<crate::request::RenderRequest, ParamError>;

async fn parse_and_run(
    state: &AppState,
    auth: Option<Extension<AuthenticatedWith>>,
    query: Option<String>,
    headers: &HeaderMap,
    parse: Parser,
) -> Response {
    let lang = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let parsed = parse(query.as_deref().unwrap_or(""), lang, &state.limits);
    let url_check = match &parsed {
        Ok(_) => "valid",
        Err(ParamError::Forbidden(_)) => "invalid-protocol",
        Err(ParamError::Bad(m)) if m.starts_with("missing 'url'") => "missing-query",
        Err(ParamError::Bad(m)) if m.starts_with("Invalid URL") => "invalid-url",
        Err(ParamError::Bad(_)) => "valid",
    };
    state
        .metrics
        .trusted_url
        .with_label_values(&[url_check])
        .inc();
    match parsed {
        Ok(req) => run(state, auth, req).await,
        Err(e) => param_error(e),
    }
}

fn param_error(e: ParamError) -> Response {
    match e {
        ParamError::Bad(m) => text_error(StatusCode::BAD_REQUEST, &format!("[bad-request] {m}")),
        ParamError::Forbidden(m) => {
            text_error(StatusCode::FORBIDDEN, &format!("[forbidden-url] {m}"))
        }
    }
}

/// Renders a parsed request and answers with the bytes or the error.
async fn run(
    state: &AppState,
    auth: Option<Extension<AuthenticatedWith>>,
    req: crate::request::RenderRequest,
) -> Response {
    let started = Instant::now();
    let id = request_id();
    let target = crate::request::redacted(&req.url);
    let content_type = req.output.content_type();
    let path = match &req.output {
        crate::output::Output::Csv { .. } => "GET /render/csv",
        _ => "GET /render",
    };
    let token = auth.map(|Extension(AuthenticatedWith(i))| i);
    let outcome = state.render_counted(req, token, path).await;
    let mut resp = match outcome {
        Ok(capture) => {
            let steps: Vec<String> = capture
                .steps
                .iter()
                .map(|(stage, took)| {
                    format!(
                        "{}={}ms",
                        crate::metrics::step_name(stage),
                        took.as_millis()
                    )
                })
                .collect();
            tracing::info!(request = %id, status = 200, url = %target, mode = ?capture.mode, bytes = capture.bytes.len(),
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
            tracing::warn!(request = %id, code = err.code(), url = %target, status = err.status(),
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
pub fn error_response(err: &RenderError) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = text_error(status, &format!("[{}] {err}", err.code()));
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
    let m = &state.metrics;
    let renderer = &state.renderer;
    let q = renderer.queue_stats();
    m.queue_waiting.set(q.waiting as i64);
    m.queue_in_flight.set(q.in_flight as i64);
    m.queue_wait_seconds.set(q.wait_ms_total as f64 / 1000.0);
    m.queue_refused.set(q.refused as i64);
    m.coalesced.set(renderer.coalesced() as i64);
    m.browser_renders.set(renderer.browser_renders() as i64);
    match renderer.browsers().state() {
        BrowserState::Ready(b) => {
            m.browser_instances_active.set(1);
            m.browser_restarts.set(b.generation as i64);
            m.node_browser_info.reset();
            m.node_browser_info
                .with_label_values(&[b.version.as_str()])
                .set(1);
            m.chromium_rss
                .set(crate::browser::memory::tree_rss_bytes(b.pid) as i64);
        }
        _ => m.browser_instances_active.set(0),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
        .into_response()
}

async fn render_version() -> Response {
    let body = format!("{{\"version\": \"{COMPATIBLE_RENDERER_VERSION}\"}}");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn version(State(state): State<Arc<AppState>>) -> Response {
    let browser = match state.renderer.browsers().state() {
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
