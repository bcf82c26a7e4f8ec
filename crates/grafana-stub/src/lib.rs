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
//! - `assets=1`: Grafana's "failed to load its application files" page; `throw=1`: the page's
//!   boot script throws;
//! - `rows`: group the panels into this many rows (30 px headers), every second one collapsed;
//! - `lazy=1`: panels query only once scrolled into view; `fail=1`: binding reports failure;
//! - `probe=<origin>`: the page also loads an image from that origin (cookie scoping tests);
//! - `frame=<url>`: the page also shows that URL in an iframe covering the whole viewport
//!   (scheme-blocking tests);
//! - `bundle`: KiB of application JavaScript the page loads, parses and runs before it boots,
//!   like Grafana's bundle (default: the stand-in's [`StubOptions::bundle_kib`], 8 MiB unless
//!   set; `bundle=0` for none). It is served with immutable cache headers.
//! - `late=canvas|dom` (Scenes mode): an overlay over the whole page in [`LATE_BEFORE_RGB`]
//!   turns [`LATE_AFTER_RGB`] `lateFrame` animation frames (default 4) after the last query
//!   ended, by a canvas draw (no DOM change) or a style change: a picture taken while the
//!   last quiet frames pass must not miss it.
//!
//! A drawn panel is filled with [`DRAWN_RGB`]; the page background is [`BACKGROUND_RGB`].
//!
//! In frontend mode ([`GrafanaStub::start_frontend`], see [`frontend`]) the same dashboard
//! routes answer grender's Grafana-frontend test app instead, built from Grafana's own npm
//! packages (`testapp/`), with its data from `POST /api/ds/query`.

pub mod frontend;
pub use frontend::frontend_dist;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

mod hostile;

/// Colour of a panel once its data is drawn.
pub const DRAWN_RGB: [u8; 3] = [20, 160, 60];
/// Colour of the page behind panels (and of a panel not yet drawn).
pub const BACKGROUND_RGB: [u8; 3] = [17, 18, 23];
/// The `late` overlay's colour before its change.
pub const LATE_BEFORE_RGB: [u8; 3] = [200, 30, 30];
/// The `late` overlay's colour after its change.
pub const LATE_AFTER_RGB: [u8; 3] = [30, 30, 200];

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub query: String,
    pub host: String,
    /// Value of the `renderKey` cookie, if the browser sent one.
    pub render_key: Option<String>,
    /// The whole Cookie header.
    pub cookies: String,
    pub accept_language: Option<String>,
    /// The Authorization header, if any.
    pub authorization: Option<String>,
}

#[derive(Clone)]
struct Shared {
    render_keys: Arc<Mutex<Vec<String>>>,
    bundle_kib: u64,
    seen: Arc<Mutex<Vec<Seen>>>,
    bundles: Arc<Mutex<HashMap<u64, axum::body::Bytes>>>,
    /// Frontend mode: the test app served on the dashboard routes.
    frontend: Option<Arc<frontend::Frontend>>,
    /// Grafana's version as `/api/health` and the app's boot data report it.
    version: Arc<Mutex<String>>,
}

/// How the stand-in behaves.
#[derive(Debug, Clone)]
pub struct StubOptions {
    /// With a key, dashboards need the `renderKey` cookie to equal it.
    pub render_key: Option<String>,
    /// Default size of the application bundle in KiB (a page's `bundle` knob overrides it).
    pub bundle_kib: u64,
}

impl Default for StubOptions {
    fn default() -> Self {
        StubOptions {
            render_key: None,
            bundle_kib: 8 * 1024,
        }
    }
}

/// A running stand-in.
pub struct GrafanaStub {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    render_keys: Arc<Mutex<Vec<String>>>,
    version: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl GrafanaStub {
    /// Starts on 127.0.0.1 with a random port, without a bundle. With `render_key`,
    /// dashboards need that cookie.
    pub async fn start(render_key: Option<&str>) -> std::io::Result<Self> {
        let options = StubOptions {
            render_key: render_key.map(String::from),
            bundle_kib: 0,
        };
        Self::start_on("127.0.0.1:0".parse().expect("valid address"), options).await
    }

    /// Starts on `addr`.
    pub async fn start_on(addr: SocketAddr, options: StubOptions) -> std::io::Result<Self> {
        Self::start_with(addr, options, None).await
    }

    /// Frontend mode on 127.0.0.1 with a random port: the dashboard routes serve the test
    /// app built in `dist` (see [`frontend_dist`]), without a bundle. With `render_key`,
    /// dashboards need that cookie.
    pub async fn start_frontend(dist: &FsPath, render_key: Option<&str>) -> std::io::Result<Self> {
        let options = StubOptions {
            render_key: render_key.map(String::from),
            bundle_kib: 0,
        };
        Self::start_on_frontend("127.0.0.1:0".parse().expect("valid address"), options, dist).await
    }

    /// Frontend mode on `addr` (see [`frontend`]).
    pub async fn start_on_frontend(
        addr: SocketAddr,
        options: StubOptions,
        dist: &FsPath,
    ) -> std::io::Result<Self> {
        let app = frontend::Frontend::load(dist)?;
        Self::start_with(addr, options, Some(Arc::new(app))).await
    }

    async fn start_with(
        addr: SocketAddr,
        options: StubOptions,
        frontend: Option<Arc<frontend::Frontend>>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let render_keys = Arc::new(Mutex::new(options.render_key.into_iter().collect()));
        let version = Arc::new(Mutex::new(
            if frontend.is_some() {
                "13.1.1"
            } else {
                "11.6.0"
            }
            .to_string(),
        ));
        let app = router(Shared {
            version: version.clone(),
            render_keys: render_keys.clone(),
            bundle_kib: options.bundle_kib,
            seen: seen.clone(),
            bundles: Arc::default(),
            frontend,
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(GrafanaStub {
            addr,
            seen,
            render_keys,
            version,
            task,
        })
    }

    /// `http://127.0.0.1:<port>` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Accepts one more render key (as Grafana does for every render it starts).
    pub fn allow_key(&self, key: &str) {
        if let Ok(mut keys) = self.render_keys.lock() {
            keys.push(key.to_string());
        }
    }

    /// Stops accepting `key` (Grafana revoked it or it expired).
    pub fn revoke_key(&self, key: &str) {
        if let Ok(mut keys) = self.render_keys.lock() {
            keys.retain(|k| k != key);
        }
    }

    /// Reports another Grafana version from now on (an upgrade behind the same address).
    pub fn set_version(&self, version: &str) {
        if let Ok(mut v) = self.version.lock() {
            *v = version.to_string();
        }
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
        .route("/d-csv/{uid}", get(csv_page))
        .route("/d-csv/{uid}/{slug}", get(csv_page))
        .route("/api/ds/query", get(query).post(ds_query))
        .route("/api/user", get(api_user))
        .route("/api/dashboards/uid/{uid}", get(api_dashboard))
        .route("/api/report", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/health", get(health))
        .route("/probe.svg", get(probe))
        .route(
            "/redirect",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let to = q.get("to").cloned().unwrap_or_else(|| "/".into());
                (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
            }),
        )
        .route("/public/build/{*file}", get(bundle))
        .merge(hostile::routes())
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
        cookies: headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join("; "),
        accept_language: headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        authorization: headers
            .get(header::AUTHORIZATION)
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

/// Grafana's `/api/health`.
async fn health(State(shared): State<Shared>) -> Response {
    let version = shared.version.lock().map(|v| v.clone()).unwrap_or_default();
    axum::Json(serde_json::json!({"commit": "stand-in", "database": "ok", "version": version}))
        .into_response()
}

/// Grafana's `/api/user`: the signed-in user, or 401 without a valid render key.
async fn api_user(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if !render_key_ok(&shared, &headers) {
        return unauthorized();
    }
    axum::Json(serde_json::json!({"id": 1, "login": "admin", "orgId": 1})).into_response()
}

/// Grafana's dashboard API: its title is "Dashboard <uid>" (as the stand-in's page header).
async fn api_dashboard(
    State(shared): State<Shared>,
    Path(uid): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !render_key_ok(&shared, &headers) {
        return unauthorized();
    }
    axum::Json(serde_json::json!({
        "dashboard": {"uid": uid, "title": format!("Dashboard {uid}")},
        "meta": {"slug": "x"},
    }))
    .into_response()
}

/// Grafana's answer to an API request without valid credentials.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({"message": "Unauthorized"})),
    )
        .into_response()
}

/// Whether the request may pass: no keys configured, or its `renderKey` cookie or its
/// `Authorization: Bearer` token (a service-account token) is one of them.
fn render_key_ok(shared: &Shared, headers: &HeaderMap) -> bool {
    let keys = shared
        .render_keys
        .lock()
        .map(|k| k.clone())
        .unwrap_or_default();
    let sent = cookie(headers, "renderKey");
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(String::from);
    keys.is_empty()
        || [sent, bearer]
            .into_iter()
            .flatten()
            .any(|s| keys.contains(&s))
}

/// Grafana's answer to a page request without a valid render key: off to the login page.
fn login_unless_render_key(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    if render_key_ok(shared, headers) {
        return None;
    }
    let to = format!("/login?redirectTo={}", uri.path());
    Some((StatusCode::FOUND, [(header::LOCATION, to)]).into_response())
}

async fn dashboard(
    State(shared): State<Shared>,
    Path((uid, _slug)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(to_login) = login_unless_render_key(&shared, &uri, &headers) {
        return to_login;
    }
    if q.get("hostile").is_some_and(|v| v == "1") {
        // The attacker's page (see `hostile`) on a dashboard route, posing as Grafana's app.
        let version = shared.version.lock().map(|v| v.clone()).unwrap_or_default();
        let boot = format!(
            "<script>window.grafanaBootData = {{settings: {{buildInfo: {{version: '{version}', commit: 'stand-in'}}}}}};</script>"
        );
        return Html(format!("{boot}{}", hostile::HOSTILE)).into_response();
    }
    if let Some(app) = &shared.frontend {
        let version = shared.version.lock().map(|v| v.clone()).unwrap_or_default();
        return app_page(app, &uid, &headers, &q, &version);
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
        "rows": num("rows", 0),
        "table": num("table", 0),
        "assets": q.get("assets").is_some_and(|v| v == "1"),
        "throw": q.get("throw").is_some_and(|v| v == "1"),
        "lazy": q.get("lazy").is_some_and(|v| v == "1"),
        "fail": q.get("fail").is_some_and(|v| v == "1"),
        "probe": q.get("probe"),
        "frame": q.get("frame"),
        "bundle": num("bundle", shared.bundle_kib),
        "drawn": DRAWN_RGB,
        "background": BACKGROUND_RGB,
        "late": q.get("late"),
        "lateFrame": num("lateFrame", 4),
        "lateBefore": LATE_BEFORE_RGB,
        "lateAfter": LATE_AFTER_RGB,
    });
    let bundle = num("bundle", shared.bundle_kib);
    let script = if bundle > 0 {
        format!("<script src=\"/public/build/app.{bundle}k.js\"></script>")
    } else {
        String::new()
    };
    let page = PAGE
        .replace("__CONFIG__", &config.to_string())
        .replace("<!--BUNDLE-->", &script);
    // Like a login session: a server-set cookie a later render must not see.
    (
        [(
            header::SET_COOKIE,
            format!("grafana_session={uid}; Path=/; HttpOnly"),
        )],
        Html(page),
    )
        .into_response()
}

/// Frontend mode: the test app's page, Grafana's boot data inlined.
fn app_page(
    app: &frontend::Frontend,
    uid: &str,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    version: &str,
) -> Response {
    let theme = q.get("theme").map(String::as_str).unwrap_or("dark");
    let org_id = q.get("orgId").and_then(|o| o.parse().ok()).unwrap_or(1);
    // Grafana's feature toggles are its server's settings; here a knob of the page.
    let toggles: Vec<&str> = q
        .get("toggles")
        .map(|t| t.split(',').filter(|n| !n.is_empty()).collect())
        .unwrap_or_default();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    (
        [
            (
                header::SET_COOKIE,
                format!("grafana_session={uid}; Path=/; HttpOnly"),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Html(app.page(theme, org_id, host, version, &toggles)),
    )
        .into_response()
}

/// Frontend mode's data source: `POST /api/ds/query` (see [`frontend`]).
async fn ds_query(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Option<axum::Json<frontend::DsRequest>>,
) -> Response {
    if !render_key_ok(&shared, &headers) {
        return unauthorized();
    }
    let Some(axum::Json(req)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"message": "bad request data", "traceID": ""})),
        )
            .into_response();
    };
    tokio::time::sleep(Duration::from_millis(frontend::ds_delay(&req))).await;
    frontend::ds_answer(&req)
}

/// `app.<KiB>k.js`: a deterministic bundle of that size, generated once and kept; in
/// frontend mode first the files of the test app's build.
async fn bundle(State(shared): State<Shared>, Path(file): Path<String>) -> Response {
    if let Some(asset) = shared.frontend.as_ref().and_then(|app| app.asset(&file)) {
        return asset;
    }
    let Some(kib) = file
        .strip_prefix("app.")
        .and_then(|f| f.strip_suffix("k.js"))
        .and_then(|k| k.parse::<u64>().ok())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let kib = kib.min(256 * 1024);
    let body = {
        let Ok(mut cache) = shared.bundles.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        cache
            .entry(kib)
            .or_insert_with(|| axum::body::Bytes::from(generate_bundle(kib * 1024)))
            .clone()
    };
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

/// JavaScript of about `bytes` bytes: thousands of distinct functions, every one of
/// which runs at load, so the browser must really parse, compile and execute it all.
/// Their combined result is checked by the page before it boots.
pub fn generate_bundle(bytes: u64) -> String {
    let mut js = String::with_capacity(bytes as usize + 4096);
    js.push_str("(function(){\n'use strict';\nvar fns=[];\n");
    let mut i: u64 = 0;
    while (js.len() as u64) < bytes {
        let key: String = (0..24)
            .map(|k| (b'a' + ((i * 7 + k * 13) % 26) as u8) as char)
            .collect();
        js.push_str(&format!(
            "fns.push(function f{i}(x){{var t={i},k='{key}';for(var j=0;j<8;j++){{t=(t*31+k.charCodeAt(j%k.length)+x)|0;}}\
             if(t%7===3){{t+={m}}}else{{t-={n}}}var o={{a:t,b:'{key}'.length,c:[t,x,{i}]}};return (o.a^o.c[2])+o.b;}});\n",
            m = i % 97,
            n = i % 89,
        ));
        i += 1;
    }
    js.push_str("var s=0;for(var q=0;q<fns.length;q++){s=(s+fns[q](q))|0;}\nwindow.__bundleChecksum=s;window.__bundleFunctions=fns.length;\n})();\n");
    js
}

const PAGE: &str = include_str!("page.html");

/// The CSV the `d-csv` page downloads (Grafana's panel data export).
pub fn csv_body() -> String {
    let mut csv = String::from("\"Time\",\"Value\"\n");
    for i in 0..20u64 {
        csv.push_str(&format!(
            "{},{}\n",
            1_700_000_000_000u64 + i * 60_000,
            (i * 7) % 17 + 2
        ));
    }
    csv
}

/// The name the `d-csv` page gives its download unless `name=` overrides it.
pub const CSV_NAME: &str = "Prometheus_ 1-data-2026-11-24 21_00_00.csv";

/// Grafana's `d-csv/<uid>?panelId=…` page: after its data query it makes the browser
/// download the panel's data as CSV. Knobs: `name` (download name), `delay` (query ms).
async fn csv_page(
    State(shared): State<Shared>,
    Path(path): Path<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if shared.frontend.is_none() && path.contains_key("slug") {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Some(to_login) = login_unless_render_key(&shared, &uri, &headers) {
        return to_login;
    }
    if let Some(app) = &shared.frontend {
        let uid = path.get("uid").map(String::as_str).unwrap_or("");
        let version = shared.version.lock().map(|v| v.clone()).unwrap_or_default();
        return app_page(app, uid, &headers, &q, &version);
    }
    let config = serde_json::json!({
        "name": q.get("name").map(String::as_str).unwrap_or(CSV_NAME),
        "delay": q.get("delay").and_then(|d| d.parse::<u64>().ok()).unwrap_or(0),
        "csv": csv_body(),
    });
    let page = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Grafana</title></head><body><script>\n\
         const cfg = {config};\n\
         (async () => {{\n\
           await fetch(`/api/ds/query?panel=0&delay=${{cfg.delay}}`);\n\
           const a = document.createElement('a');\n\
           a.href = URL.createObjectURL(new Blob([cfg.csv], {{type: 'text/csv'}}));\n\
           a.download = cfg.name;\n\
           document.body.appendChild(a);\n\
           a.click();\n\
         }})();\n</script></body></html>"
    );
    Html(page).into_response()
}
