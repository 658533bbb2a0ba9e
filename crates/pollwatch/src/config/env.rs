//! Reading variables: their text, addresses, and the error that names a bad one.

use std::ffi::OsString;
use std::fmt;

/// Looks a variable up: the process environment, or a test's stand-in.
pub(crate) type Lookup<'a> = dyn Fn(&str) -> Option<OsString> + 'a;

/// The trimmed text of variable `name`, if set; an error naming it if it is not UTF-8.
pub(crate) fn env_text(
    lookup: &Lookup<'_>,
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
#[cfg(any(feature = "console", feature = "prometheus"))]
pub(crate) fn env_socket_addr(
    lookup: &Lookup<'_>,
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

/// A duration in variable `name` (`1s`, `250ms`).
#[cfg(feature = "console")]
pub(crate) fn parse_duration(
    name: &'static str,
    value: &str,
) -> Result<std::time::Duration, ConfigError> {
    humantime::parse_duration(value)
        .map_err(|e| ConfigError::new(name, value, &format!("is not a duration ({e}); e.g. `1s`")))
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

    /// The bad value, whole (the error's message shows at most its first 100 characters).
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// The most characters of a bad value an error message shows; longer values are cut there and
/// their length given.
const SHOWN_CHARS: usize = 100;

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value.char_indices().nth(SHOWN_CHARS) {
            None => write!(f, "{}={:?} {}", self.variable, self.value, self.problem),
            Some((cut, _)) => write!(
                f,
                "{}={:?}... ({} bytes) {}",
                self.variable,
                &self.value[..cut],
                self.value.len(),
                self.problem
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A stand-in for the process environment in unit tests.
#[cfg(test)]
pub(crate) fn test_env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| OsString::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_is_cut_in_the_message_but_kept_whole() {
        let long = "é".repeat(50_000);
        let err = ConfigError::new("POLLWATCH_THRESHOLD", &long, "is not a duration");
        let text = err.to_string();
        assert!(text.len() < 300, "{}", text.len());
        assert!(text.starts_with("POLLWATCH_THRESHOLD=\"éé"), "{text}");
        assert!(
            text.ends_with("\"... (100000 bytes) is not a duration"),
            "{text}"
        );
        assert_eq!(err.value(), long);
        let short = ConfigError::new("POLLWATCH_THRESHOLD", "fast", "is not a duration");
        assert_eq!(
            short.to_string(),
            "POLLWATCH_THRESHOLD=\"fast\" is not a duration"
        );
    }
}
