//! The process-wide current pollwatch: the state a watched future feeds when it is not given
//! one. Watched futures have no subscriber to find their pollwatch through, so building one
//! (`init`, `try_init`, `runtime`, `Builder::build`, `build_hooks`, `build_watched`, `build_worker_hooks`, `hooks`) makes it
//! current: the most recent one built wins, and [`Handle::make_current`] chooses another.
//!
//! Held weakly: once every handle, guard and layer of the current pollwatch is gone, there is
//! none, and watched futures created then measure nothing. Read once per watched future, when
//! it is created, never per poll: an atomic load when none was ever set, else a read lock.
//!
//! A thread may have a current pollwatch of its own, before the process-wide one: a test's
//! watch (`testing`) sets it on the threads of the runtime it watches and while it polls the
//! test's body, so that tests running at once in one process each feed their own, and none
//! is ever made the process-wide current one.
//!
//! [`Handle::make_current`]: crate::Handle::make_current

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::RwLock;

use crate::state::State;

/// Whether any pollwatch was ever made current: until then, no lock is taken.
static EVER_SET: AtomicBool = AtomicBool::new(false);

/// The current pollwatch's state.
static CURRENT: RwLock<Weak<State>> = parking_lot::const_rwlock(Weak::new());

/// Whether any thread was ever given a current pollwatch of its own: until then, no
/// thread-local is read.
static EVER_SCOPED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread's own current pollwatch, before the process-wide one.
    static THREAD: RefCell<Option<Weak<State>>> = const { RefCell::new(None) };
}

/// Makes `state` the one watched futures feed when created without a handle.
pub(crate) fn set(state: &Arc<State>) {
    *CURRENT.write() = Arc::downgrade(state);
    EVER_SET.store(true, Ordering::Release);
}

/// The current pollwatch's state, if one is alive: this thread's own, else the process-wide
/// one.
pub(crate) fn get() -> Option<Arc<State>> {
    if EVER_SCOPED.load(Ordering::Acquire) {
        let own = THREAD
            .try_with(|own| own.borrow().as_ref().and_then(Weak::upgrade))
            .ok()
            .flatten();
        if own.is_some() {
            return own;
        }
    }
    if !EVER_SET.load(Ordering::Acquire) {
        return None;
    }
    CURRENT.read().upgrade()
}

/// Makes `state` this thread's current pollwatch for the rest of its life (a runtime's
/// threads, from `on_thread_start`).
pub(crate) fn set_for_thread(state: &Weak<State>) {
    EVER_SCOPED.store(true, Ordering::Release);
    let _ = THREAD.try_with(|own| *own.borrow_mut() = Some(state.clone()));
}

/// Makes `state` this thread's current pollwatch until the returned scope is dropped, which
/// restores the one before.
pub(crate) fn scope(state: &Weak<State>) -> Scope {
    EVER_SCOPED.store(true, Ordering::Release);
    let before = THREAD
        .try_with(|own| own.replace(Some(state.clone())))
        .ok()
        .flatten();
    Scope { before }
}

/// This thread's current pollwatch for a while: see [`scope`].
pub(crate) struct Scope {
    before: Option<Weak<State>>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        let before = self.before.take();
        let _ = THREAD.try_with(|own| *own.borrow_mut() = before);
    }
}
