//! Mistake 2: `std::thread::sleep` in async code puts the whole worker thread to sleep, and
//! every task queued on it waits too. `tokio::time::sleep` parks only the task.

use std::time::Duration;

use super::{in_named_task, Outcome};

/// How long each handler waits.
pub const PAUSE: Duration = Duration::from_millis(30);

/// `GET /bad/sleep`: `std::thread::sleep` holds the worker for 30 ms.
pub async fn bad() -> Outcome {
    in_named_task("bad_sleep", async {
        std::thread::sleep(PAUSE);
        Ok(format!("bad_sleep: slept {PAUSE:?} on the worker thread\n"))
    })
    .await
}

/// `GET /good/sleep`: `tokio::time::sleep` frees the worker while it waits.
pub async fn good() -> Outcome {
    in_named_task("good_sleep", async {
        tokio::time::sleep(PAUSE).await;
        Ok(format!("good_sleep: waited {PAUSE:?} on a tokio timer\n"))
    })
    .await
}
