//! Turning a ready page into the bytes Grafana asked for: a PNG screenshot or a PDF.

pub mod csv;
pub mod pdf;
pub mod picture;

use base64::Engine;
use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams,
};

use crate::error::RenderError;

/// The format of a `/render` answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Chromium's PNG as is: what Grafana expects.
    Png,
    /// An opt-in smaller picture: JPEG, WebP, optimised, palette, thumbnail, greyscale.
    Picture(picture::PictureOptions),
    Pdf(pdf::PdfOptions),
    /// The file Grafana's `d-csv` page downloads; `file_name` overrides its name.
    Csv {
        file_name: Option<String>,
    },
}

impl Output {
    /// The HTTP Content-Type of this output.
    pub fn content_type(&self) -> &'static str {
        match self {
            Output::Png => "image/png",
            Output::Picture(p) => p.format.content_type(),
            Output::Pdf(_) => "application/pdf",
            Output::Csv { .. } => "text/csv",
        }
    }

    /// The `encoding` label of the metrics.
    pub fn encoding_name(&self) -> &'static str {
        match self {
            Output::Png => "png",
            Output::Picture(p) => p.format.name(),
            Output::Pdf(_) => "pdf",
            Output::Csv { .. } => "csv",
        }
    }

    /// Everything that makes two outputs of the same page differ, for coalescing.
    pub fn key(&self) -> String {
        format!("{self:?}")
    }
}

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

/// Decodes a base64 CDP payload.
pub fn decode(data: &str, stage: &'static str) -> Result<bytes::Bytes, RenderError> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map(Into::into)
        .map_err(|e| RenderError::cdp(stage, e))
}

/// The tallest capture Chromium is asked to draw in one piece at a reduced scale.
const MAX_SCALED_CAPTURE_PX: f64 = 16_000.0;

/// Pixels of the bitmap a thumbnail is made from, at most (unless the thumbnail itself is
/// larger): 8 million, 32 MB decoded. Only very long pages reach it.
const THUMBNAIL_SOURCE_PIXELS: f64 = 8_000_000.0;

/// The capture scale (below 1) at which the picture comes out twice `thumbnail` pixels wide
/// (less for very long pages, see [`THUMBNAIL_SOURCE_PIXELS`], but never narrower than the
/// thumbnail), or None when the picture is not larger than that, or would still be too tall
/// to draw in one piece.
pub fn thumbnail_capture_scale(thumbnail: u32, width: u32, height: u32, scale: f64) -> Option<f64> {
    let (device_width, device_height) = (width as f64 * scale, height as f64 * scale);
    let budget = (THUMBNAIL_SOURCE_PIXELS / (device_width * device_height)).sqrt();
    let shrink = (2.0 * thumbnail as f64 / device_width)
        .min(budget)
        .max(thumbnail as f64 / device_width);
    (shrink < 1.0 && device_height * shrink <= MAX_SCALED_CAPTURE_PX).then_some(shrink)
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
async fn capture_clip(
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

/// Pages taller than this many device pixels are captured in tiles of this height.
pub const TILE_DEVICE_PX: u32 = 4096;

/// A page captured as PNG: in one piece, or in tiles stacked top to bottom.
pub enum Shot {
    /// Chromium's PNG of the whole picture.
    Whole(bytes::Bytes),
    /// PNG tiles of `(bytes, device rows)`, together `width × height` device pixels.
    Tiles {
        tiles: Vec<(bytes::Bytes, u32)>,
        width: u32,
        height: u32,
    },
}

impl Shot {
    /// One PNG: Chromium's as is, or the tiles stitched while streaming.
    pub fn into_png(self) -> Result<bytes::Bytes, RenderError> {
        match self {
            Shot::Whole(png) => Ok(png),
            Shot::Tiles {
                tiles,
                width,
                height,
            } => stitch(&tiles, width, height),
        }
    }

    /// The decoded pixels, without encoding stitched tiles into a PNG first.
    pub fn into_image(self) -> Result<image::DynamicImage, RenderError> {
        match self {
            Shot::Whole(png) => image::load_from_memory_with_format(&png, image::ImageFormat::Png)
                .map_err(|e| RenderError::cdp("decoding the picture", e)),
            Shot::Tiles {
                tiles,
                width,
                height,
            } => {
                let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
                for (tile, rows) in &tiles {
                    write_rgb_rows(tile, width, *rows, &mut rgb)?;
                }
                image::RgbImage::from_raw(width, height, rgb)
                    .map(image::DynamicImage::ImageRgb8)
                    .ok_or_else(|| {
                        RenderError::cdp("joining tiles", "the tiles do not fill the picture")
                    })
            }
        }
    }
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

/// One PNG of `width × height` from tiles stacked top to bottom.
fn stitch(
    tiles: &[(bytes::Bytes, u32)],
    width: u32,
    height: u32,
) -> Result<bytes::Bytes, RenderError> {
    let err = |e: png::EncodingError| RenderError::cdp("stitching the picture", e);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(err)?;
    let mut stream = writer.stream_writer().map_err(err)?;
    for (tile, rows) in tiles {
        write_rgb_rows(tile, width, *rows, &mut stream)?;
    }
    stream.finish().map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out.into())
}

/// Appends the rows of one tile (RGB or RGBA PNG of `width × rows`) as RGB.
fn write_rgb_rows(
    tile: &[u8],
    width: u32,
    rows: u32,
    out: &mut impl std::io::Write,
) -> Result<(), RenderError> {
    let err = |e: String| RenderError::cdp("stitching the picture", e);
    let mut decoder = png::Decoder::new(std::io::Cursor::new(tile));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| err(e.to_string()))?;
    let (w, h) = (reader.info().width, reader.info().height);
    if (w, h) != (width, rows) {
        return Err(err(format!(
            "a tile came back {w}×{h}, expected {width}×{rows}"
        )));
    }
    let mut buf = vec![
        0;
        reader
            .output_buffer_size()
            .ok_or_else(|| err("tile too large".into()))?
    ];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| err(e.to_string()))?;
    let channels = frame.color_type.samples();
    let data = &buf[..frame.buffer_size()];
    if channels == 3 {
        return out.write_all(data).map_err(|e| err(e.to_string()));
    }
    let rgb: Vec<u8> = data
        .chunks_exact(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    out.write_all(&rgb).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_are_drawn_at_twice_their_width_within_a_pixel_budget() {
        // A panel: twice the thumbnail's width.
        assert_eq!(thumbnail_capture_scale(300, 1000, 500, 1.0), Some(0.6));
        assert_eq!(thumbnail_capture_scale(300, 1000, 500, 2.0), Some(0.3));
        // Not smaller than the picture: no scaled capture.
        assert_eq!(thumbnail_capture_scale(600, 1000, 500, 1.0), None);
        // A very long page: the budget, but never narrower than the thumbnail.
        let shrink = thumbnail_capture_scale(400, 1000, 21_050, 1.0).unwrap_or(0.0);
        let pixels = 1000.0 * shrink * 21_050.0 * shrink;
        assert!(
            pixels <= THUMBNAIL_SOURCE_PIXELS + 1.0 && 1000.0 * shrink >= 400.0,
            "{shrink}"
        );
        assert_eq!(thumbnail_capture_scale(900, 1000, 10_000, 1.0), Some(0.9));
        // Still too tall to draw in one piece: captured in full-size tiles instead.
        assert_eq!(thumbnail_capture_scale(900, 1000, 21_050, 1.0), None);
    }
}
