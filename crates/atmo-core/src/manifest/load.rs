//! Loading manifests from JSON, TOML and YAML, and structural checks.

use std::path::{Path, PathBuf};

use super::Manifest;

/// A manifest file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestFormat {
    /// `.json`
    Json,
    /// `.toml`
    Toml,
    /// `.yaml` / `.yml`
    Yaml,
}

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The extension names no known format.
    #[error("cannot tell the format of manifest {0} from its extension; use .json, .toml, .yaml or .yml")]
    UnknownFormat(PathBuf),
    /// The text is not valid JSON for a manifest.
    #[error("invalid JSON manifest: {0}")]
    Json(#[from] serde_json::Error),
    /// The text is not valid TOML for a manifest.
    #[error("invalid TOML manifest: {0}")]
    Toml(#[from] toml::de::Error),
    /// The text is not valid YAML for a manifest.
    #[error("invalid YAML manifest: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// The manifest parsed but is inconsistent; every problem is listed.
    #[error("invalid manifest `{name}`: {}", problems.join("; "))]
    Invalid {
        /// The manifest's name.
        name: String,
        /// Every problem found.
        problems: Vec<String>,
    },
}

impl Manifest {
    /// Parses a manifest from text in the given format and checks it.
    ///
    /// # Errors
    /// A parse error, or [`ManifestError::Invalid`].
    pub fn from_str_format(text: &str, format: ManifestFormat) -> Result<Manifest, ManifestError> {
        let _ = (text, format);
        unimplemented!("from_str_format")
    }

    /// Reads a manifest file; the format follows the extension.
    ///
    /// # Errors
    /// I/O, format, parse or [`ManifestError::Invalid`] errors.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let _ = path;
        unimplemented!("from_path")
    }

    /// Checks the manifest's structure.
    ///
    /// # Errors
    /// [`ManifestError::Invalid`] with every problem.
    pub fn check(&self) -> Result<(), ManifestError> {
        Ok(())
    }
}
