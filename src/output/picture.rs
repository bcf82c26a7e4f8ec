//! Smaller pictures for e-mail and chat, all opt-in: JPEG and WebP, a lossless PNG
//! recompression, a palette PNG, thumbnails and greyscale. Grafana itself only reads PNG, so
//! a request without these options never reaches this module and gets Chromium's PNG as is.
//!
//! Where Chromium can produce the result itself (JPEG or lossy WebP of the page as shown) it
//! does; everything else is decoded once and re-encoded here, on a blocking thread.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ExtendedColorType, ImageEncoder};

use crate::error::RenderError;

/// The file format of a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PictureFormat {
    Png,
    Jpeg,
    Webp,
}

impl PictureFormat {
    /// The `encoding` value and metric label.
    pub fn name(self) -> &'static str {
        match self {
            PictureFormat::Png => "png",
            PictureFormat::Jpeg => "jpeg",
            PictureFormat::Webp => "webp",
        }
    }

    /// The HTTP Content-Type.
    pub fn content_type(self) -> &'static str {
        match self {
            PictureFormat::Png => "image/png",
            PictureFormat::Jpeg => "image/jpeg",
            PictureFormat::Webp => "image/webp",
        }
    }
}

/// Default `quality` of JPEG pictures (1–100).
pub const DEFAULT_JPEG_QUALITY: u8 = 85;
/// Default `quality` of lossy WebP pictures (1–100).
pub const DEFAULT_WEBP_QUALITY: u8 = 80;
/// WebP cannot hold pictures taller or wider than this.
pub const WEBP_MAX_SIDE: u32 = 16383;

/// Everything a request asked of its picture beyond Chromium's PNG.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PictureOptions {
    pub format: PictureFormat,
    /// JPEG / WebP quality, 1–100.
    pub quality: Option<u8>,
    /// Lossless PNG recompression (`optimize=true`).
    pub optimize: bool,
    /// A palette PNG with at most this many colours (`colors=2..256`).
    pub colors: Option<u16>,
    /// Width in pixels of a downscaled picture (`thumbnail=WIDTH`).
    pub thumbnail: Option<u32>,
    /// Grey levels only (`greyscale=true`), for e-paper displays.
    pub greyscale: bool,
}

impl PictureOptions {
    /// True when Chromium's own capture is the answer: JPEG or WebP of the page as shown.
    pub fn chromium_encodes(&self) -> bool {
        self.format != PictureFormat::Png && self.thumbnail.is_none() && !self.greyscale
    }

    /// The quality for Chromium's or our encoder.
    pub fn quality(&self) -> u8 {
        self.quality.unwrap_or(match self.format {
            PictureFormat::Webp => DEFAULT_WEBP_QUALITY,
            _ => DEFAULT_JPEG_QUALITY,
        })
    }
}

/// oxipng's preset: level 2 (its default) measured 28–38 % smaller than Chromium's PNGs of
/// the stand-in's dashboards; higher levels gained 3 % more for 5–8× the time.
const OXIPNG_PRESET: u8 = 2;

/// Turns Chromium's capture into the requested picture within `time_left` (the request's
/// deadline; PNG recompression stops early, keeping what it has). CPU-bound: call on a
/// blocking thread.
pub fn convert(
    shot: super::tiles::Shot,
    opts: &PictureOptions,
    time_left: std::time::Duration,
) -> Result<Vec<u8>, RenderError> {
    let err = |e: image::ImageError| RenderError::cdp("converting the picture", e);
    let recompress = |png: Vec<u8>| -> Result<Vec<u8>, RenderError> {
        if !opts.optimize {
            return Ok(png);
        }
        let mut options = oxipng::Options::from_preset(OXIPNG_PRESET);
        options.timeout = Some(time_left);
        oxipng::optimize_from_memory(&png, &options)
            .map_err(|e| RenderError::cdp("optimising the PNG", e))
    };
    if opts.format == PictureFormat::Png
        && opts.colors.is_none()
        && opts.thumbnail.is_none()
        && !opts.greyscale
    {
        return recompress(shot.into_png()?.to_vec());
    }
    let mut decoded = shot.into_image()?;
    // Shrink first, on the decoded 8-bit pixels, so that later copies are thumbnail-sized.
    if let Some(width) = opts.thumbnail {
        decoded = shrink(decoded, width)?;
    }
    // Grafana pages are opaque: drop the alpha channel unless some pixel uses it.
    let opaque = decoded
        .as_rgba8()
        .is_none_or(|rgba| rgba.pixels().all(|p| p.0[3] == 255));
    let mut picture: DynamicImage = if opaque {
        decoded.into_rgb8().into()
    } else {
        decoded.into_rgba8().into()
    };
    if opts.greyscale && matches!(picture, DynamicImage::ImageRgb8(_)) {
        picture = DynamicImage::ImageLuma8(picture.into_luma8());
    } else if opts.greyscale {
        picture = DynamicImage::ImageLumaA8(picture.into_luma_alpha8());
    }
    let (w, h) = (picture.width(), picture.height());
    let mut out = Vec::new();
    match opts.format {
        PictureFormat::Png => {
            match opts.colors {
                Some(colors) => palette_png(&picture, colors, &mut out)?,
                None => write_png(&picture, &mut out)?,
            }
            return recompress(out);
        }
        PictureFormat::Jpeg => JpegEncoder::new_with_quality(&mut out, opts.quality())
            .write_image(picture.as_bytes(), w, h, color_type(&picture))
            .map_err(err)?,
        PictureFormat::Webp => {
            if w > WEBP_MAX_SIDE || h > WEBP_MAX_SIDE {
                return Err(RenderError::cdp(
                    "encoding WebP",
                    format!("{w}×{h} is over WebP's {WEBP_MAX_SIDE} px limit; use png or jpeg"),
                ));
            }
            // The pure-Rust WebP encoder is lossless; lossy WebP comes from Chromium.
            WebPEncoder::new_lossless(&mut out)
                .write_image(picture.as_bytes(), w, h, color_type(&picture))
                .map_err(err)?
        }
    }
    Ok(out)
}

fn color_type(picture: &DynamicImage) -> ExtendedColorType {
    match picture {
        DynamicImage::ImageLuma8(_) => ExtendedColorType::L8,
        DynamicImage::ImageLumaA8(_) => ExtendedColorType::La8,
        DynamicImage::ImageRgba8(_) => ExtendedColorType::Rgba8,
        _ => ExtendedColorType::Rgb8,
    }
}

/// Downscales to `width` (keeping the aspect ratio) with a Lanczos filter, which keeps thin
/// graph lines and small text legible; never upscales. Works on the 8-bit RGB(A) pixels as
/// decoded, so its working memory is a fraction of the source's (the `image` crate's own
/// resize would hold an f32 RGBA copy, 16 bytes a pixel).
fn shrink(picture: DynamicImage, width: u32) -> Result<DynamicImage, RenderError> {
    use fast_image_resize::images::Image;
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
    if width >= picture.width() {
        return Ok(picture);
    }
    let err = |e: String| RenderError::cdp("making the thumbnail", e);
    let height = ((picture.height() as u64 * width as u64) / picture.width() as u64).max(1) as u32;
    let (src_width, src_height) = (picture.width(), picture.height());
    let (pixel_type, rgba) = match picture {
        DynamicImage::ImageRgba8(_) => (PixelType::U8x4, true),
        _ => (PixelType::U8x3, false),
    };
    let pixels = if rgba {
        picture.into_rgba8().into_raw()
    } else {
        picture.into_rgb8().into_raw()
    };
    let src = Image::from_vec_u8(src_width, src_height, pixels, pixel_type)
        .map_err(|e| err(e.to_string()))?;
    let mut dst = Image::new(width, height, pixel_type);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| err(e.to_string()))?;
    drop(src);
    let out = dst.into_vec();
    let resized = if rgba {
        image::RgbaImage::from_raw(width, height, out).map(DynamicImage::ImageRgba8)
    } else {
        image::RgbImage::from_raw(width, height, out).map(DynamicImage::ImageRgb8)
    };
    resized.ok_or_else(|| err("the resized buffer has the wrong size".into()))
}

/// A truecolour or grey PNG.
fn write_png(picture: &DynamicImage, out: &mut Vec<u8>) -> Result<(), RenderError> {
    let err = |e: png::EncodingError| RenderError::cdp("encoding the picture", e);
    let mut encoder = png::Encoder::new(&mut *out, picture.width(), picture.height());
    encoder.set_color(match picture {
        DynamicImage::ImageLuma8(_) => png::ColorType::Grayscale,
        DynamicImage::ImageLumaA8(_) => png::ColorType::GrayscaleAlpha,
        DynamicImage::ImageRgba8(_) => png::ColorType::Rgba,
        _ => png::ColorType::Rgb,
    });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    let mut writer = encoder.write_header().map_err(err)?;
    writer.write_image_data(picture.as_bytes()).map_err(err)?;
    writer.finish().map_err(err)
}

/// An indexed PNG with a NeuQuant palette of at most `colors` entries.
fn palette_png(picture: &DynamicImage, colors: u16, out: &mut Vec<u8>) -> Result<(), RenderError> {
    let err = |e: png::EncodingError| RenderError::cdp("encoding the picture", e);
    let rgba = picture.to_rgba8();
    // Sample every 10th pixel: NeuQuant's speed/quality trade-off for screenshots.
    let quant = color_quant::NeuQuant::new(10, colors as usize, rgba.as_raw());
    let indices: Vec<u8> = rgba
        .as_raw()
        .chunks_exact(4)
        .map(|p| quant.index_of(p) as u8)
        .collect();
    let palette: Vec<u8> = quant
        .color_map_rgb()
        .chunks_exact(3)
        .take(colors as usize)
        .flatten()
        .copied()
        .collect();
    let mut encoder = png::Encoder::new(&mut *out, picture.width(), picture.height());
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(palette);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().map_err(err)?;
    writer.write_image_data(&indices).map_err(err)?;
    writer.finish().map_err(err)
}

/// Decodes any picture grender produced, for tests and the benchmark.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, image::ImageError> {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()?
        .decode()
}
