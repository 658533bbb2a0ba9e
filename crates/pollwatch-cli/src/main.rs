//! `pollwatch`: reads the reports pollwatch writes (`report.json`, `report.hlog`).
//!
//! ```text
//! pollwatch show target/pollwatch                  # busiest sites, stalls by call site
//! pollwatch diff before/ after/ --fail-if 'p99>+20%'
//! pollwatch html target/pollwatch -o report.html   # one self-contained page
//! pollwatch intervals target/pollwatch             # percentiles per interval, from the log
//! pollwatch lint target/pollwatch > clippy.toml     # clippy rules against the blocking APIs seen
//! pollwatch attach 4242 --duration 30s             # a running service, from outside
//! ```
//!
//! Exit status: 0 on success, 1 when a `diff` gate fails, 2 when an input cannot be read or an
//! argument is invalid (one line on stderr naming the file and the problem).

#[cfg(target_os = "linux")]
mod attach;
mod diff;
mod gate;
mod html;
mod input;
mod intervals;
mod lint;
mod show;
mod symbolize;
mod table;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Reads pollwatch's reports: where tokio tasks held their worker threads.
#[derive(Debug, Parser)]
#[command(name = "pollwatch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The sites that held their threads longest, then the stalls grouped by blocking call site.
    Show(show::Args),
    /// What changed between two reports, per site; gates that fail the command on a regression.
    Diff(diff::Args),
    /// One self-contained HTML page with charts (no JavaScript, no network).
    Html(HtmlArgs),
    /// Poll-time percentiles per interval, read from the interval log `report.hlog`.
    Intervals(intervals::Args),
    /// The blocking APIs the report saw as clippy `disallowed-methods` rules, then each call
    /// site's fix.
    Lint(lint::Args),
    /// Gives a stripped build's report its lines, from the build's debug info kept elsewhere.
    Symbolize(symbolize::Args),
    /// Watches a running tokio service from outside (no rebuild): the blocking lines, live,
    /// and a report at the end.
    #[cfg(target_os = "linux")]
    Attach(attach::Args),
}

/// `pollwatch html`.
#[derive(Debug, clap::Args)]
struct HtmlArgs {
    /// A report directory, or its `report.json` (the interval log is read from beside it).
    path: PathBuf,
    /// Where to write the page [default: `report.html` beside the report].
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// Exit status when a `diff` gate fails.
const GATE_FAILED: u8 = 1;
/// Exit status when an input cannot be read or an argument is invalid.
const BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Show(args) => show::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Html(args) => html_command(&args),
        Command::Intervals(args) => intervals::run(&args),
        Command::Lint(args) => lint::run(&args),
        Command::Symbolize(args) => symbolize::run(&args),
        #[cfg(target_os = "linux")]
        Command::Attach(args) => attach::run(&args),
    };
    match result {
        Ok(Outcome::Done(text)) => print(&text, ExitCode::SUCCESS),
        Ok(Outcome::GateFailed(text)) => print(&text, ExitCode::from(GATE_FAILED)),
        Err(e) => {
            eprintln!("pollwatch: {e}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

/// Prints `text` to stdout; a closed pipe (`| head`) is not an error.
fn print(text: &str, code: ExitCode) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("pollwatch: cannot write to stdout: {e}");
            ExitCode::from(BAD_INPUT)
        }
        _ => code,
    }
}

/// What a command produced.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Success, with the text to print.
    Done(String),
    /// A gate failed; the text says which.
    GateFailed(String),
}

fn html_command(args: &HtmlArgs) -> Result<Outcome, String> {
    let run = input::Run::read(&args.path, true)?;
    let page = html::render(&run.report, run.log.as_ref(), &run.name);
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| run.dir.join("report.html"));
    pollwatch_report::write::write_atomic(&output, page.as_bytes()).map_err(|e| e.to_string())?;
    let mut text = format!("wrote {}\n", output.display());
    if let Some(note) = run.log_note() {
        text.push_str(&note);
        text.push('\n');
    }
    Ok(Outcome::Done(text))
}
