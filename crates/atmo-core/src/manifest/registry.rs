//! A registry of manifests.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Manifest;

/// Manifests by name.
#[derive(Clone, Debug, Default)]
pub struct ManifestRegistry {
    manifests: BTreeMap<String, Arc<Manifest>>,
}

/// A suggested bank for a set of expected actions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BankRecommendation {
    /// The manifest to run.
    pub manifest: String,
    /// The expected actions it covers.
    pub actions: Vec<String>,
    /// Suggested worker count (at least 1).
    pub worker_count: usize,
}

impl ManifestRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a manifest.
    pub fn register(&mut self, manifest: Manifest) -> Arc<Manifest> {
        let m = Arc::new(manifest);
        self.manifests.insert(m.name.clone(), m.clone());
        m
    }

    /// The manifest with this name.
    pub fn get(&self, name: &str) -> Option<&Arc<Manifest>> {
        self.manifests.get(name)
    }
}
