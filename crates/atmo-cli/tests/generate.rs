//! What `atmo` prints about itself: `--version` with the git revision, shell completions and
//! man pages generated from the command line's definition.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn atmo(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_atmo")).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn text(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn version_names_the_git_revision_of_a_checkout() {
    let version = text(&atmo(&["--version"]));
    assert!(version.starts_with(&format!("atmo {}", env!("CARGO_PKG_VERSION"))), "{version}");
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success());
    match head {
        Some(head) => {
            let rev = String::from_utf8(head.stdout).unwrap();
            assert_eq!(version.trim(), format!("atmo {} (git {})", env!("CARGO_PKG_VERSION"), rev.trim()));
        }
        // Built without git (a packaged crate without VCS info): the version alone.
        None => assert!(!version.contains("git ") || version.contains("(git "), "{version}"),
    }
    // Subcommands say the same.
    assert_eq!(text(&atmo(&["serve", "--version"])).replace("atmo-serve", "atmo"), version);
}

#[test]
fn completions_for_bash_zsh_and_fish_know_every_command() {
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef atmo"), ("fish", "complete -c atmo")] {
        let script = text(&atmo(&["completions", shell]));
        assert!(script.contains(marker), "{shell}: no `{marker}`");
        for command in ["serve", "submit", "backup", "completions", "bench"] {
            assert!(script.contains(command), "{shell}: no `{command}`");
        }
        assert!(script.contains("log-format"), "{shell}: no serve options");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_atmo")).args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn man_prints_the_page_or_writes_one_per_command() {
    let page = text(&atmo(&["man"]));
    assert!(page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH atmo"), "{}", &page[..200.min(page.len())]);
    assert!(page.contains(".TH atmo 1"), "a section 1 page");
    assert!(page.contains("serve") && page.contains("backup"), "lists the commands");

    let dir = tempfile::tempdir().unwrap();
    atmo(&["man", "--dir", dir.path().to_str().unwrap()]);
    for name in ["atmo.1", "atmo-serve.1", "atmo-backup.1", "atmo-bench.1", "atmo-bench-inproc.1"] {
        let page = std::fs::read_to_string(dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(page.contains(".TH"), "{name}");
    }
    let serve = std::fs::read_to_string(dir.path().join("atmo-serve.1")).unwrap();
    assert!(serve.contains("log\\-format") || serve.contains("log-format"), "the serve page has its options");
}
