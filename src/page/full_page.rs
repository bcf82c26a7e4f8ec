//! Full-page captures: the viewport grows with the page, and a page over the pixel budget is
//! refused rather than cut or killed by the kernel.

use chromiumoxide::Page;

use super::{emulate, readiness};
use crate::error::RenderError;
use crate::request::Viewport;

/// A full-page capture in progress: the viewport grows with the page, so that every
/// lazily loaded panel comes into view and loads (the official services scroll instead).
#[derive(Debug)]
pub struct FullPage {
    viewport: Viewport,
    /// The viewport height set so far.
    pub(crate) height: u32,
    max_pixels: u64,
}

impl FullPage {
    /// A full-page capture of `viewport`, starting at its initial height.
    pub(crate) fn new(viewport: Viewport, max_pixels: u64) -> Self {
        FullPage {
            viewport,
            height: viewport.initial_height,
            max_pixels,
        }
    }
}

impl FullPage {
    /// Grows the viewport to the page's current full height; true when it grew.
    pub async fn grow(&mut self, page: &Page) -> Result<bool, RenderError> {
        let measured: f64 = readiness::evaluate(page, PAGE_HEIGHT_JS, "measuring the page").await?;
        let full = full_page_height(&self.viewport, measured, self.max_pixels)?;
        if full <= self.height {
            return Ok(false);
        }
        self.height = full;
        emulate::emulate_viewport(page, &self.viewport, full).await?;
        Ok(true)
    }
}

/// The full-page height, or a clear refusal when the picture would pass the pixel budget
/// (rather than an out-of-memory kill, or a silently cut picture).
fn full_page_height(vp: &Viewport, measured: f64, max_pixels: u64) -> Result<u32, RenderError> {
    let measured = if measured.is_finite() && measured > 0.0 {
        measured.ceil() as u64
    } else {
        0
    };
    let pixels = vp.width as f64 * measured as f64 * vp.scale * vp.scale;
    if pixels > max_pixels as f64 {
        return Err(RenderError::TooLarge(format!(
            "the full page is {}×{measured} px at scale {}, {:.0} million pixels, above render.max-pixels \
             ({:.0} million); render a smaller width or scale, or raise render.max-pixels",
            vp.width,
            vp.scale,
            pixels / 1e6,
            max_pixels as f64 / 1e6
        )));
    }
    Ok(measured.min(u32::MAX as u64) as u32)
}

/// The height the whole page needs, including Grafana's header around the inner scroller.
const PAGE_HEIGHT_JS: &str = r#"(() => {
  const inner = document.querySelector('#page-scrollbar')
    || [1, 2, 3, 4, 5].map(d => document.querySelector('main ' + '> div '.repeat(d) + '> [class*="scrollbar-view"]')).find(e => e);
  if (inner) return document.body.clientHeight - inner.clientHeight + inner.scrollHeight;
  return Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0);
})()"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_page_height_refuses_pages_over_the_pixel_budget() {
        let vp = Viewport {
            width: 1000,
            height: None,
            initial_height: 750,
            scale: 2.0,
            landscape: true,
        };
        assert_eq!(full_page_height(&vp, 3000.4, 60_000_000).unwrap(), 3001);
        assert!(matches!(
            full_page_height(&vp, 100_000.0, 60_000_000),
            Err(RenderError::TooLarge(_))
        ));
        assert_eq!(full_page_height(&vp, f64::NAN, 60_000_000).unwrap(), 0);
    }
}
