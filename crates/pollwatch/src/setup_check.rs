//! The setup checks: when no task span has reached pollwatch a few seconds after it was
//! installed while a tokio runtime is running, say exactly what hides tokio's task spans; and
//! once installed, say when the build has no line tables, so stalls cannot name their line.
//!
//! The layer feeds them (callsites registered, tasks seen); the reporter thread runs them.

use std::sync::atomic::{
    AtomicBool,
    Ordering::{Acquire, Relaxed, Release},
};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing_core::Metadata;

use tracing_core::Dispatch;

use crate::config::TARGET;
use crate::diagnostics::Diagnostics;
use crate::task::{is_task_span, TASK_TARGET};

/// What pollwatch says when the build has no line tables.
pub(crate) const NO_LINE_TABLES: &str = "pollwatch: this build has no line tables, so stalls \
    name the application's function that blocked but not its file and line, and code inlined \
    into tokio's poll not even its function. Add to Cargo.toml (a larger binary on disk, no \
    runtime cost):\n  [profile.release]\n  debug = \"line-tables-only\"\nA stripped build whose \
    debug info is kept (objcopy --only-keep-debug) gets its lines back: the report keeps each \
    frame's build-id and address, and `pollwatch symbolize REPORT_DIR --debug DEBUG_FILE` \
    turns them into lines; a debug file where debuggers look (its .gnu_debuglink beside the \
    binary, /usr/lib/debug/.build-id/) is used live.";

/// The names tokio gives its worker threads, as `/proc` shows them (15 bytes): current
/// releases, then older ones.
const TOKIO_WORKER_COMMS: [&str; 2] = ["tokio-rt-worker", "tokio-runtime-w"];

/// The thread console-subscriber serves the tokio-console feed from (the `console` feature's,
/// or a `ConsoleLayer` the application composes), on a tokio runtime of its own.
const CONSOLE_SERVER_THREAD: &str = "console_subscriber";

/// Whether callsites registered on the thread named `name` say nothing of the application's
/// runtime: console-subscriber's server thread registers tokio's callsites for its own
/// runtime, and pollwatch's threads register every callsite again when they install their
/// `NoSubscriber`. Counted, they told a program without a runtime that its task spans were
/// hidden.
fn registered_off_the_application(name: Option<&str>) -> bool {
    name.is_some_and(|name| name == CONSOLE_SERVER_THREAD || name.starts_with("pollwatch-"))
}

#[derive(Debug)]
pub(crate) struct SetupCheck {
    after: Duration,
    installed_at: Mutex<Option<Instant>>,
    saw_task: AtomicBool,
    saw_task_callsite: AtomicBool,
    saw_tokio_callsite: AtomicBool,
    runtime_at_build: bool,
    done: AtomicBool,
    line_tables_checked: AtomicBool,
    saw_watched_future: AtomicBool,
}

/// Why no task span arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// pollwatch (and so, most likely, tokio) was compiled without `--cfg tokio_unstable`.
    NoUnstableCfg,
    /// tokio registered its task callsite, but something filters its spans out.
    Filtered,
    /// tokio never registered a task callsite: its `tracing` feature is off, or a filter or a
    /// `max_level_*` feature removes TRACE spans before pollwatch sees them.
    NoTracingOrFiltered,
}

impl SetupCheck {
    pub(crate) fn new(after: Duration) -> Self {
        Self {
            after,
            installed_at: Mutex::new(None),
            saw_task: AtomicBool::new(false),
            saw_task_callsite: AtomicBool::new(false),
            saw_tokio_callsite: AtomicBool::new(false),
            runtime_at_build: tokio::runtime::Handle::try_current().is_ok(),
            done: AtomicBool::new(false),
            line_tables_checked: AtomicBool::new(false),
            saw_watched_future: AtomicBool::new(false),
        }
    }

    pub(crate) fn installed(&self) {
        self.installed_at.lock().get_or_insert_with(Instant::now);
    }

    pub(crate) fn saw_callsite(&self, metadata: &Metadata<'_>) {
        if registered_off_the_application(std::thread::current().name()) {
            return;
        }
        if is_task_span(metadata) {
            self.saw_task_callsite.store(true, Relaxed);
        }
        // tokio::sync works without a runtime (console-subscriber uses it on the thread that
        // installs it): its callsites are no sign of one.
        if metadata.target().starts_with("tokio") && !metadata.target().starts_with("tokio::sync") {
            self.saw_tokio_callsite.store(true, Relaxed);
        }
    }

    /// A poll source that needs no task spans (the runtime hooks) is set: there is
    /// nothing to diagnose about spans.
    pub(crate) fn source_needs_no_spans(&self) {
        self.saw_task.store(true, Relaxed);
    }

    /// A watched future was created for this pollwatch: it measures with no task spans, so
    /// there is nothing to diagnose about spans, and the line-table check may run. Returns
    /// whether it was the first (a load, and a store only the first time).
    pub(crate) fn saw_watched_future(&self) -> bool {
        if self.saw_watched_future.load(Relaxed) || self.saw_watched_future.swap(true, Relaxed) {
            return false;
        }
        self.installed();
        self.source_needs_no_spans();
        true
    }

    pub(crate) fn saw_task(&self) {
        if !self.saw_task.load(Relaxed) {
            self.saw_task.store(true, Relaxed);
        }
    }

    /// Whether the check has run (it runs once).
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Acquire)
    }

    /// Runs the check once its time has come; records and prints the diagnosis.
    pub(crate) fn check(&self, diagnostics: &Diagnostics) {
        if self.done.load(Relaxed) {
            return;
        }
        let due = self
            .installed_at
            .lock()
            .is_some_and(|at| at.elapsed() >= self.after);
        if !due {
            return;
        }
        if !self.saw_task.load(Relaxed) && self.runtime_running() {
            diagnostics.push(diagnosis(self.cause(), self.after));
        }
        // Done only once the diagnosis is recorded: whoever sees the check done sees its
        // diagnosis. (One thread, the reporter, runs the check.)
        self.done.store(true, Release);
    }

    /// Once the layer is installed: whether the build has line tables. Without them, one WARN
    /// event (target [`TARGET`], field `diagnostic = "no_line_tables"`) through `subscriber`
    /// (stderr without one) and a diagnostic, saying what is lost and what to add.
    pub(crate) fn check_line_tables(
        &self,
        diagnostics: &Diagnostics,
        subscriber: Option<Dispatch>,
    ) {
        if self.line_tables_checked.load(Relaxed) || self.installed_at.lock().is_none() {
            return;
        }
        self.line_tables_checked.store(true, Relaxed);
        if pollwatch_capture::has_line_tables() {
            return;
        }
        diagnostics.record(NO_LINE_TABLES.to_owned());
        match subscriber {
            Some(dispatch) => tracing::dispatcher::with_default(&dispatch, || {
                tracing::warn!(target: TARGET, diagnostic = "no_line_tables", "{NO_LINE_TABLES}");
            }),
            None => crate::diagnostics::say(NO_LINE_TABLES),
        }
    }

    fn runtime_running(&self) -> bool {
        self.runtime_at_build || self.saw_tokio_callsite.load(Relaxed) || tokio_threads_exist()
    }

    fn cause(&self) -> Cause {
        if !cfg!(tokio_unstable) {
            Cause::NoUnstableCfg
        } else if self.saw_task_callsite.load(Relaxed) {
            Cause::Filtered
        } else {
            Cause::NoTracingOrFiltered
        }
    }
}

/// Whether a thread with tokio's default worker name exists (Linux; false elsewhere).
fn tokio_threads_exist() -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("comm"))
            .is_ok_and(|comm| TOKIO_WORKER_COMMS.contains(&comm.trim_end()))
    })
}

/// The message for a cause: what is wrong and exactly what to change.
pub(crate) fn diagnosis(cause: Cause, after: Duration) -> String {
    let head = format!(
        "pollwatch: a tokio runtime is running but no task span has reached pollwatch {}s after \
         it was installed, so it measures nothing.",
        after.as_secs_f32()
    );
    let fix = match cause {
        Cause::NoUnstableCfg => "The build lacks `--cfg tokio_unstable`, without which tokio emits \
             no task spans. Add to .cargo/config.toml at the workspace root:\n  [build]\n  \
             rustflags = [\"--cfg\", \"tokio_unstable\"]\n(or build with RUSTFLAGS=\"--cfg tokio_unstable\"). \
             Without it, spawn with `pollwatch::spawn` or wrap futures with \
             `pollwatch::Watch::watched`: watched futures are measured in any build."
            .to_owned(),
        Cause::Filtered => format!(
            "tokio emits its task spans (TRACE, target `{TASK_TARGET}`), but a filter drops them before \
             pollwatch sees them. A filter on the whole registry (`registry().with(EnvFilter)` or \
             `.with(LevelFilter::INFO)`) disables them for every layer: attach the filter to your \
             output layer instead, `fmt::layer().with_filter(EnvFilter::from_default_env())`, or allow \
             `tokio::task=trace` in it."
        ),
        Cause::NoTracingOrFiltered => format!(
            "tokio has not registered its task span. Either tokio's `tracing` feature is off (add it: \
             `tokio = {{ version = \"1\", features = [\"full\", \"tracing\"] }}`), or a filter outside \
             pollwatch removes TRACE spans with target `{TASK_TARGET}` (a registry-wide EnvFilter or \
             LevelFilter, or tracing's `max_level_*`/`release_max_level_*` features): attach filters to \
             your output layer instead."
        ),
    };
    format!("{head} {fix}")
}
