//! The one-shot subcommands, run as a user would: `grender render` and `grender doctor`.

use crate::common;

use std::process::Command;

use common::{Harness, RENDER_KEY, TOKEN};
use grafana_stub::GrafanaStub;

async fn grender(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_grender"))
            .args(&args)
            .arg("--config=/dev/null")
            .output()
            .expect("runs")
    })
    .await
    .expect("joins")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// `grender render URL -o OUT` with a render key for the stand-in, plus `extra` arguments.
async fn render_to(
    url: &str,
    out: &std::path::Path,
    key: &str,
    extra: &[&str],
) -> std::process::Output {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "render",
        url,
        "-o",
        out,
        "--render-key",
        key,
        "--domain",
        "127.0.0.1",
    ];
    args.extend_from_slice(extra);
    grender(strings(&args)).await
}

#[tokio::test]
async fn render_writes_png_or_pdf_and_fails_clearly() {
    if !common::chromium_available() {
        return;
    }
    let stub = GrafanaStub::start(Some(RENDER_KEY)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let png_path = dir.path().join("panel.png");
    let url = stub.url("/d-solo/cli/panel?delay=200");
    let out = render_to(
        &url,
        &png_path,
        RENDER_KEY,
        &["--width", "1200", "--height", "600"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png_path).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let info = decoder.read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (1200, 600));

    let pdf_path = dir.path().join("dashboard.pdf");
    let out = render_to(&stub.url("/d/cli/dash"), &pdf_path, RENDER_KEY, &[]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&pdf_path).unwrap().starts_with(b"%PDF-"));

    // The file extension picks the picture format; picture options pass through.
    let jpeg_path = dir.path().join("thumb.jpg");
    let out = render_to(
        &url,
        &jpeg_path,
        RENDER_KEY,
        &[
            "--width",
            "1200",
            "--height",
            "600",
            "--thumbnail",
            "300",
            "--greyscale",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jpeg = std::fs::read(&jpeg_path).unwrap();
    assert!(jpeg.starts_with(&[0xff, 0xd8, 0xff]), "not a JPEG");
    let img = grender::output::picture::decode(&jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (300, 150));

    let out = render_to(&url, &png_path, "nope", &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[login-page]") && stderr.contains("Fix:"),
        "{stderr}"
    );
}

#[tokio::test]
async fn doctor_passes_a_healthy_setup() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let renderer = format!("http://{}/render", h.addr);
    let out = grender(strings(&[
        "doctor",
        "--renderer-url",
        &renderer,
        "--token",
        TOKEN,
        "--grafana-url",
        &h.stub.url("/"),
        "--render-key",
        RENDER_KEY,
        "--domain",
        "127.0.0.1",
        "--dashboard",
        "/d-solo/doctor/panel",
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "OK    chromium",
        "OK    renderer",
        "OK    token",
        "OK    grafana",
        "OK    render",
        "NOTE",
    ] {
        assert!(stdout.contains(check), "missing {check:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"));
    h.stop().await;
}

#[tokio::test]
async fn doctor_names_what_is_broken() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = grender(strings(&[
        "doctor",
        "--renderer-url",
        &format!("http://{}", h.addr),
        "--token",
        "wrong",
        "--grafana-url",
        &format!("http://127.0.0.1:{closed}/"),
        "--render-key",
        RENDER_KEY,
        "--domain",
        "127.0.0.1",
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  token") && stdout.contains("GF_RENDERING_RENDERER_TOKEN"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL  grafana: [connect-refused]") && stdout.contains("Fix:"),
        "{stdout}"
    );
    h.stop().await;
}

#[tokio::test]
async fn healthcheck_exits_0_only_for_a_healthy_service() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let ok = grender(strings(&[
        "healthcheck",
        &format!("--server.addr={}", h.addr),
    ]))
    .await;
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let bad = grender(strings(&[
        "healthcheck",
        &format!("--server.addr={closed}"),
    ]))
    .await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not reachable"));
    h.stop().await;
}

#[tokio::test]
async fn print_config_masks_tokens_and_names_sources() {
    let out = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_grender"))
            .args([
                "print-config",
                "--config=/dev/null",
                "--browser.min-width=1200",
            ])
            .env("AUTH_TOKEN", "first-secret,second-secret")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        !stdout.contains("first-secret") && stdout.contains("<2 secrets>"),
        "{stdout}"
    );
    assert!(stdout.contains("(env AUTH_TOKEN)"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.contains("browser.min-width")
            && l.contains("1200")
            && l.ends_with("(flag)")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("browser.max-width") && l.ends_with("(default)")),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_grafana_token_goes_to_the_target_origin_only() {
    if !common::chromium_available() {
        return;
    }
    let stub = GrafanaStub::start(Some(RENDER_KEY)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("panel.png");
    // The page also loads an image from another origin (the stand-in under another name).
    let probe = format!("http://localhost:{}", stub.addr.port());
    let url = stub.url(&format!(
        "/d-solo/token/panel?probe={}",
        url::form_urlencoded::byte_serialize(probe.as_bytes()).collect::<String>()
    ));
    let out = render_to(
        &url,
        &out_path,
        RENDER_KEY,
        &["--grafana-token", "glsa_secret"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = stub.seen_at("/d-solo/token/");
    let queries = stub.seen_at("/api/ds/query");
    assert!(!page.is_empty() && !queries.is_empty());
    for s in page.iter().chain(&queries) {
        assert_eq!(
            s.authorization.as_deref(),
            Some("Bearer glsa_secret"),
            "{}",
            s.path
        );
    }
    let probes = stub.seen_at("/probe.svg");
    assert!(!probes.is_empty(), "the other origin's image was requested");
    assert!(
        probes.iter().all(|s| s.authorization.is_none()),
        "the token went to another origin: {probes:?}"
    );
}
