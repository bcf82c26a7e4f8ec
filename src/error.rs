//! Why a render failed, in words a Grafana admin can act on: a stable code, a sentence
//! saying what happened and how to fix it, and the HTTP status Grafana expects.
//!
//! A message never repeats a URL's user-info, query or fragment (render keys, tokens and
//! passwords travel there): URLs are shown as `scheme://host:port/path` ([`redacted`]).

use std::time::Duration;

use crate::redact::redacted;
use crate::stage::Stage;

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
        stage: Stage,
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
    /// A step in grender itself failed (converting, stitching, a temporary file), not Chromium
    /// or Grafana.
    #[error(
        "render failed while {stage}: {detail} (a failure inside grender, not in Chromium or Grafana; \
         please report it)"
    )]
    Local { stage: &'static str, detail: String },
}

impl RenderError {
    /// The HTTP status Grafana (and the official service) expects for this failure.
    pub fn status(&self) -> u16 {
        self.code().status()
    }

    /// The failure class, whose name is put in front of every error body.
    pub fn code(&self) -> ErrorCode {
        match self {
            RenderError::BadRequest(_) => ErrorCode::BadRequest,
            RenderError::ForbiddenNavigation { .. } => ErrorCode::ForbiddenUrl,
            RenderError::Deadline { .. } => ErrorCode::RequestTimeout,
            RenderError::ReadinessTimeout { .. } => ErrorCode::ReadinessTimeout,
            RenderError::Overloaded { .. } => ErrorCode::Overloaded,
            RenderError::TooLarge(_) => ErrorCode::TooLarge,
            RenderError::LoginPage { .. } => ErrorCode::LoginPage,
            RenderError::Navigation { reason, .. } => navigation_class(reason).0,
            RenderError::GrafanaAssets { .. } => ErrorCode::GrafanaAssetsFailed,
            RenderError::PageScriptError(_) => ErrorCode::PageScriptError,
            RenderError::PageReportedFailure(_) => ErrorCode::GrafanaRenderFailed,
            RenderError::PageCrashed => ErrorCode::PageCrashed,
            RenderError::BrowserDied => ErrorCode::BrowserCrashed,
            RenderError::BrowserUnavailable(_) => ErrorCode::BrowserUnavailable,
            RenderError::Browser { .. } => ErrorCode::BrowserError,
            RenderError::Local { .. } => ErrorCode::InternalError,
        }
    }

    /// Wraps a CDP failure with the step it happened in.
    pub fn cdp(stage: &'static str, err: impl std::fmt::Display) -> Self {
        RenderError::Browser {
            stage,
            detail: err.to_string(),
        }
    }

    /// Wraps a failure of grender's own work (not Chromium's) with the step it happened in.
    pub fn local(stage: &'static str, err: impl std::fmt::Display) -> Self {
        RenderError::Local {
            stage,
            detail: err.to_string(),
        }
    }
}

/// Every failure class an answer can name: the `[code]` in front of an error body, the
/// `code` label of `grender_errors_total`, and an entry of docs/troubleshooting.md each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    MissingToken,
    InvalidToken,
    UrlTooLong,
    HeadersTooLarge,
    BadRequest,
    ForbiddenUrl,
    TooLarge,
    RequestTimeout,
    ReadinessTimeout,
    Overloaded,
    ConnectRefused,
    DnsFailed,
    TlsFailed,
    ConnectTimeout,
    TargetUnreachable,
    LoginPage,
    GrafanaAssetsFailed,
    PageScriptError,
    GrafanaRenderFailed,
    PageCrashed,
    BrowserCrashed,
    BrowserUnavailable,
    BrowserError,
    InternalError,
}

impl ErrorCode {
    /// All of them, for the documentation check.
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::MissingToken,
        ErrorCode::InvalidToken,
        ErrorCode::UrlTooLong,
        ErrorCode::HeadersTooLarge,
        ErrorCode::BadRequest,
        ErrorCode::ForbiddenUrl,
        ErrorCode::TooLarge,
        ErrorCode::RequestTimeout,
        ErrorCode::ReadinessTimeout,
        ErrorCode::Overloaded,
        ErrorCode::ConnectRefused,
        ErrorCode::DnsFailed,
        ErrorCode::TlsFailed,
        ErrorCode::ConnectTimeout,
        ErrorCode::TargetUnreachable,
        ErrorCode::LoginPage,
        ErrorCode::GrafanaAssetsFailed,
        ErrorCode::PageScriptError,
        ErrorCode::GrafanaRenderFailed,
        ErrorCode::PageCrashed,
        ErrorCode::BrowserCrashed,
        ErrorCode::BrowserUnavailable,
        ErrorCode::BrowserError,
        ErrorCode::InternalError,
    ];

    /// The stable, greppable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingToken => "missing-token",
            ErrorCode::InvalidToken => "invalid-token",
            ErrorCode::UrlTooLong => "url-too-long",
            ErrorCode::HeadersTooLarge => "headers-too-large",
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::ForbiddenUrl => "forbidden-url",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::RequestTimeout => "request-timeout",
            ErrorCode::ReadinessTimeout => "readiness-timeout",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::ConnectRefused => "connect-refused",
            ErrorCode::DnsFailed => "dns-failed",
            ErrorCode::TlsFailed => "tls-failed",
            ErrorCode::ConnectTimeout => "connect-timeout",
            ErrorCode::TargetUnreachable => "target-unreachable",
            ErrorCode::LoginPage => "login-page",
            ErrorCode::GrafanaAssetsFailed => "grafana-assets-failed",
            ErrorCode::PageScriptError => "page-script-error",
            ErrorCode::GrafanaRenderFailed => "grafana-render-failed",
            ErrorCode::PageCrashed => "page-crashed",
            ErrorCode::BrowserCrashed => "browser-crashed",
            ErrorCode::BrowserUnavailable => "browser-unavailable",
            ErrorCode::BrowserError => "browser-error",
            ErrorCode::InternalError => "internal-error",
        }
    }

    /// The HTTP status Grafana (and the official service) expects for this failure.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::MissingToken | ErrorCode::InvalidToken => 401,
            ErrorCode::BadRequest => 400,
            ErrorCode::ForbiddenUrl => 403,
            ErrorCode::UrlTooLong => 414,
            ErrorCode::HeadersTooLarge => 431,
            ErrorCode::TooLarge => 413,
            ErrorCode::RequestTimeout | ErrorCode::ReadinessTimeout => 408,
            ErrorCode::Overloaded => 429,
            ErrorCode::BrowserUnavailable => 503,
            ErrorCode::ConnectRefused
            | ErrorCode::DnsFailed
            | ErrorCode::TlsFailed
            | ErrorCode::ConnectTimeout
            | ErrorCode::TargetUnreachable
            | ErrorCode::LoginPage
            | ErrorCode::GrafanaAssetsFailed
            | ErrorCode::PageScriptError
            | ErrorCode::GrafanaRenderFailed
            | ErrorCode::PageCrashed
            | ErrorCode::BrowserCrashed
            | ErrorCode::BrowserError
            | ErrorCode::InternalError => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
fn navigation_class(reason: &str) -> (ErrorCode, &'static str) {
    let r = reason.to_ascii_uppercase();
    if r.contains("ERR_CONNECTION_REFUSED") {
        (
            ErrorCode::ConnectRefused,
            "the connection was refused (nothing listens there)",
        )
    } else if r.contains("ERR_NAME_NOT_RESOLVED") || r.contains("ERR_NAME_RESOLUTION_FAILED") {
        (ErrorCode::DnsFailed, "the host name does not resolve")
    } else if r.contains("ERR_CERT") || r.contains("ERR_SSL") {
        (ErrorCode::TlsFailed, "its TLS certificate was not accepted")
    } else if r.contains("TIMED_OUT") {
        (ErrorCode::ConnectTimeout, "the connection timed out")
    } else {
        (ErrorCode::TargetUnreachable, "it could not be loaded")
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
            ErrorCode::TlsFailed => "trust Grafana's CA in the renderer or start it with --browser.flag=--ignore-certificate-errors".into(),
            ErrorCode::DnsFailed => format!("make {host} resolvable from grender, or use another GF_RENDERING_CALLBACK_URL"),
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
        assert_eq!(
            nav("net::ERR_CONNECTION_REFUSED").code(),
            ErrorCode::ConnectRefused
        );
        assert_eq!(
            nav("net::ERR_NAME_NOT_RESOLVED").code(),
            ErrorCode::DnsFailed
        );
        assert_eq!(
            nav("net::ERR_CERT_AUTHORITY_INVALID").code(),
            ErrorCode::TlsFailed
        );
        assert_eq!(
            nav("net::ERR_CONNECTION_TIMED_OUT").code(),
            ErrorCode::ConnectTimeout
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
