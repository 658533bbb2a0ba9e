//! The state one layer shares with its handle and its background threads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tracing_core::dispatcher::WeakDispatch;
use tracing_core::Dispatch;

use crate::builder::Builder;
use crate::handle::Handle;
use crate::layer::PollWatchLayer;
use crate::poll::clock::Clock;
use crate::poll::PollPath;
use crate::reporter::files::Files;
use crate::reporter::setup_check::SetupCheck;
use crate::reporter::Reporter;
use crate::sites::Sites;
use crate::stall::book::Book;
use crate::watchdog::Watchdog;
use pollwatch_report::SlowPoll;

/// Distinguishes layers within one process (each has its own thread-local slots).
static NEXT_LAYER_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) threshold: Duration,
    pub(crate) max_sites: u32,
    pub(crate) report_dir: std::path::PathBuf,
    pub(crate) tick: Duration,
    pub(crate) started_at: SystemTime,
    /// The same moment as `started_at`, on the monotonic clock.
    pub(crate) started: Instant,
    /// The report directory kept up to date while running, and the interval log.
    pub(crate) files: Mutex<Files>,
    /// Times writing the report files while running failed.
    pub(crate) report_files_failed: AtomicU64,
    pub(crate) poll: PollPath,
    pub(crate) sites: Sites,
    pub(crate) setup: SetupCheck,
    /// The most recent slow polls, for reports.
    pub(crate) recent: Mutex<VecDeque<SlowPoll>>,
    pub(crate) diagnostics: Mutex<Vec<String>>,
    /// The subscriber the layer is installed in; the reporter emits events through it.
    pub(crate) dispatch: Mutex<Option<WeakDispatch>>,
    /// The stalls the watchdog caught.
    pub(crate) book: Mutex<Book>,
    /// Watchdog samples lost because the queue to the reporter was full.
    pub(crate) stall_samples_dropped: AtomicU64,
    /// The tokio-console resources of the sites that stalled (feature `console`).
    #[cfg_attr(not(feature = "console"), allow(dead_code))]
    pub(crate) console: crate::console::Resources,
}

impl Shared {
    /// The subscriber the layer is installed in, if it still exists.
    pub(crate) fn dispatch(&self) -> Option<Dispatch> {
        self.dispatch
            .lock()
            .ok()
            .and_then(|d| d.as_ref().and_then(WeakDispatch::upgrade))
    }
}

/// How many watchdog messages may wait for the reporter.
const QUEUE: usize = 256;

pub(crate) fn build(builder: Builder) -> (PollWatchLayer, Handle) {
    let max_sites = u32::try_from(builder.max_sites).unwrap_or(u32::MAX - 1);
    let shared = Arc::new(Shared {
        threshold: builder.threshold,
        max_sites,
        files: Mutex::new(Files::new(
            builder
                .write_while_running
                .then(|| builder.report_dir.clone()),
            builder.log_interval,
            builder.flush_every,
            builder.log_max_bytes,
        )),
        report_dir: builder.report_dir,
        tick: builder.tick,
        started_at: SystemTime::now(),
        started: Instant::now(),
        report_files_failed: AtomicU64::new(0),
        poll: PollPath {
            layer_id: NEXT_LAYER_ID.fetch_add(1, Relaxed),
            clock: Clock::new(),
            threshold_ns: u64::try_from(builder.threshold.as_nanos()).unwrap_or(u64::MAX),
            site_slots: max_sites as usize + 1,
            slots: Arc::default(),
        },
        sites: Sites::new(max_sites),
        setup: SetupCheck::new(builder.setup_check_after),
        recent: Mutex::new(VecDeque::new()),
        diagnostics: Mutex::new(Vec::new()),
        dispatch: Mutex::new(None),
        book: Mutex::new(Book::new(builder.stall_warnings_per_minute)),
        stall_samples_dropped: AtomicU64::new(0),
        console: crate::console::Resources::default(),
    });
    let inspector = if builder.inspect_threads {
        pollwatch_capture::inspector(builder.backtraces)
    } else {
        pollwatch_capture::fallback()
    };
    let (to_reporter, from_watchdog) = std::sync::mpsc::sync_channel(QUEUE);
    let reporter = Reporter::start(&shared, to_reporter.clone(), from_watchdog);
    let watchdog = Watchdog::start(&shared, inspector, to_reporter);
    let layer = PollWatchLayer {
        shared: shared.clone(),
    };
    (layer, Handle::new(shared, reporter, watchdog))
}
