//! Opt-in smaller pictures: JPEG, WebP, optimised and palette PNGs, thumbnails, greyscale.
//! Every option must give a decodable file of the right type and size, and the default
//! must stay Chromium's PNG, byte for byte.

use crate::common;

use common::{Harness, Rendered};
use grender::output::picture::decode;

const SOLO: &str = "/d-solo/formats/panel";

async fn render(h: &Harness, params: &[(&str, &str)]) -> Rendered {
    let mut all = vec![("height", "500")];
    all.extend_from_slice(params);
    h.render(&h.stub.url(SOLO), &all).await
}

/// Decodes the answer, checking status, Content-Type and the file's own signature.
fn picture(r: &Rendered, content_type: &str) -> image::DynamicImage {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], content_type);
    let magic_ok = match content_type {
        "image/png" => r.body.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => r.body.starts_with(&[0xff, 0xd8, 0xff]),
        "image/webp" => r.body.starts_with(b"RIFF") && &r.body[8..12] == b"WEBP",
        _ => false,
    };
    assert!(magic_ok, "the body is not a {content_type}");
    decode(&r.body).expect("decodes")
}

fn centre_is_drawn(img: &image::DynamicImage, tolerance: u8) -> bool {
    let p = img.to_rgb8();
    let px = p.get_pixel(img.width() / 2, img.height() / 2).0;
    px.iter()
        .zip(grafana_stub::DRAWN_RGB)
        .all(|(a, b)| a.abs_diff(b) <= tolerance)
}

fn png_color_type(bytes: &[u8]) -> png::ColorType {
    png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("PNG header")
        .info()
        .color_type
}

#[tokio::test]
async fn the_default_png_is_chromiums_own() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let plain = render(&h, &[]).await;
    let img = picture(&plain, "image/png");
    assert_eq!((img.width(), img.height()), (1000, 500));
    // The same page rendered again, and with every option spelled out at its default: the
    // same bytes, so nothing re-encodes a default picture.
    let again = render(&h, &[]).await;
    let spelled_out = render(
        &h,
        &[
            ("encoding", "png"),
            ("optimize", "false"),
            ("greyscale", "false"),
        ],
    )
    .await;
    assert!(again.body == plain.body, "two default renders differ");
    assert!(
        spelled_out.body == plain.body,
        "explicit defaults changed the PNG"
    );
    h.stop().await;
}

#[tokio::test]
async fn jpeg_and_webp_with_quality() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let plain = render(&h, &[]).await;
    for (encoding, content_type) in [
        ("jpeg", "image/jpeg"),
        ("jpg", "image/jpeg"),
        ("webp", "image/webp"),
    ] {
        let r = render(&h, &[("encoding", encoding)]).await;
        let img = picture(&r, content_type);
        assert_eq!((img.width(), img.height()), (1000, 500), "{encoding}");
        assert!(
            centre_is_drawn(&img, 12),
            "{encoding}: the panel is not in the picture"
        );
        assert!(
            r.body.len() < plain.body.len(),
            "{encoding} is not smaller than PNG"
        );
    }
    for encoding in ["jpeg", "webp"] {
        let low = render(&h, &[("encoding", encoding), ("quality", "20")]).await;
        let high = render(&h, &[("encoding", encoding), ("quality", "95")]).await;
        picture(&low, &format!("image/{encoding}"));
        picture(&high, &format!("image/{encoding}"));
        assert!(
            low.body.len() < high.body.len(),
            "{encoding}: quality 20 gave {} bytes, 95 gave {}",
            low.body.len(),
            high.body.len()
        );
    }
    // At a device scale factor the picture keeps the device size.
    let r = render(&h, &[("encoding", "jpeg"), ("deviceScaleFactor", "2")]).await;
    let img = picture(&r, "image/jpeg");
    assert_eq!((img.width(), img.height()), (2000, 1000));
    h.stop().await;
}

#[tokio::test]
async fn optimised_and_palette_pngs() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let plain = render(&h, &[]).await;
    let original = picture(&plain, "image/png").to_rgb8();

    let optimised = render(&h, &[("optimize", "true")]).await;
    let img = picture(&optimised, "image/png").to_rgb8();
    assert!(img == original, "optimize=true changed pixels");
    assert!(
        optimised.body.len() < plain.body.len(),
        "optimize=true gave {} bytes, the default {}",
        optimised.body.len(),
        plain.body.len()
    );

    let palette = render(&h, &[("colors", "256")]).await;
    let img = picture(&palette, "image/png");
    assert_eq!(png_color_type(&palette.body), png::ColorType::Indexed);
    assert_eq!((img.width(), img.height()), (1000, 500));
    assert!(
        centre_is_drawn(&img, 12),
        "the palette lost the panel's colour"
    );
    assert!(
        palette.body.len() < optimised.body.len(),
        "the palette PNG is not smaller"
    );
    let few = render(&h, &[("colors", "8")]).await;
    let img = picture(&few, "image/png").to_rgb8();
    let distinct: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(
        distinct.len() <= 8,
        "{} colours in an 8-colour PNG",
        distinct.len()
    );
    h.stop().await;
}

#[tokio::test]
async fn thumbnails_and_greyscale() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let plain = render(&h, &[]).await;
    for (params, content_type) in [
        (vec![("thumbnail", "300")], "image/png"),
        (
            vec![("thumbnail", "300"), ("encoding", "jpeg")],
            "image/jpeg",
        ),
        (
            vec![("thumbnail", "300"), ("encoding", "webp")],
            "image/webp",
        ),
        (
            vec![("thumbnail", "300"), ("deviceScaleFactor", "2")],
            "image/png",
        ),
    ] {
        let r = render(&h, &params).await;
        let img = picture(&r, content_type);
        assert_eq!((img.width(), img.height()), (300, 150), "{params:?}");
        assert!(
            centre_is_drawn(&img, 12),
            "{params:?}: the panel is not in the thumbnail"
        );
        assert!(
            r.body.len() < plain.body.len() / 2,
            "{params:?}: {} bytes",
            r.body.len()
        );
    }
    // A thumbnail wider than the picture leaves it as it is.
    let r = render(&h, &[("thumbnail", "4000")]).await;
    assert_eq!(picture(&r, "image/png").width(), 1000);

    for params in [
        vec![("greyscale", "true")],
        vec![("grayscale", "1"), ("encoding", "jpeg")],
        vec![
            ("greyscale", "true"),
            ("thumbnail", "200"),
            ("encoding", "webp"),
        ],
    ] {
        let content_type = match params.iter().find(|(k, _)| *k == "encoding") {
            Some((_, "jpeg")) => "image/jpeg",
            Some((_, "webp")) => "image/webp",
            _ => "image/png",
        };
        let r = render(&h, &params).await;
        let img = picture(&r, content_type).to_rgb8();
        let coloured = img
            .pixels()
            .filter(|p| p.0[0] != p.0[1] || p.0[1] != p.0[2])
            .count();
        assert_eq!(coloured, 0, "{params:?}: {coloured} coloured pixels");
    }
    let grey = render(&h, &[("greyscale", "true")]).await;
    assert_eq!(png_color_type(&grey.body), png::ColorType::Grayscale);
    assert!(grey.body.len() < plain.body.len());
    h.stop().await;
}

#[tokio::test]
async fn a_tall_page_as_jpeg_and_as_thumbnail_is_whole() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let page = h.stub.url("/d/tallfmt/x?panels=16&panelHeight=300&lazy=1");
    let png = h.render(&page, &[("height", "-1")]).await;
    let jpeg = h
        .render(&page, &[("height", "-1"), ("encoding", "jpeg")])
        .await;
    let (a, b) = (picture(&png, "image/png"), picture(&jpeg, "image/jpeg"));
    assert!(a.height() > 4096, "not a tiled page: {}", a.height());
    assert_eq!((a.width(), a.height()), (b.width(), b.height()));

    // A thumbnail of the whole page: the right size, and every panel down the page in it.
    let thumb = h
        .render(&page, &[("height", "-1"), ("thumbnail", "200")])
        .await;
    let t = picture(&thumb, "image/png");
    let expected_height = a.height() as f64 * 200.0 / a.width() as f64;
    assert_eq!(t.width(), 200);
    assert!(
        (t.height() as f64 - expected_height).abs() <= 2.0,
        "{} vs {expected_height}",
        t.height()
    );
    let drawn_share = |img: &image::DynamicImage| {
        let rgb = img.to_rgb8();
        let x = img.width() / 2;
        let drawn = (0..img.height())
            .filter(|&y| {
                rgb.get_pixel(x, y)
                    .0
                    .iter()
                    .zip(grafana_stub::DRAWN_RGB)
                    .all(|(p, d)| p.abs_diff(d) <= 12)
            })
            .count();
        drawn as f64 / img.height() as f64
    };
    let (full, small) = (drawn_share(&a), drawn_share(&t));
    assert!(full > 0.5, "the full page is mostly panels: {full}");
    assert!(
        (full - small).abs() < 0.1,
        "panels missing from the thumbnail: {small} vs {full}"
    );
    h.stop().await;
}

#[tokio::test]
async fn bad_picture_options_are_refused_clearly() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    for (params, names) in [
        (vec![("encoding", "gif")], "encoding"),
        (vec![("quality", "80")], "quality"),
        (vec![("encoding", "jpeg"), ("quality", "0")], "quality"),
        (vec![("encoding", "webp"), ("quality", "101")], "quality"),
        (vec![("colors", "1")], "colors"),
        (vec![("encoding", "jpeg"), ("colors", "16")], "colors"),
        (vec![("thumbnail", "8")], "thumbnail"),
        (vec![("thumbnail", "wide")], "thumbnail"),
        (vec![("greyscale", "maybe")], "greyscale"),
        (vec![("encoding", "pdf"), ("thumbnail", "300")], "thumbnail"),
    ] {
        let r = render(&h, &params).await;
        assert_eq!(r.status, 400, "{params:?}: {}", r.text());
        assert!(r.text().contains(names), "{params:?}: {}", r.text());
    }
    h.stop().await;
}
