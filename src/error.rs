//! Why a render failed, in words a Grafana admin can act on, and the HTTP status for it.

use std::time::Duration;

/// Everything that can end a render request early.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The request itself is wrong (bad parameter); nothing was rendered.
    #[error("{0}")]
    BadRequest(String),
    /// The request's single deadline passed; `stage` says where it was spent.
    #[error(
        "request timed out after {elapsed:.1?} while {stage} (timeout {budget:?}; raise Grafana's rendering timeout or the request's `timeout` if the dashboard is slow)"
    )]
    Deadline {
        stage: &'static str,
        elapsed: Duration,
        budget: Duration,
    },
    /// The page never said its panels were drawn within browser.readiness.timeout.
    #[error("panels were not ready after {timeout:?} (browser.readiness.timeout): {detail}")]
    ReadinessTimeout { timeout: Duration, detail: String },
    /// Refused at arrival: the queue is full, or the request could not be answered
    /// before its deadline after waiting its turn.
    #[error("server is too busy: {reason}; try again in {retry_after}s")]
    Overloaded { reason: String, retry_after: u64 },
    /// The picture would pass render.max-pixels (a full page taller than the budget allows).
    #[error("{0}")]
    TooLarge(String),
    /// Grafana sent the browser to its login page.
    #[error(
        "Grafana redirected the browser to its login page ({url}): the render key was rejected or has expired. \
Check that grender reaches Grafana at the callback URL and `domain` Grafana sent (GF_RENDERING_CALLBACK_URL), \
and that render_key_lifetime is long enough"
    )]
    LoginPage { url: String },
    /// The browser could not load the URL at all.
    #[error(
        "the browser could not load {url}: {reason}. Is the Grafana callback URL (GF_RENDERING_CALLBACK_URL) reachable from grender? \
localhost/127.0.0.1 means grender's own machine or container"
    )]
    Navigation { url: String, reason: String },
    /// Grafana's render binding reported that the dashboard failed to render.
    #[error("Grafana reported that the page failed to render: {0}")]
    PageReportedFailure(String),
    /// The tab's renderer process crashed (often out of memory).
    #[error(
        "the browser tab crashed while rendering (often out of memory: lower the size or scale, or give grender more memory)"
    )]
    PageCrashed,
    /// Chromium itself died during the render; the supervisor relaunches it.
    #[error("Chromium exited during the render; it is being restarted, retry the request")]
    BrowserDied,
    /// No browser is running (starting, restarting or failing to launch).
    #[error("no browser is available: {0}")]
    BrowserUnavailable(String),
    /// A browser protocol step failed.
    #[error("render failed while {stage}: {detail}")]
    Browser { stage: &'static str, detail: String },
    /// The output format exists in the protocol but not in this build.
    #[error("{0}")]
    NotImplemented(String),
}

impl RenderError {
    /// The HTTP status Grafana (and the official service) expects for this failure.
    pub fn status(&self) -> u16 {
        match self {
            RenderError::BadRequest(_) => 400,
            RenderError::TooLarge(_) => 413,
            RenderError::Deadline { .. } | RenderError::ReadinessTimeout { .. } => 408,
            RenderError::Overloaded { .. } => 429,
            RenderError::NotImplemented(_) => 501,
            RenderError::BrowserUnavailable(_) => 503,
            RenderError::LoginPage { .. }
            | RenderError::Navigation { .. }
            | RenderError::PageReportedFailure(_)
            | RenderError::PageCrashed
            | RenderError::BrowserDied
            | RenderError::Browser { .. } => 500,
        }
    }

    /// Wraps a CDP failure with the step it happened in.
    pub fn cdp(stage: &'static str, err: impl std::fmt::Display) -> Self {
        RenderError::Browser {
            stage,
            detail: err.to_string(),
        }
    }
}
