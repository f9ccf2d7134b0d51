//! Encoding the result image and building the `IMAGE_RESULT` object.
//!
//! Every output has 8 bits per channel. PNG and WebP keep an alpha channel when the image has
//! a pixel that is not fully opaque (and drop it otherwise, which makes smaller files); JPEG has
//! no alpha, so translucent pixels are composited over white. WebP is written lossless (VP8L),
//! the only WebP encoding the `image` crate has; `quality` applies to JPEG alone.

use std::borrow::Cow;

use atmo_core::{HandlerResult, TaskContext, TaskError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, Rgb, RgbImage, RgbaImage};
use serde_json::{Map, Value, json};

use super::format::{Format, Output};
use super::input::Source;

/// The `type` tag of every result of this manifest.
pub(super) const RESULT_TYPE: &str = "IMAGE_RESULT";

/// Encodes `image` as `out` says and describes it: `imageData` (base64), `format`, `mimeType`,
/// `width`, `height`, `bytes`, `quality` (JPEG only, else `null`), `lossless`, `operation`,
/// the `original` image's format, size and bytes, then the action's own `details` fields.
pub(super) fn finish(
    ctx: &TaskContext,
    operation: &str,
    source: &Source,
    image: &DynamicImage,
    out: Output,
    details: Value,
) -> HandlerResult {
    ctx.cancel.check()?;
    let encoded = encode(image, out)?;
    ctx.cancel.check()?;
    let mut result = Map::new();
    result.insert("type".into(), json!(RESULT_TYPE));
    result.insert("operation".into(), json!(operation));
    result.insert("format".into(), json!(out.format.name()));
    result.insert("mimeType".into(), json!(out.format.mime()));
    result.insert("width".into(), json!(image.width()));
    result.insert("height".into(), json!(image.height()));
    result.insert("bytes".into(), json!(encoded.len()));
    result.insert("quality".into(), if out.format == Format::Jpeg { json!(out.quality) } else { Value::Null });
    result.insert("lossless".into(), json!(out.format != Format::Jpeg));
    result.insert(
        "original".into(),
        json!({
            "format": source.format.name(),
            "width": source.width,
            "height": source.height,
            "bytes": source.bytes,
        }),
    );
    if let Value::Object(extra) = details {
        result.extend(extra);
    }
    result.insert("imageData".into(), json!(B64.encode(&encoded)));
    Ok(Value::Object(result))
}

/// The encoded bytes of `image` in `out.format`.
fn encode(image: &DynamicImage, out: Output) -> Result<Vec<u8>, TaskError> {
    let mut buf = Vec::new();
    let written = match out.format {
        Format::Jpeg => {
            let rgb = flatten_on_white(image);
            rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut buf, out.quality))
        }
        Format::WebP => eight_bit(image).write_with_encoder(WebPEncoder::new_lossless(&mut buf)),
        // GIF is never chosen as an output (see `Requested::for_input`); PNG stands in.
        Format::Png | Format::Gif => eight_bit(image).write_with_encoder(PngEncoder::new(&mut buf)),
    };
    written.map_err(|e| {
        TaskError::new("IMAGE_ENCODE_FAILED", format!("cannot encode the result as {}: {e}", out.format.name()))
    })?;
    Ok(buf)
}

/// `image` as 8-bit gray or RGB, or RGBA when some pixel is not fully opaque.
fn eight_bit(image: &DynamicImage) -> Cow<'_, DynamicImage> {
    let translucent = |rgba: &RgbaImage| rgba.pixels().any(|p| p.0[3] != u8::MAX);
    match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageLuma8(_) => Cow::Borrowed(image),
        DynamicImage::ImageRgba8(rgba) if translucent(rgba) => Cow::Borrowed(image),
        DynamicImage::ImageRgba8(_) => Cow::Owned(DynamicImage::ImageRgb8(image.to_rgb8())),
        other if other.color().has_alpha() => {
            let rgba = other.to_rgba8();
            if translucent(&rgba) {
                Cow::Owned(DynamicImage::ImageRgba8(rgba))
            } else {
                Cow::Owned(DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(rgba).to_rgb8()))
            }
        }
        other => Cow::Owned(DynamicImage::ImageRgb8(other.to_rgb8())),
    }
}

/// `image` as 8-bit RGB, translucent pixels composited over white.
fn flatten_on_white(image: &DynamicImage) -> DynamicImage {
    if !image.color().has_alpha() {
        return DynamicImage::ImageRgb8(image.to_rgb8());
    }
    let rgba = image.to_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
        let [r, g, b, a] = src.0;
        let a = u16::from(a);
        let over = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        *dst = Rgb([over(r), over(g), over(b)]);
    }
    DynamicImage::ImageRgb8(rgb)
}
