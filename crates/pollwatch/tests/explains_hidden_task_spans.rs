//! When a filter hides tokio's task spans, or the build lacks `--cfg tokio_unstable`, pollwatch
//! says what to change. (CI runs these tests both with and without the flag.)

mod support;

use std::time::Duration;

#[cfg(tokio_unstable)]
#[test]
fn a_registry_wide_filter_that_hides_task_spans_is_explained() {
    use tracing_subscriber::layer::SubscriberExt;

    let (layer, handle) = pollwatch::Builder::new()
        .setup_check_after(Duration::from_millis(100))
        .tick(Duration::from_millis(5))
        .build();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_subscriber::filter::EnvFilter::new("info"))
            .with(layer),
    );
    let watched = support::Watched { dispatch, handle };
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            // Keep the runtime busy until the check has run.
            while !watched.handle.setup_checked() {
                tokio::spawn(async {}).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    });
    let diagnostics = watched.handle.diagnostics();
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert!(diagnostics[0].contains("filter"), "{}", diagnostics[0]);
    assert!(
        diagnostics[0].contains("with_filter"),
        "says how to fix it: {}",
        diagnostics[0]
    );
    assert_eq!(
        watched.report().diagnostics,
        diagnostics,
        "the report carries it too"
    );
}

#[cfg(tokio_unstable)]
#[test]
fn a_correct_setup_gets_no_diagnosis() {
    let watched = unfiltered_until_checked();
    assert!(watched.handle.diagnostics().is_empty());
}

#[cfg(not(tokio_unstable))]
#[test]
fn a_build_without_tokio_unstable_is_explained_and_nothing_breaks() {
    let watched = unfiltered_until_checked();
    let diagnostics = watched.handle.diagnostics();
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert!(
        diagnostics[0].contains("lacks `--cfg tokio_unstable`")
            && diagnostics[0].contains(".cargo/config.toml")
            && diagnostics[0].contains("pollwatch::spawn"),
        "says how to fix it, or what works without it: {}",
        diagnostics[0]
    );
    // The layer measured nothing, and its report is still whole.
    let report = watched.report();
    assert_eq!(report.totals.polls, 0);
    assert!(report.sites.is_empty());
    assert_eq!(report.diagnostics, diagnostics);
    let dir = std::env::temp_dir().join(format!("pollwatch-no-unstable-{}", std::process::id()));
    let files = watched.handle.write_report(&dir).unwrap();
    let read = pollwatch_report::json::read(&files.json).unwrap();
    assert_eq!(read.diagnostics, diagnostics);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// In any build, a layer that sees no task span while watched futures measure has nothing to
/// explain: what the watched futures measure is what it reports.
#[test]
fn watched_futures_need_no_task_spans_so_nothing_is_explained() {
    let watched = support::Watched::new_with(
        pollwatch::Builder::new().setup_check_after(Duration::from_millis(100)),
    );
    let rt = watched.runtime(2);
    let mut polls = 0;
    watched.scope(|| {
        rt.block_on(async {
            while !watched.handle.setup_checked() {
                let handle = watched.handle.clone();
                tokio::spawn(async move { handle.watch(async {}).await })
                    .await
                    .unwrap();
                polls += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    });
    assert!(
        watched.handle.diagnostics().is_empty(),
        "{:?}",
        watched.handle.diagnostics()
    );
    let report = watched.report();
    let site = support::site_at(&report, "explains_hidden_task_spans.rs", line!() - 14);
    assert_eq!((site.kind.as_str(), site.polls), ("watched", polls));
}

/// pollwatch alone in a registry (no filter), with tasks spawned until its setup check ran.
fn unfiltered_until_checked() -> support::Watched {
    let watched = support::Watched::new_with(
        pollwatch::Builder::new().setup_check_after(Duration::from_millis(100)),
    );
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            while !watched.handle.setup_checked() {
                tokio::spawn(async {}).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    });
    watched
}
