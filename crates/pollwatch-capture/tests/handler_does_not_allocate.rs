//! The capture signal handler never allocates: a counting global allocator counts the
//! allocations made on the captured thread while it is captured 50 times.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts, in a const-initialised thread local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn the_signal_handler_does_not_allocate() {
    let inspector = pollwatch_capture::inspector(true);
    assert!(inspector.can_capture());
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let spinner_stop = stop.clone();
    let spinner = std::thread::spawn(move || {
        tx.send(pollwatch_capture::current_tid()).unwrap();
        let before = ALLOCATIONS.with(Cell::get);
        // Spin without allocating until told to stop.
        while !spinner_stop.load(SeqCst) {
            std::hint::spin_loop();
        }
        ALLOCATIONS.with(Cell::get) - before
    });
    let tid = rx.recv().unwrap();
    let mut captured = 0;
    for _ in 0..50 {
        let stack = inspector
            .capture(tid, Duration::from_secs(1))
            .expect("capture");
        assert!(!stack.ips.is_empty());
        captured += 1;
    }
    stop.store(true, SeqCst);
    let allocations_on_target = spinner.join().unwrap();
    assert_eq!(captured, 50);
    assert_eq!(
        allocations_on_target, 0,
        "the handler allocated on the captured thread"
    );
}
