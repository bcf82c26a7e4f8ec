//! The pages of a report PDF: where to cut the dashboard so no panel is cut in half (a row
//! header stays with what follows it; a panel taller than a page, a table, is cut between its
//! rows), and the printable document that shows each slice
//! under a header (logo, title, time range) and above a footer (text, page N of M).
//!
//! Pure: the page layer measures the panels, captures the slices and prints the document.

/// A report's page layout (the PDF of a scheduled report, not Grafana's own PDF requests).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportLayout {
    /// The dashboard's title, in the header of every page.
    pub title: String,
    /// The time range, beside the title.
    pub subtitle: String,
    /// Text at the bottom of every page, beside the page number.
    pub footer: Option<String>,
    /// A `data:image/…;base64,…` URI shown at the left of the header.
    pub logo: Option<String>,
}

/// A vertical stretch of the page, in CSS pixels from its top.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Band {
    pub top: f64,
    pub bottom: f64,
    /// A row header: printed on the page of what follows it.
    pub keep_with_next: bool,
    /// Where the band may be cut when it is taller than a page: the bottoms of its table rows.
    pub cuts: Vec<f64>,
}

/// Page margins, header and footer heights, in inches.
const MARGIN_IN: f64 = 0.35;
const HEADER_IN: f64 = 0.5;
const FOOTER_IN: f64 = 0.3;
/// Space between the header, the picture and the footer.
const GAP_IN: f64 = 0.08;

/// Width and height in inches of the area a slice is shown in, on a `paper` page (inches,
/// already turned for landscape).
pub fn slice_area(paper: (f64, f64)) -> (f64, f64) {
    (
        paper.0 - 2.0 * MARGIN_IN,
        paper.1 - 2.0 * MARGIN_IN - HEADER_IN - FOOTER_IN - 2.0 * GAP_IN,
    )
}

/// How many CSS pixels of a page `page_width` pixels wide fit in one slice area.
pub fn slice_height_px(paper: (f64, f64), page_width: u32) -> f64 {
    let (w, h) = slice_area(paper);
    h / w * page_width as f64
}

/// Cuts the page (`total` CSS pixels tall) into slices at most `slice_height` tall, between
/// bands: a band is cut only when it is taller than a slice; a row header starts its slice
/// with what follows it. Returns `(top, bottom)` of each slice.
pub fn pack(bands: &[Band], slice_height: f64, total: f64) -> Vec<(f64, f64)> {
    let slice_height = slice_height.max(1.0);
    let mut units = merge(bands);
    units.retain(|u| u.bottom > u.top);
    let mut slices = Vec::new();
    let mut start = 0.0;
    for unit in &units {
        if unit.bottom - start <= slice_height {
            continue;
        }
        if unit.top > start {
            slices.push((start, unit.top));
            start = unit.top;
        }
        while unit.bottom - start > slice_height {
            // The last row that ends on this page, else (no rows: a chart) the page's end.
            let limit = start + slice_height;
            let cut = unit
                .cuts
                .iter()
                .copied()
                .filter(|&c| c > start + 1.0 && c <= limit)
                .max_by(f64::total_cmp)
                .unwrap_or(limit);
            slices.push((start, cut));
            start = cut;
        }
    }
    let end = total.max(start);
    let mut rest = start;
    while end - rest > 0.5 {
        let bottom = (rest + slice_height).min(end);
        slices.push((rest, bottom));
        rest = bottom;
    }
    slices
}

/// Overlapping bands become one; a row header joins the band after it. A merged band keeps
/// only the cuts that cut none of its parts (a cut inside a chart beside a table is no cut).
fn merge(bands: &[Band]) -> Vec<Band> {
    let mut sorted: Vec<Band> = bands.to_vec();
    sorted.sort_by(|a, b| a.top.total_cmp(&b.top));
    let mut merged: Vec<Band> = Vec::new();
    for band in sorted {
        match merged.last_mut() {
            Some(last) if band.top < last.bottom - 0.5 || last.keep_with_next => {
                let inside = |c: f64, b: &Band| c > b.top + 0.5 && c < b.bottom - 0.5;
                let (old_top, old_bottom) = (last.top, last.bottom);
                let old = Band {
                    top: old_top,
                    bottom: old_bottom,
                    ..Default::default()
                };
                last.cuts
                    .retain(|&c| !inside(c, &band) || band.cuts.contains(&c));
                last.cuts.extend(
                    band.cuts
                        .iter()
                        .copied()
                        .filter(|&c| !inside(c, &old) || c >= old_bottom),
                );
                last.bottom = last.bottom.max(band.bottom);
                last.keep_with_next = band.keep_with_next && band.bottom >= last.bottom;
            }
            _ => merged.push(band),
        }
    }
    merged
}

/// One slice's picture: a PNG, and its size in CSS pixels.
pub struct SlicePicture {
    pub png_base64: String,
    pub width: f64,
    pub height: f64,
}

/// The printable HTML document: one page per slice, `paper` inches (turned for landscape).
pub fn document(layout: &ReportLayout, slices: &[SlicePicture], paper: (f64, f64)) -> String {
    let (area_w, area_h) = slice_area(paper);
    let logo = layout
        .logo
        .as_deref()
        .map(|uri| format!("<img class=\"logo\" src=\"{}\">", escape(uri)))
        .unwrap_or_default();
    let footer = layout.footer.as_deref().map(escape).unwrap_or_default();
    let mut html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>\
         @page {{ size: {pw}in {ph}in; margin: 0 }}\
         html, body {{ margin: 0; padding: 0; background: #fff; color: #222; \
           font-family: 'Noto Sans', 'Noto Sans CJK JP', 'Liberation Sans', sans-serif; }}\
         section {{ box-sizing: border-box; width: {pw}in; height: {ph}in; padding: {m}in; \
           overflow: hidden; break-after: page; }}\
         section:last-child {{ break-after: auto; }}\
         header {{ height: {hh}in; display: flex; align-items: center; gap: 0.15in; \
           border-bottom: 1px solid #ccc; }}\
         header .logo {{ max-height: {hh}in; max-width: 1.5in; }}\
         header .title {{ font-size: 14pt; font-weight: bold; white-space: nowrap; overflow: hidden; }}\
         header .range {{ font-size: 9pt; color: #555; margin-left: auto; white-space: nowrap; }}\
         .slice {{ height: {ah}in; margin: {g}in 0; }}\
         .slice img {{ display: block; }}\
         footer {{ height: {fh}in; display: flex; align-items: center; font-size: 8pt; color: #555; \
           border-top: 1px solid #ccc; }}\
         footer .page {{ margin-left: auto; }}\
         </style></head><body>",
        pw = paper.0,
        ph = paper.1,
        m = MARGIN_IN,
        hh = HEADER_IN,
        fh = FOOTER_IN,
        g = GAP_IN,
        ah = area_h,
    );
    let count = slices.len();
    for (i, slice) in slices.iter().enumerate() {
        let scale = area_w / slice.width.max(1.0);
        html.push_str(&format!(
            "<section><header>{logo}<span class=\"title\">{title}</span>\
             <span class=\"range\">{range}</span></header>\
             <div class=\"slice\"><img src=\"data:image/png;base64,{png}\" \
             style=\"width: {w}in; height: {h}in\"></div>\
             <footer><span>{footer}</span><span class=\"page\">{n} / {count}</span></footer></section>",
            title = escape(&layout.title),
            range = escape(&layout.subtitle),
            png = slice.png_base64,
            w = area_w,
            h = slice.height * scale,
            n = i + 1,
        ));
    }
    html.push_str("</body></html>");
    html
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band(top: f64, bottom: f64) -> Band {
        Band {
            top,
            bottom,
            ..Default::default()
        }
    }

    #[test]
    fn no_panel_is_cut_when_it_fits_on_a_page() {
        // Panels of 300 px with 8 px gaps; 700 px to a page: two panels a page.
        let bands: Vec<Band> = (0..5)
            .map(|i| band(8.0 + i as f64 * 308.0, 308.0 + i as f64 * 308.0))
            .collect();
        let slices = pack(&bands, 700.0, 1548.0);
        assert_eq!(
            slices,
            vec![(0.0, 624.0), (624.0, 1240.0), (1240.0, 1548.0)]
        );
        for (top, bottom) in &slices {
            assert!(bottom - top <= 700.0);
            for b in &bands {
                let cut = b.top < *bottom && b.bottom > *bottom && *bottom < 1548.0;
                assert!(!cut, "panel {b:?} cut at {bottom}");
            }
        }
    }

    #[test]
    fn panels_side_by_side_move_together_and_a_row_header_stays_with_its_panels() {
        let bands = vec![
            band(0.0, 400.0),
            band(10.0, 380.0), // beside the first
            Band {
                top: 410.0,
                bottom: 440.0,
                keep_with_next: true,
                cuts: vec![],
            },
            band(450.0, 800.0),
        ];
        let slices = pack(&bands, 600.0, 800.0);
        assert_eq!(slices, vec![(0.0, 410.0), (410.0, 800.0)]);
    }

    #[test]
    fn a_panel_taller_than_a_page_is_cut_only_at_page_heights() {
        let slices = pack(&[band(100.0, 1300.0)], 500.0, 1300.0);
        assert_eq!(
            slices,
            vec![
                (0.0, 100.0),
                (100.0, 600.0),
                (600.0, 1100.0),
                (1100.0, 1300.0)
            ]
        );
    }

    #[test]
    fn a_table_taller_than_a_page_is_cut_between_its_rows() {
        // A table of 60 rows of 28 px from y = 58; 500 px to a page.
        let rows: Vec<f64> = (1..=60).map(|r| 58.0 + 28.0 * r as f64).collect();
        let table = Band {
            top: 50.0,
            bottom: 1738.0,
            keep_with_next: false,
            cuts: rows.clone(),
        };
        let slices = pack(&[band(0.0, 40.0), table], 500.0, 1738.0);
        for (top, bottom) in &slices[..slices.len() - 1] {
            assert!(bottom - top <= 500.0);
            assert!(
                rows.contains(bottom) || *bottom == 50.0,
                "cut at {bottom}, not between rows"
            );
        }
        assert_eq!(slices[1], (50.0, 534.0));
        // A chart beside the table keeps the rows from being cut where it would be cut.
        let chart = band(50.0, 1000.0);
        let merged = merge(&[
            Band {
                cuts: rows.clone(),
                ..band(50.0, 1738.0)
            },
            chart,
        ]);
        assert!(merged[0].cuts.iter().all(|&c| c >= 1000.0));
    }

    #[test]
    fn the_document_has_one_page_per_slice_with_header_and_footer() {
        let layout = ReportLayout {
            title: "運用 <ops>".into(),
            subtitle: "2026-11-23 – 2026-11-30".into(),
            footer: Some("Internal".into()),
            logo: None,
        };
        let slice = || SlicePicture {
            png_base64: "AAAA".into(),
            width: 1600.0,
            height: 900.0,
        };
        let html = document(&layout, &[slice(), slice()], (11.7, 8.27));
        assert_eq!(html.matches("<section>").count(), 2);
        assert!(html.contains("運用 &lt;ops&gt;"));
        assert!(html.contains("2 / 2") && html.contains("Internal"));
    }
}
