//! Polls blocking inside `tokio::task::block_in_place`: the worker handed its queue to another
//! thread before the blocking call, so the poll holds no worker and is not a stall. Found in
//! the symbolized stack before it is trimmed (the function lives in
//! `tokio::runtime::scheduler::`, where trimming cuts).

use pollwatch_report::Frame;

use crate::frames::in_tokio_file;

/// tokio's functions that run a closure in place, by their full path.
const FUNCTIONS: [&str; 3] = [
    "tokio::runtime::scheduler::multi_thread::worker::block_in_place",
    "tokio::runtime::scheduler::block_in_place::block_in_place",
    "tokio::task::blocking::block_in_place",
];

/// tokio's files that define them, for builds with line tables only, whose inlined frames
/// carry short names (`block_in_place<..>`).
const FILES: [&str; 3] = [
    "/src/runtime/scheduler/multi_thread/worker.rs",
    "/src/runtime/scheduler/block_in_place.rs",
    "/src/task/blocking.rs",
];

/// Whether the stack (innermost first, not trimmed) runs inside `block_in_place`.
pub fn blocking_in_place(frames: &[Frame]) -> bool {
    frames.iter().any(is_block_in_place)
}

fn is_block_in_place(frame: &Frame) -> bool {
    let function = frame.function.as_str();
    if FUNCTIONS.iter().any(|f| {
        function
            .strip_prefix(f)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['<', ':']))
    }) {
        return true;
    }
    let short = function.split(['<', ':']).next().unwrap_or_default();
    short == "block_in_place" && in_tokio_file(frame, &FILES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::frame_at as frame;

    const WORKER: &str =
        "/home/u/.cargo/registry/src/index.crates.io-6f17d22bba15001f/tokio-1.47.1/src/runtime/scheduler/multi_thread/worker.rs";

    fn sleeping_in(middle: Frame) -> Vec<Frame> {
        vec![
            frame(
                "std::thread::sleep",
                Some("/rustc/abc/library/std/src/thread/mod.rs"),
            ),
            frame("app::handler::{{closure}}", Some("/src/app/src/main.rs")),
            middle,
            frame("app::handler::{{closure}}", Some("/src/app/src/main.rs")),
            frame("tokio::runtime::task::core::Core<T,S>::poll", None),
        ]
    }

    #[test]
    fn tokios_block_in_place_is_found_by_name_or_by_file() {
        for middle in [
            frame(
                "tokio::runtime::scheduler::multi_thread::worker::block_in_place",
                Some(WORKER),
            ),
            frame(
                "tokio::runtime::scheduler::multi_thread::worker::block_in_place::{{closure}}",
                None,
            ),
            frame("tokio::task::blocking::block_in_place", None),
            frame("tokio::task::blocking::block_in_place<F,R>", None),
            frame(
                "block_in_place<app::handler::{{closure}}, ()>",
                Some(WORKER),
            ),
        ] {
            assert!(
                blocking_in_place(&sleeping_in(middle.clone())),
                "{middle:?}"
            );
        }
    }

    #[test]
    fn other_functions_named_alike_are_not() {
        for middle in [
            frame("app::block_in_place", Some("/src/app/src/main.rs")),
            frame("block_in_place<F>", Some("/src/app/src/task/blocking.rs")),
            frame("tokio::task::blocking::block_in_place_helper", None),
            frame("tokio::task::blocking::spawn_blocking", None),
            frame("run<..>", Some(WORKER)),
        ] {
            assert!(
                !blocking_in_place(&sleeping_in(middle.clone())),
                "{middle:?}"
            );
        }
    }
}
