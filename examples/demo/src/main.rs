//! `pollwatch-demo`: starts the demo service under pollwatch, drives it with the built-in load,
//! and shows what pollwatch saw: live warnings on stderr while the load runs, then the load
//! summary, pollwatch's per-site report table and the report files.
//!
//! ```sh
//! cargo run --release -p pollwatch-demo                      # 5 s of load, then the report
//! cargo run --release -p pollwatch-demo -- --serve           # serve until Ctrl-C
//! cargo run --release -p pollwatch-demo -- --console         # load, then serve tokio-console
//! cargo run --release -p pollwatch-demo -- --metrics 127.0.0.1:9464 --duration 1m  # + /metrics
//! cargo run --release -p pollwatch-demo -- --help
//! cargo run --release -p pollwatch-demo --no-default-features -- --serve  # no pollwatch inside
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Parser, ValueEnum};
#[cfg(feature = "pollwatch")]
use pollwatch::report::write::WrittenFiles;
#[cfg(feature = "pollwatch")]
use pollwatch::Builder;
use pollwatch_demo::load::{self, LoadConfig, LoadSummary};
use pollwatch_demo::routes::cpu::Hashing;
use pollwatch_demo::routes::fs::DataFile;
use pollwatch_demo::routes::{AppState, Kind, Route, ROUTES};
use pollwatch_demo::service::Service;
use pollwatch_demo::upstream::{self, Upstream};
use tokio::runtime::Runtime;

/// Where the report goes unless `--report-dir` or `POLLWATCH_REPORT_DIR` says otherwise.
#[cfg(feature = "pollwatch")]
const DEFAULT_REPORT_DIR: &str = "target/pollwatch-demo";

/// How long open requests may take to finish once the service stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A demo HTTP service with six classic ways to block tokio's worker threads (each next to
/// its correct twin), driven by a built-in load, watched by pollwatch.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where the service listens; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Worker threads of the service's runtime.
    #[arg(long, default_value_t = 2, value_parser = RangedU64ValueParser::<usize>::new().range(1..=256))]
    workers: usize,
    /// How long the load runs, e.g. `5s`, `500ms`, `1m`.
    #[arg(long, default_value = "5s")]
    duration: humantime::Duration,
    /// How many connections the load keeps busy at once.
    #[arg(long, default_value_t = 8, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    concurrency: usize,
    /// The load's timeout for one request; a request taking longer counts as an error.
    #[arg(long, default_value = "5s")]
    timeout: humantime::Duration,
    /// pollwatch's slow-poll threshold [default: $POLLWATCH_THRESHOLD, else 10ms].
    #[arg(long)]
    threshold: Option<humantime::Duration>,
    /// Where to write the report [default: $POLLWATCH_REPORT_DIR, else target/pollwatch-demo].
    #[arg(long)]
    report_dir: Option<PathBuf>,
    /// How many sites the printed report table lists.
    #[arg(long, default_value_t = 12)]
    top: usize,
    /// Size of the data file the `fs` routes read, in MiB; raise it if `bad_fs` stays under
    /// the threshold on a fast machine.
    #[arg(long, default_value_t = 32, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    file_mib: usize,
    /// Which routes the load requests: compare `--mix good` with the default to see what the
    /// bad routes cost the good ones.
    #[arg(long, value_enum, default_value_t = Mix::All)]
    mix: Mix,
    /// How long the `cpu` routes' hash takes on an idle core.
    #[arg(long, default_value = "25ms")]
    cpu_work: humantime::Duration,
    /// Serve until Ctrl-C instead of running the load (then try `curl ADDR/bad/sleep`).
    #[arg(long)]
    serve: bool,
    /// Also serve the tokio-console feed (on $TOKIO_CONSOLE_BIND, else 127.0.0.1:6669), and
    /// keep serving after the load until Ctrl-C, so `tokio-console` can attach: every task with
    /// its poll times, and each site that stalled as a `BlockingSite` resource.
    #[arg(long)]
    console: bool,
    /// Serve pollwatch's Prometheus metrics on http://ADDR/metrics while the demo runs
    /// [default: off, unless $POLLWATCH_METRICS_ADDR is set].
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Watch the service without pollwatch's tracing layer: `pollwatch::runtime` on the
    /// service's runtime (tokio's task hooks in a build with `--cfg tokio_unstable`, the
    /// stable worker hooks in one without) and the handlers' tasks spawned as watched
    /// futures. A build without the flag always runs this way.
    #[arg(long)]
    no_layer: bool,
}

/// Which routes the load requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mix {
    /// Every route, bad and good twins alternating.
    All,
    /// Only the bad routes.
    Bad,
    /// Only the good routes.
    Good,
}

impl Mix {
    fn routes(self) -> Vec<Route> {
        let wanted = |route: &&Route| match self {
            Mix::All => true,
            Mix::Bad => route.kind == Kind::Bad,
            Mix::Good => route.kind == Kind::Good,
        };
        ROUTES.iter().filter(wanted).copied().collect()
    }
}

fn main() -> ExitCode {
    // clap prints a clear message and exits with status 2 on a bad flag.
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pollwatch-demo: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "pollwatch")]
fn run(args: Args) -> Result<(), String> {
    let mut runtime = runtime_builder(args.workers);
    // pollwatch first, so it sees every task.
    let guard = start_pollwatch(&args, &mut runtime)?;
    // Kept past `finish`, to render the final report.
    let handle = guard.handle().clone();
    let summary = serve(&args, runtime, |addr, state, upstream| {
        print_setup(&args, addr, state, upstream, &guard);
    })?;
    // Stop pollwatch's threads once they have reported the last stalls and slow polls,
    // and write the report, so the summary below is final.
    let written = guard
        .finish()
        .map_err(|e| format!("cannot write the report: {e}"))?;

    println!();
    if let Some(summary) = &summary {
        print_summary(summary, args.mix);
    }
    print!(
        "{}",
        pollwatch::report::text::render(&handle.report(), args.top)
    );
    println!();
    print_written(&written);
    print_next_steps(written.json.parent().unwrap_or(std::path::Path::new(".")));
    check_load(summary.as_ref())
}

/// The demo without pollwatch: the same service and load, watched only from outside
/// (`pollwatch attach PID`).
#[cfg(not(feature = "pollwatch"))]
fn run(args: Args) -> Result<(), String> {
    if args.console
        || args.metrics.is_some()
        || args.no_layer
        || args.threshold.is_some()
        || args.report_dir.is_some()
    {
        return Err(
            "--console, --metrics, --no-layer, --threshold and --report-dir need pollwatch: \
             this build has none (built with --no-default-features)"
                .to_owned(),
        );
    }
    let summary = serve(
        &args,
        runtime_builder(args.workers),
        |addr, state, upstream| {
            print_service(&args, addr, state, upstream);
            println!(
                "no pollwatch in this build: watch it from outside with `pollwatch attach {}`",
                std::process::id()
            );
        },
    )?;
    if let Some(summary) = &summary {
        println!();
        print_summary(summary, args.mix);
    }
    check_load(summary.as_ref())
}

/// Builds the service's runtime from `runtime`, starts the service and its upstream, says
/// where with `ready`, runs the load (or serves until Ctrl-C with `--serve`), and stops it all.
fn serve(
    args: &Args,
    mut runtime: tokio::runtime::Builder,
    ready: impl FnOnce(SocketAddr, &AppState, &Upstream),
) -> Result<Option<LoadSummary>, String> {
    let (state, upstream) = app_state(args)?;
    let runtime = runtime
        .build()
        .map_err(|e| format!("cannot build the runtime: {e}"))?;
    let service = runtime
        .block_on(Service::start(args.addr, state.clone()))
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let addr = service.addr();
    ready(addr, &state, &upstream);
    let summary = if args.serve {
        println!("serving until Ctrl-C; try: curl http://{addr}/bad/sleep");
        wait_for_ctrl_c(&runtime)?;
        None
    } else {
        Some(run_load(args, addr, &runtime)?)
    };
    stop(runtime, service, upstream);
    Ok(summary)
}

/// Starts pollwatch with the builder's defaults, then the POLLWATCH_* variables, then the
/// flags: its tracing layer, or with `--no-layer` (and in a build without `--cfg
/// tokio_unstable`) a fmt subscriber for its events, `pollwatch::runtime`'s hooks on `runtime`
/// and the handlers' tasks as watched futures.
#[cfg(feature = "pollwatch")]
fn start_pollwatch(
    args: &Args,
    runtime: &mut tokio::runtime::Builder,
) -> Result<pollwatch::Guard, String> {
    let mut builder = Builder::new()
        .report_dir(DEFAULT_REPORT_DIR)
        // The blocking client retries a read a signal interrupted (see `client.rs`), so its
        // stalls on a socket with a timeout may be signalled for their stack too.
        .interrupt_any_call(true)
        .with_default_env()
        .map_err(|e| format!("bad pollwatch configuration: {e}"))?
        .console(args.console)
        .metrics(
            args.metrics.is_some()
                || std::env::var_os(pollwatch::config::ENV_METRICS_ADDR).is_some(),
        );
    if let Some(addr) = args.metrics {
        builder = builder.metrics_addr(addr);
    }
    if let Some(threshold) = args.threshold {
        builder = builder.threshold(threshold.into());
    }
    if let Some(dir) = &args.report_dir {
        builder = builder.report_dir(dir.clone());
    }
    if !args.no_layer && cfg!(tokio_unstable) {
        return builder
            .try_init()
            .map_err(|e| format!("cannot start pollwatch: {e}"));
    }
    if args.console {
        return Err("--console needs pollwatch's tracing layer: not with --no-layer".into());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| format!("cannot install the log output: {e}"))?;
    pollwatch_demo::named_tasks::spawn_watched(true);
    Ok(builder.runtime(runtime))
}

/// What the routes share: the data file, the calibrated hash and the upstream, which this
/// starts (stop it with [`stop`]).
fn app_state(args: &Args) -> Result<(AppState, Upstream), String> {
    let data_file = DataFile::create(args.file_mib << 20)
        .map_err(|e| format!("cannot write the data file: {e}"))?;
    let hashing = Hashing::calibrate(args.cpu_work.into());
    let upstream = Upstream::start().map_err(|e| format!("cannot start the upstream: {e}"))?;
    let state = AppState {
        data_file: Arc::new(data_file),
        locks: Arc::default(),
        hashing: Arc::new(hashing),
        upstream: upstream.addr(),
        upstream_timeout: args.timeout.into(),
    };
    Ok((state, upstream))
}

/// The service's runtime's builder: `workers` threads named `demo-worker`.
fn runtime_builder(workers: usize) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(workers)
        .thread_name("demo-worker")
        .enable_all();
    builder
}

/// What is running and where: the service, its upstream, data file and hash.
fn print_service(args: &Args, addr: SocketAddr, state: &AppState, upstream: &Upstream) {
    println!(
        "pollwatch-demo: serving http://{addr} on {} workers (upstream http://{}{}), \
         {} MiB data file, {} hash rounds per cpu request",
        args.workers,
        upstream.addr(),
        upstream::PATH,
        args.file_mib,
        state.hashing.rounds(),
    );
}

/// What is running and where: the service, pollwatch's threshold and report directory, and
/// the metrics endpoint and console feed when they are on.
#[cfg(feature = "pollwatch")]
fn print_setup(
    args: &Args,
    addr: SocketAddr,
    state: &AppState,
    upstream: &Upstream,
    guard: &pollwatch::Guard,
) {
    print_service(args, addr, state, upstream);
    println!(
        "pollwatch: warns about polls longer than {:?}; report to {}",
        guard.handle().threshold(),
        guard.handle().report_dir().display()
    );

    if let Some(addr) = guard.metrics_addr() {
        println!("prometheus: metrics on http://{addr}/metrics");
    }
    if args.console {
        println!(
            "tokio-console: feed on http://{}; attach with `tokio-console` (press `r` for the \
             BlockingSite resources)",
            std::env::var(pollwatch::config::ENV_CONSOLE_BIND)
                .unwrap_or_else(|_| pollwatch::config::DEFAULT_CONSOLE_BIND.to_owned())
        );
    }
}

/// Runs the load against the service at `addr`; with `--console`, then keeps serving until
/// Ctrl-C so that tokio-console can look.
fn run_load(args: &Args, addr: SocketAddr, runtime: &Runtime) -> Result<LoadSummary, String> {
    let routes = args.mix.routes();
    println!(
        "load: {} connections for {}, round robin over {} routes",
        args.concurrency,
        args.duration,
        routes.len()
    );
    let config = LoadConfig {
        addr,
        duration: args.duration.into(),
        concurrency: args.concurrency,
        timeout: args.timeout.into(),
        routes,
    };
    let summary = load::run(config).map_err(|e| format!("cannot run the load: {e}"))?;
    if args.console {
        print!("{summary}");
        println!(
            "load done; still serving http://{addr} for tokio-console until Ctrl-C \
             (try: curl http://{addr}/bad/sleep)"
        );
        wait_for_ctrl_c(runtime)?;
    }
    Ok(summary)
}

/// Blocks until Ctrl-C.
fn wait_for_ctrl_c(runtime: &Runtime) -> Result<(), String> {
    runtime
        .block_on(tokio::signal::ctrl_c())
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))
}

/// Stops the service (open requests get [`SHUTDOWN_GRACE`]), its runtime and the upstream;
/// a failure to stop is reported and otherwise ignored.
fn stop(runtime: Runtime, service: Service, upstream: Upstream) {
    let stopped = runtime.block_on(service.stop(SHUTDOWN_GRACE));
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    if let Err(e) = stopped {
        eprintln!("pollwatch-demo: stopping the service: {e}");
    }
    if let Err(e) = upstream.stop() {
        eprintln!("pollwatch-demo: stopping the upstream: {e}");
    }
}

/// The load's summary, with a hint to run the good routes alone when they ran with the bad.
fn print_summary(summary: &LoadSummary, mix: Mix) {
    print!("{summary}");
    if mix == Mix::All {
        println!(
            "  (the good routes queue behind the bad ones for a worker: run with `--mix good` \
             to see them alone)"
        );
    }
    println!();
}

/// The report files written.
#[cfg(feature = "pollwatch")]
fn print_written(written: &WrittenFiles) {
    println!("report written: {}", written.text.display());
    println!("                {}", written.json.display());
    if let Some(hlog) = &written.hlog {
        println!("                {}", hlog.display());
    }
}

/// The commands that read the report, ready to paste.
#[cfg(feature = "pollwatch")]
fn print_next_steps(dir: &std::path::Path) {
    let dir = dir.display();
    println!();
    println!("read it with the pollwatch command (cargo install --path crates/pollwatch-cli):");
    println!("  pollwatch show {dir}");
    println!("  pollwatch html {dir} -o {dir}/report.html");
    println!(
        "  pollwatch diff BEFORE_DIR {dir} --fail-if 'p99>+20%'   # after copying a run aside"
    );
    println!("or without installing it: cargo run -q -p pollwatch-cli -- show {dir}");
}

/// The demo failed if no request of the load succeeded: the service did not work at all.
fn check_load(summary: Option<&LoadSummary>) -> Result<(), String> {
    match summary {
        Some(s) if s.requests() > 0 && s.errors() == s.requests() => Err(format!(
            "every one of the {} requests failed; first error: {}",
            s.requests(),
            s.first_error.as_deref().unwrap_or("unknown")
        )),
        Some(s) if s.requests() == 0 => Err("the load sent no request".to_owned()),
        _ => Ok(()),
    }
}
