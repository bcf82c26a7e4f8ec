//! A small Grafana stand-in for grender's tests and benchmarks.
//!
//! It serves Grafana's dashboard routes (`/d/<uid>/<slug>`, `/d-solo/<uid>/<slug>`),
//! checks the `renderKey` cookie like Grafana (302 to `/login` without a valid one),
//! and its panels fetch data with a configurable delay and draw on `<canvas>`, giving
//! each of Grafana's readiness signals. Every request is recorded so tests can see
//! which cookies and headers reached it.
//!
//! Page knobs (query parameters of the dashboard URL):
//! - `mode`: `scenes` (default), `binding`, `legacy` or `none` — which readiness signal the page gives;
//! - `delay`: milliseconds each panel's query takes (default 0); `never=1`: queries never finish;
//! - `panels`: panel count on `/d/` (default 3); `panelHeight`: px per panel (default 300);
//! - `lazy=1`: panels query only once scrolled into view; `fail=1`: binding reports failure;
//! - `probe=<origin>`: the page also loads an image from that origin (cookie scoping tests).
//!
//! A drawn panel is filled with [`DRAWN_RGB`]; the page background is [`BACKGROUND_RGB`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// Colour of a panel once its data is drawn.
pub const DRAWN_RGB: [u8; 3] = [20, 160, 60];
/// Colour of the page behind panels (and of a panel not yet drawn).
pub const BACKGROUND_RGB: [u8; 3] = [17, 18, 23];

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub query: String,
    pub host: String,
    /// Value of the `renderKey` cookie, if the browser sent one.
    pub render_key: Option<String>,
    pub accept_language: Option<String>,
}

#[derive(Clone)]
struct Shared {
    render_key: Option<String>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A running stand-in.
pub struct GrafanaStub {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl GrafanaStub {
    /// Starts on 127.0.0.1 with a random port. With `render_key`, dashboards need that cookie.
    pub async fn start(render_key: Option<&str>) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().expect("valid address"), render_key).await
    }

    /// Starts on `addr`.
    pub async fn start_on(addr: SocketAddr, render_key: Option<&str>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = router(Shared {
            render_key: render_key.map(String::from),
            seen: seen.clone(),
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(GrafanaStub { addr, seen, task })
    }

    /// `http://127.0.0.1:<port>` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Requests whose path starts with `prefix`.
    pub fn seen_at(&self, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.starts_with(prefix))
            .collect()
    }
}

impl Drop for GrafanaStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/d/{uid}/{slug}", get(dashboard))
        .route("/d-solo/{uid}/{slug}", get(dashboard))
        .route("/api/ds/query", get(query))
        .route("/api/report", get(|| async { StatusCode::NO_CONTENT }))
        .route("/probe.svg", get(probe))
        .route(
            "/",
            get(|| async {
                Html(
                    "<html><body style=\"background:#fff\"><h1>Grafana stand-in</h1></body></html>",
                )
            }),
        )
        .layer(axum::middleware::from_fn_with_state(shared.clone(), record))
        .with_state(shared)
}

async fn record(
    State(shared): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = req.headers();
    let seen = Seen {
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        host: headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        render_key: cookie(headers, "renderKey"),
        accept_language: headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(String::from),
    };
    if let Ok(mut s) = shared.seen.lock() {
        s.push(seen);
    }
    next.run(req).await
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

async fn login() -> Html<&'static str> {
    Html(
        "<html><head><title>Grafana</title></head><body style=\"background:#fff\"><h1>Welcome to Grafana</h1><form>Log in</form></body></html>",
    )
}

async fn probe() -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml")],
        "<svg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/>",
    )
        .into_response()
}

async fn query(Query(q): Query<HashMap<String, String>>) -> Response {
    let delay = q
        .get("delay")
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(0);
    if q.get("never").is_some_and(|v| v == "1") {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let panel = q
        .get("panel")
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(0);
    let values: Vec<u64> = (0..20).map(|i| (i * 7 + panel * 13) % 17 + 2).collect();
    axum::Json(serde_json::json!({ "values": values })).into_response()
}

async fn dashboard(
    State(shared): State<Shared>,
    Path((uid, _slug)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(key) = &shared.render_key
        && cookie(&headers, "renderKey").as_deref() != Some(key.as_str())
    {
        let to = format!("/login?redirectTo={}", uri.path());
        return (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
    }
    let solo = uri.path().starts_with("/d-solo/");
    let num = |k: &str, d: u64| q.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
    let config = serde_json::json!({
        "uid": uid,
        "solo": solo,
        "mode": q.get("mode").map(String::as_str).unwrap_or("scenes"),
        "delay": num("delay", 0),
        "never": q.get("never").is_some_and(|v| v == "1"),
        "panels": if solo { 1 } else { num("panels", 3) },
        "panelHeight": num("panelHeight", 300),
        "lazy": q.get("lazy").is_some_and(|v| v == "1"),
        "fail": q.get("fail").is_some_and(|v| v == "1"),
        "probe": q.get("probe"),
        "drawn": DRAWN_RGB,
        "background": BACKGROUND_RGB,
    });
    Html(PAGE.replace("__CONFIG__", &config.to_string())).into_response()
}

const PAGE: &str = include_str!("page.html");
