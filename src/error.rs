//! Why a render failed, in words a Grafana admin can act on: a stable code, a sentence
//! saying what happened and how to fix it, and the HTTP status Grafana expects.
//!
//! A message never repeats a URL's user-info, query or fragment (render keys, tokens and
//! passwords travel there): URLs are shown as `scheme://host:port/path` ([`redacted`]).

use std::time::Duration;

use crate::request::redacted;

/// Everything that can end a render request early.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The request itself is wrong (bad parameter); nothing was rendered.
    #[error("{0}")]
    BadRequest(String),
    /// The request's single deadline passed; `stage` says where it was spent.
    #[error(
        "request timed out after {elapsed:.1?} while {stage} (timeout {budget:?}). Fix: raise Grafana's rendering \
         timeout or the request's `timeout` if the dashboard is slow"
    )]
    Deadline {
        stage: &'static str,
        elapsed: Duration,
        budget: Duration,
    },
    /// The page never said its panels were drawn within browser.readiness.timeout.
    #[error(
        "panels were not ready after {timeout:?} (browser.readiness.timeout): {detail}. Fix: check the pending \
         queries' data sources, or raise browser.readiness.timeout"
    )]
    ReadinessTimeout { timeout: Duration, detail: String },
    /// Refused at arrival: the queue is full, or the request could not be answered
    /// before its deadline after waiting its turn.
    #[error("server is too busy: {reason}; try again in {retry_after}s")]
    Overloaded { reason: String, retry_after: u64 },
    /// The picture would pass render.max-pixels (a full page taller than the budget allows).
    #[error("{0}")]
    TooLarge(String),
    /// Grafana sent the browser to its login page.
    #[error("{}", login_message(url, *elapsed))]
    LoginPage { url: String, elapsed: Duration },
    /// The page navigated or was redirected outside server.allowed-origin.
    #[error(
        "the page tried to leave the allowed Grafana origins for {}. Fix: add that origin to \
         server.allowed-origin if it is really part of Grafana",
        redacted(url)
    )]
    ForbiddenNavigation { url: String },
    /// The browser could not load the URL at all.
    #[error("{}", navigation_message(url, reason))]
    Navigation { url: String, reason: String },
    /// Grafana's "failed to load its application files" page.
    #[error(
        "Grafana failed to load its application files at {}. Fix: make Grafana's root_url (and serve_from_sub_path) \
         match the callback URL grender uses, including any sub-path",
        redacted(url)
    )]
    GrafanaAssets { url: String },
    /// The page's JavaScript threw and no Grafana page came up.
    #[error(
        "the page's JavaScript failed: {0}. Fix: open the URL in a browser and check its console"
    )]
    PageScriptError(String),
    /// Grafana's render binding reported that the dashboard failed to render.
    #[error("Grafana reported that the page failed to render: {0}")]
    PageReportedFailure(String),
    /// The tab's renderer process crashed (often out of memory).
    #[error(
        "the browser tab crashed while rendering. Fix: this is often out of memory: lower the size or scale, or give \
         grender more memory"
    )]
    PageCrashed,
    /// Chromium itself died during the render; the supervisor relaunches it.
    #[error(
        "Chromium exited during the render; it is being restarted. Fix: retry; if it repeats, check memory limits"
    )]
    BrowserDied,
    /// No browser is running (starting, restarting or failing to launch).
    #[error("no browser is available: {0}")]
    BrowserUnavailable(String),
    /// A browser protocol step failed.
    #[error("render failed while {stage}: {detail}")]
    Browser { stage: &'static str, detail: String },
}

impl RenderError {
    /// The HTTP status Grafana (and the official service) expects for this failure.
    pub fn status(&self) -> u16 {
        match self {
            RenderError::BadRequest(_) => 400,
            RenderError::ForbiddenNavigation { .. } => 403,
            RenderError::TooLarge(_) => 413,
            RenderError::Deadline { .. } | RenderError::ReadinessTimeout { .. } => 408,
            RenderError::Overloaded { .. } => 429,
            RenderError::BrowserUnavailable(_) => 503,
            RenderError::LoginPage { .. }
            | RenderError::Navigation { .. }
            | RenderError::GrafanaAssets { .. }
            | RenderError::PageScriptError(_)
            | RenderError::PageReportedFailure(_)
            | RenderError::PageCrashed
            | RenderError::BrowserDied
            | RenderError::Browser { .. } => 500,
        }
    }

    /// A stable, greppable name of the failure class, put in front of every error body.
    pub fn code(&self) -> &'static str {
        match self {
            RenderError::BadRequest(_) => "bad-request",
            RenderError::ForbiddenNavigation { .. } => "forbidden-url",
            RenderError::Deadline { .. } => "request-timeout",
            RenderError::ReadinessTimeout { .. } => "readiness-timeout",
            RenderError::Overloaded { .. } => "overloaded",
            RenderError::TooLarge(_) => "too-large",
            RenderError::LoginPage { .. } => "login-page",
            RenderError::Navigation { reason, .. } => navigation_class(reason).0,
            RenderError::GrafanaAssets { .. } => "grafana-assets-failed",
            RenderError::PageScriptError(_) => "page-script-error",
            RenderError::PageReportedFailure(_) => "grafana-render-failed",
            RenderError::PageCrashed => "page-crashed",
            RenderError::BrowserDied => "browser-crashed",
            RenderError::BrowserUnavailable(_) => "browser-unavailable",
            RenderError::Browser { .. } => "browser-error",
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

/// Every code an error body can start with (documented in docs/troubleshooting.md).
pub const CODES: &[&str] = &[
    "missing-token",
    "invalid-token",
    "bad-request",
    "forbidden-url",
    "too-large",
    "request-timeout",
    "readiness-timeout",
    "overloaded",
    "connect-refused",
    "dns-failed",
    "tls-failed",
    "connect-timeout",
    "target-unreachable",
    "login-page",
    "grafana-assets-failed",
    "page-script-error",
    "grafana-render-failed",
    "page-crashed",
    "browser-crashed",
    "browser-unavailable",
    "browser-error",
];

/// Grafana's default render_key_lifetime.
const RENDER_KEY_LIFETIME: Duration = Duration::from_secs(300);

fn login_message(url: &str, elapsed: Duration) -> String {
    let url = redacted(url);
    let lifetime = if elapsed >= RENDER_KEY_LIFETIME {
        format!(
            " This render ran {:.0} s, longer than Grafana's default render_key_lifetime (5m): raise \
             [rendering] render_key_lifetime or make the dashboard faster.",
            elapsed.as_secs_f64()
        )
    } else {
        String::new()
    };
    format!(
        "Grafana sent the browser to its login page ({url}): the render key was rejected or has expired. Fix: check \
         that Grafana's callback URL (GF_RENDERING_CALLBACK_URL) and the `domain` it sends name the host grender \
         reaches it at, so the renderKey cookie is sent.{lifetime}"
    )
}

/// The code and a plain description of a Chromium network error.
fn navigation_class(reason: &str) -> (&'static str, &'static str) {
    let r = reason.to_ascii_uppercase();
    if r.contains("ERR_CONNECTION_REFUSED") {
        (
            "connect-refused",
            "the connection was refused (nothing listens there)",
        )
    } else if r.contains("ERR_NAME_NOT_RESOLVED") || r.contains("ERR_NAME_RESOLUTION_FAILED") {
        ("dns-failed", "the host name does not resolve")
    } else if r.contains("ERR_CERT") || r.contains("ERR_SSL") {
        ("tls-failed", "its TLS certificate was not accepted")
    } else if r.contains("TIMED_OUT") {
        ("connect-timeout", "the connection timed out")
    } else {
        ("target-unreachable", "it could not be loaded")
    }
}

fn navigation_message(url: &str, reason: &str) -> String {
    let url = redacted(url);
    let url = url.as_str();
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_default();
    let (code, what) = navigation_class(reason);
    let fix = if is_loopback(&host) && running_in_container() {
        format!(
            "{host} is grender's own container, not Grafana's: set GF_RENDERING_CALLBACK_URL to the address grender \
             reaches Grafana at, e.g. http://grafana:3000/"
        )
    } else {
        match code {
            "tls-failed" => "trust Grafana's CA in the renderer or start it with --browser.flag=--ignore-certificate-errors".into(),
            "dns-failed" => format!("make {host} resolvable from grender, or use another GF_RENDERING_CALLBACK_URL"),
            _ => format!("check that Grafana listens at {url} as seen from grender (GF_RENDERING_CALLBACK_URL)"),
        }
    };
    format!("the browser could not load {url}: {what} ({reason}). Fix: {fix}")
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether grender runs in a container, where localhost is not Grafana's host.
pub fn running_in_container() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        || std::path::Path::new("/.dockerenv").exists()
        || std::path::Path::new("/run/.containerenv").exists()
        || std::fs::read_to_string("/proc/1/cgroup").is_ok_and(|c| {
            ["docker", "kubepods", "containerd", "libpod"]
                .iter()
                .any(|k| c.contains(k))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_errors_have_their_own_codes() {
        let nav = |reason: &str| RenderError::Navigation {
            url: "http://grafana:3000/d/x".into(),
            reason: reason.into(),
        };
        assert_eq!(nav("net::ERR_CONNECTION_REFUSED").code(), "connect-refused");
        assert_eq!(nav("net::ERR_NAME_NOT_RESOLVED").code(), "dns-failed");
        assert_eq!(nav("net::ERR_CERT_AUTHORITY_INVALID").code(), "tls-failed");
        assert_eq!(
            nav("net::ERR_CONNECTION_TIMED_OUT").code(),
            "connect-timeout"
        );
        assert!(
            nav("net::ERR_NAME_NOT_RESOLVED")
                .to_string()
                .contains("grafana")
        );
    }

    #[test]
    fn messages_never_repeat_user_info_or_queries() {
        let url = "http://admin:hunter2@grafana:3000/d/x?orgId=1&secret=s3cr3t#f";
        for err in [
            RenderError::Navigation {
                url: url.into(),
                reason: "net::ERR_CONNECTION_REFUSED".into(),
            },
            RenderError::Navigation {
                url: url.into(),
                reason: "net::ERR_FAILED".into(),
            },
            RenderError::LoginPage {
                url: url.into(),
                elapsed: Duration::from_secs(1),
            },
            RenderError::ForbiddenNavigation { url: url.into() },
            RenderError::GrafanaAssets { url: url.into() },
        ] {
            let text = err.to_string();
            assert!(text.contains("http://grafana:3000/d/x"), "{text}");
            for secret in ["admin", "hunter2", "s3cr3t", "orgId", "#f"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
    }

    #[test]
    fn long_renders_mention_the_render_key_lifetime() {
        let short = RenderError::LoginPage {
            url: "u".into(),
            elapsed: Duration::from_secs(3),
        }
        .to_string();
        let long = RenderError::LoginPage {
            url: "u".into(),
            elapsed: Duration::from_secs(400),
        }
        .to_string();
        assert!(!short.contains("render_key_lifetime") && long.contains("render_key_lifetime"));
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost") && is_loopback("127.0.0.1") && is_loopback("[::1]"));
        assert!(!is_loopback("grafana"));
    }
}
