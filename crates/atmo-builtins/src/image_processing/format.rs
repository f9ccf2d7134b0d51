//! The image formats read and written, and how an action's output format is chosen.

use atmo_core::TaskError;

use crate::params::{Params, invalid};

/// The `format` values an action may write.
pub(super) const OUTPUT_FORMATS: [&str; 3] = ["png", "jpeg", "webp"];
/// The `quality` used when none is given.
pub(super) const DEFAULT_QUALITY: u64 = 90;

/// An image format this manifest reads (all four) or writes (all but GIF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Png,
    Jpeg,
    WebP,
    Gif,
}

impl Format {
    /// The name used in parameters and results.
    pub(super) fn name(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpeg",
            Format::WebP => "webp",
            Format::Gif => "gif",
        }
    }

    /// The media type.
    pub(super) fn mime(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::WebP => "image/webp",
            Format::Gif => "image/gif",
        }
    }

    /// Whether this manifest can write it.
    fn writable(self) -> bool {
        self != Format::Gif
    }

    fn parse_output(s: &str) -> Option<Self> {
        match s {
            "png" => Some(Format::Png),
            "jpeg" => Some(Format::Jpeg),
            "webp" => Some(Format::WebP),
            _ => None,
        }
    }
}

/// How an action writes its result.
#[derive(Clone, Copy, Debug)]
pub(super) struct Output {
    /// The format written.
    pub(super) format: Format,
    /// JPEG quality (1–100); PNG and WebP (lossless) ignore it.
    pub(super) quality: u8,
}

impl Output {
    /// Reads the `format` and `quality` parameters (before the image is decoded, so that a bad
    /// value costs nothing); [`Requested::for_input`] settles the format.
    pub(super) fn requested(p: Params<'_>) -> Result<Requested, TaskError> {
        let format = p
            .opt_str("format")?
            .map(|s| {
                Format::parse_output(s).ok_or_else(|| {
                    invalid("format", format_args!("must be one of {}, got `{s}`", OUTPUT_FORMATS.join(", ")))
                })
            })
            .transpose()?;
        let quality = p.opt_u64("quality", 1, 100)?.unwrap_or(DEFAULT_QUALITY);
        // In range 1..=100 after the check above.
        Ok(Requested { format, quality: quality as u8 })
    }
}

/// The output parameters as given, before the input's format is known.
#[derive(Clone, Copy, Debug)]
pub(super) struct Requested {
    format: Option<Format>,
    quality: u8,
}

impl Requested {
    /// The output for an input in `input`: the requested format, else the input's when it is
    /// writable, else PNG.
    pub(super) fn for_input(self, input: Format) -> Output {
        let format = match self.format {
            Some(f) => f,
            None if input.writable() => input,
            None => Format::Png,
        };
        Output { format, quality: self.quality }
    }
}
