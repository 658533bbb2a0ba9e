//! Reading a run: its report and, when asked for, its interval log. Errors are one line that
//! names the file and the problem.

use std::path::{Path, PathBuf};

use pollwatch_report::{hlog, json, ReadError, Report};

/// A report read from disk, with the interval log beside it when one was asked for.
#[derive(Debug)]
pub(crate) struct Run {
    /// The report.
    pub(crate) report: Report,
    /// The interval log, when it was asked for and exists.
    pub(crate) log: Option<hlog::Log>,
    /// The directory the report is in.
    pub(crate) dir: PathBuf,
    /// The path as the user gave it, to name the run.
    pub(crate) name: String,
    /// Why there is no log, when one was asked for.
    missing_log: Option<String>,
}

impl Run {
    /// Reads `path` (a report directory or a `report.json`) and, with `with_log`, the
    /// `report.hlog` beside it. A missing log is not an error (older runs have none); a log
    /// that exists but cannot be read is.
    pub(crate) fn read(path: &Path, with_log: bool) -> Result<Run, String> {
        let json_file = if path.is_dir() {
            path.join(json::FILE)
        } else {
            path.to_path_buf()
        };
        let report = read_report(&json_file)?;
        let dir = json_file
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let mut run = Run {
            report,
            log: None,
            dir,
            name: path.display().to_string(),
            missing_log: None,
        };
        if with_log {
            let log_file = run.dir.join(hlog::FILE);
            if log_file.exists() {
                run.log = Some(hlog::read(&log_file).map_err(|e| describe(&e, &log_file))?);
            } else {
                run.missing_log = Some(format!(
                    "note: {} does not exist; charts over time are left out",
                    log_file.display()
                ));
            }
        }
        Ok(run)
    }

    /// A line to tell the user about the interval log: missing, or its last line cut short.
    pub(crate) fn log_note(&self) -> Option<String> {
        if let Some(missing) = &self.missing_log {
            return Some(missing.clone());
        }
        self.log.as_ref().filter(|l| l.truncated_tail).map(|_| {
            format!(
                "note: the last line of {} was cut short (the process stopped while writing) \
                 and was left out",
                self.dir.join(hlog::FILE).display()
            )
        })
    }
}

/// Reads one report, with errors that name the file.
pub(crate) fn read_report(file: &Path) -> Result<Report, String> {
    json::read(file).map_err(|e| describe(&e, file))
}

/// The error as one line, prefixed by the file when the error does not name it already.
fn describe(e: &ReadError, file: &Path) -> String {
    match e.path() {
        Some(_) => e.to_string(),
        None => format!("{}: {e}", file.display()),
    }
}

/// Whether `label` is selected by `--site PATTERN` (a plain substring; none selects all).
pub(crate) fn matches(pattern: Option<&str>, label: &str) -> bool {
    pattern.is_none_or(|p| label.contains(p))
}
