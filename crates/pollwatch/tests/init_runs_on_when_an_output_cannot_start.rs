//! `pollwatch::init()` never stops a service because of its environment: with the console
//! and metrics addresses taken (a second instance on the same host) and a report directory
//! that cannot be created, it installs, says what it runs without, and still catches stalls.
// One process: `init` installs the global subscriber once.
#![cfg(all(tokio_unstable, feature = "console", feature = "prometheus"))]

use std::net::TcpListener;
use std::time::Duration;

#[test]
fn init_runs_without_the_outputs_its_environment_refuses() {
    let console = TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics = TcpListener::bind("127.0.0.1:0").unwrap();
    // A directory under a regular file can never be created.
    let file = std::env::temp_dir().join(format!("pollwatch-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, b"").unwrap();
    std::env::set_var(
        "TOKIO_CONSOLE_BIND",
        console.local_addr().unwrap().to_string(),
    );
    std::env::set_var(
        "POLLWATCH_METRICS_ADDR",
        metrics.local_addr().unwrap().to_string(),
    );
    std::env::set_var("POLLWATCH_REPORT_DIR", file.join("reports"));
    std::env::set_var("POLLWATCH_THRESHOLD", "10ms");

    let guard = pollwatch::init();
    assert_eq!(guard.metrics_addr(), None, "no endpoint on a taken address");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::spawn(async { std::thread::sleep(Duration::from_millis(50)) })
            .await
            .unwrap();
    });
    let handle = guard.handle().clone();
    handle.shutdown();
    let report = handle.report();
    drop(rt);
    assert_eq!(report.totals.stalls, 1, "stalls are still caught");
    for (output, named) in [
        ("tokio-console", console.local_addr().unwrap().to_string()),
        ("prometheus", metrics.local_addr().unwrap().to_string()),
        ("report files", file.join("reports").display().to_string()),
    ] {
        assert!(
            report
                .diagnostics
                .iter()
                .any(|d| d.contains(output) && d.contains(&named) && d.contains("runs without")),
            "{output} at {named} is said to be off: {:#?}",
            report.diagnostics
        );
    }
    // Writing the report at the end fails too, as an error, not a panic.
    assert!(guard.finish().is_err());
    std::fs::remove_file(&file).unwrap();
}
