//! A capture that times out leaves its request standing in a buffer of its own: the thread
//! records its stack when it next runs user code, `collect_late` hands that stack out once,
//! and meanwhile other threads are captured in the other buffers.
#![cfg(target_os = "linux")]

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pollwatch_capture::{CaptureError, Late};
use support::{capture, function_names, thread_with_tid};

/// Read at once, from the page cache: the kernel copies it in one call that takes signals
/// only when it returns (tens to hundreds of milliseconds).
const SIZE: usize = 256 << 20;

#[inline(never)]
fn reads_a_large_file(path: &Path) -> usize {
    std::fs::read(path).unwrap().len()
}

#[inline(never)]
fn sleeps_in_a_loop(stop: Arc<AtomicBool>) {
    while !stop.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_stack_stored_after_the_wait_is_collected_once() {
    let inspector = pollwatch_capture::inspector(true);
    let dir = std::env::temp_dir().join(format!("pollwatch-late-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("large.bin");
    std::fs::write(&path, vec![7u8; SIZE]).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap().len(),
        SIZE,
        "in the page cache"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (other, sleeper) = thread_with_tid(move || sleeps_in_a_loop(flag));

    let reading = Arc::new(AtomicBool::new(true));
    let (reader_path, still) = (path.clone(), reading.clone());
    let (tid, reader) = thread_with_tid(move || {
        let mut reads = 0;
        // Reads until the test has caught one read in the kernel.
        while still.load(SeqCst) {
            reads += reads_a_large_file(&reader_path);
        }
        reads
    });
    // A capture that times out is one the thread could not answer: it was inside a read.
    let deadline = Instant::now() + Duration::from_secs(20);
    let wait = Duration::from_millis(1);
    let gave_up = loop {
        assert!(
            Instant::now() < deadline,
            "no capture timed out in 20 s of large reads"
        );
        let asked = Instant::now();
        match inspector.capture(tid, wait) {
            Ok(_) | Err(CaptureError::Busy) => continue,
            // It waited `wait`, then saw no stack stored.
            Err(CaptureError::Timeout) => break asked + wait,
            Err(e) => panic!("capture failed: {e}"),
        }
    };
    reading.store(false, SeqCst);

    // Another thread is captured meanwhile, in another buffer: the late stack keeps its own.
    let meanwhile = capture(&*inspector, other);
    assert!(meanwhile.is_ok(), "{meanwhile:?}");
    let stack = loop {
        match inspector.collect_late(tid) {
            Late::Pending => {
                assert!(gave_up.elapsed() < Duration::from_secs(10), "no late stack");
                std::thread::yield_now();
            }
            Late::Stack(stack) => break stack,
            Late::Gone => panic!("the late request was replaced"),
        }
    };
    assert!(
        stack.captured_at > gave_up,
        "stored after the capture gave up"
    );
    let names = function_names(&stack);
    assert!(
        names.iter().any(|n| n.contains("reads_a_large_file")),
        "the stack is the reader's, at its read: {names:#?}"
    );
    assert!(
        matches!(inspector.collect_late(tid), Late::Gone),
        "handed out once"
    );
    assert!(
        capture(&*inspector, other).is_ok(),
        "the buffer is free again"
    );

    stop.store(true, SeqCst);
    sleeper.join().unwrap();
    assert!(reader.join().unwrap() >= SIZE);
    std::fs::remove_dir_all(&dir).unwrap();
}
