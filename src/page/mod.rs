//! One render in one isolated browser context: open a tab, emulate the viewport, time
//! zone and language, set the render-key cookie, navigate, wait for readiness, capture.

pub mod guard;
pub mod navigate;
pub mod readiness;
pub mod watch;

use std::sync::Arc;
use std::sync::Mutex;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::emulation::{
    ScreenOrientation, ScreenOrientationType, SetDeviceMetricsOverrideParams,
    SetTimezoneOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::network::{
    Headers, SetCookieParams, SetExtraHttpHeadersParams,
};
use chromiumoxide::cdp::browser_protocol::target::EventTargetCrashed;
use chromiumoxide::cdp::js_protocol::runtime::EventBindingCalled;
use futures::StreamExt;

use crate::browser::{LiveBrowser, pool};
use crate::error::RenderError;
use crate::output::{self, Output};
use crate::request::{RenderRequest, Viewport};
pub use readiness::{ReadinessMode, ReadinessOptions};

/// Server-wide settings every page render needs.
#[derive(Debug, Clone)]
pub struct PageOptions {
    /// Time zone used when the request names none or an invalid one.
    pub default_timezone: String,
    /// Readiness wait limits.
    pub readiness: ReadinessOptions,
    /// Cap on width × height × scale² for full-page captures.
    pub max_pixels: u64,
    /// Cap on a CSV download (render.max-csv-bytes).
    pub max_csv_bytes: u64,
    /// Where renders may go.
    pub origins: guard::OriginPolicy,
}

/// The step a render is in, so a deadline error can say where the time went, and how
/// long each step took (for the step-duration metric).
#[derive(Debug)]
pub struct Progress(Mutex<Vec<(&'static str, std::time::Instant)>>);

impl Progress {
    /// Starts at `stage`.
    pub fn new(stage: &'static str) -> Self {
        Progress(Mutex::new(vec![(stage, std::time::Instant::now())]))
    }
    /// Moves to `stage`.
    pub fn set(&self, stage: &'static str) {
        if let Ok(mut s) = self.0.lock() {
            s.push((stage, std::time::Instant::now()));
        }
    }
    /// The current stage.
    pub fn get(&self) -> &'static str {
        self.0
            .lock()
            .ok()
            .and_then(|s| s.last().map(|(stage, _)| *stage))
            .unwrap_or("rendering")
    }
    /// Whether the render ever reached `stage`.
    pub fn reached(&self, stage: &str) -> bool {
        self.0
            .lock()
            .map(|s| s.iter().any(|(st, _)| *st == stage))
            .unwrap_or(false)
    }
    /// Each stage with the time spent in it (the last one until now).
    pub fn steps(&self) -> Vec<(&'static str, std::time::Duration)> {
        let Ok(s) = self.0.lock() else {
            return Vec::new();
        };
        let now = std::time::Instant::now();
        s.iter()
            .enumerate()
            .map(|(i, (stage, at))| {
                (
                    *stage,
                    s.get(i + 1)
                        .map(|(_, next)| *next)
                        .unwrap_or(now)
                        .duration_since(*at),
                )
            })
            .collect()
    }
}

/// A finished picture.
#[derive(Debug)]
pub struct Capture {
    /// The PNG or PDF; shared cheaply by every request that joined this render.
    pub bytes: bytes::Bytes,
    pub mode: ReadinessMode,
    /// The download name of a CSV.
    pub file_name: Option<String>,
    /// Time spent in each step, for the request's log line.
    pub steps: Vec<(&'static str, std::time::Duration)>,
}

/// Renders `req` (PNG or PDF) in a tab of its own context, lent by `browser`'s pool.
pub async fn render(
    browser: &Arc<LiveBrowser>,
    req: &RenderRequest,
    opts: &PageOptions,
    progress: &Progress,
) -> Result<Capture, RenderError> {
    // A tab whose renderer died while idle (its crash not yet noted by the pool) fails
    // before the page is loaded; such a failure is retried once on another tab.
    match render_in_tab(browser, req, opts, progress).await {
        Err(RenderError::PageCrashed) if !progress.reached(STAGE_LOADING) => {
            render_in_tab(browser, req, opts, progress).await
        }
        other => other,
    }
}

const STAGE_LOADING: &str = "loading the page";

async fn render_in_tab(
    browser: &Arc<LiveBrowser>,
    req: &RenderRequest,
    opts: &PageOptions,
    progress: &Progress,
) -> Result<Capture, RenderError> {
    progress.set("opening a browser tab");
    let mut crashes = browser
        .cdp
        .event_listener::<EventTargetCrashed>()
        .await
        .map_err(|e| RenderError::cdp("listening for crashes", e))?;
    let tab = pool::lease(browser).await?;
    let page = tab.page();
    let target_id = page.target_id().clone();
    let crashed = async {
        while let Some(ev) = crashes.next().await {
            if ev.target_id == target_id {
                return;
            }
        }
        std::future::pending::<()>().await
    };
    let result = tokio::select! {
        r = drive(browser, &tab, req, opts, progress) => r,
        _ = crashed => Err(RenderError::PageCrashed),
    };
    // A tab whose page crashed or whose CDP calls failed is not trusted again.
    let reusable = !matches!(
        result,
        Err(RenderError::PageCrashed | RenderError::Browser { .. })
    );
    tab.give_back(reusable);
    result
}

/// The render steps inside the tab.
async fn drive(
    browser: &Arc<LiveBrowser>,
    tab: &pool::LeasedTab,
    req: &RenderRequest,
    opts: &PageOptions,
    progress: &Progress,
) -> Result<Capture, RenderError> {
    let page = tab.page();
    let watch = watch::PageWatch::start(page).await;
    let navigation =
        guard::RequestGate::start(page, &opts.origins, &req.url, &req.extra_headers).await?;
    let refused = || navigation.refused();
    let download = match (&req.output, tab.context_id()) {
        (Output::Csv { .. }, Some(context)) => Some(
            output::csv::Download::start(
                browser,
                context.clone(),
                page.target_id().as_ref().to_string(),
            )
            .await?,
        ),
        _ => None,
    };
    let mut bindings = page
        .event_listener::<EventBindingCalled>()
        .await
        .map_err(|e| RenderError::cdp("listening for Grafana's render report", e))?;
    emulate_viewport(page, &req.viewport, req.viewport.start_height()).await?;
    set_timezone(page, req.timezone.as_deref(), &opts.default_timezone).await?;
    // Always set, so a reused tab does not keep the previous render's language. (Headers
    // with credentials go to the target's origin only: the guard adds them.)
    let mut headers = serde_json::Map::new();
    if let Some(lang) = &req.accept_language {
        headers.insert("Accept-Language".into(), lang.clone().into());
    }
    let headers = serde_json::Value::Object(headers);
    page.execute(SetExtraHttpHeadersParams::new(Headers::new(headers)))
        .await
        .map_err(|e| RenderError::cdp("setting Accept-Language", e))?;
    if let Some(cookie) = &req.cookie {
        page.execute(render_key_cookie(cookie, &req.url)?)
            .await
            .map_err(|e| RenderError::cdp("setting the renderKey cookie", e))?;
    }

    progress.set(STAGE_LOADING);
    match navigate::goto(page, req.url.as_str()).await {
        Ok(navigate::Loaded::ByClient) => {}
        // The CDP client still waits for this navigation and would hold up the tab's next.
        Ok(navigate::Loaded::ByLifecycle) => tab.spoil(),
        Err(e) => {
            if let Some(refused) = refused() {
                return Err(refused);
            }
            // A URL that is itself the download ends its navigation as "aborted".
            if download.is_none() || !e.reason().contains("ERR_ABORTED") {
                return Err(e.into_render_error(req.url.as_str()));
            }
        }
    }
    if let Some(download) = download {
        progress.set("waiting for the CSV download");
        let wait = req.readiness_timeout.unwrap_or(opts.readiness.timeout);
        let (bytes, suggested) = download.finish(wait, opts.max_csv_bytes).await?;
        let name = match &req.output {
            Output::Csv {
                file_name: Some(name),
            } => name.clone(),
            _ => output::csv::file_name_from(&suggested).unwrap_or_else(|| "data.csv".into()),
        };
        return Ok(Capture {
            bytes,
            mode: ReadinessMode::None,
            file_name: Some(name),
            steps: Vec::new(),
        });
    }

    progress.set("waiting for panels to render");
    let readiness_opts = ReadinessOptions {
        timeout: req.readiness_timeout.unwrap_or(opts.readiness.timeout),
        first_signal_grace: req
            .first_signal_grace
            .unwrap_or(opts.readiness.first_signal_grace),
    };
    let until = tokio::time::Instant::now() + readiness_opts.timeout;
    let mut full = req.viewport.height.is_none().then_some(FullPage {
        viewport: req.viewport,
        height: req.viewport.initial_height,
        max_pixels: opts.max_pixels,
    });
    let mode = readiness::wait(page, &mut bindings, readiness_opts, until, full.as_mut())
        .await
        .map_err(|e| explain(e, watch.as_ref()))?;
    let thrown = watch
        .as_ref()
        .map(watch::PageWatch::exceptions)
        .unwrap_or_default();
    if mode == ReadinessMode::None && !thrown.is_empty() {
        // No Grafana came up and its scripts threw: not a picture worth sending.
        return Err(RenderError::PageScriptError(thrown.join(" | ")));
    }
    tracing::debug!(?mode, "page ready");
    // The page may have tried to leave for a refused origin after it loaded: its error
    // page is no picture of the dashboard.
    if let Some(refused) = refused() {
        return Err(refused);
    }

    progress.set("capturing the picture");
    let bytes = match &req.output {
        Output::Png => {
            let height = full
                .as_ref()
                .map(|f| f.height)
                .unwrap_or_else(|| req.viewport.start_height());
            output::png_tiled(page, req.viewport.width, height, req.viewport.scale).await?
        }
        Output::Picture(opts) => {
            let height = full
                .as_ref()
                .map(|f| f.height)
                .unwrap_or_else(|| req.viewport.start_height());
            picture(page, opts, req, height, progress).await?
        }
        Output::Pdf(pdf) => output::pdf::print(page, pdf, req.viewport.scale).await?,
        Output::Csv { .. } => {
            return Err(RenderError::cdp(
                "capturing",
                "a CSV is downloaded, not captured",
            ));
        }
    };
    Ok(Capture {
        bytes,
        mode,
        file_name: None,
        steps: Vec::new(),
    })
}

/// An opt-in picture: Chromium's JPEG/WebP where it can, else its PNG converted here off the
/// async threads.
async fn picture(
    page: &Page,
    opts: &output::picture::PictureOptions,
    req: &RenderRequest,
    height: u32,
    progress: &Progress,
) -> Result<bytes::Bytes, RenderError> {
    let (width, scale) = (req.viewport.width, req.viewport.scale);
    let device_height = height as f64 * scale;
    if opts.chromium_encodes() && device_height <= output::TILE_DEVICE_PX as f64 {
        return output::native(page, opts.format, opts.quality()).await;
    }
    let png = match opts
        .thumbnail
        .and_then(|t| output::thumbnail_capture_scale(t, width, height, scale))
    {
        // Chromium draws the page at twice the thumbnail's width: the bitmap grender decodes
        // stays small however large the page, and Lanczos does the last halving.
        Some(shrink) => output::Shot::Whole(output::png_scaled(page, width, height, shrink).await?),
        None => output::capture_page(page, width, height, scale).await?,
    };
    progress.set("converting the picture");
    let opts = opts.clone();
    let time_left = req.deadline.remaining();
    tokio::task::spawn_blocking(move || output::picture::convert(png, &opts, time_left))
        .await
        .map_err(|e| RenderError::cdp("converting the picture", e))?
        .map(Into::into)
}

/// Adds what the page was still doing to a readiness timeout.
fn explain(err: RenderError, watch: Option<&watch::PageWatch>) -> RenderError {
    let Some(watch) = watch else { return err };
    let RenderError::ReadinessTimeout {
        timeout,
        mut detail,
    } = err
    else {
        return err;
    };
    let pending = watch.pending();
    if !pending.is_empty() {
        detail.push_str(&format!("; requests still pending: {}", pending.join(", ")));
    }
    let thrown = watch.exceptions();
    if !thrown.is_empty() {
        detail.push_str(&format!("; page errors: {}", thrown.join(" | ")));
    }
    RenderError::ReadinessTimeout { timeout, detail }
}

/// Sets the viewport; the picture is `width × height × scale` pixels.
async fn emulate_viewport(page: &Page, vp: &Viewport, height: u32) -> Result<(), RenderError> {
    let orientation = if vp.landscape {
        ScreenOrientation {
            r#type: ScreenOrientationType::LandscapePrimary,
            angle: 90,
        }
    } else {
        ScreenOrientation {
            r#type: ScreenOrientationType::PortraitPrimary,
            angle: 0,
        }
    };
    let params = SetDeviceMetricsOverrideParams::builder()
        .width(vp.width)
        .height(height)
        .device_scale_factor(vp.scale)
        .mobile(false)
        .screen_orientation(orientation)
        .build()
        .map_err(|e| RenderError::cdp("setting the viewport", e))?;
    page.execute(params)
        .await
        .map_err(|e| RenderError::cdp("setting the viewport", e))?;
    Ok(())
}

/// Applies the requested time zone; Chromium refuses unknown names, and then the
/// server default applies (an invalid `timezone` is not an error, as in the Go service).
async fn set_timezone(
    page: &Page,
    requested: Option<&str>,
    default: &str,
) -> Result<(), RenderError> {
    if let Some(tz) = requested
        && page
            .execute(SetTimezoneOverrideParams::new(tz))
            .await
            .is_ok()
    {
        return Ok(());
    }
    if let Some(tz) = requested {
        tracing::debug!(
            timezone = tz,
            "unknown time zone requested; using the server default"
        );
    }
    page.execute(SetTimezoneOverrideParams::new(default))
        .await
        .map_err(|e| RenderError::cdp("setting the time zone", format!("{default}: {e}")))?;
    Ok(())
}

/// The `renderKey` cookie: `HttpOnly` (Grafana's server reads it; no script of the page
/// needs it) and host-only for the target's host, unless Grafana named another domain.
fn render_key_cookie(
    cookie: &crate::request::RenderCookie,
    url: &str,
) -> Result<SetCookieParams, RenderError> {
    let url = url::Url::parse(url).ok();
    let builder = SetCookieParams::builder()
        .name("renderKey")
        .value(cookie.key.clone())
        .path("/")
        .http_only(true);
    let same_host = url
        .as_ref()
        .and_then(|u| u.host_str())
        .is_some_and(|h| h.trim_matches(['[', ']']) == cookie.domain.trim_matches(['[', ']']));
    let builder = match url.filter(|_| same_host) {
        // With a URL and no domain, Chromium makes the cookie host-only.
        Some(url) => builder.url(url.origin().ascii_serialization()),
        None => builder.domain(cookie_domain(&cookie.domain)),
    };
    builder
        .build()
        .map_err(|e| RenderError::cdp("setting the renderKey cookie", e))
}

/// Cookie domains that are IPv6 literals must be bracketed, as in URLs.
fn cookie_domain(domain: &str) -> String {
    if domain.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{domain}]")
    } else {
        domain.to_string()
    }
}

/// A full-page capture in progress: the viewport grows with the page, so that every
/// lazily loaded panel comes into view and loads (the official services scroll instead).
#[derive(Debug)]
pub struct FullPage {
    viewport: Viewport,
    /// The viewport height set so far.
    height: u32,
    max_pixels: u64,
}

impl FullPage {
    /// Grows the viewport to the page's current full height; true when it grew.
    pub async fn grow(&mut self, page: &Page) -> Result<bool, RenderError> {
        let measured: f64 = readiness::evaluate(page, PAGE_HEIGHT_JS, "measuring the page").await?;
        let full = full_page_height(&self.viewport, measured, self.max_pixels)?;
        if full <= self.height {
            return Ok(false);
        }
        self.height = full;
        emulate_viewport(page, &self.viewport, full).await?;
        Ok(true)
    }
}

/// The full-page height, or a clear refusal when the picture would pass the pixel budget
/// (rather than an out-of-memory kill, or a silently cut picture).
fn full_page_height(vp: &Viewport, measured: f64, max_pixels: u64) -> Result<u32, RenderError> {
    let measured = if measured.is_finite() && measured > 0.0 {
        measured.ceil() as u64
    } else {
        0
    };
    let pixels = vp.width as f64 * measured as f64 * vp.scale * vp.scale;
    if pixels > max_pixels as f64 {
        return Err(RenderError::TooLarge(format!(
            "the full page is {}×{measured} px at scale {}, {:.0} million pixels, above render.max-pixels \
             ({:.0} million); render a smaller width or scale, or raise render.max-pixels",
            vp.width,
            vp.scale,
            pixels / 1e6,
            max_pixels as f64 / 1e6
        )));
    }
    Ok(measured.min(u32::MAX as u64) as u32)
}

/// The height the whole page needs, including Grafana's header around the inner scroller.
const PAGE_HEIGHT_JS: &str = r#"(() => {
  const inner = document.querySelector('#page-scrollbar')
    || [1, 2, 3, 4, 5].map(d => document.querySelector('main ' + '> div '.repeat(d) + '> [class*="scrollbar-view"]')).find(e => e);
  if (inner) return document.body.clientHeight - inner.clientHeight + inner.scrollHeight;
  return Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0);
})()"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_cookie_domains_are_bracketed() {
        assert_eq!(cookie_domain("::1"), "[::1]");
        assert_eq!(cookie_domain("grafana"), "grafana");
        assert_eq!(cookie_domain("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn full_page_height_refuses_pages_over_the_pixel_budget() {
        let vp = Viewport {
            width: 1000,
            height: None,
            initial_height: 750,
            scale: 2.0,
            landscape: true,
        };
        assert_eq!(full_page_height(&vp, 3000.4, 60_000_000).unwrap(), 3001);
        assert!(matches!(
            full_page_height(&vp, 100_000.0, 60_000_000),
            Err(RenderError::TooLarge(_))
        ));
        assert_eq!(full_page_height(&vp, f64::NAN, 60_000_000).unwrap(), 0);
    }
}
