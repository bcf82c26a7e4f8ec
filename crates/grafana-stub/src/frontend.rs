//! Frontend mode: the stand-in serves grender's Grafana-frontend test app (`testapp/` at
//! the repository root, built from Grafana's own npm packages) instead of its canvas page.
//!
//! Start it with [`crate::GrafanaStub::start_frontend`] (random port) or
//! [`crate::GrafanaStub::start_on_frontend`]; find the built app with [`frontend_dist`]
//! (`None` until `scripts/testapp.sh` has built it). `cargo run -p grafana-stub -- --frontend`
//! runs it on 127.0.0.1:3000.
//!
//! Routes, as Grafana's: `/d/<uid>/<slug>` (`kiosk`, `viewPanel=<id>`),
//! `/d-solo/<uid>/<slug>?panelId=<id>`, `/d-csv/<uid>[/<slug>]?panelId=<id>` (the browser
//! downloads `<panel title>-data-<date>.csv` made by `@grafana/data`'s `toCSV`), all taking
//! `from`, `to` (ms or `now-6h`), `tz`/`timezone`, `theme=light|dark` (default dark),
//! `orgId`, `var-<name>`. The `renderKey` cookie check and the request log are the stand-in's
//! usual ones. Assets are under `/public/build/` (immutable cache headers).
//!
//! Knobs (dashboard URL query, passed by the app to `POST /api/ds/query`):
//! - `delay=<ms>`: every query takes that long;
//! - `fail=1`: every query fails (HTTP 500, Grafana-like error JSON);
//! - `slow=<ms>`: how long the dashboards' slow queries take (default 3000; [`SLOW`] panel 2).
//!
//! Readiness is Grafana's own: `window.__grafanaSceneContext` (set by the scene) and
//! `window.__grafanaRunningQueryCount` (kept by `@grafana/scenes`' `SceneQueryController`).
//! The grid is Grafana's lazy grid: panels out of view neither render nor query.
//!
//! A panel not drawn yet shows only its chrome: the title header over the panel background
//! ([`PANEL_BG_DARK_RGB`] / [`PANEL_BG_LIGHT_RGB`]), with Grafana's thin loading bar (theme
//! primary blue) along its top edge while a query runs; the page behind panels is
//! [`CANVAS_DARK_RGB`] / [`CANVAS_LIGHT_RGB`]. A drawn time series shows its lines in the
//! series colours below.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Dashboard `kinds`: one panel of each kind.
pub const KINDS: &str = "kinds";
/// `kinds` panel ids.
pub const KINDS_TIMESERIES: u32 = 1;
pub const KINDS_STAT: u32 = 2;
pub const KINDS_GAUGE: u32 = 3;
pub const KINDS_BARGAUGE: u32 = 4;
pub const KINDS_TABLE: u32 = 5;
pub const KINDS_BARCHART: u32 = 6;
pub const KINDS_TEXT: u32 = 7;
/// Every panel id of `kinds`.
pub const KINDS_PANELS: [u32; 7] = [1, 2, 3, 4, 5, 6, 7];

/// Dashboard `rows`: row "Expanded row" (panels 1 time series, 2 stat), row "Collapsed row"
/// (panels 3 time series, 4 table: not rendered until expanded), row "Second expanded row"
/// (panel 5 bar gauge).
pub const ROWS: &str = "rows";
/// Panel ids inside the collapsed row of `rows`.
pub const ROWS_COLLAPSED_PANELS: [u32; 2] = [3, 4];

/// Dashboard `repeat`: query variable `server` (values `alpha`, `beta`, `gamma`, from the
/// stand-in; all selected unless `var-server=` says otherwise); panel 1, a time series
/// repeated per server side by side; panel 2, a text panel naming the selected servers.
pub const REPEAT: &str = "repeat";
/// The values of `repeat`'s `server` variable.
pub const REPEAT_SERVERS: [&str; 3] = ["alpha", "beta", "gamma"];

/// Dashboard `broken`: panel 1 works (time series), 2 its data source fails (HTTP 500),
/// 3 its plugin fails to load (`import()` of `/public/plugins/grender-missing-panel/module.js`
/// rejects: 404), 4 works (stat).
pub const BROKEN: &str = "broken";
pub const BROKEN_DS_PANEL: u32 = 2;
pub const BROKEN_PLUGIN_PANEL: u32 = 3;

/// Dashboard `slow`: panel 1 time series, 2 a time series whose queries take the `slow`
/// knob's milliseconds (default 3000), 3 a stat.
pub const SLOW: &str = "slow";
pub const SLOW_PANEL: u32 = 2;
/// Default duration of the slow panel's queries, ms.
pub const SLOW_DEFAULT_MS: u64 = 3000;

/// Dashboard `forty`: 40 panels (ids 1..=40; time series, stat, bar gauge, table, bar chart
/// in turn), two per row, 16 grid units (about 600 px) high: over 12,000 px in all.
pub const FORTY: &str = "forty";

/// Every dashboard uid.
pub const DASHBOARDS: [&str; 6] = [KINDS, ROWS, REPEAT, BROKEN, SLOW, FORTY];

/// Time series query A (`cpu`) line colour, `#19c34a`; also the stat's value and sparkline.
pub const SERIES_A_RGB: [u8; 3] = [0x19, 0xc3, 0x4a];
/// Time series query B (`memory`) line colour, `#d81bd8`.
pub const SERIES_B_RGB: [u8; 3] = [0xd8, 0x1b, 0xd8];
/// Time series query C (`disk`) line colour, `#1f78ff`.
pub const SERIES_C_RGB: [u8; 3] = [0x1f, 0x78, 0xff];
/// Bar chart bars (fully opaque), `#00d5ff`.
pub const BARS_RGB: [u8; 3] = [0x00, 0xd5, 0xff];

/// Grafana's dark theme: the page behind panels (`background.canvas`).
pub const CANVAS_DARK_RGB: [u8; 3] = [0x11, 0x12, 0x17];
/// Grafana's dark theme: a panel's background (`background.primary`).
pub const PANEL_BG_DARK_RGB: [u8; 3] = [0x18, 0x1b, 0x1f];
/// Grafana's light theme: the page behind panels.
pub const CANVAS_LIGHT_RGB: [u8; 3] = [0xf4, 0xf5, 0xf5];
/// Grafana's light theme: a panel's background.
pub const PANEL_BG_LIGHT_RGB: [u8; 3] = [0xff, 0xff, 0xff];

/// `<repo>/testapp/dist` when the app is built (its `index.html` exists), else `None`.
pub fn frontend_dist() -> Option<PathBuf> {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testapp/dist")
        .canonicalize()
        .ok()?;
    dist.join("index.html").is_file().then_some(dist)
}

/// The built app, read into memory once.
pub(crate) struct Frontend {
    index: String,
    files: HashMap<String, Bytes>,
}

const BOOT_MARK: &str = "<script>/*GRENDER_BOOT_DATA*/</script>";

impl Frontend {
    pub(crate) fn load(dist: &Path) -> std::io::Result<Frontend> {
        let index = std::fs::read_to_string(dist.join("index.html"))?;
        if !index.contains(BOOT_MARK) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} has no boot data mark",
                    dist.join("index.html").display()
                ),
            ));
        }
        let mut files = HashMap::new();
        let mut dirs = vec![dist.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if let Ok(rel) = path.strip_prefix(dist) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    files.insert(key, Bytes::from(std::fs::read(&path)?));
                }
            }
        }
        Ok(Frontend { index, files })
    }

    /// The app's page with Grafana's boot data inlined.
    pub(crate) fn page(
        &self,
        theme: &str,
        org_id: u64,
        host: &str,
        version: &str,
        toggles: &[&str],
    ) -> String {
        let theme = if theme == "light" { "light" } else { "dark" };
        let toggles: serde_json::Map<String, serde_json::Value> = toggles
            .iter()
            .map(|name| (name.to_string(), serde_json::Value::Bool(true)))
            .collect();
        let boot = serde_json::json!({
            "settings": {
                "appUrl": format!("http://{host}/"),
                "appSubUrl": "",
                "buildInfo": {
                    "version": version, "commit": "stand-in", "env": "production",
                    "edition": "Open Source", "latestVersion": "", "hasUpdate": false,
                    "hideVersion": false,
                },
                "featureToggles": toggles,
                "datasources": {},
                "panels": {},
                "defaultDatasource": "grender-stand-in",
                "rendererAvailable": true,
            },
            "user": {
                "id": 1, "uid": "stand-in", "login": "admin", "name": "admin", "email": "",
                "orgId": org_id, "orgName": "Main Org.", "orgRole": "Admin",
                "isSignedIn": true, "isGrafanaAdmin": true, "theme": theme,
                "timezone": "browser", "weekStart": "browser", "locale": "en-US",
                "language": "en-US", "helpFlags1": 0,
            },
            "navTree": [],
            "assets": { "dark": "", "light": "" },
        });
        let json = boot.to_string().replace("</", "<\\/");
        self.index.replacen(
            BOOT_MARK,
            &format!("<script>window.grafanaBootData = {json};</script>"),
            1,
        )
    }

    /// A file of the build (`/public/build/<path>`).
    pub(crate) fn asset(&self, path: &str) -> Option<Response> {
        let body = self.files.get(path)?.clone();
        let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let content_type = match ext {
            "js" | "mjs" => "application/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "html" => "text/html; charset=utf-8",
            "json" | "map" => "application/json",
            "svg" => "image/svg+xml",
            "png" => "image/png",
            "jpg" | "jpeg" => "image/jpeg",
            "gif" => "image/gif",
            "woff2" => "font/woff2",
            "woff" => "font/woff",
            "ttf" => "font/ttf",
            "wasm" => "application/wasm",
            _ => "application/octet-stream",
        };
        Some(
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                ],
                body,
            )
                .into_response(),
        )
    }
}

/// One query of `POST /api/ds/query`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct DsQuery {
    #[serde(rename = "refId", default)]
    ref_id: String,
    #[serde(default)]
    scenario: Option<String>,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    fail: bool,
    /// This query's own duration (ms), instead of the request's `delay`.
    #[serde(default)]
    delay: Option<u64>,
}

/// The body of `POST /api/ds/query`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct DsRequest {
    #[serde(default)]
    from: Option<serde_json::Value>,
    #[serde(default)]
    to: Option<serde_json::Value>,
    #[serde(rename = "maxDataPoints", default)]
    max_data_points: Option<u64>,
    #[serde(default)]
    delay: u64,
    #[serde(default)]
    fail: bool,
    #[serde(default)]
    queries: Vec<DsQuery>,
}

fn millis(v: &Option<serde_json::Value>) -> Option<i64> {
    match v.as_ref()? {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// How long the stand-in takes to answer `req`, ms.
pub(crate) fn ds_delay(req: &DsRequest) -> u64 {
    req.queries
        .iter()
        .map(|q| q.delay.unwrap_or(req.delay))
        .max()
        .unwrap_or(req.delay)
        .min(3_600_000)
}

/// Grafana's answer to a data source query: data frames in its JSON wire format by refId,
/// or HTTP 500 with a Grafana-like error.
pub(crate) fn ds_answer(req: &DsRequest) -> Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let to = millis(&req.to).unwrap_or(now);
    let from = millis(&req.from)
        .unwrap_or(to - 6 * 3_600_000)
        .min(to - 1000);
    let mut results = serde_json::Map::new();
    let mut failed = false;
    for q in &req.queries {
        if req.fail || q.fail {
            failed = true;
            results.insert(
                q.ref_id.clone(),
                serde_json::json!({
                    "error": format!("stand-in data source failure (refId {})", q.ref_id),
                    "errorSource": "downstream",
                    "status": 500,
                }),
            );
            continue;
        }
        let alias = q.alias.clone().unwrap_or_else(|| q.ref_id.clone());
        let frame = match q.scenario.as_deref() {
            Some("table") => table_frame(&q.ref_id, q.seed, to),
            Some("values") => values_frame(&q.ref_id, &alias),
            _ => series_frame(
                &q.ref_id,
                &alias,
                q.seed,
                from,
                to,
                req.max_data_points.unwrap_or(500),
            ),
        };
        results.insert(
            q.ref_id.clone(),
            serde_json::json!({ "status": 200, "frames": [frame] }),
        );
    }
    if failed {
        let body = serde_json::json!({
            "message": "Query data error",
            "traceID": "",
            "results": results,
        });
        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response();
    }
    axum::Json(serde_json::json!({ "results": results })).into_response()
}

/// The value of series `seed` at time `t` of the range `from..to`: two sine waves whose
/// shape depends only on where `t` lies in the range, between 5 and 95.
pub fn series_value(seed: u64, from: i64, to: i64, t: i64) -> f64 {
    let span = (to - from).max(1) as f64;
    let x = (t - from) as f64 / span;
    let s = seed as f64;
    let v = 50.0
        + 28.0 * (std::f64::consts::TAU * (x * 2.5 + s * 0.17)).sin()
        + 9.0 * (std::f64::consts::TAU * (x * 11.0 + s * 0.41)).sin()
        - 12.0
        + s * 6.0 % 24.0;
    (v.clamp(5.0, 95.0) * 100.0).round() / 100.0
}

fn series_frame(
    ref_id: &str,
    alias: &str,
    seed: u64,
    from: i64,
    to: i64,
    max_points: u64,
) -> serde_json::Value {
    let points = max_points.clamp(2, 2000) as i64;
    let raw = ((to - from) / points).max(1000);
    let step = (raw + 999) / 1000 * 1000;
    let first = (from + step - 1).div_euclid(step) * step;
    let times: Vec<i64> = (0..)
        .map(|k| first + k * step)
        .take_while(|t| *t <= to)
        .collect();
    let values: Vec<f64> = times
        .iter()
        .map(|t| series_value(seed, from, to, *t))
        .collect();
    serde_json::json!({
        "schema": {
            "refId": ref_id,
            "fields": [
                {"name": "Time", "type": "time", "typeInfo": {"frame": "time.Time"}, "config": {"interval": step}},
                {"name": alias, "type": "number", "typeInfo": {"frame": "float64"}, "config": {}},
            ],
        },
        "data": { "values": [times, values] },
    })
}

const HOSTS: [&str; 8] = [
    "web-01", "web-02", "db-01", "cache-01", "queue-01", "api-01", "api-02", "batch-01",
];

fn table_frame(ref_id: &str, seed: u64, to: i64) -> serde_json::Value {
    let times: Vec<i64> = (0..HOSTS.len() as i64).map(|i| to - i * 60_000).collect();
    let cpu: Vec<f64> = (0..HOSTS.len() as u64)
        .map(|i| ((i * 37 + seed * 11) % 90 + 5) as f64 + 0.5)
        .collect();
    let status: Vec<&str> = (0..HOSTS.len())
        .map(|i| if i % 3 == 2 { "degraded" } else { "ok" })
        .collect();
    serde_json::json!({
        "schema": {
            "refId": ref_id,
            "name": "hosts",
            "fields": [
                {"name": "Time", "type": "time", "config": {}},
                {"name": "Host", "type": "string", "config": {}},
                {"name": "CPU", "type": "number", "config": {"unit": "percent"}},
                {"name": "Status", "type": "string", "config": {}},
            ],
        },
        "data": { "values": [times, HOSTS, cpu, status] },
    })
}

fn values_frame(ref_id: &str, alias: &str) -> serde_json::Value {
    let values: Vec<&str> = match alias {
        "servers" => crate::frontend::REPEAT_SERVERS.to_vec(),
        _ => vec!["one", "two", "three"],
    };
    serde_json::json!({
        "schema": { "refId": ref_id, "name": alias, "fields": [{"name": "text", "type": "string", "config": {}}] },
        "data": { "values": [values] },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_deterministic_and_in_range() {
        let req = DsRequest {
            from: Some(serde_json::json!(1_700_000_000_000i64)),
            to: Some(serde_json::json!("1700021600000")),
            max_data_points: Some(100),
            delay: 5,
            fail: false,
            queries: vec![DsQuery {
                ref_id: "A".into(),
                scenario: None,
                alias: Some("cpu".into()),
                seed: 1,
                fail: false,
                delay: Some(40),
            }],
        };
        assert_eq!(ds_delay(&req), 40);
        let f = series_frame("A", "cpu", 1, 1_700_000_000_000, 1_700_021_600_000, 100);
        let times = f["data"]["values"][0].as_array().map(Vec::len).unwrap_or(0);
        assert!((99..=101).contains(&times), "{times} points");
        for t in (0..21_600_000).step_by(60_000) {
            let v = series_value(3, 0, 21_600_000, t);
            assert!((5.0..=95.0).contains(&v));
        }
    }
}
