//! A scheduled report's PDF: the ready dashboard is cut into page-sized slices between its
//! panels (measured here, packed by [`crate::output::report_pdf`]), each slice captured as a
//! picture, and the pages — header with title and time range, slice, footer with page
//! numbers — printed from a document of their own. Printing the dashboard itself cannot keep
//! panels whole: Grafana places them absolutely, where CSS page breaks do not apply.

use base64::Engine;
use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::page::{PrintToPdfParams, SetDocumentContentParams};

use super::capture::capture_clip;
use super::readiness::evaluate;
use crate::error::RenderError;
use crate::output::pdf::{PdfOptions, page_count, paper_size};
use crate::output::report_pdf::{
    Band, ReportLayout, SlicePicture, document, pack, slice_height_px,
};

/// The panels and row headers of the page, outermost only, in page coordinates, each with the
/// bottoms of its table rows (where a panel taller than a page may be cut). Grafana's grid
/// items (old and Scenes dashboards), panels by id, and rows.
const BANDS_JS: &str = r#"(() => {
  const panels = '.react-grid-item, [data-panelid], [data-viz-panel-key], .panel';
  const rows = '.dashboard-row, [data-testid*="dashboard-row"]';
  const all = Array.from(document.querySelectorAll(panels + ', ' + rows));
  const outer = all.filter(el => !all.some(o => o !== el && o.contains(el)));
  return outer.map(el => {
    const r = el.getBoundingClientRect();
    const row = el.matches(rows) || !!el.querySelector(rows) || r.height < 60;
    const cuts = Array.from(el.querySelectorAll('[role="row"], tr'))
      .map(t => t.getBoundingClientRect().bottom + window.scrollY);
    return [r.top + window.scrollY, r.bottom + window.scrollY, row, cuts];
  }).filter(b => b[1] > b[0]);
})()"#;

/// Waits until every picture of the printed document is decoded.
const IMAGES_JS: &str = "Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null))).then(() => true)";

/// Prints the report PDF of the ready page, `width × height` CSS pixels at `scale`.
pub(crate) async fn print(
    page: &Page,
    opts: &PdfOptions,
    layout: &ReportLayout,
    width: u32,
    height: u32,
    scale: f64,
) -> Result<bytes::Bytes, RenderError> {
    let (w, h) = paper_size(&opts.format).ok_or_else(|| {
        RenderError::BadRequest(format!("invalid 'pdf.format': {:?}", opts.format))
    })?;
    let paper = if opts.landscape == (w < h) {
        (h, w)
    } else {
        (w, h)
    };
    let bands: Vec<(f64, f64, bool, Vec<f64>)> =
        evaluate(page, BANDS_JS, "measuring the panels").await?;
    let bands: Vec<Band> = bands
        .into_iter()
        .map(|(top, bottom, keep_with_next, cuts)| Band {
            top,
            bottom,
            keep_with_next,
            cuts,
        })
        .collect();
    let slices = pack(&bands, slice_height_px(paper, width), height as f64);
    if slices.len() > opts.max_pages as usize {
        return Err(RenderError::TooLarge(format!(
            "the report would have {} pages, above render.max-pdf-pages ({}). Fix: a shorter \
             dashboard, a larger paper, or raise render.max-pdf-pages",
            slices.len(),
            opts.max_pages
        )));
    }
    let mut pictures = Vec::with_capacity(slices.len());
    for (top, bottom) in slices {
        let (y, h) = (
            top.floor() as u32,
            (bottom - top.floor()).ceil().max(1.0) as u32,
        );
        let h = h.min(height.saturating_sub(y).max(1));
        let png = capture_clip(page, y, width, h, scale, "capturing a report page").await?;
        pictures.push(SlicePicture {
            png_base64: base64::engine::general_purpose::STANDARD.encode(&png),
            width: width as f64,
            height: h as f64,
        });
    }
    let html = document(layout, &pictures, paper);
    drop(pictures);
    // A document of its own, in a blank page: the dashboard's scripts are gone with it.
    page.goto("about:blank")
        .await
        .map_err(|e| RenderError::cdp("opening the report document", e))?;
    let frame = page
        .mainframe()
        .await
        .map_err(|e| RenderError::cdp("opening the report document", e))?
        .ok_or_else(|| RenderError::cdp("opening the report document", "no main frame"))?;
    page.execute(SetDocumentContentParams::new(frame, html))
        .await
        .map_err(|e| RenderError::cdp("writing the report document", e))?;
    let _: bool = evaluate(page, IMAGES_JS, "decoding the report pages").await?;
    let params = PrintToPdfParams::builder()
        .landscape(false)
        .print_background(true)
        .scale(1.0)
        .paper_width(paper.0)
        .paper_height(paper.1)
        .margin_top(0.0)
        .margin_bottom(0.0)
        .margin_left(0.0)
        .margin_right(0.0)
        .prefer_css_page_size(false)
        .build();
    let reply = page
        .execute(params)
        .await
        .map_err(|e| RenderError::cdp("printing the report", e))?;
    let pdf = crate::output::tiles::decode(reply.result.data.as_ref(), "decoding the PDF")?;
    if page_count(&pdf) > opts.max_pages as usize {
        return Err(RenderError::TooLarge(format!(
            "the report has more pages than render.max-pdf-pages ({})",
            opts.max_pages
        )));
    }
    Ok(pdf)
}
