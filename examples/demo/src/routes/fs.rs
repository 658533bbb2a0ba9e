//! Mistake 1: `std::fs::read` in async code does the whole read on the worker thread (every
//! `read` syscall, and the page faults of filling the buffer). `tokio::fs::read` runs it on
//! tokio's blocking pool and the worker keeps serving other tasks.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;

use super::{in_named_task, AppState, HandlerError, Outcome};

/// A data file in a temporary directory of its own, removed with the directory on drop.
#[derive(Debug)]
pub struct DataFile {
    dir: PathBuf,
    path: PathBuf,
    len: usize,
}

impl DataFile {
    /// Writes a file of `len` bytes into a new directory under the system's temporary
    /// directory.
    pub fn create(len: usize) -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("pollwatch-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("data.bin");
        // Bytes that do not compress and are not all zero, so the read is a real read.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        let file = Self { dir, path, len };
        std::fs::write(&file.path, bytes)?;
        Ok(file)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for DataFile {
    fn drop(&mut self) {
        // Best effort: a leftover file in the temporary directory is harmless.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET /bad/fs`: reads the data file with `std::fs::read`, on the worker thread.
pub async fn bad(State(state): State<AppState>) -> Outcome {
    let file = Arc::clone(&state.data_file);
    in_named_task("bad_fs", async move {
        let bytes = std::fs::read(file.path()).map_err(|e| read_error(&file, e))?;
        Ok(format!(
            "bad_fs: read {} bytes on the worker thread\n",
            bytes.len()
        ))
    })
    .await
}

/// `GET /good/fs`: reads the data file with `tokio::fs::read`, on the blocking pool.
pub async fn good(State(state): State<AppState>) -> Outcome {
    let file = Arc::clone(&state.data_file);
    in_named_task("good_fs", async move {
        let bytes = tokio::fs::read(file.path())
            .await
            .map_err(|e| read_error(&file, e))?;
        Ok(format!(
            "good_fs: read {} bytes on the blocking pool\n",
            bytes.len()
        ))
    })
    .await
}

fn read_error(file: &DataFile, e: io::Error) -> HandlerError {
    HandlerError(format!("reading {}: {e}", file.path().display()))
}
