//! Manifests: what a bank's workers can do, with parameter schemas.
//!
//! A [`Manifest`] lists [`ActionDefinition`]s; each declares its parameters as
//! [`ParameterSpec`]s. [`ActionDefinition::validate`] checks a request's parameters against them
//! and fills defaults, reporting every problem at once. Manifests load from JSON, TOML or YAML
//! ([`Manifest::from_path`]) as well as from code ([`Manifest::builder`]). A
//! [`ManifestRegistry`] finds manifests by name or by action and recommends bank sizes.

mod load;
mod registry;
mod schema;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::retry::RetryPolicy;

pub use load::{ManifestError, ManifestFormat};
pub use registry::{BankRecommendation, ManifestRegistry};
pub use schema::{ParamType, ParameterSpec};
pub use validate::{
    Echo, MAX_ECHO_CHARS, MAX_ISSUES, MAX_PARAMETERS, ValidationErrors, ValidationIssue, ValidationIssueKind,
};

/// Timeout used when neither the request, the action nor the manifest sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a bank's workers can do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Unique name (`"computation"`).
    pub name: String,
    /// Version (semver by convention).
    #[serde(default = "default_version")]
    pub version: String,
    /// What the workers are for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The actions, each a task id requests can name.
    pub actions: Vec<ActionDefinition>,
    /// Requests one worker may hold at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_tasks: Option<usize>,
    /// Timeout of an attempt when neither the request nor the action sets one.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::duration_ms::option")]
    pub default_timeout: Option<Duration>,
    /// Retry policy of the manifest's actions (overridable per action and per request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Configuration passed to workers when they start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_config: Option<Value>,
    /// For process workers: the program to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSpec>,
    /// For web workers: the script to load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_url: Option<String>,
}

fn default_version() -> String {
    "1.0.0".to_owned()
}

/// How to start a process worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandSpec {
    /// The executable.
    pub program: String,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<PathBuf>,
}

/// One action of a manifest: a task id with its parameter schema and policies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionDefinition {
    /// The task id (`"MATRIX_MULTIPLY"`).
    pub action_id: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Its parameters.
    #[serde(default)]
    pub parameters: Vec<ParameterSpec>,
    /// Whether failed attempts may be retried at all.
    #[serde(default = "default_true")]
    pub retryable: bool,
    /// Typical duration, for estimates.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::duration_ms::option")]
    pub estimated_duration: Option<Duration>,
    /// The `type` tag of its result (`"MATRIX_RESULT"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_type: Option<String>,
    /// Timeout of an attempt (overrides the manifest's default).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::duration_ms::option")]
    pub timeout: Option<Duration>,
    /// Retry policy (overrides the manifest's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Reject parameters the action does not declare (default `true`).
    #[serde(default = "default_true")]
    pub strict: bool,
}

fn default_true() -> bool {
    true
}

impl ActionDefinition {
    /// An action with no parameters.
    pub fn new(action_id: impl Into<String>) -> Self {
        ActionDefinition {
            action_id: action_id.into(),
            description: String::new(),
            parameters: Vec::new(),
            retryable: true,
            estimated_duration: None,
            response_type: None,
            timeout: None,
            retry: None,
            strict: true,
        }
    }

    /// Sets the description.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }

    /// Adds a parameter.
    pub fn param(mut self, p: ParameterSpec) -> Self {
        self.parameters.push(p);
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, r: RetryPolicy) -> Self {
        self.retry = Some(r);
        self
    }

    /// Sets whether failures may be retried.
    pub fn retryable(mut self, r: bool) -> Self {
        self.retryable = r;
        self
    }

    /// Sets the result's type tag.
    pub fn response_type(mut self, t: impl Into<String>) -> Self {
        self.response_type = Some(t.into());
        self
    }

    /// Accepts parameters the action does not declare.
    pub fn lenient(mut self) -> Self {
        self.strict = false;
        self
    }
}

impl Manifest {
    /// Starts a manifest in code.
    ///
    /// ```
    /// use atmo_core::manifest::{ActionDefinition, Manifest, ParamType, ParameterSpec};
    /// let m = Manifest::builder("math")
    ///     .version("1.2.0")
    ///     .max_concurrent_tasks(4)
    ///     .action(
    ///         ActionDefinition::new("add")
    ///             .param(ParameterSpec::required("a", ParamType::Number))
    ///             .param(ParameterSpec::required("b", ParamType::Number)),
    ///     )
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(m.action("add").map(|a| a.parameters.len()), Some(2));
    /// ```
    pub fn builder(name: impl Into<String>) -> ManifestBuilder {
        ManifestBuilder { manifest: Manifest::empty(name) }
    }

    /// A manifest with a name and nothing else (version 1.0.0, no actions): the starting point
    /// of [`Manifest::builder`], unchecked.
    pub fn empty(name: impl Into<String>) -> Self {
        Manifest {
            name: name.into(),
            version: default_version(),
            description: None,
            actions: Vec::new(),
            max_concurrent_tasks: None,
            default_timeout: None,
            retry: None,
            init_config: None,
            command: None,
            script_url: None,
        }
    }

    /// The action with this id.
    pub fn action(&self, action_id: &str) -> Option<&ActionDefinition> {
        self.actions.iter().find(|a| a.action_id == action_id)
    }

    /// The action ids, in declaration order.
    pub fn action_ids(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().map(|a| a.action_id.as_str())
    }

    /// Requests one worker may hold at once.
    pub fn concurrency_per_worker(&self) -> usize {
        self.max_concurrent_tasks.unwrap_or(1).max(1)
    }

    /// The timeout of `action`: the action's, else the manifest's default, else 30 s.
    pub fn timeout_for(&self, action: &ActionDefinition) -> Duration {
        action.timeout.or(self.default_timeout).unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The retry policy of `action`: the action's, else the manifest's, else the default.
    pub fn retry_for(&self, action: &ActionDefinition) -> RetryPolicy {
        action.retry.clone().or_else(|| self.retry.clone()).unwrap_or_default()
    }
}

/// Builds a [`Manifest`] in code.
#[derive(Debug, Clone)]
pub struct ManifestBuilder {
    manifest: Manifest,
}

impl ManifestBuilder {
    /// Sets the version.
    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.manifest.version = v.into();
        self
    }
    /// Sets the description.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.manifest.description = Some(d.into());
        self
    }
    /// Adds an action.
    pub fn action(mut self, a: ActionDefinition) -> Self {
        self.manifest.actions.push(a);
        self
    }
    /// Sets the requests one worker may hold at once.
    pub fn max_concurrent_tasks(mut self, n: usize) -> Self {
        self.manifest.max_concurrent_tasks = Some(n);
        self
    }
    /// Sets the default timeout.
    pub fn default_timeout(mut self, t: Duration) -> Self {
        self.manifest.default_timeout = Some(t);
        self
    }
    /// Sets the retry policy.
    pub fn retry(mut self, r: RetryPolicy) -> Self {
        self.manifest.retry = Some(r);
        self
    }
    /// Sets the worker init configuration.
    pub fn init_config(mut self, c: Value) -> Self {
        self.manifest.init_config = Some(c);
        self
    }
    /// Sets the process command.
    pub fn command(mut self, c: CommandSpec) -> Self {
        self.manifest.command = Some(c);
        self
    }

    /// Checks the manifest and returns it.
    ///
    /// # Errors
    /// [`ManifestError::Invalid`] listing every structural problem (no actions, duplicate
    /// action or parameter names, a default that violates its own schema, ...).
    pub fn build(self) -> Result<Manifest, ManifestError> {
        self.manifest.check()?;
        Ok(self.manifest)
    }
}
