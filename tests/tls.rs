//! HTTPS serving, the TLS healthcheck, and Chromium trusting a private CA (browser.ca-file).

use crate::common;

use std::process::Command;

use common::{Harness, TOKEN};

/// A self-signed certificate for 127.0.0.1, made with openssl; None without openssl.
fn self_signed(dir: &std::path::Path) -> Option<(String, String)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .ok()?
        .status
        .success();
    ok.then(|| {
        (
            cert.to_string_lossy().to_string(),
            key.to_string_lossy().to_string(),
        )
    })
}

fn curl_insecure(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-sk", url])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn https_serving_and_a_private_ca_for_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = self_signed(dir.path()) else {
        eprintln!("skipping: openssl not available");
        return;
    };
    let cert_flag = format!("--server.certificate-file={cert}");
    let key_flag = format!("--server.key-file={key}");
    // A grender serving HTTPS: its banner page stands in for a Grafana behind a private CA.
    let Some(https) = Harness::start(&[&cert_flag, &key_flag]).await else {
        return;
    };
    let base = format!("https://127.0.0.1:{}", https.addr.port());
    let body = tokio::task::spawn_blocking({
        let url = format!("{base}/healthz");
        move || curl_insecure(&url)
    })
    .await
    .unwrap();
    assert_eq!(body, "OK");
    let health = tokio::task::spawn_blocking({
        let addr = format!("--server.addr={}", https.addr);
        let (c, k) = (cert_flag.clone(), key_flag.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_grender"))
                .args(["healthcheck", "--config=/dev/null", &addr, &c, &k])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        health.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );

    async fn render(h: &Harness, base: &str) -> common::Rendered {
        let url = h.render_url(&format!("{base}/"), &[("height", "500"), ("timeout", "20")]);
        h.get_with(&url, &[("X-Auth-Token", TOKEN)]).await
    }
    // Without the CA, Chromium refuses the certificate: a clear tls-failed.
    let Some(untrusting) =
        Harness::start(&["--browser.readiness.give-up-on-first-query=200ms"]).await
    else {
        return;
    };
    let r = render(&untrusting, &base).await;
    assert!(r.text().starts_with("[tls-failed]"), "{}", r.text());
    untrusting.stop().await;
    // With browser.ca-file, the same page renders.
    let ca_flag = format!("--browser.ca-file={cert}");
    let Some(trusting) =
        Harness::start(&[&ca_flag, "--browser.readiness.give-up-on-first-query=200ms"]).await
    else {
        return;
    };
    let img = render(&trusting, &base).await.png();
    assert_eq!((img.width, img.height), (1000, 500));
    trusting.stop().await;
    https.stop().await;
}

#[tokio::test]
async fn tls_handshakes_take_a_connection_slot_first_and_time_out() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = self_signed(dir.path()) else {
        eprintln!("skipping: openssl not available");
        return;
    };
    let cert_flag = format!("--server.certificate-file={cert}");
    let key_flag = format!("--server.key-file={key}");
    let Some(h) = Harness::start(&[
        &cert_flag,
        &key_flag,
        "--server.max-connections=1",
        "--server.header-read-timeout=1500ms",
    ])
    .await
    else {
        return;
    };
    assert_eq!(
        grender::api::tls::insecure_get_status(h.addr, "/healthz")
            .await
            .unwrap(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // A client that connects and never starts its handshake holds the only slot...
    let mut idle = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    // ...so a second client is refused (503 over TLS) instead of waiting behind it,
    assert_eq!(
        grender::api::tls::insecure_get_status(h.addr, "/healthz")
            .await
            .unwrap(),
        503
    );
    // ...and the stalled handshake is cut off after server.header-read-timeout.
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("the stalled handshake is closed within its timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_millis(3000),
        "closed only after {waited:?}"
    );
    // The slot is free again.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        grender::api::tls::insecure_get_status(h.addr, "/healthz")
            .await
            .unwrap(),
        200
    );
    h.stop().await;
}
