//! A test-only seam: the report files in a directory fail as on a read-only filesystem
//! (`EROFS`) or a full one (`ENOSPC`, after part of a write), so the tests of both run where
//! neither can be made (no root, no `mount`). Set through
//! [`crate::test_support::fail_report_files`]; with none set, each check is one relaxed load.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use parking_lot::Mutex;

/// How the files in a directory fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Creating, opening, renaming and writing fail with `EROFS`.
    ReadOnly,
    /// Writes store part of what they are given, then fail with `ENOSPC`.
    Full,
}

/// Whether any directory has a fault: the checks' fast path.
static ANY: AtomicBool = AtomicBool::new(false);
static FAULTS: Mutex<Vec<(PathBuf, Fault)>> = Mutex::new(Vec::new());

/// Makes the files under `dir` fail with `fault` from now on (`None`: work again).
pub(crate) fn set(dir: &Path, fault: Option<Fault>) {
    let mut faults = FAULTS.lock();
    faults.retain(|(d, _)| d != dir);
    if let Some(fault) = fault {
        faults.push((dir.to_owned(), fault));
    }
    ANY.store(!faults.is_empty(), Relaxed);
}

fn fault(path: &Path) -> Option<Fault> {
    if !ANY.load(Relaxed) {
        return None;
    }
    FAULTS
        .lock()
        .iter()
        .find(|(dir, _)| path.starts_with(dir))
        .map(|(_, fault)| *fault)
}

fn error(fault: Fault) -> io::Error {
    io::Error::from_raw_os_error(match fault {
        Fault::ReadOnly => libc_errno::EROFS,
        Fault::Full => libc_errno::ENOSPC,
    })
}

/// Linux's numbers, the same on every architecture.
mod libc_errno {
    pub(super) const ENOSPC: i32 = 28;
    pub(super) const EROFS: i32 = 30;
}

/// Fails as creating, opening or renaming a file under `path` would.
pub(crate) fn check_open(path: &Path) -> io::Result<()> {
    match fault(path) {
        Some(Fault::ReadOnly) => Err(error(Fault::ReadOnly)),
        _ => Ok(()),
    }
}

/// Fails as writing a new file under `path` would.
pub(crate) fn check_write(path: &Path) -> io::Result<()> {
    fault(path).map_or(Ok(()), |fault| Err(error(fault)))
}

/// The interval log's file: writes go to it unless its directory has a fault.
#[derive(Debug)]
pub(crate) struct LogFile {
    pub(crate) file: std::fs::File,
    pub(crate) path: PathBuf,
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match fault(&self.path) {
            None => self.file.write(buf),
            Some(Fault::Full) if buf.len() > 1 => self.file.write(&buf[..buf.len() / 2]),
            Some(fault) => Err(error(fault)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
