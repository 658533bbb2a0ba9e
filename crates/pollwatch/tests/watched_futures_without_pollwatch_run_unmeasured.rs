//! A watched future created while no pollwatch exists runs as the future it wraps and is
//! measured by none, not even by a pollwatch built while it runs. No `cfg` gate: CI runs this
//! in the stable build. (A binary of its own: no other test here builds a pollwatch first.)

use pollwatch::{Builder, Watch};

#[test]
fn a_future_watched_before_any_pollwatch_runs_and_records_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let early = async {
        tokio::task::yield_now().await;
        7
    }
    .watched();
    assert!(!early.is_measured());
    let spawned = rt.block_on(async { pollwatch::spawn(async { 6 }).await.unwrap() });
    assert_eq!(spawned, 6);

    let handle = pollwatch::test_support::start(Builder::new());
    assert_eq!(rt.block_on(early), 7, "the output is the wrapped future's");
    let report = handle.report();
    assert!(
        report
            .sites
            .iter()
            .all(|s| s.polls == 0 && s.tasks_spawned == 0),
        "{:#?}",
        report.sites
    );
    assert_eq!(report.totals.polls, 0);

    // Created now, a watched future feeds it; once it is gone, none again.
    let late = async {}.watched();
    assert!(late.is_measured());
    rt.block_on(late);
    assert_eq!(handle.report().totals.polls, 1);
    handle.shutdown();
    drop(handle);
    assert!(!async {}.watched().is_measured());
}
