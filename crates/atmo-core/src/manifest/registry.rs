//! A registry of manifests.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{ActionDefinition, Manifest};

/// Manifests by name.
///
/// Lookups that may find several manifests answer in name order, so results do not depend on
/// registration order.
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

    /// The manifests' names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.manifests.keys().map(String::as_str)
    }

    /// The manifests, by name.
    pub fn manifests(&self) -> impl Iterator<Item = &Arc<Manifest>> {
        self.manifests.values()
    }

    /// The manifests that declare `action_id`, by name.
    pub fn supporting(&self, action_id: &str) -> Vec<Arc<Manifest>> {
        self.manifests.values().filter(|m| m.action(action_id).is_some()).cloned().collect()
    }

    /// The action `action_id` of the first manifest (by name) that declares it, with that
    /// manifest.
    pub fn action(&self, action_id: &str) -> Option<(Arc<Manifest>, &ActionDefinition)> {
        self.manifests.values().find_map(|m| m.action(action_id).map(|a| (m.clone(), a)))
    }

    /// Every action id declared by some manifest, sorted, each once.
    pub fn all_action_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.manifests.values().flat_map(|m| m.action_ids()).map(str::to_owned).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Suggests banks for a workload of `expected_actions` served by `desired_concurrency`
    /// workers in total.
    ///
    /// Every manifest that declares at least one expected action gets a bank. Its share is the
    /// number of expected actions it declares divided by the number of expected actions, and
    /// its worker count is `share × desired_concurrency`, rounded (halves up), at least 1. An
    /// action declared by several manifests counts for each of them, so the counts may add up
    /// to more than `desired_concurrency`. An action listed twice weighs twice, as a way to say
    /// it is more frequent.
    ///
    /// Expected actions that no manifest declares are ignored: they count neither in a share
    /// nor in the total, and are listed nowhere. Check them against
    /// [`all_action_ids`](Self::all_action_ids) if a typo matters.
    ///
    /// Recommendations are sorted by worker count (largest first), then by manifest name. Each
    /// lists the expected actions it covers, once each, in the order they were given.
    ///
    /// ```
    /// use atmo_core::manifest::{ActionDefinition, Manifest, ManifestRegistry};
    /// let mut registry = ManifestRegistry::new();
    /// registry.register(
    ///     Manifest::builder("math").action(ActionDefinition::new("ADD")).action(ActionDefinition::new("MUL")).build().unwrap(),
    /// );
    /// registry.register(Manifest::builder("text").action(ActionDefinition::new("UPPER")).build().unwrap());
    /// let recs = registry.recommend_banks(&["ADD", "MUL", "UPPER", "NOPE"], 6);
    /// assert_eq!((recs[0].manifest.as_str(), recs[0].worker_count), ("math", 4));
    /// assert_eq!((recs[1].manifest.as_str(), recs[1].worker_count), ("text", 2));
    /// ```
    pub fn recommend_banks(&self, expected_actions: &[&str], desired_concurrency: usize) -> Vec<BankRecommendation> {
        let known: Vec<&str> = expected_actions
            .iter()
            .copied()
            .filter(|a| self.manifests.values().any(|m| m.action(a).is_some()))
            .collect();
        let total = known.len();
        if total == 0 {
            return Vec::new();
        }

        let mut recommendations: Vec<BankRecommendation> = self
            .manifests
            .values()
            .filter_map(|m| {
                let mut covered = 0;
                let mut actions: Vec<String> = Vec::new();
                for &a in known.iter().filter(|a| m.action(a).is_some()) {
                    covered += 1;
                    if !actions.iter().any(|x| x == a) {
                        actions.push(a.to_owned());
                    }
                }
                (covered > 0).then(|| BankRecommendation {
                    manifest: m.name.clone(),
                    actions,
                    worker_count: rounded_share(covered, total, desired_concurrency).max(1),
                })
            })
            .collect();
        recommendations.sort_by(|a, b| b.worker_count.cmp(&a.worker_count).then_with(|| a.manifest.cmp(&b.manifest)));
        recommendations
    }
}

/// `covered / total × desired`, rounded half up, in integers so that no float rounding can
/// turn an exact half into a miss.
fn rounded_share(covered: usize, total: usize, desired: usize) -> usize {
    let (covered, total, desired) = (covered as u128, total as u128, desired as u128);
    let share = (2 * covered * desired + total) / (2 * total);
    // covered <= total, so the result is at most `desired` and fits.
    usize::try_from(share).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn manifest(name: &str, actions: &[&str]) -> Manifest {
        actions.iter().fold(Manifest::builder(name), |b, a| b.action(ActionDefinition::new(*a))).build().unwrap()
    }

    /// alpha: A, B — beta: B, C — gamma: D (registered out of name order on purpose).
    fn registry() -> ManifestRegistry {
        let mut r = ManifestRegistry::new();
        r.register(manifest("gamma", &["D"]));
        r.register(manifest("beta", &["B", "C"]));
        r.register(manifest("alpha", &["A", "B"]));
        r
    }

    fn counts(recs: &[BankRecommendation]) -> Vec<(&str, usize)> {
        recs.iter().map(|r| (r.manifest.as_str(), r.worker_count)).collect()
    }

    #[test]
    fn lookups() {
        let r = registry();
        assert_eq!(r.names().collect::<Vec<_>>(), ["alpha", "beta", "gamma"]);
        assert_eq!(r.manifests().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["alpha", "beta", "gamma"]);
        assert_eq!(r.get("beta").unwrap().name, "beta");
        assert!(r.get("delta").is_none());
        assert_eq!(r.all_action_ids(), ["A", "B", "C", "D"]);

        let names = |ms: Vec<Arc<Manifest>>| ms.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(r.supporting("B")), ["alpha", "beta"]);
        assert_eq!(names(r.supporting("D")), ["gamma"]);
        assert!(r.supporting("Z").is_empty());

        let (m, action) = r.action("B").unwrap();
        assert_eq!((m.name.as_str(), action.action_id.as_str()), ("alpha", "B"));
        assert_eq!(r.action("C").unwrap().0.name, "beta");
        assert!(r.action("Z").is_none());
    }

    #[test]
    fn register_replaces_by_name() {
        let mut r = registry();
        let m = r.register(manifest("alpha", &["E"]));
        assert_eq!(m.name, "alpha");
        assert_eq!(r.names().count(), 3);
        assert!(r.supporting("A").is_empty());
        assert_eq!(r.all_action_ids(), ["B", "C", "D", "E"]);
    }

    #[test]
    fn recommend_shares_and_rounding() {
        let r = registry();
        // alpha covers A, B; beta covers B, C; gamma covers D: 2/4, 2/4, 1/4 of 5 workers.
        let recs = r.recommend_banks(&["A", "B", "C", "D"], 5);
        assert_eq!(counts(&recs), [("alpha", 3), ("beta", 3), ("gamma", 1)]); // 2.5 → 3, 1.25 → 1
        assert_eq!(recs[0].actions, ["A", "B"]);
        assert_eq!(recs[1].actions, ["B", "C"]);
        assert_eq!(recs[2].actions, ["D"]);

        assert_eq!(counts(&r.recommend_banks(&["A", "B", "C", "D"], 10)), [("alpha", 5), ("beta", 5), ("gamma", 3)]);
        assert_eq!(counts(&r.recommend_banks(&["A"], 8)), [("alpha", 8)]);
        assert_eq!(counts(&r.recommend_banks(&["D", "A", "B"], 9)), [("alpha", 6), ("beta", 3), ("gamma", 3)]);
    }

    #[test]
    fn recommend_at_least_one_worker() {
        let r = registry();
        assert_eq!(counts(&r.recommend_banks(&["A", "B", "C", "D"], 1)), [("alpha", 1), ("beta", 1), ("gamma", 1)]);
        assert_eq!(counts(&r.recommend_banks(&["A"], 0)), [("alpha", 1)]);
    }

    #[test]
    fn recommend_ignores_unknown_actions() {
        let r = registry();
        assert_eq!(r.recommend_banks(&["A", "NOPE", "ZZZ"], 4), r.recommend_banks(&["A"], 4));
        assert!(r.recommend_banks(&["NOPE"], 4).is_empty());
        assert!(r.recommend_banks(&[], 4).is_empty());
        assert!(ManifestRegistry::new().recommend_banks(&["A"], 4).is_empty());
    }

    #[test]
    fn recommend_weighs_repeated_actions() {
        let r = registry();
        let recs = r.recommend_banks(&["A", "A", "D"], 6);
        assert_eq!(counts(&recs), [("alpha", 4), ("gamma", 2)]);
        assert_eq!(recs[0].actions, ["A"]);
    }

    #[test]
    fn recommendations_serialize_in_camel_case() {
        let recs = registry().recommend_banks(&["D"], 2);
        assert_eq!(
            serde_json::to_value(&recs).unwrap(),
            serde_json::json!([{"manifest": "gamma", "actions": ["D"], "workerCount": 2}])
        );
    }
}
