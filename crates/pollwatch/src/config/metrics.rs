//! The `/metrics` settings (feature `prometheus`).

use std::net::{Ipv4Addr, SocketAddr};

use super::env::{env_socket_addr, ConfigError, Lookup};

/// The default `/metrics` port: the port OpenTelemetry's Prometheus exporter uses
/// (Prometheus itself listens on 9090).
macro_rules! metrics_port {
    () => {
        9464
    };
}

/// The address `/metrics` is served on unless [`ENV_METRICS_ADDR`] or
/// [`Builder::metrics_addr`](crate::Builder::metrics_addr) says otherwise: loopback only,
/// port 9464 (the port OpenTelemetry's Prometheus exporter uses; Prometheus itself listens on
/// 9090).
pub const DEFAULT_METRICS_ADDR: &str = concat!("127.0.0.1:", metrics_port!());

/// The environment variable for the `/metrics` address (`HOST:PORT`), read by
/// [`Builder::with_default_env`](crate::Builder::with_default_env) with the feature on.
pub const ENV_METRICS_ADDR: &str = "POLLWATCH_METRICS_ADDR";

/// The metrics part of the configuration.
#[derive(Clone, Debug)]
pub(crate) struct MetricsConfig {
    /// Whether `try_init` serves `/metrics`.
    pub(crate) serve: bool,
    pub(crate) addr: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            serve: true,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, metrics_port!())),
        }
    }
}

impl MetricsConfig {
    /// Reads [`ENV_METRICS_ADDR`] if it is set.
    pub(crate) fn with_env(mut self, lookup: &Lookup<'_>) -> Result<Self, ConfigError> {
        if let Some(addr) = env_socket_addr(lookup, ENV_METRICS_ADDR, DEFAULT_METRICS_ADDR)? {
            self.addr = addr;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_env as lookup;
    use super::*;

    #[test]
    fn the_address_variable_is_applied() {
        let config = MetricsConfig::default()
            .with_env(&lookup(&[(ENV_METRICS_ADDR, "127.0.0.1:7002")]))
            .unwrap();
        assert_eq!(config.addr, "127.0.0.1:7002".parse().unwrap());
        let config = MetricsConfig::default().with_env(&lookup(&[])).unwrap();
        assert_eq!(config.addr.to_string(), DEFAULT_METRICS_ADDR);
        assert!(config.serve);
    }

    #[test]
    fn a_bad_address_is_an_error_naming_the_variable() {
        for value in ["nowhere", "127.0.0.1", "127.0.0.1:99999", ""] {
            let err = MetricsConfig::default()
                .with_env(&lookup(&[(ENV_METRICS_ADDR, value)]))
                .unwrap_err();
            assert_eq!(err.variable(), ENV_METRICS_ADDR, "{value}");
        }
    }
}
