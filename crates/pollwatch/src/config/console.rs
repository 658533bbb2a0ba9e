//! The tokio-console settings (feature `console`): console-subscriber's own variables, read
//! without its panics.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::env::{env_socket_addr, env_text, parse_duration, ConfigError, Lookup};

/// The console feed's default port (console-subscriber's and tokio-console's).
macro_rules! console_port {
    () => {
        6669
    };
}

/// The address the console feed is served on unless [`ENV_CONSOLE_BIND`] or
/// [`Builder::console_addr`](crate::Builder::console_addr) says otherwise: console-subscriber's
/// and tokio-console's default.
pub const DEFAULT_CONSOLE_BIND: &str = concat!("127.0.0.1:", console_port!());

/// console-subscriber's variable for the feed's address (`HOST:PORT`), read by
/// [`Builder::with_default_env`](crate::Builder::with_default_env) with the feature on.
pub const ENV_CONSOLE_BIND: &str = "TOKIO_CONSOLE_BIND";

/// console-subscriber's variable for how long completed tasks and resources are kept.
pub(crate) const ENV_RETENTION: &str = "TOKIO_CONSOLE_RETENTION";
/// console-subscriber's variable for how often the feed publishes.
pub(crate) const ENV_PUBLISH_INTERVAL: &str = "TOKIO_CONSOLE_PUBLISH_INTERVAL";
/// console-subscriber's variable for a recording file.
pub(crate) const ENV_RECORD_PATH: &str = "TOKIO_CONSOLE_RECORD_PATH";
/// console-subscriber's variable for its event buffer.
pub(crate) const ENV_BUFFER_CAPACITY: &str = "TOKIO_CONSOLE_BUFFER_CAPACITY";

/// The shortest accepted [`ENV_PUBLISH_INTERVAL`]: console-subscriber's aggregator would spin
/// below it (and tokio's `interval` panics at zero).
const MIN_PUBLISH_INTERVAL: Duration = Duration::from_millis(1);
/// The longest accepted [`ENV_PUBLISH_INTERVAL`]: tokio-console would show nothing for longer,
/// and a period near `u64::MAX` seconds overflows the aggregator's `Instant` arithmetic.
const MAX_PUBLISH_INTERVAL: Duration = Duration::from_secs(3600);
/// The largest accepted [`ENV_BUFFER_CAPACITY`], 160 times console-subscriber's default:
/// tokio's bounded channel panics above `usize::MAX >> 3`.
const MAX_BUFFER_CAPACITY: usize = 1 << 24;

/// The console part of the configuration.
#[derive(Clone, Debug)]
pub(crate) struct ConsoleConfig {
    /// Whether `try_init` composes and serves the `ConsoleLayer`.
    pub(crate) serve: bool,
    pub(crate) addr: SocketAddr,
    pub(crate) retention: Option<Duration>,
    pub(crate) publish_interval: Option<Duration>,
    pub(crate) record_path: Option<PathBuf>,
    pub(crate) buffer_capacity: Option<usize>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            serve: true,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, console_port!())),
            retention: None,
            publish_interval: None,
            record_path: None,
            buffer_capacity: None,
        }
    }
}

impl ConsoleConfig {
    /// Reads console-subscriber's `TOKIO_CONSOLE_*` variables that are set. Unlike
    /// console-subscriber's own `with_default_env` (which panics), a bad value is an error
    /// naming the variable.
    pub(crate) fn with_env(mut self, lookup: &Lookup<'_>) -> Result<Self, ConfigError> {
        let text = |name: &'static str| env_text(lookup, name);
        if let Some(addr) = env_socket_addr(lookup, ENV_CONSOLE_BIND, DEFAULT_CONSOLE_BIND)? {
            self.addr = addr;
        }
        if let Some(value) = text(ENV_RETENTION)? {
            self.retention = Some(parse_duration(ENV_RETENTION, &value)?);
        }
        if let Some(value) = text(ENV_PUBLISH_INTERVAL)? {
            let interval = parse_duration(ENV_PUBLISH_INTERVAL, &value)?;
            if !(MIN_PUBLISH_INTERVAL..=MAX_PUBLISH_INTERVAL).contains(&interval) {
                return Err(ConfigError::new(
                    ENV_PUBLISH_INTERVAL,
                    &value,
                    "is not from 1ms to 1h",
                ));
            }
            self.publish_interval = Some(interval);
        }
        if let Some(value) = text(ENV_RECORD_PATH)? {
            if value.is_empty() {
                return Err(ConfigError::new(ENV_RECORD_PATH, &value, "is empty"));
            }
            self.record_path = Some(PathBuf::from(value));
        }
        if let Some(value) = text(ENV_BUFFER_CAPACITY)? {
            let capacity = value
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_BUFFER_CAPACITY).contains(n));
            self.buffer_capacity = Some(capacity.ok_or_else(|| {
                ConfigError::new(
                    ENV_BUFFER_CAPACITY,
                    &value,
                    &format!("is not a whole number from 1 to {MAX_BUFFER_CAPACITY}"),
                )
            })?);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_env as lookup;
    use super::*;

    #[test]
    fn console_variables_are_applied() {
        let config = ConsoleConfig::default()
            .with_env(&lookup(&[
                (ENV_CONSOLE_BIND, "127.0.0.1:7001"),
                (ENV_RETENTION, "10m"),
                (ENV_PUBLISH_INTERVAL, "250ms"),
                (ENV_BUFFER_CAPACITY, "1000"),
            ]))
            .unwrap();
        assert_eq!(config.addr, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(config.retention, Some(Duration::from_secs(600)));
        assert_eq!(config.publish_interval, Some(Duration::from_millis(250)));
        assert_eq!(config.buffer_capacity, Some(1000));
    }

    #[test]
    fn the_default_address_is_consoles() {
        let config = ConsoleConfig::default().with_env(&lookup(&[])).unwrap();
        assert_eq!(config.addr.to_string(), DEFAULT_CONSOLE_BIND);
        assert!(config.serve);
    }

    #[test]
    fn bad_console_values_are_errors_naming_the_variable() {
        for pairs in [
            &[(ENV_CONSOLE_BIND, "nowhere")][..],
            &[(ENV_RETENTION, "soon")][..],
            &[(ENV_PUBLISH_INTERVAL, "5")][..],
            &[(ENV_BUFFER_CAPACITY, "0")][..],
            &[(ENV_BUFFER_CAPACITY, "16777217")][..],
            &[(ENV_PUBLISH_INTERVAL, "0ns")][..],
            &[(ENV_PUBLISH_INTERVAL, "500000000000y")][..],
            &[(ENV_RECORD_PATH, " ")][..],
        ] {
            let err = ConsoleConfig::default()
                .with_env(&lookup(pairs))
                .unwrap_err();
            assert_eq!(err.variable(), pairs[0].0);
        }
    }
}
