//! The built-in load generator: `concurrency` keep-alive connections request the routes in a
//! round-robin mix for a fixed duration, and it reports requests, errors and latency per
//! route.
//!
//! It runs on its own unwatched thread and runtime ([`crate::unwatched`]), so the service's
//! held workers cannot slow the client down and hide the latency they cause. Everything is
//! bounded: no request starts after the duration, every request has a timeout, and a failed
//! connection is replaced by a new one.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::client::{ClientError, Connection};
use crate::routes::{Kind, Route};

/// What load to apply.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The service's address.
    pub addr: SocketAddr,
    /// How long to keep starting requests.
    pub duration: Duration,
    /// How many connections send requests at once.
    pub concurrency: usize,
    /// The longest one request may take; it counts as an error after that.
    pub timeout: Duration,
    /// The routes, requested in this order, round robin.
    pub routes: Vec<Route>,
}

/// The outcome of one run.
#[derive(Clone, Debug)]
pub struct LoadSummary {
    /// From the first request started to the last one finished.
    pub elapsed: Duration,
    /// How many connections were used.
    pub concurrency: usize,
    /// One entry per route, in the configured order.
    pub routes: Vec<RouteStats>,
    /// The first error seen, to show what went wrong.
    pub first_error: Option<String>,
}

/// The requests of one route.
#[derive(Clone, Debug)]
pub struct RouteStats {
    /// The route.
    pub route: Route,
    /// The latencies of its successful requests, sorted.
    pub latencies: Vec<Duration>,
    /// Its failed requests: errors, timeouts and non-200 answers.
    pub errors: u64,
}

impl LoadSummary {
    /// All requests, successful or not.
    pub fn requests(&self) -> u64 {
        self.routes
            .iter()
            .map(|r| r.latencies.len() as u64 + r.errors)
            .sum()
    }

    /// All failed requests.
    pub fn errors(&self) -> u64 {
        self.routes.iter().map(|r| r.errors).sum()
    }

    /// The sorted latencies of every successful request to routes of `kind`.
    pub fn latencies_of(&self, kind: Kind) -> Vec<Duration> {
        let mut all: Vec<Duration> = self
            .routes
            .iter()
            .filter(|r| r.route.kind == kind)
            .flat_map(|r| r.latencies.iter().copied())
            .collect();
        all.sort_unstable();
        all
    }
}

/// Applies the load on a thread of its own and waits for the summary.
pub fn run(config: LoadConfig) -> io::Result<LoadSummary> {
    let thread = crate::unwatched::spawn("demo-load", move || drive(config))?;
    match thread.join() {
        Ok(result) => result,
        Err(_) => Err(io::Error::other("the load generator thread panicked")),
    }
}

/// One request's outcome: which route, and its latency or error.
type Sample = (usize, Result<Duration, String>);

async fn drive(config: LoadConfig) -> LoadSummary {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + config.duration;
    let config = Arc::new(config);
    let mut connections = JoinSet::new();
    for _ in 0..config.concurrency.max(1) {
        connections.spawn(one_connection(
            Arc::clone(&config),
            Arc::clone(&next),
            deadline,
        ));
    }
    let mut routes: Vec<RouteStats> = config
        .routes
        .iter()
        .map(|&route| RouteStats {
            route,
            latencies: Vec::new(),
            errors: 0,
        })
        .collect();
    let mut first_error = None;
    while let Some(joined) = connections.join_next().await {
        let samples = match joined {
            Ok(samples) => samples,
            Err(e) => {
                first_error.get_or_insert_with(|| format!("a load connection failed: {e}"));
                continue;
            }
        };
        for (index, outcome) in samples {
            match outcome {
                Ok(latency) => routes[index].latencies.push(latency),
                Err(e) => {
                    routes[index].errors += 1;
                    first_error
                        .get_or_insert_with(|| format!("{}: {e}", config.routes[index].path));
                }
            }
        }
    }
    for route in &mut routes {
        route.latencies.sort_unstable();
    }
    LoadSummary {
        elapsed: started.elapsed(),
        concurrency: config.concurrency.max(1),
        routes,
        first_error,
    }
}

/// Sends requests on one connection (reconnecting after a failure) until the deadline.
async fn one_connection(
    config: Arc<LoadConfig>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut connection: Option<Connection> = None;
    while Instant::now() < deadline && !config.routes.is_empty() {
        let index = next.fetch_add(1, Ordering::Relaxed) % config.routes.len();
        let path = config.routes[index].path;
        let started = Instant::now();
        let exchange = async {
            let mut open = match connection.take() {
                Some(open) if !open.is_closed() => open,
                _ => Connection::connect(config.addr).await?,
            };
            let response = open.get(path).await?;
            Ok::<_, ClientError>((open, response))
        };
        let outcome = match tokio::time::timeout(config.timeout, exchange).await {
            Ok(Ok((open, response))) => {
                connection = Some(open);
                if response.status == 200 {
                    Ok(started.elapsed())
                } else {
                    Err(format!("status {}", response.status))
                }
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(ClientError::Timeout(config.timeout).to_string()),
        };
        samples.push((index, outcome));
    }
    samples
}

/// The `q` quantile (0..=1) of sorted `values`, nearest rank; zero when empty.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // `as` is exact enough here: a rank between 0 and len - 1.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

struct Ms(Duration);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{:.1}ms", self.0.as_secs_f64() * 1e3);
        f.pad(&text)
    }
}

impl fmt::Display for LoadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let requests = self.requests();
        let seconds = self.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            requests as f64 / seconds
        } else {
            0.0
        };
        writeln!(
            f,
            "load: {requests} requests in {seconds:.2}s ({rate:.1}/s) over {} connections, {} errors",
            self.concurrency,
            self.errors()
        )?;
        writeln!(
            f,
            "  {:<16} {:>8} {:>6} {:>9} {:>9} {:>9}",
            "route", "ok", "errors", "p50", "p99", "max"
        )?;
        for r in &self.routes {
            writeln!(
                f,
                "  {:<16} {:>8} {:>6} {:>9} {:>9} {:>9}",
                r.route.path,
                r.latencies.len(),
                r.errors,
                Ms(quantile(&r.latencies, 0.5)),
                Ms(quantile(&r.latencies, 0.99)),
                Ms(r.latencies.last().copied().unwrap_or_default()),
            )?;
        }
        for (label, kind) in [("bad routes", Kind::Bad), ("good routes", Kind::Good)] {
            let all = self.latencies_of(kind);
            writeln!(
                f,
                "  {:<16} {:>8} {:>6} {:>9} {:>9} {:>9}",
                label,
                all.len(),
                "",
                Ms(quantile(&all, 0.5)),
                Ms(quantile(&all, 0.99)),
                Ms(all.last().copied().unwrap_or_default()),
            )?;
        }
        if let Some(e) = &self.first_error {
            writeln!(f, "  first error: {e}")?;
        }
        Ok(())
    }
}
