//! The JSON report file: writing it, and reading it back with errors that say what is wrong.
//!
//! The schema is described in the [crate documentation](crate#the-json-report).

use std::path::{Path, PathBuf};

use crate::error::ReadError;
use crate::histogram;
use crate::model::{Report, FORMAT, VERSION};

/// The JSON report's file name in a report directory.
pub const FILE: &str = "report.json";

/// The report as pretty-printed JSON, with a trailing newline.
pub fn to_string(report: &Report) -> String {
    // A `Report` holds only strings, integers and sequences of them, which always serialize.
    let mut s = serde_json::to_string_pretty(report).unwrap_or_default();
    s.push('\n');
    s
}

/// Parses a JSON report.
///
/// `format` and `version` are checked before the rest, so a report from another schema version
/// gives [`ReadError::UnsupportedVersion`] rather than a complaint about some field. Fields this
/// crate does not know are ignored. Site histograms are not decoded here; [`read`] decodes
/// them.
///
/// # Errors
///
/// [`ReadError::NotJson`] for text that is not JSON (including JSON cut short) or does not match
/// the schema, [`ReadError::NotAReport`] when `format` is missing or wrong,
/// [`ReadError::UnsupportedVersion`] when `version` is not [`VERSION`].
pub fn from_str(s: &str) -> Result<Report, ReadError> {
    let value: serde_json::Value =
        serde_json::from_str(s).map_err(|source| ReadError::NotJson { path: None, source })?;
    if value.get("format").and_then(serde_json::Value::as_str) != Some(FORMAT) {
        return Err(ReadError::NotAReport { path: None });
    }
    let version = value
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .ok_or(ReadError::NotAReport { path: None })?;
    if version != u64::from(VERSION) {
        return Err(ReadError::UnsupportedVersion {
            path: None,
            found: u32::try_from(version).unwrap_or(u32::MAX),
            supported: VERSION,
        });
    }
    // Deserializing from the text, not from `value`, keeps line and column in error messages.
    serde_json::from_str(s).map_err(|source| ReadError::NotJson { path: None, source })
}

/// Reads a JSON report from `path`, or from `path/report.json` ([`FILE`]) when `path` is a
/// directory (as written by [`write_dir`](crate::write::write_dir)), and checks that every site's histogram decodes.
///
/// # Errors
///
/// [`ReadError::Io`] when the file cannot be read and the errors of [`from_str`], all naming the
/// file; [`ReadError::BadHistogram`] naming the site whose histogram does not decode.
pub fn read(path: &Path) -> Result<Report, ReadError> {
    let file: PathBuf = if path.is_dir() {
        path.join(FILE)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|source| ReadError::Io {
        path: file.clone(),
        source,
    })?;
    let report = from_str(&text).map_err(|e| e.with_path(&file))?;
    for site in &report.sites {
        histogram::decode(&site.histogram).map_err(|e| match e {
            ReadError::BadHistogram { reason, .. } => ReadError::BadHistogram {
                site: site.label.clone(),
                reason,
            },
            other => other,
        })?;
    }
    Ok(report)
}
