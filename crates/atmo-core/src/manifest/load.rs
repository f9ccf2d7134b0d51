//! Loading manifests from JSON, TOML and YAML, and structural checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::validate::{Subject, check_value};
use super::{ActionDefinition, Manifest, ParameterSpec};

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

impl ManifestFormat {
    /// The format named by a path's extension (`.json`, `.toml`, `.yaml` or `.yml`, in any
    /// letter case), or `None`.
    ///
    /// ```
    /// use atmo_core::manifest::ManifestFormat;
    /// use std::path::Path;
    /// assert_eq!(ManifestFormat::from_path(Path::new("workers/geo.YML")), Some(ManifestFormat::Yaml));
    /// assert_eq!(ManifestFormat::from_path(Path::new("notes.txt")), None);
    /// ```
    pub fn from_path(path: &Path) -> Option<ManifestFormat> {
        let ext = path.extension()?.to_str()?;
        [
            ("json", ManifestFormat::Json),
            ("toml", ManifestFormat::Toml),
            ("yaml", ManifestFormat::Yaml),
            ("yml", ManifestFormat::Yaml),
        ]
        .into_iter()
        .find_map(|(name, format)| ext.eq_ignore_ascii_case(name).then_some(format))
    }
}

impl Manifest {
    /// Parses a manifest from text in the given format and checks it.
    ///
    /// Field names are camelCase (`actionId`, `maxConcurrentTasks`); durations are
    /// milliseconds.
    ///
    /// ```
    /// use atmo_core::manifest::{Manifest, ManifestFormat};
    /// let toml = r#"
    /// name = "math"
    /// maxConcurrentTasks = 2
    ///
    /// [[actions]]
    /// actionId = "add"
    /// parameters = [
    ///     { name = "a", type = "number", required = true },
    ///     { name = "b", type = "number", required = true },
    /// ]
    /// "#;
    /// let m = Manifest::from_str_format(toml, ManifestFormat::Toml).unwrap();
    /// assert_eq!(m.action_ids().collect::<Vec<_>>(), ["add"]);
    /// ```
    ///
    /// # Errors
    /// [`ManifestError::Json`], [`ManifestError::Toml`] or [`ManifestError::Yaml`] when the
    /// text does not parse into a manifest, [`ManifestError::Invalid`] when the manifest is
    /// inconsistent (see [`Manifest::check`]).
    pub fn from_str_format(text: &str, format: ManifestFormat) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = match format {
            ManifestFormat::Json => serde_json::from_str(text)?,
            ManifestFormat::Toml => toml::from_str(text)?,
            ManifestFormat::Yaml => serde_yaml_ng::from_str(text)?,
        };
        manifest.check()?;
        Ok(manifest)
    }

    /// Reads a manifest file; the format follows the extension (see
    /// [`ManifestFormat::from_path`]).
    ///
    /// # Errors
    /// [`ManifestError::UnknownFormat`] for an unknown extension (checked before the file is
    /// read), [`ManifestError::Io`] (with the path) when the file cannot be read, otherwise as
    /// [`Manifest::from_str_format`].
    pub fn from_path(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let format = ManifestFormat::from_path(path).ok_or_else(|| ManifestError::UnknownFormat(path.to_path_buf()))?;
        let text =
            std::fs::read_to_string(path).map_err(|source| ManifestError::Io { path: path.to_path_buf(), source })?;
        Manifest::from_str_format(&text, format)
    }

    /// Checks the manifest's structure: a non-empty name, at least one action, non-empty and
    /// unique action ids, non-empty and unique parameter names per action, parameter bounds
    /// that are finite and ordered (`minimum <= maximum`, `minLength <= maxLength`), a
    /// non-empty `allowedValues` when given, defaults that pass their own parameter's rules,
    /// `maxConcurrentTasks` of at least 1, and a non-empty `command.program`.
    ///
    /// ```
    /// use atmo_core::manifest::{ActionDefinition, Manifest, ManifestError, ParamType, ParameterSpec};
    /// use serde_json::json;
    /// let err = Manifest::builder("")
    ///     .action(ActionDefinition::new("a").param(ParameterSpec::optional("n", ParamType::Integer, json!("x"))))
    ///     .build()
    ///     .unwrap_err();
    /// let ManifestError::Invalid { problems, .. } = err else { panic!() };
    /// assert_eq!(problems.len(), 2); // empty name, default of the wrong type
    /// ```
    ///
    /// # Errors
    /// [`ManifestError::Invalid`] with every problem, each naming where it is.
    pub fn check(&self) -> Result<(), ManifestError> {
        let mut problems = Vec::new();

        if self.name.trim().is_empty() {
            problems.push("the manifest's `name` must not be empty".to_owned());
        }
        if self.actions.is_empty() {
            problems.push("the manifest declares no actions; `actions` needs at least one".to_owned());
        }
        if self.max_concurrent_tasks == Some(0) {
            problems.push("`maxConcurrentTasks` must be at least 1, got 0".to_owned());
        }
        if let Some(command) = &self.command
            && command.program.trim().is_empty()
        {
            problems.push("`command.program` must name the executable to run, got an empty string".to_owned());
        }

        for (id, count) in duplicates(self.actions.iter().map(|a| a.action_id.as_str())) {
            if !id.trim().is_empty() {
                problems.push(format!("action id `{id}` is declared {count} times; action ids must be unique"));
            }
        }

        for (index, action) in self.actions.iter().enumerate() {
            check_action(index, action, &mut problems);
        }

        if problems.is_empty() { Ok(()) } else { Err(ManifestError::Invalid { name: self.name.clone(), problems }) }
    }
}

/// Values seen more than once, with their counts, in order of first appearance.
fn duplicates<'a>(items: impl Iterator<Item = &'a str>) -> Vec<(&'a str, usize)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut order = Vec::new();
    for item in items {
        let count = counts.entry(item).or_insert(0);
        if *count == 0 {
            order.push(item);
        }
        *count += 1;
    }
    order.into_iter().filter_map(|item| counts.get(item).filter(|&&c| c > 1).map(|&c| (item, c))).collect()
}

fn check_action(index: usize, action: &ActionDefinition, problems: &mut Vec<String>) {
    let label = if action.action_id.trim().is_empty() {
        problems.push(format!("action #{} has an empty `actionId`", index + 1));
        format!("action #{}", index + 1)
    } else {
        format!("action `{}`", action.action_id)
    };

    for (name, count) in duplicates(action.parameters.iter().map(|p| p.name.as_str())) {
        if !name.trim().is_empty() {
            problems
                .push(format!("{label}: parameter `{name}` is declared {count} times; parameter names must be unique"));
        }
    }

    for (i, spec) in action.parameters.iter().enumerate() {
        if spec.name.trim().is_empty() {
            problems.push(format!("{label}: parameter #{} has an empty `name`", i + 1));
        }
        check_parameter(&label, spec, problems);
    }
}

fn check_parameter(label: &str, spec: &ParameterSpec, problems: &mut Vec<String>) {
    let name = &spec.name;
    for (field, bound) in [("minimum", spec.minimum), ("maximum", spec.maximum)] {
        if let Some(b) = bound
            && !b.is_finite()
        {
            problems.push(format!("{label}: parameter `{name}`: `{field}` must be a finite number, got {b}"));
        }
    }
    if let (Some(min), Some(max)) = (spec.minimum, spec.maximum)
        && min > max
    {
        problems.push(format!(
            "{label}: parameter `{name}`: `minimum` ({min}) is greater than `maximum` ({max}); no value could pass"
        ));
    }
    if let (Some(min), Some(max)) = (spec.min_length, spec.max_length)
        && min > max
    {
        problems.push(format!(
            "{label}: parameter `{name}`: `minLength` ({min}) is greater than `maxLength` ({max}); no value could pass"
        ));
    }
    if spec.allowed_values.as_ref().is_some_and(Vec::is_empty) {
        problems.push(format!(
            "{label}: parameter `{name}`: `allowedValues` is empty, so no value could pass; list the allowed values or drop the field"
        ));
    }
    if let Some(default) = &spec.default {
        let mut issues = Vec::new();
        check_value(spec, default, Subject::Default(name), &mut issues);
        problems.extend(issues.into_iter().map(|issue| format!("{label}: {}", issue.message)));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::{Value, json};

    use super::*;
    use crate::manifest::{CommandSpec, ParamType};

    fn problems(m: &Manifest) -> Vec<String> {
        match m.check() {
            Err(ManifestError::Invalid { problems, .. }) => problems,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn valid() -> Manifest {
        Manifest::builder("m").action(ActionDefinition::new("A")).build().unwrap()
    }

    fn with_param(spec: ParameterSpec) -> Manifest {
        Manifest { actions: vec![ActionDefinition::new("A").param(spec)], ..valid() }
    }

    #[test]
    fn format_from_extension_ignores_case() {
        for (path, format) in [
            ("a.json", Some(ManifestFormat::Json)),
            ("dir.d/a.JSON", Some(ManifestFormat::Json)),
            ("a.toml", Some(ManifestFormat::Toml)),
            ("a.Toml", Some(ManifestFormat::Toml)),
            ("a.yaml", Some(ManifestFormat::Yaml)),
            ("a.YML", Some(ManifestFormat::Yaml)),
            ("a.txt", None),
            ("a", None),
            ("json", None),
            ("a.json.bak", None),
        ] {
            assert_eq!(ManifestFormat::from_path(Path::new(path)), format, "{path}");
        }
    }

    #[test]
    fn unknown_format_error_keeps_the_path() {
        let err = Manifest::from_path("workers/math.ini").unwrap_err();
        assert!(matches!(&err, ManifestError::UnknownFormat(p) if p == Path::new("workers/math.ini")));
    }

    #[test]
    fn same_manifest_in_three_formats() {
        let json = r#"{"name": "geo", "defaultTimeout": 30000, "actions": [{"actionId": "BUFFER_GEOMETRY",
            "parameters": [{"name": "segments", "type": "integer", "default": 8, "min": 4, "max": 64}]}]}"#;
        let toml = "name = 'geo'\ndefaultTimeout = 30000\n[[actions]]\nactionId = 'BUFFER_GEOMETRY'\n\
                    parameters = [{ name = 'segments', type = 'integer', default = 8, minimum = 4, maximum = 64 }]\n";
        let yaml = "name: geo\ndefaultTimeout: 30000\nactions:\n  - actionId: BUFFER_GEOMETRY\n    parameters:\n\
                    \x20     - {name: segments, type: integer, default: 8, minimum: 4, maximum: 64}\n";
        let a = Manifest::from_str_format(json, ManifestFormat::Json).unwrap();
        let b = Manifest::from_str_format(toml, ManifestFormat::Toml).unwrap();
        let c = Manifest::from_str_format(yaml, ManifestFormat::Yaml).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.default_timeout, Some(std::time::Duration::from_secs(30)));
        assert_eq!(a.actions[0].parameters[0].minimum, Some(4.0));
    }

    #[test]
    fn parsed_manifests_are_checked() {
        let err = Manifest::from_str_format(r#"{"name": "m", "actions": []}"#, ManifestFormat::Json).unwrap_err();
        assert!(matches!(err, ManifestError::Invalid { ref name, .. } if name == "m"), "{err:?}");
    }

    #[test]
    fn a_valid_manifest_passes() {
        assert!(valid().check().is_ok());
        let m = with_param(
            ParameterSpec::optional("topK", ParamType::Integer, json!(5)).range(1.0, 20.0).allowed([1, 5, 10, 20]),
        );
        assert!(m.check().is_ok());
        let m = with_param(
            ParameterSpec::optional("tags", ParamType::Array, json!(["a"])).length(0, 3).items(ParamType::String),
        );
        assert!(m.check().is_ok());
    }

    #[test]
    fn empty_name_and_no_actions() {
        let m = Manifest { name: " ".into(), actions: vec![], ..valid() };
        assert_eq!(
            problems(&m),
            [
                "the manifest's `name` must not be empty",
                "the manifest declares no actions; `actions` needs at least one"
            ]
        );
    }

    #[test]
    fn zero_concurrency_and_empty_program() {
        let m = Manifest {
            max_concurrent_tasks: Some(0),
            command: Some(CommandSpec {
                program: String::new(),
                args: vec![],
                env: Default::default(),
                working_dir: None,
            }),
            ..valid()
        };
        assert_eq!(problems(&m).len(), 2);
        assert!(Manifest { max_concurrent_tasks: Some(1), ..valid() }.check().is_ok());
    }

    #[test]
    fn action_ids_must_be_present_and_unique() {
        let m = Manifest {
            actions: vec![
                ActionDefinition::new("A"),
                ActionDefinition::new(""),
                ActionDefinition::new("A"),
                ActionDefinition::new("A"),
            ],
            ..valid()
        };
        assert_eq!(
            problems(&m),
            ["action id `A` is declared 3 times; action ids must be unique", "action #2 has an empty `actionId`"]
        );
    }

    #[test]
    fn parameter_names_must_be_present_and_unique() {
        let m = Manifest {
            actions: vec![
                ActionDefinition::new("A")
                    .param(ParameterSpec::required("x", ParamType::Any))
                    .param(ParameterSpec::required("", ParamType::Any))
                    .param(ParameterSpec::required("x", ParamType::Number)),
            ],
            ..valid()
        };
        assert_eq!(
            problems(&m),
            [
                "action `A`: parameter `x` is declared 2 times; parameter names must be unique",
                "action `A`: parameter #2 has an empty `name`",
            ]
        );
    }

    #[test]
    fn bounds_must_be_ordered_and_finite() {
        let m = with_param(ParameterSpec::required("n", ParamType::Number).range(5.0, 1.0));
        assert_eq!(
            problems(&m),
            ["action `A`: parameter `n`: `minimum` (5) is greater than `maximum` (1); no value could pass"]
        );
        let m = with_param(ParameterSpec::required("s", ParamType::String).length(3, 2));
        assert_eq!(
            problems(&m),
            ["action `A`: parameter `s`: `minLength` (3) is greater than `maxLength` (2); no value could pass"]
        );
        let m = with_param(ParameterSpec::required("n", ParamType::Number).min(f64::NAN));
        assert_eq!(problems(&m), ["action `A`: parameter `n`: `minimum` must be a finite number, got NaN"]);
        let m = with_param(ParameterSpec::required("n", ParamType::Number).allowed(Vec::<Value>::new()));
        assert_eq!(problems(&m).len(), 1);
    }

    #[test]
    fn defaults_must_pass_their_own_spec() {
        let cases = [
            (
                ParameterSpec::optional("n", ParamType::Integer, json!(0.5)),
                "action `A`: the default of parameter `n` must be an integer, got number 0.5",
            ),
            (
                ParameterSpec::optional("unit", ParamType::String, json!("parsec")).allowed(["km", "miles"]),
                r#"action `A`: the default of parameter `unit` must be one of "km", "miles", got string "parsec""#,
            ),
            (
                ParameterSpec::optional("quality", ParamType::Integer, json!(0)).range(1.0, 100.0),
                "action `A`: the default of parameter `quality` must be between 1 and 100, got 0",
            ),
            (
                ParameterSpec::optional("coords", ParamType::Array, json!([])).min_len(1),
                "action `A`: the default of parameter `coords` must have at least 1 item, got 0 items",
            ),
            (
                ParameterSpec::optional("fields", ParamType::Array, json!(["a", 2])).items(ParamType::String),
                "action `A`: the default of parameter `fields` item 1 must be a string, got number 2",
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(problems(&with_param(spec)), [expected]);
        }
    }

    #[test]
    fn every_problem_is_listed_and_shown() {
        let m = Manifest {
            name: String::new(),
            max_concurrent_tasks: Some(0),
            actions: vec![
                ActionDefinition::new("A")
                    .param(ParameterSpec::optional("n", ParamType::Integer, json!("x")).range(2.0, 1.0)),
            ],
            ..valid()
        };
        let err = m.check().unwrap_err();
        let ManifestError::Invalid { problems, .. } = &err else { panic!("{err:?}") };
        assert_eq!(problems.len(), 4, "{problems:#?}");
        let shown = err.to_string();
        assert!(shown.starts_with("invalid manifest ``: "));
        assert!(problems.iter().all(|p| shown.contains(p.as_str())));
    }
}
