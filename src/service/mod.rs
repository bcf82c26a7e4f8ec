//! The transport-neutral core: everything a render request needs after it arrived, whatever
//! carried it. The HTTP routes ([`crate::api`]), the gRPC services of plugin mode
//! ([`crate::plugin`]) and the one-shot commands ([`crate::cli`]) are thin adapters over it,
//! as the official service's `pkg/api` is over its `pkg/service`.
//!
//! It owns the state (tokens, request limits, the renderer, the browser, the metrics), checks
//! tokens, parses queries, runs the counted render, and renders the metrics page.

pub(crate) mod auth;
mod start;

use std::sync::Arc;
use std::time::Instant;

pub use auth::AuthOutcome;
use auth::TokenCheck;

use crate::browser::{BrowserState, BrowserSupervisor};
use crate::metrics::Metrics;
use crate::render::Renderer;
use crate::render::coalesce::SharedOutcome;
use crate::render::identity::identify;
use crate::request::{Limits, ParamError, RenderRequest};

/// The version Grafana's capability checks read from `/render/version`. Grafana gates
/// features on it (PDF needs ≥ 3.10.0); the official Go service reports this value.
pub const COMPATIBLE_RENDERER_VERSION: &str = "5.0.0";

/// The running renderer; see the module docs.
pub struct Service {
    renderer: Arc<Renderer>,
    browsers: Arc<BrowserSupervisor>,
    tokens: TokenCheck,
    limits: Limits,
    metrics: Arc<Metrics>,
}

/// Which entry point a request came through: its parser, and the `path` label of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /render`
    HttpRender,
    /// `GET /render/csv`
    HttpCsv,
    /// Plugin mode's `Renderer.Render`
    GrpcRender,
    /// Plugin mode's `Renderer.RenderCSV`
    GrpcCsv,
    /// `grender render` and `grender doctor`
    CommandLine,
    /// A scheduled (or `grender report send`) report
    Report,
}

impl Route {
    /// The `path` label of the request metrics.
    pub fn label(self) -> &'static str {
        match self {
            Route::HttpRender => "GET /render",
            Route::HttpCsv => "GET /render/csv",
            Route::GrpcRender => "grpc Render",
            Route::GrpcCsv => "grpc RenderCSV",
            Route::CommandLine => "cli",
            Route::Report => "report",
        }
    }

    fn is_csv(self) -> bool {
        matches!(self, Route::HttpCsv | Route::GrpcCsv)
    }
}

impl Service {
    /// Checks a request's token (`X-Auth-Token`, or the plugin request's field), counting the
    /// attempt under the official services' metrics.
    pub fn authenticate(&self, given: Option<&[u8]>) -> AuthOutcome {
        let outcome = self.tokens.check(given);
        let result = match outcome {
            AuthOutcome::Valid(_) | AuthOutcome::MissingButAllowed => "valid-token",
            AuthOutcome::Missing => "missing-header",
            AuthOutcome::Invalid => "invalid-token",
        };
        self.metrics
            .auth_attempts
            .with_label_values(&[result])
            .inc();
        if let AuthOutcome::Valid(index) = outcome {
            self.metrics
                .token_usage
                .with_label_values(&[index.to_string().as_str()])
                .inc();
        }
        outcome
    }

    /// Parses the query of `route` into a request, counting the URL check.
    pub fn parse(
        &self,
        route: Route,
        query: &str,
        accept_language: Option<&str>,
    ) -> Result<RenderRequest, ParamError> {
        let parsed = if route.is_csv() {
            crate::request::parse_csv_query(query, accept_language, &self.limits)
        } else {
            crate::request::parse_render_query(query, accept_language, &self.limits)
        };
        let check = match &parsed {
            Ok(_) => "valid",
            Err(e) => e.url_check(),
        };
        self.metrics.trusted_url.with_label_values(&[check]).inc();
        parsed
    }

    /// Renders `req` for the holder of accepted token `token` (its identity decides which
    /// requests may share a render) and records it in both official services' metrics.
    pub async fn render(
        &self,
        req: RenderRequest,
        token: Option<usize>,
        route: Route,
    ) -> SharedOutcome {
        let started = Instant::now();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let identity = if req.extra_headers.is_empty() {
            identify(
                req.cookie.as_ref(),
                token.and_then(|i| self.tokens.token(i).map(|t| (i, t))),
                now,
            )
        } else {
            // Credentials of our own (a report's Grafana token): equal only to the same ones,
            // so such a render is never shared with a request that has not got them.
            crate::render::identity::Identity::of_credentials(&req.extra_headers)
        };
        let encoding = req.output.encoding().name();
        let _in_flight = crate::metrics::InFlight::start(&self.metrics);
        let outcome = self.renderer.render(req, identity).await;
        let (status, mode, bytes) = match &outcome {
            Ok(c) => (200, c.mode.label(), c.bytes.len()),
            Err(e) => (e.status(), "unknown", 0),
        };
        self.metrics.observe_request(
            route.label(),
            status,
            encoding,
            mode,
            started.elapsed(),
            bytes,
        );
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
            self.metrics
                .errors
                .with_label_values(&[e.code().as_str()])
                .inc();
        }
        outcome
    }

    /// The Prometheus text exposition of every metric, its gauges read now.
    pub fn metrics_text(&self) -> String {
        let m = &self.metrics;
        let q = self.renderer.queue_stats();
        m.queue_waiting.set(q.waiting as i64);
        m.queue_in_flight.set(q.in_flight as i64);
        match self.browsers.state() {
            BrowserState::Ready(b) => {
                m.browser_instances_active.set(1);
                m.node_browser_info.reset();
                m.node_browser_info
                    .with_label_values(&[b.version.as_str()])
                    .set(1);
                m.chromium_rss
                    .set(crate::browser::memory::tree_rss_bytes(b.pid) as i64);
                let tabs = b.tabs.census();
                for (state, n) in [
                    ("idle", tabs.idle),
                    ("parked", tabs.parked),
                    ("busy", tabs.busy),
                    ("dormant", tabs.dormant),
                ] {
                    m.browser_tabs.with_label_values(&[state]).set(n as i64);
                }
            }
            _ => {
                m.browser_instances_active.set(0);
                m.browser_tabs.reset();
            }
        }
        m.render()
    }

    /// Counts a request refused by a limit of its transport (the option's name is the label).
    pub fn count_refusal(&self, option: &str) {
        self.metrics
            .limits_refused
            .with_label_values(&[option])
            .inc();
    }

    /// The metrics, for transports that count their own refusals.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// What the browser supervisor offers now.
    pub fn browser_state(&self) -> BrowserState {
        self.browsers.state()
    }

    /// The browser supervisor.
    pub fn browsers(&self) -> &Arc<BrowserSupervisor> {
        &self.browsers
    }

    /// Waits until the first Chromium launch succeeded (or says why it failed).
    pub async fn wait_started(&self) -> Result<(), String> {
        self.browsers.wait_started().await.map(|_| ())
    }

    /// Closes Chromium and waits until its process tree is gone.
    pub async fn shutdown(&self) {
        self.browsers.shutdown().await;
    }
}
