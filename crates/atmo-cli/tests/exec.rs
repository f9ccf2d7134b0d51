//! `atmo exec` end to end: the real binary, its stdout, stderr and exit codes.

use std::process::{Command, Output};

fn atmo(args: &[&str]) -> std::io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_atmo")).args(args).output()
}

#[test]
fn a_valid_request_prints_its_result() -> anyhow::Result<()> {
    let out = atmo(&["exec", "HASH", r#"{"data": "abc"}"#, "--compact"])?;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    // FIPS 180-2, SHA-256("abc").
    assert_eq!(result["hash"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(result["type"], "HASH_RESULT");
    Ok(())
}

#[test]
fn invalid_parameters_exit_2_and_list_every_problem() -> anyhow::Result<()> {
    let out = atmo(&["exec", "HASH", r#"{"data": "abc", "algorithm": "md5", "extra": 1}"#])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`algorithm`"), "{stderr}");
    assert!(stderr.contains("`extra`"), "{stderr}");
    Ok(())
}

#[test]
fn unknown_actions_and_malformed_json_exit_2() -> anyhow::Result<()> {
    let out = atmo(&["exec", "NO_SUCH_ACTION", "{}"])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MATRIX_MULTIPLY"), "lists the known actions");
    let out = atmo(&["exec", "HASH", "{not json"])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    Ok(())
}

#[test]
fn a_handler_that_runs_out_of_time_exits_1() -> anyhow::Result<()> {
    let out = atmo(&["exec", "MONTE_CARLO_PI", r#"{"iterations": 1000000000, "seed": 1}"#, "--timeout", "50"])?;
    assert_eq!(out.status.code(), Some(1), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
    Ok(())
}
