//! Whether a stack runs tokio's scheduler: a multi-thread worker's loop, or a current-thread
//! runtime's `block_on`. A worker-level poll (a busy period from the worker hooks) stays open
//! on a thread that left the worker role without parking: one whose worker `block_in_place`
//! handed to another thread and did not get it back (it returns to the blocking pool, idle
//! or running blocking tasks), or the caller of a current-thread `block_on` that returned.
//! Such a thread's stack runs no scheduler, and what it waits in blocks no worker. Found in
//! the symbolized stack before it is trimmed (the scheduler lives in
//! `tokio::runtime::scheduler::`, where trimming cuts).

use pollwatch_report::Frame;

use crate::frames::in_tokio_file;

/// tokio's scheduler modules that run tasks, by path.
const MODULES: [&str; 2] = [
    "tokio::runtime::scheduler::multi_thread::worker::",
    "tokio::runtime::scheduler::current_thread::",
];

/// Their files, for builds with line tables only, whose inlined frames carry short names.
const FILES: [&str; 2] = [
    "/src/runtime/scheduler/multi_thread/worker.rs",
    "/src/runtime/scheduler/current_thread/mod.rs",
];

/// Whether the stack (innermost first, not trimmed) runs inside tokio's scheduler.
pub fn runs_a_scheduler(frames: &[Frame]) -> bool {
    frames.iter().any(|frame| {
        MODULES.iter().any(|m| frame.function.contains(m)) || in_tokio_file(frame, &FILES)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::frame_at as frame;

    const TOKIO: &str = "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1";

    fn sleeping_under(outer: Vec<Frame>) -> Vec<Frame> {
        let mut frames = vec![
            frame("std::thread::sleep", None),
            frame("app::handler::{{closure}}", Some("/src/app/src/main.rs")),
        ];
        frames.extend(outer);
        frames
    }

    #[test]
    fn a_worker_or_a_block_on_running_tasks_runs_a_scheduler() {
        let worker = format!("{TOKIO}/src/runtime/scheduler/multi_thread/worker.rs");
        let current = format!("{TOKIO}/src/runtime/scheduler/current_thread/mod.rs");
        for outer in [
            frame(
                "tokio::runtime::scheduler::multi_thread::worker::Context::run_task",
                None,
            ),
            frame(
                "tokio::runtime::scheduler::current_thread::CoreGuard::block_on<F>",
                None,
            ),
            frame("run_task", Some(&worker)),
            frame("block_on<F>", Some(&current)),
        ] {
            assert!(
                runs_a_scheduler(&sleeping_under(vec![outer.clone()])),
                "{outer:?}"
            );
        }
    }

    #[test]
    fn the_blocking_pool_and_a_main_thread_run_none() {
        let pool = vec![
            frame("std::sync::condvar::Condvar::wait_timeout", None),
            frame("tokio::runtime::blocking::pool::Inner::run", None),
            frame(
                "tokio::runtime::blocking::pool::Spawner::spawn_thread::{{closure}}",
                None,
            ),
        ];
        assert!(!runs_a_scheduler(&pool));
        let main = vec![
            frame("app::main", Some("/src/app/src/main.rs")),
            frame("std::rt::lang_start_internal", None),
        ];
        assert!(!runs_a_scheduler(&sleeping_under(main)));
        // A file named alike outside tokio is not tokio's.
        let lookalike = frame(
            "run_task",
            Some("/src/app/src/runtime/scheduler/multi_thread/worker.rs"),
        );
        assert!(!runs_a_scheduler(&[lookalike]));
    }
}
