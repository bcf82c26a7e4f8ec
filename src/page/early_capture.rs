//! Taking the picture while the last quiet frames pass, instead of after them.
//!
//! A Scenes page is ready once its queries are done and then [`QUIET_FRAMES`] animation
//! frames in a row pass on time without a change (readiness). Waiting for those frames and
//! only then capturing costs both in a row (~50 ms + ~50 ms at 1000×500). Here the capture
//! starts as soon as the page is a *candidate* (quiet since a change, see `EARLY_AT`), while
//! a watcher in the page goes on counting frames and notes any change until the picture is
//! taken: a DOM mutation, a draw on a canvas (2D or WebGL), a resource that finished
//! loading, a query starting again, or a late frame (a long task) before the last quiet one.
//! The picture is kept only when the page was quiet for all [`QUIET_FRAMES`] frames, and
//! changed nothing until the capture ended and the frame after the last quiet one was drawn
//! — the frame a capture after readiness would have shown. Otherwise it is thrown away and the render waits and captures as before.
//!
//! [`QUIET_FRAMES`]: super::readiness::QUIET_FRAMES

use std::future::Future;

use chromiumoxide::Page;

use super::readiness::evaluate;
use crate::error::RenderError;

/// Quiet frames after which a page that has already changed since its queries ended is a
/// candidate. (The first frame after the queries end is often quiet only because Grafana
/// has not processed the data yet; a page that never changes becomes a candidate one frame
/// later, see `READY_JS`.)
pub(crate) const EARLY_AT: u32 = 1;

/// Installed by `READY_JS` in the same task as the frame that made the page a candidate,
/// so that no change can slip in between: `(options, quiet frames so far, that frame's
/// time)`. Leaves `window.__grenderEarly` with `done` (a promise: `quiet` or `changed`),
/// `stop()` (undoes everything, also after 10 s on its own) and `kept()`.
pub(crate) const WATCH_JS: &str = r#"((o, quiet, last) => {
  const w = window;
  if (w.__grenderEarly) w.__grenderEarly.stop();
  const s = {};
  let dirty = false, stopped = false, done;
  s.done = new Promise(r => { done = r; });
  const change = () => { dirty = true; done('changed'); };
  const mo = new MutationObserver(change);
  mo.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  document.addEventListener('load', change, true);
  const hooks = [];
  const hook = (proto, names) => {
    if (!proto) return;
    for (const n of names) {
      const f = proto[n];
      if (typeof f !== 'function') continue;
      proto[n] = function (...a) { change(); return f.apply(this, a); };
      hooks.push([proto, n, f]);
    }
  };
  hook(w.CanvasRenderingContext2D && w.CanvasRenderingContext2D.prototype, ['fill', 'stroke', 'fillRect',
    'strokeRect', 'clearRect', 'fillText', 'strokeText', 'drawImage', 'putImageData']);
  for (const gl of [w.WebGLRenderingContext, w.WebGL2RenderingContext]) {
    hook(gl && gl.prototype, ['drawArrays', 'drawElements', 'clear']);
  }
  // The quiet frames must come on time; one frame more must pass too, because a capture
  // after readiness would have shown the frame after the last quiet one.
  const frame = () => {
    if (stopped) return;
    const now = performance.now();
    if (w.__grafanaRunningQueryCount > 0 || (w.__grenderFreshen && w.__grenderFreshen())) change();
    else if (quiet < o.quietFrames && now - last >= o.longFrameMs) change();
    else if (++quiet > o.quietFrames) done('quiet');
    last = now;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  const cap = setTimeout(() => s.stop(), 10000);
  s.stop = () => {
    if (stopped) return;
    stopped = true;
    clearTimeout(cap);
    mo.disconnect();
    document.removeEventListener('load', change, true);
    for (const [p, n, f] of hooks.reverse()) p[n] = f;
    done('stopped');
    if (w.__grenderEarly === s) delete w.__grenderEarly;
  };
  s.kept = () => !dirty && quiet > o.quietFrames;
  w.__grenderEarly = s;
})"#;

/// Waits in the page until the watcher has counted the last quiet frames or seen a change.
const QUIET_JS: &str = r#"(async () => {
  const s = window.__grenderEarly;
  return s ? await s.done : 'gone';
})()"#;

/// Stops the watcher; whether the page stayed as captured.
const KEPT_JS: &str = r#"(() => {
  const s = window.__grenderEarly;
  if (!s) return false;
  s.stop();
  return s.kept();
})()"#;

/// Runs `capture` on a candidate page while its watcher counts the last quiet frames.
/// Returns the picture when the page stayed quiet and unchanged until the capture ended,
/// `None` when it did not (then wait for readiness and capture again), or the capture's
/// error. `until` is the readiness deadline.
pub async fn capture<T>(
    page: &Page,
    until: tokio::time::Instant,
    capture: impl Future<Output = Result<T, RenderError>>,
) -> Result<Option<T>, RenderError> {
    let quiet = async {
        let waited = tokio::time::timeout_at(
            until,
            evaluate::<String>(page, QUIET_JS, "waiting for the last quiet frames"),
        );
        matches!(waited.await, Ok(Ok(v)) if v == "quiet")
    };
    let (shot, quiet) = futures::join!(capture, quiet);
    // A page that navigated meanwhile has no watcher: not kept, and the readiness wait
    // that follows finds out what happened.
    let kept = evaluate::<bool>(page, KEPT_JS, "checking the early picture")
        .await
        .unwrap_or(false);
    let shot = shot?;
    tracing::debug!(kept = quiet && kept, "early capture");
    Ok((quiet && kept).then_some(shot))
}
