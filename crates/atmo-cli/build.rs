//! Sets `ATMO_VERSION`, what `atmo --version` prints: the crate's version and, when it is known,
//! the git revision it was built from.
//!
//! The revision comes from `git` when the crate is built in a checkout, or from the
//! `.cargo_vcs_info.json` that `cargo package` writes into a packaged crate (the commit it was
//! packaged from). Without either (no git installed, a copied source tree), the version alone is
//! printed: the build never fails for want of a revision.

use std::path::Path;
use std::process::Command;

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let dir = Path::new(&dir);
    let rev = packaged_revision(dir).or_else(|| git_revision(dir));
    match rev {
        Some(rev) => println!("cargo:rustc-env=ATMO_VERSION={version} (git {rev})"),
        None => println!("cargo:rustc-env=ATMO_VERSION={version}"),
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The commit recorded by `cargo package`, shortened like `git rev-parse --short=12`.
fn packaged_revision(dir: &Path) -> Option<String> {
    // Present only in a packaged crate, where it never changes (a path that does not exist
    // would make cargo rerun this script on every build).
    let text = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok()?;
    let start = text.find("\"sha1\"")? + "\"sha1\"".len();
    let rest = text[start..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let sha: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    (sha.len() >= 12).then(|| sha[..12].to_owned())
}

/// `git rev-parse --short=12 HEAD` in `dir`, with the files to watch so a new commit rebuilds.
fn git_revision(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).current_dir(dir).output().ok()?;
        if !out.status.success() {
            return None;
        }
        let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (!s.is_empty()).then_some(s)
    };
    let rev = git(&["rev-parse", "--short=12", "HEAD"])?;
    // HEAD names the branch; the branch's ref (loose or packed) moves with each commit.
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", &branch])
    {
        println!("cargo:rerun-if-changed={p}");
    }
    Some(rev)
}
