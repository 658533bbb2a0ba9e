//! Configuration: the [`Builder`], its documented defaults, and the `POLLWATCH_*` variables.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::handle::Handle;
use crate::layer::PollWatchLayer;

/// The default slow-poll threshold: 10 ms.
///
/// A healthy poll runs for microseconds (tokio's guidance is 10–100 µs between `.await`s).
/// 10 ms is two to three orders of magnitude above that, so scheduler preemption, page faults
/// and a noisy virtual machine do not raise false alarms, yet it is short enough to catch what
/// users feel: every task queued behind a held worker waits for the whole poll, so a 10 ms
/// hold adds 10 ms to their latency. Typical mistakes (a `std::fs` read of a cold file, a
/// blocking HTTP call, `std::thread::sleep`) take 10 ms and more.
pub const DEFAULT_THRESHOLD: Duration = Duration::from_millis(10);

/// The default bound on distinct spawn sites: 1,024. Tasks from further sites are counted in
/// one overflow site.
pub const DEFAULT_MAX_SITES: usize = 1024;

/// The largest accepted site bound.
pub const MAX_SITES_LIMIT: usize = 65_536;

/// The default directory [`crate::Guard`] writes the report to when dropped.
pub const DEFAULT_REPORT_DIR: &str = "target/pollwatch";

/// How often the reports in the report directory are rewritten while the application runs.
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_secs(10);

/// The length of one interval of the interval log (`report.hlog`).
pub const DEFAULT_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// How large the interval log may grow before it is rolled over to `report.1.hlog` (replacing
/// the one before), so the report directory stays under about twice this.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 64 << 20;

/// The shortest interval of the interval log, and the shortest flush period.
pub const MIN_LOG_INTERVAL: Duration = Duration::from_millis(10);

/// The default interval at which pollwatch's reporter thread picks up finished slow polls.
pub const DEFAULT_TICK: Duration = Duration::from_millis(5);

/// The shortest accepted tick.
pub const MIN_TICK: Duration = Duration::from_millis(1);

/// How long after installation pollwatch waits for a first task before explaining what in
/// the setup hides tokio's task spans.
pub const DEFAULT_SETUP_CHECK_AFTER: Duration = Duration::from_secs(3);

pub use crate::stall::rate_limit::DEFAULT_STALL_WARNINGS_PER_MINUTE;

/// The environment variable that turns stack capture `on` (default) or `off`.
pub const ENV_BACKTRACE: &str = "POLLWATCH_BACKTRACE";

/// The environment variable for the threshold, a duration such as `10ms`.
pub const ENV_THRESHOLD: &str = "POLLWATCH_THRESHOLD";
/// The environment variable for the report directory.
pub const ENV_REPORT_DIR: &str = "POLLWATCH_REPORT_DIR";
/// The environment variable for the site bound.
pub const ENV_MAX_SITES: &str = "POLLWATCH_MAX_SITES";

/// The entry point: `PollWatch::builder()`.
#[derive(Debug)]
pub struct PollWatch {
    _private: (),
}

impl PollWatch {
    /// A builder with every setting at its default.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

/// Configures and builds a [`PollWatchLayer`] and its [`Handle`].
#[derive(Clone, Debug)]
#[must_use = "a Builder does nothing until `build` or `try_init` is called"]
pub struct Builder {
    pub(crate) threshold: Duration,
    pub(crate) max_sites: usize,
    pub(crate) report_dir: PathBuf,
    /// Whether the report directory is kept up to date while the application runs.
    pub(crate) write_while_running: bool,
    pub(crate) flush_every: Duration,
    pub(crate) log_interval: Duration,
    pub(crate) log_max_bytes: u64,
    pub(crate) tick: Duration,
    pub(crate) setup_check_after: Duration,
    pub(crate) backtraces: bool,
    pub(crate) inspect_threads: bool,
    pub(crate) stall_warnings_per_minute: u32,
    /// The tokio-console settings (feature `console`; empty without it).
    pub(crate) console: crate::console::Config,
    /// The `/metrics` settings (feature `prometheus`; empty without it).
    pub(crate) metrics: crate::metrics::Config,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            max_sites: DEFAULT_MAX_SITES,
            report_dir: PathBuf::from(DEFAULT_REPORT_DIR),
            write_while_running: false,
            flush_every: DEFAULT_FLUSH_EVERY,
            log_interval: DEFAULT_LOG_INTERVAL,
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
            tick: DEFAULT_TICK,
            setup_check_after: DEFAULT_SETUP_CHECK_AFTER,
            backtraces: true,
            inspect_threads: true,
            stall_warnings_per_minute: DEFAULT_STALL_WARNINGS_PER_MINUTE,
            console: crate::console::Config::default(),
            metrics: crate::metrics::Config::default(),
        }
    }
}

impl Builder {
    /// A poll that holds its thread for longer than this is slow: counted, and reported as a
    /// WARN event. Default [`DEFAULT_THRESHOLD`].
    pub fn threshold(mut self, threshold: Duration) -> Self {
        self.threshold = threshold;
        self
    }

    /// The most spawn sites kept apart (clamped to 1..=[`MAX_SITES_LIMIT`]). Default
    /// [`DEFAULT_MAX_SITES`].
    pub fn max_sites(mut self, max_sites: usize) -> Self {
        self.max_sites = max_sites.clamp(1, MAX_SITES_LIMIT);
        self
    }

    /// Where the report files go, kept up to date while the application runs: the interval
    /// log `report.hlog` gains an interval every [`log_interval`](Self::log_interval), and
    /// `report.json` and `report.txt` are rewritten every [`flush_every`](Self::flush_every)
    /// and when [`crate::Guard`] is dropped. Default [`DEFAULT_REPORT_DIR`], written while
    /// running only when set here, by `POLLWATCH_REPORT_DIR` or by [`crate::init`].
    pub fn report_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.report_dir = dir.into();
        self.write_while_running = true;
        self
    }

    /// Whether to keep the report directory up to date while the application runs (see
    /// [`report_dir`](Self::report_dir)). Off, reports are written only by
    /// [`Handle::write_report`](crate::Handle::write_report) and by the guard.
    pub fn write_while_running(mut self, on: bool) -> Self {
        self.write_while_running = on;
        self
    }

    /// How often `report.json` and `report.txt` are rewritten while running (at least
    /// [`MIN_LOG_INTERVAL`]), so a crash loses at most this much. Default
    /// [`DEFAULT_FLUSH_EVERY`].
    pub fn flush_every(mut self, every: Duration) -> Self {
        self.flush_every = every.max(MIN_LOG_INTERVAL);
        self
    }

    /// The length of one interval of the interval log `report.hlog` (at least
    /// [`MIN_LOG_INTERVAL`]). Default [`DEFAULT_LOG_INTERVAL`].
    pub fn log_interval(mut self, interval: Duration) -> Self {
        self.log_interval = interval.max(MIN_LOG_INTERVAL);
        self
    }

    /// How large `report.hlog` may grow (at least 4 KiB) before it is renamed to
    /// `report.1.hlog` (replacing the previous one) and a new log begins, its intervals still
    /// timed from the same base. Default [`DEFAULT_LOG_MAX_BYTES`], so a service left running
    /// keeps at most about twice this on disk.
    pub fn log_max_bytes(mut self, bytes: u64) -> Self {
        self.log_max_bytes = bytes.max(4096);
        self
    }

    /// How often the watchdog looks for stuck polls and the reporter for finished slow polls
    /// (at least [`MIN_TICK`]). Default [`DEFAULT_TICK`].
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick.max(MIN_TICK);
        self
    }

    /// How long to wait for a first task before explaining the setup problem that hides
    /// tokio's task spans. Default [`DEFAULT_SETUP_CHECK_AFTER`].
    pub fn setup_check_after(mut self, after: Duration) -> Self {
        self.setup_check_after = after;
        self
    }

    /// Whether the watchdog has a stuck thread record its stack (Linux: a realtime signal,
    /// `SA_RESTART`). Default on. Off, no signal is ever installed or sent; stalls are still
    /// caught, with the thread's state and syscall but no call site. See the README on
    /// `EINTR`.
    pub fn backtraces(mut self, on: bool) -> Self {
        self.backtraces = on;
        self
    }

    /// Whether the watchdog reads what a stuck thread is doing (Linux `/proc`) and captures
    /// its stack. Default on. Off, stalls are still caught and reported with their task, site
    /// and duration, as on platforms without `/proc`.
    pub fn inspect_threads(mut self, on: bool) -> Self {
        self.inspect_threads = on;
        self
    }

    /// How many stall warnings one site may emit per minute; further stalls are counted and
    /// listed in the report but not warned about. Default
    /// [`DEFAULT_STALL_WARNINGS_PER_MINUTE`].
    pub fn stall_warnings_per_minute(mut self, n: u32) -> Self {
        self.stall_warnings_per_minute = n;
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
        let text = |name: &'static str| env_text(&lookup, name);
        if let Some(value) = text(ENV_THRESHOLD)? {
            let threshold = humantime::parse_duration(&value).map_err(|e| {
                ConfigError::new(
                    ENV_THRESHOLD,
                    &value,
                    &format!("is not a duration ({e}); write it like `10ms`, `250us` or `1s`"),
                )
            })?;
            if threshold > Duration::from_secs(3600) {
                return Err(ConfigError::new(ENV_THRESHOLD, &value, "is above one hour"));
            }
            self.threshold = threshold;
        }
        if let Some(value) = text(ENV_REPORT_DIR)? {
            if value.is_empty() {
                return Err(ConfigError::new(ENV_REPORT_DIR, &value, "is empty"));
            }
            self.report_dir = PathBuf::from(value);
            self.write_while_running = true;
        }
        if let Some(value) = text(ENV_BACKTRACE)? {
            self.backtraces = match value.to_ascii_lowercase().as_str() {
                "on" | "1" | "true" => true,
                "off" | "0" | "false" => false,
                _ => {
                    return Err(ConfigError::new(
                        ENV_BACKTRACE,
                        &value,
                        "is neither `on` nor `off`",
                    ))
                }
            };
        }
        if let Some(value) = text(ENV_MAX_SITES)? {
            let max_sites = value
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_SITES_LIMIT).contains(n))
                .ok_or_else(|| {
                    ConfigError::new(
                        ENV_MAX_SITES,
                        &value,
                        &format!("is not a whole number from 1 to {MAX_SITES_LIMIT}"),
                    )
                })?;
            self.max_sites = max_sites;
        }
        // Feature `console`: console-subscriber's `TOKIO_CONSOLE_*` variables.
        self.console = self.console.with_env(&lookup)?;
        // Feature `prometheus`: POLLWATCH_METRICS_ADDR.
        self.metrics = self.metrics.with_env(&lookup)?;
        Ok(self)
    }

    /// Builds the layer to add to a `tracing_subscriber::registry()` and the handle that
    /// reads its measurements. Starts pollwatch's reporter thread.
    pub fn build(self) -> (PollWatchLayer, Handle) {
        crate::shared::build(self)
    }
}

/// The trimmed text of variable `name`, if set; an error naming it if it is not UTF-8.
pub(crate) fn env_text(
    lookup: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    name: &'static str,
) -> Result<Option<String>, ConfigError> {
    match lookup(name) {
        None => Ok(None),
        Some(value) => value
            .into_string()
            .map(|s| Some(s.trim().to_owned()))
            .map_err(|raw| ConfigError::new(name, &raw.to_string_lossy(), "is not UTF-8")),
    }
}

/// The address in variable `name`, if set (`HOST:PORT`, resolved); an error naming it, with
/// `example`, if it is not one.
#[cfg_attr(
    not(any(feature = "console", feature = "prometheus")),
    allow(dead_code)
)]
pub(crate) fn env_socket_addr(
    lookup: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    name: &'static str,
    example: &str,
) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    use std::net::ToSocketAddrs;
    let Some(value) = env_text(lookup, name)? else {
        return Ok(None);
    };
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .map(Some)
        .ok_or_else(|| {
            ConfigError::new(
                name,
                &value,
                &format!("is not a HOST:PORT address, e.g. `{example}`"),
            )
        })
}

/// A configuration value that pollwatch cannot use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    variable: &'static str,
    value: String,
    problem: String,
}

impl ConfigError {
    pub(crate) fn new(variable: &'static str, value: &str, problem: &str) -> Self {
        Self {
            variable,
            value: value.to_owned(),
            problem: problem.to_owned(),
        }
    }

    /// The environment variable that holds the bad value.
    pub fn variable(&self) -> &'static str {
        self.variable
    }

    /// The bad value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?} {}", self.variable, self.value, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// A stand-in for the process environment in unit tests.
#[cfg(test)]
pub(crate) fn test_env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| std::ffi::OsString::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::test_env as env;
    use super::*;

    #[test]
    fn valid_variables_are_applied() {
        let b = Builder::default()
            .with_env(env(&[
                (ENV_THRESHOLD, "25ms"),
                (ENV_REPORT_DIR, "/tmp/x"),
                (ENV_MAX_SITES, "16"),
                (ENV_BACKTRACE, "off"),
            ]))
            .unwrap();
        assert!(!b.backtraces);
        assert_eq!(b.threshold, Duration::from_millis(25));
        assert_eq!(b.report_dir, PathBuf::from("/tmp/x"));
        assert_eq!(b.max_sites, 16);
    }

    #[test]
    fn unset_variables_keep_the_defaults() {
        let b = Builder::default().with_env(env(&[])).unwrap();
        assert_eq!(b.threshold, DEFAULT_THRESHOLD);
        assert_eq!(b.max_sites, DEFAULT_MAX_SITES);
    }

    #[test]
    fn bad_values_are_errors_naming_the_variable() {
        for (name, value) in [
            (ENV_THRESHOLD, "10"),
            (ENV_THRESHOLD, "fast"),
            (ENV_THRESHOLD, "2h"),
            (ENV_MAX_SITES, "0"),
            (ENV_MAX_SITES, "-3"),
            (ENV_MAX_SITES, "100000"),
            (ENV_REPORT_DIR, ""),
            (ENV_BACKTRACE, "maybe"),
        ] {
            let err = Builder::default()
                .with_env(env(&[(name, value)]))
                .unwrap_err();
            assert_eq!(err.variable(), name);
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }
}
