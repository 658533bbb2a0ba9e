#![cfg(feature = "console")]
//! With the `console` feature, pollwatch serves the tokio-console feed, and a gRPC client
//! speaking tokio-console's protocol (`console-api`) sees the blocking task with its poll
//! stats and the task's spawn site as a live `BlockingSite` resource.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use console_api::field::Value;
use console_api::instrument::InstrumentRequest;
use pollwatch::Builder;
use support::Watched;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

/// How long the client may wait for the whole picture.
const DEADLINE: Duration = Duration::from_secs(30);
/// Each poll of the blocking task sleeps this long.
const BLOCK: Duration = Duration::from_millis(60);
const THIS_FILE: &str = "console_feed_shows_blocking_sites.rs";

#[test]
fn console_feed_shows_the_blocking_task_and_its_blocking_site() {
    let addr = support::console::free_local_addr();
    let builder = Builder::new()
        .threshold(Duration::from_millis(20))
        .console_addr(addr);
    let console = builder.console_layer().expect("console layer");
    let (layer, handle) = builder.build();
    let watched = Watched {
        dispatch: Dispatch::new(tracing_subscriber::registry().with(console).with(layer)),
        handle,
    };
    let rt = watched.runtime(2);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let blocking = async move {
        while !stopped.load(Ordering::Relaxed) {
            std::thread::sleep(BLOCK);
            tokio::task::yield_now().await;
        }
    };
    let spawn_line = line!() + 3;
    let blocker = watched.scope(|| {
        let _rt = rt.enter();
        let spawn = tokio::task::Builder::new().name("blocker").spawn(blocking);
        spawn.unwrap()
    });

    // The client runs on its own runtime, outside pollwatch's subscriber.
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seen = client_rt.block_on(watch_until_complete(addr, spawn_line));
    stop.store(true, Ordering::Relaxed);
    rt.block_on(blocker).unwrap();
    drop(rt);
    let report = watched.final_report();

    let seen = seen.unwrap_or_else(|partial| panic!("incomplete console feed: {partial:#?}"));
    eprintln!("seen over the console protocol: {seen:#?}");
    let task = seen.task.as_ref().unwrap();
    assert!(task.polls >= 3, "{task:?}");
    assert!(task.busy >= BLOCK * 3, "{task:?}");
    let attrs = &seen.attributes;
    assert!(
        matches!(attrs["stall_count"], (Value::U64Val(n), _) if n >= 1),
        "{attrs:?}"
    );
    assert!(
        matches!(&attrs["longest_stall"], (Value::U64Val(ms), Some(u)) if *ms >= 20 && u == "ms"),
        "{attrs:?}"
    );
    assert!(
        matches!(&attrs["poll_p99"], (Value::U64Val(us), Some(u)) if *us >= 50_000 && u == "µs"),
        "{attrs:?}"
    );
    assert!(
        matches!(attrs["stalled_now"], (Value::BoolVal(_), _)),
        "{attrs:?}"
    );
    assert_eq!(text(attrs, "last_cause"), "sleep");
    let call_site = text(attrs, "last_call_site");
    assert!(call_site.contains(THIS_FILE), "{call_site}");
    assert!(call_site.contains("std::thread::sleep"), "{call_site}");
    assert!(
        text(attrs, "suggestion").contains("tokio::time::sleep"),
        "{attrs:?}"
    );

    // pollwatch measured the same task, and its own resource spans, entered on its reporter
    // thread, were not taken for polls: only the runtime's workers polled.
    let site = support::site_named(&report, "blocker");
    assert!(site.stalls >= 1 && site.polls >= task.polls, "{site:?}");
    assert!(report.totals.threads <= 2, "{:?}", report.totals);
}

/// What the client has seen of the blocking task and its site's resource.
#[derive(Debug, Default)]
struct Seen {
    task_id: Option<u64>,
    task: Option<TaskStats>,
    resource_id: Option<u64>,
    attributes: HashMap<String, (Value, Option<String>)>,
}

#[derive(Debug)]
struct TaskStats {
    polls: u64,
    busy: Duration,
}

impl Seen {
    const ATTRIBUTES: [&'static str; 7] = [
        "stall_count",
        "longest_stall",
        "poll_p99",
        "stalled_now",
        "last_cause",
        "last_call_site",
        "suggestion",
    ];

    fn complete(&self) -> bool {
        self.task
            .as_ref()
            .is_some_and(|t| t.polls >= 3 && t.busy >= BLOCK * 3)
            && Self::ATTRIBUTES
                .iter()
                .all(|name| self.attributes.contains_key(*name))
    }

    fn take(&mut self, update: console_api::instrument::Update, spawn_line: u32) {
        let at_spawn = |location: &Option<console_api::Location>| {
            location.as_ref().is_some_and(|l| {
                l.file.as_deref().is_some_and(|f| f.ends_with(THIS_FILE))
                    && l.line == Some(spawn_line)
            })
        };
        if let Some(tasks) = update.task_update {
            for task in tasks.new_tasks {
                if at_spawn(&task.location) {
                    self.task_id = task.id.map(|id| id.id);
                }
            }
            let stats = self.task_id.and_then(|id| tasks.stats_update.get(&id));
            if let Some(poll) = stats.and_then(|s| s.poll_stats.as_ref()) {
                let busy = poll.busy_time.as_ref().map_or(Duration::ZERO, |d| {
                    Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32)
                });
                self.task = Some(TaskStats {
                    polls: poll.polls,
                    busy,
                });
            }
        }
        if let Some(resources) = update.resource_update {
            for resource in resources.new_resources {
                if resource.concrete_type == "BlockingSite" && at_spawn(&resource.location) {
                    self.resource_id = resource.id.map(|id| id.id);
                }
            }
            let stats = self
                .resource_id
                .and_then(|id| resources.stats_update.get(&id));
            for attribute in stats.map(|s| s.attributes.as_slice()).unwrap_or_default() {
                let Some(field) = &attribute.field else {
                    continue;
                };
                if let (Some(console_api::field::Name::StrName(name)), Some(value)) =
                    (&field.name, &field.value)
                {
                    self.attributes
                        .insert(name.clone(), (value.clone(), attribute.unit.clone()));
                }
            }
        }
    }
}

/// Connects to the feed and reads updates until the task's stats and every attribute of its
/// site's resource have arrived, or the deadline passes (then returns what it saw).
async fn watch_until_complete(addr: SocketAddr, spawn_line: u32) -> Result<Seen, Seen> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut seen = Seen::default();
    // The server starts on console-subscriber's own thread.
    let Some(mut client) = support::console::connect(addr, deadline).await else {
        return Err(seen);
    };
    let Ok(Ok(response)) =
        tokio::time::timeout_at(deadline, client.watch_updates(InstrumentRequest {})).await
    else {
        return Err(seen);
    };
    let mut stream = response.into_inner();
    loop {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Ok(Ok(Some(update))) => {
                seen.take(update, spawn_line);
                if seen.complete() {
                    return Ok(seen);
                }
            }
            _ => return Err(seen),
        }
    }
}

fn text(attributes: &HashMap<String, (Value, Option<String>)>, name: &str) -> String {
    match attributes.get(name) {
        Some((Value::StrVal(s), _)) => s.clone(),
        other => panic!("{name} is not a string: {other:?} in {attributes:?}"),
    }
}
