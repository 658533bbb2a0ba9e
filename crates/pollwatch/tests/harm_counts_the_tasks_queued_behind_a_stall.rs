//! A stall's harm: the tasks ready to run while it held its worker, read from the runtime's
//! queues, and the scheduling delay that adds up to. Here a known number of tasks waits behind
//! a known stall on a one-worker runtime, so the figures are known too.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use pollwatch::Builder;
use support::consistent;

/// Long enough that the queue is full by the first look, even when the workers that block
/// start late on a busy machine: each look's count stands for the time since the previous
/// one, so a first look before the queue filled would count too few.
const THRESHOLD: Duration = Duration::from_millis(60);
const BLOCK: Duration = Duration::from_millis(200);
/// Tasks queued behind the stall.
const QUEUED: u64 = 12;
const FILE: &str = "harm_counts_the_tasks_queued_behind_a_stall.rs";

fn one_worker() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// `delay_task_ns` is `tasks` held up for the whole stall, within 1% (rounding of the
/// watchdog's readings of the stall's own time).
fn assert_delay(harm: &pollwatch_report::Harm, tasks: f64, stall: &pollwatch_report::Stall) {
    let expected = tasks * stall.duration_ns as f64;
    let got = harm.delay_task_ns as f64;
    assert!(
        (got - expected).abs() <= expected * 0.01,
        "{tasks} tasks for {} ns: {expected} task-ns expected, got {got}: {harm:#?}",
        stall.duration_ns
    );
}

/// Any build: tasks spawned from outside the runtime wait in its global queue, which the
/// only worker cannot reach while a watched future holds it.
#[test]
fn tasks_in_the_global_queue_behind_a_stall_are_its_harm() {
    let handle = pollwatch::test_support::start(Builder::new().threshold(THRESHOLD));
    let rt = one_worker();
    let (blocking_tx, blocking) = mpsc::channel();
    let watched = handle.watch(async move {
        blocking_tx.send(()).unwrap();
        std::thread::sleep(BLOCK);
    });
    let stalled = rt.spawn(watched);
    blocking.recv().unwrap();
    // The worker is held now: these wait in the global queue until the stall ends.
    let queued: Vec<_> = (0..QUEUED).map(|_| rt.spawn(async {})).collect();
    rt.block_on(async {
        stalled.await.unwrap();
        for task in queued {
            task.await.unwrap();
        }
    });
    drop(rt);
    handle.shutdown();
    let report = consistent(handle.report());
    let stall = support::only_stall(&report, FILE);
    let harm = stall
        .harm
        .as_ref()
        .expect("the worker's runtime queues were read");
    assert_eq!(harm.global_queue_max, QUEUED, "{harm:#?}");
    assert_eq!(harm.workers, 1);
    assert!(
        harm.looks >= 2,
        "a look at every tick while it ran: {harm:#?}"
    );
    if cfg!(tokio_unstable) {
        assert_eq!(harm.local_queue_max, Some(0), "nothing in its own queue");
    } else {
        assert_eq!(
            harm.local_queue_max, None,
            "tokio exposes it only when unstable"
        );
    }
    assert_delay(harm, QUEUED as f64, stall);
    // The site and the totals sum the stalls that ended.
    let site = report
        .sites
        .iter()
        .find(|s| s.label == stall.site)
        .expect("the stall's site");
    assert_eq!(site.delay_task_ns, harm.delay_task_ns);
    assert_eq!(report.totals.delay_task_ns, harm.delay_task_ns);
    // And Prometheus sees it in task-seconds.
    #[cfg(feature = "prometheus")]
    {
        let text = handle.metrics_text();
        let series = text
            .lines()
            .find(|l| {
                l.starts_with("pollwatch_stall_delay_task_seconds_total{") && l.contains(FILE)
            })
            .unwrap_or_else(|| panic!("no delay series in\n{text}"));
        let seconds: f64 = series.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(
            (seconds - harm.delay_task_ns as f64 / 1e9).abs() < 1e-6,
            "{series} vs {harm:?}"
        );
    }
}

/// A one-worker runtime's global queue is the worker's alone; with four workers, a held
/// worker stands in front of a quarter of it (the others take the rest).
#[test]
fn a_held_worker_stands_in_front_of_its_share_of_the_global_queue() {
    let handle = pollwatch::test_support::start(Builder::new().threshold(THRESHOLD));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    // Every worker blocks; the queued tasks wait for any of them.
    let (blocking_tx, blocking) = mpsc::channel();
    let stalled: Vec<_> = (0..4)
        .map(|_| {
            let blocking_tx = blocking_tx.clone();
            rt.spawn(handle.watch(async move {
                blocking_tx.send(()).unwrap();
                std::thread::sleep(BLOCK);
            }))
        })
        .collect();
    for _ in 0..4 {
        blocking.recv().unwrap();
    }
    let queued: Vec<_> = (0..QUEUED).map(|_| rt.spawn(async {})).collect();
    rt.block_on(async {
        for task in stalled.into_iter().chain(queued) {
            task.await.unwrap();
        }
    });
    drop(rt);
    handle.shutdown();
    let report = consistent(handle.report());
    let stalls: Vec<_> = report
        .stalls
        .iter()
        .filter(|s| s.site.contains(FILE))
        .collect();
    assert_eq!(stalls.len(), 4, "{:#?}", report.stalls);
    // The first worker freed runs the queued tasks at once: the stall that ended first had
    // them all behind it to its end, the others until then (as the last looks before saw).
    let end = |s: &pollwatch_report::Stall| s.started_at_ns + s.duration_ns;
    let first_end = stalls.iter().map(|s| end(s)).min().unwrap();
    let share = QUEUED as f64 / 4.0;
    for stall in stalls {
        let harm = stall.harm.as_ref().expect("queues read");
        assert_eq!(
            (harm.workers, harm.global_queue_max),
            (4, QUEUED),
            "{harm:#?}"
        );
        if end(stall) == first_end {
            assert_delay(harm, share, stall);
            continue;
        }
        // The look after the queue drained counts nothing for the time since the look
        // before: up to a tick (5 ms), more when the watchdog itself waits for a CPU.
        let lost_ns = 25_000_000;
        let at_least = share * (first_end - stall.started_at_ns - lost_ns) as f64;
        let at_most = share * stall.duration_ns as f64 * 1.01;
        let got = harm.delay_task_ns as f64;
        assert!(
            at_least <= got && got <= at_most,
            "{got} task-ns, not within {at_least}..{at_most}: {stall:#?}"
        );
    }
}

/// On `rt`, a task spawns `QUEUED` tasks and then blocks: they wait in its worker's own
/// queue. Returns the stall.
#[cfg(tokio_unstable)]
fn spawn_then_block(
    watched: &support::Watched,
    rt: tokio::runtime::Runtime,
) -> pollwatch_report::Stall {
    watched.scope(|| {
        rt.block_on(async {
            tokio::spawn(async {
                let queued: Vec<_> = (0..QUEUED).map(|_| tokio::spawn(async {})).collect();
                std::thread::sleep(BLOCK);
                queued
            })
            .await
            .unwrap()
        })
    });
    drop(rt);
    let report = watched.final_report();
    support::only_stall(&report, FILE).clone()
}

/// With `--cfg tokio_unstable`, tokio exposes each worker's own queue: tasks the stalled task
/// spawned before it blocked wait there, except the last, which tokio keeps in the worker's
/// LIFO slot, not in the queue.
#[cfg(tokio_unstable)]
#[test]
fn tasks_in_the_held_worker_s_own_queue_are_its_harm() {
    let watched = support::Watched::new(THRESHOLD);
    let rt = watched.runtime(1);
    let stall = spawn_then_block(&watched, rt);
    let harm = stall.harm.as_ref().expect("queues read");
    assert_eq!(harm.local_queue_max, Some(QUEUED - 1), "{harm:#?}");
    assert_eq!(harm.global_queue_max, 0);
    assert_delay(harm, (QUEUED - 1) as f64, &stall);
}

/// On a current-thread runtime, the thread running `block_on` is the only worker: the tasks
/// it spawned before blocking wait in its queue.
#[cfg(tokio_unstable)]
#[test]
fn a_current_thread_runtime_s_queue_is_the_harm_of_its_stalls() {
    let watched = support::Watched::new(THRESHOLD);
    let rt = watched.scope(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    });
    let stall = spawn_then_block(&watched, rt);
    let harm = stall.harm.as_ref().expect("queues read");
    assert_eq!(harm.local_queue_max, Some(QUEUED), "{harm:#?}");
    assert_delay(harm, QUEUED as f64, &stall);
}

/// Any build: on an actix-style runtime (one thread, a `LocalSet`), the tasks waiting behind
/// a stall sit in the `LocalSet`'s own queue, which pollwatch cannot read: the harm is
/// unknown, never a false zero.
#[test]
fn tasks_waiting_in_a_local_set_make_the_harm_unknown() {
    use pollwatch::Watch;

    let handle = pollwatch::test_support::start(Builder::new().threshold(THRESHOLD));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let waiting: Vec<_> = (0..QUEUED)
            .map(|_| tokio::task::spawn_local(async {}))
            .collect();
        // A CPU loop, so the watchdog's signal takes its stack (which runs the LocalSet).
        tokio::task::spawn_local(
            async {
                let until = std::time::Instant::now() + BLOCK;
                while std::time::Instant::now() < until {
                    std::hint::black_box(0u64);
                }
            }
            .watched(),
        )
        .await
        .unwrap();
        for task in waiting {
            task.await.unwrap();
        }
    });
    drop(rt);
    handle.shutdown();
    let report = consistent(handle.report());
    let stall = report
        .stalls
        .iter()
        .find(|s| s.site.contains(FILE))
        .unwrap_or_else(|| panic!("the loop is a stall: {:#?}", report.stalls));
    let harm = stall.harm.as_ref().expect("its harm");
    assert!(
        harm.local_set,
        "the LocalSet's queue is not counted: {stall:#?}"
    );
    let site = report
        .sites
        .iter()
        .find(|s| s.label == stall.site)
        .expect("the stall's site");
    assert_eq!(site.delay_unknown_stalls, 1, "{site:#?}");
    let text = pollwatch_report::text::render(&report, 20);
    assert!(
        text.contains("task delay unknown"),
        "the report says the harm is unknown, not zero:\n{text}"
    );
    // The metrics count it as unknown too (with the `prometheus` feature).
    #[cfg(feature = "prometheus")]
    {
        let metrics = handle.metrics_text();
        let line = metrics
            .lines()
            .find(|l| l.starts_with("pollwatch_stall_delay_unknown_total{") && l.contains(FILE))
            .unwrap_or_else(|| panic!("no unknown-delay series:\n{metrics}"));
        assert!(line.ends_with(" 1"), "{line}");
    }
}
