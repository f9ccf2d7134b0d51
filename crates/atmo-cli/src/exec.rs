//! `atmo exec ACTION [PARAMS]`: runs one built-in request in this process and prints its
//! result as JSON, for trying the built-ins out.
//!
//! The parameters are validated against the action's manifest exactly as a submission would
//! be (defaults filled, every problem listed). Exit codes: 0 with the result on stdout; 2 for
//! bad input (unknown action, malformed JSON, invalid parameters), every problem on stderr;
//! 1 when the handler failed or timed out.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use atmo_workers::{ErrorCategory, Resources, TaskContext};
use serde_json::Value;

use crate::cli::ExecArgs;

/// Exit code for bad input.
const BAD_INPUT: u8 = 2;

/// Reads the parameters: inline JSON, `-` for stdin, `@path` for a file; none means `{}`.
fn read_params(arg: Option<&str>) -> anyhow::Result<String> {
    match arg {
        None => Ok("{}".to_owned()),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("reading the parameters from stdin")?;
            Ok(text)
        }
        Some(arg) => match arg.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading the parameters from {path}")),
            None => Ok(arg.to_owned()),
        },
    }
}

/// Runs the command; returns the process's exit code.
pub(crate) fn run(args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let text = read_params(args.params.as_deref())?;
    let params: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("atmo: the parameters are not valid JSON: {e}");
            return Ok(ExitCode::from(BAD_INPUT));
        }
    };
    let builtins = atmo_builtins::all();
    let Some((manifest, handlers)) = builtins.iter().find(|(m, _)| m.action(&args.action).is_some()) else {
        let mut known: Vec<&str> = builtins.iter().flat_map(|(m, _)| m.action_ids()).collect();
        known.sort_unstable();
        eprintln!("atmo: unknown action `{}`; the built-in actions are: {}", args.action, known.join(", "));
        return Ok(ExitCode::from(BAD_INPUT));
    };
    let (Some(action), Some(handler)) = (manifest.action(&args.action), handlers.get(&args.action)) else {
        anyhow::bail!("manifest `{}` declares `{}` but has no handler for it", manifest.name, args.action);
    };
    let params = match action.validate(params) {
        Ok(p) => p,
        Err(errors) => {
            eprintln!("atmo: invalid parameters for {} ({} problems):", args.action, errors.issues().len());
            for issue in errors.issues() {
                eprintln!("  - {}", issue.message);
            }
            return Ok(ExitCode::from(BAD_INPUT));
        }
    };
    let timeout = args.timeout_ms.map_or_else(|| manifest.timeout_for(action), Duration::from_millis);
    let ctx = TaskContext::detached(&args.action, Arc::new(Resources::new()));
    // The handler runs on this thread; a watchdog cancels its token when time is up, and the
    // built-ins check their token in every long loop.
    let token = ctx.cancel.clone();
    let watchdog = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + timeout;
        while !token.is_cancelled() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                token.cancel();
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
        false
    });
    let outcome = handler.call_blocking(&ctx, &params);
    let finished_in_time = !ctx.cancel.is_cancelled();
    ctx.cancel.cancel();
    let timed_out = watchdog.join().unwrap_or(false) && !finished_in_time;
    match outcome {
        Ok(result) => {
            let text =
                if args.compact { serde_json::to_string(&result)? } else { serde_json::to_string_pretty(&result)? };
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if timed_out => {
            eprintln!("atmo: {} timed out after {} ms ({})", args.action, timeout.as_millis(), e.message);
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("atmo: {} failed: {e}", args.action);
            if let Some(details) = &e.details {
                eprintln!("  details: {details}");
            }
            Ok(if e.category == ErrorCategory::Validation { ExitCode::from(BAD_INPUT) } else { ExitCode::FAILURE })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read_params;

    #[test]
    fn parameters_come_inline_from_a_file_or_default_to_an_empty_object() -> anyhow::Result<()> {
        assert_eq!(read_params(None)?, "{}");
        assert_eq!(read_params(Some(r#"{"a":1}"#))?, r#"{"a":1}"#);
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("p.json");
        std::fs::write(&path, r#"{"b":2}"#)?;
        assert_eq!(read_params(Some(&format!("@{}", path.display())))?, r#"{"b":2}"#);
        assert!(read_params(Some("@/nonexistent/params.json")).is_err());
        Ok(())
    }
}
