//! Every way of installing pollwatch leaves the application's disabled instrumentation as
//! disabled as it is without pollwatch: a `trace!` event and a `debug_span!` that the log
//! filter (`RUST_LOG`, default `info`) leaves out get the interest `never` (tracing never asks
//! about them again), no span is created, and an INFO event stays on.
//!
//! Each install path runs in a child process of its own (the global default subscriber can
//! be set once per process, and callsite interest is process-wide): this binary runs itself
//! with `--child PATH`. It has no test harness; it runs in every build and with every feature
//! (`console` adds console-subscriber's layer to what `init()` installs, `prometheus` the
//! `/metrics` endpoint).

use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use tracing_core::callsite::Callsite;
use tracing_core::field::FieldSet;
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_core::{Level, Metadata};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Every public way of installing pollwatch, and `plain`: the same logs without pollwatch.
const PATHS: &[&str] = &[
    "plain",
    "init",
    "try_init",
    "builder_init",
    "builder_try_init",
    "build_into_own_registry",
    "runtime",
];

/// A callsite that keeps the interest the subscriber gives it.
struct Probe {
    interest: AtomicU8,
    metadata: &'static Metadata<'static>,
}

impl Probe {
    /// The interest the global subscriber gives this callsite.
    fn interest(&'static self) -> &'static str {
        tracing_core::callsite::register(self);
        match self.interest.load(Relaxed) {
            1 => "never",
            2 => "sometimes",
            3 => "always",
            _ => "unregistered",
        }
    }
}

impl Callsite for Probe {
    fn set_interest(&self, interest: Interest) {
        let code = if interest.is_never() {
            1
        } else if interest.is_sometimes() {
            2
        } else {
            3
        };
        self.interest.store(code, Relaxed);
    }

    fn metadata(&self) -> &Metadata<'_> {
        self.metadata
    }
}

macro_rules! probe {
    ($name:ident, $level:expr, $kind:expr) => {
        static $name: Probe = Probe {
            interest: AtomicU8::new(0),
            metadata: &Metadata::new(
                stringify!($name),
                "app",
                $level,
                Some(file!()),
                Some(line!()),
                Some(module_path!()),
                FieldSet::new(&[], tracing_core::identify_callsite!(&$name)),
                $kind,
            ),
        };
    };
}

probe!(TRACE_EVENT, Level::TRACE, Kind::EVENT);
probe!(DEBUG_EVENT, Level::DEBUG, Kind::EVENT);
probe!(DEBUG_SPAN, Level::DEBUG, Kind::SPAN);
probe!(INFO_EVENT, Level::INFO, Kind::EVENT);

/// What the application's instrumentation looks like under the installed subscriber.
fn instrumentation() -> String {
    let span = tracing::debug_span!(target: "app", "request");
    let _entered = span.enter();
    format!(
        "trace event: {}, debug event: {}, debug span: {}, debug span created: {}, \
         trace enabled: {}, info event: {}",
        TRACE_EVENT.interest(),
        DEBUG_EVENT.interest(),
        DEBUG_SPAN.interest(),
        span.id().is_some(),
        tracing::enabled!(target: "app", Level::TRACE),
        // Enabled: `always` alone, `sometimes` beside another per-layer filter that leaves it
        // out (pollwatch's), which tracing then asks per event.
        match INFO_EVENT.interest() {
            "always" | "sometimes" => "enabled",
            other => other,
        },
    )
}

/// The logs `init()` installs, alone or with pollwatch's layer from `build()`.
fn own_logs() -> impl Layer<tracing_subscriber::Registry> {
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(EnvFilter::new("info"))
}

/// Whether `try_init` refuses in this build: with the `console` feature and without
/// `--cfg tokio_unstable` it cannot serve the feed, and installs nothing.
const TRY_INIT_REFUSES: bool = cfg!(all(feature = "console", not(tokio_unstable)));

/// What a refusing `try_init` prints; any other error fails the child.
fn refused(e: pollwatch::InitError) {
    assert!(
        TRY_INIT_REFUSES && matches!(e, pollwatch::InitError::ConsoleNeedsTokioUnstable),
        "try_init: {e}"
    );
    println!("refused: {e}");
}

/// Installs pollwatch the way `path` names, then prints [`instrumentation`].
fn child(path: &str) {
    let _guard = match path {
        "plain" => {
            tracing_subscriber::registry().with(own_logs()).init();
            None
        }
        "init" => Some(pollwatch::init()),
        "try_init" => match pollwatch::try_init() {
            Ok(guard) => Some(guard),
            Err(e) => return refused(e),
        },
        "builder_init" => Some(
            pollwatch::Builder::new()
                .with_default_env()
                .expect("the environment")
                .init(),
        ),
        "builder_try_init" => match pollwatch::Builder::new()
            .with_default_env()
            .expect("the environment")
            .try_init()
        {
            Ok(guard) => Some(guard),
            Err(e) => return refused(e),
        },
        "build_into_own_registry" => {
            let (layer, handle) = pollwatch::Builder::new().build();
            tracing_subscriber::registry()
                .with(own_logs())
                .with(layer)
                .init();
            std::mem::forget(handle);
            None
        }
        "runtime" => {
            tracing_subscriber::registry().with(own_logs()).init();
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            let guard = pollwatch::runtime(&mut runtime);
            std::mem::forget(runtime.build().expect("the runtime"));
            Some(guard)
        }
        other => panic!("no install path {other}"),
    };
    println!("{}", instrumentation());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        return child(&args[at + 1]);
    }
    let dir = std::env::temp_dir().join(format!("pollwatch-disabled-{}", std::process::id()));
    let seen: Vec<(&str, String)> = PATHS
        .iter()
        .map(|path| {
            let out = Command::new(std::env::current_exe().unwrap())
                .args(["--child", path])
                .env_remove("RUST_LOG")
                .env("POLLWATCH_REPORT_DIR", dir.join(path))
                .env("POLLWATCH_METRICS_ADDR", "127.0.0.1:0")
                .env("TOKIO_CONSOLE_BIND", "127.0.0.1:0")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            assert!(
                out.status.success(),
                "{path}: {}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            println!("{path:>24}: {stdout}");
            (*path, stdout)
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let expected = "trace event: never, debug event: never, debug span: never, debug span \
                    created: false, trace enabled: false, info event: enabled";
    let wrong: Vec<_> = seen
        .iter()
        .filter(|(path, seen)| {
            if TRY_INIT_REFUSES && path.ends_with("try_init") {
                !seen.starts_with("refused: tokio-console: the feed needs a build with")
            } else {
                seen != expected
            }
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "these install paths change what is disabled (expected \"{expected}\"): {wrong:#?}"
    );
    println!("every install path leaves disabled instrumentation disabled");
}
