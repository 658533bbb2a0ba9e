//! Every variable pollwatch reads, given empty, blank, garbage, non-UTF-8, negative, zero,
//! overflowing, absurd-duration, 100 KB, unusable-path, bad-address and forbidden-signal
//! values: reading the environment never panics, and each value is either an error naming the
//! variable and showing the value (at most its first 100 characters), or accepted because it
//! is usable as it is (the table in `accepted`). A bad value given to `pollwatch::try_init`
//! is returned as that error with nothing installed: `try_init` succeeds afterwards.
//! (Its own test binary, with one test: it changes the process environment.)

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use pollwatch::{Builder, InitError};

/// Every variable pollwatch reads, with the features this build has.
const VARIABLES: &[&str] = &[
    "POLLWATCH_THRESHOLD",
    "POLLWATCH_REPORT_DIR",
    "POLLWATCH_MAX_SITES",
    "POLLWATCH_BACKTRACE",
    "POLLWATCH_SIGNAL",
    #[cfg(feature = "prometheus")]
    "POLLWATCH_METRICS_ADDR",
    #[cfg(feature = "console")]
    "TOKIO_CONSOLE_BIND",
    #[cfg(feature = "console")]
    "TOKIO_CONSOLE_RETENTION",
    #[cfg(feature = "console")]
    "TOKIO_CONSOLE_PUBLISH_INTERVAL",
    #[cfg(feature = "console")]
    "TOKIO_CONSOLE_RECORD_PATH",
    #[cfg(feature = "console")]
    "TOKIO_CONSOLE_BUFFER_CAPACITY",
];

/// A regular file, so that a path under it cannot be a directory or a file.
fn regular_file() -> PathBuf {
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("pollwatch-env-file-{}", std::process::id()));
    std::fs::write(&file, b"").unwrap();
    file
}

/// The values every variable is given.
fn values(file: &std::path::Path) -> Vec<OsString> {
    let mut values: Vec<OsString> = [
        "",
        "   ",
        "\t\n",
        "ten millis",
        "💥",
        "-1",
        "0",
        "18446744073709551615",
        "99999999999999999999999",
        "1000000000h",
        "0ns",
        "1e9s",
        "-5ms",
        "500000000000y",
        "256.0.0.1:1",
        ":::",
        "localhost:99999",
        "9",
        "11",
        "19",
        "64",
        "65",
        "SIGKILL",
        "SIGRTMIN+99",
        "SIGRTMIN+2147483647",
        "SIGRTMIN+-2147483648",
        "/proc/self/mem/reports",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    values.push(OsString::from_vec(vec![b'1', 0xff, 0xfe, b's']));
    values.push(OsString::from("7".repeat(100_000)));
    // Three bytes a character: a cut at byte 100 would split one (and panic).
    values.push(OsString::from("€".repeat(101)));
    values.push(file.join("reports").into_os_string());
    values
}

/// Whether `variable` accepts `value` (trimmed, UTF-8): only values that are usable as they
/// are. Every other value must be an error.
fn accepted(variable: &str, value: &str) -> bool {
    match variable {
        // Any non-empty path is a path: one that cannot be written fails in `try_init`
        // (below), and while running it is retried each tick.
        "POLLWATCH_REPORT_DIR" | "TOKIO_CONSOLE_RECORD_PATH" => !value.is_empty(),
        "POLLWATCH_BACKTRACE" => value == "0",
        // A count in the documented range, never clamped silently.
        "POLLWATCH_MAX_SITES" => value.parse().is_ok_and(|n: u64| (1..=65_536).contains(&n)),
        "TOKIO_CONSOLE_BUFFER_CAPACITY" => {
            value.parse().is_ok_and(|n: u64| (1..=1 << 24).contains(&n))
        }
        // A realtime signal of this platform (SIGRTMAX is 64 on Linux); never 9 (SIGKILL),
        // 11 (SIGSEGV) or 19 (SIGSTOP).
        "POLLWATCH_SIGNAL" => pollwatch_capture::realtime_signals()
            .is_some_and(|realtime| value.parse().is_ok_and(|n| realtime.contains(&n))),
        // Keeping closed tasks for no time, or for ever, is what the value says (console-subscriber
        // only compares it with how long ago a task closed).
        "TOKIO_CONSOLE_RETENTION" => ["0", "0ns", "1000000000h", "500000000000y"].contains(&value),
        _ => false,
    }
}

/// Reads the environment with only `variable` set to `value`: never a panic.
fn read_env(
    variable: &str,
    value: &OsString,
) -> Result<pollwatch::Builder, pollwatch::config::ConfigError> {
    for v in VARIABLES {
        std::env::remove_var(v);
    }
    std::env::set_var(variable, value);
    catch_unwind(AssertUnwindSafe(|| Builder::new().with_default_env()))
        .unwrap_or_else(|_| panic!("{variable}={value:?}: reading the environment panicked"))
}

/// The error names `variable`, and shows `value` as pollwatch read it, cut at 100 characters.
fn check_error(e: &pollwatch::config::ConfigError, variable: &str, value: &OsString) {
    let text = e.to_string();
    let shown = match value.to_str() {
        Some(s) => s.trim().to_owned(),
        None => value.to_string_lossy().into_owned(),
    };
    assert_eq!(e.variable(), variable, "{text}");
    assert_eq!(e.value(), shown, "{variable}: {text}");
    match shown.char_indices().nth(100) {
        None => assert!(
            text.starts_with(&format!("{variable}={shown:?} ")),
            "{variable}={value:?}: {text}"
        ),
        Some((cut, _)) => assert!(
            text.starts_with(&format!(
                "{variable}={:?}... ({} bytes) ",
                &shown[..cut],
                shown.len()
            )),
            "{variable}={value:?}: {text}"
        ),
    }
    let chars = text.chars().count();
    assert!(chars < 400, "{variable}: {chars} characters: {text}");
}

/// `try_init` with only `variable` set to `value`: the config error naming it.
fn try_init_fails(variable: &str, value: &str) {
    for v in VARIABLES {
        std::env::remove_var(v);
    }
    std::env::set_var(variable, value);
    match pollwatch::try_init() {
        Err(InitError::Config(e)) => assert_eq!(e.variable(), variable, "{e}"),
        Err(e) => panic!("{variable}={value:?}: the wrong error: {e}"),
        Ok(_) => panic!("{variable}={value:?}: installed"),
    }
}

/// `try_init` from the environment with the outputs this build cannot start here turned off
/// (the console feed needs `--cfg tokio_unstable`) and `/metrics` on a free port.
fn try_init_here() -> Result<pollwatch::Guard, InitError> {
    let builder = Builder::new().with_default_env()?;
    #[cfg(feature = "console")]
    let builder = builder.console(false);
    #[cfg(feature = "prometheus")]
    let builder = builder.metrics_addr("127.0.0.1:0".parse().unwrap());
    builder.try_init()
}

#[test]
fn every_value_of_every_variable_is_an_error_naming_it_or_usable() {
    let file = regular_file();
    let mut accepted_values = 0;
    for &variable in VARIABLES {
        for value in values(&file) {
            let text = value.to_str().map(str::trim);
            match read_env(variable, &value) {
                Err(e) => {
                    assert!(
                        !text.is_some_and(|t| accepted(variable, t)),
                        "{variable}={value:?} is usable, but rejected: {e}"
                    );
                    check_error(&e, variable, &value);
                }
                Ok(_) => {
                    assert!(
                        text.is_some_and(|t| accepted(variable, t)),
                        "{variable}={value:?} was accepted"
                    );
                    accepted_values += 1;
                }
            }
        }
    }
    assert!(accepted_values > 0);

    // Values taken in full when usable.
    for (variable, value) in [
        ("POLLWATCH_THRESHOLD", " 250us "),
        ("POLLWATCH_MAX_SITES", "65536"),
        ("POLLWATCH_BACKTRACE", "ALWAYS"),
        ("POLLWATCH_SIGNAL", "SIGRTMIN+2"),
        #[cfg(feature = "prometheus")]
        ("POLLWATCH_METRICS_ADDR", "[::1]:0"),
        #[cfg(feature = "console")]
        ("TOKIO_CONSOLE_BIND", "localhost:6669"),
        #[cfg(feature = "console")]
        ("TOKIO_CONSOLE_PUBLISH_INTERVAL", "1h"),
        #[cfg(feature = "console")]
        ("TOKIO_CONSOLE_BUFFER_CAPACITY", "16777216"),
    ] {
        if let Err(e) = read_env(variable, &OsString::from(value)) {
            panic!("{variable}={value:?} is usable: {e}");
        }
    }

    // Through `try_init`: the error, and nothing installed.
    try_init_fails("POLLWATCH_THRESHOLD", "0ns");
    try_init_fails("POLLWATCH_THRESHOLD", "1000000000h");
    try_init_fails("POLLWATCH_SIGNAL", "SIGRTMIN+2147483647");
    try_init_fails("POLLWATCH_SIGNAL", "19");
    try_init_fails("POLLWATCH_MAX_SITES", "18446744073709551615");
    #[cfg(feature = "prometheus")]
    try_init_fails("POLLWATCH_METRICS_ADDR", "localhost:99999");
    #[cfg(feature = "console")]
    try_init_fails("TOKIO_CONSOLE_BUFFER_CAPACITY", "18446744073709551615");
    #[cfg(feature = "console")]
    try_init_fails("TOKIO_CONSOLE_PUBLISH_INTERVAL", "0ns");
    for v in VARIABLES {
        std::env::remove_var(v);
    }
    for unusable in [
        file.join("reports"),
        PathBuf::from("/proc/self/mem/reports"),
    ] {
        std::env::set_var("POLLWATCH_REPORT_DIR", &unusable);
        match try_init_here() {
            Err(e @ InitError::ReportDir { .. }) => {
                assert!(e.to_string().contains("POLLWATCH_REPORT_DIR"), "{e}")
            }
            Err(e) => panic!("{}: the wrong error: {e}", unusable.display()),
            Ok(_) => panic!("{}: installed", unusable.display()),
        }
    }

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("pollwatch-env-reports-{}", std::process::id()));
    std::env::set_var("POLLWATCH_REPORT_DIR", &dir);
    let guard = try_init_here().expect("installs once the environment is clean");
    drop(guard);
    assert!(dir.join("report.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_file(&file).unwrap();
}
