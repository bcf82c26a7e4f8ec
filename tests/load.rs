//! Behaviour under load: identical requests coalesce, a full queue answers 429 at once.

use crate::common;

use std::time::{Duration, Instant};

use common::{Harness, TOKEN, jwt};

#[tokio::test]
async fn a_hundred_identical_requests_share_one_browser_render() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let target = h.dashboard("/d-solo/storm/alert", "delay=1500");
    let before = h.count("grender_browser_renders_total");
    let requests = (0..100).map(|_| h.render(&target, &[("width", "1000"), ("height", "500")]));
    let answers = futures::future::join_all(requests).await;
    for r in &answers {
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.png().is_drawn(500, 250));
    }
    assert_eq!(
        h.count("grender_browser_renders_total") - before,
        1,
        "exactly one browser render"
    );
    assert_eq!(h.count("grender_coalesced_requests_total"), 99);
    // Once it is done, the next identical request renders afresh.
    assert_eq!(
        h.render(&target, &[("width", "1000"), ("height", "500")])
            .await
            .status,
        200
    );
    assert_eq!(h.count("grender_browser_renders_total") - before, 2);
    h.stop().await;
}

#[tokio::test]
async fn different_pictures_or_viewers_are_not_merged() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let target = h.dashboard("/d-solo/storm/alert", "delay=800");
    let before = h.count("grender_browser_renders_total");
    let (a, b, c) = tokio::join!(
        h.render(&target, &[("width", "1000"), ("height", "500")]),
        h.render(&target, &[("width", "1200"), ("height", "500")]),
        h.render(
            &target,
            &[
                ("width", "1000"),
                ("height", "500"),
                ("timezone", "Asia/Tokyo")
            ]
        ),
    );
    assert_eq!((a.status, b.status, c.status), (200, 200, 200));
    assert_eq!(h.count("grender_browser_renders_total") - before, 3);
    h.stop().await;
}

#[tokio::test]
async fn jwt_render_keys_merge_only_for_the_same_verified_user() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let target = h.dashboard("/d-solo/storm/alert", "delay=1000");
    // Same user, two distinct keys (different expiry), both signed with grender's token.
    let (k1, k2, other_user, forged_same_user) = (
        jwt(7, 300, TOKEN),
        jwt(7, 301, TOKEN),
        jwt(8, 300, TOKEN),
        jwt(7, 302, "not-the-token"),
    );
    for k in [&k1, &k2, &other_user, &forged_same_user] {
        h.stub.allow_key(k);
    }
    let hr = &h;
    let with_key = |key: &str| {
        let url = hr.render_url(
            &target,
            &[
                ("renderKey", key),
                ("domain", "127.0.0.1"),
                ("height", "500"),
            ],
        );
        async move { hr.get_with(&url, &[("X-Auth-Token", TOKEN)]).await }
    };
    let before = h.count("grender_browser_renders_total");
    let answers = futures::future::join_all([
        with_key(&k1),
        with_key(&k2),
        with_key(&other_user),
        with_key(&forged_same_user),
    ])
    .await;
    assert!(answers.iter().all(|r| r.status == 200));
    // k1 and k2 share; the other user and the unverifiable key render on their own.
    assert_eq!(h.count("grender_browser_renders_total") - before, 3);
    h.stop().await;
}

#[tokio::test]
async fn equal_jwt_claims_signed_by_another_grafanas_token_do_not_join_its_render() {
    // Two Grafanas share this grender, each with its own token.
    const OTHER: &str = "other-grafanas-token";
    let other_flag = format!("--server.auth-token={OTHER}");
    let Some(h) = Harness::start(&[&other_flag]).await else {
        return;
    };
    let target = h.dashboard("/d-solo/storm/alert", "delay=1000");
    // The same claims (org 1, user 7, Admin): one signed by Grafana A's token, one by B's.
    let (from_a, from_b) = (jwt(7, 300, TOKEN), jwt(7, 300, OTHER));
    h.stub.allow_key(&from_a);
    h.stub.allow_key(&from_b);
    let hr = &h;
    let with = |key: String, token: &'static str| {
        let url = hr.render_url(
            &target,
            &[
                ("renderKey", key.as_str()),
                ("domain", "127.0.0.1"),
                ("height", "500"),
            ],
        );
        async move { hr.get_with(&url, &[("X-Auth-Token", token)]).await }
    };
    let before = h.count("grender_browser_renders_total");
    let coalesced = h.count("grender_coalesced_requests_total");
    let (a, b) = tokio::join!(with(from_a.clone(), TOKEN), with(from_b, OTHER));
    assert_eq!(
        (a.status, b.status),
        (200, 200),
        "{} / {}",
        a.text(),
        b.text()
    );
    assert_eq!(
        h.count("grender_browser_renders_total") - before,
        2,
        "a key verified by token B joined the render of token A"
    );
    assert_eq!(h.count("grender_coalesced_requests_total"), coalesced);
    // The same key and token twice do share (the test can tell sharing apart).
    let (c, d) = tokio::join!(with(from_a.clone(), TOKEN), with(from_a, TOKEN));
    assert_eq!((c.status, d.status), (200, 200));
    assert_eq!(h.count("grender_browser_renders_total") - before, 3);
    h.stop().await;
}

#[tokio::test]
async fn a_request_that_cannot_finish_in_time_gets_429_at_once_and_others_queue() {
    let Some(h) = Harness::start(&["--render.concurrency=1", "--render.queue-size=2"]).await else {
        return;
    };
    // Teach the queue that renders of this page take about 2 s.
    let slow = |n: u32| h.dashboard(&format!("/d-solo/q{n}/p"), "delay=2000");
    assert_eq!(h.render(&slow(0), &[("height", "500")]).await.status, 200);

    let first = slow(1);
    let (busy, refused, queued, overflow) = tokio::join!(
        h.render(&first, &[("height", "500"), ("timeout", "30")]),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let started = Instant::now();
            // ~2 s of waiting + ~2 s of rendering cannot fit in 3 s.
            let r = h
                .render(&slow(2), &[("height", "500"), ("timeout", "3")])
                .await;
            (r, started.elapsed())
        },
        async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            h.render(&slow(3), &[("height", "500"), ("timeout", "30")])
                .await
        },
        async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            h.render(&slow(4), &[("height", "500"), ("timeout", "30")])
                .await
        },
    );
    let (refused, took) = refused;
    assert_eq!(busy.status, 200);
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert!(took < Duration::from_secs(1), "refused only after {took:?}");
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    assert!(
        refused.text().contains("could not finish"),
        "{}",
        refused.text()
    );
    assert_eq!(
        queued.status,
        200,
        "it fits its deadline, so it waits its turn: {}",
        queued.text()
    );
    assert_eq!(overflow.status, 200, "{}", overflow.text());
    let page = h.service.metrics_text();
    assert_eq!(
        common::metric_value(&page, "grender_queue_refused_total"),
        1.0
    );
    let waited = common::metric_value(&page, "grender_queue_wait_seconds_total");
    assert!(waited > 1.0, "waited {waited} s");
    h.stop().await;
}

#[tokio::test]
async fn a_full_queue_is_refused_with_retry_after() {
    let Some(h) = Harness::start(&["--render.concurrency=1", "--render.queue-size=1"]).await else {
        return;
    };
    let slow = |n: u32| h.dashboard(&format!("/d-solo/f{n}/p"), "delay=1500");
    let first = slow(1);
    let (a, b, c) = tokio::join!(
        h.render(&first, &[("height", "500")]),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            h.render(&slow(2), &[("height", "500")]).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            h.render(&slow(3), &[("height", "500")]).await
        },
    );
    assert_eq!(
        (a.status, b.status),
        (200, 200),
        "one runs, one waits: {} / {}",
        a.text(),
        b.text()
    );
    assert_eq!(c.status, 429, "{}", c.text());
    assert!(c.text().contains("render.queue-size"), "{}", c.text());
    assert!(c.headers.contains_key("retry-after"));
    h.stop().await;
}
