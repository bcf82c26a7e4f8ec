//! One render in one isolated browser context: lease a tab, emulate the screen ([`emulate`]),
//! guard its requests ([`guard`]), navigate ([`navigate`]), wait for readiness
//! ([`readiness`]), then capture ([`capture`]; for a Scenes picture, during the last quiet
//! frames: [`early_capture`]) or catch the CSV ([`download`]). This module is
//! the step sequence; each step lives in its own module.

pub(crate) mod capture;
pub(crate) mod download;
pub mod early_capture;
pub(crate) mod emulate;
pub(crate) mod full_page;
pub mod guard;
pub mod navigate;
pub mod readiness;
pub(crate) mod report_pdf;
pub(crate) mod reuse;
pub(crate) mod title;
pub(crate) mod watch;

use std::sync::Arc;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::target::EventTargetCrashed;
use chromiumoxide::cdp::js_protocol::runtime::EventBindingCalled;
use futures::StreamExt;

use crate::browser::{LiveBrowser, TabSetup, pool};
use crate::error::RenderError;
use crate::output::Output;
use crate::request::{Progress, RenderRequest, Stage};
use full_page::FullPage;
pub use readiness::{ReadinessMode, ReadinessOptions};
pub use reuse::AppReuse;

/// The login page's address when Grafana sent the browser there, else null.
const LOGIN_PAGE_JS: &str = r"/\/login\/?$/.test(location.pathname) ? location.href : null";

/// Server-wide settings every page render needs.
#[derive(Debug, Clone)]
pub struct PageOptions {
    /// Time zone used when the request names none or an invalid one.
    pub default_timezone: String,
    /// Cap on width × height × scale² for full-page captures.
    pub max_pixels: u64,
    /// Cap on a CSV download (render.max-csv-bytes).
    pub max_csv_bytes: u64,
    /// Where renders may go.
    pub origins: guard::OriginPolicy,
    /// Reuse a loaded Grafana app for the next render of the same verified viewer.
    pub reuse_app: bool,
}

/// What every tab needs before its first render: Grafana's render binding and the query
/// tracker, installed once per tab by the browser's pool.
pub fn tab_setup() -> TabSetup {
    TabSetup {
        bindings: vec![readiness::BINDING_NAME],
        scripts_on_new_document: vec![readiness::TRACK_QUERIES_JS],
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
    pub steps: Vec<(Stage, std::time::Duration)>,
    /// Whether a loaded app drew it.
    pub reuse: AppReuse,
    /// Whether the picture was taken while the last quiet frames passed ([`early_capture`]):
    /// kept (`Some(true)`), thrown away because the page changed (`Some(false)`), or not
    /// tried.
    pub early: Option<bool>,
    /// The dashboard's title, when the request asked for it (`fetch_title`) and Grafana said.
    pub title: Option<String>,
}

/// Renders `req` (PNG or PDF) in a tab of its own context, lent by `browser`'s pool.
/// `viewer` is the request's verified viewer, if any (for warm app reuse, see [`reuse`]).
/// Also says whether a loaded app was used, whatever the result.
pub async fn render(
    browser: &Arc<LiveBrowser>,
    req: &RenderRequest,
    opts: &PageOptions,
    progress: &Progress,
    viewer: Option<&str>,
) -> (Result<Capture, RenderError>, AppReuse) {
    let plan = reuse::plan(req, opts.reuse_app, viewer);
    let mut reused = AppReuse::Cold(match &plan {
        reuse::Plan::Key(_) => "no-app",
        reuse::Plan::Cold(why) => why,
    });
    let result = async {
        progress.set(Stage::OpeningTab);
        let (tab, app) = pool::lease(browser, plan.key()).await?;
        let tab = match app {
            Some(app) => match reuse::render(browser, tab, app, req, opts, progress).await {
                Ok(capture) => {
                    reused = AppReuse::Reused;
                    return Ok(capture);
                }
                Err(why) => {
                    tracing::debug!(
                        reason = why.0,
                        "a loaded app was not trusted; rendering cold"
                    );
                    reused = AppReuse::Fallback(why.0);
                    progress.set(Stage::OpeningTab);
                    pool::lease(browser, None).await?.0
                }
            },
            None => tab,
        };
        // A tab whose renderer died while idle (its crash not yet noted by the pool) fails
        // before the page is loaded; such a failure is retried once on another tab.
        match cold(browser, tab, req, opts, progress, &plan).await {
            Err(RenderError::PageCrashed) if !progress.reached(Stage::LoadingPage) => {
                let tab = pool::lease(browser, None).await?.0;
                cold(browser, tab, req, opts, progress, &plan).await
            }
            other => other,
        }
    }
    .await;
    let result = result.map(|capture| Capture {
        reuse: reused,
        ..capture
    });
    (result, reused)
}

/// Resolves when `target`'s renderer crashes.
async fn crash_of(
    browser: &LiveBrowser,
    target: chromiumoxide::cdp::browser_protocol::target::TargetId,
) -> Result<impl std::future::Future<Output = ()> + use<>, RenderError> {
    let mut crashes = browser
        .cdp
        .event_listener::<EventTargetCrashed>()
        .await
        .map_err(|e| RenderError::cdp("listening for crashes", e))?;
    Ok(async move {
        while let Some(ev) = crashes.next().await {
            if ev.target_id == target {
                return;
            }
        }
        std::future::pending::<()>().await
    })
}

/// Renders in a freshly loaded page; parks the app afterwards when the plan allows it.
async fn cold(
    browser: &Arc<LiveBrowser>,
    tab: pool::LeasedTab,
    req: &RenderRequest,
    opts: &PageOptions,
    progress: &Progress,
    plan: &reuse::Plan,
) -> Result<Capture, RenderError> {
    let crashed = crash_of(browser, tab.page().target_id().clone()).await?;
    let result = tokio::select! {
        r = drive(browser, &tab, req, opts, progress) => r,
        _ = crashed => Err(RenderError::PageCrashed),
    };
    if let (Ok((capture, true)), reuse::Plan::Key(key)) = (&result, plan)
        && capture.mode == ReadinessMode::Scenes
        && let Some(app) = reuse::first_park(tab.page(), key, &req.url).await
    {
        tab.park(app).await;
        return result.map(|(c, _)| c);
    }
    // A tab whose page crashed or whose CDP calls failed is not trusted again.
    let reusable = !matches!(
        result,
        Err(RenderError::PageCrashed | RenderError::Browser { .. })
    );
    tab.give_back(reusable);
    result.map(|(c, _)| c)
}

/// Viewport, time zone, language and render key, before loading or moving the page.
async fn prepare(page: &Page, req: &RenderRequest, opts: &PageOptions) -> Result<(), RenderError> {
    emulate::emulate_viewport(page, &req.viewport, req.viewport.start_height()).await?;
    emulate::set_timezone(page, req.timezone.as_deref(), &opts.default_timezone).await?;
    emulate::set_language(page, req.accept_language.as_deref()).await?;
    if let Some(cookie) = &req.cookie {
        emulate::set_render_key(page, cookie, &req.url).await?;
    }
    Ok(())
}

/// The render steps inside the tab. The flag says whether the page ran without an
/// uncaught exception (only such an app is worth keeping loaded).
async fn drive(
    browser: &Arc<LiveBrowser>,
    tab: &pool::LeasedTab,
    req: &RenderRequest,
    opts: &PageOptions,
    progress: &Progress,
) -> Result<(Capture, bool), RenderError> {
    let page = tab.page();
    let watch = watch::PageWatch::start(page).await;
    let navigation =
        guard::RequestGate::start(page, &opts.origins, &req.url, &req.extra_headers).await?;
    let refused = || navigation.refused();
    let download = match (&req.output, tab.context_id()) {
        (Output::Csv { .. }, Some(context)) => Some(
            download::Download::start(
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
    prepare(page, req, opts).await?;

    progress.set(Stage::LoadingPage);
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
        // Refused by Grafana, the d-csv page is its login page, which never downloads.
        if let Some(url) =
            readiness::evaluate::<Option<String>>(page, LOGIN_PAGE_JS, "loading the page")
                .await
                .ok()
                .flatten()
        {
            download.abandon().await;
            return Err(RenderError::LoginPage {
                url,
                elapsed: std::time::Duration::ZERO,
            });
        }
        progress.set(Stage::WaitingForCsv);
        let wait = req.readiness.timeout;
        let (bytes, suggested) = download.finish(wait, opts.max_csv_bytes).await?;
        let name = match &req.output {
            Output::Csv {
                file_name: Some(name),
            } => name.clone(),
            _ => {
                crate::output::csv::file_name_from(&suggested).unwrap_or_else(|| "data.csv".into())
            }
        };
        let capture = Capture {
            bytes,
            mode: ReadinessMode::None,
            file_name: Some(name),
            steps: Vec::new(),
            reuse: AppReuse::Cold("output"),
            early: None,
            title: None,
        };
        return Ok((capture, false));
    }

    progress.set(Stage::WaitingForPanels);
    let (mode, bytes, early, title) =
        ready_and_capture(page, &mut bindings, req, opts, watch.as_ref(), progress).await?;
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
    let capture = Capture {
        bytes,
        mode,
        file_name: None,
        steps: Vec::new(),
        reuse: AppReuse::Cold("off"),
        early,
        title,
    };
    Ok((capture, watch.is_some() && thrown.is_empty()))
}

/// Waits for Grafana's readiness signals, then captures the picture (PNG, JPEG/WebP or
/// PDF). A picture of a fixed size may be taken while the last quiet frames pass
/// ([`early_capture`]), and is kept only if the page did not change meanwhile.
async fn ready_and_capture(
    page: &Page,
    bindings: &mut (impl futures::Stream<Item = Arc<EventBindingCalled>> + Unpin),
    req: &RenderRequest,
    opts: &PageOptions,
    watch: Option<&watch::PageWatch>,
    progress: &Progress,
) -> Result<(ReadinessMode, bytes::Bytes, Option<bool>, Option<String>), RenderError> {
    let until = tokio::time::Instant::now() + req.readiness.timeout;
    // Readiness itself never offers an early picture of a full page (it grows while waiting).
    let pdf = matches!(req.output, Output::Pdf(_));
    let (mut ready, mut height) = wait_ready(page, bindings, req, opts, watch, until, !pdf).await?;
    // Asked before a PDF is printed (a report's PDF leaves the page), after any other
    // picture (a request in the page would spoil an early one).
    let mut title = None;
    if req.fetch_title && pdf {
        title = title::fetch(page).await;
    }
    progress.set(Stage::Capturing);
    let mut kept = None;
    if ready.early {
        let shot = capture_picture(page, req, height, title.as_deref(), progress);
        if let Some(bytes) = early_capture::capture(page, until, shot).await? {
            if req.fetch_title {
                title = title::fetch(page).await;
            }
            return Ok((ready.mode, bytes, Some(true), title));
        }
        // The page changed after the picture was taken: wait and capture as usual.
        progress.set(Stage::WaitingForPanels);
        (ready, height) = wait_ready(page, bindings, req, opts, watch, until, false).await?;
        progress.set(Stage::Capturing);
        kept = Some(false);
    }
    let bytes = capture_picture(page, req, height, title.as_deref(), progress).await?;
    if req.fetch_title && !pdf {
        title = title::fetch(page).await;
    }
    Ok((ready.mode, bytes, kept, title))
}

/// Waits for Grafana's readiness signals (following the page's height for a full-page
/// picture) until `until`; returns how the page said so and the height to capture.
async fn wait_ready(
    page: &Page,
    bindings: &mut (impl futures::Stream<Item = Arc<EventBindingCalled>> + Unpin),
    req: &RenderRequest,
    opts: &PageOptions,
    watch: Option<&watch::PageWatch>,
    until: tokio::time::Instant,
    early: bool,
) -> Result<(readiness::Ready, u32), RenderError> {
    let mut full = req
        .viewport
        .height
        .is_none()
        .then(|| FullPage::new(req.viewport, opts.max_pixels));
    let ready = readiness::wait(page, bindings, req.readiness, until, full.as_mut(), early)
        .await
        .map_err(|e| explain(e, watch))?;
    let height = full
        .as_ref()
        .map(|f| f.height)
        .unwrap_or_else(|| req.viewport.start_height());
    Ok((ready, height))
}

/// The picture (PNG, JPEG/WebP or PDF) of the ready page, `height` CSS pixels tall; a
/// report's PDF has `title` (Grafana's) in its header when given.
async fn capture_picture(
    page: &Page,
    req: &RenderRequest,
    height: u32,
    title: Option<&str>,
    progress: &Progress,
) -> Result<bytes::Bytes, RenderError> {
    let (width, scale) = (req.viewport.width, req.viewport.scale);
    match &req.output {
        Output::Png => capture::png_tiled(page, width, height, scale).await,
        Output::Picture(opts) => capture::picture(page, opts, req, height, progress).await,
        Output::Pdf(pdf) => match &pdf.report {
            Some(layout) => {
                let layout = match title {
                    Some(title) => &crate::output::report_pdf::ReportLayout {
                        title: title.to_string(),
                        ..layout.clone()
                    },
                    None => layout,
                };
                report_pdf::print(page, pdf, layout, width, height, scale).await
            }
            None => capture::pdf(page, pdf, scale).await,
        },
        Output::Csv { .. } => Err(RenderError::local(
            "capturing",
            "a CSV is downloaded, not captured",
        )),
    }
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
