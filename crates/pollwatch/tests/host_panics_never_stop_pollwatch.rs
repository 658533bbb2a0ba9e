//! pollwatch emits its events and spans through the application's subscriber, on its own
//! threads. A layer of the application that panics on them loses that output, never
//! pollwatch's reporting: the panics are caught, counted and said once; every stall is still
//! counted. And no pollwatch lock is held while the application's code runs: a layer that
//! reads pollwatch's report from inside a pollwatch event does not deadlock.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pollwatch::{Builder, Handle, Report};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

const THRESHOLD: Duration = Duration::from_millis(10);
const STALLS: usize = 3;

/// A layer that panics on every event pollwatch emits.
struct Panicking;

impl<S: Subscriber> Layer<S> for Panicking {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "pollwatch" {
            panic!("an application layer that panics on pollwatch's events");
        }
    }
}

/// A layer that reads pollwatch's report from inside each pollwatch event.
struct Reading {
    handle: Arc<OnceLock<Handle>>,
    reads: Arc<AtomicU64>,
}

impl<S: Subscriber> Layer<S> for Reading {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "pollwatch" {
            if let Some(handle) = self.handle.get() {
                let _ = handle.report();
                self.reads.fetch_add(1, Relaxed);
            }
        }
    }
}

/// Runs `STALLS` tasks one after another, each sleeping three thresholds on its worker, in a
/// registry of `layer` and pollwatch; shuts pollwatch down and returns its report.
fn stalls_under<L>(layer: L, handle_out: Option<&OnceLock<Handle>>) -> Report
where
    L: Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    let (pollwatch, handle) = Builder::new().threshold(THRESHOLD).build();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer).with(pollwatch));
    if let Some(out) = handle_out {
        let _ = out.set(handle.clone());
    }
    let rt = tracing::dispatcher::with_default(&dispatch, || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    });
    tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            for _ in 0..STALLS {
                tokio::spawn(async { std::thread::sleep(THRESHOLD * 3) })
                    .await
                    .unwrap();
            }
        });
    });
    // The reporter handles everything queued before it stops: every stall is in the book.
    handle.shutdown();
    let report = handle.report();
    drop(rt);
    support::consistent(report)
}

#[test]
fn a_panicking_application_layer_loses_its_events_not_pollwatchs_reports() {
    let report = stalls_under(Panicking, None);
    assert_eq!(
        report.totals.stalls, STALLS as u64,
        "every stall is counted after the first event panicked: {:#?}",
        report.stalls
    );
    assert!(
        report.dropped.host_panics >= STALLS as u64,
        "each stall's event panicked: {:?}",
        report.dropped
    );
    let said: Vec<&String> = report
        .diagnostics
        .iter()
        .filter(|d| d.contains("a panic while"))
        .collect();
    assert_eq!(said.len(), 1, "said once: {:#?}", report.diagnostics);
    assert!(
        said[0].contains("an application layer that panics on pollwatch's events"),
        "{}",
        said[0]
    );
}

#[test]
fn an_application_layer_can_read_pollwatch_from_inside_its_events() {
    let handle = Arc::new(OnceLock::new());
    let reads = Arc::new(AtomicU64::new(0));
    let layer = Reading {
        handle: handle.clone(),
        reads: reads.clone(),
    };
    // With a pollwatch lock held during an event, the report read inside it would deadlock.
    let report = stalls_under(layer, Some(&handle));
    assert_eq!(report.totals.stalls, STALLS as u64);
    assert_eq!(report.dropped.host_panics, 0);
    assert!(
        reads.load(Relaxed) >= STALLS as u64,
        "a report was read inside each stall event: {}",
        reads.load(Relaxed)
    );
}
