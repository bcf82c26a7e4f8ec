//! Pages that try to reach later renders' secrets, for grender's isolation tests.
//!
//! - `/hostile`: a page that, while it renders, opens pop-ups (`window.open` with and
//!   without `noopener`, a `target=_blank` link clicked by script), registers a service
//!   worker and starts a shared worker. Each of them keeps calling `/leak?from=<who>` with
//!   credentials, so the stand-in's request log shows which render key (if any) every
//!   leftover could use. The page itself calls `/leak?from=page` once: the control that
//!   proves the log would show a leak. It reports Scenes readiness after 800 ms.
//! - `/cached`: a page that fetches `/api/datasources/proxy/uid/viewer/who`, a per-viewer
//!   answer (the render key it was sent with) marked `Cache-Control: public,
//!   max-age=3600`, as Grafana's data source proxy may answer, and reports what it got
//!   via `/leak?from=cached&saw=<answer>`.
//! - `/socket?to=<ws url>`: opens a WebSocket to that URL, and so does a dedicated worker
//!   it starts (`/socket-worker.js`), then reports readiness.
//! - `/hang`: a document that never arrives (the navigation never finishes).
//! - `/navigate-away?to=<url>`: starts like a Scenes page, then navigates itself to that URL.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// The hostile routes, merged into the stand-in's router (which records every request).
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/hostile", get(|| async { Html(HOSTILE) }))
        .route("/leak-popup", get(|| async { Html(POPUP) }))
        .route("/leak-sw.js", get(|| async { script(SERVICE_WORKER) }))
        .route("/leak-shared.js", get(|| async { script(SHARED_WORKER) }))
        .route("/leak", get(|| async { "" }))
        .route("/cached", get(|| async { Html(CACHED) }))
        .route("/api/datasources/proxy/uid/viewer/who", get(who))
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                ""
            }),
        )
        .route("/socket", get(|| async { Html(SOCKET) }))
        .route("/socket-worker.js", get(|| async { script(SOCKET_WORKER) }))
        .route("/navigate-away", get(|| async { Html(NAVIGATE_AWAY) }))
}

fn script(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "application/javascript")], body).into_response()
}

/// The viewer's own answer: the render key it was asked with, cacheable for an hour.
async fn who(headers: axum::http::HeaderMap) -> Response {
    let key = crate::cookie(&headers, "renderKey").unwrap_or_default();
    (
        [
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::CONTENT_TYPE, "text/plain"),
        ],
        key,
    )
        .into_response()
}

pub(crate) const HOSTILE: &str = r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title>Grafana</title></head>
<body style="background:#111217;color:#ccc"><h1>hostile</h1><script>
const leak = from => fetch('/leak?from=' + from, {credentials: 'include'}).catch(() => {});
window.__grafanaSceneContext = {};
window.__grafanaRunningQueryCount = 1;
try { window.open('/leak-popup?kind=open', '_blank'); } catch (e) {}
try { window.open('/leak-popup?kind=noopener', '_blank', 'noopener'); } catch (e) {}
try {
  const a = document.createElement('a');
  a.href = '/leak-popup?kind=link'; a.target = '_blank'; a.textContent = 'x';
  document.body.appendChild(a); a.click();
} catch (e) {}
try { navigator.serviceWorker && navigator.serviceWorker.register('/leak-sw.js').catch(() => {}); } catch (e) {}
try { const w = new SharedWorker('/leak-shared.js'); w.port.start(); } catch (e) {}
leak('page');
setTimeout(() => { window.__grafanaRunningQueryCount = 0; }, 800);
</script></body></html>"#;

const POPUP: &str = r#"<!DOCTYPE html><html><body><script>
const kind = new URLSearchParams(location.search).get('kind');
setInterval(() => fetch('/leak?from=popup-' + kind, {credentials: 'include'}).catch(() => {}), 100);
</script></body></html>"#;

const SERVICE_WORKER: &str = r#"
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', e => e.waitUntil(self.clients.claim()));
setInterval(() => fetch('/leak?from=service-worker', {credentials: 'include'}).catch(() => {}), 100);
"#;

const SHARED_WORKER: &str = r#"
self.onconnect = e => e.ports[0].start();
setInterval(() => fetch('/leak?from=shared-worker', {credentials: 'include'}).catch(() => {}), 100);
"#;

const CACHED: &str = r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title>Grafana</title></head>
<body style="background:#111217;color:#ccc"><script>
window.__grafanaSceneContext = {};
window.__grafanaRunningQueryCount = 1;
fetch('/api/datasources/proxy/uid/viewer/who', {credentials: 'include'})
  .then(r => r.text())
  .then(saw => fetch('/leak?from=cached&saw=' + encodeURIComponent(saw)))
  .finally(() => { window.__grafanaRunningQueryCount = 0; });
</script></body></html>"#;

const SOCKET: &str = r#"<!DOCTYPE html><html><body style="background:#111217"><script>
window.__grafanaSceneContext = {};
window.__grafanaRunningQueryCount = 1;
const to = new URLSearchParams(location.search).get('to');
try { new WebSocket(to); } catch (e) {}
const done = () => setTimeout(() => { window.__grafanaRunningQueryCount = 0; }, 500);
try {
  const w = new Worker('/socket-worker.js?to=' + encodeURIComponent(to));
  w.onmessage = done;
  w.onerror = done;
} catch (e) { done(); }
</script></body></html>"#;

const NAVIGATE_AWAY: &str = r#"<!DOCTYPE html><html><body style="background:#111217"><script>
window.__grafanaSceneContext = {};
window.__grafanaRunningQueryCount = 1;
setTimeout(() => { location.href = new URLSearchParams(location.search).get('to'); }, 100);
setTimeout(() => { window.__grafanaRunningQueryCount = 0; }, 600);
</script></body></html>"#;

const SOCKET_WORKER: &str = r#"
try { new WebSocket(new URLSearchParams(self.location.search).get('to')); } catch (e) {}
self.postMessage('tried');
"#;
