//! The image-processing handlers on images generated here: sizes, a golden checksum, the
//! direction of every filter, format round trips, and bad input.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use atmo_core::{ErrorCategory, Resources, TaskContext};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Kit, assert_invalid, assert_schema_rejects, run};

const K: Kit = Kit::ImageProcessing;

// ===== fixtures =====

/// A 64×48 test card: smooth gradients, a bright square and dark diagonal stripes, so that
/// every filter has edges, flat areas and every channel to work on.
fn card() -> RgbImage {
    RgbImage::from_fn(64, 48, |x, y| {
        if (16..32).contains(&x) && (12..28).contains(&y) {
            Rgb([240, 230, 200])
        } else if (x + y) % 12 < 2 {
            Rgb([20, 30, 40])
        } else {
            Rgb([(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8])
        }
    })
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Result<String> {
    let mut buf = Cursor::new(Vec::new());
    image.write_to(&mut buf, format)?;
    Ok(B64.encode(buf.into_inner()))
}

fn card_png() -> Result<String> {
    encode(&DynamicImage::ImageRgb8(card()), ImageFormat::Png)
}

/// The result's image, decoded, with the format its bytes really are.
fn output(result: &Value) -> Result<(ImageFormat, DynamicImage)> {
    let bytes = B64.decode(result["imageData"].as_str().context("no imageData")?)?;
    ensure!(result["bytes"] == bytes.len(), "bytes field {} but {} bytes", result["bytes"], bytes.len());
    let format = image::guess_format(&bytes)?;
    let image = image::load_from_memory(&bytes)?;
    ensure!(result["width"] == image.width() && result["height"] == image.height(), "size fields disagree");
    Ok((format, image))
}

fn filtered(filter: &str, intensity: f64, image: &str) -> Result<RgbaImage> {
    let r = run(K, "APPLY_FILTER", json!({"imageData": image, "filter": filter, "intensity": intensity}))?;
    ensure!(r["filter"] == filter && r["format"] == "png", "{r:?}");
    Ok(output(&r)?.1.to_rgba8())
}

fn mean(img: &RgbaImage) -> f64 {
    let sum: u64 = img.pixels().flat_map(|p| p.0[..3].iter().map(|&c| u64::from(c))).sum();
    sum as f64 / (img.width() * img.height() * 3) as f64
}

fn std_dev(img: &RgbaImage) -> f64 {
    let m = mean(img);
    let sq: f64 = img.pixels().flat_map(|p| p.0[..3].iter().map(move |&c| (f64::from(c) - m).powi(2))).sum();
    (sq / (img.width() * img.height() * 3) as f64).sqrt()
}

/// Sum of absolute differences between horizontal and vertical neighbours: high for sharp
/// images, low for blurred ones.
fn edge_energy(img: &RgbaImage) -> u64 {
    let mut e = 0u64;
    for y in 0..img.height() {
        for x in 0..img.width() {
            let p = img.get_pixel(x, y).0;
            for (dx, dy) in [(1, 0), (0, 1)] {
                if x + dx < img.width() && y + dy < img.height() {
                    let q = img.get_pixel(x + dx, y + dy).0;
                    e += (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>();
                }
            }
        }
    }
    e
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// ===== the manifest =====

#[test]
fn manifest_keeps_the_original_declaration() {
    let m = atmo_builtins::image_processing_manifest();
    assert_eq!((m.name.as_str(), m.version.as_str()), ("image-processing", "1.0.0"));
    assert_eq!(m.max_concurrent_tasks, Some(4));
    assert_eq!(m.default_timeout, Some(Duration::from_secs(60)));
    let ids: Vec<&str> = m.action_ids().collect();
    assert_eq!(ids, ["RESIZE_IMAGE", "APPLY_FILTER", "CROP_IMAGE", "ROTATE_IMAGE", "CONVERT_FORMAT", "THUMBNAIL"]);

    let spec =
        |action: &str, name: &str| m.action(action).and_then(|a| a.parameters.iter().find(|p| p.name == name)).cloned();
    let names = |action: &str| -> Vec<String> {
        m.action(action).map(|a| a.parameters.iter().map(|p| p.name.clone()).collect()).unwrap_or_default()
    };
    // The original parameters come first, in the original order.
    assert_eq!(names("RESIZE_IMAGE")[..5], ["imageData", "width", "height", "preserveAspectRatio", "quality"]);
    assert_eq!(names("APPLY_FILTER")[..3], ["imageData", "filter", "intensity"]);
    for side in ["width", "height"] {
        let s = spec("RESIZE_IMAGE", side);
        assert_eq!(s.as_ref().map(|s| (s.required, s.minimum, s.maximum)), Some((true, Some(1.0), Some(8192.0))));
    }
    let s = spec("RESIZE_IMAGE", "preserveAspectRatio");
    assert_eq!(s.and_then(|s| s.default), Some(json!(true)));
    let s = spec("RESIZE_IMAGE", "quality");
    assert_eq!(s.map(|s| (s.default, s.minimum, s.maximum)), Some((Some(json!(90)), Some(1.0), Some(100.0))));
    let s = spec("APPLY_FILTER", "intensity");
    assert_eq!(s.map(|s| (s.default, s.minimum, s.maximum)), Some((Some(json!(1.0)), Some(0.0), Some(2.0))));
    let s = spec("APPLY_FILTER", "filter");
    assert_eq!(
        s.and_then(|s| s.allowed_values),
        Some(["blur", "sharpen", "grayscale", "sepia", "vintage", "brightness", "contrast"].map(Value::from).to_vec())
    );

    let handlers = atmo_builtins::image_processing_handlers();
    assert_eq!(handlers.len(), m.actions.len());
    for a in &m.actions {
        assert!(handlers.get(&a.action_id).is_some_and(|h| h.is_sync()), "{}", a.action_id);
        assert!(a.retryable, "{}", a.action_id);
        assert_eq!(a.response_type.as_deref(), Some("IMAGE_RESULT"), "{}", a.action_id);
        assert_eq!(a.parameters.first().map(|p| p.name.as_str()), Some("imageData"), "{}", a.action_id);
    }
}

// ===== resize, thumbnail, crop, rotate =====

#[test]
fn resize_fits_inside_the_box_or_stretches_to_it() -> Result<()> {
    let png = card_png()?;
    let fit = run(K, "RESIZE_IMAGE", json!({"imageData": png, "width": 32, "height": 32}))?;
    assert_eq!((fit["width"].clone(), fit["height"].clone()), (json!(32), json!(24)));
    assert_eq!(fit["original"], json!({"format": "png", "width": 64, "height": 48, "bytes": B64.decode(&png)?.len()}));
    assert_eq!((fit["operation"].clone(), fit["preserveAspectRatio"].clone()), (json!("resize"), json!(true)));
    let (format, img) = output(&fit)?;
    assert_eq!((format, img.width(), img.height()), (ImageFormat::Png, 32, 24));

    let exact =
        run(K, "RESIZE_IMAGE", json!({"imageData": png, "width": 32, "height": 32, "preserveAspectRatio": false}))?;
    assert_eq!(output(&exact)?.1.dimensions_tuple(), (32, 32));

    // Enlarging works too, and every resampling filter gives the asked size.
    for resampling in ["nearest", "triangle", "catmullrom", "gaussian", "lanczos3"] {
        let up =
            run(K, "RESIZE_IMAGE", json!({"imageData": png, "width": 200, "height": 100, "resampling": resampling}))?;
        assert_eq!(output(&up)?.1.dimensions_tuple(), (133, 100), "{resampling}");
    }
    Ok(())
}

trait Dimensions {
    fn dimensions_tuple(&self) -> (u32, u32);
}

impl Dimensions for DynamicImage {
    fn dimensions_tuple(&self) -> (u32, u32) {
        (self.width(), self.height())
    }
}

#[test]
fn thumbnails_fit_the_size_and_never_enlarge() -> Result<()> {
    let png = card_png()?;
    let t = run(K, "THUMBNAIL", json!({"imageData": png, "size": 16}))?;
    assert_eq!((t["scaled"].clone(), output(&t)?.1.dimensions_tuple()), (json!(true), (16, 12)));
    let t = run(K, "THUMBNAIL", json!({"imageData": png}))?;
    assert_eq!((t["scaled"].clone(), output(&t)?.1.dimensions_tuple()), (json!(false), (64, 48)));
    Ok(())
}

#[test]
fn crop_cuts_the_exact_rectangle() -> Result<()> {
    let r = run(K, "CROP_IMAGE", json!({"imageData": card_png()?, "x": 10, "y": 5, "width": 20, "height": 15}))?;
    assert_eq!(r["crop"], json!({"x": 10, "y": 5, "width": 20, "height": 15}));
    let img = output(&r)?.1.to_rgb8();
    assert_eq!(img.dimensions(), (20, 15));
    let card = card();
    for (x, y) in [(0, 0), (19, 14), (7, 9)] {
        assert_eq!(img.get_pixel(x, y), card.get_pixel(10 + x, 5 + y), "({x}, {y})");
    }
    // The whole image is a valid crop.
    let r = run(K, "CROP_IMAGE", json!({"imageData": card_png()?, "x": 0, "y": 0, "width": 64, "height": 48}))?;
    assert_eq!(output(&r)?.1.to_rgb8(), card);
    Ok(())
}

#[test]
fn rotations_turn_clockwise_and_flips_mirror() -> Result<()> {
    let png = card_png()?;
    let card = card();
    let (w, h) = card.dimensions();
    let rotated = |params: Value| -> Result<RgbImage> {
        let mut p = json!({"imageData": png});
        if let (Some(p), Some(extra)) = (p.as_object_mut(), params.as_object()) {
            p.extend(extra.clone());
        }
        Ok(output(&run(K, "ROTATE_IMAGE", p)?)?.1.to_rgb8())
    };
    // Default: a quarter turn clockwise; the top-left pixel goes to the top-right corner.
    let r90 = rotated(json!({}))?;
    assert_eq!(r90.dimensions(), (h, w));
    assert_eq!(r90.get_pixel(h - 1, 0), card.get_pixel(0, 0));
    assert_eq!(r90.get_pixel(0, 0), card.get_pixel(0, h - 1));
    let r180 = rotated(json!({"angle": 180}))?;
    assert_eq!(r180.dimensions(), (w, h));
    assert_eq!(r180.get_pixel(w - 1, h - 1), card.get_pixel(0, 0));
    let r270 = rotated(json!({"angle": 270}))?;
    assert_eq!(r270.dimensions(), (h, w));
    assert_eq!(r270.get_pixel(0, w - 1), card.get_pixel(0, 0));
    let same = rotated(json!({"angle": 0}))?;
    assert_eq!(same, card);
    let mirrored = rotated(json!({"angle": 0, "flip": "horizontal"}))?;
    assert_eq!(mirrored.get_pixel(w - 1, 3), card.get_pixel(0, 3));
    let upside = rotated(json!({"angle": 0, "flip": "vertical"}))?;
    assert_eq!(upside.get_pixel(5, h - 1), card.get_pixel(5, 0));
    // A turn and a flip: 90° clockwise then a horizontal flip is a transpose.
    let transposed = rotated(json!({"angle": 90, "flip": "horizontal"}))?;
    assert_eq!(transposed.get_pixel(7, 3), card.get_pixel(3, 7));
    Ok(())
}

// ===== filters =====

#[test]
fn filter_output_matches_its_golden_checksum() -> Result<()> {
    // Sepia and contrast are per-pixel arithmetic, identical on every platform; the checksum
    // is over the decoded RGBA pixels, so it does not depend on the PNG encoder's choices.
    let png = card_png()?;
    let sepia = filtered("sepia", 1.0, &png)?;
    // The checksum freezes pixels that follow the CSS sepia matrix (to rounding).
    for (out, src) in sepia.pixels().zip(card().pixels()) {
        let [r, g, b] = src.0.map(f64::from);
        let expected =
            [0.393 * r + 0.769 * g + 0.189 * b, 0.349 * r + 0.686 * g + 0.168 * b, 0.272 * r + 0.534 * g + 0.131 * b];
        for (o, e) in out.0.iter().zip(expected) {
            assert!((f64::from(*o) - e.min(255.0)).abs() <= 0.51, "{out:?} from {src:?}");
        }
    }
    assert_eq!(sha256_hex(sepia.as_raw()), "d46c1f905c1808281c8e4f690e82e1c55715c22cf3eea70fbbb97b43e417e421");
    let contrast = filtered("contrast", 0.5, &png)?;
    assert_eq!(sha256_hex(contrast.as_raw()), "367b0011ff67cc1c6276c82c5c3efc39ecc1591a88a4dd1ec788c68620eb273d");
    Ok(())
}

#[test]
fn intensity_zero_leaves_every_filter_without_effect() -> Result<()> {
    let png = card_png()?;
    let original = DynamicImage::ImageRgb8(card()).to_rgba8();
    for filter in ["blur", "sharpen", "grayscale", "sepia", "vintage", "brightness", "contrast"] {
        assert_eq!(filtered(filter, 0.0, &png)?, original, "{filter}");
    }
    Ok(())
}

#[test]
fn tone_filters_change_pixels_as_their_names_say() -> Result<()> {
    let png = card_png()?;
    let original = DynamicImage::ImageRgb8(card()).to_rgba8();

    let gray = filtered("grayscale", 1.0, &png)?;
    assert!(gray.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]));
    let half_gray = filtered("grayscale", 0.5, &png)?;
    assert!(half_gray.pixels().any(|p| p.0[0] != p.0[2]), "half grayscale keeps some color");

    let sepia = filtered("sepia", 1.0, &png)?;
    assert!(sepia.pixels().all(|p| p.0[0] >= p.0[1] && p.0[1] >= p.0[2]), "sepia is warm: r ≥ g ≥ b");

    let (m0, m1, m2) =
        (mean(&original), mean(&filtered("brightness", 1.0, &png)?), mean(&filtered("brightness", 2.0, &png)?));
    assert!(m0 < m1 && m1 < m2, "brightness means {m0} {m1} {m2}");

    let (s0, s1, s2) =
        (std_dev(&original), std_dev(&filtered("contrast", 1.0, &png)?), std_dev(&filtered("contrast", 2.0, &png)?));
    assert!(s0 < s1 && s1 < s2, "contrast spreads {s0} {s1} {s2}");
    Ok(())
}

#[test]
fn blur_softens_and_sharpen_hardens_edges() -> Result<()> {
    let png = card_png()?;
    let e0 = edge_energy(&DynamicImage::ImageRgb8(card()).to_rgba8());
    let (b1, b2) = (edge_energy(&filtered("blur", 1.0, &png)?), edge_energy(&filtered("blur", 2.0, &png)?));
    assert!(b2 < b1 && b1 < e0, "blur edge energy {e0} {b1} {b2}");
    let (s1, s2) = (edge_energy(&filtered("sharpen", 1.0, &png)?), edge_energy(&filtered("sharpen", 2.0, &png)?));
    assert!(e0 < s1 && s1 < s2, "sharpen edge energy {e0} {s1} {s2}");
    Ok(())
}

#[test]
fn vintage_warms_fades_and_darkens_the_corners() -> Result<()> {
    let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(65, 65, Rgb([128, 128, 128])));
    let png = encode(&flat, ImageFormat::Png)?;
    let v = filtered("vintage", 1.0, &png)?;
    let (centre, corner) = (v.get_pixel(32, 32).0, v.get_pixel(0, 0).0);
    assert!(centre[0] > centre[2], "warm: {centre:?}");
    assert!(corner[..3].iter().zip(&centre[..3]).all(|(a, b)| a < b), "vignette: {corner:?} vs {centre:?}");
    let stronger = filtered("vintage", 2.0, &png)?;
    assert!(stronger.get_pixel(0, 0).0[1] < corner[1], "a stronger vignette at intensity 2");
    // Fading pulls black up and white down.
    let extremes =
        DynamicImage::ImageRgb8(RgbImage::from_fn(2, 1, |x, _| if x == 0 { Rgb([0; 3]) } else { Rgb([255; 3]) }));
    let v = filtered("vintage", 1.0, &encode(&extremes, ImageFormat::Png)?)?;
    assert!(v.get_pixel(0, 0).0[1] > 0 && v.get_pixel(1, 0).0[1] < 255, "{v:?}");
    Ok(())
}

#[test]
fn filters_keep_alpha() -> Result<()> {
    let rgba = RgbaImage::from_fn(8, 8, |x, y| Rgba([200, 100, 50, (x * 32 + y) as u8]));
    let png = encode(&DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Png)?;
    for filter in ["sepia", "brightness", "grayscale"] {
        let out = filtered(filter, 1.0, &png)?;
        assert!(out.pixels().zip(rgba.pixels()).all(|(a, b)| a.0[3] == b.0[3]), "{filter}");
    }
    Ok(())
}

// ===== formats =====

#[test]
fn conversions_round_trip_through_every_output_format() -> Result<()> {
    let png = card_png()?;
    let card = card();
    // PNG → WebP (lossless) → PNG keeps every pixel.
    let webp = run(K, "CONVERT_FORMAT", json!({"imageData": png, "format": "webp"}))?;
    assert_eq!(
        (webp["mimeType"].clone(), webp["lossless"].clone(), webp["quality"].clone()),
        (json!("image/webp"), json!(true), Value::Null)
    );
    let (format, img) = output(&webp)?;
    assert_eq!((format, img.to_rgb8()), (ImageFormat::WebP, card.clone()));
    let back = run(K, "CONVERT_FORMAT", json!({"imageData": webp["imageData"], "format": "png"}))?;
    assert_eq!(back["original"]["format"], "webp");
    assert_eq!(output(&back)?, (ImageFormat::Png, DynamicImage::ImageRgb8(card.clone())));

    // PNG → JPEG: lossy, so close rather than equal; higher quality, closer and bigger.
    let jpeg = |quality: u32| run(K, "CONVERT_FORMAT", json!({"imageData": png, "format": "jpeg", "quality": quality}));
    let (low, high) = (jpeg(30)?, jpeg(95)?);
    assert_eq!((high["quality"].clone(), high["lossless"].clone()), (json!(95), json!(false)));
    let error = |r: &Value| -> Result<f64> {
        let (format, img) = output(r)?;
        ensure!(format == ImageFormat::Jpeg && img.width() == 64 && img.height() == 48);
        let img = img.to_rgb8();
        let diff: u64 = img.as_raw().iter().zip(card.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        Ok(diff as f64 / card.as_raw().len() as f64)
    };
    let (e_low, e_high) = (error(&low)?, error(&high)?);
    assert!(e_high < e_low && e_high < 6.0, "mean errors {e_high} (q95) {e_low} (q30)");
    assert!(high["bytes"].as_u64() > low["bytes"].as_u64());

    // JPEG in, default format: JPEG out; GIF in: PNG out (GIF is not written), as a data URL.
    let r = run(K, "ROTATE_IMAGE", json!({"imageData": high["imageData"], "angle": 180}))?;
    assert_eq!((r["format"].clone(), output(&r)?.0), (json!("jpeg"), ImageFormat::Jpeg));
    let gif = encode(&DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(card.clone()).to_rgba8()), ImageFormat::Gif)?;
    let r = run(K, "THUMBNAIL", json!({"imageData": format!("data:image/gif;base64,{gif}"), "size": 32}))?;
    assert_eq!((r["format"].clone(), r["original"]["format"].clone()), (json!("png"), json!("gif")));
    assert_eq!(output(&r)?.1.dimensions_tuple(), (32, 24));
    // WebP in, default format: WebP out.
    let r = run(K, "APPLY_FILTER", json!({"imageData": webp["imageData"], "filter": "grayscale"}))?;
    assert_eq!(output(&r)?.0, ImageFormat::WebP);
    Ok(())
}

#[test]
fn translucent_pixels_keep_alpha_in_png_and_go_over_white_in_jpeg() -> Result<()> {
    let clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(4, 4, Rgba([0, 0, 0, 0])));
    let png = encode(&clear, ImageFormat::Png)?;
    let r = run(K, "CONVERT_FORMAT", json!({"imageData": png, "format": "png"}))?;
    assert_eq!(output(&r)?.1.to_rgba8().get_pixel(1, 1).0, [0, 0, 0, 0]);
    let r = run(K, "CONVERT_FORMAT", json!({"imageData": png, "format": "jpeg"}))?;
    assert!(output(&r)?.1.to_rgb8().pixels().all(|p| p.0.iter().all(|&c| c > 250)), "transparent → white");
    Ok(())
}

#[test]
fn sixteen_bit_and_gray_inputs_are_read() -> Result<()> {
    let deep = DynamicImage::ImageRgb16(DynamicImage::ImageRgb8(card()).to_rgb16());
    let r = run(K, "RESIZE_IMAGE", json!({"imageData": encode(&deep, ImageFormat::Png)?, "width": 32, "height": 32}))?;
    let (format, img) = output(&r)?;
    assert_eq!((format, img.color(), img.width(), img.height()), (ImageFormat::Png, image::ColorType::Rgb8, 32, 24));
    let gray = DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(card()).to_luma8());
    let r = run(K, "ROTATE_IMAGE", json!({"imageData": encode(&gray, ImageFormat::Png)?, "angle": 180}))?;
    let (_, img) = output(&r)?;
    assert_eq!(img.color(), image::ColorType::L8);
    assert_eq!(img.to_luma8().get_pixel(63, 47), gray.to_luma8().get_pixel(0, 0));
    Ok(())
}

// ===== bad input =====

#[test]
fn corrupt_or_unknown_images_name_image_data() -> Result<()> {
    let a = "APPLY_FILTER";
    let params = |data: &str| json!({"imageData": data, "filter": "blur"});
    assert_invalid(K, a, params("not base64 at all!"), "imageData");
    assert_invalid(K, a, params(&B64.encode(b"plain text, not an image")), "imageData");
    assert_invalid(K, a, params("data:image/png,iVBORw0KGgo="), "imageData");
    assert_invalid(K, a, params(""), "imageData");
    // A real PNG cut short: the header is fine, the pixels are missing.
    let whole = B64.decode(card_png()?)?;
    assert_invalid(K, a, params(&B64.encode(&whole[..whole.len() / 2])), "imageData");
    // A PNG whose header is damaged.
    let mut damaged = whole.clone();
    damaged[20] ^= 0xff;
    assert_invalid(K, a, params(&B64.encode(&damaged)), "imageData");
    // A format this manifest does not read (a BMP header).
    let mut bmp = b"BM".to_vec();
    bmp.extend([0u8; 64]);
    assert_invalid(K, a, params(&B64.encode(&bmp)), "imageData");
    assert_invalid(K, a, json!({"filter": "blur"}), "imageData");
    Ok(())
}

#[test]
fn oversize_images_are_rejected_before_decoding() -> Result<()> {
    // 9000 × 1 pixels: a tiny file whose header says it is too wide.
    let wide = DynamicImage::ImageRgb8(RgbImage::new(9000, 1));
    let err = crate::support::call(K, "THUMBNAIL", json!({"imageData": encode(&wide, ImageFormat::Png)?}))
        .err()
        .context("a 9000-pixel-wide image was accepted")?;
    assert_eq!(err.category, ErrorCategory::Validation);
    assert!(err.message.contains("`imageData`") && err.message.contains("9000×1"), "{}", err.message);
    // A JPEG header too, in the other direction.
    let tall = DynamicImage::ImageRgb8(RgbImage::new(1, 8200));
    assert_invalid(K, "THUMBNAIL", json!({"imageData": encode(&tall, ImageFormat::Jpeg)?}), "imageData");
    // The base64 string is measured before it is decoded.
    let huge = "A".repeat(atmo_builtins::image_processing::MAX_IMAGE_DATA_LEN + 4);
    assert_invalid(K, "THUMBNAIL", json!({"imageData": huge}), "imageData");
    Ok(())
}

#[test]
fn out_of_range_parameters_name_the_parameter() -> Result<()> {
    let png = card_png()?;
    let with = |action: &str, extra: Value| {
        let mut p = json!({"imageData": png});
        if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
            p.extend(extra.clone());
        }
        (action.to_owned(), p)
    };
    let cases = [
        (with("RESIZE_IMAGE", json!({"width": 0, "height": 10})), "width"),
        (with("RESIZE_IMAGE", json!({"width": 10, "height": 8193})), "height"),
        (with("RESIZE_IMAGE", json!({"width": 10, "height": 10, "quality": 0})), "quality"),
        (with("RESIZE_IMAGE", json!({"width": 10, "height": 10, "format": "gif"})), "format"),
        (with("RESIZE_IMAGE", json!({"width": 10, "height": 10, "resampling": "bicubic"})), "resampling"),
        (with("APPLY_FILTER", json!({"filter": "emboss"})), "filter"),
        (with("APPLY_FILTER", json!({"filter": "blur", "intensity": 2.5})), "intensity"),
        (with("APPLY_FILTER", json!({"filter": "blur", "intensity": -0.1})), "intensity"),
        (with("ROTATE_IMAGE", json!({"angle": 45})), "angle"),
        (with("ROTATE_IMAGE", json!({"flip": "diagonal"})), "flip"),
        (with("CONVERT_FORMAT", json!({"format": "tiff"})), "format"),
        (with("THUMBNAIL", json!({"size": 2000})), "size"),
        (with("CROP_IMAGE", json!({"x": -1, "y": 0, "width": 1, "height": 1})), "x"),
    ];
    for ((action, params), parameter) in cases {
        assert_invalid(K, &action, params.clone(), parameter);
        assert_schema_rejects(K, &action, params, parameter);
    }
    // Checked by the handler alone: against the image's own size, or a missing `format`.
    let handler_only = [
        (with("CROP_IMAGE", json!({"x": 64, "y": 0, "width": 1, "height": 1})), "x"),
        (with("CROP_IMAGE", json!({"x": 0, "y": 48, "width": 1, "height": 1})), "y"),
        (with("CROP_IMAGE", json!({"x": 60, "y": 0, "width": 5, "height": 1})), "width"),
        (with("CROP_IMAGE", json!({"x": 0, "y": 40, "width": 1, "height": 9})), "height"),
        (with("CONVERT_FORMAT", json!({})), "format"),
    ];
    for ((action, params), parameter) in handler_only {
        assert_invalid(K, &action, params, parameter);
    }
    Ok(())
}

#[test]
fn a_cancelled_request_stops_with_a_cancelled_error() -> Result<()> {
    let ctx = TaskContext::detached("APPLY_FILTER", Arc::new(Resources::new()));
    ctx.cancel.cancel();
    let handlers = atmo_builtins::image_processing_handlers();
    let handler = handlers.get("APPLY_FILTER").context("no handler")?;
    let err = handler
        .call_blocking(&ctx, &json!({"imageData": card_png()?, "filter": "blur"}))
        .err()
        .context("a cancelled request completed")?;
    assert_eq!(err.category, ErrorCategory::Cancelled);
    Ok(())
}
