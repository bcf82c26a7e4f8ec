//! `grender doctor`: checks a real setup end to end and says, one line per check, what
//! is fine, what is suspicious and what is broken — with the fix.

use std::time::{Duration, Instant};

use clap::Args;

use crate::browser::{BrowserState, pool};
use crate::config::ServerOptions;
use crate::error::{RenderError, running_in_container};
use crate::request::Stage;
use crate::service::{Route, Service};

/// Options of `grender doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// A running grender to check, e.g. http://renderer:8081 (what Grafana's server_url points at).
    #[arg(long = "renderer-url")]
    pub renderer_url: Option<String>,
    /// The token Grafana sends (its [rendering] renderer_token).
    #[arg(long = "token", env = "GF_RENDERING_RENDERER_TOKEN")]
    pub token: Option<String>,
    /// Grafana as the renderer's browser reaches it: its callback URL, e.g. http://grafana:3000/.
    #[arg(long = "grafana-url", env = "GF_RENDERING_CALLBACK_URL")]
    pub grafana_url: Option<String>,
    /// A service-account token for the test render (sent as Authorization: Bearer).
    #[arg(long = "grafana-token", env = "GRAFANA_TOKEN")]
    pub grafana_token: Option<String>,
    /// Or a render key for the test render, set as cookie for --domain.
    #[arg(long = "render-key", requires = "domain")]
    pub render_key: Option<String>,
    /// Cookie domain of --render-key.
    #[arg(long)]
    pub domain: Option<String>,
    /// The page of the test render, relative to --grafana-url (default: the home dashboard).
    #[arg(long, default_value = "/")]
    pub dashboard: String,
    #[command(flatten)]
    pub server: ServerOptions,
}

#[derive(Default)]
struct Report {
    failed: bool,
}

impl Report {
    fn ok(&mut self, name: &str, detail: impl AsRef<str>) {
        println!("OK    {name}: {}", detail.as_ref());
    }
    fn warn(&mut self, name: &str, detail: impl AsRef<str>) {
        println!("WARN  {name}: {}", detail.as_ref());
    }
    fn fail(&mut self, name: &str, detail: impl AsRef<str>) {
        self.failed = true;
        println!("FAIL  {name}: {}", detail.as_ref());
    }
}

/// Runs every check; returns 0 when none failed.
pub async fn run(args: DoctorArgs) -> u8 {
    let mut report = Report::default();
    let service = match crate::browser::launch::find_chromium(args.server.browser.path.as_deref()) {
        Err(e) => {
            report.fail("chromium", &e);
            None
        }
        Ok(path) => match super::start_service(&args.server).await {
            Ok(service) => {
                let version = match service.browser_state() {
                    BrowserState::Ready(b) => b.version.clone(),
                    _ => "?".into(),
                };
                report.ok(
                    "chromium",
                    format!(
                        "{version} starts ({}), sandbox {}",
                        path.display(),
                        crate::browser::launch::sandbox_state(args.server.browser.sandbox)
                    ),
                );
                Some(service)
            }
            Err(e) => {
                report.fail("chromium", format!("{} cannot start: {e}", path.display()));
                None
            }
        },
    };
    check_fonts(&mut report);
    if let Some(url) = &args.renderer_url {
        check_renderer(&mut report, url, args.token.as_deref()).await;
    } else {
        report.warn(
            "renderer",
            "not checked (give --renderer-url and --token to check a running grender)",
        );
    }
    if args.token.as_deref() == Some("-") {
        report.warn("token", "the default token '-' is in use; set a shared secret in Grafana's renderer_token and grender's AUTH_TOKEN");
    }
    match (&args.grafana_url, &service) {
        (Some(grafana), Some(service)) => {
            if check_grafana(&mut report, service, grafana).await {
                check_render(&mut report, service, &args, grafana).await;
            }
        }
        (None, _) => report.warn(
            "grafana",
            "not checked (give --grafana-url, the callback URL grender's browser uses)",
        ),
        (Some(_), None) => report.fail("grafana", "not checked: no browser"),
    }
    println!(
        "NOTE  Grafana's \"test notification\" does not take alert screenshots: only a real render, like the one \
         above, proves that alert pictures will work."
    );
    if let Some(service) = service {
        service.shutdown().await;
    }
    if report.failed { 1 } else { 0 }
}

fn check_fonts(report: &mut Report) {
    match std::process::Command::new("fc-list").args([":lang=zh", "family"]).output() {
        Ok(out) if out.status.success() && !out.stdout.trim_ascii().is_empty() => {
            let first = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").to_string();
            report.ok("fonts", format!("CJK glyphs available ({first})"))
        }
        Ok(_) => report.warn("fonts", "no CJK font: Chinese, Japanese and Korean text draws as boxes. Fix: apt-get install fonts-noto-cjk"),
        Err(_) => report.warn("fonts", "fc-list not found, fonts not checked (install fontconfig)"),
    }
}

async fn check_renderer(report: &mut Report, base: &str, token: Option<&str>) {
    let base = base.trim_end_matches('/').trim_end_matches("/render");
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => return report.fail("renderer", format!("no HTTP client: {e}")),
    };
    match client.get(format!("{base}/render/version")).send().await {
        Ok(r) if r.status().is_success() => {
            let body = r.text().await.unwrap_or_default();
            report.ok(
                "renderer",
                format!("{base}/render/version answers {}", body.trim()),
            );
        }
        Ok(r) => {
            return report.fail(
                "renderer",
                format!("{base}/render/version answered {}", r.status()),
            );
        }
        Err(e) => {
            return report.fail(
                "renderer",
                format!("{base} is not reachable ({e}). Fix: check Grafana's server_url (GF_RENDERING_SERVER_URL)"),
            );
        }
    }
    // A render request without a URL passes authentication and then fails validation (400).
    let mut req = client.get(format!("{base}/render"));
    if let Some(token) = token {
        req = req.header("X-Auth-Token", token);
    }
    match req.send().await.map(|r| r.status().as_u16()) {
        Ok(400) => report.ok("token", "the renderer accepts the token"),
        Ok(401) => report.fail(
            "token",
            "the renderer refuses the token (\"Unauthorized\"). Fix: Grafana's [rendering] renderer_token \
             (GF_RENDERING_RENDERER_TOKEN) must equal one of grender's AUTH_TOKEN values",
        ),
        Ok(other) => report.warn("token", format!("unexpected answer {other} to an authenticated request")),
        Err(e) => report.fail("token", format!("request failed: {e}")),
    }
}

/// Loads Grafana's /api/health in the renderer's own browser: what renders will see.
async fn check_grafana(report: &mut Report, service: &Service, grafana: &str) -> bool {
    let host = url::Url::parse(grafana)
        .ok()
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_default();
    if matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]" | "::1")
        && running_in_container()
    {
        report.warn(
            "callback",
            format!("{grafana} points at this container, not Grafana's; use the Grafana service name, e.g. http://grafana:3000/"),
        );
    }
    let health = format!("{}/api/health", grafana.trim_end_matches('/'));
    let deadline = crate::request::Deadline::after(Duration::from_secs(20));
    let probe = async {
        let browser = service.browsers().current(&deadline).await?;
        let (tab, _) = pool::lease(&browser, None).await?;
        let result = async {
            tab.page()
                .goto(health.as_str())
                .await
                .map_err(|e| RenderError::Navigation {
                    url: health.clone(),
                    reason: e.to_string(),
                })?;
            let landed = tab.page().url().await.ok().flatten().unwrap_or_default();
            let body = crate::page::readiness::evaluate::<String>(
                tab.page(),
                "document.body ? document.body.innerText : ''",
                "reading",
            )
            .await?;
            Ok((landed, body))
        }
        .await;
        tab.give_back(result.is_ok());
        result
    };
    let outcome = deadline.run(Stage::ProbingGrafana, probe).await;
    if let Ok(Ok((landed, _))) = &outcome
        && landed.trim_end_matches('/') != health.trim_end_matches('/')
    {
        report.warn(
            "redirect",
            format!("{health} redirected to {landed}; renders follow the same redirect (check root_url and the scheme)"),
        );
    }
    match outcome.map(|r| r.map(|(_, body)| body)) {
        Ok(Ok(body)) if body.contains("\"database\"") => {
            report.ok(
                "grafana",
                format!("{health} from the renderer's browser: {}", body.trim()),
            );
            true
        }
        Ok(Ok(body)) => {
            report.warn(
                "grafana",
                format!("{health} answered something else: {:.120}", body.trim()),
            );
            true
        }
        Ok(Err(e)) | Err(e) => {
            report.fail("grafana", format!("[{}] {e}", e.code()));
            false
        }
    }
}

async fn check_render(report: &mut Report, service: &Service, args: &DoctorArgs, grafana: &str) {
    if args.grafana_token.is_none() && args.render_key.is_none() {
        return report.warn(
            "render",
            "no test render (give --grafana-token or --render-key and --domain)",
        );
    }
    let target = format!(
        "{}/{}",
        grafana.trim_end_matches('/'),
        args.dashboard.trim_start_matches('/')
    );
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("url", &target)
        .append_pair("encoding", "png")
        .append_pair("timeout", "60");
    if let (Some(key), Some(domain)) = (&args.render_key, &args.domain) {
        query
            .append_pair("renderKey", key)
            .append_pair("domain", domain);
    }
    let mut req = match service.parse(Route::CommandLine, &query.finish(), None) {
        Ok(req) => req,
        Err(e) => return report.fail("render", e.to_string()),
    };
    if let Some(token) = &args.grafana_token {
        req.extra_headers
            .push(("Authorization".into(), format!("Bearer {token}")));
    }
    let started = Instant::now();
    match service.render(req, None, Route::CommandLine).await {
        Ok(capture) => report.ok(
            "render",
            format!(
                "{target} rendered in {:.1}s ({} bytes, readiness: {})",
                started.elapsed().as_secs_f64(),
                capture.bytes.len(),
                capture.mode.label()
            ),
        ),
        Err(e) => report.fail("render", format!("[{}] {e}", e.code())),
    }
}
