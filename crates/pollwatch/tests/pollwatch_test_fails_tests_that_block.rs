//! `#[pollwatch::test]` runs a test like `#[tokio::test]` and fails it when a poll held its
//! thread past the threshold, naming the blocking line; the allow-list accepts known ones.
//! Every test here runs in both builds (with and without `--cfg tokio_unstable`).

mod accepted_stalls;

use std::time::Duration;

use tokio::runtime::RuntimeFlavor;

const BLOCK: Duration = Duration::from_millis(150);

#[pollwatch::test]
async fn a_test_that_never_blocks_passes() {
    for _ in 0..3 {
        tokio::spawn(async { tokio::task::yield_now().await })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[pollwatch::test]
async fn a_test_returning_ok_passes() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

#[pollwatch::test]
#[should_panic(
    expected = "pollwatch: 1 poll held a thread past the 10.0ms threshold:\n1. crates/pollwatch/tests/pollwatch_test_fails_tests_that_block.rs:35: std::thread::sleep [sleep]"
)]
async fn a_test_that_sleeps_in_its_body_fails_at_that_line() {
    std::thread::sleep(BLOCK);
}

#[pollwatch::test]
#[should_panic(
    expected = "pollwatch: 1 poll held a thread past the 10.0ms threshold:\n1. crates/pollwatch/tests/pollwatch_test_fails_tests_that_block.rs:44: std::thread::sleep [sleep]"
)]
async fn a_test_whose_task_sleeps_fails_at_that_line() {
    tokio::spawn(async {
        std::thread::sleep(BLOCK);
    })
    .await
    .unwrap();
}

#[pollwatch::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(
    expected = "pollwatch: 1 poll held a thread past the 10.0ms threshold:\n1. crates/pollwatch/tests/pollwatch_test_fails_tests_that_block.rs:56: std::thread::sleep [sleep]"
)]
async fn a_multi_thread_test_whose_task_sleeps_fails_at_that_line() {
    tokio::spawn(async {
        std::thread::sleep(BLOCK);
    })
    .await
    .unwrap();
}

#[pollwatch::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_work_moved_off_the_workers_passes() {
    tokio::task::spawn_blocking(|| std::thread::sleep(BLOCK))
        .await
        .unwrap();
    tokio::spawn(async { tokio::task::block_in_place(|| std::thread::sleep(BLOCK)) })
        .await
        .unwrap();
}

#[pollwatch::test(threshold = "1s")]
async fn a_poll_under_a_raised_threshold_passes() {
    std::thread::sleep(BLOCK);
}

#[pollwatch::test(threshold = "5ms")]
#[should_panic(expected = "past the 5.00ms threshold")]
async fn a_lowered_threshold_fails_shorter_polls() {
    std::thread::sleep(Duration::from_millis(25));
}

#[pollwatch::test(allow = ["accepted_stalls"])]
async fn an_allowed_call_site_does_not_fail() {
    accepted_stalls::load_fixture_blocking(BLOCK);
}

#[pollwatch::test(allow = ["accepted_stalls"])]
#[should_panic(expected = "(and 1 allowed by the allow-list, not failing)")]
async fn an_allow_list_accepts_only_what_it_names() {
    accepted_stalls::load_fixture_blocking(BLOCK);
    tokio::task::yield_now().await;
    std::thread::sleep(BLOCK);
}

#[pollwatch::test]
#[should_panic(expected = "the code under test panicked")]
async fn a_test_that_panics_fails_with_its_own_message() {
    panic!("the code under test panicked");
}

#[pollwatch::test]
#[ignore = "shows that other attributes are kept"]
async fn an_ignored_test_is_not_run() {
    std::thread::sleep(BLOCK);
}

#[pollwatch::test]
async fn the_default_runtime_is_current_thread() {
    let handle = tokio::runtime::Handle::current();
    assert_eq!(handle.runtime_flavor(), RuntimeFlavor::CurrentThread);
    assert_eq!(handle.metrics().num_workers(), 1);
}

#[pollwatch::test(flavor = "multi_thread", worker_threads = 3)]
async fn flavor_and_worker_threads_are_honoured() {
    let handle = tokio::runtime::Handle::current();
    assert_eq!(handle.runtime_flavor(), RuntimeFlavor::MultiThread);
    assert_eq!(handle.metrics().num_workers(), 3);
}

#[pollwatch::test(flavor = "multi_thread")]
async fn multi_thread_without_a_count_has_tokio_s_default() {
    let handle = tokio::runtime::Handle::current();
    assert_eq!(handle.runtime_flavor(), RuntimeFlavor::MultiThread);
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(handle.metrics().num_workers(), cpus);
}
