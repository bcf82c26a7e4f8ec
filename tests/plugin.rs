//! Plugin mode, seen from Grafana's side: this test is the go-plugin host. It starts the
//! binary with the magic cookie and Grafana's environment, reads the handshake line, and
//! calls the gRPC services Grafana calls, rendering the stand-in.

use crate::common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grafana_stub::GrafanaStub;
use grender::plugin::proto::plugin::{Empty, grpc_controller_client::GrpcControllerClient};
use grender::plugin::proto::pluginextensionv2::{
    RenderCsvRequest, RenderRequest, StringList, renderer_client::RendererClient,
};
use grender::plugin::proto::pluginv2::{
    CheckHealthRequest, CollectMetricsRequest, diagnostics_client::DiagnosticsClient,
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const PLUGIN_TOKEN: &str = "plugin-secret";

/// The plugin process as Grafana runs it; killed on drop.
struct Plugin {
    child: Child,
    handshake: String,
    channel: Channel,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Plugin {
    /// Starts the binary like go-plugin does and connects to the address it announces.
    async fn start(extra_env: &[(&str, &str)]) -> Plugin {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_grender"));
        cmd.env("grafana_plugin_type", "datasource")
            .env("PLUGIN_PROTOCOL_VERSIONS", "1,2")
            .env("PLUGIN_MIN_PORT", "10000")
            .env("PLUGIN_MAX_PORT", "25000")
            .env("GF_PLUGIN_AUTH_TOKEN", format!("first {PLUGIN_TOKEN}"))
            .env("GF_PLUGIN_RENDERING_ARGS", "--disable-gpu")
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the plugin starts");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = common::collect_stderr(&mut child);
        let handshake = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        });
        let handshake = tokio::time::timeout(Duration::from_secs(60), handshake)
            .await
            .expect("a handshake within go-plugin's minute")
            .expect("reader")
            .expect("a line");
        let handshake = handshake.trim_end().to_string();
        let parts: Vec<&str> = handshake.split('|').collect();
        assert_eq!(parts.len(), 5, "handshake {handshake:?}");
        assert_eq!(
            (parts[0], parts[1], parts[2], parts[4]),
            ("1", "2", "tcp", "grpc"),
            "handshake {handshake:?}"
        );
        assert!(
            parts[3].starts_with("127.0.0.1:"),
            "handshake {handshake:?}"
        );
        let channel = Channel::from_shared(format!("http://{}", parts[3]))
            .expect("address")
            .connect()
            .await
            .expect("connects to the announced address");
        Plugin {
            child,
            handshake,
            channel,
            stderr,
        }
    }

    fn logs(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn render_request(stub: &GrafanaStub, file_path: &std::path::Path, token: &str) -> RenderRequest {
    RenderRequest {
        url: stub.url("/d-solo/plugin/panel?orgId=1&panelId=2&render=1"),
        width: 1000,
        height: 500,
        device_scale_factor: 1.0,
        file_path: file_path.display().to_string(),
        render_key: common::RENDER_KEY.into(),
        domain: "127.0.0.1".into(),
        timeout: 30,
        timezone: "Europe/Berlin".into(),
        headers: HashMap::from([(
            "Accept-Language".to_string(),
            StringList {
                values: vec!["de-DE".into()],
            },
        )]),
        auth_token: token.into(),
        encoding: "png".into(),
    }
}

#[tokio::test]
async fn grafana_renders_a_panel_through_the_plugin() {
    if !common::chromium_available() {
        return;
    }
    let stub = GrafanaStub::start(Some(common::RENDER_KEY))
        .await
        .expect("stub");
    let plugin = Plugin::start(&[]).await;
    eprintln!("handshake: {}", plugin.handshake);
    // Grafana's data directory: renders go to its png/ and csv/ folders.
    let dir = tempfile::tempdir().expect("temp dir");
    let (png_dir, csv_dir) = (dir.path().join("png"), dir.path().join("csv"));
    std::fs::create_dir(&png_dir).expect("png/");
    std::fs::create_dir(&csv_dir).expect("csv/");
    let file = png_dir.join("panel.png");
    let mut renderer = RendererClient::new(plugin.channel.clone());
    let answer = renderer
        .render(render_request(&stub, &file, PLUGIN_TOKEN))
        .await
        .expect("Render answers")
        .into_inner();
    eprintln!(
        "Render -> error {:?}, {} bytes in {}",
        answer.error,
        std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0),
        file.display()
    );
    assert_eq!(answer.error, "");
    let png = std::fs::read(&file).expect("the picture is written to filePath");
    let img = grender::output::picture::decode(&png).expect("a PNG");
    assert_eq!((img.width(), img.height()), (1000, 500));
    let centre = img.to_rgb8().get_pixel(500, 250).0;
    assert!(
        common::close(centre, grafana_stub::DRAWN_RGB),
        "the panel is not drawn: {centre:?}"
    );
    // The request reached the stand-in with the render key and the forwarded language.
    let seen = stub.seen_at("/d-solo/plugin/panel");
    assert!(!seen.is_empty(), "the stand-in saw no request");

    // A failing render comes back in the error field, with gRPC status OK.
    let broken = RenderRequest {
        url: stub.url("/d-solo/plugin/panel?mode=binding&fail=1"),
        ..render_request(&stub, &png_dir.join("broken.png"), PLUGIN_TOKEN)
    };
    let answer = renderer
        .render(broken)
        .await
        .expect("Render answers")
        .into_inner();
    assert!(
        answer.error.starts_with("[grafana-render-failed]"),
        "{:?}",
        answer.error
    );

    // A non-http URL is refused as the official plugin does.
    let file_url = RenderRequest {
        url: "file:///etc/passwd".into(),
        ..render_request(&stub, &png_dir.join("x.png"), PLUGIN_TOKEN)
    };
    let status = renderer.render(file_url).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("Forbidden query url protocol"),
        "{}",
        status.message()
    );

    // RenderCSV writes the stand-in's CSV download to filePath and names it.
    let csv_path = csv_dir.join("data.csv");
    let csv = renderer
        .render_csv(RenderCsvRequest {
            url: stub.url("/d-csv/plugin?orgId=1&panelId=2"),
            file_path: csv_path.display().to_string(),
            render_key: common::RENDER_KEY.into(),
            domain: "127.0.0.1".into(),
            timeout: 30,
            timezone: String::new(),
            headers: HashMap::new(),
            auth_token: PLUGIN_TOKEN.into(),
        })
        .await
        .expect("RenderCSV answers")
        .into_inner();
    assert_eq!(csv.error, "");
    assert!(csv.file_name.ends_with(".csv"), "{:?}", csv.file_name);
    let text = std::fs::read_to_string(&csv_path).expect("the CSV is written to filePath");
    assert!(text.lines().count() > 1, "{text}");

    // Health, diagnostics and metrics.
    let mut health = HealthClient::new(plugin.channel.clone());
    for service in ["", "plugin"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status;
        assert_eq!(status, 1, "{service:?} is not SERVING");
    }
    let mut diagnostics = DiagnosticsClient::new(plugin.channel.clone());
    let check = diagnostics
        .check_health(CheckHealthRequest::default())
        .await
        .expect("CheckHealth answers")
        .into_inner();
    assert_eq!(check.status, 1, "{}", check.message);
    let details: serde_json::Value =
        serde_json::from_slice(&check.json_details).expect("JSON details");
    assert!(
        details["browserVersion"]
            .as_str()
            .is_some_and(|v| v.contains("Chrome")),
        "{details}"
    );
    let metrics = diagnostics
        .collect_metrics(CollectMetricsRequest::default())
        .await
        .expect("CollectMetrics answers")
        .into_inner();
    let text = String::from_utf8(metrics.metrics.expect("payload").prometheus).expect("text");
    // Real values of the renders above, not only the names: three reached Chromium (the
    // panel, the failing one, the CSV), one failed, the file: URL was refused before.
    let value = |name: &str| common::metric_value(&text, name);
    assert_eq!(value("grender_browser_renders_total"), 3.0, "{text}");
    assert_eq!(value("grender_browser_launches_total"), 1.0, "{text}");
    assert_eq!(value("browser_instances_active"), 1.0, "{text}");
    assert!(value("grender_chromium_rss_bytes") > 1e6, "{text}");
    assert_eq!(
        value("grender_errors_total{code=\"grafana-render-failed\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        value("http_trusted_url_requests_total{result=\"invalid-protocol\"}"),
        1.0,
        "{text}"
    );
    assert!(
        text.lines().any(
            |l| l.starts_with("grafana_image_renderer_browser_info{version=\"")
                && l.contains("Chrome")
                && l.ends_with(" 1")
        ),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("http_request_duration_count{")
                && l.contains("path=\"grpc Render\"")
                && l.contains("status_code=\"200\"")
                && l.ends_with(" 1")),
        "{text}"
    );

    // Logs are hclog JSON lines that go-plugin can parse.
    let logs = plugin.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("grender plugin serving"))
        .unwrap_or_else(|| panic!("no start line in {logs}"));
    let parsed: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    assert_eq!(parsed["@level"], "info");
    assert!(
        parsed["@timestamp"]
            .as_str()
            .is_some_and(|t| t.len() == 27 && t.ends_with('Z')),
        "{line}"
    );

    // go-plugin's Shutdown stops the plugin and its Chromium.
    let mut controller = GrpcControllerClient::new(plugin.channel.clone());
    controller
        .shutdown(Empty {})
        .await
        .expect("Shutdown answers");
    let mut plugin = plugin;
    let mut exited = None;
    for _ in 0..100 {
        if let Ok(Some(status)) = plugin.child.try_wait() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        exited.is_some_and(|s| s.success()),
        "the plugin did not stop: {exited:?}"
    );
}

#[tokio::test]
async fn file_paths_outside_grafanas_render_directories_are_refused() {
    if !common::chromium_available() {
        return;
    }
    let stub = GrafanaStub::start(Some(common::RENDER_KEY))
        .await
        .expect("stub");
    // The default token: what any local process would try first.
    let plugin = Plugin::start(&[("GF_PLUGIN_AUTH_TOKEN", "-")]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let png = dir.path().join("png");
    std::fs::create_dir(&png).expect("png/");
    let elsewhere = dir.path().join("etc");
    std::fs::create_dir(&elsewhere).expect("etc/");
    let victim = elsewhere.join("victim.conf");
    std::fs::write(&victim, "original").expect("victim");
    let existing = png.join("existing.png");
    std::fs::write(&existing, "original").expect("existing");
    let link = png.join("link.png");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    let linked_dir = dir.path().join("linked");
    std::fs::create_dir(&linked_dir).expect("linked/");
    std::os::unix::fs::symlink(&elsewhere, linked_dir.join("png")).expect("dir symlink");

    let mut renderer = RendererClient::new(plugin.channel.clone());
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a symlink at the target",
            link.display().to_string(),
            "already exists",
        ),
        (
            "an existing file",
            existing.display().to_string(),
            "already exists",
        ),
        (
            "a path outside png/csv/pdf",
            elsewhere.join("new.png").display().to_string(),
            "png, csv or pdf",
        ),
        (
            "a relative path",
            "png/relative.png".to_string(),
            "absolute",
        ),
        (
            "a path with ..",
            format!("{}/../etc/new.png", png.display()),
            "'..'",
        ),
        (
            "a png directory that is a symlink",
            linked_dir.join("png/new.png").display().to_string(),
            "symbolic link",
        ),
    ];
    for (what, path, why) in &cases {
        let request = RenderRequest {
            file_path: path.clone(),
            ..render_request(&stub, &png.join("unused.png"), "-")
        };
        let answer = renderer
            .render(request)
            .await
            .expect("Render answers")
            .into_inner();
        assert!(
            answer.error.starts_with("[bad-request]") && answer.error.contains(why),
            "{what}: {:?}",
            answer.error
        );
    }
    // Nothing was written anywhere, and nothing rendered.
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "original");
    assert!(!elsewhere.join("new.png").exists());
    assert!(
        stub.seen_at("/d-solo/plugin/panel").is_empty(),
        "a refused request was rendered"
    );
    // A new file in png/ is written (so the refusals above are about the path).
    let good = png.join("new.png");
    let answer = renderer
        .render(render_request(&stub, &good, "-"))
        .await
        .expect("Render answers")
        .into_inner();
    assert_eq!(answer.error, "");
    assert!(
        std::fs::read(&good)
            .expect("written")
            .starts_with(b"\x89PNG")
    );
    let logs = plugin.logs();
    assert!(
        logs.contains("default auth token '-'") && logs.contains("GF_PLUGIN_AUTH_TOKEN"),
        "no start-up warning about the default token: {logs}"
    );
}

#[tokio::test]
async fn a_wrong_token_is_unauthenticated_and_the_log_says_what_to_change() {
    if !common::chromium_available() {
        return;
    }
    let stub = GrafanaStub::start(Some(common::RENDER_KEY))
        .await
        .expect("stub");
    let plugin = Plugin::start(&[]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut renderer = RendererClient::new(plugin.channel.clone());
    for token in ["-", "", "wrong"] {
        let status = renderer
            .render(render_request(&stub, &dir.path().join("p.png"), token))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{token:?}");
        assert_eq!(status.message(), "Unauthorized request");
    }
    let logs = plugin.logs();
    assert!(
        logs.contains("GF_PLUGIN_AUTH_TOKEN") && logs.contains("renderer_token"),
        "{logs}"
    );
    assert!(
        !logs.contains(PLUGIN_TOKEN) && !logs.contains("wrong"),
        "a token was logged: {logs}"
    );
    assert!(!dir.path().join("p.png").exists());
}

#[tokio::test]
async fn without_the_cookie_the_binary_explains_itself() {
    let out = Command::new(env!("CARGO_BIN_EXE_grender"))
        .env_remove("grafana_plugin_type")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("grender server") && text.contains("plugin"),
        "{text}"
    );

    // A missing Chromium is named at plugin start, with how to install it in Grafana's image.
    let out = Command::new(env!("CARGO_BIN_EXE_grender"))
        .env("grafana_plugin_type", "datasource")
        .env("PLUGIN_PROTOCOL_VERSIONS", "2")
        .env("GF_PLUGIN_RENDERING_CHROME_BIN", "/nonexistent/chromium")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no handshake expected");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("/nonexistent/chromium") && text.contains("apk add"),
        "{text}"
    );

    // A host that only offers protocol 1 is told to use the HTTP service.
    let out = Command::new(env!("CARGO_BIN_EXE_grender"))
        .env("grafana_plugin_type", "datasource")
        .env("PLUGIN_PROTOCOL_VERSIONS", "1")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("grender server"));
}

/// go-plugin's Shutdown as a raw gRPC call with curl (HTTP/2 without TLS), optionally as
/// another user through setpriv; returns curl's header dump (trailers included).
fn curl_shutdown(address: &str, as_uid: Option<u32>) -> String {
    use std::io::Write;
    let mut cmd = match as_uid {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg("curl");
            c
        }
        None => Command::new("curl"),
    };
    let mut child = cmd
        .args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "--http2-prior-knowledge",
        ])
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .args(["--data-binary", "@-"])
        .arg(format!("http://{address}/plugin.GRPCController/Shutdown"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl runs");
    // An empty message: no compression flag, length 0.
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&[0, 0, 0, 0, 0]).expect("request body");
    }
    let out = child.wait_with_output().expect("curl ends");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn shutdown_is_refused_from_a_process_of_another_user() {
    let root = unsafe { libc::geteuid() } == 0;
    let tools = ["setpriv", "curl"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !root || !tools {
        eprintln!("skipping: needs root, setpriv and curl to call Shutdown as another user");
        return;
    }
    if !common::chromium_available() {
        return;
    }
    let mut plugin = Plugin::start(&[]).await;
    let address = plugin
        .handshake
        .split('|')
        .nth(3)
        .expect("address")
        .to_string();
    let other = tokio::task::spawn_blocking({
        let address = address.clone();
        move || curl_shutdown(&address, Some(65534))
    })
    .await
    .expect("curl");
    assert!(
        other.contains("grpc-status: 7"),
        "not PERMISSION_DENIED: {other}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        matches!(plugin.child.try_wait(), Ok(None)),
        "another user's Shutdown stopped the plugin"
    );
    assert!(
        plugin.logs().contains("refused go-plugin's Shutdown"),
        "{}",
        plugin.logs()
    );
    // The same call from Grafana's user (ours) stops it: the refusal above was about the user.
    let own = tokio::task::spawn_blocking(move || curl_shutdown(&address, None))
        .await
        .expect("curl");
    // (A success's grpc-status travels in trailers, which curl prints only sometimes; an
    // error's would be in the headers.)
    assert!(
        own.starts_with("HTTP/2 200")
            && own
                .lines()
                .filter(|l| l.starts_with("grpc-status"))
                .all(|l| l.trim_end() == "grpc-status: 0"),
        "{own}"
    );
    let mut exited = None;
    for _ in 0..100 {
        if let Ok(Some(status)) = plugin.child.try_wait() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}");
}
