//! With the `opentelemetry` feature, a service whose global meter provider exports over
//! OTLP/HTTP gets pollwatch's families there: a receiver in this test decodes the export with
//! OpenTelemetry's protobuf definitions and finds each family `/metrics` serves, under its
//! base name with its unit, with the same attributes and values (the poll-time histogram's
//! bounds, bucket counts, count and sum included).
// tokio's task hooks are there only with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric};
use prost::Message;
use support::published::{guard_after_a_stall, samples, series};

/// Receives OTLP/HTTP exports on 127.0.0.1: each request's body, decoded.
fn receiver() -> (String, mpsc::Receiver<ExportMetricsServiceRequest>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/v1/metrics", listener.local_addr().unwrap());
    let (send, received) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap();
                    }
                }
                line.clear();
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            let request = ExportMetricsServiceRequest::decode(body.as_slice())
                .expect("the body is an ExportMetricsServiceRequest");
            if send.send(request).is_err() {
                return;
            }
        }
    });
    (endpoint, received)
}

/// A data point's attributes as label pairs.
fn labels(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(
            |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(value)) => (kv.key.clone(), value.clone()),
                other => panic!("{}: not a string: {other:?}", kv.key),
            },
        )
        .collect()
}

/// `labels` and one more.
fn with(labels: &[(String, String)], key: &str, value: String) -> Vec<(String, String)> {
    let mut labels = labels.to_vec();
    labels.push((key.to_owned(), value));
    labels
}

#[test]
fn each_family_arrives_with_its_unit_attributes_and_values() {
    let (endpoint, received) = receiver();
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .build()
        .unwrap();
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .build();
    opentelemetry::global::set_meter_provider(provider.clone());

    let dir = std::env::temp_dir().join(format!("pollwatch-otlp-{}", std::process::id()));
    let guard = guard_after_a_stall(&dir);
    guard.publish_metrics();
    let served = samples(&guard.handle().metrics_text());
    let served = |name: &str, labels: &[(String, String)]| {
        served
            .get(&series(name, labels))
            .copied()
            .unwrap_or_else(|| panic!("{} not served: {served:#?}", series(name, labels)))
    };
    provider.force_flush().unwrap();

    // The last export holds every family (cumulative: each point is the total so far).
    let mut metrics: BTreeMap<String, Metric> = BTreeMap::new();
    while let Ok(request) = received.recv_timeout(Duration::from_secs(10)) {
        for resource in request.resource_metrics {
            for scope in resource.scope_metrics {
                assert_eq!(scope.scope.as_ref().unwrap().name, "pollwatch");
                for metric in scope.metrics {
                    metrics.insert(metric.name.clone(), metric);
                }
            }
        }
        if metrics.contains_key("pollwatch_poll_duration") {
            break;
        }
    }
    let metric = |name: &str| {
        metrics
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", metrics.keys()))
    };

    // The histogram: its unit, bounds, and each site's counts and sum as /metrics serves them.
    let durations = metric("pollwatch_poll_duration");
    assert_eq!(durations.unit, "s");
    let Some(Data::Histogram(histogram)) = &durations.data else {
        panic!("not a histogram: {durations:?}")
    };
    assert_eq!(
        histogram.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    assert!(!histogram.data_points.is_empty());
    for point in &histogram.data_points {
        assert_eq!(
            point.explicit_bounds,
            pollwatch::config::POLL_DURATION_BUCKETS.to_vec()
        );
        let labels = labels(&point.attributes);
        let name = "pollwatch_poll_duration_seconds";
        assert_eq!(
            point.count as f64,
            served(&format!("{name}_count"), &labels),
            "{labels:?}"
        );
        let sum = served(&format!("{name}_sum"), &labels);
        assert!(
            (point.sum.unwrap() - sum).abs() < 1e-6,
            "{labels:?}: {point:?}"
        );
        let mut cumulative = 0;
        for (bound, in_bucket) in point.explicit_bounds.iter().zip(&point.bucket_counts) {
            cumulative += in_bucket;
            let bucket = with(&labels, "le", bound.to_string());
            let served = served(&format!("{name}_bucket"), &bucket);
            assert_eq!(cumulative as f64, served, "{bucket:?}");
        }
    }

    // A counter of stalls, by site and cause, as served; and one in seconds.
    let stalls = metric("pollwatch_stalls");
    assert_eq!(stalls.unit, "1");
    let Some(Data::Sum(sum)) = &stalls.data else {
        panic!("not a sum: {stalls:?}")
    };
    assert!(sum.is_monotonic);
    assert!(!sum.data_points.is_empty(), "a stall was counted");
    for point in &sum.data_points {
        let labels = labels(&point.attributes);
        assert!(
            labels.contains(&("cause".into(), "sleep".into())),
            "{labels:?}"
        );
        let Some(Number::AsInt(count)) = point.value else {
            panic!("{point:?}")
        };
        assert_eq!(
            count as f64,
            served("pollwatch_stalls_total", &labels),
            "{labels:?}"
        );
    }
    let held = metric("pollwatch_stall_held");
    assert_eq!(held.unit, "s");
    let Some(Data::Sum(held)) = &held.data else {
        panic!("not a sum")
    };
    for point in &held.data_points {
        let labels = labels(&point.attributes);
        let Some(Number::AsDouble(seconds)) = point.value else {
            panic!("{point:?}")
        };
        let served = served("pollwatch_stall_held_seconds_total", &labels);
        assert!((seconds - served).abs() < 1e-9, "{labels:?}");
    }

    // A gauge.
    let threshold = metric("pollwatch_threshold");
    assert_eq!(threshold.unit, "s");
    let Some(Data::Gauge(gauge)) = &threshold.data else {
        panic!("not a gauge: {threshold:?}")
    };
    assert_eq!(
        gauge.data_points[0].value,
        Some(Number::AsDouble(0.02)),
        "the threshold"
    );
    drop(guard);
    let _ = provider.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
