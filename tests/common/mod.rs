//! Shared test harness: a Grafana stand-in and a grender service with a real Chromium,
//! both on loopback.

#![allow(dead_code)]

pub mod proc;

use std::net::SocketAddr;
use std::sync::Arc;

use grafana_stub::GrafanaStub;
use grender::Service;
use grender::api::HttpServer;
use grender::cli::{Cli, Command};

pub const RENDER_KEY: &str = "test-render-key";
pub const TOKEN: &str = "test-token";

/// A running grender plus the stand-in it renders.
pub struct Harness {
    pub stub: GrafanaStub,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub service: Arc<Service>,
}

/// Whether a Chromium exists; without one, browser tests are skipped unless
/// REQUIRE_CHROMIUM=1 (as in CI), where that is a failure.
pub fn chromium_available() -> bool {
    let opts = server_options(&[]);
    match grender::browser::launch::find_chromium(opts.browser.path.as_deref()) {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("REQUIRE_CHROMIUM").is_ok_and(|v| v == "1") {
                panic!("REQUIRE_CHROMIUM=1 but {e}");
            }
            eprintln!("skipping: {e}");
            false
        }
    }
}

pub fn server_options(extra: &[&str]) -> grender::config::ServerOptions {
    let token = format!("--server.auth-token={TOKEN}");
    let mut argv = vec![
        "grender",
        "server",
        "--config=/dev/null",
        "--server.addr=127.0.0.1:0",
        &token,
    ];
    argv.extend_from_slice(extra);
    match Cli::parse_args(argv).expect("test options parse").0.command {
        Command::Server(o) => *o,
        _ => unreachable!("a server command line"),
    }
}

impl Harness {
    /// Starts the stand-in (requiring [`RENDER_KEY`]) and grender with `extra` options.
    /// Returns None when no Chromium is installed (see [`chromium_available`]).
    pub async fn start(extra: &[&str]) -> Option<Harness> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::start_for(move |_| extra).await
    }

    /// Like [`Harness::start`], with options that may name the stand-in (its origin).
    pub async fn start_for(extra: impl FnOnce(&GrafanaStub) -> Vec<String>) -> Option<Harness> {
        if !chromium_available() {
            return None;
        }
        let stub = GrafanaStub::start(Some(RENDER_KEY))
            .await
            .expect("stub starts");
        Self::start_with(stub, extra).await
    }

    /// Like [`Harness::start`], against the stand-in serving the Grafana-frontend test app
    /// (`testapp/`, built from Grafana's own npm packages by `scripts/testapp.sh`). Skipped
    /// when it is not built, unless REQUIRE_FRONTEND=1 (as in CI).
    pub async fn start_frontend(extra: &[&str]) -> Option<Harness> {
        if !chromium_available() {
            return None;
        }
        let Some(dist) = grafana_stub::frontend_dist() else {
            if std::env::var("REQUIRE_FRONTEND").is_ok_and(|v| v == "1") {
                panic!("REQUIRE_FRONTEND=1 but the test app is not built: run scripts/testapp.sh");
            }
            eprintln!("skipping: the Grafana-frontend test app is not built (scripts/testapp.sh)");
            return None;
        };
        let stub = GrafanaStub::start_frontend(&dist, Some(RENDER_KEY))
            .await
            .expect("stub starts");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::start_with(stub, move |_| extra).await
    }

    async fn start_with(
        stub: GrafanaStub,
        extra: impl FnOnce(&GrafanaStub) -> Vec<String>,
    ) -> Option<Harness> {
        let extra = extra(&stub);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let opts = server_options(&extra);
        let service = Service::start(&opts).expect("service starts");
        service.wait_started().await.expect("Chromium starts");
        let http = HttpServer::new(service.clone(), &opts.server).expect("HTTP server");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(http.serve(
            listener,
            async {
                let _ = rx.await;
            },
            std::time::Duration::from_secs(10),
        ));
        Some(Harness {
            stub,
            addr,
            client: reqwest::Client::new(),
            stop: Some(tx),
            server: Some(server),
            service,
        })
    }

    /// `/render` URL for `target` with extra query pairs.
    pub fn render_url(&self, target: &str, params: &[(&str, &str)]) -> String {
        let mut url = url::Url::parse(&format!("http://{}/render", self.addr)).expect("url");
        url.query_pairs_mut().append_pair("url", target);
        for (k, v) in params {
            url.query_pairs_mut().append_pair(k, v);
        }
        url.to_string()
    }

    /// A stand-in dashboard URL with its knobs, e.g. `("/d-solo/a/b", "mode=legacy")`.
    pub fn dashboard(&self, path: &str, knobs: &str) -> String {
        if knobs.is_empty() {
            self.stub.url(path)
        } else {
            self.stub.url(&format!("{path}?{knobs}"))
        }
    }

    /// GET `/render` with the right token, render key and domain plus `params`.
    pub async fn render(&self, target: &str, params: &[(&str, &str)]) -> Rendered {
        let mut all = vec![("renderKey", RENDER_KEY), ("domain", "127.0.0.1")];
        all.extend_from_slice(params);
        self.get_with(&self.render_url(target, &all), &[("X-Auth-Token", TOKEN)])
            .await
    }

    /// GET any URL with headers.
    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Rendered {
        let mut req = self.client.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request reaches grender");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.expect("body").to_vec();
        Rendered {
            status,
            headers,
            body,
        }
    }

    /// The value of a counter (the first sample whose line starts with `name`), read from the
    /// service's metrics page.
    pub fn count(&self, name: &str) -> u64 {
        metric_value(&self.service.metrics_text(), name) as u64
    }

    /// The current browser.
    pub fn browser(&self) -> Arc<grender::browser::LiveBrowser> {
        match self.service.browser_state() {
            grender::browser::BrowserState::Ready(b) => b,
            _ => panic!("browser not ready"),
        }
    }

    /// Path of grender itself.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops grender and its Chromium.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

/// A response from grender.
pub struct Rendered {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Rendered {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    /// Decodes the body as a PNG, failing with the error text otherwise.
    pub fn png(&self) -> Image {
        assert_eq!(
            self.status,
            200,
            "expected a picture, got {}: {}",
            self.status,
            self.text()
        );
        let decoder = png::Decoder::new(std::io::Cursor::new(&self.body));
        let mut reader = decoder.read_info().expect("valid PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("PNG frame");
        let channels = info.color_type.samples();
        Image {
            width: info.width,
            height: info.height,
            channels,
            data: buf[..info.buffer_size()].to_vec(),
        }
    }
}

/// A decoded picture.
pub struct Image {
    pub width: u32,
    pub height: u32,
    channels: usize,
    data: Vec<u8>,
}

impl Image {
    pub fn rgb(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * self.channels;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Pixels within `tolerance` per channel of `rgb`.
    pub fn count_near(&self, rgb: [u8; 3], tolerance: u8) -> usize {
        self.count_near_in_rows(rgb, tolerance, 0, self.height)
    }

    /// Pixels within `tolerance` of `rgb` in the rows `from..to`.
    pub fn count_near_in_rows(&self, rgb: [u8; 3], tolerance: u8, from: u32, to: u32) -> usize {
        let row = self.width as usize * self.channels;
        let (from, to) = (from.min(self.height) as usize, to.min(self.height) as usize);
        self.data[from * row..to * row]
            .chunks(self.channels)
            .filter(|p| {
                p[..3]
                    .iter()
                    .zip(rgb)
                    .all(|(a, b)| a.abs_diff(b) <= tolerance)
            })
            .count()
    }

    /// True when the pixel is (within rounding) the stand-in's drawn-panel colour.
    pub fn is_drawn(&self, x: u32, y: u32) -> bool {
        close(self.rgb(x, y), grafana_stub::DRAWN_RGB)
    }
}

/// The value of the first sample in Prometheus text `page` whose line starts with `name`
/// (a metric name, or a name with its labels); 0 when absent.
pub fn metric_value(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

pub fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b.iter()).all(|(x, y)| x.abs_diff(*y) <= 6)
}

/// Collects a child process's stderr in the background, for asserting on its log lines.
pub fn collect_stderr(child: &mut std::process::Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    use std::io::Read;
    let collected = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (Some(mut pipe), sink) = (child.stderr.take(), collected.clone()) else {
        return collected;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = sink.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    collected
}

/// A render key signed like Grafana's `renderAuthJWT` keys (HS512 with `secret`), for
/// `user_id` in org 1, expiring `exp_offset` seconds from now.
pub fn jwt(user_id: i64, exp_offset: i64, secret: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::Mac;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + exp_offset;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
    let claims = serde_json::json!({"renderUser": {"org_id": 1, "user_id": user_id, "org_role": "Admin"}, "exp": exp});
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    format!(
        "{header}.{payload}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}
