//! Knowing when Grafana has really drawn every panel, from the page's own signals.
//!
//! Three kinds of Grafana page are recognised, checked in this order on every DOM
//! mutation (and at least every `POLL_MS`, because query counters change without one):
//! - **binding**: `window.__grafanaRenderBindingSupported`; Grafana calls the CDP binding
//!   `__grafanaImageRendererMessageChannel` when done. A `success:false` report fails.
//! - **scenes** (Grafana 10+): `window.__grafanaSceneContext` with
//!   `window.__grafanaRunningQueryCount` back at 0 after a query was seen, and then the
//!   page settled: a few animation frames in a row on time and without DOM changes
//!   (Grafana's real frontend draws its panels in long tasks after the counter is 0).
//! - **legacy** (Grafana 7–9): `window.panelsRendered` reaching the panel count, or the
//!   Node renderer's dashboard rule (every `[data-panelid]` has drawn content).
//!
//! A page with none of these after `give-up-on-first-query` is captured as it is.
//! After the other signals, two animation frames pass so the last paint is on screen.

use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::js_protocol::runtime::{EvaluateParams, EventBindingCalled};
use futures::StreamExt;
use serde::Deserialize;

use super::full_page::FullPage;
use crate::error::RenderError;
pub use crate::request::ReadinessOptions;

/// Upper bound between two readiness checks when the DOM is quiet.
const POLL_MS: u64 = 25;
/// Animation frames in a row without a DOM change or a long task that make a Scenes page
/// settled once its queries are done (measured against Grafana's real frontend: the last
/// panel draws 100–300 ms after the query counter returns to 0, in long tasks).
pub(crate) const QUIET_FRAMES: u32 = 3;
/// A frame later than this after the previous one means a long task ran in between.
const LONG_FRAME_MS: u64 = 50;
/// A Scenes page without any active query runner or variable is not waited on for a
/// first query (give-up-on-first-query) after this long: nothing will ever query.
const MIN_QUIET_MS: u64 = 300;

/// The name of the CDP binding Grafana reports completion through.
pub const BINDING_NAME: &str = "__grafanaImageRendererMessageChannel";

/// Installed before navigation: notes every query Grafana starts, even one that
/// finishes between two readiness checks.
pub const TRACK_QUERIES_JS: &str = r#"(() => {
  let v;
  try {
    Object.defineProperty(window, '__grafanaRunningQueryCount', {
      configurable: true, enumerable: true,
      get() { return v; },
      set(x) {
        v = x;
        if (x > 0) window.__grenderSawQuery = true;
        if (typeof window.__grenderWake === 'function') window.__grenderWake();
      },
    });
  } catch (e) {}
})()"#;

/// One slice of waiting in the page. Returns `pending` after `sliceMs` so that no CDP
/// call outlives the CDP client's own 30 s command limit.
const READY_JS: &str = r#"(async (o, watchFrom) => {
  const sliceStart = performance.now();
  const t0 = sliceStart - o.elapsedMs;
  const solo = location.pathname.includes('/d-solo/');
  const w = window;
  const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  // Until the next DOM change, query counter change (the tracker calls `__grenderWake`) or
  // `pollMs`, whichever comes first.
  const tick = () => new Promise(r => {
    let t;
    const wake = () => { mo.disconnect(); clearTimeout(t); if (w.__grenderWake === wake) w.__grenderWake = null; r(); };
    const mo = new MutationObserver(wake);
    mo.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
    w.__grenderWake = wake;
    t = setTimeout(wake, o.pollMs);
  });
  const count = s => document.querySelectorAll(s).length;
  // Scenes' counter is back at 0 before the panels have drawn: Grafana then processes the
  // data and React and uPlot draw in long tasks 100-300 ms later. Settled means
  // `quietFrames` animation frames in a row, each on time (no long task) and with no DOM
  // change, with no query running again.
  // Whether an active scene object would query: a query runner or a variable. Duck-typed
  // (Scenes' class names are minified), depth-bounded.
  const activeQueries = root => {
    let found = false;
    const visit = (x, depth) => {
      if (found || !x || depth > 64) return;
      if (x.isActive && (typeof x.runQueries === 'function' || typeof x.validateAndUpdate === 'function')) {
        found = true;
        return;
      }
      if (typeof x.forEachChild === 'function') {
        try { x.forEachChild(c => visit(c, depth + 1)); } catch (e) { found = true; }
      }
    };
    visit(root, 0);
    return found;
  };
  // With `o.early`, a page that has been quiet for that many frames is a candidate: the
  // rest of the quiet frames are counted by `watchFrom` while the picture is taken.
  const settled = async () => {
    let quiet = 0, changes = 0, changed = false, last = performance.now();
    const mo = new MutationObserver(l => { changes += l.length; });
    mo.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
    try {
      while (quiet < o.quietFrames) {
        await new Promise(r => requestAnimationFrame(r));
        const now = performance.now();
        if (w.__grafanaRunningQueryCount > 0 || now - sliceStart > o.sliceMs) return false;
        if (w.__grenderFreshen && w.__grenderFreshen()) return false;
        quiet = changes === 0 && now - last < o.longFrameMs ? quiet + 1 : 0;
        changed = changed || changes > 0;
        changes = 0;
        last = now;
        if (o.early && quiet < o.quietFrames && (quiet > o.early || (quiet === o.early && changed))) {
          watchFrom(o, quiet, now);
          return 'candidate';
        }
      }
      return true;
    } finally {
      mo.disconnect();
    }
  };
  // After a resize, let newly visible (lazy) panels start their queries first.
  if (o.settle) await frames();
  for (;;) {
    // A reused app (page::reuse) asks panels showing data from before its move to query again.
    if (w.__grenderFreshen) w.__grenderFreshen();
    const now = performance.now();
    if (/\/login\/?$/.test(location.pathname)) return {mode: 'login', url: location.href};
    if (document.body && (document.body.innerText || '').includes('failed to load its application files')) {
      return {mode: 'assets', url: location.href};
    }
    if (now - sliceStart > o.sliceMs) return {mode: 'pending'};
    const waited = now - t0;
    const panels = count('.panel-solo') || count("[class$='panel-container']") || count('[data-panelid]');
    const rendered = w.panelsRendered;
    if (w.__grafanaRenderBindingSupported) {
      return {mode: 'binding'};
    } else if (w.__grafanaSceneContext) {
      const running = w.__grafanaRunningQueryCount;
      if (running > 0) w.__grenderSawQuery = true;
      else if (w.__grenderSawQuery || !o.expectQuery || waited > o.graceMs) {
        const s = await settled();
        if (s === 'candidate') return {mode: 'candidate'};
        if (s) return {mode: 'scenes'};
        continue;
      } else if (running === undefined && waited > o.minQuietMs && !activeQueries(w.__grafanaSceneContext)) {
        // Nothing on the page will ever query (a text panel): no need to wait for one.
        const s = await settled();
        if (s && !activeQueries(w.__grafanaSceneContext)) return {mode: s === 'candidate' ? 'candidate' : 'scenes'};
        if (s === 'candidate') w.__grenderEarly.stop();
        continue;
      }
    } else {
      if (panels > 0 && typeof rendered === 'number' && rendered >= panels) { await frames(); return {mode: 'legacy'}; }
      if (!solo) {
        const total = count('[data-panelid]');
        const drawn = [...document.querySelectorAll("[class$='panel-content']")].filter(e => e.childElementCount > 0).length
          + (count('.dashboard-row') || count("[data-testid='dashboard-row-container']"));
        if (total > 0 && total <= drawn) { await frames(); return {mode: 'legacy'}; }
      }
      if (panels === 0 && typeof rendered !== 'number' && (!o.expectQuery || waited > o.graceMs)) {
        await frames(); return {mode: 'none'};
      }
    }
    await tick();
  }
})"#;

/// What is still missing, for the message of a readiness timeout.
const STATUS_JS: &str = r#"(() => {
  const w = window;
  if (w.__grafanaRenderBindingSupported) return 'Grafana never reported completion through its render binding';
  if (w.__grafanaSceneContext) return `${w.__grafanaRunningQueryCount} queries still running`;
  const panels = document.querySelectorAll('.panel-solo').length || document.querySelectorAll("[class$='panel-container']").length
    || document.querySelectorAll('[data-panelid]').length;
  if (panels > 0) return `${w.panelsRendered || 0} of ${panels} panels rendered`;
  return 'no panels appeared on the page';
})()"#;

/// How the page said it was ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadinessMode {
    Binding,
    Scenes,
    Legacy,
    /// No Grafana signal: a plain page, captured after the grace period.
    None,
}

impl ReadinessMode {
    /// The `mode` label of the metrics and the request's log line.
    pub fn label(self) -> &'static str {
        match self {
            ReadinessMode::Binding => "binding",
            ReadinessMode::Scenes => "scenes",
            ReadinessMode::Legacy => "legacy",
            ReadinessMode::None => "none",
        }
    }
}

/// What one slice of [`READY_JS`] found, tagged by its `mode`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "mode", rename_all = "lowercase")]
enum PageSignal {
    /// Not ready yet; ask again.
    Pending,
    /// Grafana's login page: the render key was refused.
    Login {
        url: Option<String>,
    },
    /// Grafana's "failed to load its application files" page.
    Assets {
        url: Option<String>,
    },
    /// Grafana supports the render binding: wait for its report.
    Binding,
    Scenes,
    /// A Scenes page quiet for `early` frames: its picture may be taken while the page's
    /// watcher counts the remaining quiet frames (see [`super::early_capture`]).
    Candidate,
    Legacy,
    /// No Grafana signal (`none`): a plain page.
    #[serde(other)]
    Plain,
}

/// Longest single in-page wait, well under the CDP client's 30 s command limit.
const SLICE_MS: u64 = 10_000;
/// How often a full-page render re-measures the page while waiting.
const FULL_PAGE_SLICE_MS: u64 = 200;
/// Growths of a full page before we stop following it (endless pages).
const MAX_GROWTHS: u32 = 20;

/// How a page said it was ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub mode: ReadinessMode,
    /// Fewer than [`QUIET_FRAMES`] quiet frames have passed yet: the page's watcher counts
    /// the rest while the picture is taken, and [`super::early_capture`] decides whether
    /// that picture stands.
    pub early: bool,
}

/// Waits until the page reports every panel drawn, or `until` (the render's readiness
/// deadline) passes. With `full`, the viewport follows the page's height while waiting,
/// so panels that load lazily come into view and load too. With `early`, a Scenes page
/// may be reported [`Ready::early`].
pub async fn wait(
    page: &Page,
    bindings: &mut (impl futures::Stream<Item = std::sync::Arc<EventBindingCalled>> + Unpin),
    opts: ReadinessOptions,
    until: tokio::time::Instant,
    mut full: Option<&mut FullPage>,
    early: bool,
) -> Result<Ready, RenderError> {
    let started = tokio::time::Instant::now();
    let slice = Duration::from_millis(if full.is_some() {
        FULL_PAGE_SLICE_MS
    } else {
        SLICE_MS
    });
    let wait = async {
        let mut settle = false;
        let mut reported = false;
        let mut growths = 0;
        loop {
            let args = serde_json::json!({
                "pollMs": POLL_MS,
                "sliceMs": slice.as_millis() as u64,
                "elapsedMs": started.elapsed().as_millis() as u64,
                "graceMs": opts.first_signal_grace.as_millis() as u64,
                "expectQuery": true,
                "quietFrames": QUIET_FRAMES,
                "minQuietMs": MIN_QUIET_MS,
                "longFrameMs": LONG_FRAME_MS,
                "settle": settle,
                "early": if early && full.is_none() { super::early_capture::EARLY_AT } else { 0 },
            });
            settle = false;
            let watch = super::early_capture::WATCH_JS;
            let signal: PageSignal = match evaluate(
                page,
                &format!("({READY_JS})({args}, {watch})"),
                "waiting for panels",
            )
            .await
            {
                Ok(o) => o,
                // A navigation inside the page (a redirect, a reload) destroys the
                // context the script ran in; look again in the new document.
                Err(RenderError::Browser { detail, .. }) if is_context_lost(&detail) => continue,
                Err(e) => return Err(e),
            };
            let ready = match signal {
                PageSignal::Pending => None,
                PageSignal::Login { url } => {
                    // The render's duration is filled in by the caller, who knows it.
                    return Err(RenderError::LoginPage {
                        url: url.unwrap_or_default(),
                        elapsed: Duration::ZERO,
                    });
                }
                PageSignal::Assets { url } => {
                    return Err(RenderError::GrafanaAssets {
                        url: url.unwrap_or_default(),
                    });
                }
                PageSignal::Binding if reported => {
                    evaluate::<serde_json::Value>(page, FRAMES_JS, "waiting for paint").await?;
                    Some(ReadinessMode::Binding)
                }
                PageSignal::Binding => {
                    match tokio::time::timeout(slice, next_report(bindings)).await {
                        Ok(report) => {
                            report?;
                            reported = true;
                            Some(ReadinessMode::Binding)
                        }
                        Err(_) => None,
                    }
                }
                PageSignal::Scenes => Some(ReadinessMode::Scenes),
                PageSignal::Candidate => {
                    return Ok(Ready {
                        mode: ReadinessMode::Scenes,
                        early: true,
                    });
                }
                PageSignal::Legacy => Some(ReadinessMode::Legacy),
                PageSignal::Plain => Some(ReadinessMode::None),
            };
            if let Some(full) = full.as_deref_mut()
                && growths < MAX_GROWTHS
                && full.grow(page).await?
            {
                growths += 1;
                settle = true;
                continue;
            }
            if let Some(mode) = ready {
                return Ok(Ready { mode, early: false });
            }
        }
    };
    match tokio::time::timeout_at(until, wait).await {
        Ok(result) => result,
        Err(_) => {
            let detail = tokio::time::timeout(
                Duration::from_secs(1),
                evaluate::<String>(page, STATUS_JS, "status"),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| "the page gave no status".into());
            Err(RenderError::ReadinessTimeout {
                timeout: opts.timeout,
                detail,
            })
        }
    }
}

const FRAMES_JS: &str =
    "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(0))))";

fn is_context_lost(detail: &str) -> bool {
    detail.contains("context was destroyed")
        || detail.contains("Cannot find context")
        || detail.contains("navigated")
}

/// Waits for Grafana's completion report on the render binding.
async fn next_report(
    bindings: &mut (impl futures::Stream<Item = std::sync::Arc<EventBindingCalled>> + Unpin),
) -> Result<(), RenderError> {
    while let Some(call) = bindings.next().await {
        if call.name != BINDING_NAME {
            continue;
        }
        return check_binding_payload(&call.payload);
    }
    Err(RenderError::cdp(
        "waiting for Grafana's render report",
        "the tab went away",
    ))
}

/// Grafana sends `{"type":"REPORT_RENDER_COMPLETE","data":{"success":bool,...}}`;
/// anything else counts as done, as in the official service.
pub fn check_binding_payload(payload: &str) -> Result<(), RenderError> {
    let Ok(msg) = serde_json::from_str::<serde_json::Value>(payload) else {
        return Ok(());
    };
    if msg["data"]["success"] == serde_json::Value::Bool(false) {
        let why = msg["data"]["error"]
            .as_str()
            .or_else(|| msg["data"]["message"].as_str())
            .unwrap_or("no reason given");
        return Err(RenderError::PageReportedFailure(why.to_string()));
    }
    Ok(())
}

/// Evaluates `expression` (awaiting a promise) and returns its JSON value.
pub async fn evaluate<T: serde::de::DeserializeOwned>(
    page: &Page,
    expression: &str,
    stage: &'static str,
) -> Result<T, RenderError> {
    let params = EvaluateParams::builder()
        .expression(expression)
        .await_promise(true)
        .return_by_value(true)
        .build()
        .map_err(|e| RenderError::cdp(stage, e))?;
    let reply = page
        .execute(params)
        .await
        .map_err(|e| RenderError::cdp(stage, e))?;
    if let Some(ex) = &reply.result.exception_details {
        let text = ex
            .exception
            .as_ref()
            .and_then(|e| e.description.clone())
            .unwrap_or_else(|| ex.text.clone());
        return Err(RenderError::cdp(stage, format!("script failed: {text}")));
    }
    let value = reply
        .result
        .result
        .value
        .clone()
        .unwrap_or(serde_json::Value::Null);
    serde_json::from_value(value)
        .map_err(|e| RenderError::cdp(stage, format!("unexpected script result: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_signals_are_read_by_their_tag() {
        let read = |json: &str| serde_json::from_str::<PageSignal>(json).unwrap();
        assert_eq!(read(r#"{"mode":"pending"}"#), PageSignal::Pending);
        assert_eq!(
            read(r#"{"mode":"login","url":"http://g/login"}"#),
            PageSignal::Login {
                url: Some("http://g/login".into())
            }
        );
        assert_eq!(read(r#"{"mode":"scenes"}"#), PageSignal::Scenes);
        assert_eq!(read(r#"{"mode":"none"}"#), PageSignal::Plain);
    }

    #[test]
    fn binding_failure_is_an_error() {
        let p = r#"{"type":"REPORT_RENDER_COMPLETE","data":{"success":false,"error":"datasource down"}}"#;
        let err = check_binding_payload(p).unwrap_err();
        assert!(err.to_string().contains("datasource down"));
        assert!(
            check_binding_payload(r#"{"type":"REPORT_RENDER_COMPLETE","data":{"success":true}}"#)
                .is_ok()
        );
        assert!(check_binding_payload("anything").is_ok());
    }
}
