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

/// Resets the readiness markers and moves the app to `target` inside the page. The same
/// route again gets a `__grenderRender` parameter so that the app builds its scene anew.
pub(super) const NAVIGATE_JS: &str = r#"((o) => {
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
pub(super) const PROOF_JS: &str = r#"(async (o) => {
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
