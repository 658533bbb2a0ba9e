//! Writing report files atomically, so a reader never sees half a report.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::WriteError;
use crate::model::Report;
use crate::{json, text};

/// The JSON report's file name in a report directory: [`json::FILE`] under another name.
pub use crate::json::FILE as JSON_FILE;

/// Makes temporary file names unique between threads of one process; the process id makes them
/// unique between processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The files [`write_dir`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenFiles {
    /// The JSON report, `<dir>/report.json`.
    pub json: PathBuf,
    /// The text report, `<dir>/report.txt`.
    pub text: PathBuf,
    /// The interval log, `<dir>/report.hlog`, when one was written with the reports
    /// ([`write_dir`] writes none).
    pub hlog: Option<PathBuf>,
}

/// Replaces the file at `path` with `bytes`, atomically: a reader sees either the old file or
/// the new one, never a mix or a partial file.
///
/// The bytes go to a temporary file in the same directory (`.<name>.<pid>.<n>.tmp`), which is
/// flushed to disk and then renamed over `path`. On error the temporary file is removed and
/// `path` is left as it was. The directory must exist.
///
/// # Errors
///
/// [`WriteError`] naming `path` (or the temporary file, when creating it failed).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        WriteError::new(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
        )
    })?;
    let temp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| WriteError::new(&temp, e))?;
    if let Err(e) = fill(file, bytes).and_then(|()| fs::rename(&temp, path)) {
        // Best effort: the error that matters is the one above.
        let _ = fs::remove_file(&temp);
        return Err(WriteError::new(path, e));
    }
    sync_dir(dir);
    Ok(())
}

/// Writes `bytes` to `file`, flushes them to disk and closes the file (so it can be renamed on
/// every system).
fn fill(mut file: File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// Flushes the directory entry of a rename to disk where the system allows opening a directory
/// (Unix); elsewhere, or on error, does nothing: the file's contents are already on disk.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `report` into `dir` as [`json::FILE`] and [`text::FILE`] (the text with the `top`
/// sites), each with [`write_atomic`], creating `dir` and its parents if needed. Existing
/// reports are replaced.
///
/// # Errors
///
/// [`WriteError`] naming the directory or file that could not be written. When the text
/// report fails, the JSON report has already been replaced.
pub fn write_dir(dir: &Path, report: &Report, top: usize) -> Result<WrittenFiles, WriteError> {
    fs::create_dir_all(dir).map_err(|e| WriteError::new(dir, e))?;
    let files = WrittenFiles {
        json: dir.join(json::FILE),
        text: dir.join(text::FILE),
        hlog: None,
    };
    write_atomic(&files.json, json::to_string(report).as_bytes())?;
    write_atomic(&files.text, text::render(report, top).as_bytes())?;
    Ok(files)
}
