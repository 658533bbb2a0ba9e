//! A service that serves its metrics its own way, for `.ci/prometheus-check`: the same load
//! (quick tasks, and one that blocks its worker in `std::thread::sleep`) with pollwatch's
//! series on `http://ADDR/metrics`, served by
//!
//! - `own`: pollwatch's own endpoint;
//! - `registry`: the service, from its `prometheus_client` registry, pollwatch's collector
//!   registered into it;
//! - `facade`: the service, from `metrics-exporter-prometheus`, which pollwatch feeds through
//!   the `metrics` facade.
//!
//! ```text
//! cargo run --release -p pollwatch --features prometheus,metrics --example existing_metrics -- registry 127.0.0.1:9000
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use prometheus_client::registry::Registry;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(addr)) = (args.next(), args.next()) else {
        eprintln!("usage: existing_metrics own|registry|facade ADDR");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr.parse().expect("ADDR is HOST:PORT");
    // The facade's recorder goes in before pollwatch starts publishing.
    let recorder = (mode == "facade").then(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("pollwatch_poll_duration_seconds".to_owned()),
                &pollwatch::config::POLL_DURATION_BUCKETS,
            )
            .expect("the bounds")
            .install_recorder()
            .expect("the recorder installs")
    });
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.worker_threads(2).enable_all();
    let guard = pollwatch::Builder::new()
        .threshold(Duration::from_millis(50))
        .report_dir(std::env::temp_dir().join(format!("existing-metrics-{mode}")))
        .metrics(mode == "own")
        .metrics_addr(addr)
        .runtime(&mut runtime);
    // The content type each way's text is in, and the text.
    type Render = (&'static str, Box<dyn Fn() -> String + Send + Sync>);
    let render: Option<Render> = match mode.as_str() {
        "own" => None,
        "registry" => {
            let mut registry = Registry::default();
            guard.handle().register_metrics(&mut registry);
            let registry = Arc::new(registry);
            Some((
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                Box::new(move || {
                    let mut text = String::new();
                    prometheus_client::encoding::text::encode(&mut text, &registry)
                        .expect("the registry encodes");
                    text
                }),
            ))
        }
        "facade" => {
            let recorder = recorder.expect("installed above");
            Some((
                "text/plain; version=0.0.4",
                Box::new(move || recorder.render()),
            ))
        }
        other => panic!("no mode {other:?}: own, registry or facade"),
    };
    if let Some((content_type, render)) = render {
        let listener = TcpListener::bind(addr).expect("ADDR is free");
        std::thread::spawn(move || serve(&listener, content_type, &*render));
    }
    println!("serving {mode} metrics on http://{addr}/metrics");
    runtime.build().unwrap().block_on(async {
        loop {
            for _ in 0..20 {
                tokio::spawn(async {
                    for _ in 0..10 {
                        tokio::task::yield_now().await;
                    }
                });
            }
            tokio::spawn(async { std::thread::sleep(Duration::from_millis(80)) });
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// Answers every request with the metrics (one connection at a time: a scraper's).
fn serve(listener: &TcpListener, content_type: &str, render: &dyn Fn() -> String) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut head = BufReader::new(&stream);
        let mut line = String::new();
        while head.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let body = render();
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}
