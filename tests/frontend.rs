//! Renders of Grafana's real frontend code: the test app built from `@grafana/scenes`,
//! `@grafana/ui` and friends (`testapp/`), served by the stand-in. Its readiness signals
//! are Grafana's own (the Scenes query controller's counter, the scene context), its
//! panels draw with uPlot and canvas, its grid is lazy.
//!
//! `GRENDER_REPEAT=200 cargo test --test frontend every_panel_kind` runs the picture check
//! of every panel kind 200 times in a row (CI: 3 times; nextest would stop the long run at
//! its 180 s limit).

use crate::common;

use common::{Harness, Image, RENDER_KEY, TOKEN};
use grafana_stub::frontend as app;

/// `/d-solo/<uid>/x?panelId=<id>` with more knobs.
fn solo(h: &Harness, uid: &str, panel: u32, knobs: &str) -> String {
    let sep = if knobs.is_empty() { "" } else { "&" };
    h.stub
        .url(&format!("/d-solo/{uid}/x?panelId={panel}{sep}{knobs}"))
}

fn repeat() -> usize {
    std::env::var("GRENDER_REPEAT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
}

/// Pixels of strong colour (not the greys of backgrounds, grid and text).
fn colourful(img: &Image) -> usize {
    let mut n = 0;
    for y in 0..img.height {
        for x in 0..img.width {
            let [r, g, b] = img.rgb(x, y);
            if r.max(g).max(b) - r.min(g).min(b) >= 60 {
                n += 1;
            }
        }
    }
    n
}

/// Pixels neither the dark panel background nor the page behind it (text, lines).
fn ink(img: &Image) -> usize {
    let bg = [app::PANEL_BG_DARK_RGB, app::CANVAS_DARK_RGB];
    let mut n = 0;
    for y in 0..img.height {
        for x in 0..img.width {
            let p = img.rgb(x, y);
            if !bg.iter().any(|b| common::close(p, *b)) {
                n += 1;
            }
        }
    }
    n
}

/// What a drawn panel of each kind shows, checked on its solo picture (1000×500).
fn assert_drawn(panel: u32, img: &Image, run: usize) {
    let near = |rgb| img.count_near(rgb, 16);
    match panel {
        app::KINDS_TIMESERIES => {
            for (name, rgb) in [
                ("cpu", app::SERIES_A_RGB),
                ("memory", app::SERIES_B_RGB),
                ("disk", app::SERIES_C_RGB),
            ] {
                // The legend alone shows ~60 px of each colour; a drawn line many more.
                assert!(
                    near(rgb) > 400,
                    "run {run}: series {name} not drawn ({} px)",
                    near(rgb)
                );
            }
        }
        app::KINDS_STAT => {
            let n = near(app::SERIES_A_RGB);
            assert!(
                n > 3000,
                "run {run}: stat value/sparkline not drawn ({n} px)"
            );
        }
        app::KINDS_BARCHART => {
            let n = near(app::BARS_RGB);
            assert!(n > 5000, "run {run}: bars not drawn ({n} px)");
        }
        app::KINDS_GAUGE | app::KINDS_BARGAUGE => {
            let n = colourful(img);
            assert!(
                n > 20_000,
                "run {run}: panel {panel} not drawn ({n} colourful px)"
            );
        }
        app::KINDS_TABLE | app::KINDS_TEXT => {
            let n = ink(img);
            assert!(n > 5000, "run {run}: panel {panel} has no text ({n} px)");
        }
        other => panic!("no check for panel {other}"),
    }
}

#[tokio::test]
async fn every_panel_kind_is_captured_drawn_every_time() {
    let Some(h) = Harness::start_frontend(&["--render.concurrency=2"]).await else {
        return;
    };
    for run in 0..repeat() {
        for panel in app::KINDS_PANELS {
            let r = h
                .render(
                    &solo(&h, app::KINDS, panel, ""),
                    &[("width", "1000"), ("height", "500")],
                )
                .await;
            assert_eq!(r.status, 200, "panel {panel}: {}", r.text());
            let img = r.png();
            assert_eq!((img.width, img.height), (1000, 500));
            assert_drawn(panel, &img, run);
        }
    }
    // Every one of these pictures was first taken during the last quiet frames (ADR 14), and
    // Grafana's real panels left some of them standing: the early capture works on them.
    let metrics = h.get_with(&h.url("/metrics"), &[]).await.text();
    let early = |outcome: &str| {
        let name = format!("grender_early_capture_total{{outcome=\"{outcome}\"}}");
        common::metric_value(&metrics, &name) as usize
    };
    let renders = repeat() * app::KINDS_PANELS.len();
    assert_eq!(early("kept") + early("discarded"), renders, "{metrics}");
    assert!(early("kept") > 0, "no early picture was kept: {metrics}");
    h.stop().await;
}

#[tokio::test]
async fn whole_dashboards_draw_every_panel_even_lazy_ones_below_the_fold() {
    let Some(h) = Harness::start_frontend(&[]).await else {
        return;
    };
    // 40 panels in Grafana's lazy grid, over 12,000 px: the bottom panels drew too.
    let r = h
        .render(
            &h.stub.url("/d/forty/x"),
            &[("width", "1000"), ("height", "-1")],
        )
        .await;
    let img = r.png();
    assert!(
        img.height > 10_000,
        "full page {}×{}",
        img.width,
        img.height
    );
    let bottom = img.height - 2500;
    let drawn = img.count_near_in_rows(app::BARS_RGB, 16, bottom, img.height)
        + img.count_near_in_rows(app::SERIES_A_RGB, 16, bottom, img.height);
    assert!(drawn > 5000, "the last panels were not drawn ({drawn} px)");
    // Rows, a repeated panel driven by a query variable, one of each kind.
    for uid in [app::KINDS, app::ROWS, app::REPEAT] {
        let r = h
            .render(
                &h.stub.url(&format!("/d/{uid}/x")),
                &[("width", "1200"), ("height", "-1")],
            )
            .await;
        let img = r.png();
        let series = img.count_near(app::SERIES_A_RGB, 16);
        assert!(series > 1000, "{uid}: series not drawn ({series} px)");
    }
    // The repeat dashboard draws one time series per server: three times the colour.
    let one = h
        .render(
            &h.stub.url("/d/repeat/x?var-server=alpha"),
            &[("width", "1200"), ("height", "-1")],
        )
        .await;
    let three = h
        .render(
            &h.stub.url("/d/repeat/x"),
            &[("width", "1200"), ("height", "-1")],
        )
        .await;
    // The three clones stand side by side, each a third as wide as the one server's panel,
    // so their colour does not add up to three times one (how much it adds up to depends on
    // the data of the last 6 hours). Each third of the picture must show a drawn series.
    let (one, three) = (one.png(), three.png());
    let one = one.count_near(app::SERIES_A_RGB, 16);
    let thirds: Vec<usize> = (0..3)
        .map(|i| {
            let columns = i * three.width / 3..(i + 1) * three.width / 3;
            (0..three.height)
                .flat_map(|y| columns.clone().map(move |x| (x, y)))
                .filter(|&(x, y)| common::close(three.rgb(x, y), app::SERIES_A_RGB))
                .count()
        })
        .collect();
    assert!(
        thirds.iter().all(|&n| n > 150) && thirds.iter().sum::<usize>() > one,
        "repeated panels: {one} px for one server, {thirds:?} in the thirds for three"
    );
    h.stop().await;
}

#[tokio::test]
async fn failing_and_slow_panels_end_as_the_page_says() {
    let Some(h) = Harness::start_frontend(&["--browser.readiness.timeout=20s"]).await else {
        return;
    };
    // A data source error and a plugin that fails to load: the page reports them in the
    // panels, and the picture comes without waiting for the readiness timeout.
    for panel in [app::BROKEN_DS_PANEL, app::BROKEN_PLUGIN_PANEL] {
        let r = h
            .render(&solo(&h, app::BROKEN, panel, ""), &[("height", "500")])
            .await;
        assert_eq!(r.status, 200, "broken panel {panel}: {}", r.text());
    }
    let r = h
        .render(
            &h.stub.url("/d/broken/x"),
            &[("width", "1200"), ("height", "-1")],
        )
        .await;
    assert!(
        r.png().count_near(app::SERIES_A_RGB, 16) > 1000,
        "the working panels drew"
    );
    // A panel whose query takes 1.5 s is captured drawn, not loading.
    let r = h
        .render(
            &solo(&h, app::SLOW, app::SLOW_PANEL, "slow=1500"),
            &[("height", "500")],
        )
        .await;
    let img = r.png();
    assert!(
        img.count_near(app::SERIES_A_RGB, 16) > 400,
        "slow panel not drawn"
    );
    h.stop().await;
}

#[tokio::test]
async fn pdf_csv_time_zones_themes_and_formats_on_the_real_frontend() {
    let Some(h) = Harness::start_frontend(&[]).await else {
        return;
    };
    let r = h
        .render(
            &h.stub.url("/d/kinds/x"),
            &[("width", "1200"), ("height", "-1"), ("encoding", "pdf")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.starts_with(b"%PDF"), "not a PDF");
    assert!(
        r.body
            .windows(b"/Type /Page".len())
            .any(|w| w == b"/Type /Page"),
        "a PDF without pages"
    );

    // CSV: @grafana/data's own export, downloaded by the page.
    let mut url = url::Url::parse(&h.url("/render/csv")).expect("url");
    url.query_pairs_mut()
        .append_pair("url", &h.stub.url("/d-csv/kinds?panelId=1"))
        .append_pair("renderKey", RENDER_KEY)
        .append_pair("domain", "127.0.0.1");
    let r = h.get_with(url.as_str(), &[("X-Auth-Token", TOKEN)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let csv = r.text();
    assert!(
        csv.trim_start_matches('\u{feff}')
            .starts_with("\"Time\",\"cpu\",\"memory\",\"disk\""),
        "{}",
        &csv[..csv.len().min(200)]
    );
    assert!(csv.lines().count() > 10);

    // The time axis follows the requested time zone (a fixed range, so only it differs).
    let range = "from=1700000000000&to=1700021600000";
    let utc = h
        .render(
            &solo(&h, app::KINDS, 1, range),
            &[("height", "500"), ("timezone", "UTC")],
        )
        .await;
    let tokyo = h
        .render(
            &solo(&h, app::KINDS, 1, range),
            &[("height", "500"), ("timezone", "Asia/Tokyo")],
        )
        .await;
    let again = h
        .render(
            &solo(&h, app::KINDS, 1, range),
            &[("height", "500"), ("timezone", "UTC")],
        )
        .await;
    assert_eq!(utc.status, 200);
    assert_ne!(utc.body, tokyo.body, "the time zone changed nothing");
    assert_eq!(
        utc.png().count_near(app::SERIES_A_RGB, 16),
        again.png().count_near(app::SERIES_A_RGB, 16)
    );

    // Light theme: the panel is white.
    let light = h
        .render(
            &solo(&h, app::KINDS, 1, "theme=light"),
            &[("height", "500")],
        )
        .await;
    let img = light.png();
    let white = img.count_near(app::PANEL_BG_LIGHT_RGB, 4);
    assert!(white > 200_000, "light theme panel background: {white} px");
    let dark = h
        .render(&solo(&h, app::KINDS, 1, ""), &[("height", "500")])
        .await;
    assert!(dark.png().count_near(app::PANEL_BG_DARK_RGB, 4) > 200_000);

    // Formats: Chromium's JPEG of the same drawn panel.
    let jpeg = h
        .render(
            &solo(&h, app::KINDS, 2, ""),
            &[("height", "500"), ("encoding", "jpeg")],
        )
        .await;
    assert_eq!(jpeg.status, 200, "{}", jpeg.text());
    assert_eq!(jpeg.headers["content-type"], "image/jpeg");
    assert!(jpeg.body.starts_with(&[0xff, 0xd8]));
    h.stop().await;
}
