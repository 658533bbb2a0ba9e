//! What the web-framework tests check of a report: the same routes served by a real axum
//! router or actix-web app, each route a site of its own.

use pollwatch::Report;
use pollwatch_report::SiteReport;

/// The site of `report` named `name`.
pub fn site<'a>(report: &'a Report, name: &str) -> &'a SiteReport {
    report
        .sites
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no site {name}: {:#?}", report.sites))
}

/// `report` came from `GET /users/{0..5}` (a handler that yields once), `GET /health` three
/// times, `GET /slow` (120 ms of `std::thread::sleep`) once and one unmatched path, through
/// the middleware in the crate's file ending in `file`.
pub fn assert_each_route_is_a_site(report: &Report, file: &str) {
    let site = |name: &str| site(report, name);
    let users = site("GET /users/{id}");
    assert!(users.file.ends_with(file), "{users:#?}");
    assert_eq!(users.kind, "watched");
    assert_eq!(
        (users.tasks_spawned, users.polls),
        (5, 10),
        "five requests, two polls each"
    );
    let health = site("GET /health");
    assert_eq!((health.tasks_spawned, health.polls), (3, 3));
    assert_eq!(
        (&health.file, health.line, health.col),
        (&users.file, users.line, users.col),
        "one middleware, one location"
    );
    let slow = site("GET /slow");
    assert_eq!((slow.polls, slow.slow_polls), (1, 1));
    assert_eq!(report.stalls.len(), 1, "{:#?}", report.stalls);
    assert_eq!(report.stalls[0].site, slow.label);
    assert_eq!(report.stalls[0].cause, "sleep");
    assert_eq!(
        report.sites.iter().map(|s| s.polls).sum::<u64>(),
        10 + 3 + 1,
        "a request that matched no route is not watched"
    );
}
