//! pollwatch's report: the data model and its file formats.
//!
//! pollwatch measures how long each tokio task poll holds its worker thread, per spawn site,
//! and writes what it measured as a *report*. This crate is the report: the data model
//! ([`Report`] and the types in [`model`]), the JSON file that programs read ([`json`]), the
//! text file that people read ([`text`]), the histogram encoding inside it ([`histogram`]), the
//! HdrHistogram interval log of poll times over the run ([`hlog`]), stalls grouped by blocking
//! call site ([`call_sites`]), consistency checks ([`check`]) and atomic writing
//! ([`write`](mod@write)). It has no tokio or tracing dependency, so a tool that only reads
//! reports (the `pollwatch` command) stays small.
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
//! A report that reads may still hold figures that cannot all be true, such as a percentile
//! above the longest poll (written by a pollwatch with a bug, or edited): it is not rejected,
//! and [`Report::inconsistencies`] names each problem ([`check`] lists the checks).
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
//! | `stalls` | array | the most recent stalls (polls caught by the watchdog while still running past `threshold_ns`), oldest first; at most 256 ([`Report::STALLS_KEPT`]); may be absent (read as empty) |
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
//! | `stalls` | integer | stalls: polls the watchdog caught while they were still running past `threshold_ns`; may be absent (read as `0`) |
//! | `polls_in_place` | integer | polls the watchdog caught past `threshold_ns` blocking inside `tokio::task::block_in_place`, which holds no worker: allowed, neither stalls nor slow-poll warnings, still counted in `polls` and `slow_polls`; may be absent (read as `0`) |
//! | `delay_task_ns` | integer, task-ns | the scheduling delay the stalls that ended added to the tasks waiting behind them, estimated (see `stalls[].harm`), summed over every site; may be absent (read as `0`) |
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
//! | `stall_warnings_suppressed` | integer | warnings not emitted because their blocking line (spawn site and call site) exceeded its rate limit (still counted, summarized in one event per line, and listed) |
//! | `stall_samples` | integer | stall samples lost because the watchdog's queue to the reporter was full |
//! | `report_writes_failed` | integer | times the report files could not be written while running; the reason is in `diagnostics` |
//! | `host_panics` | integer | panics caught on pollwatch's threads, most often from an application subscriber or layer that panicked on pollwatch's events or spans (that output was lost; `diagnostics` says where); may be absent (read as `0`) |
//!
//! ## `sites[]` ([`SiteReport`])
//!
//! A *site* is the place in the source code where tasks are spawned (`tokio::spawn`,
//! `spawn_local`, `block_on`, …) or a future is wrapped to be watched (`.watched()`,
//! `pollwatch::spawn`), plus the task name when one is given.
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `id` | integer | the site's identifier within this report (stable for the life of one process only) |
//! | `label` | string | `file:line:col`, plus ` "name"` for named tasks; `<overflow>` for the overflow site |
//! | `file` | string | the source file of the spawn call |
//! | `line` | integer | the line of the spawn call |
//! | `col` | integer | the column of the spawn call |
//! | `name` | string | the task name (`tokio::task::Builder::name`), empty when unnamed |
//! | `kind` | string | how the future runs: `task`, `local` or `block_on`; `watched` for a future pollwatch wrapped (`.watched()`, `pollwatch::spawn`); `worker` for the busy periods of a runtime's workers (the stable worker hooks, `pollwatch::runtime`), whose stalls have task id 0 |
//! | `tasks_spawned` | integer | tasks spawned from this site (for a watched site: futures wrapped there) |
//! | `polls` | integer | polls of this site's tasks |
//! | `slow_polls` | integer | of those, polls longer than `threshold_ns` |
//! | `busy_ns` | integer, ns | time inside polls of this site's tasks, excluding polls of other tasks nested inside them, so no time is counted twice |
//! | `max_ns` | integer, ns | the longest single poll |
//! | `drops` | integer | times a task's future was dropped with its span entered (completion, abort or runtime shutdown); not polls, not in the histogram |
//! | `drop_ns` | integer, ns | time spent dropping this site's futures |
//! | `percentiles` | object | poll-time percentiles, below |
//! | `histogram` | string | every poll time of the site, as an encoded histogram (below); `""` when there are no polls |
//! | `stalls` | integer | polls of this site's tasks caught by the watchdog while still running past `threshold_ns`; may be absent (read as `0`) |
//! | `warnings_suppressed` | integer | warnings (stalls and slow polls) of this site not emitted because their blocking line exceeded its rate limit; may be absent (read as `0`) |
//! | `call_sites` | array | where this site's stalls blocked, one entry per blocking call site, most stalls first and `other` last (below); may be absent (read as empty) |
//! | `polls_in_place` | integer | polls of this site's tasks the watchdog caught past `threshold_ns` blocking inside `tokio::task::block_in_place` (allowed, not stalls; still in `polls` and `slow_polls`); may be absent (read as `0`) |
//! | `delay_task_ns` | integer, task-ns | the scheduling delay this site's stalls that ended added to the tasks waiting behind them, estimated (see `stalls[].harm`): what `pollwatch show --by harm` ranks sites by; may be absent (read as `0`) |
//! | `delay_unknown_stalls` | integer | this site's stalls that ended whose harm is unknown (`harm.local_set`): `delay_task_ns` is then a lower bound; may be absent (read as `0`) |
//!
//! Every stall of the site is counted in exactly one `call_sites` entry, so their `count`s add
//! up to `stalls`.
//!
//! ## `sites[].percentiles` ([`Percentiles`])
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `p50_ns` | integer, ns | the median poll time |
//! | `p90_ns` | integer, ns | the 90th percentile poll time |
//! | `p99_ns` | integer, ns | the 99th percentile poll time |
//! | `p999_ns` | integer, ns | the 99.9th percentile poll time |
//!
//! All four are `0` when the site has no polls. Percentiles come from the histogram, so each is
//! the *highest value equivalent* to the percentile within the histogram's precision (0.1%),
//! capped at `max_ns`, which is exact: in the example below, `p90_ns` and above fall on the
//! 312 ms poll, the longest, so they are `312000000` (its `max_ns`) rather than the
//! histogram's `312213503`.
//!
//! ## `sites[].call_sites[]` ([`CallSiteCount`])
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `call_site` | string | where the stalls blocked: `file:line` of the innermost frame in the application's code; without line tables its function followed by ` (line unknown)`; `unknown` for stalls whose stack named neither (or was not captured); `other` for the stalls at call sites beyond the first 32 of the site |
//! | `blocking_call` | string or null | the blocking API called there (`std::fs::read`), when recognised; `null` for `other` |
//! | `cause` | string | the stalls' cause, one of the [values below](#stall-causes); `various` for `other` |
//! | `count` | integer | stalls at this call site (with this blocking call and cause) |
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
//! ## `stalls[]` ([`Stall`])
//!
//! A *stall* is a poll the watchdog thread caught while it was still running past
//! `threshold_ns`. The watchdog looks at the held thread when it catches the poll (state,
//! syscall, stack), looks again at 2x, 4x, 8x ... the threshold while it keeps running (up to
//! 12 more looks, `samples`), and records its total length when it ends.
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `task_id` | integer | tokio's task id of the innermost task being polled |
//! | `task_name` | string | that task's name, empty when unnamed |
//! | `site` | string | that task's site, its `label` in `sites` |
//! | `thread` | string | the name of the held thread |
//! | `worker_index` | integer | the held thread's index among its runtime's workers (tokio's `worker_index()`), when it polled as one; may be absent |
//! | `tid` | integer | the held thread's OS thread id; `0` where unknown |
//! | `started_at_ns` | integer, ns | when the poll started, since pollwatch started (comparable with `uptime_ns`) |
//! | `detected_after_ns` | integer, ns | how long the poll had been running when the watchdog caught it |
//! | `detection_lag_ns` | integer, ns | how late the watchdog caught it: `detected_after_ns` minus `threshold_ns` |
//! | `duration_ns` | integer, ns | how long the poll held the thread, measured around the outermost poll on the thread (polls of other tasks nested inside it included): final when `ended`, the time so far otherwise |
//! | `ended` | boolean | whether the poll had ended when the report was taken |
//! | `cpu_ns` | integer or null, ns | CPU time the thread used from the stall's detection to its end (or to the last look while it still runs): close to that wall time for CPU work, near zero for a thread blocked in a syscall; `null` when unknown |
//! | `run_ns` | integer or null, ns | time the thread ran on a CPU while the watchdog watched the poll (from its first look past a quarter of `threshold_ns`, else from detection, to its end or last look), from the scheduler's accounting (`/proc/self/task/<tid>/schedstat`); `null` when unknown |
//! | `runqueue_wait_ns` | integer or null, ns | time the thread was runnable but waited on a run queue for a CPU over the span of `run_ns` (CPU quota throttling included); `null` when unknown. Waiting for more than half of that span (or of the poll, when shorter) while running less than half of `threshold_ns` makes CPU work or a lock wait `descheduled` |
//! | `throttled_ns` | integer or null, ns | time the process's cgroup was throttled by its CPU quota over the span of `run_ns` (cgroup v2 `cpu.stat`'s `throttled_usec`); `null` without cgroup v2's CPU controller |
//! | `state` | string | what the thread was doing when caught: `running on CPU`, `sleeping`, `in uninterruptible IO`, or `unknown` where the system does not say (no `/proc`) |
//! | `syscall` | string or null | the syscall the thread was in (`read`, `futex`, `clock_nanosleep`), when known |
//! | `blocked_on` | string or null | what that syscall waits on: a file path, a socket's two addresses, a lock, a sleep; when known |
//! | `cause` | string | why the poll held the thread, one of the [values below](#stall-causes) |
//! | `call_site` | string or null | `file:line` of the innermost frame in the application's code, when the stack names one; the file relative to the workspace like spawn sites (`src/cmd/get.rs:73`), a dependency's from its crate (`ureq-2.12.1/src/unit.rs:120`) |
//! | `call_site_path` | string or null | the same frame with the file's absolute path on the build machine, as the debug info has it |
//! | `call_function` | string or null | the innermost function of the application's code, crate-qualified (`mini_redis::cmd::get::Get::apply`); known without line tables too |
//! | `call_site_missing` | string or null | why `call_site` is null: `no_stack` (no stack was captured), `no_line_tables` (the build has no line tables; `call_function` names the function), `inlined` (without line tables the code was inlined into tokio's poll), `not_in_application` (no frame of the application's code on the stack), `would_interrupt` (the thread was in a call the capture signal would have interrupted, such as a socket read with a timeout, so it was not signalled; `message` names the call), `no_symbols` (a stripped build: the frames are addresses, which `pollwatch symbolize` turns into the line with the build's debug info); null when `call_site` is known |
//! | `blocking_call` | string or null | the blocking API the application called there (`std::fs::read_to_string`), when recognised |
//! | `dependency_call` | string or null | the dependency's function the application called into on the way to the blocking call, when it went through one |
//! | `kind` | string | `poll`, or `drop` when the thread was running a `Drop` (the task's future being dropped, or a value dropped inside a poll); `poll` when absent |
//! | `dropping` | string or null | the type whose `Drop` was running, when the stack names it |
//! | `suggestion` | string | the fix to apply, a sentence; for a drop, one that can be written in a `Drop` |
//! | `span` | string or null | the innermost tracing span entered inside the task when the stall was caught: its name and, when a fmt layer recorded them, its fields (`load_users{user=3}`) |
//! | `backtrace` | array | the held thread's stack when caught, innermost frame first, with the frames of the capture and of the runtime trimmed (below); empty when no stack was captured |
//! | `capture_ns` | integer or null, ns | how long capturing the stack took (signal sent to frames stored), when one was captured |
//! | `samples` | array | the later looks at the running poll, oldest first (below); empty when it ended before twice `threshold_ns` |
//! | `harm` | object or null | the tasks that were ready to run while the stall held its worker, and the delay it added them (below); null when the held thread runs no tokio runtime whose queues pollwatch could read; may be absent |
//! | `message` | string | the one-line warning, as emitted |
//!
//! Every stall is counted in its site's `stalls` and `call_sites` and in `totals.stalls`,
//! whether or not it is listed here.
//!
//! ### Stall causes
//!
//! | `cause` | the thread was |
//! | --- | --- |
//! | `file_io` | reading or writing a file: in a `std::fs` call, in a syscall on a file, or in uninterruptible IO |
//! | `sleep` | sleeping: in `std::thread::sleep` or a sleep syscall |
//! | `lock` | waiting on a lock or condition variable: in a `std::sync` call other than `mpsc`, joining a thread, or in a futex wait |
//! | `channel` | waiting on a `std::sync::mpsc` channel |
//! | `cpu` | running on a CPU outside any syscall |
//! | `network` | in a `std::net` call or a syscall on a socket |
//! | `block_on` | inside `futures::executor::block_on` |
//! | `process` | in a `std::process` call (waiting on a child process) |
//! | `memory_map` | asleep in `mmap`, `munmap`, `mprotect`, `mremap`, `madvise`, `brk` or `mlock`: waiting for the process's memory-map lock, which another thread held (not the code's own blocking call) |
//! | `descheduled` | looked like CPU work or a lock wait, but while the watchdog watched it waited on a run queue for a CPU for more than half of the time (of the poll, once it ended), and ran less than half of `threshold_ns` (a lock's holder was then kept off a CPU too); or it looked like CPU work that the watchdog, itself kept off a CPU, first watched after most of it had passed, and saw run less than half of `threshold_ns`: the host or container is short of CPU (other busy threads or processes, a CPU quota), not the code's doing. `pollwatch diff` leaves these out by default |
//! | `unknown` | doing something none of the above describes (a pipe, or a state the system does not show) |
//!
//! In `sites[].call_sites`, the `other` entry has the cause `various`. [`CAUSES`] lists the
//! values.
//!
//! ## `stalls[].backtrace[]` ([`Frame`])
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `function` | string | the demangled function name, or the frame's address in hex when it has no symbol |
//! | `file` | string or null | the source file, when the binary's debug info has it |
//! | `line` | integer or null | the line in `file`, when the binary's debug info has it |
//! | `module` | object, absent when not needed | where the frame's code is (below), kept when the frames of its address lack a file or line (a build without line tables, a stripped one, a C library without its debug package): `pollwatch symbolize` turns it into lines with the build's debug info |
//!
//! ## `stalls[].backtrace[].module` ([`FrameModule`])
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `path` | string | the executable or shared library the frame's code is in, as it was loaded |
//! | `build_id` | string, absent when it has none | its GNU build-id in lower-case hex: which build's debug info fits |
//! | `address` | string | the address to look up in that file's numbering, in hex (`"0x1a2b3c"`): `addr2line -e DEBUG_FILE -i ADDRESS` |
//!
//! ## `stalls[].samples[]` ([`StallSample`])
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `at_ns` | integer, ns | how long the poll had been running at this look |
//! | `state` | string | the thread's state, as in `state` above |
//! | `syscall` | string or null | the syscall it was in, when known |
//! | `call_site` | string or null | the call site, as in `call_site` above, when a stack was captured |
//! | `cpu_ns` | integer or null, ns | CPU time the thread used from the stall's detection to this look, when known |
//!
//! ## `stalls[].harm` ([`Harm`])
//!
//! How much the stall delayed other work. The watchdog reads the held thread's runtime queues
//! at every tick while it follows the stall (its first look included). So the figures are
//! final once the stall `ended`, and so far while it runs.
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `looks` | integer | readings of the queues |
//! | `workers` | integer | the runtime's worker threads, which share its global queue |
//! | `global_queue_max` | integer | the most tasks waiting in the runtime's global (injection) queue at a reading |
//! | `local_queue_max` | integer or null | the most tasks waiting in the held worker's own run queue at a reading; null where tokio does not expose it (builds without `--cfg tokio_unstable`) |
//! | `delay_task_ns` | integer, task-ns | the estimated scheduling delay the stall added. At each reading, the ready tasks the held worker stands in front of are its own queue plus its share of the global queue (depth / `workers`); each counts for the time since the previous reading (the first: since the stall began), and the last reading's count also stands for the rest of the stall |
//! | `local_set` | boolean | the held thread was running a `LocalSet`, whose queue pollwatch cannot read: the tasks waiting there are not counted, so the harm is unknown and `delay_task_ns` a lower bound; may be absent (read as `false`) |
//!
//! ## Example
//!
//! A report of one named task, polled five times in its first minute, once for 312 ms, which
//! the watchdog caught while it ran (a stall, blocked reading a file, while three tasks waited
//! in its worker's queue):
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
#![warn(missing_docs)]

pub mod call_sites;
pub mod check;
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
    use std::collections::{BTreeMap, BTreeSet};

    use crate::*;

    /// The example in the crate documentation is a report this crate reads, as pollwatch
    /// writes it: percentiles from its histogram, capped at `max_ns`, and nothing inconsistent.
    #[test]
    fn documented_example_is_a_valid_report() {
        let report = crate::json::from_str(include_str!("example-report.json")).unwrap();
        let site = &report.sites[0];
        let h = crate::histogram::decode(&site.histogram).unwrap();
        assert_eq!(h.len(), site.polls);
        let p = crate::histogram::percentiles(&h);
        let capped = Percentiles {
            p50_ns: p.p50_ns.min(site.max_ns),
            p90_ns: p.p90_ns.min(site.max_ns),
            p99_ns: p.p99_ns.min(site.max_ns),
            p999_ns: p.p999_ns.min(site.max_ns),
        };
        assert_eq!(capped, site.percentiles);
        assert_eq!(report.totals.busy_ns, site.busy_ns);
        assert_eq!(report.inconsistencies(), Vec::<String>::new());
    }

    /// A report with every field set and every list holding one entry, so its JSON has every
    /// key the schema has.
    fn full_report() -> Report {
        let frame = Frame {
            function: "app::store::load".to_owned(),
            file: Some("src/store.rs".to_owned()),
            line: Some(17),
            module: Some(FrameModule {
                path: "/srv/app".to_owned(),
                build_id: Some("ab12cd34".to_owned()),
                address: 0x1234,
            }),
        };
        let sample = StallSample {
            at_ns: 20_000_000,
            state: "sleeping".to_owned(),
            syscall: Some("read".to_owned()),
            call_site: Some("src/store.rs:17".to_owned()),
            cpu_ns: Some(1_000),
        };
        let stall = Stall {
            task_id: 7,
            task_name: "ingest".to_owned(),
            site: "src/ingest.rs:42:5".to_owned(),
            thread: "worker".to_owned(),
            worker_index: Some(1),
            tid: 42,
            started_at_ns: 1,
            detected_after_ns: 12_000_000,
            detection_lag_ns: 2_000_000,
            duration_ns: 30_000_000,
            ended: true,
            cpu_ns: Some(1_000),
            run_ns: Some(800),
            runqueue_wait_ns: Some(100),
            throttled_ns: Some(50),
            state: "sleeping".to_owned(),
            syscall: Some("read".to_owned()),
            blocked_on: Some("/data/users.json".to_owned()),
            cause: "file_io".to_owned(),
            call_site: Some("src/store.rs:17".to_owned()),
            call_site_path: Some("/home/ci/app/src/store.rs:17".to_owned()),
            call_function: Some("app::store::load".to_owned()),
            call_site_missing: Some("no_line_tables".to_owned()),
            blocking_call: Some("std::fs::read".to_owned()),
            dependency_call: Some("ureq::request::Request::call".to_owned()),
            kind: "drop".to_owned(),
            dropping: Some("app::FlushOnDrop".to_owned()),
            suggestion: "Use tokio::fs::read.".to_owned(),
            span: Some("load".to_owned()),
            backtrace: vec![frame],
            capture_ns: Some(40_000),
            samples: vec![sample],
            harm: Some(Harm {
                looks: 3,
                workers: 2,
                global_queue_max: 4,
                local_queue_max: Some(6),
                delay_task_ns: 240_000_000,
                local_set: true,
            }),
            message: "held".to_owned(),
        };
        let site = SiteReport {
            id: 0,
            label: "src/ingest.rs:42:5".to_owned(),
            file: "src/ingest.rs".to_owned(),
            line: 42,
            col: 5,
            name: String::new(),
            kind: "task".to_owned(),
            tasks_spawned: 1,
            polls: 1,
            slow_polls: 1,
            busy_ns: 30_000_000,
            max_ns: 30_000_000,
            drops: 1,
            drop_ns: 1_000,
            percentiles: Percentiles {
                p50_ns: 30_000_000,
                p90_ns: 30_000_000,
                p99_ns: 30_000_000,
                p999_ns: 30_000_000,
            },
            histogram: String::new(),
            stalls: 1,
            warnings_suppressed: 1,
            polls_in_place: 0,
            delay_task_ns: 240_000_000,
            delay_unknown_stalls: 1,
            call_sites: vec![CallSiteCount {
                call_site: "src/store.rs:17".to_owned(),
                blocking_call: Some("std::fs::read".to_owned()),
                cause: "file_io".to_owned(),
                count: 1,
            }],
        };
        Report {
            format: FORMAT.to_owned(),
            version: VERSION,
            pollwatch_version: "0.1.0".to_owned(),
            taken_at_unix_ms: 1,
            uptime_ns: 1,
            threshold_ns: 10_000_000,
            max_sites: 1024,
            totals: Totals {
                polls: 1,
                slow_polls: 1,
                busy_ns: 30_000_000,
                tasks_spawned: 1,
                threads: 1,
                stalls: 1,
                polls_in_place: 0,
                delay_task_ns: 240_000_000,
            },
            dropped: Dropped {
                tasks_in_overflow_site: 1,
                slow_poll_events: 1,
                polls_nested_too_deep: 1,
                values_clamped: 1,
                stall_warnings_suppressed: 1,
                stall_samples: 1,
                report_writes_failed: 1,
                host_panics: 1,
            },
            slow_polls: vec![SlowPoll {
                task_id: 7,
                task_name: "ingest".to_owned(),
                site: site.label.clone(),
                thread: "worker".to_owned(),
                duration_ns: 30_000_000,
                kind: "poll".to_owned(),
                ended_at_ns: 30_000_001,
            }],
            sites: vec![site],
            diagnostics: vec!["a sentence".to_owned()],
            stalls: vec![stall],
        }
    }

    /// The keys of every JSON object in `value`, by path: `""` for the top level, `totals`,
    /// `sites[]` for the objects in the `sites` array, `sites[].percentiles`, ...
    fn keys_by_path(
        value: &serde_json::Value,
        path: &str,
        out: &mut BTreeMap<String, BTreeSet<String>>,
    ) {
        match value {
            serde_json::Value::Object(fields) => {
                for (key, child) in fields {
                    out.entry(path.to_owned()).or_default().insert(key.clone());
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    keys_by_path(child, &child_path, out);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    keys_by_path(item, &format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }

    /// The fields documented for the objects at `path`: the first column of the table under
    /// its heading (`## Top level` for `""`, else ``## `path` ``), up to the next heading.
    fn documented_fields(docs: &str, path: &str) -> Option<BTreeSet<String>> {
        let heading = if path.is_empty() {
            "//! ## Top level".to_owned()
        } else {
            format!("//! ## `{path}`")
        };
        let start = docs.lines().position(|l| l.starts_with(&heading))?;
        let fields = docs
            .lines()
            .skip(start + 1)
            .take_while(|l| !l.starts_with("//! #"))
            .filter_map(|l| l.strip_prefix("//! | `"))
            .filter_map(|l| l.split_once("` |"))
            .map(|(name, _)| name.to_owned())
            .collect();
        Some(fields)
    }

    /// Every key of the JSON report is in the table of its object in the crate documentation,
    /// and every field documented there is a key: adding, renaming or removing a field fails
    /// here until the documentation says so. The documented example has every key too.
    #[test]
    fn every_json_field_is_documented() {
        let docs = include_str!("lib.rs");
        let json = serde_json::to_value(full_report()).unwrap();
        let mut keys = BTreeMap::new();
        keys_by_path(&json, "", &mut keys);
        assert!(keys.len() >= 10, "{keys:?}");
        for (path, keys) in &keys {
            let documented = documented_fields(docs, path)
                .unwrap_or_else(|| panic!("no section for `{path}` in the crate documentation"));
            assert_eq!(
                keys, &documented,
                "the fields of `{path}` in the JSON and in the crate documentation"
            );
        }

        let example: serde_json::Value =
            serde_json::from_str(include_str!("example-report.json")).unwrap();
        let mut example_keys = BTreeMap::new();
        keys_by_path(&example, "", &mut example_keys);
        assert_eq!(example_keys, keys, "the documented example has every field");
    }
}
