//! The tokio-console feed `try_init` serves contains a panic of its server: counted in
//! `dropped.host_panics`, said once, and the feed serves again, so `tokio-console` connects
//! and gets its updates.
// One process: `try_init` installs the global subscriber once.
#![cfg(all(tokio_unstable, feature = "console"))]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use console_api::instrument::InstrumentRequest;
use pollwatch::Builder;

/// How long the feed may take to serve again (it waits one second after a panic).
const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn the_feed_serves_again_after_its_server_panics() {
    let addr = support::console::free_local_addr();
    let reports =
        std::env::temp_dir().join(format!("pollwatch-console-panic-{}", std::process::id()));
    // The feed's server panics as it first starts serving.
    pollwatch::test_support::inject_panic("console");
    let guard = Builder::new()
        .console_addr(addr)
        .report_dir(&reports)
        .write_while_running(false)
        .try_init()
        .expect("installs");
    let handle = guard.handle().clone();

    let deadline = Instant::now() + DEADLINE;
    while handle.report().dropped.host_panics == 0 {
        assert!(
            Instant::now() < deadline,
            "the panic counted within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let report = handle.report();
    assert_eq!(report.dropped.host_panics, 1);
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.contains("serving the tokio-console feed") && d.contains("injected")),
        "{:#?}",
        report.diagnostics
    );

    // The client runs on its own runtime; pollwatch's subscriber sees its tasks too.
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let update = client_rt.block_on(first_update(addr, deadline));
    assert!(
        update.is_some(),
        "the feed serves an update again within {DEADLINE:?}"
    );
    drop(client_rt);
    handle.shutdown();
    assert_eq!(handle.report().dropped.host_panics, 1, "one panic, once");
    drop(guard);
    let _ = std::fs::remove_dir_all(&reports);
}

/// Connects (retrying until the feed listens again) and reads one update.
async fn first_update(
    addr: SocketAddr,
    deadline: Instant,
) -> Option<console_api::instrument::Update> {
    let deadline = tokio::time::Instant::from_std(deadline);
    let mut client = support::console::connect(addr, deadline).await?;
    let response = tokio::time::timeout_at(deadline, client.watch_updates(InstrumentRequest {}))
        .await
        .ok()?
        .ok()?;
    let mut stream = response.into_inner();
    tokio::time::timeout_at(deadline, stream.message())
        .await
        .ok()?
        .ok()?
}
