//! Pure pixel work on captures: tall pages come as PNG tiles stacked top to bottom, stitched
//! while streaming; thumbnails are drawn at a reduced scale chosen here.

use base64::Engine;

use crate::error::RenderError;

/// Decodes a base64 CDP payload.
pub fn decode(data: &str, stage: &'static str) -> Result<bytes::Bytes, RenderError> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map(Into::into)
        .map_err(|e| RenderError::local(stage, e))
}

/// The tallest capture Chromium is asked to draw in one piece at a reduced scale.
pub const MAX_SCALED_CAPTURE_PX: f64 = 16_000.0;

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
                .map_err(|e| RenderError::local("decoding the picture", e)),
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
                        RenderError::local("joining tiles", "the tiles do not fill the picture")
                    })
            }
        }
    }
}

/// One PNG of `width × height` from tiles stacked top to bottom.
pub fn stitch(
    tiles: &[(bytes::Bytes, u32)],
    width: u32,
    height: u32,
) -> Result<bytes::Bytes, RenderError> {
    let err = |e: png::EncodingError| RenderError::local("stitching the picture", e);
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
    let err = |e: String| RenderError::local("stitching the picture", e);
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
