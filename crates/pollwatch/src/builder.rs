//! The [`Builder`]: configures pollwatch and assembles it. `build()` creates the shared
//! state, starts the reporter and the watchdog, and returns the layer and its handle;
//! `try_init()` also composes the subscriber `init()` installs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::*;
use crate::error::InitError;
use crate::guard::Guard;
use crate::handle::Handle;
use crate::poll::clock::Clock;
use crate::poll::PollPath;
use crate::reporter::files::Files;
use crate::reporter::Reporter;
use crate::setup_check::SetupCheck;
use crate::sites::Sites;
use crate::source::layer::PollWatchLayer;
use crate::stall::book::Book;
use crate::state::{Lost, State, Subscriber};
use crate::watchdog::Watchdog;

/// How many watchdog messages may wait for the reporter.
const QUEUE: usize = 256;

/// What installing does when the environment keeps an output (an address, the report
/// directory) from starting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unavailable {
    /// Fail, starting nothing (`try_init`).
    Fail,
    /// Run without that output, saying so (`init`).
    RunWithout,
}

impl Unavailable {
    /// `problem` as the error, or kept in `without` to say once installed.
    fn or_fail(self, problem: InitError, without: &mut Vec<InitError>) -> Result<(), InitError> {
        match self {
            Unavailable::Fail => Err(problem),
            Unavailable::RunWithout => {
                without.push(problem);
                Ok(())
            }
        }
    }
}

/// Stops the `/metrics` endpoint, if one was started.
fn stop(metrics: Option<&crate::metrics::Server>) {
    if let Some(metrics) = metrics {
        crate::metrics::stop(metrics);
    }
}

/// Whether report files can be written in `dir`: creates it and a probe file there.
fn check_report_dir(dir: &std::path::Path) -> Result<(), InitError> {
    let probe = dir.join(format!(".pollwatch-write-check-{}", std::process::id()));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| InitError::ReportDir {
            dir: dir.to_owned(),
            source,
        })
}

/// Whether a global tracing subscriber is installed already. Read on a new thread: the calling
/// thread's scoped default (`with_default`) would hide the global one.
fn global_subscriber_installed() -> bool {
    if !tracing_core::dispatcher::has_been_set() {
        return false;
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .spawn_scoped(scope, || {
                tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>())
            })
            .ok()
            .and_then(|probe| probe.join().ok())
            // Unknown: installing finds out, and then stops what it started.
            .unwrap_or(false)
    })
}

/// Installs `subscriber` with the fmt layer on stderr (filtered by `filter` alone) and
/// pollwatch's layer as the global default. Every layer in it is filtered per layer, so a
/// callsite no layer enables keeps the interest `never`.
fn install_with_logs<S>(
    subscriber: S,
    filter: EnvFilter,
    state: Arc<State>,
) -> Result<(), tracing_subscriber::util::TryInitError>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(crate::config::log_colours())
        .with_filter(filter);
    subscriber
        .with(fmt)
        .with(PollWatchLayer::new(state))
        .try_init()
}

/// Configures pollwatch, then installs it one of three ways: [`init`](Self::init) /
/// [`try_init`](Self::try_init) (a service's subscriber with the layer, as [`crate::init`]),
/// [`runtime`](Self::runtime) (a runtime's hooks, as [`crate::runtime`]) or
/// [`build`](Self::build) (the layer, for a subscriber you compose).
///
/// ```no_run
/// use std::time::Duration;
///
/// let _guard = pollwatch::Builder::new()
///     .threshold(Duration::from_millis(25))
///     .report_dir("/var/tmp/pollwatch")
///     .with_default_env()? // POLLWATCH_* variables, where set, win
///     .init();
/// # Ok::<(), pollwatch::config::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a Builder does nothing until `init`, `try_init`, `runtime` or `build` is called"]
pub struct Builder {
    config: Config,
}

impl Builder {
    /// A builder with every setting at its default (the constants in [`crate::config`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A poll that holds its thread for longer than this is slow: counted, and reported as a
    /// WARN event. Default [`DEFAULT_THRESHOLD`].
    pub fn threshold(mut self, threshold: Duration) -> Self {
        self.config.threshold = threshold;
        self
    }

    /// The most spawn sites kept apart (clamped to 1..=[`MAX_SITES_LIMIT`]). Default
    /// [`DEFAULT_MAX_SITES`].
    pub fn max_sites(mut self, max_sites: usize) -> Self {
        self.config.max_sites = max_sites.clamp(1, MAX_SITES_LIMIT);
        self
    }

    /// The most task names (their digit runs folded to `#`) kept apart at one spawn location
    /// (clamped to 1..=[`MAX_SITES_LIMIT`]); tasks with other names share the location's own
    /// site. Names never take the last quarter of the site table. Default
    /// [`DEFAULT_NAMES_PER_LOCATION`].
    pub fn names_per_location(mut self, names: usize) -> Self {
        self.config.names_per_location = names.clamp(1, MAX_SITES_LIMIT);
        self
    }

    /// Where the report files go, kept up to date while the application runs: the interval
    /// log `report.hlog` gains an interval every [`log_interval`](Self::log_interval), and
    /// `report.json` and `report.txt` are rewritten every [`flush_every`](Self::flush_every)
    /// and when [`crate::Guard`] is dropped. Default [`DEFAULT_REPORT_DIR`], written while
    /// running only when set here, by `POLLWATCH_REPORT_DIR` or by [`crate::init`].
    pub fn report_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.report_dir = dir.into();
        self.config.write_while_running = true;
        self
    }

    /// Whether to keep the report directory up to date while the application runs (see
    /// [`report_dir`](Self::report_dir)). Off, reports are written only by
    /// [`Handle::write_report`](crate::Handle::write_report) and by the guard.
    pub fn write_while_running(mut self, on: bool) -> Self {
        self.config.write_while_running = on;
        self
    }

    /// How often `report.json` and `report.txt` are rewritten while running (at least
    /// [`MIN_LOG_INTERVAL`]), so a crash loses at most this much. Default
    /// [`DEFAULT_FLUSH_EVERY`].
    pub fn flush_every(mut self, every: Duration) -> Self {
        self.config.flush_every = every.max(MIN_LOG_INTERVAL);
        self
    }

    /// The length of one interval of the interval log `report.hlog` (at least
    /// [`MIN_LOG_INTERVAL`]). Default [`DEFAULT_LOG_INTERVAL`].
    pub fn log_interval(mut self, interval: Duration) -> Self {
        self.config.log_interval = interval.max(MIN_LOG_INTERVAL);
        self
    }

    /// How large `report.hlog` may grow (at least 4 KiB) before it is renamed to
    /// `report.1.hlog` (replacing the previous one) and a new log begins, its intervals still
    /// timed from the same base. Default [`DEFAULT_LOG_MAX_BYTES`], so a service left running
    /// keeps at most about twice this on disk.
    pub fn log_max_bytes(mut self, bytes: u64) -> Self {
        self.config.log_max_bytes = bytes.max(MIN_LOG_MAX_BYTES);
        self
    }

    /// How often the watchdog looks for stuck polls and the reporter for finished slow polls
    /// (at least [`MIN_TICK`]). Default [`DEFAULT_TICK`].
    pub fn tick(mut self, tick: Duration) -> Self {
        self.config.tick = tick.max(MIN_TICK);
        self
    }

    /// How long to wait for a first task before explaining the setup problem that hides
    /// tokio's task spans. Default [`DEFAULT_SETUP_CHECK_AFTER`].
    pub fn setup_check_after(mut self, after: Duration) -> Self {
        self.config.setup_check_after = after;
        self
    }

    /// Whether the watchdog has a stuck thread record its stack (Linux: a realtime signal,
    /// `SA_RESTART`). Default on. Off, no signal is ever installed or sent; stalls are still
    /// caught, with the thread's state and syscall but no call site. See docs/configuration.md
    /// on `EINTR`.
    pub fn backtraces(mut self, on: bool) -> Self {
        self.config.backtraces = on;
        self
    }

    /// Whether the watchdog signals a stuck thread for its stack even in a call the signal
    /// interrupts (a socket call with a timeout, `poll` with a timeout, ...: the caller then
    /// sees `EINTR`). Default off: such a stall is reported without a stack, saying why. Turn
    /// it on for code that retries `EINTR` (`POLLWATCH_BACKTRACE=always` does too), to get
    /// those stalls' call sites.
    pub fn interrupt_any_call(mut self, on: bool) -> Self {
        self.config.interrupt_any_call = on;
        self
    }

    /// The realtime signal stacks are captured with (Linux; default `SIGRTMIN() + 4`), for an
    /// application that uses that one itself. The first pollwatch of the process to install
    /// its handler decides; a signal that is not realtime makes capture unavailable. Also
    /// [`ENV_SIGNAL`] (`SIGRTMIN+N` or a number).
    pub fn signal(mut self, signal: i32) -> Self {
        self.config.signal = Some(signal);
        self
    }

    /// Whether the watchdog reads what a stuck thread is doing (Linux `/proc`) and captures
    /// its stack. Default on. Off, stalls are still caught and reported with their task, site
    /// and duration, as on platforms without `/proc`.
    pub fn inspect_threads(mut self, on: bool) -> Self {
        self.config.inspect_threads = on;
        self
    }

    /// How many warnings one blocking line (a spawn site and a blocking call site) may emit
    /// per minute, so a server whose tasks all start at one line still hears of every line
    /// that blocks. Further stalls are counted, listed in the report, and said in one summary
    /// event per line a minute after the first of them (or when pollwatch stops). Default
    /// [`DEFAULT_STALL_WARNINGS_PER_MINUTE`].
    pub fn stall_warnings_per_minute(mut self, n: u32) -> Self {
        self.config.stall_warnings_per_minute = n;
        self
    }

    /// Applies the `POLLWATCH_*` environment variables that are set: [`ENV_THRESHOLD`]
    /// (a duration: `10ms`, `1s`), [`ENV_REPORT_DIR`] (a path) and [`ENV_MAX_SITES`] (an
    /// integer, 1..=65536) and [`ENV_BACKTRACE`] (`on` or `off`). With the `console` feature,
    /// also console-subscriber's `TOKIO_CONSOLE_BIND` (`HOST:PORT`), `TOKIO_CONSOLE_RETENTION`,
    /// `TOKIO_CONSOLE_PUBLISH_INTERVAL`, `TOKIO_CONSOLE_RECORD_PATH` and
    /// `TOKIO_CONSOLE_BUFFER_CAPACITY`. With the `prometheus` feature, also
    /// `POLLWATCH_METRICS_ADDR` (`HOST:PORT`). A variable that is set but invalid is an error
    /// naming it.
    pub fn with_default_env(self) -> Result<Self, ConfigError> {
        self.with_env(|name| std::env::var_os(name))
    }

    /// [`with_default_env`](Self::with_default_env) with the variables looked up by `lookup`.
    pub(crate) fn with_env(
        mut self,
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Self, ConfigError> {
        self.config = self.config.with_env(&lookup)?;
        Ok(self)
    }

    /// Builds the layer to add to a `tracing_subscriber::registry()` and the handle that
    /// reads its measurements. Starts pollwatch's reporter and watchdog threads. The new
    /// pollwatch is the current one, which watched futures feed.
    pub fn build<S>(self) -> (PollWatchLayer<S>, Handle)
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let (state, handle) = self.start();
        (PollWatchLayer::new(state), handle)
    }

    /// Feeds pollwatch from `runtime`'s hooks, with no tracing subscriber, like
    /// [`crate::runtime`] does with this configuration: the report files kept current and
    /// written when the guard is dropped, `/metrics` served with the `prometheus` feature, an
    /// output that cannot start an ERROR event and a diagnostic. Stall events go to the
    /// default subscriber of the calling thread (install your logging first).
    ///
    /// The build chooses the hooks: with `--cfg tokio_unstable`, tokio's task hooks
    /// (`on_task_spawn`, `on_before_task_poll`, `on_after_task_poll`: every task's polls, by
    /// spawn location); without it, the stable worker hooks (`on_thread_park`,
    /// `on_thread_unpark`, `on_thread_stop`: a worker asleep in one blocking call past the
    /// threshold, whatever task runs on it). tokio keeps one callback per hook: these replace
    /// any set before (`on_thread_start` is left alone).
    #[track_caller]
    #[must_use = "dropping the guard immediately writes the report and stops reporting"]
    pub fn runtime(self, runtime: &mut tokio::runtime::Builder) -> Guard {
        let location = std::panic::Location::caller();
        self.installed_with(|handle| {
            crate::source::hook_runtime(handle.state(), runtime, location);
        })
    }

    /// Starts pollwatch with the report files kept current, lets `set_source` connect a source to
    /// its handle, then starts `/metrics`: an output that cannot start is an ERROR event and
    /// a diagnostic, and pollwatch runs on without it.
    fn installed_with(self, set_source: impl FnOnce(&Handle)) -> Guard {
        let mut without = Vec::new();
        if let Err(e) = check_report_dir(&self.config.report_dir) {
            without.push(e.to_string());
        }
        let config = self.config.clone();
        let (_, handle) = self.write_while_running(true).start();
        set_source(&handle);
        let metrics = crate::metrics::serve(&config, handle.state()).unwrap_or_else(|e| {
            without.push(e.to_string());
            None
        });
        for problem in without {
            let text = format!("pollwatch: {problem}; it runs without that output");
            tracing::error!(target: TARGET, "{text}");
            handle.state().diagnostics.record(text);
        }
        Guard::new(handle, metrics)
    }

    /// Builds pollwatch fed by no source yet (but watched futures), made the current one.
    pub(crate) fn build_handle(self) -> Handle {
        self.start().1
    }

    /// Builds pollwatch fed by no source yet and *not* made the current pollwatch: a test's
    /// watch (`testing`), which gives the threads it watches their own current pollwatch, so
    /// that tests running at once in one process never feed each other's.
    pub(crate) fn build_unlisted(self) -> Handle {
        self.start_unlisted().1
    }

    /// Starts pollwatch's threads on a new state, fed by no source yet, and makes it the
    /// current pollwatch (the one watched futures feed).
    fn start(self) -> (Arc<State>, Handle) {
        let (state, handle) = self.start_unlisted();
        crate::source::current::set(&state);
        (state, handle)
    }

    /// Starts pollwatch's threads on a new state, fed by no source yet.
    fn start_unlisted(self) -> (Arc<State>, Handle) {
        let config = self.config;
        let sites =
            Sites::new(config.max_sites_u32()).names_per_location(config.names_per_location);
        let poll = PollPath::new(Clock::new(), config.threshold_ns(), sites.slots());
        let state = Arc::new(State {
            started_at: SystemTime::now(),
            report_dir: config.report_dir.clone(),
            tick: config.tick,
            poll,
            sites,
            setup: SetupCheck::new(config.setup_check_after),
            recent: Default::default(),
            diagnostics: Default::default(),
            subscriber: Subscriber::default(),
            book: parking_lot::Mutex::new(Book::new(config.stall_warnings_per_minute)),
            lost: Lost::default(),
            layer_counts_spawns: Default::default(),
        });
        let inspector = if config.inspect_threads {
            pollwatch_capture::inspector_with(pollwatch_capture::Options {
                backtraces: config.backtraces,
                interrupt_any_call: config.interrupt_any_call,
                signal: config.signal,
            })
        } else {
            pollwatch_capture::fallback()
        };
        let (to_reporter, from_watchdog) = std::sync::mpsc::sync_channel(QUEUE);
        let files = Files::new(&config);
        let reporter = Reporter::start(&state, files, to_reporter.clone(), from_watchdog);
        let watchdog = Watchdog::start(&state, inspector, to_reporter);
        (state.clone(), Handle::new(state, reporter, watchdog))
    }

    /// Installs this configuration like [`crate::try_init`] does (the `POLLWATCH_*` variables
    /// are only read if [`Builder::with_default_env`] was called): any output that cannot
    /// start (a taken address, a report directory that cannot be written, the console feed in
    /// a build without `--cfg tokio_unstable`) is an error, and nothing is left running.
    pub fn try_init(self) -> Result<Guard, InitError> {
        self.install(Unavailable::Fail)
    }

    /// Installs this configuration like [`crate::init`] does: an output that cannot start is
    /// an ERROR event and a report diagnostic, and pollwatch runs on without it.
    ///
    /// # Panics
    ///
    /// When `RUST_LOG` is invalid or a global subscriber is already installed (a second
    /// `init`): then before starting anything, leaving the installed subscriber as it was.
    #[must_use = "dropping the guard immediately writes the report and stops reporting"]
    pub fn init(self) -> Guard {
        match self.install(Unavailable::RunWithout) {
            Ok(guard) => guard,
            Err(e) => panic!("pollwatch::init: {e}"),
        }
    }

    /// Installs the subscriber `init` and `try_init` compose. Everything that can fail is
    /// checked before anything starts; what fails after (a race for an address or for the
    /// global default) stops what was started.
    fn install(mut self, unavailable: Unavailable) -> Result<Guard, InitError> {
        // A second install (a programming error) is refused before anything starts: no thread,
        // no address taken, and not mistaken for an output that cannot start because the
        // first install holds its address.
        if global_subscriber_installed() {
            return Err(InitError::AlreadyInstalled);
        }
        let filter = match std::env::var("RUST_LOG") {
            Ok(spec) => EnvFilter::try_new(&spec).map_err(InitError::LogFilter)?,
            Err(_) => EnvFilter::new(DEFAULT_LOG_FILTER),
        };
        let mut without = Vec::new();
        // Feature `console`: whether the feed can be served (never fails without it).
        if let Err(e) = crate::console::check(&self.config) {
            unavailable.or_fail(e, &mut without)?;
            crate::console::switch_off(&mut self.config);
        }
        if let Err(e) = check_report_dir(&self.config.report_dir) {
            // The live files are retried each tick: they start once the directory works.
            unavailable.or_fail(e, &mut without)?;
        }
        let config = self.config.clone();
        let (state, handle) = self.write_while_running(true).start();
        // Feature `prometheus`: `/metrics` on pollwatch's own thread (None without it).
        let metrics = match crate::metrics::serve(&config, handle.state()) {
            Ok(metrics) => metrics,
            Err(e) => {
                if let Err(e) = unavailable.or_fail(e, &mut without) {
                    handle.shutdown();
                    return Err(e);
                }
                None
            }
        };
        // Feature `console`: console-subscriber's layer, its server started once installed.
        let (console, feed) =
            match crate::console::init_layer::<tracing_subscriber::Registry>(&config) {
                Ok(Some((layer, feed))) => (Some(layer), Some(feed)),
                Ok(None) => (None, None),
                Err(e) => {
                    if let Err(e) = unavailable.or_fail(e, &mut without) {
                        handle.shutdown();
                        stop(metrics.as_ref());
                        return Err(e);
                    }
                    (None, None)
                }
            };
        // Without the console layer the registry gets no layer in its place: an absent
        // `Option<Layer>` would enable every callsite of the process.
        let installed = match console {
            Some(console) => {
                install_with_logs(tracing_subscriber::registry().with(console), filter, state)
            }
            None => install_with_logs(tracing_subscriber::registry(), filter, state),
        };
        if installed.is_err() {
            handle.shutdown();
            stop(metrics.as_ref());
            return Err(InitError::AlreadyInstalled);
        }
        if let Some(feed) = feed {
            feed.serve(Some(handle.state().clone()));
        }
        for problem in without {
            let text = format!("pollwatch: {problem}; it runs without that output");
            tracing::error!(target: TARGET, "{text}");
            handle.state().diagnostics.record(text);
        }
        Ok(Guard::new(handle, metrics))
    }

    /// Whether [`Builder::try_init`] (and [`crate::init`]) also serves the tokio-console feed
    /// (console-subscriber's `ConsoleLayer`, composed into the same registry). Default on with
    /// the `console` feature. Off, sites that stall are still published as `BlockingSite`
    /// resources to any `ConsoleLayer` you install yourself.
    #[cfg(feature = "console")]
    #[cfg_attr(docsrs, doc(cfg(feature = "console")))]
    pub fn console(mut self, serve: bool) -> Self {
        self.config.console.serve = serve;
        self
    }

    /// Where the console feed is served. Default [`DEFAULT_CONSOLE_BIND`], or
    /// [`ENV_CONSOLE_BIND`] when [`Builder::with_default_env`] was called.
    #[cfg(feature = "console")]
    #[cfg_attr(docsrs, doc(cfg(feature = "console")))]
    pub fn console_addr(mut self, addr: std::net::SocketAddr) -> Self {
        self.config.console.addr = addr;
        self
    }

    /// The `ConsoleLayer` this builder would serve, with its server thread started, for a
    /// subscriber you compose yourself; add it before pollwatch's layer:
    ///
    /// ```no_run
    /// use tracing_subscriber::prelude::*;
    ///
    /// let builder = pollwatch::Builder::new().with_default_env()?;
    /// let console = builder.console_layer()?;
    /// let (layer, handle) = builder.build();
    /// tracing_subscriber::registry().with(console).with(layer).init();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Fails when the build lacks `--cfg tokio_unstable` or the address is taken.
    #[cfg(feature = "console")]
    #[cfg_attr(docsrs, doc(cfg(feature = "console")))]
    pub fn console_layer<S>(&self) -> Result<impl Layer<S>, InitError>
    where
        S: tracing_core::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        crate::console::layer(&self.config.console)
    }

    /// Whether [`Builder::try_init`] (and [`crate::init`]) serves `/metrics`. Default on with
    /// the `prometheus` feature.
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn metrics(mut self, serve: bool) -> Self {
        self.config.metrics.serve = serve;
        self
    }

    /// Where `/metrics` is served. Default [`DEFAULT_METRICS_ADDR`], or [`ENV_METRICS_ADDR`]
    /// when [`Builder::with_default_env`] was called.
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn metrics_addr(mut self, addr: std::net::SocketAddr) -> Self {
        self.config.metrics.addr = addr;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env;

    #[test]
    fn variables_reach_the_builders_configuration() {
        let b = Builder::default()
            .threshold(Duration::from_millis(3))
            .with_env(test_env(&[(ENV_THRESHOLD, "25ms")]))
            .unwrap();
        assert_eq!(b.config.threshold, Duration::from_millis(25));
        let err = Builder::default()
            .with_env(test_env(&[(ENV_MAX_SITES, "0")]))
            .unwrap_err();
        assert_eq!(err.variable(), ENV_MAX_SITES);
    }

    #[test]
    fn setters_clamp_to_the_documented_bounds() {
        let b = Builder::default()
            .max_sites(0)
            .tick(Duration::ZERO)
            .log_interval(Duration::ZERO)
            .log_max_bytes(1);
        assert_eq!(b.config.max_sites, 1);
        assert_eq!(b.config.tick, MIN_TICK);
        assert_eq!(b.config.log_interval, MIN_LOG_INTERVAL);
        assert_eq!(b.config.log_max_bytes, MIN_LOG_MAX_BYTES);
    }
}
