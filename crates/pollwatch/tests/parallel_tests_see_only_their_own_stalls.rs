//! Tests running at once in one process each have their own check: one test's stall never
//! fails another, whether it blocks in a task, in a watched future or in `pollwatch::spawn`,
//! and no global subscriber is installed. Runs in both builds.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use pollwatch::testing::{Check, Held};
use pollwatch::Watch;

const THRESHOLD: Duration = Duration::from_millis(40);
const BLOCK: Duration = Duration::from_millis(150);
const FILE: &str = "parallel_tests_see_only_their_own_stalls.rs";

/// One test: its own check and runtime, started with the others, blocking or not; returns
/// what its check would fail for, and the blocking line.
fn one_test(index: usize, blocks: bool, start: &Barrier) -> (Vec<Held>, u32) {
    let check = Check::new().threshold(THRESHOLD);
    let mut builder = if index % 2 == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(1);
        builder
    };
    let rt = check.runtime(builder.enable_all()).build().unwrap();
    start.wait();
    let line = check.block_on(&rt, async move {
        let line = if blocks {
            pollwatch::spawn(async {
                std::thread::sleep(BLOCK);
                line!() - 1
            })
            .await
            .unwrap()
        } else {
            0
        };
        // Meanwhile (or after), the others poll watched futures and tasks, briefly.
        for _ in 0..20 {
            async { tokio::time::sleep(Duration::from_millis(5)).await }
                .watched()
                .await;
            pollwatch::spawn(async { tokio::task::yield_now().await })
                .await
                .unwrap();
        }
        line
    });
    drop(rt);
    (check.stalls(), line)
}

#[test]
fn only_the_blocking_test_reports_its_stall() {
    const TESTS: usize = 4;
    const BLOCKING: usize = 1;
    let start = Arc::new(Barrier::new(TESTS));
    let tests: Vec<_> = (0..TESTS)
        .map(|i| {
            let start = start.clone();
            std::thread::spawn(move || one_test(i, i == BLOCKING, &start))
        })
        .collect();
    let results: Vec<(Vec<Held>, u32)> = tests.into_iter().map(|t| t.join().unwrap()).collect();
    let blocking_line = format!("{FILE}:{}", results[BLOCKING].1);
    let is_the_stall = |held: &Held| match held {
        Held::Stall(stall) => stall
            .call_site
            .as_deref()
            .is_some_and(|c| c.ends_with(&blocking_line)),
        // A slow poll as long as the blocking one: only the blocking one lasts that long.
        Held::SlowPolls { longest, .. } => *longest >= BLOCK,
        _ => false,
    };
    for (i, (stalls, _)) in results.iter().enumerate() {
        if i != BLOCKING {
            // On a busy machine a test's own short poll may be held up past the threshold
            // (that is its own slow poll); another test's stall is never there.
            assert!(
                !stalls.iter().any(is_the_stall),
                "test {i} saw another test's stall: {stalls:#?}"
            );
            continue;
        }
        let own: Vec<&Held> = stalls.iter().filter(|h| is_the_stall(h)).collect();
        assert_eq!(own.len(), 1, "{stalls:#?}");
        assert!(
            matches!(own[0], Held::Stall(_)),
            "caught while it ran: {stalls:#?}"
        );
    }
    let global = std::thread::spawn(|| {
        tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>())
    });
    assert!(
        !global.join().unwrap(),
        "no global subscriber was installed"
    );
}
