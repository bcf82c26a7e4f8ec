//! Long dashboards: rows, 40 panels, 20,000 px pages in tiles, and the pixel budget.

use crate::common;

use common::Harness;

#[tokio::test]
async fn a_page_taller_than_20000_px_is_captured_whole() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    // Header 50 px + 70 lazy panels × 300 px = 21,050 px: captured in tiles and stitched.
    let target = h.dashboard("/d/tall/x", "panels=70&panelHeight=300&lazy=1");
    let img = h
        .render(&target, &[("width", "1000"), ("timeout", "60")])
        .await
        .png();
    assert_eq!((img.width, img.height), (1000, 21_050));
    for panel in [0, 13, 14, 27, 41, 55, 69] {
        let y = 50 + panel * 300 + 150;
        assert!(
            img.is_drawn(900, y),
            "panel {panel} at y={y}: {:?}",
            img.rgb(900, y)
        );
        // Tile seams carry the page, not blank rows.
        assert!(
            common::close(
                img.rgb(900, 50 + panel * 300 + 1),
                grafana_stub::BACKGROUND_RGB
            ) || img.is_drawn(900, 50 + panel * 300 + 1)
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_page_over_the_pixel_budget_is_refused_clearly() {
    let Some(h) = Harness::start(&["--render.max-pixels=20000000"]).await else {
        return;
    };
    let target = h.dashboard("/d/tall/x", "panels=70&panelHeight=300");
    let r = h
        .render(&target, &[("width", "1000"), ("timeout", "60")])
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("render.max-pixels"), "{}", r.text());
    // The service is fine afterwards.
    assert_eq!(
        h.render(&h.dashboard("/d-solo/a/b", ""), &[("height", "500")])
            .await
            .status,
        200
    );
    h.stop().await;
}

#[tokio::test]
async fn forty_panels_in_rows_full_height_at_the_requested_width() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    // 4 rows of 10 panels, rows 2 and 4 collapsed: 50 + 4 × 30 + 20 × 300 = 6170 px.
    let target = h.dashboard(
        "/d/forty/x",
        "panels=40&rows=4&panelHeight=300&lazy=1&delay=100",
    );
    for width in ["1000", "1600"] {
        let img = h
            .render(&target, &[("width", width), ("timeout", "60")])
            .await
            .png();
        assert_eq!(
            (img.width, img.height),
            (width.parse().unwrap(), 6170),
            "width {width}"
        );
        // Row 1: panels 0–9 after one header; row 3: after three headers and row 1's panels.
        for y in [
            50 + 30 + 150,
            50 + 30 + 9 * 300 + 150,
            50 + 3 * 30 + 10 * 300 + 150,
            6170 - 150,
        ] {
            assert!(
                img.is_drawn(img.width - 100, y),
                "width {width}: not drawn at y={y}"
            );
        }
    }
    // Scale 2 doubles both sides and is tiled too.
    let img = h
        .render(
            &target,
            &[
                ("width", "1000"),
                ("deviceScaleFactor", "2"),
                ("timeout", "60"),
            ],
        )
        .await
        .png();
    assert_eq!((img.width, img.height), (2000, 12_340));
    assert!(img.is_drawn(1900, 12_340 - 300));
    // As a PDF: every expanded panel is printed over several pages.
    let r = h
        .render(&target, &[("encoding", "pdf"), ("timeout", "60")])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = String::from_utf8_lossy(&r.body);
    let pages = text
        .match_indices("/Type /Page")
        .filter(|(i, _)| !text[i + 11..].starts_with('s'))
        .count();
    assert!(
        pages >= 8,
        "6170 px of dashboard on A4 landscape pages: {pages}"
    );
    h.stop().await;
}
