//! Frontend mode over loopback: the dashboard routes answer the test app's page with
//! Grafana's boot data, its assets come from /public/build, and the data source answers.
//! Skipped (with a notice) when the app is not built (`scripts/testapp.sh`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use grafana_stub::{GrafanaStub, frontend_dist};

/// One HTTP/1.1 exchange; the whole answer (head and body) as text.
fn http(addr: SocketAddr, request: String) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(request.as_bytes()).expect("write");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

fn get(addr: SocketAddr, path: &str, cookie: &str) -> String {
    http(
        addr,
        format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn frontend_mode_serves_the_app() {
    let Some(dist) = frontend_dist() else {
        eprintln!("skipped: the test app is not built (run scripts/testapp.sh)");
        return;
    };
    let stub = GrafanaStub::start_frontend(&dist, Some("key1"))
        .await
        .expect("start");
    let addr = stub.addr;
    let checks = tokio::task::spawn_blocking(move || {
        let refused = get(addr, "/d-solo/kinds/x?panelId=1", "");
        assert!(refused.starts_with("HTTP/1.1 302"), "{refused}");
        assert!(refused.contains("location: /login"), "{refused}");

        let page = get(
            addr,
            "/d-solo/kinds/x?panelId=1&theme=light",
            "renderKey=key1",
        );
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("window.grafanaBootData = {"), "{page}");
        assert!(page.contains("\"theme\":\"light\""), "{page}");
        let script = page
            .split("src=\"/public/build/")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("the page loads its bundle")
            .to_string();

        let csv = get(addr, "/d-csv/kinds/x?panelId=1", "renderKey=key1");
        assert!(csv.contains("window.grafanaBootData = {"), "{csv}");
        assert!(csv.contains("\"theme\":\"dark\""), "{csv}");

        let asset = get(addr, &format!("/public/build/{script}"), "");
        assert!(asset.starts_with("HTTP/1.1 200"), "{}", &asset[..200]);
        assert!(asset.contains("content-type: application/javascript"));
        assert!(asset.contains("cache-control: public, max-age=31536000, immutable"));

        let icon = get(addr, "/public/build/img/icons/unicons/angle-down.svg", "");
        assert!(icon.contains("content-type: image/svg+xml"), "{icon}");
        let missing = get(addr, "/public/plugins/grender-missing-panel/module.js", "");
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

        let body = r#"{"from":1700000000000,"to":1700003600000,"maxDataPoints":10,"queries":[{"refId":"A","alias":"cpu","seed":1}]}"#;
        let query_with = |body: &str, cookie: &str| {
            http(
                addr,
                format!(
                    "POST /api/ds/query HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                ),
            )
        };
        let query = |body: &str| query_with(body, "renderKey=key1");
        // Like Grafana's API, the data source refuses a request without a valid render key.
        let refused = query_with(body, "renderKey=wrong");
        assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
        let data = query(body);
        assert!(data.starts_with("HTTP/1.1 200"), "{data}");
        assert!(data.contains("\"refId\":\"A\""), "{data}");
        let failing = query(r#"{"queries":[{"refId":"A","fail":true}]}"#);
        assert!(failing.starts_with("HTTP/1.1 500"), "{failing}");
        assert!(
            failing.contains("\"message\":\"Query data error\""),
            "{failing}"
        );
    });
    checks.await.expect("checks");
    assert_eq!(stub.seen_at("/d-solo/kinds/x").len(), 2);
}
