//! Warm app reuse (`render.reuse-app`, docs/adr/0013): the next picture of the *same
//! verified viewer* is drawn by the Grafana app a previous render already loaded, moved to
//! the new dashboard by an in-app navigation (`history.pushState` + `popstate`, which
//! Grafana's router follows) instead of booting Grafana again.
//!
//! **Who gets a loaded app** ([`plan`]): only a render whose [`AppKey`] is equal — callback
//! origin and sub-path, cookie domain, the viewer (a JWT render key verified with the token
//! that authenticated the request, or no key at all), the URL's `theme` and `orgId`, the
//! language — and whose page kind can be proven after an in-app navigation: PNG/JPEG/WebP
//! of `/d/` and `/d-solo/` pages. Opaque render keys, PDF, CSV, other pages and requests
//! carrying credentials render cold.
//!
//! **Before trusting the app again** ([`render`]), in the render's own time box (half of
//! what is left of its deadline): the document is the one parked (a marker only it holds),
//! Grafana accepts the new render key (`GET api/user` answers 200) and reports the build the
//! app was loaded from (`GET api/health`), the route changed (location, a newly activated
//! scene, the dashboard uid), Grafana's render report came after that, and nothing went
//! wrong on the way: no full navigation, no 401/403 answer, no uncaught exception or
//! `console.error`. Anything else is a [`Fallback`]: the tab is disposed and the request
//! renders cold within the same deadline.
//!
//! **Recycling**: an app is parked again only while it has served fewer than
//! [`MAX_RENDERS`] renders, is younger than [`MAX_AGE`] and its JavaScript heap has not
//! grown past [`MAX_HEAP_GROWTH`] over its first render's; the pool gives back apps whose
//! viewer went idle.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::network::EventResponseReceived;
use chromiumoxide::cdp::browser_protocol::page::EventFrameNavigated;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventBindingCalled, EventConsoleApiCalled, GetHeapUsageParams,
};
use futures::{FutureExt, StreamExt};

use super::readiness::{self, ReadinessMode, evaluate};
use crate::browser::pool::ParkedApp;
use crate::output::Output;
use crate::request::RenderRequest;

/// Renders one app serves before it is booted afresh.
pub(crate) const MAX_RENDERS: u32 = 100;
/// Age after which an app is booted afresh.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// Growth of the app's JavaScript heap over its first render's that retires it.
pub(crate) const MAX_HEAP_GROWTH: f64 = 64.0 * 1024.0 * 1024.0;
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
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let key = serde_json::json!([
        url.origin().ascii_serialization(),
        base,
        req.cookie.as_ref().map(|c| c.domain.as_str()),
        viewer,
        param("theme"),
        param("orgId"),
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
}

/// Marks a freshly loaded app (after a successful cold render) and returns what to park
/// it with, or `None` when it is not worth keeping (no build reported, no heap figure).
pub(crate) async fn first_park(page: &Page, key: &AppKey) -> Option<ParkedApp> {
    let marker = format!("{:032x}", rand_u128());
    // A page without Grafana's boot data names no build to check later: not kept.
    let build: String = evaluate::<Option<String>>(
        page,
        &format!(
            "(() => {{ const b = (window.grafanaBootData || {{}}).settings?.buildInfo; if (!b || !b.version) return null; window.__grenderApp = {marker:?}; return `${{b.version}}+${{b.commit}}`; }})()"
        ),
        "marking the app",
    )
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

/// What went wrong on the page while a reused app rendered.
#[derive(Default)]
struct Anomalies(Mutex<Option<&'static str>>);

impl Anomalies {
    fn note(&self, what: &'static str) {
        if let Ok(mut first) = self.0.lock() {
            first.get_or_insert(what);
        }
    }

    fn first(&self) -> Option<&'static str> {
        self.0.lock().ok().and_then(|f| *f)
    }
}

/// Watches the page for what makes a reused app untrustworthy, until dropped.
struct AnomalyWatch {
    seen: Arc<Anomalies>,
    task: tokio::task::JoinHandle<()>,
}

impl AnomalyWatch {
    async fn start(page: &Page, origin: String) -> Result<AnomalyWatch, Fallback> {
        let lost = |_| Fallback("cdp");
        let mut navigated = page
            .event_listener::<EventFrameNavigated>()
            .await
            .map_err(lost)?;
        let mut responses = page
            .event_listener::<EventResponseReceived>()
            .await
            .map_err(lost)?;
        let mut console = page
            .event_listener::<EventConsoleApiCalled>()
            .await
            .map_err(lost)?;
        let mut thrown = page
            .event_listener::<chromiumoxide::cdp::js_protocol::runtime::EventExceptionThrown>()
            .await
            .map_err(lost)?;
        let seen = Arc::new(Anomalies::default());
        let out = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(ev) = navigated.next() => if ev.frame.parent_id.is_none() {
                        out.note("navigated");
                    },
                    Some(ev) = responses.next() => {
                        let status = ev.response.status;
                        if (status == 401 || status == 403) && ev.response.url.starts_with(&origin) {
                            out.note("key-refused");
                        }
                    }
                    Some(ev) = console.next() => if ev.r#type == ConsoleApiCalledType::Error {
                        out.note("console-error");
                    },
                    Some(_) = thrown.next() => out.note("script-error"),
                    else => return,
                }
            }
        });
        Ok(AnomalyWatch { seen, task })
    }

    fn check(&self) -> Result<(), Fallback> {
        match self.seen.first() {
            Some(what) => Err(Fallback(what)),
            None => Ok(()),
        }
    }
}

impl Drop for AnomalyWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Checks, in the page, that the parked document is still there, that Grafana accepts the
/// new render key and runs the same build.
const VERIFY_JS: &str = r#"(async (o) => {
  if (window.__grenderApp !== o.marker) return {verdict: 'navigated'};
  const get = (p) => fetch(o.base + p, {credentials: 'same-origin', cache: 'no-store', redirect: 'manual'});
  const [user, health] = await Promise.all([
    get('/api/user').then(r => r.status).catch(() => 0),
    get('/api/health').then(r => r.ok ? r.json() : null).catch(() => null),
  ]);
  if (user !== 200) return {verdict: 'key-refused'};
  if (!health || `${health.version}+${health.commit}` !== o.build) return {verdict: 'build-changed'};
  return {verdict: 'ok'};
})"#;

/// Resets the readiness markers and moves the app to `target` inside the page. The same
/// route again gets a `__grenderRender` parameter so that the app builds its scene anew.
const NAVIGATE_JS: &str = r#"((o) => {
  const w = window;
  if (w.__grenderApp !== o.marker) return {verdict: 'navigated'};
  w.__grenderSawQuery = false;
  const setsBefore = w.__grenderSceneSets || 0;
  w.scrollTo(0, 0);
  let to = o.target;
  if (location.pathname + location.search === to) {
    to += (to.includes('?') ? '&' : '?') + '__grenderRender=' + o.seq;
  }
  w.history.pushState(w.history.state, '', to + o.hash);
  w.dispatchEvent(new PopStateEvent('popstate', {state: w.history.state}));
  return {verdict: 'ok', setsBefore, path: to};
})"#;

/// Waits until the app shows the new route: the location, a scene activated after the
/// navigation, and (where the scene names it) the dashboard's uid.
const PROOF_JS: &str = r#"(async (o) => {
  const w = window;
  const t0 = performance.now();
  for (;;) {
    if (w.__grenderApp !== o.marker) return {verdict: 'navigated'};
    const ctx = w.__grafanaSceneContext;
    const st = (ctx && ctx.state) || {};
    const uid = st.uid || (typeof st.key === 'string' && st.key.startsWith('dashboard-') ? st.key.slice(10) : null);
    if (location.pathname + location.search === o.path && (w.__grenderSceneSets || 0) > o.setsBefore
        && ctx && ctx.isActive && (!o.uid || !uid || uid === o.uid)) {
      return {verdict: 'ok'};
    }
    if (performance.now() - t0 > o.limitMs) return {verdict: 'route-unchanged'};
    await new Promise(r => requestAnimationFrame(r));
  }
})"#;

#[derive(serde::Deserialize)]
struct Verdict {
    verdict: String,
    #[serde(default, rename = "setsBefore")]
    sets_before: u64,
    #[serde(default)]
    path: String,
}

impl Verdict {
    fn ok(self) -> Result<Verdict, Fallback> {
        match self.verdict.as_str() {
            "ok" => Ok(self),
            "navigated" => Err(Fallback("navigated")),
            "key-refused" => Err(Fallback("key-refused")),
            "build-changed" => Err(Fallback("build-changed")),
            "route-unchanged" => Err(Fallback("route-unchanged")),
            _ => Err(Fallback("page")),
        }
    }
}

async fn run<T: serde::de::DeserializeOwned>(
    page: &Page,
    js: &str,
    args: serde_json::Value,
) -> Result<T, Fallback> {
    evaluate(page, &format!("({js})({args})"), "reusing the app")
        .await
        .map_err(|_| Fallback("page"))
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
    let state = *state;
    let url = url::Url::parse(&req.url).map_err(|_| Fallback("page"))?;
    let base = app_base(url.path()).ok_or(Fallback("page"))?.to_string();
    let anomalies = AnomalyWatch::start(page, url.origin().ascii_serialization()).await?;
    let verify = serde_json::json!({"marker": state.marker, "base": base, "build": state.build});
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let hash = url.fragment().map(|f| format!("#{f}")).unwrap_or_default();
    let nav = serde_json::json!({
        "marker": state.marker, "target": target, "hash": hash, "seq": state.renders,
    });
    let uid = dashboard_uid(url.path(), &base);
    let move_and_prove = async {
        let moved = run::<Verdict>(page, NAVIGATE_JS, nav).await?.ok()?;
        let proof = serde_json::json!({
            "marker": state.marker,
            "path": moved.path,
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
        if !matches!(mode, ReadinessMode::Scenes | ReadinessMode::Binding) {
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
        Ok(park_again(page, self.key, self.state).await)
    }
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
    }
}
