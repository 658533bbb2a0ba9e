//! Capturing is safe to repeat: 500 captures in a row, captures of a thread blocked in a raw
//! pipe read (no `EINTR` reaches it), of a thread that exits meanwhile, from two threads at
//! once, and never when switched off.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use pollwatch_capture::{CaptureError, Inspector, RunState, Target};

const TIMEOUT: Duration = Duration::from_secs(1);

/// Starts a thread running `f` and returns its OS thread id.
fn thread_with_tid<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> (i32, std::thread::JoinHandle<T>) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        tx.send(pollwatch_capture::current_tid()).unwrap();
        f()
    });
    (rx.recv().unwrap(), handle)
}

/// Captures, retrying while another test's capture is in flight (`Busy`).
fn capture(
    inspector: &dyn Inspector,
    tid: i32,
) -> Result<pollwatch_capture::RawBacktrace, CaptureError> {
    loop {
        match inspector.capture(tid, TIMEOUT) {
            Err(CaptureError::Busy) => std::thread::yield_now(),
            other => return other,
        }
    }
}

#[inline(never)]
fn sleepy_loop(stop: Arc<AtomicBool>) {
    while !stop.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn five_hundred_captures_in_a_row_all_succeed() {
    let inspector = pollwatch_capture::inspector(true);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tid, handle) = thread_with_tid(move || sleepy_loop(flag));
    let mut took: Vec<Duration> = Vec::new();
    for _ in 0..500 {
        let stack = capture(&*inspector, tid).expect("capture");
        assert!(!stack.ips.is_empty());
        took.push(stack.took);
    }
    stop.store(true, SeqCst);
    handle.join().unwrap();
    took.sort();
    println!("500 captures: p50 {:?}, max {:?}", took[250], took[499]);
}

#[test]
fn a_sleeping_thread_is_seen_sleeping_and_its_stack_names_the_sleep() {
    let inspector = pollwatch_capture::inspector(true);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tid, handle) = thread_with_tid(move || sleepy_loop(flag));
    let mut seen_sleep = false;
    let mut names = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        let state = inspector.thread_state(tid).expect("state");
        if state.run == RunState::Sleeping
            && state
                .syscall
                .as_ref()
                .is_some_and(|s| s.target == Some(Target::Sleep))
        {
            seen_sleep = true;
            let stack = capture(&*inspector, tid).unwrap();
            names = pollwatch_capture::symbolize(&stack.ips)
                .into_iter()
                .filter_map(|f| f.function)
                .collect();
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, SeqCst);
    handle.join().unwrap();
    assert!(seen_sleep, "the thread was seen in a sleep syscall");
    assert!(
        names.iter().any(|n| n.contains("sleepy_loop")),
        "{names:#?}"
    );
    assert!(names.iter().any(|n| n.contains("sleep")), "{names:#?}");
}

#[test]
fn a_raw_pipe_read_never_sees_eintr() {
    let inspector = pollwatch_capture::inspector(true);
    let (mut reader, mut writer) = std::io::pipe().unwrap();
    let (tid, handle) = thread_with_tid(move || {
        let mut buf = [0u8; 4];
        // One plain read(2): std does not retry EINTR here, so an interruption would show.
        reader.read(&mut buf).map(|n| buf[..n].to_vec())
    });
    let mut captured = 0;
    for _ in 0..200 {
        if capture(&*inspector, tid).is_ok() {
            captured += 1;
        }
    }
    let state = inspector.thread_state(tid).expect("state");
    let syscall = state.syscall.expect("in a syscall");
    assert_eq!(syscall.name, Some("read"));
    assert!(
        matches!(syscall.target, Some(Target::Pipe { .. })),
        "{syscall:?}"
    );
    writer.write_all(b"data").unwrap();
    let read = handle.join().unwrap();
    assert_eq!(captured, 200);
    assert_eq!(read.expect("read was not interrupted"), b"data");
}

#[test]
fn a_thread_that_exits_while_captured_never_hangs_the_capture() {
    let inspector = pollwatch_capture::inspector(true);
    for _ in 0..50 {
        let (tid, handle) = thread_with_tid(|| ());
        let mut results = Vec::new();
        for _ in 0..5 {
            results.push(capture(&*inspector, tid));
        }
        handle.join().unwrap();
        for result in results {
            assert!(
                matches!(
                    result,
                    Ok(_) | Err(CaptureError::ThreadGone) | Err(CaptureError::Timeout)
                ),
                "{result:?}"
            );
        }
    }
    // Captures of live threads still work afterwards.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tid, handle) = thread_with_tid(move || sleepy_loop(flag));
    assert!(capture(&*inspector, tid).is_ok());
    stop.store(true, SeqCst);
    handle.join().unwrap();
}

#[test]
fn concurrent_captures_are_serialized_or_busy() {
    let inspector: Arc<dyn Inspector> = pollwatch_capture::inspector(true);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tid, target) = thread_with_tid(move || sleepy_loop(flag));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let inspector = inspector.clone();
            std::thread::spawn(move || {
                (0..100)
                    .map(|_| inspector.capture(tid, TIMEOUT))
                    .filter(|r| match r {
                        Ok(stack) => !stack.ips.is_empty(),
                        Err(e) => *e == CaptureError::Busy,
                    })
                    .count()
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(
            caller.join().unwrap(),
            100,
            "each result is a stack or Busy"
        );
    }
    stop.store(true, SeqCst);
    target.join().unwrap();
}

#[test]
fn switched_off_it_never_captures_but_still_reads_proc() {
    let inspector = pollwatch_capture::inspector(false);
    let me = pollwatch_capture::current_tid();
    assert!(!inspector.can_capture());
    assert_eq!(
        inspector.capture(me, TIMEOUT).unwrap_err(),
        CaptureError::Disabled
    );
    assert_eq!(inspector.thread_state(me).unwrap().run, RunState::Running);
    assert!(inspector.cpu_time_ns(me).is_some());
}

#[test]
fn the_fallback_observes_nothing() {
    let fallback = pollwatch_capture::fallback();
    let me = pollwatch_capture::current_tid();
    assert!(fallback.thread_state(me).is_none() && fallback.cpu_time_ns(me).is_none());
    assert_eq!(
        fallback.capture(me, TIMEOUT).unwrap_err(),
        CaptureError::Unsupported
    );
}
