//! Memory grows with sites, not with tasks.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::time::Duration;

use support::Watched;

#[test]
fn ten_thousand_tasks_from_one_spawn_site_make_one_site() {
    let watched = Watched::new(Duration::from_secs(1));
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            let mut handles = Vec::with_capacity(10_000);
            for i in 0..10_000u64 {
                handles.push(tokio::spawn(async move { i * 2 }));
            }
            for handle in handles {
                handle.await.unwrap();
            }
        })
    });
    let report = watched.report();
    let task_sites: Vec<_> = report.sites.iter().filter(|s| s.kind == "task").collect();
    assert_eq!(task_sites.len(), 1, "{:?}", support::labels(&report));
    assert_eq!(task_sites[0].tasks_spawned, 10_000);
    assert_eq!(task_sites[0].polls, 10_000);
}

#[test]
fn sites_beyond_the_bound_share_the_overflow_site_and_are_counted() {
    let (layer, handle) = pollwatch::Builder::new().max_sites(2).build();
    let watched = Watched {
        dispatch: tracing::Dispatch::new(tracing_subscriber::layer::SubscriberExt::with(
            tracing_subscriber::registry(),
            layer,
        )),
        handle,
    };
    let rt = watched.runtime(1);
    watched.scope(|| {
        rt.block_on(async {
            tokio::spawn(async {}).await.unwrap();
            tokio::spawn(async {}).await.unwrap();
            tokio::spawn(async {}).await.unwrap();
        })
    });
    let report = watched.report();
    // block_on takes one site, the first spawn the second; the other two overflow.
    let overflow = report
        .sites
        .iter()
        .find(|s| s.label == "<overflow>")
        .expect("overflow site");
    assert_eq!(overflow.tasks_spawned, 2);
    assert_eq!(report.dropped.tasks_in_overflow_site, 2);
    assert_eq!(report.sites.len(), 3);
}
