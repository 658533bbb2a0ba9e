//! Tests that fail when they block the runtime: [`#[pollwatch::test]`](crate::test) and
//! [`Check`].
//!
//! `#[pollwatch::test]` is a drop-in for `#[tokio::test]` (the same `flavor` and
//! `worker_threads`) that runs the test with pollwatch watching and fails it when any poll
//! held its thread past a threshold (default 10 ms; `threshold = "5ms"`), listing each one:
//! call site, blocking API, cause, duration and fix. `allow = ["src/legacy.rs"]` accepts the
//! known ones.
//!
//! ```
//! #[pollwatch::test]
//! async fn answers_without_blocking() {
//!     tokio::task::yield_now().await;
//! }
//!
//! #[pollwatch::test(flavor = "multi_thread", worker_threads = 2, threshold = "5ms")]
//! async fn reads_the_config() -> std::io::Result<()> {
//!     let _config = tokio::fs::read_to_string("Cargo.toml").await?;
//!     Ok(())
//! }
//! ```
//!
//! A test that builds its own runtime uses the guard, [`Check`]:
//!
//! ```
//! let check = pollwatch::testing::Check::new();
//! let mut builder = tokio::runtime::Builder::new_multi_thread();
//! let runtime = check.runtime(builder.enable_all()).build()?;
//! check.block_on(&runtime, async {
//!     tokio::spawn(async { /* the code under test */ }).await.unwrap();
//! });
//! drop(runtime);
//! check.assert_no_stalls();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! What is watched: the test's body (a watched future, in any build) and, with `--cfg
//! tokio_unstable`, every task's polls (tokio's task hooks); without the flag, a worker
//! asleep in a blocking call past the threshold (the stable worker hooks: a CPU loop in a
//! spawned task is not seen there). A poll the watchdog caught while it ran is listed with
//! its call site; one that ended before it looked (a short stall on a busy machine) is
//! listed by its site and length. No tracing subscriber is installed and no report file is
//! written: each test has a pollwatch of its own, so tests running at once in one process
//! never see each other's stalls.

mod check;
mod held;
mod runtime;

pub use check::Check;
pub use held::Held;
#[doc(hidden)]
pub use runtime::Flavor;
