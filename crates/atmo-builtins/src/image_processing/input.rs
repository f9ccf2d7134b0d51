//! Reading `imageData`: base64 (plain or a `data:image/...;base64,` URL) → a decoded image,
//! bounded before any pixel is decoded.
//!
//! The order of the checks is what keeps a hostile input from exhausting memory: the string's
//! length is checked before base64 decoding; the format is sniffed from the magic bytes; the
//! decoder reads only the header, and the dimensions it reports are checked against
//! [`MAX_DIMENSION`] (and the pixel buffer against [`MAX_DECODED_BYTES`]) before the pixels
//! are decoded, with the same bounds handed to `image`'s [`Limits`] so that the decoder
//! enforces them too.

use std::io::Cursor;

use atmo_core::TaskError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use super::format::Format;
use super::{MAX_DECODED_BYTES, MAX_DIMENSION, MAX_IMAGE_DATA_LEN};
use crate::params::{Params, invalid};

/// The parameter every action reads its image from.
pub(super) const IMAGE_DATA: &str = "imageData";

/// A decoded input image and what it was.
pub(super) struct Input {
    /// The pixels (first frame of an animated GIF), 8 bits per channel.
    pub(super) image: DynamicImage,
    /// What it was, for the result's `original` field and the default output format.
    pub(super) source: Source,
}

/// What an input image was, kept after its pixels are consumed.
#[derive(Clone, Copy, Debug)]
pub(super) struct Source {
    /// The format it was encoded in.
    pub(super) format: Format,
    /// Its width in pixels.
    pub(super) width: u32,
    /// Its height in pixels.
    pub(super) height: u32,
    /// Bytes of the encoded image (after base64 decoding).
    pub(super) bytes: usize,
}

/// Decodes the `imageData` parameter.
pub(super) fn read(p: Params<'_>) -> Result<Input, TaskError> {
    let text = p.str(IMAGE_DATA)?;
    let bytes = decode_base64(text)?;
    decode_image(&bytes)
}

/// The bytes of a base64 string or a base64 data URL, length-checked first.
fn decode_base64(text: &str) -> Result<Vec<u8>, TaskError> {
    if text.len() > MAX_IMAGE_DATA_LEN {
        return Err(invalid(
            IMAGE_DATA,
            format_args!("is {} characters long; at most {MAX_IMAGE_DATA_LEN} are allowed", text.len()),
        ));
    }
    let payload = match text.trim_start().strip_prefix("data:") {
        Some(rest) => {
            let Some((media, data)) = rest.split_once(',') else {
                return Err(invalid(IMAGE_DATA, "is a data URL without a `,` before its data"));
            };
            if !media.ends_with(";base64") {
                return Err(invalid(IMAGE_DATA, "is a data URL that is not base64 (`data:image/png;base64,...`)"));
            }
            data
        }
        None => text,
    };
    let payload = payload.trim();
    if payload.is_empty() {
        return Err(invalid(IMAGE_DATA, "is empty"));
    }
    // Base64 wrapped in lines (as MIME writes it) is common; strip the whitespace only then.
    let decoded = if payload.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: Vec<u8> = payload.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        B64.decode(compact)
    } else {
        B64.decode(payload)
    };
    decoded.map_err(|e| invalid(IMAGE_DATA, format_args!("is not valid base64: {e}")))
}

/// Decodes an encoded image, checking its header before its pixels.
fn decode_image(bytes: &[u8]) -> Result<Input, TaskError> {
    let format = image::guess_format(bytes)
        .ok()
        .and_then(Format::from_image)
        .ok_or_else(|| invalid(IMAGE_DATA, "is not a PNG, JPEG, WebP or GIF image (unrecognized header)"))?;
    let corrupt = |e: ImageError| invalid(IMAGE_DATA, format_args!("is not a readable {} image: {e}", format.name()));

    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.to_image());
    reader.limits(limits.clone());
    // Reads the header only.
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height)?;
    let total = decoder.total_bytes();
    if total > MAX_DECODED_BYTES {
        return Err(invalid(
            IMAGE_DATA,
            format_args!("would decode to {total} bytes of pixels; at most {MAX_DECODED_BYTES} are allowed"),
        ));
    }
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    decoder.set_limits(limits).map_err(corrupt)?;
    let image = eight_bits_per_channel(DynamicImage::from_decoder(decoder).map_err(corrupt)?);
    let source = Source { format, width, height, bytes: bytes.len() };
    Ok(Input { image, source })
}

/// `image` with 8 bits per channel, as every output has: converting a 16-bit input right away
/// halves what the operations after it hold in memory.
fn eight_bits_per_channel(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => image,
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.to_rgba8()),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    }
}

/// Rejects an image wider or taller than [`MAX_DIMENSION`] (or empty).
fn check_dimensions(width: u32, height: u32) -> Result<(), TaskError> {
    if width == 0 || height == 0 {
        return Err(invalid(IMAGE_DATA, format_args!("is {width}×{height}: an image needs at least one pixel")));
    }
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(invalid(
            IMAGE_DATA,
            format_args!("is {width}×{height}; at most {MAX_DIMENSION}×{MAX_DIMENSION} pixels are allowed"),
        ));
    }
    Ok(())
}

impl Format {
    /// The supported input format `image` sniffed, if it is one.
    fn from_image(f: ImageFormat) -> Option<Self> {
        match f {
            ImageFormat::Png => Some(Format::Png),
            ImageFormat::Jpeg => Some(Format::Jpeg),
            ImageFormat::WebP => Some(Format::WebP),
            ImageFormat::Gif => Some(Format::Gif),
            _ => None,
        }
    }

    /// `image`'s name for the format.
    fn to_image(self) -> ImageFormat {
        match self {
            Format::Png => ImageFormat::Png,
            Format::Jpeg => ImageFormat::Jpeg,
            Format::WebP => ImageFormat::WebP,
            Format::Gif => ImageFormat::Gif,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_and_wrapped_base64_decode() {
        let plain = B64.encode(b"abc");
        assert_eq!(decode_base64(&plain).ok(), Some(b"abc".to_vec()));
        assert_eq!(decode_base64(&format!("data:image/png;base64,{plain}")).ok(), Some(b"abc".to_vec()));
        assert_eq!(decode_base64("YW\nJj").ok(), Some(b"abc".to_vec()));
        assert!(decode_base64("data:image/png,abc").is_err());
        assert!(decode_base64("data:image/png;base64").is_err());
        assert!(decode_base64("  ").is_err());
        assert!(decode_base64("not base64!").is_err());
    }

    #[test]
    fn dimensions_are_bounded() {
        assert!(check_dimensions(1, 1).is_ok());
        assert!(check_dimensions(MAX_DIMENSION, MAX_DIMENSION).is_ok());
        assert!(check_dimensions(MAX_DIMENSION + 1, 1).is_err());
        assert!(check_dimensions(0, 5).is_err());
    }
}
