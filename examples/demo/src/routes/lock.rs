//! Mistake 3: a `std::sync::Mutex` held across a slow section. The holder keeps its worker for
//! the whole section, and every other request that wants the lock blocks its own worker on
//! the mutex: with two workers, two requests stop the whole runtime. A `tokio::sync::Mutex`
//! awaited with `.lock().await` parks the waiting tasks instead, and the slow section awaits
//! too.

use std::sync::PoisonError;
use std::time::Duration;

use axum::extract::State;

use super::{in_named_task, AppState, Outcome};

/// How long each request holds the lock.
pub const HOLD: Duration = Duration::from_millis(20);

/// The two locks: the same counter, guarded the wrong way and the right way.
#[derive(Debug, Default)]
pub struct Locks {
    /// Guarded by a blocking mutex.
    pub blocking: std::sync::Mutex<u64>,
    /// Guarded by tokio's async mutex.
    pub not_blocking: tokio::sync::Mutex<u64>,
}

/// `GET /bad/lock`: takes the `std::sync::Mutex` and holds it for 20 ms of
/// `std::thread::sleep` (standing for any slow call made under the lock).
pub async fn bad(State(state): State<AppState>) -> Outcome {
    in_named_task("bad_lock", async move {
        let mut count = state
            .locks
            .blocking
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::thread::sleep(HOLD);
        *count += 1;
        Ok(format!(
            "bad_lock: request {count} under a std::sync::Mutex\n"
        ))
    })
    .await
}

/// `GET /good/lock`: takes the `tokio::sync::Mutex` with `.lock().await` and waits 20 ms
/// with `tokio::time::sleep` while holding it.
pub async fn good(State(state): State<AppState>) -> Outcome {
    in_named_task("good_lock", async move {
        let mut count = state.locks.not_blocking.lock().await;
        tokio::time::sleep(HOLD).await;
        *count += 1;
        Ok(format!(
            "good_lock: request {count} under a tokio::sync::Mutex\n"
        ))
    })
    .await
}
