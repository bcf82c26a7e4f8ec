//! A render request after parsing: typed, clamped and checked, with its one deadline.
//! [`parse`] builds it from the query Grafana sends (over HTTP or gRPC alike).

mod deadline;
pub(crate) mod parse;

use std::time::Duration;

pub use crate::redact::{redacted, without_secrets};
pub use crate::stage::Stage;
pub use deadline::{Deadline, Progress};
pub use parse::{Limits, ParamError, parse_csv_query, parse_render_query};

/// What Grafana asked for, in the form every later step uses.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    /// The Grafana page, exactly as Grafana sent it.
    pub url: String,
    /// Viewport and scale of the picture.
    pub viewport: Viewport,
    /// Requested IANA time zone; `None` or an invalid name means the server default.
    pub timezone: Option<String>,
    /// The `renderKey` cookie to set before navigating, when Grafana sent one.
    pub cookie: Option<RenderCookie>,
    /// The caller's Accept-Language, forwarded on every browser request.
    pub accept_language: Option<String>,
    /// Headers with credentials (the CLI's `Authorization` for an API token), added only to
    /// requests to the target URL's origin.
    pub extra_headers: Vec<(String, String)>,
    /// How long the page may take to say it is ready (browser.readiness.*, or a matching
    /// browser.override's).
    pub readiness: ReadinessOptions,
    /// PNG or PDF, with the PDF's print options.
    pub output: crate::output::Output,
    /// The shared deadline of every step of this request.
    pub deadline: Deadline,
    /// Grafana's requests come first; scheduled reports render in the background.
    pub priority: Priority,
    /// Also read the dashboard's title from Grafana's API, in the page (a report's subject).
    pub fetch_title: bool,
}

/// Whose render waits when slots are short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// Grafana (or a person) waits for the answer.
    #[default]
    Interactive,
    /// Nobody waits: a scheduled report, rendered when no interactive request needs the slot.
    Background,
}

/// Knobs of one readiness wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadinessOptions {
    /// browser.readiness.timeout.
    pub timeout: Duration,
    /// How long to wait for the first sign of Grafana (a query, panels).
    pub first_signal_grace: Duration,
}

/// Viewport size in CSS pixels; the picture is `width × height × scale` pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewport {
    pub width: u32,
    /// `None` asks for a full-page capture: start at `initial_height`, grow to the page.
    pub height: Option<u32>,
    /// First viewport height of a full-page capture (¾ of the width, clamped).
    pub initial_height: u32,
    pub scale: f64,
    pub landscape: bool,
}

impl Viewport {
    /// The viewport height to start the page with.
    pub fn start_height(&self) -> u32 {
        self.height.unwrap_or(self.initial_height)
    }
}

/// Grafana's render key and the cookie domain it belongs to.
#[derive(Clone)]
pub struct RenderCookie {
    pub key: String,
    pub domain: String,
}

impl std::fmt::Debug for RenderCookie {
    // Never print the key: it is a login credential for Grafana.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderCookie")
            .field("key", &"<redacted>")
            .field("domain", &self.domain)
            .finish()
    }
}
