//! Warm app reuse (`--render.reuse-app`) on Grafana's real frontend code: the pictures a
//! reused app draws equal cold renders of the same requests, an app is only ever reused by
//! its own verified viewer, and every doubt (a revoked key, another Grafana build, leftovers
//! of a hostile page) ends in a cold render.

use crate::common;

use std::time::Duration;

use common::{Harness, Image, RENDER_KEY, TOKEN, jwt};
use grafana_stub::frontend as app;

/// Renders `target` as the viewer holding render key `key` (allowed by the stand-in first).
async fn render_as(
    h: &Harness,
    key: &str,
    target: &str,
    params: &[(&str, &str)],
) -> common::Rendered {
    h.stub.allow_key(key);
    let mut all = vec![("renderKey", key), ("domain", "127.0.0.1")];
    all.extend_from_slice(params);
    h.get_with(&h.render_url(target, &all), &[("X-Auth-Token", TOKEN)])
        .await
}

/// The reuse counter with these labels.
fn reuse_count(h: &Harness, outcome: &str, reason: &str) -> u64 {
    h.count(&format!(
        "grender_app_reuse_total{{outcome=\"{outcome}\",reason=\"{reason}\"}}"
    ))
}

/// [`render_as`], expecting a picture.
async fn render_ok(
    h: &Harness,
    key: &str,
    target: &str,
    params: &[(&str, &str)],
) -> common::Rendered {
    let r = render_as(h, key, target, params).await;
    assert_eq!(r.status, 200, "{target}: {}", r.text());
    r
}

/// Asserts the reuse counter with these labels; shows every metric when it differs.
fn assert_reuse(h: &Harness, outcome: &str, reason: &str, expected: u64) {
    assert_eq!(
        reuse_count(h, outcome, reason),
        expected,
        "{}",
        h.service.metrics_text()
    );
}

/// A fixed time range (deterministic data), as Grafana's render URLs carry.
const FROM: &str = "1764547200000";
const TO: &str = "1764568800000";

/// The `kinds` dashboard's panel `id` alone, over the fixed time range.
fn kinds_panel(h: &Harness, id: u32) -> String {
    h.stub.url(&format!(
        "/d-solo/{}/x?panelId={id}&from={FROM}&to={TO}",
        app::KINDS
    ))
}

/// Requests of one viewer that alternate dashboards, panels, variables, time ranges, time
/// zones, themes and sizes: (path and query, width, height, time zone).
fn corpus() -> Vec<(String, &'static str, &'static str, &'static str)> {
    let range = format!("from={FROM}&to={TO}");
    let later = "from=1764568800000&to=1764590400000";
    vec![
        (
            format!(
                "/d-solo/{}/x?panelId={}&{range}",
                app::KINDS,
                app::KINDS_TIMESERIES
            ),
            "1000",
            "500",
            "Etc/UTC",
        ),
        (
            format!(
                "/d-solo/{}/x?panelId={}&{range}",
                app::KINDS,
                app::KINDS_STAT
            ),
            "1000",
            "500",
            "Etc/UTC",
        ),
        (
            format!("/d/{}/x?kiosk&{range}", app::KINDS),
            "1200",
            "900",
            "Etc/UTC",
        ),
        (
            format!(
                "/d-solo/{}/x?panelId={}&{later}",
                app::KINDS,
                app::KINDS_TIMESERIES
            ),
            "1000",
            "500",
            "Asia/Tokyo",
        ),
        (
            format!("/d/{}/x?kiosk&{range}&var-server=beta", app::REPEAT),
            "1200",
            "700",
            "Etc/UTC",
        ),
        (
            format!(
                "/d/{}/x?kiosk&{range}&var-server=alpha&var-server=gamma",
                app::REPEAT
            ),
            "1200",
            "700",
            "America/New_York",
        ),
        (
            format!(
                "/d-solo/{}/x?panelId={}&{range}",
                app::KINDS,
                app::KINDS_TABLE
            ),
            "800",
            "400",
            "Etc/UTC",
        ),
        (
            format!(
                "/d-solo/{}/x?panelId={}&{range}&theme=light",
                app::KINDS,
                app::KINDS_BARCHART
            ),
            "1000",
            "500",
            "Etc/UTC",
        ),
        (
            format!(
                "/d-solo/{}/x?panelId={}&{range}",
                app::KINDS,
                app::KINDS_BARCHART
            ),
            "1000",
            "500",
            "Etc/UTC",
        ),
        (
            format!("/d/{}/x?kiosk&{range}", app::ROWS),
            "1200",
            "900",
            "Etc/UTC",
        ),
        (
            format!(
                "/d-solo/{}/x?panelId={}&{range}",
                app::KINDS,
                app::KINDS_TIMESERIES
            ),
            "600",
            "300",
            "Etc/UTC",
        ),
        (
            format!(
                "/d-solo/{}/x?panelId={}&{range}",
                app::KINDS,
                app::KINDS_TIMESERIES
            ),
            "600",
            "300",
            "Etc/UTC",
        ),
    ]
}

/// Pixels of `a` and `b` (same size) differing by more than `tolerance` in any channel.
fn differing(a: &Image, b: &Image, tolerance: u8) -> usize {
    assert_eq!((a.width, a.height), (b.width, b.height));
    let mut n = 0;
    for y in 0..a.height {
        for x in 0..a.width {
            let (p, q) = (a.rgb(x, y), b.rgb(x, y));
            if p.iter().zip(q).any(|(u, v)| u.abs_diff(v) > tolerance) {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test]
async fn reused_apps_draw_the_same_pictures_as_cold_renders() {
    let Some(h) = Harness::start_frontend(&["--render.reuse-app", "--render.concurrency=3"]).await
    else {
        return;
    };
    let viewer = jwt(7, 600, TOKEN);
    let corpus = corpus();
    for (i, (path, width, height, tz)) in corpus.iter().enumerate() {
        let target = h.stub.url(path);
        let params = [("width", *width), ("height", *height), ("timezone", *tz)];
        let reused_before = reuse_count(&h, "reused", "");
        let queries_before = h.stub.seen_at("/api/ds/query").len();
        let warm = render_as(&h, &viewer, &target, &params).await;
        assert_eq!(warm.status, 200, "{i} {path}: {}", warm.text());
        let was_reused = reuse_count(&h, "reused", "") > reused_before;
        // A scene the app kept from an earlier request (3, 10, 11: the same panel again)
        // holds that request's data; the picture must show data asked for now.
        assert!(
            h.stub.seen_at("/api/ds/query").len() > queries_before,
            "{i} {path}: the render asked Grafana for no data (reused: {was_reused})"
        );
        // The same request with an opaque key renders cold.
        let cold = render_as(&h, RENDER_KEY, &target, &params).await;
        assert_eq!(cold.status, 200, "{i} {path}: {}", cold.text());
        let (warm_png, cold_png) = (warm.png(), cold.png());
        let same = |a: &Image, b: &Image| {
            // Anti-aliasing of the panels' rounded corners may differ by one step between two
            // renders of the same page (measured: up to 22 pixels on the 3 panels of `rows`,
            // under load); nothing else may.
            let (diff, off) = (differing(a, b, 0), differing(a, b, 2));
            (off == 0 && diff <= 40, diff, off)
        };
        let (ok, diff, off) = same(&warm_png, &cold_png);
        eprintln!(
            "{i} {path} tz={tz} reused={was_reused}: {diff} pixels differ, {off} by more than 2"
        );
        if !ok {
            // Which one is wrong? A second cold render tells.
            let again = render_as(&h, RENDER_KEY, &target, &params).await.png();
            let dir = std::env::temp_dir();
            for (name, body) in [("warm", &warm.body), ("cold", &cold.body)] {
                let _ = std::fs::write(dir.join(format!("grender-reuse-{i}-{name}.png")), body);
            }
            panic!(
                "{i} {path}: the reused app's picture differs from the cold one ({diff} pixels, {off} by more than 2); \
                 a second cold render matches the reused one: {}, the first cold one: {} (pictures in {})",
                same(&warm_png, &again).0,
                same(&cold_png, &again).0,
                dir.display()
            );
        }
    }
    let reused = reuse_count(&h, "reused", "");
    let fallbacks: u64 = [
        "navigated",
        "route-unchanged",
        "key-refused",
        "build-changed",
        "console-error",
        "script-error",
        "timeout",
        "readiness",
        "page",
        "not-scenes",
        "out-of-order",
        "cdp",
        "capture",
        "crashed",
        "refused-origin",
        "stale-data",
        "revisited-state",
    ]
    .iter()
    .map(|r| reuse_count(&h, "fallback", r))
    .sum();
    // The first render of each theme and kiosk mode boots an app (0, 2, 7); every other one
    // of the viewer reuses it, but for the `repeat` dashboard shown again (5): its kept
    // scene's query variable would keep the options of its first visit.
    assert_eq!(fallbacks, 0, "{}", h.service.metrics_text());
    assert_reuse(&h, "fallback", "revisited-variables", 1);
    assert_reuse(&h, "cold", "no-app", 3);
    assert_eq!(
        reused,
        corpus.len() as u64 - 4,
        "{}",
        h.service.metrics_text()
    );
    assert_eq!(
        reuse_count(&h, "cold", "unverified-key"),
        corpus.len() as u64
    );
    h.stop().await;
}

#[tokio::test]
async fn an_app_is_only_ever_reused_by_its_own_viewer() {
    let Some(h) = Harness::start_frontend(&["--render.reuse-app", "--render.concurrency=2"]).await
    else {
        return;
    };
    let (ann, bob) = (7, 8);
    let target = kinds_panel(&h, app::KINDS_TIMESERIES);
    let params = [("width", "800"), ("height", "400")];
    // Grafana signs a new key for every render; the viewer is what they share.
    let plan = [
        (ann, "cold"),
        (ann, "reused"),
        (bob, "cold"),
        (bob, "reused"),
        (ann, "reused"),
        (bob, "reused"),
    ];
    for (i, (user, expected)) in plan.into_iter().enumerate() {
        let key = jwt(user, 600 + i as i64, TOKEN);
        let (reused, cold) = (
            reuse_count(&h, "reused", ""),
            reuse_count(&h, "cold", "no-app"),
        );
        let seen_before = h.stub.seen_at("/api/ds/query").len();
        let r = render_as(&h, &key, &target, &params).await;
        assert_eq!(r.status, 200, "render {i}: {}", r.text());
        let outcome = if reuse_count(&h, "reused", "") > reused {
            "reused"
        } else if reuse_count(&h, "cold", "no-app") > cold {
            "cold"
        } else {
            "other"
        };
        assert_eq!(outcome, expected, "render {i} of user {user}");
        // Every query of this render carried this render's own key.
        let queries = h.stub.seen_at("/api/ds/query");
        let keys: Vec<_> = queries[seen_before..]
            .iter()
            .map(|s| s.render_key.clone())
            .collect();
        assert!(!keys.is_empty(), "render {i} made no query");
        assert!(
            keys.iter().all(|k| k.as_deref() == Some(key.as_str())),
            "render {i} of user {user} sent other keys"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn keys_that_prove_nobody_never_get_a_loaded_app() {
    let Some(h) = Harness::start_frontend(&["--render.reuse-app", "--render.concurrency=1"]).await
    else {
        return;
    };
    let target = kinds_panel(&h, app::KINDS_STAT);
    let params = [("width", "600"), ("height", "300")];
    // An opaque key, and a JWT with the same claims signed by someone else's token.
    let forged = jwt(7, 600, "not-the-token");
    for key in [RENDER_KEY, RENDER_KEY, forged.as_str(), forged.as_str()] {
        let r = render_as(&h, key, &target, &params).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(reuse_count(&h, "cold", "unverified-key"), 4);
    assert_eq!(reuse_count(&h, "reused", ""), 0);
    // With one tab, a verified viewer's first render still finds no app of anyone's.
    let r = render_as(&h, &jwt(7, 600, TOKEN), &target, &params).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(reuse_count(&h, "cold", "no-app"), 1);
    h.stop().await;
}

#[tokio::test]
async fn a_revoked_key_or_another_grafana_build_renders_cold() {
    let Some(h) = Harness::start_frontend(&["--render.reuse-app", "--render.concurrency=1"]).await
    else {
        return;
    };
    let target = kinds_panel(&h, app::KINDS_TIMESERIES);
    let params = [("width", "600"), ("height", "300")];
    let r = render_as(&h, &jwt(7, 600, TOKEN), &target, &params).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Grafana no longer accepts the next key (revoked after the app booted).
    let revoked = jwt(7, 601, TOKEN);
    h.stub.allow_key(&revoked);
    h.stub.revoke_key(&revoked);
    let url = h.render_url(
        &target,
        &[
            ("renderKey", revoked.as_str()),
            ("domain", "127.0.0.1"),
            ("width", "600"),
            ("height", "300"),
        ],
    );
    let r = h.get_with(&url, &[("X-Auth-Token", TOKEN)]).await;
    assert_ne!(r.status, 200, "a revoked key got a picture");
    assert_eq!(reuse_count(&h, "fallback", "key-refused"), 1);
    assert_eq!(reuse_count(&h, "reused", ""), 0);
    // A fresh app boots for the next valid key, and is reused by the one after.
    for offset in [602, 603] {
        let r = render_as(&h, &jwt(7, offset, TOKEN), &target, &params).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(reuse_count(&h, "reused", ""), 1);
    // Grafana was upgraded behind the same address: the loaded app is of the old build.
    h.stub.set_version("13.2.0");
    let r = render_as(&h, &jwt(7, 604, TOKEN), &target, &params).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(reuse_count(&h, "fallback", "build-changed"), 1);
    h.stop().await;
}

#[tokio::test]
async fn an_app_is_given_back_scrubbed_when_its_viewer_goes_idle() {
    let Some(h) = Harness::start_frontend(&[
        "--render.reuse-app",
        "--render.concurrency=2",
        "--browser.idle-timeout=1s",
    ])
    .await
    else {
        return;
    };
    let target = kinds_panel(&h, app::KINDS_STAT);
    let params = [("width", "600"), ("height", "300")];
    let r = render_as(&h, &jwt(7, 600, TOKEN), &target, &params).await;
    assert_eq!(r.status, 200, "{}", r.text());
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The viewer's app is gone: the next render boots one again, in the scrubbed tab.
    let opened = h.browser().tabs.opened();
    let r = render_as(&h, &jwt(7, 601, TOKEN), &target, &params).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(reuse_count(&h, "cold", "no-app"), 2);
    assert_eq!(
        h.browser().tabs.opened(),
        opened,
        "a new context was opened"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_hostile_page_never_gets_parked_nor_reaches_other_viewers() {
    // One tab: every later render would land in the attacker's context if it survived.
    let Some(h) = Harness::start(&["--render.reuse-app", "--render.concurrency=1"]).await else {
        return;
    };
    let attacker = jwt(66, 600, TOKEN);
    // The attacker's page (pop-ups, a service and a shared worker calling home) on a
    // dashboard route, where reuse applies.
    let hostile = h.stub.url("/d/hostile/x?hostile=1");
    for _ in 0..2 {
        let r = render_as(&h, &attacker, &hostile, &[("height", "500")]).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // Its app was not kept: it left pop-ups and workers behind.
    assert_eq!(reuse_count(&h, "cold", "no-app"), 2);
    assert!(
        h.stub
            .seen_at("/leak")
            .iter()
            .any(|s| s.render_key.as_deref() == Some(attacker.as_str())),
        "the control: the hostile page's own call was not seen"
    );
    let victims: Vec<String> = (1..=4).map(|u| jwt(u, 600, TOKEN)).collect();
    for key in &victims {
        let r = render_as(
            &h,
            key,
            &h.stub.url("/d-solo/victim/p"),
            &[("height", "500")],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stolen: Vec<_> = h
        .stub
        .seen_at("/leak")
        .into_iter()
        .filter(|s| s.render_key.as_ref().is_some_and(|k| victims.contains(k)))
        .collect();
    assert!(stolen.is_empty(), "leftovers used later keys: {stolen:?}");
    assert_eq!(reuse_count(&h, "reused", ""), 0);
    h.stop().await;
}

#[tokio::test]
async fn pages_that_report_no_grafana_build_are_never_kept() {
    // The plain stand-in's pages carry no Grafana boot data.
    let Some(h) = Harness::start(&["--render.reuse-app", "--render.concurrency=1"]).await else {
        return;
    };
    for (i, path) in ["/d-solo/first/p", "/d-solo/second/p"].iter().enumerate() {
        let r = render_as(
            &h,
            &jwt(7, 600 + i as i64, TOKEN),
            &h.dashboard(path, ""),
            &[],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(reuse_count(&h, "cold", "no-app"), 2);
    h.stop().await;
}

#[tokio::test]
async fn a_route_that_shows_no_new_scene_renders_cold() {
    let Some(h) = Harness::start_frontend(&["--render.reuse-app", "--render.concurrency=1"]).await
    else {
        return;
    };
    let params = [("width", "600"), ("height", "300")];
    let r = render_as(
        &h,
        &jwt(7, 600, TOKEN),
        &kinds_panel(&h, app::KINDS_STAT),
        &params,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // No such panel: the app shows a message, no scene. The move cannot be proven.
    let r = render_as(&h, &jwt(7, 601, TOKEN), &kinds_panel(&h, 999), &params).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(reuse_count(&h, "fallback", "route-unchanged"), 1);
    // The cold render after the fallback loaded the page itself.
    let loads = h.stub.seen_at("/d-solo/").len();
    assert_eq!(loads, 2, "the fallback did not load the page anew");
    h.stop().await;
}

#[tokio::test]
async fn a_panel_shown_again_asks_for_data_of_now() {
    let Some(h) = Harness::start_frontend(&["--render.reuse-app", "--render.concurrency=1"]).await
    else {
        return;
    };
    let viewer = jwt(7, 600, TOKEN);
    let params = [("width", "600"), ("height", "300")];
    // The last hour, as alert pictures ask for it: the app keeps this panel's scene, and
    // Scenes would query again on its own only once the range is a tenth of an hour old.
    let panel = |id: u32| {
        h.stub.url(&format!(
            "/d-solo/{}/x?panelId={id}&from=now-1h&to=now",
            app::KINDS
        ))
    };
    for (i, id) in [
        app::KINDS_TIMESERIES,
        app::KINDS_STAT,
        app::KINDS_TIMESERIES,
    ]
    .into_iter()
    .enumerate()
    {
        let before = h.stub.seen_at("/api/ds/query").len();
        render_ok(&h, &viewer, &panel(id), &params).await;
        assert!(
            h.stub.seen_at("/api/ds/query").len() > before,
            "render {i} (panel {id}) asked Grafana for no data"
        );
    }
    // Both later renders used the app; the last one showed the scene kept from the first.
    assert_reuse(&h, "reused", "", 2);
    h.stop().await;
}

#[tokio::test]
async fn apps_that_carry_a_dashboards_state_to_the_next_are_never_kept() {
    let Some(h) = Harness::start_frontend(&["--render.reuse-app", "--render.concurrency=1"]).await
    else {
        return;
    };
    let params = [("width", "600"), ("height", "300")];
    // Grafana's preserveDashboardStateWhenNavigating hands one dashboard's URL state to the
    // next one the page shows: an app of such a Grafana would give a later render this one's.
    for (i, toggles) in [
        "preserveDashboardStateWhenNavigating",
        "preserveDashboardStateWhenNavigating",
        "",
        "",
    ]
    .iter()
    .enumerate()
    {
        let target = format!(
            "{}&toggles={toggles}",
            kinds_panel(&h, app::KINDS_TIMESERIES)
        );
        render_ok(&h, &jwt(7, 600 + i as i64, TOKEN), &target, &params).await;
    }
    // The first two found no app (the first one's was not kept); the third boots one, which
    // the fourth reuses.
    assert_reuse(&h, "cold", "no-app", 3);
    assert_reuse(&h, "reused", "", 1);
    h.stop().await;
}

#[tokio::test]
async fn a_page_without_kiosk_never_gets_an_app_left_in_kiosk_mode() {
    let Some(h) = Harness::start_frontend(&["--render.reuse-app", "--render.concurrency=2"]).await
    else {
        return;
    };
    let viewer = jwt(7, 600, TOKEN);
    let params = [("width", "1000"), ("height", "600")];
    let range = format!("from={FROM}&to={TO}");
    let kiosk = h.stub.url(&format!("/d/{}/x?kiosk&{range}", app::KINDS));
    let plain = h.stub.url(&format!("/d/{}/x?{range}", app::KINDS));
    for target in [&kiosk, &kiosk] {
        render_ok(&h, &viewer, target, &params).await;
    }
    assert_reuse(&h, "reused", "", 1);
    // Grafana's chrome stays in kiosk mode once a URL asked for it: the viewer's kiosk app
    // would draw this page without the dashboard's header and controls.
    let warm = render_ok(&h, &viewer, &plain, &params).await.png();
    let cold = render_ok(&h, RENDER_KEY, &plain, &params).await.png();
    assert!(
        differing(&warm, &cold, 2) == 0,
        "the page without kiosk was drawn like a kiosk page"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_kept_scene_never_shows_what_an_earlier_url_set() {
    let Some(h) = Harness::start_frontend(&["--render.reuse-app", "--render.concurrency=1"]).await
    else {
        return;
    };
    let viewer = jwt(7, 600, TOKEN);
    let params = [("width", "800"), ("height", "400")];
    let panel = |id: u32, query: &str| {
        h.stub
            .url(&format!("/d-solo/{}/x?panelId={id}{query}", app::KINDS))
    };
    let range = format!("&from={FROM}&to={TO}");
    let first = render_ok(&h, &viewer, &panel(app::KINDS_TIMESERIES, &range), &params).await;
    render_ok(&h, &viewer, &panel(app::KINDS_STAT, &range), &params).await;
    // The panel again, with the dashboard's own time range (no from/to in the URL): the
    // scene the app kept still has the first request's range.
    let again = render_ok(&h, &viewer, &panel(app::KINDS_TIMESERIES, ""), &params).await;
    assert!(
        differing(&first.png(), &again.png(), 2) > 1000,
        "the panel was drawn over the earlier request's time range"
    );
    assert_reuse(&h, "fallback", "revisited-state", 1);
    h.stop().await;
}
