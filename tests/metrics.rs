//! `/metrics` under both official services' names, and logs that never carry secrets.

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::{Harness, RENDER_KEY, TOKEN};

#[tokio::test]
async fn metrics_use_the_go_and_node_names_and_grenders_own() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    assert_eq!(
        h.render(&h.dashboard("/d-solo/m/p", ""), &[("height", "500")])
            .await
            .status,
        200
    );
    assert_eq!(
        h.render(
            &h.dashboard("/d-solo/m/p", ""),
            &[("height", "500"), ("encoding", "pdf")]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        h.get_with(
            &h.render_url("file:///etc/passwd", &[]),
            &[("X-Auth-Token", "wrong")]
        )
        .await
        .status,
        401
    );
    let r = h.get_with(&h.url("/metrics"), &[]).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    for line in [
        r#"http_request_duration_count{encoding="png",method="GET",mode="scenes",path="GET /render",status_code="200",unit="seconds"} 1"#,
        r#"http_request_duration_count{encoding="pdf",method="GET",mode="scenes",path="GET /render",status_code="200",unit="seconds"} 1"#,
        r#"http_authenticated_request_attempts_total{result="invalid-token"} 1"#,
        r#"http_authenticated_request_attempts_total{result="valid-token"} 2"#,
        r#"grafana_image_renderer_service_http_request_duration_seconds_count{status_code="200"} 2"#,
        r#"browser_readiness_mode_total{mode="scenes"} 2"#,
        "grafana_image_renderer_http_request_in_flight 0",
        "http_requests_in_flight 0",
        "browser_instances_active 1",
        "grender_browser_renders_total 2",
        "grender_queue_waiting 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    for name in [
        "grafana_image_renderer_browser_info{version=\"HeadlessChrome/",
        "grafana_image_renderer_step_duration_seconds_bucket{step=\"panelsRendered\"",
        "grender_chromium_rss_bytes ",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(name), "missing {name:?}");
    }
    h.stop().await;
}

#[tokio::test]
async fn logs_never_contain_tokens_or_render_keys() {
    if !common::chromium_available() {
        return;
    }
    let stub = grafana_stub::GrafanaStub::start(Some(RENDER_KEY))
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_grender"))
        .args([
            "server",
            "--config=/dev/null",
            "--log.level=debug",
            "--log.format=json",
        ])
        .arg(format!("--server.addr=127.0.0.1:{port}"))
        .arg(format!("--server.auth-token={TOKEN}"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}/version")).send().await
            && r.text().await.unwrap_or_default().contains("Chrome/")
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "grender did not start");
    for key in [RENDER_KEY, "a-stale-render-key"] {
        let mut url = url::Url::parse(&format!("{base}/render")).unwrap();
        url.query_pairs_mut()
            .append_pair(
                "url",
                &stub.url("/d-solo/log/p?secret=grafana-query-secret"),
            )
            .append_pair("renderKey", key)
            .append_pair("domain", "127.0.0.1")
            .append_pair("height", "500");
        let _ = client
            .get(url.as_str())
            .header("X-Auth-Token", TOKEN)
            .send()
            .await
            .unwrap()
            .bytes()
            .await;
    }
    let _ = client
        .get(format!("{base}/render?url=http://x/"))
        .header("X-Auth-Token", "wrong-token-value")
        .send()
        .await;
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(
        logs.contains("rendered") && logs.contains("render failed"),
        "{logs}"
    );
    for secret in [
        TOKEN,
        RENDER_KEY,
        "a-stale-render-key",
        "wrong-token-value",
        "grafana-query-secret",
    ] {
        assert!(
            !logs.contains(secret),
            "{secret:?} appears in the logs:\n{logs}"
        );
    }
}
