//! Warm app reuse (`render.reuse-app`, docs/adr/0013): the next picture of the *same
//! verified viewer* is drawn by the Grafana app a previous render already loaded, moved to
//! the new dashboard by an in-app navigation (`history.pushState` + `popstate`, which
//! Grafana's router follows) instead of booting Grafana again.
//!
//! **Who gets a loaded app** ([`plan`]): only a render whose [`AppKey`] is equal — callback
//! origin and sub-path, cookie domain, the viewer (a JWT render key verified with the token
//! that authenticated the request, or no key at all), the URL's `theme`, `orgId` and `kiosk`,
//! the language — and whose page kind can be proven after an in-app navigation: PNG/JPEG/WebP
//! of `/d/` and `/d-solo/` pages. Opaque render keys, PDF, CSV, other pages and requests
//! carrying credentials render cold.
//!
//! **Before trusting the app again** ([`render`]), in the render's own time box (half of
//! what is left of its deadline): the document is the one parked (a marker only it holds),
//! Grafana accepts the new render key (`GET api/user` answers 200) and reports the build the
//! app was loaded from (`GET api/health`), the route changed (location, a newly activated
//! scene, the dashboard uid), Grafana's render report came after that, every panel shows data
//! asked for after the move (a scene Grafana kept from an earlier visit is refreshed first),
//! and nothing went wrong on the way: no full navigation, no 401/403 answer, no uncaught
//! exception or `console.error`. Anything else is a [`Fallback`]: the tab is disposed and the
//! request renders cold within the same deadline.
//!
//! **Recycling**: an app is parked again only while it has served fewer than
//! [`MAX_RENDERS`] renders, is younger than [`MAX_AGE`] and its JavaScript heap has not
//! grown past [`MAX_HEAP_GROWTH`] over its first render's; the pool gives back apps whose
//! viewer went idle.

mod scripts;
mod watch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chromiumoxide::Page;
use chromiumoxide::cdp::js_protocol::runtime::{EventBindingCalled, GetHeapUsageParams};
use futures::{FutureExt, StreamExt};

use super::readiness::{self, ReadinessMode, evaluate};
use super::{Capture, PageOptions, guard};
use crate::browser::LiveBrowser;
use crate::browser::pool::{self, ParkedApp};
use crate::output::Output;
use crate::request::{Progress, RenderRequest, Stage};
use scripts::{NAVIGATE_JS, PROOF_JS, VERIFY_JS, Verdict, run};
use watch::AnomalyWatch;

/// Renders one app serves before it is booted afresh.
const MAX_RENDERS: u32 = 100;
/// Age after which an app is booted afresh.
const MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// Growth of the app's JavaScript heap over its first render's that retires it.
const MAX_HEAP_GROWTH: f64 = 64.0 * 1024.0 * 1024.0;
/// Longest wait for the in-app navigation to reach the new scene.
const PROOF_LIMIT: Duration = Duration::from_secs(3);

/// Whether a render may use a loaded app, and the key of the apps it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Apps parked with this key are this render's viewer's.
    Key(AppKey),
    /// Renders cold, and why (the `reason` label).
    Cold(&'static str),
}

impl Plan {
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Plan::Key(k) => Some(&k.0),
            Plan::Cold(_) => None,
        }
    }
}

/// Everything two renders must share to use the same loaded app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppKey(String);

/// Decides whether `req` may use a loaded app. `viewer` is the verified viewer (None for an
/// opaque or unverifiable render key).
pub(crate) fn plan(req: &RenderRequest, enabled: bool, viewer: Option<&str>) -> Plan {
    if !enabled {
        return Plan::Cold("off");
    }
    if !matches!(req.output, Output::Png | Output::Picture(_)) {
        return Plan::Cold("output");
    }
    if !req.extra_headers.is_empty() {
        return Plan::Cold("credentials");
    }
    let Some(viewer) = viewer else {
        return Plan::Cold("unverified-key");
    };
    let Ok(url) = url::Url::parse(&req.url) else {
        return Plan::Cold("page");
    };
    let Some(base) = app_base(url.path()) else {
        return Plan::Cold("page");
    };
    // Absent (null) and empty differ: `?kiosk` asks for kiosk mode.
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let key = serde_json::json!([
        url.origin().ascii_serialization(),
        base,
        req.cookie.as_ref().map(|c| c.domain.as_str()),
        viewer,
        param("theme"),
        param("orgId"),
        // Grafana's chrome enters kiosk mode when a URL asks for it and never leaves it by
        // itself: an app that showed a kiosk page would draw the next one without its chrome.
        param("kiosk"),
        req.accept_language,
    ]);
    Plan::Key(AppKey(key.to_string()))
}

/// Grafana's sub-path in front of a dashboard (`/d/`) or solo panel (`/d-solo/`) route.
fn app_base(path: &str) -> Option<&str> {
    ["/d/", "/d-solo/"]
        .iter()
        .filter_map(|route| path.find(route))
        .min()
        .map(|at| &path[..at])
}

/// Whether a picture came from a loaded app, and why not: the log line's `reuse` field and
/// the `grender_app_reuse_total` metric's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppReuse {
    Reused,
    /// Rendered cold from the start; the reason is the plan's, or `no-app` when none of the
    /// viewer's was parked.
    Cold(&'static str),
    /// A loaded app was tried and not trusted; rendered cold after it.
    Fallback(&'static str),
}

impl AppReuse {
    /// The metric's `outcome` label.
    pub fn outcome(self) -> &'static str {
        match self {
            AppReuse::Reused => "reused",
            AppReuse::Cold(_) => "cold",
            AppReuse::Fallback(_) => "fallback",
        }
    }

    /// The metric's `reason` label (empty when reused).
    pub fn reason(self) -> &'static str {
        match self {
            AppReuse::Reused => "",
            AppReuse::Cold(why) | AppReuse::Fallback(why) => why,
        }
    }
}

/// The log line's `reuse` field: `reused`, or the outcome and why (`cold:no-app`).
impl std::fmt::Display for AppReuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reason() {
            "" => f.write_str(self.outcome()),
            why => write!(f, "{}:{why}", self.outcome()),
        }
    }
}

/// Why a loaded app was not trusted for this render (the `reason` label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fallback(pub &'static str);

/// What a parked app must still show to be trusted again.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// Held by the loaded document only: a full navigation loses it.
    marker: String,
    /// Grafana's build as the app's boot data reported it.
    build: String,
    booted: Instant,
    renders: u32,
    heap_baseline: f64,
    /// The query parameters any render of this app named: state a scene Grafana kept may
    /// still hold from an earlier render unless this render's URL names them too.
    url_keys: std::collections::BTreeSet<String>,
}

/// Marks a loaded app as parked and reads its build; from now on, counts every time a scene
/// becomes the page's scene (`__grenderSceneSets`), which proves that an in-app navigation
/// reached a new (or re-activated) scene. Installed only now, not before the app boots, so
/// that cold renders run Grafana's code untouched.
const PARK_JS: &str = r#"((marker) => {
  const w = window;
  const settings = (w.grafanaBootData || {}).settings || {};
  const b = settings.buildInfo;
  if (!b || !b.version) return null;
  // With this toggle Grafana carries a dashboard's URL state (time range, variables) over to
  // the next dashboard the page shows: a later render would inherit this one's.
  if ((settings.featureToggles || {}).preserveDashboardStateWhenNavigating) return null;
  let scene = w.__grafanaSceneContext;
  // When each scene object was first the page's scene: Grafana keeps a dashboard's scene and
  // shows the same object again when a route comes back to it.
  const first = new WeakMap();
  w.__grenderSceneSets = 0;
  if (scene) first.set(scene, 0);
  Object.defineProperty(w, '__grafanaSceneContext', {
    configurable: true, enumerable: true,
    get() { return scene; },
    set(x) {
      scene = x;
      w.__grenderSceneSets += 1;
      if (x && !first.has(x)) first.set(x, w.__grenderSceneSets);
    },
  });
  w.__grenderSceneFirstSet = x => first.get(x);
  // The active query runners of the page's scene whose data was asked for before `t`
  // (duck-typed: Scenes' class names are minified). Depth-bounded.
  w.__grenderStaleRunners = t => {
    const out = [];
    const visit = (x, depth) => {
      if (!x || depth > 64) return;
      const req = x.isActive && typeof x.runQueries === 'function' && x.state && x.state.data && x.state.data.request;
      if (req && typeof req.startTime === 'number' && req.startTime < t) out.push(x);
      if (typeof x.forEachChild === 'function') {
        try { x.forEachChild(c => visit(c, depth + 1)); } catch (e) {}
      }
    };
    visit(w.__grafanaSceneContext, 0);
    return out;
  };
  // Called by the readiness scripts while a reused app renders: a runner that shows data from
  // before the move (a kept scene activated again) is asked once to query again.
  w.__grenderFreshen = () => {
    const t = w.__grenderFreshSince, asked = w.__grenderAsked;
    if (!t || !asked) return false;
    let ran = false;
    for (const r of w.__grenderStaleRunners(t)) {
      if (asked.has(r)) continue;
      asked.add(r);
      ran = true;
      try { r.runQueries(); } catch (e) {}
    }
    return ran;
  };
  w.__grenderApp = marker;
  return `${b.version}+${b.commit}`;
})"#;

/// Marks a freshly loaded app (after a successful cold render) and returns what to park
/// it with, or `None` when it is not worth keeping (no build reported, no heap figure) or
/// would carry this render's state over to the next (Grafana's
/// `preserveDashboardStateWhenNavigating`).
pub(crate) async fn first_park(page: &Page, key: &AppKey, url: &str) -> Option<ParkedApp> {
    let marker = format!("{:032x}", rand_u128());
    // A page without Grafana's boot data names no build to check later: not kept.
    let build: String =
        evaluate::<Option<String>>(page, &format!("({PARK_JS})({marker:?})"), "marking the app")
            .await
            .ok()
            .flatten()?;
    let heap = heap_used(page).await?;
    let state = AppState {
        marker,
        build,
        booted: Instant::now(),
        renders: 1,
        heap_baseline: heap,
        url_keys: url::Url::parse(url)
            .map(|u| url_keys(&u))
            .unwrap_or_default(),
    };
    Some(ParkedApp {
        key: key.0.clone(),
        state: Box::new(state),
    })
}

/// The app to park again after a successful reuse, or `None` when it is due for recycling.
async fn park_again(page: &Page, key: String, mut state: AppState) -> Option<ParkedApp> {
    state.renders += 1;
    if state.renders >= MAX_RENDERS || state.booted.elapsed() >= MAX_AGE {
        return None;
    }
    if heap_used(page).await? > state.heap_baseline + MAX_HEAP_GROWTH {
        tracing::debug!("retiring a loaded app whose heap grew");
        return None;
    }
    Some(ParkedApp {
        key,
        state: Box::new(state),
    })
}

async fn heap_used(page: &Page) -> Option<f64> {
    page.execute(GetHeapUsageParams::default())
        .await
        .ok()
        .map(|r| r.result.used_size)
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut out = 0u128;
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(out);
        out = (out << 64) | u128::from(h.finish());
    }
    out
}

/// Renders with a parked app of the same viewer, in a time box of half what is left of the
/// deadline. On any doubt the tab is disposed and the caller renders cold.
pub(super) async fn render(
    browser: &Arc<LiveBrowser>,
    tab: pool::LeasedTab,
    app: pool::ParkedApp,
    req: &RenderRequest,
    opts: &PageOptions,
    progress: &Progress,
) -> Result<Capture, Fallback> {
    let limit = req.deadline.remaining() / 2;
    let crashed = super::crash_of(browser, tab.page().target_id().clone())
        .await
        .map_err(|_| Fallback("cdp"))?;
    let attempt = tokio::time::timeout(limit, drive(&tab, app, req, opts, progress));
    let result = tokio::select! {
        r = attempt => r.unwrap_or(Err(Fallback("timeout"))),
        _ = crashed => Err(Fallback("crashed")),
    };
    match result {
        Ok((capture, Some(app))) => {
            tab.park(app).await;
            Ok(capture)
        }
        Ok((capture, None)) => {
            tab.spoil(); // recycled: booted afresh next time
            tab.give_back(false);
            Ok(capture)
        }
        Err(why) => {
            tab.spoil();
            tab.give_back(false);
            Err(why)
        }
    }
}

/// The steps of a render with a loaded app: emulate, set the key, move inside the app,
/// prove the move, wait for readiness, capture, check nothing went wrong meanwhile.
async fn drive(
    tab: &pool::LeasedTab,
    app: pool::ParkedApp,
    req: &RenderRequest,
    opts: &PageOptions,
    progress: &Progress,
) -> Result<(Capture, Option<pool::ParkedApp>), Fallback> {
    let page = tab.page();
    let navigation = guard::RequestGate::start(page, &opts.origins, &req.url, &req.extra_headers)
        .await
        .map_err(fail("cdp"))?;
    let mut bindings = page
        .event_listener::<EventBindingCalled>()
        .await
        .map_err(fail("cdp"))?;
    super::prepare(page, req, opts).await.map_err(fail("cdp"))?;
    progress.set(Stage::LoadingPage);
    let moved = navigate(page, app, req, &mut bindings).await?;
    progress.set(Stage::WaitingForPanels);
    let (mode, bytes, early, _title) =
        super::ready_and_capture(page, &mut bindings, req, opts, None, progress)
            .await
            .map_err(fail("readiness"))?;
    if navigation.refused().is_some() {
        return Err(Fallback("refused-origin"));
    }
    let again = moved.finish(page, mode).await?;
    let capture = Capture {
        bytes,
        mode,
        file_name: None,
        steps: Vec::new(),
        reuse: AppReuse::Reused,
        early,
        title: None,
    };
    Ok((capture, again))
}

/// Maps any error of a reuse step to the fallback reason `why`.
fn fail<E>(why: &'static str) -> impl Fn(E) -> Fallback {
    move |_| Fallback(why)
}

/// A reused app on its way: in-app navigation done and proven.
pub(crate) struct Moved {
    anomalies: AnomalyWatch,
    key: String,
    state: AppState,
}

/// Prepares the parked app (already emulated, with the new render key set) and moves it
/// to `req`'s route, proving the move. Readiness and capture are the caller's, who then
/// calls [`Moved::finish`].
pub(crate) async fn navigate(
    page: &Page,
    app: ParkedApp,
    req: &RenderRequest,
    bindings: &mut (impl futures::Stream<Item = Arc<EventBindingCalled>> + Unpin),
) -> Result<Moved, Fallback> {
    let Ok(state) = app.state.downcast::<AppState>() else {
        return Err(Fallback("page"));
    };
    let mut state = *state;
    let url = url::Url::parse(&req.url).map_err(|_| Fallback("page"))?;
    let base = app_base(url.path()).ok_or(Fallback("page"))?.to_string();
    let anomalies = AnomalyWatch::start(page, url.origin().ascii_serialization()).await?;
    let verify = serde_json::json!({"marker": state.marker, "base": base, "build": state.build});
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let hash = url.fragment().map(|f| format!("#{f}")).unwrap_or_default();
    let nav = serde_json::json!({"marker": state.marker, "target": target, "hash": hash});
    let uid = dashboard_uid(url.path(), &base);
    let route = dashboard_route(url.path(), &base);
    let keys = url_keys(&url);
    // A scene Grafana kept shows this request's state only where this URL names it.
    let pinned = state.url_keys.is_subset(&keys);
    state.url_keys.extend(keys);
    let move_and_prove = async {
        let moved = run::<Verdict>(page, NAVIGATE_JS, nav).await?.ok()?;
        let proof = serde_json::json!({
            "marker": state.marker,
            "path": moved.path,
            "route": route,
            "pinned": pinned,
            "setsBefore": moved.sets_before,
            "uid": uid,
            "limitMs": PROOF_LIMIT.as_millis() as u64,
        });
        run::<Verdict>(page, PROOF_JS, proof).await?.ok()
    };
    // Checking the key and build takes two requests to Grafana: done while the app moves
    // (nothing is captured before both are known; a refused key only gets 401s meanwhile).
    let (verified, moved) = futures::join!(run::<Verdict>(page, VERIFY_JS, verify), move_and_prove);
    verified?.ok()?;
    moved?;
    // Grafana's render report belongs to the new route only if it came after the proof.
    while let Some(Some(call)) = bindings.next().now_or_never() {
        if call.name == readiness::BINDING_NAME {
            return Err(Fallback("out-of-order"));
        }
    }
    anomalies.check()?;
    Ok(Moved {
        anomalies,
        key: app.key,
        state,
    })
}

impl Moved {
    /// After readiness and capture: whether the picture can be trusted (else a fallback),
    /// and the app to park again if it is not due for recycling.
    pub(crate) async fn finish(
        self,
        page: &Page,
        mode: ReadinessMode,
    ) -> Result<Option<ParkedApp>, Fallback> {
        if mode != ReadinessMode::Scenes {
            return Err(Fallback("not-scenes"));
        }
        self.anomalies.check()?;
        let still: bool = evaluate(
            page,
            &format!("window.__grenderApp === {:?}", self.state.marker),
            "reusing the app",
        )
        .await
        .map_err(|_| Fallback("page"))?;
        if !still {
            return Err(Fallback("navigated"));
        }
        // Every panel on the picture must show data asked for by this render.
        let stale: u32 = evaluate(
            page,
            "window.__grenderStaleRunners(window.__grenderFreshSince).length",
            "reusing the app",
        )
        .await
        .map_err(|_| Fallback("page"))?;
        if stale > 0 {
            return Err(Fallback("stale-data"));
        }
        Ok(park_again(page, self.key, self.state).await)
    }
}

/// The route of one dashboard's page, `<base>/d/<uid>` or `<base>/d-solo/<uid>`: where the app
/// must be after the move. Grafana may write its own state into the rest of the URL (the
/// slug, the time range, variables) once it shows the page.
fn dashboard_route(path: &str, base: &str) -> Option<String> {
    let uid = dashboard_uid(path, base)?;
    let kind = if path.strip_prefix(base)?.starts_with("/d-solo/") {
        "/d-solo/"
    } else {
        "/d/"
    };
    Some(format!("{base}{kind}{uid}"))
}

/// The names of `url`'s query parameters.
fn url_keys(url: &url::Url) -> std::collections::BTreeSet<String> {
    url.query_pairs().map(|(k, _)| k.into_owned()).collect()
}

/// The uid in a `/d/<uid>/…` or `/d-solo/<uid>/…` path after Grafana's sub-path `base`.
fn dashboard_uid(path: &str, base: &str) -> Option<String> {
    let rest = path.strip_prefix(base)?;
    let rest = rest
        .strip_prefix("/d/")
        .or_else(|| rest.strip_prefix("/d-solo/"))?;
    rest.split('/')
        .next()
        .filter(|u| !u.is_empty())
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_live_under_grafanas_sub_path() {
        assert_eq!(app_base("/d/abc/slug"), Some(""));
        assert_eq!(app_base("/grafana/d-solo/abc/slug"), Some("/grafana"));
        assert_eq!(app_base("/render/d-csv/abc"), None);
        assert_eq!(app_base("/dashboard/new"), None);
        assert_eq!(
            dashboard_uid("/grafana/d/abc/slug", "/grafana"),
            Some("abc".into())
        );
        assert_eq!(dashboard_uid("/d-solo/x", ""), Some("x".into()));
        assert_eq!(
            dashboard_route("/grafana/d-solo/abc/slug", "/grafana"),
            Some("/grafana/d-solo/abc".into())
        );
        assert_eq!(dashboard_route("/d/abc", ""), Some("/d/abc".into()));
        assert_eq!(dashboard_route("/d/", ""), None);
    }
}
