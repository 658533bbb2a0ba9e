//! The guide's example of a test that blocks (`docs/testing.md`), and its failure message: the
//! guide shows the
//! message this test fails with (but for durations and task ids, which vary from run to run).
//! Print it with `cargo test -p pollwatch --test guide_example_fails_as_shown -- --nocapture`.
//! Runs in both builds; without `--cfg tokio_unstable` the stall is the worker's, and its
//! `in:` line names the worker site instead, so that line is compared in the default build only.

use std::time::Duration;

#[pollwatch::test]
#[should_panic(expected = "std::thread::sleep [sleep]")]
async fn refreshing_the_cache_never_blocks() {
    let refresh = tokio::spawn(async {
        // The code under test, which waits the blocking way:
        std::thread::sleep(Duration::from_millis(100));
    });
    refresh.await.unwrap();
}

/// `text` with what varies from run to run masked: durations and task ids.
fn masked(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = match line.find(" held its thread for ") {
                Some(at) => format!("{} held its thread for <duration>", &line[..at]),
                None => line.to_owned(),
            };
            match (line.find("(task "), line.find(", thread ")) {
                (Some(start), Some(end)) if start < end => {
                    format!("{}(task <id>{}", &line[..start], &line[end..])
                }
                _ => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_guide_shows_the_example_s_failure() {
    // On a thread named like the example, as the test harness runs it.
    let payload = std::thread::Builder::new()
        .name("refreshing_the_cache_never_blocks".to_owned())
        .spawn(refreshing_the_cache_never_blocks)
        .unwrap()
        .join()
        .expect_err("the example fails");
    let message = payload.downcast_ref::<String>().unwrap();
    println!("{message}");
    let guide = masked(include_str!("../../../docs/testing.md"));
    for line in masked(message).lines() {
        if line.trim_start().starts_with("in: ") && !cfg!(tokio_unstable) {
            continue;
        }
        assert!(
            guide.lines().any(|l| l == line),
            "docs/testing.md lacks this line of the failure message (paste it from this test's \
             output):\n{line}\n\nthe message:\n{message}"
        );
    }
}
