//! Memory that follows the load, to the end: the last warm tab closed after a long idle while
//! its context (and Grafana's cached assets) stays, and `browser.memory-budget` as the knob
//! that sets how many renders run at once. The figures are in bench/ and docs/adr/0012.

use std::time::{Duration, Instant};

use crate::common;

use common::Harness;

/// Page targets (tabs) Chromium has open now.
async fn open_tabs(h: &Harness) -> usize {
    use chromiumoxide::cdp::browser_protocol::target::GetTargetsParams;
    let targets = h
        .browser()
        .cdp
        .execute(GetTargetsParams::default())
        .await
        .expect("Target.getTargets");
    targets
        .result
        .target_infos
        .iter()
        .filter(|t| t.r#type == "page")
        .count()
}

#[tokio::test]
async fn the_last_tab_closes_when_idle_and_its_context_keeps_the_cache() {
    let Some(h) = Harness::start(&["--render.concurrency=1", "--browser.idle-close-last=1s"]).await
    else {
        return;
    };
    let bundled = |n: u32| h.dashboard(&format!("/d-solo/park{n}/p"), "bundle=64");
    assert_eq!(
        h.render(&bundled(0), &[("height", "500")]).await.status,
        200
    );
    let browser = h.browser();
    let opened = browser.tabs.opened();
    // Chromium's own first tab (the default context's about:blank) plus the warm tab.
    let with_warm_tab = open_tabs(&h).await;
    // Idle past browser.idle-close-last: the warm tab (so its renderer process) is gone, but
    // the context's place is still counted.
    let until = Instant::now() + Duration::from_secs(10);
    while browser.tabs.counts() != (0, 1) || open_tabs(&h).await + 1 != with_warm_tab {
        assert!(
            Instant::now() < until,
            "tabs (idle, total) {:?}, {} page targets after idling",
            browser.tabs.counts(),
            open_tabs(&h).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What an operator sees: no tab, the context kept, one context opened since start.
    let tab_metrics = |page: &str| {
        ["idle", "busy", "dormant"]
            .map(|s| common::metric_value(page, &format!("grender_browser_tabs{{state=\"{s}\"}}")))
    };
    let contexts = "grender_browser_contexts_opened_total";
    let idle = h.get_with(&h.url("/metrics"), &[]).await.text();
    assert_eq!(tab_metrics(&idle), [0.0, 0.0, 1.0], "{idle}");
    assert_eq!(common::metric_value(&idle, contexts), 1.0, "{idle}");
    // The next render opens a tab in the kept context: no new context, and the bundle comes
    // from its HTTP cache, not from Grafana again.
    let img = h.render(&bundled(1), &[("height", "500")]).await.png();
    assert!(img.is_drawn(500, 250));
    assert_eq!(browser.tabs.opened(), opened, "a new context was opened");
    let after = h.get_with(&h.url("/metrics"), &[]).await.text();
    assert_eq!(common::metric_value(&after, contexts), 1.0, "{after}");
    assert_eq!(tab_metrics(&after)[2], 0.0, "{after}");
    let fetched = h.stub.seen_at("/public/build/app.64k.js").len();
    assert_eq!(
        fetched, 1,
        "the cached bundle did not survive the closed tab"
    );
    h.stop().await;
}

#[tokio::test]
async fn the_memory_budget_sets_the_render_slots() {
    // Room for Chromium and exactly two renders by the measured costs.
    let two = format!(
        "--browser.memory-budget={}",
        grender::config::MemoryPlan::budget_for(2)
    );
    let opts = common::server_options(&[&two]);
    let plan = opts.memory_plan();
    let expected = 2.min(
        std::thread::available_parallelism()
            .map(|n| n.get() * 2)
            .unwrap_or(4),
    );
    assert_eq!(plan.concurrency, expected);
    let Some(h) = Harness::start(&[&two]).await else {
        return;
    };
    // The pool never opens more tabs than the budget's slots, whatever the load.
    let panels: Vec<String> = (0..6)
        .map(|n| h.dashboard(&format!("/d-solo/slots{n}/p"), "delay=300"))
        .collect();
    let renders = panels.iter().map(|p| h.render(p, &[("height", "500")]));
    for r in futures::future::join_all(renders).await {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let browser = h.browser();
    assert!(
        browser.tabs.opened() <= expected as u64,
        "{} contexts for {expected} slots",
        browser.tabs.opened()
    );
    h.stop().await;
}
