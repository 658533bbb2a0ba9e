//! Capturing is safe to repeat: 500 captures in a row, 200 captures of a thread blocked in a
//! raw pipe `read` (no `EINTR` reaches it), captures of threads that exit meanwhile, and
//! captures from two threads at once.
#![cfg(target_os = "linux")]

mod support;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pollwatch_capture::{CaptureError, Inspector, Target};
use support::{capture, function_names, in_syscall, thread_with_tid, wait_for_state, TIMEOUT};

#[inline(never)]
fn sleeps_briefly_in_a_loop(stop: Arc<AtomicBool>) {
    while !stop.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[inline(never)]
fn sleeps_in_another_loop(stop: Arc<AtomicBool>) {
    while !stop.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(3));
    }
}

#[test]
fn five_hundred_captures_in_a_row_all_succeed() {
    let inspector = pollwatch_capture::inspector(true);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tid, handle) = thread_with_tid(move || sleeps_briefly_in_a_loop(flag));
    let mut took: Vec<Duration> = Vec::new();
    let mut results = Vec::new();
    for _ in 0..500 {
        results.push(capture(&*inspector, tid));
    }
    stop.store(true, SeqCst);
    handle.join().unwrap();
    for result in results {
        let stack = result.expect("capture");
        assert!(!stack.ips.is_empty());
        took.push(stack.took);
    }
    took.sort();
    println!(
        "500 captures (signal sent -> frames stored): p50 {:?}, p99 {:?}, max {:?}",
        took[250], took[495], took[499]
    );
}

#[inline(never)]
fn reads_a_raw_pipe(fd: i32) -> (isize, i32, [u8; 4]) {
    let mut buf = [0u8; 4];
    // SAFETY: `fd` is an open pipe read end owned by the test; `buf` is writable for 4 bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    (n, errno, buf)
}

#[test]
fn a_raw_pipe_read_never_sees_eintr() {
    let inspector = pollwatch_capture::inspector(true);
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a writable array of two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let [read_end, write_end] = fds;
    // One plain read(2), not retried: an interruption would be returned as -1/EINTR.
    let (tid, handle) = thread_with_tid(move || reads_a_raw_pipe(read_end));
    let (state, seen) = wait_for_state(&*inspector, tid, |s| in_syscall(s, "read"));
    let results: Vec<_> = (0..200).map(|_| capture(&*inspector, tid)).collect();
    let still = inspector.thread_state(tid);
    // SAFETY: `write_end` is the pipe's open write end; the buffer is 4 readable bytes.
    let written = unsafe { libc::write(write_end, b"data".as_ptr().cast(), 4) };
    let (n, errno, buf) = handle.join().unwrap();
    // SAFETY: both descriptors are open and owned here; nothing uses them afterwards.
    unsafe {
        libc::close(read_end);
        libc::close(write_end);
    }

    assert!(seen, "never seen in read: {state:?}");
    assert!(
        matches!(
            state.unwrap().syscall.unwrap().target,
            Some(Target::Pipe { .. })
        ),
        "an anonymous pipe is a Pipe target"
    );
    assert_eq!(written, 4);
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 200, "{:?}", results.iter().find(|r| r.is_err()));
    assert!(
        still.is_some_and(|s| in_syscall(&s, "read")),
        "still in the same read after 200 captures"
    );
    assert_eq!(
        (n, errno, &buf),
        (4, errno, b"data"),
        "read returned {n}, errno {errno}"
    );
}

#[test]
fn a_thread_that_exits_while_captured_never_hangs_the_capture() {
    let inspector = pollwatch_capture::inspector(true);
    let timeout = Duration::from_millis(200);
    for round in 0..50u64 {
        // Threads that live from 0 to ~2.5 ms, captured until they are gone.
        let (tid, handle) = thread_with_tid(move || {
            let until = Instant::now() + Duration::from_micros(round * 50);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        });
        let mut gone = false;
        for _ in 0..20 {
            let started = Instant::now();
            let result = inspector.capture(tid, timeout);
            assert!(
                started.elapsed() < timeout + Duration::from_millis(100),
                "a capture overran its timeout"
            );
            match result {
                Ok(stack) => assert!(!stack.ips.is_empty()),
                Err(CaptureError::ThreadGone) => {
                    gone = true;
                    break;
                }
                // An exiting thread blocks every signal: it is then not signalled at all. One
                // that took the signal and exited without handling it timed out, and keeps the
                // buffer for its late stack a while (AwaitingLate).
                Err(
                    CaptureError::Timeout
                    | CaptureError::Busy
                    | CaptureError::SignalBlocked
                    | CaptureError::AwaitingLate,
                ) => {}
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        handle.join().unwrap();
        if !gone {
            // Joined. The kernel may still accept a signal for a thread in its last moments of
            // exit (which then never handles it: Timeout; or is seen blocking every signal, as
            // an exiting thread does: not signalled), and may reuse the tid for a new thread of
            // this process (which is then captured: Ok).
            let started = Instant::now();
            let result = inspector.capture(tid, timeout);
            assert!(started.elapsed() < timeout + Duration::from_millis(100));
            assert!(
                matches!(
                    result,
                    Ok(_)
                        | Err(CaptureError::ThreadGone
                            | CaptureError::Timeout
                            | CaptureError::Busy
                            | CaptureError::SignalBlocked
                            | CaptureError::AwaitingLate)
                ),
                "{result:?}"
            );
        }
    }
    // Captures of live threads still work afterwards.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tid, handle) = thread_with_tid(move || sleeps_briefly_in_a_loop(flag));
    let result = capture(&*inspector, tid);
    stop.store(true, SeqCst);
    handle.join().unwrap();
    assert!(!result.expect("capture after exits").ips.is_empty());
}

#[test]
fn concurrent_captures_are_serialized_or_busy_and_never_mixed_up() {
    let inspector: Arc<dyn Inspector> = pollwatch_capture::inspector(true);
    pollwatch_capture::warm_up();
    let stop = Arc::new(AtomicBool::new(false));
    let (flag_a, flag_b) = (stop.clone(), stop.clone());
    let (tid_a, target_a) = thread_with_tid(move || sleeps_briefly_in_a_loop(flag_a));
    let (tid_b, target_b) = thread_with_tid(move || sleeps_in_another_loop(flag_b));
    let callers: Vec<_> = [
        (tid_a, "sleeps_briefly_in_a_loop", "sleeps_in_another_loop"),
        (tid_b, "sleeps_in_another_loop", "sleeps_briefly_in_a_loop"),
    ]
    .into_iter()
    .map(|(tid, own, other)| {
        let inspector = inspector.clone();
        std::thread::spawn(move || {
            // Until 50 stacks each: the two callers (and the other tests of this binary)
            // race for the one capture buffer.
            let (mut ok, mut busy) = (0, 0);
            let deadline = Instant::now() + Duration::from_secs(20);
            while ok < 50 && Instant::now() < deadline {
                match inspector.capture(tid, TIMEOUT) {
                    Ok(stack) => {
                        let names = function_names(&stack);
                        assert!(names.iter().any(|n| n.ends_with(own)), "{names:#?}");
                        assert!(!names.iter().any(|n| n.ends_with(other)), "{names:#?}");
                        ok += 1;
                    }
                    Err(CaptureError::Busy) => {
                        busy += 1;
                        std::thread::yield_now();
                    }
                    Err(e) => panic!("neither a stack nor Busy: {e:?}"),
                }
            }
            println!("{own}: {ok} stacks, {busy} busy");
            ok
        })
    })
    .collect();
    let oks: Vec<usize> = callers.into_iter().map(|c| c.join().unwrap()).collect();
    stop.store(true, SeqCst);
    target_a.join().unwrap();
    target_b.join().unwrap();
    assert_eq!(oks, [50, 50], "each caller got its stacks");
}
