//! Installing pollwatch switches on no instrumentation but tokio's task spans: a `trace!`
//! event or a `debug_span!` that the application's own output filters out stays disabled (its
//! callsite never dispatched), exactly as without pollwatch, while pollwatch still measures
//! every task and other layers still get what they enable.
// Its own test binary: callsite interest is shared by every dispatcher of the process.
#![cfg(tokio_unstable)]

use tracing::level_filters::LevelFilter;
use tracing::{Dispatch, Level};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

/// What a service's instrumentation looks like from inside `dispatch`: whether a TRACE event,
/// a DEBUG event, a DEBUG span, an INFO event and an INFO span are enabled.
fn enabled_under(dispatch: &Dispatch) -> [bool; 5] {
    tracing::dispatcher::with_default(dispatch, || {
        [
            tracing::enabled!(target: "app", Level::TRACE),
            tracing::enabled!(target: "app", Level::DEBUG),
            !tracing::debug_span!(target: "app", "hidden").is_disabled(),
            tracing::enabled!(target: "app", Level::INFO),
            !tracing::info_span!(target: "app", "shown").is_disabled(),
        ]
    })
}

fn output(level: LevelFilter) -> impl Layer<tracing_subscriber::Registry> {
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_filter(level)
}

#[test]
fn instrumentation_the_output_filters_out_stays_disabled() {
    let without = Dispatch::new(tracing_subscriber::registry().with(output(LevelFilter::INFO)));
    let alone = enabled_under(&without);
    assert_eq!(alone, [false, false, false, true, true]);
    drop(without);

    let (layer, handle) = pollwatch::Builder::new().build();
    let with = Dispatch::new(
        tracing_subscriber::registry()
            .with(output(LevelFilter::INFO))
            .with(layer),
    );
    assert_eq!(
        enabled_under(&with),
        alone,
        "the same callsites are on with pollwatch"
    );

    // pollwatch still sees every task poll.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&with, || {
        rt.block_on(async {
            for _ in 0..10 {
                tokio::spawn(async { tokio::task::yield_now().await })
                    .await
                    .unwrap();
            }
        })
    });
    drop(rt);
    handle.shutdown();
    let report = handle.report();
    let polls: u64 = report
        .sites
        .iter()
        .filter(|s| s.kind == "task" && s.file.contains("other_instrumentation_stays_disabled"))
        .map(|s| s.polls)
        .sum();
    assert_eq!(
        polls, 20,
        "ten tasks of two polls each: {:#?}",
        report.sites
    );
    drop(with);

    // A layer that wants everything still gets everything.
    let (layer, handle) = pollwatch::Builder::new().build();
    let verbose = Dispatch::new(
        tracing_subscriber::registry()
            .with(output(LevelFilter::TRACE))
            .with(layer),
    );
    assert_eq!(enabled_under(&verbose), [true; 5]);
    handle.shutdown();
}
