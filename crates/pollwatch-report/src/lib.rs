//! pollwatch's report: the data model and its file formats.
//!
//! pollwatch measures how long each tokio task poll holds its worker thread, per spawn site,
//! and writes what it measured as a *report*. This crate is the report: the data model
//! ([`Report`] and the types in [`model`]), the JSON file that programs read ([`json`]), the
//! text file that people read ([`text`]), the histogram encoding inside it ([`histogram`]), the
//! HdrHistogram interval log of poll times over the run ([`hlog`]), stalls grouped by blocking
//! call site ([`call_sites`]) and atomic writing ([`write`](mod@write)). It has no tokio or
//! tracing dependency, so a tool that only reads reports (the `pollwatch` command) stays small.
//!
//! # Reading a report
//!
//! ```no_run
//! use std::path::Path;
//! use pollwatch_report::{histogram, json, text};
//!
//! # fn main() -> Result<(), pollwatch_report::ReadError> {
//! // A report directory (as written by pollwatch) or the `report.json` inside it.
//! let report = json::read(Path::new("pollwatch-report"))?;
//! println!("{}", text::render(&report, 10));
//! for site in &report.sites {
//!     let h = histogram::decode(&site.histogram)?;
//!     println!("{}: {} polls, {} over 1 ms", site.label, h.len(), h.count_between(1_000_000, u64::MAX));
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Every error is a [`ReadError`] that prints as one line naming the file and the problem, such
//! as `report.json: schema version 7, this pollwatch reads version 1; upgrade pollwatch`.
//!
//! # The report directory
//!
//! pollwatch writes a report as a directory holding two files ([`write::write_dir`]):
//!
//! | file | for | stability |
//! | --- | --- | --- |
//! | `report.json` ([`json::FILE`]) | programs | a versioned schema, below |
//! | `report.txt` ([`text::FILE`]) | people | may change in any release |
//!
//! Each file is replaced atomically (written to a temporary file in the same directory, flushed
//! to disk, then renamed over the old one), so a reader sees the previous report or the new one,
//! never part of one. Temporary files are named `.<file>.<pid>.<n>.tmp`.
//!
//! # The JSON report
//!
//! `report.json` is one UTF-8 JSON object. Every duration and instant is an integer number of
//! nanoseconds, named `*_ns`; counts are integers. Numbers never exceed `u64`.
//!
//! ## Versioning
//!
//! - `format` is always the string `"pollwatch-report"` ([`FORMAT`]). A reader rejects any
//!   other JSON with "not a pollwatch report".
//! - `version` is the schema version, an integer, currently `1` ([`VERSION`]). A reader checks
//!   `format` and `version` before anything else, and rejects a version it does not know.
//! - Fields may be **added** without changing the version. Readers **ignore fields they do not
//!   know**, so an older reader can read a newer report of the same version.
//! - **Removing** or **renaming** a field, or changing its type, unit or meaning, changes the
//!   version.
//!
//! ## Top level ([`Report`])
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `format` | string | always `"pollwatch-report"` |
//! | `version` | integer | schema version, `1` |
//! | `pollwatch_version` | string | version of the pollwatch library that wrote the report |
//! | `taken_at_unix_ms` | integer, ms | when the snapshot was taken, milliseconds since the Unix epoch (UTC) |
//! | `uptime_ns` | integer, ns | how long pollwatch had been observing when the snapshot was taken |
//! | `threshold_ns` | integer, ns | the slow-poll threshold: a poll that holds its thread for longer is *slow* |
//! | `max_sites` | integer | the most spawn sites kept apart; tasks from further sites are counted in the overflow site |
//! | `totals` | object | totals over every site, below |
//! | `dropped` | object | what was lost or clamped, below |
//! | `sites` | array | one object per spawn site, ordered by `busy_ns`, largest first |
//! | `slow_polls` | array | the most recent slow polls, oldest first; at most 256 ([`Report::SLOW_POLLS_KEPT`]) |
//! | `diagnostics` | array of strings | problems with the setup pollwatch noticed, each a sentence saying what to change; may be absent (read as empty) |
//!
//! ## `totals` ([`Totals`])
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `polls` | integer | polls observed: task polls and `block_on` polls (drops are not polls) |
//! | `slow_polls` | integer | polls longer than `threshold_ns` |
//! | `busy_ns` | integer, ns | time spent inside polls, summed over every thread |
//! | `tasks_spawned` | integer | tasks spawned, including `block_on` futures and `LocalSet` tasks |
//! | `threads` | integer | threads that polled at least one task |
//!
//! ## `dropped` ([`Dropped`])
//!
//! What pollwatch gave up to keep its memory and time bounded. Poll counts are always exact; each
//! counter says what else was lost. A healthy report has all of them at zero.
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `tasks_in_overflow_site` | integer | tasks whose site did not fit in the site table (`max_sites`); they are counted in the overflow site |
//! | `slow_poll_events` | integer | slow polls counted but not listed in `slow_polls`, because a thread's queue of finished slow polls was full |
//! | `polls_nested_too_deep` | integer | polls nested deeper than the per-thread stack holds; they were not timed |
//! | `values_clamped` | integer | polls longer than one hour, recorded in the histogram as one hour |
//! | `stall_warnings_suppressed` | integer | warnings not emitted because their site exceeded its rate limit (still counted and listed) |
//! | `stall_samples` | integer | stall samples lost because the watchdog's queue to the reporter was full |
//! | `report_writes_failed` | integer | times the report files could not be written while running; the reason is in `diagnostics` |
//!
//! ## `sites[]` ([`SiteReport`])
//!
//! A *site* is the place in the source code where tasks are spawned (`tokio::spawn`,
//! `spawn_local`, `block_on`, …), plus the task name when one is given.
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `id` | integer | the site's identifier within this report (stable for the life of one process only) |
//! | `label` | string | `file:line:col`, plus ` "name"` for named tasks; `<overflow>` for the overflow site |
//! | `file` | string | the source file of the spawn call |
//! | `line` | integer | the line of the spawn call |
//! | `col` | integer | the column of the spawn call |
//! | `name` | string | the task name (`tokio::task::Builder::name`), empty when unnamed |
//! | `kind` | string | how the future runs: `task`, `local` or `block_on` |
//! | `tasks_spawned` | integer | tasks spawned from this site |
//! | `polls` | integer | polls of this site's tasks |
//! | `slow_polls` | integer | of those, polls longer than `threshold_ns` |
//! | `busy_ns` | integer, ns | time inside polls of this site's tasks, excluding polls of other tasks nested inside them, so no time is counted twice |
//! | `max_ns` | integer, ns | the longest single poll |
//! | `drops` | integer | times a task's future was dropped with its span entered (completion, abort or runtime shutdown); not polls, not in the histogram |
//! | `drop_ns` | integer, ns | time spent dropping this site's futures |
//! | `percentiles` | object | `p50_ns`, `p90_ns`, `p99_ns`, `p999_ns`: the 50th, 90th, 99th and 99.9th percentile poll time, from the histogram; all `0` when there are no polls |
//! | `histogram` | string | every poll time of the site, as an encoded histogram (below); `""` when there are no polls |
//!
//! Percentiles come from the histogram, so they are the *highest value equivalent* to the
//! percentile within the histogram's precision (0.1%): `312213503` for a 312 ms poll.
//! `max_ns` is exact.
//!
//! ## `histogram`
//!
//! An [HdrHistogram](https://hdrhistogram.github.io/HdrHistogram/) of poll times in
//! nanoseconds, from 1 µs ([`histogram::LOWEST_NS`]) to 1 hour ([`histogram::HIGHEST_NS`]), 3
//! significant digits ([`histogram::SIGNIFICANT_DIGITS`]), in HdrHistogram's *V2 compressed*
//! binary encoding, written as base64 (standard alphabet, with padding). This is the same text
//! an HdrHistogram interval log line ends with, so HdrHistogram libraries in other languages
//! decode it (in Java: base64-decode, then `Histogram.decodeFromCompressedByteBuffer`), and histograms from several reports or sites can
//! be added together. [`histogram::decode`] decodes it here.
//!
//! ## `slow_polls[]` ([`SlowPoll`])
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `task_id` | integer | tokio's task id (`tokio::task::Id`) |
//! | `task_name` | string | the task's name, empty when unnamed |
//! | `site` | string | the site's `label` |
//! | `thread` | string | the name of the thread the poll held |
//! | `duration_ns` | integer, ns | how long the poll held the thread, excluding polls of other tasks nested inside it |
//! | `kind` | string | `poll`, or `drop` when the slow part was dropping the future |
//! | `ended_at_ns` | integer, ns | when the poll ended, since pollwatch started (comparable with `uptime_ns`) |
//!
//! Every slow poll is counted in its site's `slow_polls` whether or not it is listed here.
//!
//! ## Example
//!
//! A report of one named task, polled five times in its first minute, once for 312 ms:
//!
//! ```json
#![doc = include_str!("example-report.json")]
//! ```
//!
//! # The text report
//!
//! `report.txt` is [`text::render`]'s output: a header line with the totals, the sites that held
//! their threads longest (`busy_ns`) with their percentiles, the ten most recent slow polls,
//! the `dropped` counters (`dropped: nothing` when all are zero), and the diagnostics. Its layout is for people and
//! may change in any release; programs should read `report.json`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod call_sites;
pub mod error;
pub mod histogram;
pub mod hlog;
pub mod json;
pub mod model;
pub mod text;
pub mod units;
pub mod write;

pub use error::{ReadError, WriteError};
pub use model::*;

#[cfg(test)]
mod tests {
    /// The example in the crate documentation is a report this crate reads.
    #[test]
    fn documented_example_is_a_valid_report() {
        let report = crate::json::from_str(include_str!("example-report.json")).unwrap();
        let site = &report.sites[0];
        let h = crate::histogram::decode(&site.histogram).unwrap();
        assert_eq!(h.len(), site.polls);
        assert_eq!(crate::histogram::percentiles(&h), site.percentiles);
        assert_eq!(report.totals.busy_ns, site.busy_ns);
    }
}
