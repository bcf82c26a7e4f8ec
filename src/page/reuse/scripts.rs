//! The scripts a reuse runs in the page, and what they answer.

use chromiumoxide::Page;

use super::Fallback;
use crate::page::readiness::evaluate;

/// Checks, in the page, that the parked document is still there, that Grafana accepts the
/// new render key and runs the same build.
pub(super) const VERIFY_JS: &str = r#"(async (o) => {
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

/// Resets the readiness markers and moves the app to `target` inside the page, as Grafana's
/// `locationService.reload()` does: a new history entry whose state carries the next
/// `routeReloadCounter`, so that the route is loaded again even when it is the same one (in
/// the `{key, state}` shape of the `history` 4 package Grafana routes with, and in the
/// `{usr, idx}` shape of later versions). Notes when the move happened: data asked for
/// before it is stale.
pub(super) const NAVIGATE_JS: &str = r#"((o) => {
  const w = window;
  if (w.__grenderApp !== o.marker) return {verdict: 'navigated'};
  w.__grenderSawQuery = false;
  const setsBefore = w.__grenderSceneSets || 0;
  w.scrollTo(0, 0);
  const prev = w.history.state || {};
  const inner = prev.state && typeof prev.state === 'object' ? prev.state : {};
  const counter = (Number(inner.routeReloadCounter) || 0) + 1;
  const next = {
    key: Math.random().toString(36).slice(2, 8),
    state: {routeReloadCounter: counter},
    usr: {routeReloadCounter: counter},
    idx: (Number(prev.idx) || 0) + 1,
  };
  w.__grenderFreshSince = Date.now();
  w.__grenderAsked = new WeakSet();
  w.history.pushState(next, '', o.target + o.hash);
  w.dispatchEvent(new PopStateEvent('popstate', {state: next}));
  return {verdict: 'ok', setsBefore, path: o.target};
})"#;

/// Waits until the app shows the new route: on the dashboard's route, a scene activated after
/// the navigation, and (where the scene names it) the dashboard's uid. A scene the app kept
/// from an earlier render is refreshed, or refused when it could still show that render's
/// state (`revisited-variables`, `revisited-state`).
pub(super) const PROOF_JS: &str = r#"(async (o) => {
  const w = window;
  const t0 = performance.now();
  for (;;) {
    if (w.__grenderApp !== o.marker) return {verdict: 'navigated'};
    const ctx = w.__grafanaSceneContext;
    const st = (ctx && ctx.state) || {};
    const uid = st.uid || (typeof st.key === 'string' && st.key.startsWith('dashboard-') ? st.key.slice(10) : null);
    // On the dashboard's route (Grafana may rewrite the rest of the URL: the slug, the scene's
    // state), else exactly where the app was sent.
    const p = location.pathname;
    const onRoute = o.route ? p === o.route || p.startsWith(o.route + '/') : p + location.search === o.path;
    if (onRoute && (w.__grenderSceneSets || 0) > o.setsBefore
        && ctx && ctx.isActive && (!o.uid || !uid || uid === o.uid)) {
      if (w.__grenderSceneFirstSet(ctx) > o.setsBefore) return {verdict: 'ok'};
      // A kept scene keeps what an earlier render's URL set and this one's does not name
      // (Grafana's URL sync leaves state alone for a parameter the URL lacks).
      if (!o.pinned) return {verdict: 'revisited-state'};
      // A scene the app kept and shows again: its data and variable options are from its
      // last visit. Grafana's refresh (the time range's onRefresh) evaluates the range anew
      // and queries again; variables whose options come from a query made only when a
      // dashboard loads (refresh 1, not 2 "on time range change") would keep their old
      // options, so such a scene renders cold. A custom variable's options are its own.
      const vars = (ctx.state.$variables && ctx.state.$variables.state.variables) || [];
      const loadOnly = v => v.state && 'query' in v.state && v.state.type !== 'custom' && v.state.refresh !== 2;
      if (vars.some(loadOnly)) return {verdict: 'revisited-variables'};
      const range = ctx.state.$timeRange;
      if (!range || typeof range.onRefresh !== 'function') return {verdict: 'stale-data'};
      range.onRefresh();
      // The runners active now query again because their range changed: not asked twice.
      for (const r of w.__grenderStaleRunners(w.__grenderFreshSince)) w.__grenderAsked.add(r);
      return {verdict: 'ok'};
    }
    if (performance.now() - t0 > o.limitMs) return {verdict: 'route-unchanged'};
    await new Promise(r => requestAnimationFrame(r));
  }
})"#;

#[derive(serde::Deserialize)]
pub(super) struct Verdict {
    verdict: String,
    #[serde(default, rename = "setsBefore")]
    pub(super) sets_before: u64,
    #[serde(default)]
    pub(super) path: String,
}

impl Verdict {
    pub(super) fn ok(self) -> Result<Verdict, Fallback> {
        match self.verdict.as_str() {
            "ok" => Ok(self),
            "navigated" => Err(Fallback("navigated")),
            "key-refused" => Err(Fallback("key-refused")),
            "build-changed" => Err(Fallback("build-changed")),
            "route-unchanged" => Err(Fallback("route-unchanged")),
            "revisited-variables" => Err(Fallback("revisited-variables")),
            "revisited-state" => Err(Fallback("revisited-state")),
            "stale-data" => Err(Fallback("stale-data")),
            _ => Err(Fallback("page")),
        }
    }
}

pub(super) async fn run<T: serde::de::DeserializeOwned>(
    page: &Page,
    js: &str,
    args: serde_json::Value,
) -> Result<T, Fallback> {
    evaluate(page, &format!("({js})({args})"), "reusing the app")
        .await
        .map_err(|_| Fallback("page"))
}
