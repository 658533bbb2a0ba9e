//! The configurations every workload runs side by side: plain tokio, a bare `Registry`,
//! pollwatch's poll sources (layer, runtime hooks, watched futures, stable worker hooks), the
//! floor, and the peers (console-subscriber, tokio-metrics, tokio-blocked,
//! dial9-tokio-telemetry), each set up as its documentation shows.

use pollwatch::test_support::start;
use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    Plain,
    Registry,
    Layer,
    Hooks,
    Watched,
    Workers,
    Floor,
    TscFloor,
    Console,
    TokioMetrics,
    TokioBlocked,
    Dial9,
}

impl Config {
    /// Every configuration, in table order; plain tokio first (every ratio's baseline).
    pub const ALL: [Config; 12] = [
        Config::Plain,
        Config::Registry,
        Config::Layer,
        Config::Hooks,
        Config::Watched,
        Config::Workers,
        Config::Floor,
        Config::TscFloor,
        Config::Console,
        Config::TokioMetrics,
        Config::TokioBlocked,
        Config::Dial9,
    ];

    /// pollwatch's own poll sources, whose targets the suite checks.
    pub const POLLWATCH: [Config; 4] = [
        Config::Layer,
        Config::Hooks,
        Config::Watched,
        Config::Workers,
    ];

    /// The position of `self` in [`Config::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|&c| c == self).unwrap()
    }

    /// A short name, for child-process arguments and raw per-round lines.
    pub fn key(self) -> &'static str {
        match self {
            Config::Plain => "plain",
            Config::Registry => "registry",
            Config::Layer => "layer",
            Config::Hooks => "hooks",
            Config::Watched => "watched",
            Config::Workers => "workers",
            Config::Floor => "floor",
            Config::TscFloor => "tsc-floor",
            Config::Console => "console",
            Config::TokioMetrics => "tokio-metrics",
            Config::TokioBlocked => "tokio-blocked",
            Config::Dial9 => "dial9",
        }
    }

    pub fn from_key(key: &str) -> Option<Config> {
        Self::ALL.iter().copied().find(|c| c.key() == key)
    }

    /// The name a table row shows.
    pub fn name(self) -> &'static str {
        match self {
            Config::Plain => "plain tokio (no subscriber)",
            Config::Registry => "`Registry` alone",
            Config::Layer => "`Registry` + pollwatch layer",
            Config::Hooks => "pollwatch hooks source (no subscriber)",
            Config::Watched => "pollwatch watched futures (`pollwatch::spawn`, any build)",
            Config::Workers => "pollwatch stable worker hooks (`pollwatch::runtime`, any build)",
            Config::Floor => "floor: hooks doing two `quanta` clock reads + TLS stores",
            Config::TscFloor => "real floor: hooks doing two TSC reads + one TLS add",
            Config::Console => "`Registry` + console-subscriber (serving)",
            Config::TokioMetrics => "tokio-metrics `TaskMonitor` on every task",
            Config::TokioBlocked => "`Registry` + tokio-blocked layer",
            Config::Dial9 => "dial9-tokio-telemetry (trace to a temp dir)",
        }
    }

    /// A multi-thread runtime of `workers` workers (I/O and time enabled) under this
    /// configuration's instrumentation.
    pub fn start(self, workers: usize) -> Instrumented {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers).enable_all();
        let mut handle = None;
        let mut keep: Option<Box<dyn Any>> = None;
        let mut dir = None;
        let mut spawner = Spawner::Tokio;
        let dispatch = match self {
            Config::Plain | Config::Floor | Config::TscFloor | Config::Hooks => None,
            Config::TokioMetrics => None,
            Config::Watched | Config::Workers => None,
            Config::Dial9 => None,
            Config::Registry => Some(Dispatch::new(tracing_subscriber::registry())),
            Config::Layer => {
                let (layer, h) = pollwatch::Builder::new().build();
                handle = Some(h);
                Some(Dispatch::new(tracing_subscriber::registry().with(layer)))
            }
            Config::Console => {
                let console = console_subscriber::ConsoleLayer::builder()
                    .server_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
                    .spawn();
                Some(Dispatch::new(tracing_subscriber::registry().with(console)))
            }
            Config::TokioBlocked => {
                let blocked = tokio_blocked::TokioBlockedLayer::new();
                Some(Dispatch::new(tracing_subscriber::registry().with(blocked)))
            }
        };
        match self {
            // Each source alone, without the guard's report files: the handle keeps it running.
            Config::Hooks => {
                let hooks = start(pollwatch::Builder::new());
                // The task hooks: `pollwatch::runtime`'s choice in a build with the flag.
                hooks.runtime(&mut builder);
                handle = Some(hooks);
            }
            Config::Watched => {
                handle = Some(start(pollwatch::Builder::new()));
                spawner = Spawner::Watched;
            }
            Config::Workers => {
                let workers = start(pollwatch::Builder::new());
                pollwatch::test_support::worker_hooks(&workers, &mut builder);
                handle = Some(workers);
            }
            Config::Floor => crate::floor::set_hooks(&mut builder),
            Config::TscFloor => crate::floor::set_tsc_hooks(&mut builder),
            Config::TokioMetrics => spawner = Spawner::Monitored(tokio_metrics::TaskMonitor::new()),
            _ => {}
        }
        if let Some(dispatch) = dispatch.clone() {
            builder.on_thread_start(move || {
                std::mem::forget(tracing::dispatcher::set_default(&dispatch));
            });
        }
        let build = || -> Runtime {
            if self != Config::Dial9 {
                return builder.build().unwrap();
            }
            use dial9_tokio_telemetry::telemetry::{
                recorder, Dial9HandleTokioExt, DiskBuffer, TokioAttachOptions,
            };
            let path = std::env::temp_dir().join(format!(
                "pollwatch-bench-dial9-{}-{}",
                std::process::id(),
                unique()
            ));
            std::fs::create_dir_all(&path).unwrap();
            let writer = DiskBuffer::single_file(path.join("trace.bin")).unwrap();
            let rec = recorder(writer).build();
            let rt = rec
                .handle()
                .attach_tokio_runtime(builder, TokioAttachOptions::default())
                .unwrap();
            keep = Some(Box::new(rec));
            dir = Some(path);
            rt
        };
        let rt = match &dispatch {
            Some(d) => tracing::dispatcher::with_default(d, build),
            None => build(),
        };
        Instrumented {
            rt: Some(rt),
            dispatch,
            spawner,
            handle,
            keep,
            dir,
        }
    }
}

/// A number no other call in this process returns.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Relaxed)
}

/// Spawns a task the way the configuration wants every task spawned.
#[derive(Clone)]
pub enum Spawner {
    Tokio,
    /// tokio-metrics: every task instrumented with the one `TaskMonitor`.
    Monitored(tokio_metrics::TaskMonitor),
    /// pollwatch's watched futures: every task spawned with `pollwatch::spawn`.
    Watched,
}

impl Spawner {
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Spawner::Tokio => tokio::spawn(future),
            Spawner::Monitored(monitor) => tokio::spawn(monitor.instrument(future)),
            Spawner::Watched => pollwatch::spawn(future),
        }
    }
}

/// A runtime under one configuration, with whatever that configuration keeps alive.
pub struct Instrumented {
    rt: Option<Runtime>,
    dispatch: Option<Dispatch>,
    pub spawner: Spawner,
    handle: Option<pollwatch::Handle>,
    /// Dropped after the runtime (dial9's recorder).
    keep: Option<Box<dyn Any>>,
    /// Removed at the end (dial9's trace).
    dir: Option<PathBuf>,
}

impl Instrumented {
    /// Runs `future` to completion on the runtime, this thread reporting to the
    /// configuration's subscriber.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let rt = self.rt.as_ref().unwrap();
        match &self.dispatch {
            Some(d) => tracing::dispatcher::with_default(d, || rt.block_on(future)),
            None => rt.block_on(future),
        }
    }

    /// Shuts the runtime down and tears the instrumentation down; returns the polls pollwatch
    /// counted, for the pollwatch configurations.
    /// Stalls pollwatch caught so far (0 without pollwatch).
    pub fn stalls(&self) -> u64 {
        self.handle.as_ref().map_or(0, |h| h.report().totals.stalls)
    }

    pub fn finish(mut self) -> Option<u64> {
        let rt = self.rt.take().unwrap();
        match &self.dispatch {
            Some(d) => tracing::dispatcher::with_default(d, || drop(rt)),
            None => drop(rt),
        }
        let counted = self.handle.as_ref().map(|h| {
            let totals = h.report().totals;
            if totals.slow_polls > 0 {
                // A poll past the threshold here is the machine's doing (a worker descheduled
                // mid-poll); a stall's stack capture costs the round CPU time.
                println!(
                    "note: a round had {} poll(s) over the threshold, {} stall(s)",
                    totals.slow_polls, totals.stalls
                );
            }
            h.shutdown();
            totals.polls
        });
        drop(self.keep.take());
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        counted
    }
}
