//! A service that bridges `tracing` to OpenTelemetry logs (`opentelemetry-appender-tracing`)
//! exports pollwatch's stall events with no extra code, carrying OpenTelemetry's
//! semantic-convention attributes for the blocking line and the thread: `code.file.path`,
//! `code.line.number`, `code.function.name`, `thread.name`, `thread.id`.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(all(tokio_unstable, target_os = "linux"))]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::logs::AnyValue;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};
use support::Watched;
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn a_stall_is_exported_with_the_blocking_lines_code_and_thread_attributes() {
    let exporter = InMemoryLogExporter::default();
    let provider = SdkLoggerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let (layer, handle) = pollwatch::Builder::new()
        .threshold(Duration::from_millis(20))
        .build();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(OpenTelemetryTracingBridge::new(&provider))
            .with(layer),
    );
    let watched = Watched { dispatch, handle };
    let rt = watched.runtime(2);
    let line = watched.scope(|| {
        rt.block_on(async {
            tokio::spawn(async {
                let line = line!() + 1;
                std::thread::sleep(Duration::from_millis(300));
                line
            })
            .await
            .unwrap()
        })
    });
    let report = watched.final_report();
    let stall = report
        .stalls
        .first()
        .unwrap_or_else(|| panic!("the sleep was caught: {report:#?}"));
    provider.force_flush().unwrap();

    let logs = exporter.get_emitted_logs().unwrap();
    let attributes: Vec<HashMap<String, AnyValue>> = logs
        .iter()
        .map(|log| {
            log.record
                .attributes_iter()
                .map(|(key, value)| (key.as_str().to_owned(), value.clone()))
                .collect()
        })
        .collect();
    let stall_log = attributes
        .iter()
        .find(|a| a.contains_key("code.line.number"))
        .unwrap_or_else(|| panic!("no exported stall event: {attributes:#?}"));
    let file = match &stall_log["code.file.path"] {
        AnyValue::String(file) => file.as_str().to_owned(),
        other => panic!("code.file.path: {other:?}"),
    };
    assert!(
        file.starts_with('/')
            && file.ends_with("stall_events_reach_opentelemetry_as_code_attributes.rs"),
        "the absolute path of the blocking line's file: {file}"
    );
    assert_eq!(
        stall_log["code.line.number"],
        AnyValue::Int(i64::from(line)),
        "the blocking line"
    );
    assert!(
        matches!(&stall_log["code.function.name"], AnyValue::String(f) if !f.as_str().is_empty()),
        "{:?}",
        stall_log.get("code.function.name")
    );
    assert_eq!(
        stall_log["thread.name"],
        AnyValue::String(stall.thread.clone().into())
    );
    assert_eq!(stall_log["thread.id"], AnyValue::Int(i64::from(stall.tid)));
    // pollwatch's own fields travel beside them.
    assert!(stall_log.contains_key("call_site"), "{stall_log:#?}");
    assert!(stall_log.contains_key("suggestion"), "{stall_log:#?}");
}
