//! Capturing a ready page over CDP: a PNG of the viewport (in tiles when the page is tall),
//! Chromium's own JPEG/WebP, a scaled capture for thumbnails, or a printed PDF. What happens
//! to the bytes afterwards is [`crate::output`]'s.

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams, PrintToPdfParams,
};

use crate::error::RenderError;
use crate::output::pdf::{PdfOptions, page_count, paper_size, print_scale};
use crate::output::picture;
use crate::output::tiles::{Shot, TILE_DEVICE_PX, decode, thumbnail_capture_scale};
use crate::request::{Progress, RenderRequest, Stage};

/// Captures the page's viewport (already sized to the picture) as a PNG.
pub async fn png(page: &Page) -> Result<bytes::Bytes, RenderError> {
    capture(page, CaptureScreenshotFormat::Png, None).await
}

/// Captures the viewport as JPEG or lossy WebP with Chromium's own encoders.
pub async fn native(
    page: &Page,
    format: picture::PictureFormat,
    quality: u8,
) -> Result<bytes::Bytes, RenderError> {
    let format = match format {
        picture::PictureFormat::Webp => CaptureScreenshotFormat::Webp,
        _ => CaptureScreenshotFormat::Jpeg,
    };
    capture(page, format, Some(quality)).await
}

async fn capture(
    page: &Page,
    format: CaptureScreenshotFormat,
    quality: Option<u8>,
) -> Result<bytes::Bytes, RenderError> {
    let mut params = CaptureScreenshotParams::builder()
        .format(format)
        .from_surface(true)
        .capture_beyond_viewport(false);
    if let Some(q) = quality {
        params = params.quality(q as i64);
    }
    let shot = page
        .execute(params.build())
        .await
        .map_err(|e| RenderError::cdp("capturing the picture", e))?;
    decode(shot.result.data.as_ref(), "decoding the picture")
}

/// Captures the whole `width × height` page drawn at `shrink` times its device size.
pub async fn png_scaled(
    page: &Page,
    width: u32,
    height: u32,
    shrink: f64,
) -> Result<bytes::Bytes, RenderError> {
    capture_clip(page, 0, width, height, shrink, "capturing the picture").await
}

/// A PNG of the CSS-pixel rows `y .. y + height`, drawn at `scale` times the device size.
pub(crate) async fn capture_clip(
    page: &Page,
    y: u32,
    width: u32,
    height: u32,
    scale: f64,
    stage: &'static str,
) -> Result<bytes::Bytes, RenderError> {
    let clip = chromiumoxide::cdp::browser_protocol::page::Viewport {
        x: 0.0,
        y: y as f64,
        width: width as f64,
        height: height as f64,
        scale,
    };
    let params = CaptureScreenshotParams::builder()
        .format(CaptureScreenshotFormat::Png)
        .from_surface(true)
        .capture_beyond_viewport(false)
        .clip(clip)
        .build();
    let shot = page
        .execute(params)
        .await
        .map_err(|e| RenderError::cdp(stage, e))?;
    decode(shot.result.data.as_ref(), "decoding the picture")
}

/// Captures a tall page in horizontal tiles and stitches them into one PNG while streaming,
/// so neither Chromium nor grender holds the whole bitmap of a very long dashboard at once.
/// Only whole scale factors tile exactly; others are captured in one piece.
pub async fn png_tiled(
    page: &Page,
    width: u32,
    height: u32,
    scale: f64,
) -> Result<bytes::Bytes, RenderError> {
    capture_page(page, width, height, scale).await?.into_png()
}

/// Captures the picture, in tiles when it is taller than [`TILE_DEVICE_PX`] device pixels.
pub async fn capture_page(
    page: &Page,
    width: u32,
    height: u32,
    scale: f64,
) -> Result<Shot, RenderError> {
    let whole = scale.fract() == 0.0 && scale >= 1.0;
    let device_height = (height as f64 * scale) as u64;
    if !whole || device_height <= TILE_DEVICE_PX as u64 {
        return png(page).await.map(Shot::Whole);
    }
    let s = scale as u32;
    let tile_css = (TILE_DEVICE_PX / s).max(1);
    // Compressed tiles are small; only one is decoded at a time while stitching.
    let mut tiles = Vec::new();
    let mut y = 0;
    while y < height {
        let h = tile_css.min(height - y);
        let tile = capture_clip(page, y, width, h, 1.0, "capturing a tile").await?;
        tiles.push((tile, h * s));
        y += h;
    }
    Ok(Shot::Tiles {
        tiles,
        width: width * s,
        height: height * s,
    })
}

/// Prints the page as a PDF.
pub async fn pdf(
    page: &Page,
    opts: &PdfOptions,
    device_scale: f64,
) -> Result<bytes::Bytes, RenderError> {
    let (width, height) = paper_size(&opts.format).ok_or_else(|| {
        RenderError::BadRequest(format!(
            "invalid 'pdf.format' query parameter: {:?}",
            opts.format
        ))
    })?;
    let mut params = PrintToPdfParams::builder()
        .landscape(opts.landscape)
        .print_background(opts.print_background)
        .scale(print_scale(device_scale).map_err(RenderError::BadRequest)?)
        .paper_width(width)
        .paper_height(height)
        .margin_top(0.0)
        .margin_bottom(0.0)
        .margin_left(0.0)
        .margin_right(0.0)
        .prefer_css_page_size(false);
    // Without ranges of its own, Chromium prints at most one page over render.max-pdf-pages
    // (it clamps a range's end to the document), so an endless page costs no endless PDF.
    let ranges = opts
        .page_ranges
        .clone()
        .unwrap_or_else(|| format!("1-{}", opts.max_pages.saturating_add(1)));
    params = params.page_ranges(ranges);
    let reply = page.execute(params.build()).await.map_err(|e| {
        let text = e.to_string();
        if opts.page_ranges.is_some() && text.to_ascii_lowercase().contains("range") {
            RenderError::BadRequest(format!(
                "invalid 'pdf.pageRanges' query parameter {:?}: {text}",
                opts.page_ranges.as_deref().unwrap_or("")
            ))
        } else {
            RenderError::cdp("printing the PDF", text)
        }
    })?;
    let pdf = decode(reply.result.data.as_ref(), "decoding the PDF")?;
    let pages = page_count(&pdf);
    if pages > opts.max_pages as usize {
        // Without ranges of its own, Chromium stopped one page over the cap.
        let more = match opts.page_ranges {
            Some(_) => pages.to_string(),
            None => format!("more than {}", opts.max_pages),
        };
        return Err(RenderError::TooLarge(format!(
            "the PDF would have {more} pages, above render.max-pdf-pages ({}). Fix: print fewer pages with \
             pdf.pageRanges (e.g. 1-{}), or raise render.max-pdf-pages",
            opts.max_pages, opts.max_pages
        )));
    }
    Ok(pdf)
}

/// An opt-in picture: Chromium's JPEG/WebP where it can, else its PNG converted here off the
/// async threads.
pub(crate) async fn picture(
    page: &Page,
    opts: &picture::PictureOptions,
    req: &RenderRequest,
    height: u32,
    progress: &Progress,
) -> Result<bytes::Bytes, RenderError> {
    let (width, scale) = (req.viewport.width, req.viewport.scale);
    let device_height = height as f64 * scale;
    if opts.chromium_encodes() && device_height <= TILE_DEVICE_PX as f64 {
        return native(page, opts.format, opts.quality()).await;
    }
    let png = match opts
        .thumbnail
        .and_then(|t| thumbnail_capture_scale(t, width, height, scale))
    {
        // Chromium draws the page at twice the thumbnail's width: the bitmap grender decodes
        // stays small however large the page, and Lanczos does the last halving.
        Some(shrink) => Shot::Whole(png_scaled(page, width, height, shrink).await?),
        None => capture_page(page, width, height, scale).await?,
    };
    progress.set(Stage::Converting);
    let opts = opts.clone();
    let time_left = req.deadline.remaining();
    tokio::task::spawn_blocking(move || picture::convert(png, &opts, time_left))
        .await
        .map_err(|e| RenderError::local("converting the picture", e))?
        .map(Into::into)
}
