//! HTTP server limits against hostile or broken clients: URL and header sizes, connection
//! count, and slow clients (slowloris). Raw TCP on loopback, so nothing in between helps.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Harness;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` on a new connection and reads until the server closes it or 10 s pass.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut conn = TcpStream::connect(addr).await.expect("connects");
    let _ = conn.write_all(request).await;
    read_answer(&mut conn).await
}

/// Reads one answer: up to the end of the body named by content-length, or until closed.
async fn read_answer(conn: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .and_then(|v| v.trim().parse::<usize>().ok())
            });
            if length.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn get(path: &str, extra_headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: grender\r\n{extra_headers}\r\n").into_bytes()
}

#[tokio::test]
async fn long_urls_get_414_and_large_headers_get_431_naming_the_option() {
    let Some(h) = Harness::start(&[
        "--server.max-url-bytes=2048",
        "--server.max-header-bytes=2048",
    ])
    .await
    else {
        return;
    };
    let long_url = format!("/render?url=http://grafana/d/{}", "x".repeat(3000));
    let answer = exchange(h.addr, &get(&long_url, "")).await;
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    assert!(answer.contains("server.max-url-bytes=2048"), "{answer}");

    let big_header = format!("x-padding: {}\r\n", "y".repeat(3000));
    let answer = exchange(h.addr, &get("/healthz", &big_header)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(answer.contains("server.max-header-bytes=2048"), "{answer}");

    // Far over every limit: refused by the bounded read buffer, without reading it all.
    let huge = format!("x-padding: {}\r\n", "y".repeat(4 << 20));
    let answer = exchange(h.addr, &get("/healthz", &huge)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.200}");

    // Within the limits everything still works.
    let answer = exchange(h.addr, &get("/healthz", "connection: close\r\n")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let metrics = h.get_with(&h.url("/metrics"), &[]).await.text();
    assert!(
        metrics.contains(r#"grender_requests_refused_total{limit="server.max-url-bytes"} 1"#),
        "{metrics}"
    );
    h.stop().await;
}

#[tokio::test]
async fn connections_over_the_limit_get_503_with_retry_after() {
    let Some(h) = Harness::start(&["--server.max-connections=2"]).await else {
        return;
    };
    // Two keep-alive connections, each served once and left open.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = TcpStream::connect(h.addr).await.expect("connects");
        conn.write_all(&get("/healthz", "")).await.expect("writes");
        let answer = read_answer(&mut conn).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(conn);
    }
    let answer = exchange(h.addr, &get("/healthz", "")).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("server.max-connections=2"), "{answer}");

    // Closing one frees its place.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = exchange(h.addr, &get("/healthz", "connection: close\r\n")).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no place freed: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);
    h.stop().await;
}

#[tokio::test]
async fn slow_and_idle_clients_are_cut_off_and_free_their_place() {
    let Some(h) = Harness::start(&[
        "--server.max-connections=2",
        "--server.header-read-timeout=1s",
    ])
    .await
    else {
        return;
    };
    let started = Instant::now();
    // One client trickles a header line every 300 ms for 6 s (under the 10 s default, so only
    // the configured 1 s cuts it); another sends nothing at all.
    let mut slow = TcpStream::connect(h.addr).await.expect("connects");
    let idle = TcpStream::connect(h.addr).await.expect("connects");
    slow.write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("writes");
    let trickle = tokio::spawn(async move {
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow
                .write_all(format!("x-slow-{i}: a\r\n").as_bytes())
                .await
                .is_err()
            {
                return Some(Instant::now());
            }
            let mut probe = [0u8; 1];
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
            {
                return Some(Instant::now());
            }
        }
        None
    });
    let cut_at = trickle.await.expect("trickle task").expect(
        "a client that never finishes its headers must be disconnected (server.header-read-timeout)",
    );
    let cut_after = cut_at - started;
    assert!(
        cut_after >= Duration::from_millis(900),
        "cut after {cut_after:?}, before the 1 s timeout"
    );
    let mut idle = idle;
    let mut probe = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut probe)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "an idle connection must be closed: {closed:?}"
    );
    // Both places are free again.
    let answer = exchange(h.addr, &get("/healthz", "connection: close\r\n")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    h.stop().await;
}
