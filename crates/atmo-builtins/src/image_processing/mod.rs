//! The `image-processing` manifest: resizing, filters, cropping, rotation, format conversion
//! and thumbnails, on the `image` crate.
//!
//! Images travel as base64 in `imageData`, plain or as a `data:image/...;base64,` URL. PNG,
//! JPEG, WebP and GIF (its first frame) are read; PNG, JPEG and WebP are written. WebP output
//! is lossless (VP8L), the only WebP encoding `image` has, so `quality` matters for JPEG
//! alone. Without a `format` parameter an action writes the input's format when it can, else
//! PNG (a GIF input gives a PNG). Every output has 8 bits per channel.
//!
//! Inputs are bounded before their pixels are decoded: at most
//! [`MAX_IMAGE_DATA_LEN`] characters of base64, at most [`MAX_DIMENSION`] pixels a side and
//! [`MAX_DECODED_BYTES`] of decoded pixels; a larger, corrupt or unrecognized image is a
//! validation error naming `imageData`. Every result is an `IMAGE_RESULT` object: `imageData`
//! (base64), `format`, `mimeType`, `width`, `height`, `bytes`, `quality` (JPEG only),
//! `lossless`, `operation`, the `original` image's format, size and bytes, and what the
//! action did (`filter` and `intensity`, `crop`, `angle` and `flip`, ...). Decoding,
//! processing and encoding check the attempt's cancellation token between them.

mod convert;
mod crop;
mod filter;
mod format;
mod input;
mod output;
mod resize;
mod rotate;
mod thumbnail;

use std::time::Duration;

use atmo_core::manifest::{ActionDefinition, Manifest, ParamType, ParameterSpec};
use atmo_core::{Handler, Handlers};
use serde_json::json;

use format::{DEFAULT_QUALITY, OUTPUT_FORMATS};

/// Name of the manifest.
pub const NAME: &str = "image-processing";
/// Largest width or height, in pixels, of an input or output image.
pub const MAX_DIMENSION: u32 = 8192;
/// Longest `imageData` string, in characters (32 MiB of base64: a 24 MiB image).
pub const MAX_IMAGE_DATA_LEN: usize = 32 * 1024 * 1024;
/// Most bytes of decoded pixels an input may have (an 8192 × 8192 RGBA image at 8 bits per
/// channel; at 16 bits per channel the largest is half as many pixels).
pub const MAX_DECODED_BYTES: u64 = MAX_DIMENSION as u64 * MAX_DIMENSION as u64 * 4;

/// The type tag of every result of this manifest.
pub const RESULT_TYPE: &str = output::RESULT_TYPE;

fn image_data() -> ParameterSpec {
    ParameterSpec::required(input::IMAGE_DATA, ParamType::String)
        .length(1, MAX_IMAGE_DATA_LEN)
        .describe("the image (PNG, JPEG, WebP or GIF) in base64, or a data:image/...;base64, URL")
}

fn output_format() -> ParameterSpec {
    ParameterSpec::optional_no_default("format", ParamType::String)
        .allowed(OUTPUT_FORMATS)
        .describe("format written (webp is lossless); default: the input's format, PNG for a GIF")
}

fn quality() -> ParameterSpec {
    ParameterSpec::optional("quality", ParamType::Integer, json!(DEFAULT_QUALITY))
        .range(1.0, 100.0)
        .describe("JPEG quality; PNG and WebP output are lossless and ignore it")
}

fn side(name: &str, what: &str) -> ParameterSpec {
    ParameterSpec::required(name, ParamType::Integer).range(1.0, f64::from(MAX_DIMENSION)).describe(what)
}

/// The `image-processing` manifest: version 1.0.0, 4 concurrent requests per worker, 60 s
/// default timeout, every action retryable. `RESIZE_IMAGE` and `APPLY_FILTER` have the
/// original package's parameters (plus an output `format`, and `resampling` for resizing);
/// `CROP_IMAGE`, `ROTATE_IMAGE`, `CONVERT_FORMAT` and `THUMBNAIL` are new.
pub fn image_processing_manifest() -> Manifest {
    let built = Manifest::builder(NAME)
        .version("1.0.0")
        .description("Image processing: resize, filters, crop, rotate, format conversion, thumbnails")
        .max_concurrent_tasks(4)
        .default_timeout(Duration::from_secs(60))
        .action(
            ActionDefinition::new("RESIZE_IMAGE")
                .description("Resizes an image, fitting it inside width × height or stretching it to that size")
                .param(image_data())
                .param(side("width", "target width in pixels (the box's width when preserving the aspect ratio)"))
                .param(side("height", "target height in pixels (the box's height when preserving the aspect ratio)"))
                .param(
                    ParameterSpec::optional("preserveAspectRatio", ParamType::Boolean, json!(true))
                        .describe("fit inside width × height instead of stretching to it"),
                )
                .param(quality())
                .param(output_format())
                .param(
                    ParameterSpec::optional("resampling", ParamType::String, json!("lanczos3"))
                        .allowed(resize::RESAMPLING),
                )
                .retryable(true)
                .response_type(RESULT_TYPE),
        )
        .action(
            ActionDefinition::new("APPLY_FILTER")
                .description("Applies a filter (blur, sharpen, grayscale, sepia, vintage, brightness, contrast)")
                .param(image_data())
                .param(ParameterSpec::required("filter", ParamType::String).allowed(filter::FILTERS))
                .param(
                    ParameterSpec::optional("intensity", ParamType::Number, json!(1.0))
                        .range(0.0, filter::MAX_INTENSITY)
                        .describe("0 leaves the image unchanged, 1 is the usual strength, 2 doubles it"),
                )
                .param(output_format())
                .param(quality())
                .retryable(true)
                .response_type(RESULT_TYPE),
        )
        .action(
            ActionDefinition::new("CROP_IMAGE")
                .description("Cuts out the rectangle at (x, y) of width × height pixels; it must lie inside the image")
                .param(image_data())
                .param(
                    ParameterSpec::required("x", ParamType::Integer)
                        .range(0.0, f64::from(MAX_DIMENSION - 1))
                        .describe("left edge, pixels from the left"),
                )
                .param(
                    ParameterSpec::required("y", ParamType::Integer)
                        .range(0.0, f64::from(MAX_DIMENSION - 1))
                        .describe("top edge, pixels from the top"),
                )
                .param(side("width", "width of the rectangle"))
                .param(side("height", "height of the rectangle"))
                .param(output_format())
                .param(quality())
                .retryable(true)
                .response_type(RESULT_TYPE),
        )
        .action(
            ActionDefinition::new("ROTATE_IMAGE")
                .description("Rotates by quarter turns clockwise, then optionally mirrors")
                .param(image_data())
                .param(
                    ParameterSpec::optional("angle", ParamType::Integer, json!(90))
                        .allowed(rotate::ANGLES)
                        .describe("degrees clockwise"),
                )
                .param(
                    ParameterSpec::optional("flip", ParamType::String, json!("none"))
                        .allowed(rotate::FLIPS)
                        .describe("mirror applied after the rotation"),
                )
                .param(output_format())
                .param(quality())
                .retryable(true)
                .response_type(RESULT_TYPE),
        )
        .action(
            ActionDefinition::new("CONVERT_FORMAT")
                .description("Re-encodes an image as PNG, JPEG or WebP (lossless)")
                .param(image_data())
                .param(ParameterSpec::required("format", ParamType::String).allowed(OUTPUT_FORMATS))
                .param(quality())
                .retryable(true)
                .response_type(RESULT_TYPE),
        )
        .action(
            ActionDefinition::new("THUMBNAIL")
                .description("A preview fitting in size × size pixels (aspect ratio kept, never enlarged)")
                .param(image_data())
                .param(
                    ParameterSpec::optional("size", ParamType::Integer, json!(thumbnail::DEFAULT_SIZE))
                        .range(1.0, thumbnail::MAX_SIZE as f64)
                        .describe("longest side in pixels"),
                )
                .param(output_format())
                .param(quality())
                .retryable(true)
                .response_type(RESULT_TYPE),
        )
        .build();
    // The definition above is static; a failure here is a bug caught by the crate's tests, and
    // the fallback keeps the signature infallible without panicking.
    built.unwrap_or_else(|_| Manifest::empty(NAME))
}

/// The handlers of [`image_processing_manifest`], one per action (all synchronous: CPU-bound).
pub fn image_processing_handlers() -> Handlers {
    Handlers::new()
        .on("RESIZE_IMAGE", Handler::sync(resize::handle))
        .on("APPLY_FILTER", Handler::sync(filter::handle))
        .on("CROP_IMAGE", Handler::sync(crop::handle))
        .on("ROTATE_IMAGE", Handler::sync(rotate::handle))
        .on("CONVERT_FORMAT", Handler::sync(convert::handle))
        .on("THUMBNAIL", Handler::sync(thumbnail::handle))
}
