//! Defaults, bounds and environment variables: every setting of [`crate::Builder`] has its
//! default here, and [`crate::Builder::with_default_env`] (which [`crate::init`] and
//! [`crate::runtime`] call) reads the `ENV_*` variables. A variable that is set but invalid is
//! a [`ConfigError`] naming it.

#[cfg(feature = "console")]
mod console;
#[cfg(any(feature = "prometheus", feature = "metrics", feature = "opentelemetry"))]
mod buckets;
mod env;
#[cfg(feature = "prometheus")]
mod metrics;

use std::path::PathBuf;
use std::time::Duration;

#[cfg(any(feature = "prometheus", feature = "metrics", feature = "opentelemetry"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "prometheus", feature = "metrics", feature = "opentelemetry")))
)]
pub use buckets::POLL_DURATION_BUCKETS;
#[cfg(feature = "console")]
pub(crate) use console::ConsoleConfig;
#[cfg(all(feature = "console", test))]
pub(crate) use console::ENV_RECORD_PATH;
#[cfg(feature = "console")]
#[cfg_attr(docsrs, doc(cfg(feature = "console")))]
pub use console::{DEFAULT_CONSOLE_BIND, ENV_CONSOLE_BIND};
#[cfg(test)]
pub(crate) use env::test_env;
pub use env::ConfigError;
use env::{env_text, Lookup};
#[cfg(feature = "prometheus")]
pub(crate) use metrics::MetricsConfig;
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub use metrics::{DEFAULT_METRICS_ADDR, ENV_METRICS_ADDR};

/// The target of every event and span pollwatch emits (filter on it to route pollwatch's
/// warnings).
pub const TARGET: &str = "pollwatch";

/// The default slow-poll threshold: 10 ms.
///
/// A healthy poll runs for microseconds (tokio's guidance is 10–100 µs between `.await`s).
/// 10 ms is two to three orders of magnitude above that, so scheduler preemption, page faults
/// and a noisy virtual machine do not raise false alarms, yet it is short enough to catch what
/// users feel: every task queued behind a held worker waits for the whole poll, so a 10 ms
/// hold adds 10 ms to their latency. Typical mistakes (a `std::fs` read of a cold file, a
/// blocking HTTP call, `std::thread::sleep`) take 10 ms and more.
pub const DEFAULT_THRESHOLD: Duration = Duration::from_millis(10);

/// The longest accepted threshold.
const MAX_THRESHOLD: Duration = Duration::from_secs(3600);

/// The default bound on distinct spawn sites: 1,024. Tasks from further sites are counted in
/// one overflow site.
pub const DEFAULT_MAX_SITES: usize = 1024;

/// The default number of task names kept apart at one spawn location (see
/// [`Builder::names_per_location`](crate::Builder::names_per_location)).
pub const DEFAULT_NAMES_PER_LOCATION: usize = 8;

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

/// The smallest accepted [`crate::Builder::log_max_bytes`].
pub(crate) const MIN_LOG_MAX_BYTES: u64 = 4096;

/// The shortest interval of the interval log, and the shortest flush period.
pub const MIN_LOG_INTERVAL: Duration = Duration::from_millis(10);

/// The default interval at which pollwatch's reporter thread picks up finished slow polls.
pub const DEFAULT_TICK: Duration = Duration::from_millis(5);

/// The shortest accepted tick.
pub const MIN_TICK: Duration = Duration::from_millis(1);

/// How long after installation pollwatch waits for a first task before explaining what in
/// the setup hides tokio's task spans.
pub const DEFAULT_SETUP_CHECK_AFTER: Duration = Duration::from_secs(3);

/// The default number of warnings a blocking line (spawn site and call site) may emit per
/// minute.
pub const DEFAULT_STALL_WARNINGS_PER_MINUTE: u32 = 5;

/// How many sites the text report lists.
pub const TEXT_REPORT_TOP_SITES: usize = pollwatch_report::text::TOP_SITES;

/// The fmt layer's filter when `RUST_LOG` is not set.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// Whether `init()`'s log lines on stderr carry ANSI colours: only when stderr is a terminal
/// and `NO_COLOR` is unset or empty (<https://no-color.org>), so a log file or journald gets
/// plain text.
pub(crate) fn log_colours() -> bool {
    use std::io::IsTerminal;
    colours_for(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// [`log_colours`] for a stderr that is a terminal or not and a `NO_COLOR` value.
fn colours_for(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The environment variable that turns stack capture `on` (default) or `off`.
pub const ENV_BACKTRACE: &str = "POLLWATCH_BACKTRACE";
/// The environment variable for the capture signal: `SIGRTMIN+N` or a signal number.
pub const ENV_SIGNAL: &str = "POLLWATCH_SIGNAL";
/// The environment variable for the threshold, a duration such as `10ms`.
pub const ENV_THRESHOLD: &str = "POLLWATCH_THRESHOLD";
/// The environment variable for the report directory.
pub const ENV_REPORT_DIR: &str = "POLLWATCH_REPORT_DIR";
/// The environment variable for the site bound.
pub const ENV_MAX_SITES: &str = "POLLWATCH_MAX_SITES";

/// Every setting of one pollwatch layer.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) threshold: Duration,
    pub(crate) max_sites: usize,
    pub(crate) names_per_location: usize,
    pub(crate) report_dir: PathBuf,
    /// Whether the report directory is kept up to date while the application runs.
    pub(crate) write_while_running: bool,
    pub(crate) flush_every: Duration,
    pub(crate) log_interval: Duration,
    pub(crate) log_max_bytes: u64,
    pub(crate) tick: Duration,
    pub(crate) setup_check_after: Duration,
    pub(crate) backtraces: bool,
    /// Whether capture signals a thread in a call the signal interrupts.
    pub(crate) interrupt_any_call: bool,
    /// The capture signal, when not the default.
    pub(crate) signal: Option<i32>,
    pub(crate) inspect_threads: bool,
    pub(crate) stall_warnings_per_minute: u32,
    #[cfg(feature = "console")]
    pub(crate) console: ConsoleConfig,
    #[cfg(feature = "prometheus")]
    pub(crate) metrics: MetricsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            max_sites: DEFAULT_MAX_SITES,
            names_per_location: DEFAULT_NAMES_PER_LOCATION,
            report_dir: PathBuf::from(DEFAULT_REPORT_DIR),
            write_while_running: false,
            flush_every: DEFAULT_FLUSH_EVERY,
            log_interval: DEFAULT_LOG_INTERVAL,
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
            tick: DEFAULT_TICK,
            setup_check_after: DEFAULT_SETUP_CHECK_AFTER,
            backtraces: true,
            interrupt_any_call: false,
            signal: None,
            inspect_threads: true,
            stall_warnings_per_minute: DEFAULT_STALL_WARNINGS_PER_MINUTE,
            #[cfg(feature = "console")]
            console: ConsoleConfig::default(),
            #[cfg(feature = "prometheus")]
            metrics: MetricsConfig::default(),
        }
    }
}

impl Config {
    /// The threshold in nanoseconds, as the poll path compares it.
    pub(crate) fn threshold_ns(&self) -> u64 {
        u64::try_from(self.threshold.as_nanos()).unwrap_or(u64::MAX)
    }

    /// The site bound as a site id (it is at most [`MAX_SITES_LIMIT`]).
    pub(crate) fn max_sites_u32(&self) -> u32 {
        u32::try_from(self.max_sites).unwrap_or(u32::MAX - 1)
    }

    /// Applies the variables `lookup` finds (the process environment, or a test's): every
    /// `POLLWATCH_*` variable, and with the features on, console-subscriber's
    /// `TOKIO_CONSOLE_*` and `POLLWATCH_METRICS_ADDR`. A set but invalid value is an error
    /// naming the variable.
    pub(crate) fn with_env(mut self, lookup: &Lookup<'_>) -> Result<Self, ConfigError> {
        let text = |name: &'static str| env_text(lookup, name);
        if let Some(value) = text(ENV_THRESHOLD)? {
            self.threshold = parse_threshold(&value)?;
        }
        if let Some(value) = text(ENV_REPORT_DIR)? {
            if value.is_empty() {
                return Err(ConfigError::new(ENV_REPORT_DIR, &value, "is empty"));
            }
            self.report_dir = PathBuf::from(value);
            self.write_while_running = true;
        }
        if let Some(value) = text(ENV_SIGNAL)? {
            self.signal = Some(parse_signal(&value)?);
        }
        if let Some(value) = text(ENV_BACKTRACE)? {
            (self.backtraces, self.interrupt_any_call) = parse_backtrace(&value)?;
        }
        if let Some(value) = text(ENV_MAX_SITES)? {
            self.max_sites = parse_max_sites(&value)?;
        }
        #[cfg(feature = "console")]
        {
            self.console = self.console.with_env(lookup)?;
        }
        #[cfg(feature = "prometheus")]
        {
            self.metrics = self.metrics.with_env(lookup)?;
        }
        Ok(self)
    }
}

fn parse_threshold(value: &str) -> Result<Duration, ConfigError> {
    let threshold = humantime::parse_duration(value).map_err(|e| {
        ConfigError::new(
            ENV_THRESHOLD,
            value,
            &format!("is not a duration ({e}); write it like `10ms`, `250us` or `1s`"),
        )
    })?;
    if threshold > MAX_THRESHOLD {
        return Err(ConfigError::new(ENV_THRESHOLD, value, "is above one hour"));
    }
    if threshold.is_zero() {
        return Err(ConfigError::new(
            ENV_THRESHOLD,
            value,
            "is zero, which would make every poll slow; write it like `10ms`, `250us` or `1s`",
        ));
    }
    Ok(threshold)
}

/// `POLLWATCH_SIGNAL`: `SIGRTMIN+N` or a number, a realtime signal of this platform.
fn parse_signal(value: &str) -> Result<i32, ConfigError> {
    let bad = |problem: &str| ConfigError::new(ENV_SIGNAL, value, problem);
    let Some(realtime) = pollwatch_capture::realtime_signals() else {
        return Err(bad(
            "names a signal, but stacks are not captured with signals here",
        ));
    };
    let text = value.trim();
    let signal = match text.strip_prefix("SIGRTMIN") {
        Some("") => Some(*realtime.start()),
        Some(offset) => offset
            .strip_prefix('+')
            .and_then(|n| n.parse::<i32>().ok())
            .and_then(|n| realtime.start().checked_add(n)),
        None => text.parse::<i32>().ok(),
    };
    match signal {
        Some(signal) if realtime.contains(&signal) => Ok(signal),
        Some(_) => Err(bad(&format!(
            "is not a realtime signal ({}..={}, SIGRTMIN+0..SIGRTMIN+{})",
            realtime.start(),
            realtime.end(),
            realtime.end() - realtime.start()
        ))),
        None => Err(bad("is not SIGRTMIN+N or a signal number")),
    }
}

/// `POLLWATCH_BACKTRACE`: `on`/`off`, or `always` (also calls a signal would interrupt).
fn parse_backtrace(value: &str) -> Result<(bool, bool), ConfigError> {
    if value.eq_ignore_ascii_case("always") {
        return Ok((true, true));
    }
    parse_on_off(ENV_BACKTRACE, value)
        .map(|on| (on, false))
        .map_err(|_| ConfigError::new(ENV_BACKTRACE, value, "is not on, off or always"))
}

fn parse_on_off(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "1" | "true" => Ok(true),
        "off" | "0" | "false" => Ok(false),
        _ => Err(ConfigError::new(name, value, "is neither `on` nor `off`")),
    }
}

fn parse_max_sites(value: &str) -> Result<usize, ConfigError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_SITES_LIMIT).contains(n))
        .ok_or_else(|| {
            ConfigError::new(
                ENV_MAX_SITES,
                value,
                &format!("is not a whole number from 1 to {MAX_SITES_LIMIT}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::test_env as env;
    use super::*;

    #[test]
    fn valid_variables_are_applied() {
        let c = Config::default()
            .with_env(&env(&[
                (ENV_THRESHOLD, "25ms"),
                (ENV_REPORT_DIR, "/tmp/x"),
                (ENV_MAX_SITES, "16"),
                (ENV_BACKTRACE, "off"),
            ]))
            .unwrap();
        assert!(!c.backtraces);
        assert_eq!(c.threshold, Duration::from_millis(25));
        assert_eq!(c.report_dir, PathBuf::from("/tmp/x"));
        assert!(c.write_while_running);
        assert_eq!(c.max_sites, 16);
    }

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colours_for(true, None));
        assert!(colours_for(true, Some(OsStr::new(""))));
        assert!(!colours_for(true, Some(OsStr::new("1"))));
        assert!(!colours_for(false, None));
    }

    #[test]
    fn unset_variables_keep_the_defaults() {
        let c = Config::default().with_env(&env(&[])).unwrap();
        assert_eq!(c.threshold, DEFAULT_THRESHOLD);
        assert_eq!(c.max_sites, DEFAULT_MAX_SITES);
        assert!(!c.write_while_running);
    }

    #[test]
    fn backtraces_may_interrupt_any_call_only_when_asked() {
        let c = Config::default()
            .with_env(&env(&[(ENV_BACKTRACE, "always")]))
            .unwrap();
        assert!(c.backtraces && c.interrupt_any_call);
        let c = Config::default()
            .with_env(&env(&[(ENV_BACKTRACE, "on")]))
            .unwrap();
        assert!(c.backtraces && !c.interrupt_any_call);
        assert!(!Config::default().interrupt_any_call);
        let err = Config::default()
            .with_env(&env(&[(ENV_BACKTRACE, "sometimes")]))
            .unwrap_err();
        assert!(err.to_string().contains("on, off or always"), "{err}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_capture_signal_is_a_realtime_one_named_either_way() {
        let rt = pollwatch_capture::realtime_signals().unwrap();
        let signal = |value: &str| Config::default().with_env(&env(&[(ENV_SIGNAL, value)]));
        assert_eq!(signal("SIGRTMIN+6").unwrap().signal, Some(rt.start() + 6));
        assert_eq!(signal("SIGRTMIN").unwrap().signal, Some(*rt.start()));
        assert_eq!(
            signal(&(rt.start() + 2).to_string()).unwrap().signal,
            Some(rt.start() + 2)
        );
        for bad in ["9", "SIGRTMIN+99", "SIGUSR1", "-3"] {
            let err = signal(bad).unwrap_err().to_string();
            assert!(err.contains(ENV_SIGNAL), "{bad}: {err}");
        }
        assert_eq!(Config::default().signal, None);
    }

    #[test]
    fn bad_values_are_errors_naming_the_variable() {
        for (name, value) in [
            (ENV_THRESHOLD, "10"),
            (ENV_THRESHOLD, "fast"),
            (ENV_THRESHOLD, "2h"),
            (ENV_THRESHOLD, "0ns"),
            (ENV_SIGNAL, "SIGRTMIN+2147483647"),
            (ENV_MAX_SITES, "0"),
            (ENV_MAX_SITES, "-3"),
            (ENV_MAX_SITES, "100000"),
            (ENV_REPORT_DIR, ""),
            (ENV_BACKTRACE, "maybe"),
        ] {
            let err = Config::default()
                .with_env(&env(&[(name, value)]))
                .unwrap_err();
            assert_eq!(err.variable(), name);
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }
}
