//! Every refusal: status codes and one-line reasons, before and during rendering.

use crate::common;

use std::time::{Duration, Instant};

use common::{Harness, TOKEN};

const SOLO: &str = "/d-solo/uid1/panel";

#[tokio::test]
async fn missing_or_wrong_token_is_401_before_anything_else() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let url = h.render_url("file:///etc/passwd", &[]);
    for headers in [
        vec![],
        vec![("X-Auth-Token", "")],
        vec![("X-Auth-Token", " \t")],
        vec![("X-Auth-Token", "wrong")],
    ] {
        let r = h.get_with(&url, &headers).await;
        assert_eq!(r.status, 401, "{headers:?}: {}", r.text());
        assert!(r.text().contains("server.auth-token"), "{}", r.text());
    }
    h.stop().await;
}

#[tokio::test]
async fn legacy_grafana_without_a_token_is_accepted_only_when_opted_in() {
    let Some(h) = Harness::start(&["--server.allow-missing-token"]).await else {
        return;
    };
    let r = h
        .get_with(&h.render_url("file:///etc/passwd", &[]), &[])
        .await;
    assert_eq!(
        r.status,
        403,
        "passes auth, then the URL check refuses: {}",
        r.text()
    );
    let r = h
        .get_with(
            &h.render_url("file:///etc/passwd", &[]),
            &[("X-Auth-Token", "wrong")],
        )
        .await;
    assert_eq!(r.status, 401, "a wrong token is still refused");
    h.stop().await;
}

#[tokio::test]
async fn bad_urls_and_parameters_are_refused() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let auth = [("X-Auth-Token", TOKEN)];
    for bad in [
        "file:///etc/passwd",
        "chrome://version",
        "ftp://localhost:21/",
        "socket://localhost:8081/",
    ] {
        let r = h.get_with(&h.render_url(bad, &[]), &auth).await;
        assert_eq!(r.status, 403, "{bad}: {}", r.text());
    }
    let r = h.get_with(&h.url("/render"), &auth).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("missing 'url'"), "{}", r.text());
    assert_eq!(h.get_with(&h.url("/render?url="), &auth).await.status, 400);
    let target = h.dashboard(SOLO, "");
    for (k, v) in [
        ("width", "wide"),
        ("height", "1.5"),
        ("deviceScaleFactor", "0"),
        ("deviceScaleFactor", "-2"),
        ("deviceScaleFactor", "x"),
        ("timeout", "-3"),
        ("timeout", "soon"),
        ("encoding", "csv"),
        ("encoding", "gif"),
    ] {
        let r = h.get_with(&h.render_url(&target, &[(k, v)]), &auth).await;
        assert_eq!(r.status, 400, "{k}={v}: {}", r.text());
        assert!(r.text().contains(k), "{k}={v}: {}", r.text());
        assert_eq!(
            r.text().trim_end().lines().count(),
            1,
            "one line: {}",
            r.text()
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn request_timeout_gives_408_on_time() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let started = Instant::now();
    let r = h
        .render(
            &h.dashboard(SOLO, "delay=20000"),
            &[("height", "500"), ("timeout", "1")],
        )
        .await;
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(
        r.text().contains("timed out") && r.text().contains("waiting for panels"),
        "{}",
        r.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the deadline was not enforced"
    );
    // Go duration form.
    let r = h
        .render(
            &h.dashboard(SOLO, "delay=20000"),
            &[("height", "500"), ("timeout", "1500ms")],
        )
        .await;
    assert_eq!(r.status, 408, "{}", r.text());
    // The service still renders afterwards.
    assert_eq!(
        h.render(&h.dashboard(SOLO, ""), &[("height", "500")])
            .await
            .status,
        200
    );
    h.stop().await;
}

#[tokio::test]
async fn readiness_timeout_gives_408_with_what_was_missing() {
    let Some(h) = Harness::start(&["--browser.readiness.timeout=1s"]).await else {
        return;
    };
    let r = h
        .render(
            &h.dashboard(SOLO, "never=1"),
            &[("height", "500"), ("timeout", "30")],
        )
        .await;
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(
        r.text().contains("browser.readiness.timeout")
            && r.text().contains("queries still running"),
        "{}",
        r.text()
    );
    let r = h
        .render(
            &h.dashboard(SOLO, "never=1&mode=legacy"),
            &[("height", "500"), ("timeout", "30")],
        )
        .await;
    assert!(r.text().contains("0 of 1 panels rendered"), "{}", r.text());
    h.stop().await;
}

#[tokio::test]
async fn unreachable_grafana_names_the_callback_url() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    // A port nobody listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = h
        .render(
            &format!("http://127.0.0.1:{free}/d/x/y"),
            &[("height", "500")],
        )
        .await;
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("ERR_CONNECTION_REFUSED")
            && r.text().contains("GF_RENDERING_CALLBACK_URL"),
        "{}",
        r.text()
    );
    h.stop().await;
}

#[tokio::test]
async fn info_routes() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let r = h.get_with(&h.url("/render/version"), &[]).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, r#"{"version": "5.0.0"}"#)
    );
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(h.get_with(&h.url("/healthz"), &[]).await.text(), "OK");
    let v = h.get_with(&h.url("/version"), &[]).await.text();
    assert!(
        v.starts_with("grender ") && v.contains("\nbrowser HeadlessChrome/"),
        "{v}"
    );
    assert_eq!(h.get_with(&h.url("/"), &[]).await.status, 200);
    assert_eq!(h.get_with(&h.url("/nope"), &[]).await.status, 404);
    let r = h
        .client
        .post(h.url("/render"))
        .header("X-Auth-Token", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    h.stop().await;
}

#[tokio::test]
async fn each_failure_class_has_its_code_and_fix() {
    let Some(h) = Harness::start(&[
        "--browser.readiness.timeout=2s",
        "--browser.readiness.give-up-on-first-query=500ms",
    ])
    .await
    else {
        return;
    };
    let cases: [(String, &str, &str); 4] = [
        (
            h.dashboard(SOLO, "assets=1"),
            "[grafana-assets-failed]",
            "root_url",
        ),
        (
            h.dashboard(SOLO, "throw=1"),
            "[page-script-error]",
            "panel plugin not found",
        ),
        (
            h.dashboard(SOLO, "never=1"),
            "[readiness-timeout]",
            "/api/ds/query",
        ),
        (
            format!("http://127.0.0.1:{}/d/x/y", free_port()),
            "[connect-refused]",
            "GF_RENDERING_CALLBACK_URL",
        ),
    ];
    for (target, code, fix) in cases {
        let r = h
            .render(&target, &[("height", "500"), ("timeout", "30")])
            .await;
        let body = r.text();
        assert!(body.starts_with(code), "{target}: {body}");
        assert!(
            body.contains(fix) && body.contains("Fix:"),
            "{target}: {body}"
        );
        assert!(r.headers.contains_key("x-request-id"));
    }
    // The login page: its own code.
    let url = h.render_url(
        &h.dashboard(SOLO, ""),
        &[
            ("renderKey", "stale"),
            ("domain", "127.0.0.1"),
            ("height", "500"),
        ],
    );
    let r = h.get_with(&url, &[("X-Auth-Token", TOKEN)]).await;
    assert!(
        r.text().starts_with("[login-page]") && r.text().contains("Fix:"),
        "{}",
        r.text()
    );
    h.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn allowed_origins_hold_for_redirects_and_optionally_for_sub_resources() {
    let Some(h) = Harness::start_for(|stub| {
        vec![
            format!(
                "--server.allowed-origin=http://127.0.0.1:{}",
                stub.addr.port()
            ),
            "--server.block-other-hosts".into(),
        ]
    })
    .await
    else {
        return;
    };
    let port = h.stub.addr.port();
    // A target outside the origins: refused before anything loads.
    let r = h
        .render(
            &format!("http://localhost:{port}/d-solo/a/b"),
            &[("height", "500")],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // A redirect of the main frame to another origin (localhost is not 127.0.0.1).
    let away = format!("http://localhost:{port}/d-solo/a/b");
    let target = h.stub.url(&format!(
        "/redirect?to={}",
        url::form_urlencoded::byte_serialize(away.as_bytes()).collect::<String>()
    ));
    let r = h.render(&target, &[("height", "500")]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().starts_with("[forbidden-url]") && r.text().contains("localhost"),
        "{}",
        r.text()
    );
    // A redirect inside the origins is fine, and a sub-resource elsewhere is blocked.
    let inside = h.stub.url(&format!(
        "/redirect?to={}",
        url::form_urlencoded::byte_serialize(
            format!("/d-solo/a/b?probe=http://localhost:{port}").as_bytes()
        )
        .collect::<String>()
    ));
    let r = h.render(&inside, &[("height", "500")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        h.stub.seen_at("/probe.svg").is_empty(),
        "the sub-resource from another origin was fetched"
    );
    h.stop().await;
}

/// Whether any pixel on a coarse grid of the picture is pure red.
fn shows_red(r: &common::Rendered) -> bool {
    let img = r.png();
    (0..img.width).step_by(25).any(|x| {
        (0..img.height)
            .step_by(25)
            .any(|y| common::close(img.rgb(x, y), [255, 0, 0]))
    })
}

#[tokio::test]
async fn local_files_and_browser_pages_stay_out_of_reach_by_default() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let red = dir.path().join("red.html");
    std::fs::write(
        &red,
        "<html><body style=\"margin:0;background:rgb(255,0,0)\"></body></html>",
    )
    .expect("writes");
    let file_url = format!("file://{}", red.display());
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let red_data = "data:text/html,<body style=\"margin:0;background:rgb(255,0,0)\"></body>";

    // Control: a data: iframe is allowed and covers the panel, so red shows when a frame loads.
    let r = h
        .render(
            &h.stub.url(&format!("{SOLO}?frame={}", enc(red_data))),
            &[("height", "500")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(shows_red(&r), "the control frame did not show");

    // Frames the page may not show: local files (directly, through a redirect, as source).
    let redirect_to_file = h.stub.url(&format!("/redirect?to={}", enc(&file_url)));
    for frame in [
        file_url.clone(),
        redirect_to_file.clone(),
        format!("view-source:{file_url}"),
        "chrome://version".to_string(),
    ] {
        let r = h
            .render(
                &h.stub.url(&format!("{SOLO}?frame={}", enc(&frame))),
                &[("height", "500")],
            )
            .await;
        assert_eq!(r.status, 200, "{frame}: {}", r.text());
        assert!(!shows_red(&r), "{frame} was shown in a frame");
    }

    // The main frame may not be redirected to a local file or a data: page.
    for to in [file_url.as_str(), red_data] {
        let r = h
            .render(
                &h.stub.url(&format!("/redirect?to={}", enc(to))),
                &[("height", "500")],
            )
            .await;
        assert!(r.status >= 400, "redirect to {to} answered {}", r.status);
        assert!(!r.text().is_empty(), "no reason given");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_navigation_that_never_finishes_ends_at_the_requests_deadline_saying_so() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    // Past the CDP client's own fixed 30 s navigation limit: that limit is no verdict.
    let r = h
        .render(
            &h.stub.url("/hang"),
            &[("height", "500"), ("timeout", "34")],
        )
        .await;
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(r.text().starts_with("[request-timeout]"), "{}", r.text());
    assert!(r.text().contains("loading the page"), "{}", r.text());
    assert!(!r.text().contains("target-unreachable"), "{}", r.text());
    h.stop().await;
}
