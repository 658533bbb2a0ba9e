//! The capture signal handler never allocates. A counting global allocator counts, per
//! thread, the allocations made on a thread that only spins (and so allocates nothing by
//! itself) while it is captured 100 times. A control run on the same thread with a signal
//! handler that does allocate shows that the count sees allocations made inside a handler.
//!
//! What this cannot see: `malloc` calls made by C code directly (libgcc's unwinder), which
//! bypass Rust's global allocator.
#![cfg(target_os = "linux")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::SeqCst};
use std::time::{Duration, Instant};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator; only counts, in a const-initialised
// thread local without destructor (usable inside a signal handler and during thread exit).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_here() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// 0: captures by pollwatch; 1: control signals; 2: stop.
static PHASE: AtomicU8 = AtomicU8::new(0);
static DURING_CAPTURES: AtomicU64 = AtomicU64::new(u64::MAX);
static CONTROL_HANDLED: AtomicBool = AtomicBool::new(false);

/// A handler that allocates, as a careless one would.
extern "C" fn allocating_handler(_: i32, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let boxed = std::hint::black_box(Box::new(42u64));
    drop(boxed);
    CONTROL_HANDLED.store(true, SeqCst);
}

#[inline(never)]
fn spins_without_allocating() -> u64 {
    let before = allocations_here();
    while PHASE.load(SeqCst) == 0 {
        std::hint::spin_loop();
    }
    DURING_CAPTURES.store(allocations_here() - before, SeqCst);
    let before = allocations_here();
    while PHASE.load(SeqCst) == 1 {
        std::hint::spin_loop();
    }
    allocations_here() - before
}

#[test]
fn the_signal_handler_does_not_allocate() {
    let inspector = pollwatch_capture::inspector(true);
    assert!(inspector.can_capture());
    let control_signal = libc::SIGRTMIN() + 6;
    // SAFETY: zeroed is a valid starting sigaction; the handler has the SA_SIGINFO signature.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = allocating_handler as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    // SAFETY: `action` is initialised; the signal is only sent to the spinning thread.
    assert_eq!(
        unsafe { libc::sigaction(control_signal, &action, std::ptr::null_mut()) },
        0
    );

    let (tx, rx) = std::sync::mpsc::channel();
    let spinner = std::thread::spawn(move || {
        tx.send(pollwatch_capture::current_tid()).unwrap();
        spins_without_allocating()
    });
    let tid = rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(10));

    let mut stacks = 0;
    for _ in 0..100 {
        let stack = inspector
            .capture(tid, Duration::from_secs(1))
            .expect("capture");
        assert!(!stack.ips.is_empty());
        stacks += 1;
    }
    PHASE.store(1, SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    while DURING_CAPTURES.load(SeqCst) == u64::MAX && Instant::now() < deadline {
        std::thread::yield_now();
    }
    // SAFETY: getpid has no preconditions; `tid` is the live spinner of this process.
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, control_signal) };
    assert_eq!(sent, 0);
    while !CONTROL_HANDLED.load(SeqCst) && Instant::now() < deadline {
        std::thread::yield_now();
    }
    PHASE.store(2, SeqCst);
    let during_control = spinner.join().unwrap();

    assert_eq!(stacks, 100);
    assert!(CONTROL_HANDLED.load(SeqCst));
    assert!(
        during_control > 0,
        "the control handler's allocation was not counted: the test cannot see any"
    );
    assert_eq!(
        DURING_CAPTURES.load(SeqCst),
        0,
        "pollwatch's handler allocated on the captured thread"
    );
}
