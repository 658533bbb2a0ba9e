//! pollwatch sits in one registry with fmt (filtered per layer) and console-subscriber, and
//! its slow-poll event reaches the fmt layer with its structured fields.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::time::Duration;

use support::{site_named, Captured, Watched};
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

#[test]
fn composes_with_fmt_and_console_layers_and_warns_through_fmt() {
    let (console, _server) = console_subscriber::ConsoleLayer::builder().build();
    let (layer, handle) = pollwatch::Builder::new()
        .threshold(Duration::from_millis(20))
        .build();
    let output = Captured::default();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(output.clone())
        .with_ansi(false)
        .with_filter(EnvFilter::new("info"));
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(console)
            .with(fmt)
            .with(layer),
    );
    let watched = Watched { dispatch, handle };
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            tokio::task::Builder::new()
                .name("blocker")
                .spawn(async { std::thread::sleep(Duration::from_millis(50)) })
                .unwrap()
                .await
                .unwrap();
        })
    });
    let report = watched.final_report();
    let site = site_named(&report, "blocker");
    assert_eq!(site.name, "blocker");
    assert_eq!((site.polls, site.slow_polls), (1, 1));
    let text = output.text();
    let warning = text
        .lines()
        .find(|l| l.contains("WARN") && l.contains("pollwatch"))
        .unwrap_or_else(|| panic!("no pollwatch warning in fmt output:\n{text}"));
    assert!(warning.contains("task.name=blocker"), "{warning}");
    assert!(
        warning.contains(&format!("composes_with_other_layers.rs:{}", site.line)),
        "{warning}"
    );
    assert!(warning.contains("duration_ms="), "{warning}");
    // Caught live by the watchdog (a stall: names the sleep) or, if the watchdog was
    // descheduled for the whole poll, reported when it ended (a slow poll).
    assert!(
        warning.contains("tokio::time::sleep") || warning.contains("spawn_blocking"),
        "the message says what to do: {warning}"
    );
    assert!(
        !text.contains("runtime.spawn"),
        "fmt's filter still hides tokio's spans"
    );
}
