//! `atmo completions SHELL` and `atmo man`: shell completions and man pages generated from the
//! command line's own definition ([`crate::cli`]), so they cannot drift from it.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

/// Prints the completion script for the shell on stdout.
///
/// # Errors
/// Writing stdout failed.
pub(crate) fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "atmo", &mut out);
    std::io::stdout().lock().write_all(&out).context("cannot write the completions")?;
    Ok(())
}

/// Prints `atmo.1` on stdout, or with `--dir` writes it and a page per command there.
///
/// # Errors
/// Writing stdout or the directory failed.
pub(crate) fn man(args: &ManArgs) -> anyhow::Result<()> {
    let cmd = Cli::command();
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write the pages into {}", dir.display()))?;
            println!("wrote the man pages into {}", dir.display());
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out).context("cannot render the man page")?;
            std::io::stdout().lock().write_all(&out).context("cannot write the man page")?;
        }
    }
    Ok(())
}
