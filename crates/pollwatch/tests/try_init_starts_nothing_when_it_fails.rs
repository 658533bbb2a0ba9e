//! `try_init` either installs everything or starts nothing: an output that cannot start (a
//! taken address, a report directory that cannot be written) is an error, and no thread of
//! pollwatch's or console-subscriber's is left running; a later `try_init` then succeeds.
// One process: the global subscriber is installed once.
#![cfg(all(tokio_unstable, feature = "console", feature = "prometheus"))]

use std::net::{SocketAddr, TcpListener};

use pollwatch::{Builder, InitError};

/// The names of this process's threads that belong to pollwatch or console-subscriber.
fn background_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| name.starts_with("pollwatch") || name.starts_with("console"))
        .collect()
}

fn free() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn a_failed_try_init_leaves_nothing_running_and_a_later_one_installs() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap();
    let dir = std::env::temp_dir().join(format!("pollwatch-try-init-{}", std::process::id()));
    let not_a_dir = dir.with_extension("file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let builder = || {
        Builder::new()
            .report_dir(&dir)
            .console_addr(free())
            .metrics_addr(free())
    };

    let cases = [
        ("console", builder().console_addr(taken_addr)),
        ("metrics", builder().metrics_addr(taken_addr)),
        (
            "report dir",
            builder().report_dir(not_a_dir.join("reports")),
        ),
    ];
    for (what, attempt) in cases {
        match attempt.try_init() {
            // Typed: the address or directory, and the operating system's error as the source.
            Err(InitError::ConsoleAddr { addr, source }) if what == "console" => {
                assert_eq!(addr, taken_addr);
                assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
            }
            Err(InitError::MetricsAddr { addr, source }) if what == "metrics" => {
                assert_eq!(addr, taken_addr);
                assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
            }
            Err(e @ InitError::ReportDir { .. }) if what == "report dir" => {
                assert!(e.to_string().contains("POLLWATCH_REPORT_DIR"), "{e}");
                let InitError::ReportDir { dir, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(dir, &not_a_dir.join("reports"));
                assert!(std::error::Error::source(&e).is_some(), "{e:?}");
            }
            Err(e) => panic!("{what}: the wrong error: {e}"),
            Ok(_) => panic!("{what}: installed although it cannot start"),
        }
        assert!(
            tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>()),
            "{what}: no subscriber was installed"
        );
        assert_eq!(
            background_threads(),
            Vec::<String>::new(),
            "{what}: nothing is left running"
        );
    }

    let guard = builder()
        .try_init()
        .expect("installs once the outputs can start");
    assert!(guard.metrics_addr().is_some());
    // A thread takes its name itself, once it runs: on a busy machine, after `try_init`
    // returned.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !background_threads()
        .iter()
        .any(|name| name.starts_with("pollwatch"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no pollwatch thread named within 10 s"
        );
        std::thread::yield_now();
    }
    guard.finish().unwrap();
    std::fs::remove_file(&not_a_dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
