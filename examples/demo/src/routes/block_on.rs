//! Mistake 6: `futures::executor::block_on` inside a task runs a second executor on the
//! worker thread and parks the thread until the inner future completes. `.await` parks only
//! the task.
//!
//! The awaited work is an answer delivered through a `tokio::sync::oneshot` by another OS
//! thread after 20 ms, so `block_on` blocks but always finishes. (Had the answer depended on
//! a tokio timer or on a task of this runtime, `block_on` on a worker could wait forever: the
//! blocked worker may be the one that has to drive it.)

use std::time::Duration;

use tokio::sync::oneshot;

use super::{in_named_task, HandlerError, Outcome};

/// How long the other thread takes to answer.
pub const DELAY: Duration = Duration::from_millis(20);

/// Starts an OS thread that sends an answer after [`DELAY`].
fn answer_later(name: &'static str) -> Result<oneshot::Receiver<u64>, HandlerError> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("demo-backend".into())
        .spawn(move || {
            std::thread::sleep(DELAY);
            // The receiver may be gone if the request was abandoned; nothing to do then.
            let _ = tx.send(42);
        })
        .map_err(|e| HandlerError(format!("{name}: cannot start a thread: {e}")))?;
    Ok(rx)
}

/// `GET /bad/block-on`: waits for the answer with `futures::executor::block_on`.
pub async fn bad() -> Outcome {
    in_named_task("bad_block_on", async {
        let answer = futures::executor::block_on(answer_later("bad_block_on")?)
            .map_err(|e| HandlerError(format!("bad_block_on: {e}")))?;
        Ok(format!(
            "bad_block_on: got {answer} by blocking the worker\n"
        ))
    })
    .await
}

/// `GET /good/block-on`: waits for the same answer with `.await`.
pub async fn good() -> Outcome {
    in_named_task("good_block_on", async {
        let answer = answer_later("good_block_on")?
            .await
            .map_err(|e| HandlerError(format!("good_block_on: {e}")))?;
        Ok(format!("good_block_on: got {answer} with .await\n"))
    })
    .await
}
