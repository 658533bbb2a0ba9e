//! Shared test helpers: a scoped subscriber with pollwatch installed, visible on the test
//! thread and on every thread of the runtimes built here.
#![allow(dead_code)]

pub mod console;
pub mod http;
pub mod published;
pub mod routes;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pollwatch::{Builder, Handle, Report};
use pollwatch_report::SiteReport;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

/// A dispatcher holding pollwatch (and whatever else the test adds), plus its handle.
pub struct Watched {
    pub dispatch: Dispatch,
    pub handle: Handle,
}

impl Watched {
    /// pollwatch alone in a registry, with `threshold`.
    pub fn new(threshold: Duration) -> Self {
        Self::new_with(Builder::new().threshold(threshold))
    }

    /// pollwatch alone in a registry, built by `builder`.
    pub fn new_with(builder: pollwatch::Builder) -> Self {
        let (layer, handle) = builder.build();
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
        Self { dispatch, handle }
    }

    /// A multi-thread runtime whose threads all use this dispatcher.
    pub fn runtime(&self, workers: usize) -> tokio::runtime::Runtime {
        self.runtime_with(workers, |_| {})
    }

    /// Like [`runtime`](Self::runtime), with extra builder settings.
    pub fn runtime_with(
        &self,
        workers: usize,
        extra: impl FnOnce(&mut tokio::runtime::Builder),
    ) -> tokio::runtime::Runtime {
        let dispatch = self.dispatch.clone();
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder
            .worker_threads(workers)
            .enable_all()
            .on_thread_start(move || {
                // The runtime's threads keep the test's dispatcher for their whole life.
                std::mem::forget(tracing::dispatcher::set_default(&dispatch));
            });
        extra(&mut builder);
        // Build with the dispatcher current, so spans created while starting belong to it.
        tracing::dispatcher::with_default(&self.dispatch, || builder.build().unwrap())
    }

    /// Runs `f` with this dispatcher as the thread's default.
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        tracing::dispatcher::with_default(&self.dispatch, f)
    }

    /// This layer's `/metrics` endpoint on a free loopback port.
    #[cfg(feature = "prometheus")]
    pub fn serve_metrics(&self) -> pollwatch::MetricsServer {
        self.handle
            .serve_metrics("127.0.0.1:0".parse().unwrap())
            .unwrap()
    }

    /// A report after every pending slow poll has been reported; checked for figures that
    /// cannot all be true.
    pub fn report(&self) -> Report {
        self.handle.flush();
        consistent(self.handle.report())
    }
}

/// The site spawned from `file` at `line` (and any column).
pub fn site_at<'a>(report: &'a Report, file: &str, line: u32) -> &'a SiteReport {
    report
        .sites
        .iter()
        .find(|s| s.file.ends_with(file) && s.line == line)
        .unwrap_or_else(|| panic!("no site at {file}:{line} in {:#?}", labels(report)))
}

/// The site of the tasks named `name`.
pub fn site_named<'a>(report: &'a Report, name: &str) -> &'a SiteReport {
    report
        .sites
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no site named {name} in {:#?}", labels(report)))
}

#[cfg(tokio_unstable)]
/// Spawns a task named `name` (a site of its own in the report, at the caller's location).
#[track_caller]
pub fn spawn_named<F>(name: &str, future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::task::Builder::new()
        .name(name)
        .spawn(future)
        .unwrap()
}

#[cfg(tokio_unstable)]
/// Spawns a local task named `name`, at the caller's location.
#[track_caller]
pub fn spawn_local_named<F>(name: &str, future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    tokio::task::Builder::new()
        .name(name)
        .spawn_local(future)
        .unwrap()
}

/// `n` in letters (`a`, `b`, .. `ba`, ..), for task names that are sites of their own: a
/// name's digits would fold into one site.
pub fn letters(mut n: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// Every site's label.
pub fn labels(report: &Report) -> Vec<String> {
    report.sites.iter().map(|s| s.label.clone()).collect()
}

/// A `MakeWriter` that keeps everything written, for asserting on fmt output.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Watched {
    /// pollwatch built by `builder`, with a fmt layer writing into `output` (no ANSI), so
    /// tests can read the events.
    pub fn with_output(builder: pollwatch::Builder, output: &Captured) -> Self {
        use tracing_subscriber::Layer;
        let (layer, handle) = builder.build();
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(output.clone())
            .with_ansi(false)
            .with_filter(tracing_subscriber::filter::EnvFilter::new("info"));
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(fmt).with(layer));
        Self { dispatch, handle }
    }

    /// Stops the watchdog and reporter after they have handled everything pending, then
    /// takes the report: deterministic, no waiting on timers.
    pub fn final_report(&self) -> Report {
        self.handle.shutdown();
        consistent(self.handle.report())
    }
}

/// The one stall of the tasks spawned from `file` (asserted to be exactly one).
pub fn only_stall<'a>(report: &'a Report, file: &str) -> &'a pollwatch_report::Stall {
    let stalls: Vec<_> = report
        .stalls
        .iter()
        .filter(|s| s.site.contains(file))
        .collect();
    assert_eq!(stalls.len(), 1, "{:#?}", report.stalls);
    stalls[0]
}

/// `report`, after asserting that nothing in it contradicts the rest (no stall longer than
/// its site's longest poll, no percentile above the maximum, ...).
pub fn consistent(report: Report) -> Report {
    let problems = report.inconsistencies();
    assert!(problems.is_empty(), "inconsistent report: {problems:#?}");
    report
}

/// The stalls whose site was spawned from `file` at `line`.
pub fn stalls_at<'a>(
    report: &'a Report,
    file: &str,
    line: u32,
) -> Vec<&'a pollwatch_report::Stall> {
    let label = site_at(report, file, line).label.clone();
    report.stalls.iter().filter(|s| s.site == label).collect()
}

/// Whether the running test binary has line tables: a `.debug_line` section in its ELF
/// headers (Linux, 64-bit little-endian), read from `/proc/self/exe`, independently of
/// pollwatch.
#[allow(dead_code)]
pub fn binary_has_line_tables() -> bool {
    let elf = std::fs::read("/proc/self/exe").expect("the test binary");
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap()) as usize;
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "ELF64");
    let (shoff, shentsize) = (u64_at(0x28), u16_at(0x3a));
    let (shnum, shstrndx) = (u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let names = u64_at(header(shstrndx) + 0x18);
    (0..shnum).any(|i| {
        let name = names + u32_at(header(i));
        let end = elf[name..].iter().position(|&b| b == 0).unwrap_or(0);
        &elf[name..name + end] == b".debug_line"
    })
}

/// Asserts that the stall names where it blocked as well as the build allows: with line
/// tables, `file:line` exactly; without them, the function (and that the line is unknown),
/// or that the code was inlined into tokio's poll. Returns whether the line was checked.
#[allow(dead_code)]
pub fn assert_call_site_at(stall: &pollwatch_report::Stall, file: &str, line: u32) -> bool {
    if binary_has_line_tables() {
        let call_site = stall.call_site.as_deref().unwrap_or("none");
        assert!(
            call_site.ends_with(&format!("{file}:{line}")),
            "call site {call_site}, expected line {line}; backtrace: {:#?}",
            stall.backtrace
        );
        eprintln!("call site named: line {call_site}");
        return true;
    }
    assert_eq!(stall.call_site, None);
    match stall.call_site_missing.as_deref() {
        Some("no_line_tables") => {
            let function = stall.call_function.as_deref().unwrap_or_default();
            assert!(
                stall
                    .message
                    .contains(&format!("in {function} (line unknown")),
                "{}",
                stall.message
            );
        }
        Some("inlined") => {
            assert!(
                stall.message.contains("inlined into tokio's poll"),
                "{}",
                stall.message
            );
            eprintln!("call site named: inlined into tokio's poll");
        }
        other => panic!("call site unexplained ({other:?}): {stall:#?}"),
    }
    false
}

/// A local server that accepts one connection and writes `reply` to it after `after`, then
/// closes it: a peer a blocking socket read waits on.
pub fn slow_peer(
    reply: &'static [u8],
    after: Duration,
) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        std::thread::sleep(after);
        conn.write_all(reply).unwrap();
    });
    (addr, server)
}

/// A FIFO named `name` in a fresh directory of its own, and a thread that opens it for
/// writing and writes `data` after `after`: a file a blocking read waits on. Remove the
/// directory (the path's parent) when done.
pub fn fifo_written_after(
    name: &str,
    data: &'static [u8],
    after: Duration,
) -> (std::path::PathBuf, std::thread::JoinHandle<()>) {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("pollwatch-fifo-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join(name);
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(&writer_path)
            .unwrap();
        std::thread::sleep(after);
        w.write_all(data).unwrap();
    });
    (fifo, writer)
}
