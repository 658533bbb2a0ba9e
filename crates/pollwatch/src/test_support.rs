//! Internals that pollwatch's own integration tests and benchmarks measure. Not part of the
//! public API: hidden from the docs and free to change in any release.

use crate::builder::Builder;
use crate::handle::Handle;

/// pollwatch with `builder`'s settings, fed by no source yet (watched futures feed it: it is
/// the current one): no subscriber, no report files kept, no guard.
pub fn start(builder: Builder) -> Handle {
    builder.build_handle()
}

/// Feeds `handle` from `runtime`'s stable worker hooks, in any build: the source
/// `pollwatch::runtime` chooses without `--cfg tokio_unstable`, for tests of it in a build
/// with the flag.
#[track_caller]
pub fn worker_hooks(handle: &Handle, runtime: &mut tokio::runtime::Builder) {
    crate::source::workers::set_hooks(handle.state(), runtime, std::panic::Location::caller());
}

/// Makes the report files pollwatch writes under `dir` fail from now on as on a read-only
/// filesystem (`"read-only"`: `EROFS`) or a full one (`"full"`: part of each write stored,
/// then `ENOSPC`), or work again (`None`), for fault tests where neither can be made.
pub fn fail_report_files(dir: &std::path::Path, fault: Option<&str>) {
    use crate::reporter::faults::{self, Fault};
    let fault = fault.map(|fault| match fault {
        "read-only" => Fault::ReadOnly,
        "full" => Fault::Full,
        other => panic!("no report file fault {other:?}: \"read-only\" or \"full\""),
    });
    faults::set(dir, fault);
}

/// The watchdog thread's OS thread id (0 before it has started or where unknown), for
/// measuring the watchdog's own CPU use.
pub fn watchdog_tid(handle: &Handle) -> i32 {
    handle.watchdog_tid()
}

/// How many thread slots the layer holds (every index, reclaimed ones included): what a
/// scan, a report and a scrape go through.
pub fn slot_count(handle: &Handle) -> usize {
    handle.slot_count()
}

/// The largest request head `/metrics` accepts, in bytes.
#[cfg(feature = "prometheus")]
pub const METRICS_MAX_HEAD_BYTES: usize = crate::metrics::MAX_HEAD_BYTES;

/// How long `/metrics` waits for a request head.
#[cfg(feature = "prometheus")]
pub const METRICS_HEAD_TIMEOUT: std::time::Duration = crate::metrics::HEAD_TIMEOUT;

/// How long `/metrics` gives a client to read its response.
#[cfg(feature = "prometheus")]
pub const METRICS_RESPONSE_TIMEOUT: std::time::Duration = crate::metrics::RESPONSE_TIMEOUT;

/// How many connections `/metrics` keeps open at once.
#[cfg(feature = "prometheus")]
pub const METRICS_MAX_CONNECTIONS: usize = crate::metrics::MAX_CONNECTIONS;

/// Makes pollwatch's `thread` (`"watchdog"`, `"reporter"`, `"metrics"` or `"console"`) panic
/// once, at its next scan, tick, request or start of serving, in every pollwatch of the
/// process: each must contain it and go on.
pub fn inject_panic(thread: &str) {
    let seam = match thread {
        "watchdog" => crate::guarded::Seam::Watchdog,
        "reporter" => crate::guarded::Seam::Reporter,
        "metrics" => crate::guarded::Seam::Metrics,
        "console" => crate::guarded::Seam::Console,
        other => panic!("no pollwatch thread {other:?}: watchdog, reporter, metrics or console"),
    };
    crate::guarded::inject(seam);
}
