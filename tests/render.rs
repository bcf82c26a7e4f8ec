//! End-to-end renders: real Chromium, real HTTP on loopback, the Grafana stand-in.

use crate::common;

use common::{Harness, RENDER_KEY, TOKEN};

const SOLO: &str = "/d-solo/uid1/panel";
const DASH: &str = "/d/uid1/dashboard";

#[tokio::test]
async fn png_size_is_viewport_times_scale_and_panel_is_drawn() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let img = h
        .render(
            &h.dashboard(SOLO, "delay=200"),
            &[
                ("width", "1200"),
                ("height", "600"),
                ("deviceScaleFactor", "2"),
            ],
        )
        .await
        .png();
    assert_eq!((img.width, img.height), (2400, 1200));
    assert!(
        img.is_drawn(2300, 600),
        "panel not drawn: {:?}",
        img.rgb(2300, 600)
    );

    // Grafana 7/8 format the scale as %f.
    let img = h
        .render(
            &h.dashboard(SOLO, ""),
            &[
                ("width", "1000"),
                ("height", "500"),
                ("deviceScaleFactor", "1.000000"),
            ],
        )
        .await
        .png();
    assert_eq!((img.width, img.height), (1000, 500));
    h.stop().await;
}

#[tokio::test]
async fn sizes_below_the_minimum_are_raised_and_scale_is_clamped() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let img = h
        .render(&h.dashboard(SOLO, ""), &[("width", "1"), ("height", "1")])
        .await
        .png();
    assert_eq!((img.width, img.height), (1000, 500));
    let img = h
        .render(
            &h.dashboard(SOLO, ""),
            &[
                ("width", "1000"),
                ("height", "500"),
                ("deviceScaleFactor", "10"),
            ],
        )
        .await
        .png();
    assert_eq!(
        (img.width, img.height),
        (4000, 2000),
        "scale clamped to browser.max-page-scale-factor 4"
    );
    h.stop().await;
}

#[tokio::test]
async fn absent_height_captures_the_full_page_with_lazy_panels_drawn() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    // Header 50 px + 6 panels × 300 px; panels below the first screen load lazily.
    let target = h.dashboard(DASH, "panels=6&panelHeight=300&lazy=1&delay=100");
    let img = h.render(&target, &[("width", "1000")]).await.png();
    assert_eq!((img.width, img.height), (1000, 1850));
    for panel in 0..6 {
        let y = 50 + panel * 300 + 150;
        assert!(
            img.is_drawn(900, y),
            "panel {panel} not drawn at y={y}: {:?}",
            img.rgb(900, y)
        );
    }
    let img = h
        .render(
            &target,
            &[
                ("width", "1000"),
                ("height", "-1"),
                ("deviceScaleFactor", "0.5"),
            ],
        )
        .await
        .png();
    assert_eq!(
        (img.width, img.height),
        (500, 925),
        "height=-1 is full page too"
    );

    // A page shorter than ¾ of the width stays at that height.
    let img = h
        .render(
            &h.dashboard(DASH, "panels=1&panelHeight=200"),
            &[("width", "1000")],
        )
        .await
        .png();
    assert_eq!((img.width, img.height), (1000, 750));
    h.stop().await;
}

#[tokio::test]
async fn each_readiness_mode_waits_for_drawn_panels() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    for mode in ["scenes", "binding", "legacy"] {
        let img = h
            .render(
                &h.dashboard(SOLO, &format!("mode={mode}&delay=600")),
                &[("width", "1000"), ("height", "500")],
            )
            .await
            .png();
        assert!(
            img.is_drawn(900, 250),
            "{mode}: captured before the panel drew: {:?}",
            img.rgb(900, 250)
        );
        let img = h
            .render(
                &h.dashboard(DASH, &format!("mode={mode}&delay=300&panels=4")),
                &[("width", "1000"), ("height", "1000")],
            )
            .await
            .png();
        for y in [200, 500, 800] {
            assert!(
                img.is_drawn(900, y),
                "{mode}: dashboard panel at y={y} not drawn: {:?}",
                img.rgb(900, y)
            );
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn a_panel_whose_query_takes_two_seconds_is_captured_drawn() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let img = h
        .render(
            &h.dashboard(SOLO, "delay=2000"),
            &[("width", "1000"), ("height", "500"), ("timeout", "30")],
        )
        .await
        .png();
    assert!(img.is_drawn(500, 400), "{:?}", img.rgb(500, 400));
    h.stop().await;
}

/// The picture is taken while the last quiet frames pass (early capture); a page that
/// changes after that picture was taken but before readiness would have been reached (here
/// four frames after its last query, by a canvas draw without any DOM change, or by a style
/// change) gets a picture taken after the change, never the early one.
#[tokio::test]
async fn a_change_during_the_last_quiet_frames_is_in_the_picture() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let early = |metrics: &str, outcome: &str| {
        let name = format!("grender_early_capture_total{{outcome=\"{outcome}\"}}");
        common::metric_value(metrics, &name) as u64
    };
    // A page that does not change: its picture is taken early (and kept, unless the loaded
    // machine made a frame late: then it is taken again, to be safe).
    let img = h
        .render(
            &h.dashboard(SOLO, ""),
            &[("width", "600"), ("height", "300")],
        )
        .await
        .png();
    assert!(img.is_drawn(300, 150), "{:?}", img.rgb(300, 150));
    let metrics = h.get_with(&h.url("/metrics"), &[]).await.text();
    let tried = early(&metrics, "kept") + early(&metrics, "discarded");
    assert_eq!(tried, 1, "{metrics}");
    // Each kind of change throws away early pictures (at least one of two: on a loaded
    // machine a late frame can delay the early picture past the change, then it is right).
    for late in ["canvas", "dom"] {
        let before = early(
            &h.get_with(&h.url("/metrics"), &[]).await.text(),
            "discarded",
        );
        for _ in 0..2 {
            let img = h
                .render(
                    &h.dashboard(SOLO, &format!("late={late}")),
                    &[("width", "1600"), ("height", "1200")],
                )
                .await
                .png();
            assert!(
                common::close(img.rgb(800, 600), grafana_stub::LATE_AFTER_RGB),
                "late={late}: the picture shows the page before its change: {:?}",
                img.rgb(800, 600)
            );
        }
        let metrics = h.get_with(&h.url("/metrics"), &[]).await.text();
        assert!(
            early(&metrics, "discarded") > before,
            "late={late}: no early picture was thrown away: {metrics}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn binding_failure_report_is_an_error_not_a_picture() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let r = h
        .render(
            &h.dashboard(SOLO, "mode=binding&fail=1"),
            &[("height", "500")],
        )
        .await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("stand-in panel failed"), "{}", r.text());
    h.stop().await;
}

#[tokio::test]
async fn a_plain_page_without_grafana_signals_is_captured() {
    let Some(h) = Harness::start(&["--browser.readiness.give-up-on-first-query=300ms"]).await
    else {
        return;
    };
    let img = h.render(&h.stub.url("/"), &[("height", "500")]).await.png();
    assert_eq!((img.width, img.height), (1000, 500));
    assert!(common::close(img.rgb(900, 400), [255, 255, 255]));
    h.stop().await;
}

#[tokio::test]
async fn login_redirect_is_a_clear_error() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let url = h.render_url(
        &h.dashboard(SOLO, ""),
        &[
            ("renderKey", "expired"),
            ("domain", "127.0.0.1"),
            ("height", "500"),
        ],
    );
    let r = h.get_with(&url, &[("X-Auth-Token", TOKEN)]).await;
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("login page") && r.text().contains("render key"),
        "{}",
        r.text()
    );
    assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
    h.stop().await;
}

#[tokio::test]
async fn render_key_cookie_goes_to_the_given_domain_only() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    // The page also loads an image from localhost: a different cookie domain.
    let probe = format!("http://localhost:{}", h.stub.addr.port());
    let target = h.dashboard(
        SOLO,
        &format!(
            "probe={}",
            url::form_urlencoded::byte_serialize(probe.as_bytes()).collect::<String>()
        ),
    );
    let r = h.render(&target, &[("height", "500")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let page = h.stub.seen_at(SOLO);
    assert_eq!(
        page.last().and_then(|s| s.render_key.clone()).as_deref(),
        Some(RENDER_KEY)
    );
    let queries = h.stub.seen_at("/api/ds/query");
    assert!(
        queries
            .iter()
            .all(|s| s.render_key.as_deref() == Some(RENDER_KEY)),
        "data requests carry the cookie"
    );
    let probes = h.stub.seen_at("/probe.svg");
    assert!(!probes.is_empty(), "the probe image was requested");
    assert!(
        probes.iter().all(|s| s.render_key.is_none()),
        "cookie leaked to another domain: {probes:?}"
    );

    // The cookie set for another domain does not reach 127.0.0.1: Grafana sends to login.
    let url = h.render_url(
        &h.dashboard(SOLO, ""),
        &[
            ("renderKey", RENDER_KEY),
            ("domain", "localhost"),
            ("height", "500"),
        ],
    );
    let r = h.get_with(&url, &[("X-Auth-Token", TOKEN)]).await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("login page"), "{}", r.text());
    h.stop().await;
}

/// The stand-in's report of what its page found left behind (`ls`, `ss`, `ck`, `idb`).
fn leftovers(h: &Harness, uid: &str) -> String {
    let reports = h.stub.seen_at("/api/report");
    let dash = h
        .stub
        .seen()
        .into_iter()
        .filter(|s| s.path.contains(&format!("/{uid}/")))
        .count();
    assert!(dash > 0, "{uid} was never loaded");
    reports.last().map(|r| r.query.clone()).unwrap_or_default()
}

/// Renders `uid` with its own render key.
async fn render_as(h: &Harness, uid: &str, key: &str) -> common::Rendered {
    h.stub.allow_key(key);
    let url = h.render_url(
        &h.stub.url(&format!("/d-solo/{uid}/p")),
        &[
            ("renderKey", key),
            ("domain", "127.0.0.1"),
            ("height", "500"),
        ],
    );
    h.get_with(&url, &[("X-Auth-Token", TOKEN)]).await
}

async fn assert_nothing_leaks_between_sequential_renders(h: &Harness) {
    assert_eq!(render_as(h, "alice", "key-alice").await.status, 200);
    let r = render_as(h, "bob", "key-bob").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let report = leftovers(h, "bob");
    for leftover in ["ls=alice", "ss=alice", "ck=grender_test", "idb=alice"] {
        assert!(
            !report.contains(leftover),
            "bob's render found alice's {leftover}: {report}"
        );
    }
    assert!(report.contains("ls=&ss=&ck=&idb="), "{report}");
    let bob = h.stub.seen_at("/d-solo/bob/");
    let cookies = &bob.last().expect("bob loaded").cookies;
    assert_eq!(
        cookies, "renderKey=key-bob",
        "server-set or page cookies leaked"
    );
    // Without a render key, nothing from earlier renders logs the browser in.
    let url = h.render_url(&h.dashboard(SOLO, ""), &[("height", "500")]);
    let r = h.get_with(&url, &[("X-Auth-Token", TOKEN)]).await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("login page"));
}

#[tokio::test]
async fn a_reused_context_keeps_no_cookies_or_storage_of_the_last_render() {
    // One tab: every render reuses the same scrubbed context.
    let Some(h) = Harness::start(&["--render.concurrency=1"]).await else {
        return;
    };
    assert_nothing_leaks_between_sequential_renders(&h).await;
    let opened = h.browser().tabs.opened();
    assert_eq!(opened, 1, "the context was not reused");
    h.stop().await;
}

#[tokio::test]
async fn fresh_contexts_per_render_keep_nothing_either() {
    let Some(h) = Harness::start(&["--render.concurrency=1", "--browser.context-reuse=1"]).await
    else {
        return;
    };
    assert_nothing_leaks_between_sequential_renders(&h).await;
    let opened = h.browser().tabs.opened();
    assert!(
        opened >= 3,
        "expected a context per render, opened {opened}"
    );
    h.stop().await;
}

/// Renders one right after another keep using the one warm context: the next waits the
/// few milliseconds its tab's scrub takes instead of opening a cold context (which costs a
/// render ~0.5 s on Grafana's real frontend).
#[tokio::test]
async fn renders_one_after_another_stay_in_the_warm_context() {
    let Some(h) = Harness::start(&["--render.concurrency=3"]).await else {
        return;
    };
    for n in 0..6 {
        let target = h.dashboard(&format!("/d-solo/seq{n}/p"), "");
        assert_eq!(h.render(&target, &[("height", "500")]).await.status, 200);
    }
    assert_eq!(
        h.browser().tabs.opened(),
        1,
        "a render opened a new context while the last one's tab was being scrubbed"
    );
    h.stop().await;
}

#[tokio::test]
async fn idle_tabs_are_given_back_down_to_one_warm_tab() {
    let Some(h) = Harness::start(&["--render.concurrency=3", "--browser.idle-timeout=1s"]).await
    else {
        return;
    };
    let panel = |n: u32| h.dashboard(&format!("/d-solo/idle{n}/p"), "delay=500");
    async fn burst(h: &Harness, from: u32) {
        let panel = |n: u32| h.dashboard(&format!("/d-solo/idle{n}/p"), "delay=500");
        let (p0, p1, p2) = (panel(from), panel(from + 1), panel(from + 2));
        let (a, b, c) = tokio::join!(
            h.render(&p0, &[("height", "500")]),
            h.render(&p1, &[("height", "500")]),
            h.render(&p2, &[("height", "500")]),
        );
        for r in [a, b, c] {
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }
    burst(&h, 0).await;
    let browser = h.browser();
    let opened = browser.tabs.opened();
    assert_eq!(opened, 3, "three renders at once use three contexts");
    // Idle for longer than browser.idle-timeout: down to one warm tab.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while browser.tabs.counts() != (1, 1) {
        assert!(
            std::time::Instant::now() < until,
            "tabs (idle, total) {:?} after idling",
            browser.tabs.counts()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The next render takes the warm tab: no context is opened for it.
    assert_eq!(h.render(&panel(10), &[("height", "500")]).await.status, 200);
    assert_eq!(browser.tabs.opened(), opened);
    // A new burst opens what it needs again.
    burst(&h, 20).await;
    assert!(
        browser.tabs.opened() >= opened + 2,
        "{}",
        browser.tabs.opened()
    );
    h.stop().await;
}

#[tokio::test]
async fn concurrent_renders_each_carry_only_their_own_render_key() {
    let Some(h) = Harness::start(&["--render.concurrency=4"]).await else {
        return;
    };
    let users = ["u1", "u2", "u3", "u4", "u5", "u6"];
    let hr = &h;
    let renders = users.iter().map(|u| async move {
        let h = hr;
        h.stub.allow_key(&format!("key-{u}"));
        let url = h.render_url(
            &h.stub.url(&format!("/d-solo/{u}/p?delay=300")),
            &[
                ("renderKey", &format!("key-{u}")),
                ("domain", "127.0.0.1"),
                ("height", "500"),
            ],
        );
        h.get_with(&url, &[("X-Auth-Token", TOKEN)]).await
    });
    for r in futures::future::join_all(renders).await {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for u in users {
        let key = format!("renderKey=key-{u}");
        // Its own cookies only: the render key, and what its own page set.
        let own = |cookies: &str| {
            cookies.contains(&key)
                && cookies
                    .split("; ")
                    .all(|c| c.ends_with(&format!("={u}")) || c == key)
        };
        let page = h.stub.seen_at(&format!("/d-solo/{u}/"));
        let queries: Vec<_> = h
            .stub
            .seen_at("/api/ds/query")
            .into_iter()
            .filter(|s| s.query.contains(&format!("uid={u}&")))
            .collect();
        assert!(!page.is_empty() && !queries.is_empty());
        for s in page.iter().chain(&queries) {
            assert!(own(&s.cookies), "{u}: {} carried {}", s.path, s.cookies);
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn timezone_is_applied_and_invalid_falls_back_to_the_default() {
    let Some(h) = Harness::start(&["--browser.timezone=Europe/Paris"]).await else {
        return;
    };
    let reported = |h: &Harness| {
        h.stub
            .seen_at("/api/report")
            .last()
            .map(|s| s.query.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        h.render(
            &h.dashboard(SOLO, ""),
            &[("height", "500"), ("timezone", "Asia/Tokyo")]
        )
        .await
        .status,
        200
    );
    assert!(reported(&h).contains("tz=Asia%2FTokyo"), "{}", reported(&h));
    assert_eq!(
        h.render(
            &h.dashboard(SOLO, ""),
            &[("height", "500"), ("timezone", "Mars/Olympus")]
        )
        .await
        .status,
        200
    );
    assert!(
        reported(&h).contains("tz=Europe%2FParis"),
        "{}",
        reported(&h)
    );
    assert_eq!(
        h.render(&h.dashboard(SOLO, ""), &[("height", "500")])
            .await
            .status,
        200
    );
    assert!(
        reported(&h).contains("tz=Europe%2FParis"),
        "{}",
        reported(&h)
    );
    h.stop().await;
}

#[tokio::test]
async fn accept_language_reaches_every_browser_request() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let url = h.render_url(
        &h.dashboard(SOLO, ""),
        &[
            ("renderKey", RENDER_KEY),
            ("domain", "127.0.0.1"),
            ("height", "500"),
        ],
    );
    let r = h
        .get_with(
            &url,
            &[("X-Auth-Token", TOKEN), ("Accept-Language", "de-DE")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for path in [SOLO, "/api/ds/query"] {
        let seen = h.stub.seen_at(path);
        assert!(
            !seen.is_empty()
                && seen
                    .iter()
                    .all(|s| s.accept_language.as_deref() == Some("de-DE")),
            "{path}: {seen:?}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn every_grafana_era_request_shape_renders() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let target = h.dashboard(SOLO, "orgId=1&panelId=2&render=1");
    type Era<'a> = (&'a str, &'a [(&'a str, &'a str)], (u32, u32));
    let eras: [Era; 5] = [
        // Grafana 6: no scale, empty encoding, timeout in seconds.
        (
            "6.x",
            &[
                ("width", "800"),
                ("height", "400"),
                ("timezone", ""),
                ("encoding", ""),
                ("timeout", "60"),
            ],
            (1000, 500),
        ),
        // Grafana 7/8: scale formatted with %f.
        (
            "7/8",
            &[
                ("width", "1000"),
                ("height", "500"),
                ("deviceScaleFactor", "1.000000"),
                ("encoding", ""),
                ("timeout", "30"),
            ],
            (1000, 500),
        ),
        // Grafana 10/11: explicit png.
        (
            "10/11",
            &[
                ("width", "1200"),
                ("height", "600"),
                ("deviceScaleFactor", "2.000000"),
                ("encoding", "png"),
                ("timezone", "browser"),
                ("timeout", "60"),
            ],
            (2400, 1200),
        ),
        // Grafana 13: height=-1 for full height.
        (
            "13",
            &[
                ("width", "1000"),
                ("height", "-1"),
                ("deviceScaleFactor", "1.000000"),
                ("encoding", "png"),
                ("timezone", "UTC"),
                ("timeout", "60"),
            ],
            (1000, 750),
        ),
        // Grafana's /render API defaults (800×400, tz offset) go through unchanged.
        (
            "api",
            &[
                ("width", "800"),
                ("height", "400"),
                ("timezone", "UTC-02:00"),
                ("timeout", "60"),
            ],
            (1000, 500),
        ),
    ];
    for (era, params, size) in eras {
        let url = h.render_url(
            &target,
            &[
                &[("renderKey", RENDER_KEY), ("domain", "127.0.0.1")],
                params,
            ]
            .concat(),
        );
        let r = h
            .get_with(
                &url,
                &[
                    ("X-Auth-Token", TOKEN),
                    ("User-Agent", "Grafana/10.4.0"),
                    ("X-Tenant-ID", "127.0.0.1"),
                ],
            )
            .await;
        let img = r.png();
        assert_eq!((img.width, img.height), size, "Grafana {era}");
        assert!(
            img.is_drawn(size.0 / 2, size.1 / 2),
            "Grafana {era}: panel not drawn"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn browser_override_applies_to_matching_urls_only() {
    // The official acceptance test TestRequestConfigOverrides, on the stand-in.
    let Some(h) = Harness::start(&[
        "--browser.min-width=1000",
        "--browser.min-height=1000",
        "--browser.override=very-long-prometheus-dashboard=--browser.min-width=500 --browser.min-height=500",
    ])
    .await
    else {
        return;
    };
    let img = h
        .render(
            &h.dashboard("/d-solo/other/panel", ""),
            &[("width", "1"), ("height", "1")],
        )
        .await
        .png();
    assert_eq!((img.width, img.height), (1000, 1000));
    let img = h
        .render(
            &h.dashboard("/d-solo/x/very-long-prometheus-dashboard", ""),
            &[("width", "1"), ("height", "1")],
        )
        .await
        .png();
    assert_eq!((img.width, img.height), (500, 500));
    h.stop().await;
}
