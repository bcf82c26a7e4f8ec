//! PDF output: paper formats, orientation, page ranges, background, and the target-URL fallback.

use crate::common;

use common::{Harness, Rendered};

const SOLO: &str = "/d-solo/uid1/panel";

/// Page count and the first page's MediaBox (points) of a Chromium PDF.
fn pdf_pages(r: &Rendered) -> (usize, (f64, f64)) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "application/pdf");
    assert!(r.body.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&r.body);
    let pages = text
        .match_indices("/Type /Page")
        .filter(|(i, _)| !text[i + 11..].starts_with('s'))
        .count();
    let media = text.split("/MediaBox [").nth(1).expect("a MediaBox");
    let nums: Vec<f64> = media
        .split(']')
        .next()
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (pages, (nums[2], nums[3]))
}

fn close(a: (f64, f64), b: (f64, f64)) -> bool {
    (a.0 - b.0).abs() < 1.5 && (a.1 - b.1).abs() < 1.5
}

#[tokio::test]
async fn every_paper_format_in_both_orientations() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let papers = [
        ("letter", 8.5, 11.0),
        ("legal", 8.5, 14.0),
        ("tabloid", 11.0, 17.0),
        ("ledger", 17.0, 11.0),
        ("a0", 33.1102, 46.80),
        ("a1", 23.39, 33.1102),
        ("a2", 16.5354, 23.39),
        ("a3", 11.70, 16.5354),
        ("a4", 8.2677, 11.70),
        ("a5", 5.8268, 8.2677),
        ("a6", 4.1339, 5.8268),
    ];
    for (name, w, hgt) in papers {
        for landscape in [true, false] {
            let l = landscape.to_string();
            let r = h
                .render(
                    &h.dashboard(SOLO, ""),
                    &[
                        ("encoding", "pdf"),
                        ("pdf.format", &name.to_uppercase()),
                        ("pdf.landscape", &l),
                    ],
                )
                .await;
            let (pages, size) = pdf_pages(&r);
            let (pw, ph): (f64, f64) = (w * 72.0, hgt * 72.0);
            // Chromium swaps the paper's sides for landscape (so ledger, already wide, turns
            // tall), exactly as for the official service.
            let expected = if landscape { (ph, pw) } else { (pw, ph) };
            assert!(
                close(size, expected),
                "{name} landscape={landscape}: {size:?}, expected {expected:?}"
            );
            assert!(pages >= 1);
        }
    }
    // The default is A4 landscape, the official service's 842.88 × 595.92 pt.
    let (_, size) = pdf_pages(
        &h.render(&h.dashboard(SOLO, ""), &[("encoding", "pdf")])
            .await,
    );
    assert!(close(size, (842.88, 595.92)), "{size:?}");
    h.stop().await;
}

#[tokio::test]
async fn options_fall_back_to_the_target_urls_query() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let target = h.dashboard(SOLO, "pdf.format=letter&pdf.landscape=false");
    let (_, size) = pdf_pages(&h.render(&target, &[("encoding", "pdf")]).await);
    assert!(close(size, (612.0, 792.0)), "{size:?}");
    // The top-level parameter wins.
    let (_, size) = pdf_pages(
        &h.render(&target, &[("encoding", "pdf"), ("pdf.format", "legal")])
            .await,
    );
    assert!(close(size, (612.0, 1008.0)), "{size:?}");
    h.stop().await;
}

#[tokio::test]
async fn page_ranges_select_pages_and_bad_ones_are_400() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let long = h.dashboard("/d/uid1/long", "panels=12&panelHeight=300");
    let (all, _) = pdf_pages(&h.render(&long, &[("encoding", "pdf")]).await);
    assert!(
        all >= 4,
        "a 3650 px dashboard fills several A4 pages, got {all}"
    );
    for (ranges, pages) in [("1-3", 3), ("2", 1), ("1, 3", 2), ("", all)] {
        let (n, _) = pdf_pages(
            &h.render(&long, &[("encoding", "pdf"), ("pdf.pageRanges", ranges)])
                .await,
        );
        assert_eq!(n, pages, "pdf.pageRanges={ranges:?}");
    }
    for bad in ["99", "a-b", "3-1"] {
        let r = h
            .render(&long, &[("encoding", "pdf"), ("pdf.pageRanges", bad)])
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.text().contains("pdf.pageRanges"), "{}", r.text());
    }
    h.stop().await;
}

#[tokio::test]
async fn background_settings_differ_and_bad_values_are_400() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let with = h
        .render(
            &h.dashboard(SOLO, ""),
            &[("encoding", "pdf"), ("pdf.printBackground", "true")],
        )
        .await;
    let without = h
        .render(
            &h.dashboard(SOLO, ""),
            &[("encoding", "pdf"), ("pdf.printBackground", "false")],
        )
        .await;
    pdf_pages(&with);
    pdf_pages(&without);
    // The page background is a filled rectangle in one and absent from the other.
    let fills = |r: &Rendered| r.body.len();
    assert_ne!(fills(&with), fills(&without));
    for (k, v) in [
        ("pdf.format", "b5"),
        ("pdf.landscape", "sideways"),
        ("pdf.printBackground", "maybe"),
        ("deviceScaleFactor", "0.05"),
    ] {
        let r = h
            .render(&h.dashboard(SOLO, ""), &[("encoding", "pdf"), (k, v)])
            .await;
        assert_eq!(r.status, 400, "{k}={v}: {}", r.text());
        assert!(r.text().contains(k), "{}", r.text());
    }
    h.stop().await;
}

#[tokio::test]
async fn a_pdf_over_render_max_pdf_pages_is_413_naming_the_option() {
    let Some(h) = Harness::start(&["--render.max-pdf-pages=3"]).await else {
        return;
    };
    let long = h.dashboard("/d/uid1/long", "panels=12&panelHeight=300");
    let r = h.render(&long, &[("encoding", "pdf")]).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.text().starts_with("[too-large]") && r.text().contains("render.max-pdf-pages (3)"),
        "{}",
        r.text()
    );
    // Within the cap (here by pdf.pageRanges) it is served, and grender counts as the test does.
    // Ranges of the request's own that select too many pages are refused the same way.
    let r = h
        .render(
            &long,
            &[("encoding", "pdf"), ("pdf.pageRanges", "1-2, 4-5")],
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("4 pages"), "{}", r.text());
    let ok = h
        .render(&long, &[("encoding", "pdf"), ("pdf.pageRanges", "1-3")])
        .await;
    let (pages, _) = pdf_pages(&ok);
    assert_eq!(pages, 3);
    assert_eq!(grender::output::pdf::page_count(&ok.body), 3);
    h.stop().await;
}
