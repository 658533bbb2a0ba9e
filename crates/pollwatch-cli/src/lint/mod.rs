//! `pollwatch lint`: the blocking APIs a report saw, as clippy `disallowed-methods` rules, so
//! that the next call to one fails `cargo clippy` instead of a load test; then each call site
//! with its fix.
//!
//! The whole output is TOML (the call sites are comments), so `pollwatch lint DIR >
//! clippy.toml` works; `--output FILE` writes the rules alone, and never replaces a file
//! without `--force`. What becomes a rule is in [`rules`]; the text, in [`render`].

mod render;
mod rules;

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use pollwatch_report::call_sites;

use crate::input::Run;
use crate::Outcome;

/// `pollwatch lint`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A report directory, or a `report.json`.
    path: PathBuf,
    /// Write the `disallowed-methods` rules to FILE (a `clippy.toml`) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace FILE when it exists.
    #[arg(long, requires = "output")]
    force: bool,
}

pub(crate) fn run(args: &Args) -> Result<Outcome, String> {
    let run = Run::read(&args.path, false)?;
    let groups = call_sites::group(&run.report, |_| true);
    let lint = render::Lint::new(&groups);
    let rules = lint.clippy_toml(&run.name);
    let fixes = lint.fixes();
    let Some(output) = &args.output else {
        return Ok(Outcome::Done(format!("{rules}\n{fixes}")));
    };
    let report_file = if args.path.is_dir() {
        args.path.join(pollwatch_report::json::FILE)
    } else {
        args.path.clone()
    };
    if same_file(output, &report_file) {
        return Err(format!(
            "{}: is the report being read; write the rules to another file",
            output.display()
        ));
    }
    if args.force {
        pollwatch_report::write::write_atomic(output, rules.as_bytes())
            .map_err(|e| e.to_string())?;
    } else {
        write_new(output, rules.as_bytes())?;
    }
    Ok(Outcome::Done(format!(
        "# wrote {} ({})\n\n{fixes}",
        output.display(),
        lint.summary()
    )))
}

/// Writes `bytes` to `path`, which must not exist: an existing file is never replaced, even
/// one created since it was checked.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "{}: already exists; pass --force to replace it",
                path.display()
            ),
            _ => format!("{}: could not create: {e}", path.display()),
        })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| {
            // The file is ours and incomplete: leave nothing behind.
            let _ = std::fs::remove_file(path);
            format!("{}: could not write: {e}", path.display())
        })
}

/// Whether `a` and `b` name one existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
