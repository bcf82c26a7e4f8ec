//! A render request after parsing: typed, clamped and checked, with its one deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::RenderError;

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
    /// browser.readiness.timeout from a matching browser.override.
    pub readiness_timeout: Option<Duration>,
    /// browser.readiness.give-up-on-first-query from a matching browser.override.
    pub first_signal_grace: Option<Duration>,
    /// PNG or PDF, with the PDF's print options.
    pub output: crate::output::Output,
    /// The shared deadline of every step of this request.
    pub deadline: Deadline,
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

/// The single deadline of a request: queueing, launch waits, navigation, readiness and
/// capture all draw on the same budget.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    budget: Duration,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline {
            start: Instant::now(),
            budget,
        }
    }

    /// The instant it passes.
    pub fn at(&self) -> Instant {
        self.start + self.budget
    }

    /// Time since the request arrived.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at().saturating_duration_since(Instant::now())
    }

    /// The error for having run out while doing `stage`.
    pub fn expired(&self, stage: &'static str) -> RenderError {
        RenderError::Deadline {
            stage,
            elapsed: self.start.elapsed(),
            budget: self.budget,
        }
    }

    /// Runs `fut` unless the deadline passes first.
    pub async fn run<T>(
        &self,
        stage: &'static str,
        fut: impl Future<Output = T>,
    ) -> Result<T, RenderError> {
        tokio::time::timeout_at(self.at(), fut)
            .await
            .map_err(|_| self.expired(stage))
    }
}

/// `url` as `scheme://host:port/path`: without its query, fragment and user-info, which can
/// carry secrets (render keys, tokens, passwords). Fit for logs and error messages. `None`
/// when it does not parse.
pub fn without_secrets(url: &str) -> Option<String> {
    let mut u = url::Url::parse(url).ok()?;
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    Some(u.to_string())
}

/// [`without_secrets`], or a placeholder for a URL that does not parse (which is then never
/// repeated, since it could be anything).
pub fn redacted(url: &str) -> String {
    without_secrets(url).unwrap_or_else(|| "<unparseable url>".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn redaction_keeps_only_scheme_host_port_and_path() {
        assert_eq!(
            super::redacted("https://user:pass@grafana:3000/d/x?renderKey=k&secret=s#frag"),
            "https://grafana:3000/d/x"
        );
        assert_eq!(super::redacted("http://tok@g/a"), "http://g/a");
        assert_eq!(super::redacted("not a url ?secret=s"), "<unparseable url>");
    }
}
