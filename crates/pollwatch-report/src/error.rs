//! Errors from reading and writing report files.
//!
//! Each error prints as one line that names the file (when there is one) and says what is wrong
//! with it, so a command-line tool can print it as it is and exit.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why a report could not be read.
///
/// Returned by [`json::read`](crate::json::read), [`json::from_str`](crate::json::from_str) and
/// [`histogram::decode`](crate::histogram::decode).
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read. Check the path and its permissions.
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The text is not JSON, or is JSON cut short (a report still being written by a tool that
    /// does not write atomically, or a copy that was interrupted), or a field has the wrong type.
    NotJson {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
        /// The parser's error, with its line and column.
        source: serde_json::Error,
    },
    /// The text is JSON, but its `format` field is missing or is not
    /// [`FORMAT`](crate::FORMAT): it is some other JSON file.
    NotAReport {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
    },
    /// The report has a schema version this crate does not read. Use the pollwatch release that
    /// matches the one that wrote the report.
    UnsupportedVersion {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
        /// The report's `version`.
        found: u32,
        /// The only version this crate reads, [`VERSION`](crate::VERSION).
        supported: u32,
    },
    /// A site's `histogram` field is not a valid encoded histogram.
    BadHistogram {
        /// The label of the site whose histogram is bad; empty when the histogram was decoded
        /// on its own with [`histogram::decode`](crate::histogram::decode).
        site: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A line of an HdrHistogram interval log (see [`hlog`](crate::hlog)) is not a valid
    /// interval, header or comment.
    BadLog {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
        /// The line, counting from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl ReadError {
    /// The file the error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ReadError::Io { path, .. } => Some(path),
            ReadError::NotJson { path, .. }
            | ReadError::NotAReport { path }
            | ReadError::UnsupportedVersion { path, .. }
            | ReadError::BadLog { path, .. } => path.as_deref(),
            ReadError::BadHistogram { .. } => None,
        }
    }

    /// Attaches `path` to an error that came from text without one.
    pub(crate) fn with_path(mut self, file: &Path) -> ReadError {
        match &mut self {
            ReadError::NotJson { path, .. }
            | ReadError::NotAReport { path }
            | ReadError::UnsupportedVersion { path, .. }
            | ReadError::BadLog { path, .. } => *path = Some(file.to_path_buf()),
            ReadError::Io { .. } | ReadError::BadHistogram { .. } => {}
        }
        self
    }
}

/// Writes `<path>: ` or, without a path, `report: `.
fn prefix(f: &mut fmt::Formatter<'_>, path: Option<&Path>) -> fmt::Result {
    match path {
        Some(path) => write!(f, "{}: ", path.display()),
        None => write!(f, "report: "),
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io { path, source } => {
                write!(f, "{}: could not read: {source}", path.display())
            }
            ReadError::NotJson { path, source } => {
                prefix(f, path.as_deref())?;
                let what = if source.is_data() {
                    "JSON that does not match the report schema"
                } else {
                    "truncated or invalid JSON"
                };
                write!(
                    f,
                    "{what} at line {} column {}: {}",
                    source.line(),
                    source.column(),
                    JsonMessage(source)
                )
            }
            ReadError::NotAReport { path } => {
                prefix(f, path.as_deref())?;
                write!(
                    f,
                    "not a pollwatch report (no \"format\": \"{}\")",
                    crate::FORMAT
                )
            }
            ReadError::UnsupportedVersion {
                path,
                found,
                supported,
            } => {
                prefix(f, path.as_deref())?;
                if found > supported {
                    write!(
                        f,
                        "schema version {found}, this pollwatch reads version {supported}; upgrade pollwatch"
                    )
                } else {
                    write!(
                        f,
                        "schema version {found}, this pollwatch reads version {supported}; \
                         read it with the older pollwatch release that wrote it"
                    )
                }
            }
            ReadError::BadHistogram { site, reason } => {
                if site.is_empty() {
                    write!(f, "invalid histogram: {reason}")
                } else {
                    write!(f, "site {site}: invalid histogram: {reason}")
                }
            }
            ReadError::BadLog { path, line, reason } => {
                prefix(f, path.as_deref())?;
                write!(f, "line {line}: {reason}")
            }
        }
    }
}

/// serde_json's message without its trailing ` at line L column C`, which
/// [`ReadError`]'s Display already gives.
struct JsonMessage<'a>(&'a serde_json::Error);

impl fmt::Display for JsonMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = self.0.to_string();
        let suffix = format!(" at line {} column {}", self.0.line(), self.0.column());
        f.write_str(full.strip_suffix(&suffix).unwrap_or(&full))
    }
}

impl Error for ReadError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ReadError::Io { source, .. } => Some(source),
            ReadError::NotJson { source, .. } => Some(source),
            ReadError::NotAReport { .. }
            | ReadError::UnsupportedVersion { .. }
            | ReadError::BadHistogram { .. }
            | ReadError::BadLog { .. } => None,
        }
    }
}

/// Why a report file could not be written. Nothing is left half-written: the previous file, if
/// any, is still there, and the temporary file has been removed.
#[derive(Debug)]
pub struct WriteError {
    path: PathBuf,
    source: io::Error,
}

impl WriteError {
    /// An error writing `path`.
    pub fn new(path: impl Into<PathBuf>, source: io::Error) -> WriteError {
        WriteError {
            path: path.into(),
            source,
        }
    }

    /// The file (or directory) that could not be written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the operating system said.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }

    /// Consumes the error, returning the operating system's error.
    pub fn into_io_error(self) -> io::Error {
        self.source
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not write {}: {}",
            self.path.display(),
            self.source
        )
    }
}

impl Error for WriteError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}
