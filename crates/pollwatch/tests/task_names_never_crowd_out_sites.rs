//! Services name tasks per connection or request (`conn-{peer}`, `job-{id}`). Such names
//! never fill the site table: 3,000 tasks named `conn-0` .. `conn-2999` at one spawn location
//! are one site, and a task blocking at another location is still reported with its own site,
//! not as `<overflow>`.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::time::Duration;

use support::Watched;

const CONNECTIONS: usize = 3_000;

#[test]
fn three_thousand_connection_names_leave_room_for_a_blocking_site() {
    let watched = Watched::new(Duration::from_millis(10));
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            let conns: Vec<_> = (0..CONNECTIONS)
                .map(|i| {
                    tokio::task::Builder::new()
                        .name(&format!("conn-{i}"))
                        .spawn(async {})
                        .unwrap()
                })
                .collect();
            for conn in conns {
                conn.await.unwrap();
            }
            tokio::spawn(async { std::thread::sleep(Duration::from_millis(100)) })
                .await
                .unwrap();
        });
    });
    let report = watched.final_report();
    drop(rt);
    assert_eq!(report.dropped.tasks_in_overflow_site, 0);
    let conns: Vec<_> = report
        .sites
        .iter()
        .filter(|s| s.name.starts_with("conn"))
        .collect();
    assert_eq!(conns.len(), 1, "one site for every connection: {conns:#?}");
    assert_eq!(conns[0].name, "conn-#");
    assert_eq!(conns[0].tasks_spawned, CONNECTIONS as u64);
    // (Spawning 3,000 tasks in one poll of the `block_on` future can be a stall of its own.)
    let stall = report
        .stalls
        .iter()
        .find(|s| s.cause == "sleep")
        .unwrap_or_else(|| panic!("the sleep is a stall: {:#?}", report.stalls));
    assert!(
        stall.site.contains("task_names_never_crowd_out_sites.rs:"),
        "the blocking task has its own site: {}",
        stall.site
    );
}
