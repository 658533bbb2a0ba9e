//! A task that does little work per poll, on a machine short of CPU, is held for many
//! milliseconds while its thread waits for a CPU: pollwatch says so (`descheduled`) instead
//! of blaming the task's code as CPU work. A thread that sleeps is not waiting for a CPU.
//!
//! The shortage is made on one CPU: the runtime's workers and six spinning threads are pinned
//! to it, so a worker waits for several of the spinners' time slices whenever it is preempted,
//! while pollwatch's own threads (started before, not pinned) watch from the other CPUs.
// tokio emits task spans only when built with `--cfg tokio_unstable`; pinning is Linux's.
#![cfg(all(tokio_unstable, target_os = "linux"))]

mod support;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pollwatch::Builder;
use support::Watched;

const THRESHOLD: Duration = Duration::from_millis(10);

/// One shortage at a time: the tests of this file would pile their spinners on one CPU.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
const POLLS: u32 = 400;
const WORK: Duration = Duration::from_micros(200);

fn builder() -> Builder {
    Builder::new()
        .threshold(THRESHOLD)
        .tick(Duration::from_millis(1))
}

fn watched() -> Watched {
    Watched::new_with(builder())
}

/// The warnings in `log` that tell the user to change their code.
fn advice(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("WARN"))
        .filter(|l| {
            [
                "spawn_blocking",
                "Move the computation",
                "Use tokio",
                "use its async version",
            ]
            .iter()
            .any(|advice| l.contains(advice))
        })
        .collect()
}

#[inline(never)]
fn work(rounds: u64) -> u64 {
    let mut n = 0u64;
    for i in 0..rounds {
        n = black_box(n.wrapping_mul(31).wrapping_add(i));
    }
    n
}

/// How many rounds of `work` take `WORK` on this machine while it is otherwise idle.
fn rounds_for_work() -> u64 {
    let probe = 200_000;
    let started = Instant::now();
    work(probe);
    let ns = started.elapsed().as_nanos().max(1);
    u64::try_from(u128::from(probe) * WORK.as_nanos() / ns)
        .unwrap()
        .max(1)
}

/// Pins the calling thread to the first CPU this process may use.
fn pin_to_one_cpu() {
    let first = core_affinity::get_core_ids()
        .and_then(|cpus| cpus.into_iter().next())
        .expect("a CPU to run on");
    assert!(core_affinity::set_for_current(first), "pinned to {first:?}");
}

/// A runtime of two workers, both pinned to one CPU.
fn pinned_runtime(watched: &Watched) -> tokio::runtime::Runtime {
    watched.runtime_with(2, |builder| {
        builder.on_thread_start(pin_to_one_cpu);
    })
}

/// Six threads that keep the pinned CPU busy until dropped.
struct Spinners {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Spinners {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..6)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    pin_to_one_cpu();
                    let mut n = 0u64;
                    while !stop.load(Relaxed) {
                        n = work(1_000).wrapping_add(n);
                    }
                    black_box(n);
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        for thread in self.threads.drain(..) {
            thread.join().unwrap();
        }
    }
}

/// The stalls of this file's tasks, and the counts per cause of its sites (every stall, not
/// only the ones the report lists).
fn this_files(report: &pollwatch::Report) -> (Vec<&pollwatch_report::Stall>, Vec<(String, u64)>) {
    let file = "cpu_shortage_is_not_the_codes_fault.rs";
    let stalls = report
        .stalls
        .iter()
        .filter(|s| s.site.contains(file))
        .collect();
    let causes = report
        .sites
        .iter()
        .filter(|s| s.label.contains(file))
        .flat_map(|s| &s.call_sites)
        .map(|c| (c.cause.clone(), c.count))
        .collect();
    (stalls, causes)
}

#[test]
fn short_polls_on_a_host_short_of_cpu_are_never_blamed_as_cpu_work() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let rounds = rounds_for_work();
    let log = support::Captured::default();
    let watched = Watched::with_output(builder(), &log);
    let rt = pinned_runtime(&watched);
    let spinners = Spinners::start();
    let started = Instant::now();
    watched.scope(|| {
        rt.block_on(async {
            tokio::spawn(async move {
                for _ in 0..POLLS {
                    black_box(work(rounds));
                    tokio::task::yield_now().await;
                }
            })
            .await
            .unwrap();
        });
    });
    let took = started.elapsed();
    drop(spinners);
    // The watchdog's last scan reads the end of every stall while the runtime's threads
    // still exist; the runtime goes after.
    let report = watched.final_report();
    drop(rt);
    let (stalls, causes) = this_files(&report);
    let total: u64 = causes.iter().map(|(_, n)| n).sum();
    let descheduled: u64 = causes
        .iter()
        .filter(|(c, _)| c == "descheduled")
        .map(|(_, n)| n)
        .sum();
    eprintln!(
        "{POLLS} polls of {WORK:?} of work in {took:?} on a host short of CPU: {total} stalls, \
         {descheduled} descheduled; causes {causes:?}"
    );
    for stall in &stalls {
        eprintln!(
            "  {} held {} ns: ran {:?}, waited {:?} for a CPU",
            stall.cause, stall.duration_ns, stall.run_ns, stall.runqueue_wait_ns
        );
    }
    assert!(
        total > 0,
        "a worker sharing one CPU with six spinners is held past {THRESHOLD:?}"
    );
    assert!(
        causes.iter().all(|(cause, _)| cause != "cpu"),
        "a task doing {WORK:?} per poll blamed as CPU work: {causes:?}\n{stalls:#?}"
    );
    assert_eq!(
        descheduled, total,
        "every stall is the host's CPU shortage: {causes:?}"
    );
    let (mut ran, mut held) = (0, 0);
    for stall in &stalls {
        assert_eq!(stall.cause, "descheduled", "{stall:#?}");
        let (run, wait) = (
            stall.run_ns.expect("run time measured"),
            stall.runqueue_wait_ns.expect("run-queue wait measured"),
        );
        // It waited for a CPU more than it ran, or the watchdog, itself waiting for a CPU,
        // watched too little of it to see it work.
        assert!(
            wait > run || stall.message.contains("went unwatched"),
            "ran {run} and waited {wait} ns: {stall:#?}"
        );
        assert!(
            stall
                .message
                .contains("descheduled: the host/container is short of CPU; not this code"),
            "{stall:#?}"
        );
        assert!(!stall.suggestion.contains("spawn_blocking"), "{stall:#?}");
        // The figures run to the watchdog's last reading, which can come after the poll:
        // judged over all stalls, the thread ran for a small part of the time held.
        ran += run;
        held += stall.duration_ns;
    }
    assert!(
        ran < held / 2,
        "the stalled thread ran {ran} ns of {held} held"
    );
    // Not a single warning, while the stalls ran or at their end, told the user to change
    // code that did nothing wrong.
    let log = log.text();
    assert!(
        advice(&log).is_empty(),
        "warnings that advise a code change: {:#?}",
        advice(&log)
    );
}

#[test]
fn a_thread_sleeping_on_a_host_short_of_cpu_is_a_sleep_not_descheduled() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let watched = watched();
    let rt = pinned_runtime(&watched);
    let spinners = Spinners::start();
    watched.scope(|| {
        rt.block_on(async {
            tokio::spawn(async { std::thread::sleep(Duration::from_millis(100)) })
                .await
                .unwrap();
        });
    });
    drop(spinners);
    let report = watched.final_report();
    drop(rt);
    let (stalls, _) = this_files(&report);
    let sleep = stalls
        .iter()
        .find(|s| s.duration_ns >= 100_000_000)
        .unwrap_or_else(|| panic!("the sleep is a stall: {stalls:#?}"));
    assert_eq!(sleep.cause, "sleep", "{sleep:#?}");
    let wait = sleep.runqueue_wait_ns.expect("run-queue wait measured");
    let run = sleep.run_ns.expect("run time measured");
    // Asleep for most of it: neither running nor waiting for a CPU, whatever the load.
    assert!(
        run + wait < sleep.duration_ns / 2,
        "ran {run} and waited {wait} ns of {} held asleep",
        sleep.duration_ns
    );
}

/// A write through a tokio `TcpStream` goes through mio's non-blocking socket: it can be slow
/// on a host short of CPU (the kernel copies, the thread waits for a CPU), but it never waits
/// for the socket, so pollwatch names no blocking API for it and advises no async replacement.
#[test]
fn tokio_socket_writes_on_a_host_short_of_cpu_are_never_blamed_as_blocking() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const CHUNK: usize = 256 << 10;
    const MAX_WRITES: usize = 20_000;
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The reader runs unwatched and unpinned: it drains whatever is written.
    let reader_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = reader_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    reader_rt.spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; CHUNK];
        while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    });
    let watched = watched();
    let rt = pinned_runtime(&watched);
    let spinners = Spinners::start();
    let handle = watched.handle.clone();
    let writes = watched.scope(|| {
        rt.block_on(async move {
            tokio::spawn(async move {
                let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
                let chunk = vec![7u8; CHUNK];
                // Until a stall has been caught inside the socket's write path (its stack in
                // mio), or long enough that none will be.
                for writes in 0..MAX_WRITES {
                    socket.write_all(&chunk).await.unwrap();
                    if writes % 64 == 0 && in_socket_write(&handle.report()) > 0 {
                        return writes;
                    }
                }
                MAX_WRITES
            })
            .await
            .unwrap()
        })
    });
    drop(spinners);
    let report = watched.final_report();
    drop(rt);
    drop(reader_rt);
    let (stalls, causes) = this_files(&report);
    eprintln!(
        "{writes} writes of {CHUNK} bytes through a tokio TcpStream on a host short of CPU: \
         causes {causes:?}, {} stalls caught in the socket's write path",
        in_socket_write(&report)
    );
    assert!(
        in_socket_write(&report) > 0,
        "no stall was caught inside the socket's write path, so none was judged: {stalls:#?}"
    );
    // The stalls in the socket's write path (the task's own checks of the report, CPU work
    // in pollwatch's histogram encoding, are stalls of another kind).
    for stall in stalls.iter().filter(|s| runs_through_mio(s)) {
        assert!(
            stall.blocking_call.is_none() && stall.cause != "network",
            "tokio's non-blocking write named as blocking: {stall:#?}"
        );
        assert!(
            !stall.suggestion.contains("tokio::net") && !stall.suggestion.contains("AsyncWrite"),
            "an async replacement advised for code that is already async: {stall:#?}"
        );
    }
}

/// Whether a stall's stack runs through mio's socket write.
fn runs_through_mio(stall: &pollwatch_report::Stall) -> bool {
    stall.backtrace.iter().any(|f| {
        f.function.contains("mio::") || f.file.as_deref().is_some_and(|f| f.contains("/mio-"))
    })
}

/// The stalls whose stack runs through mio's socket write.
fn in_socket_write(report: &pollwatch::Report) -> usize {
    report.stalls.iter().filter(|s| runs_through_mio(s)).count()
}
