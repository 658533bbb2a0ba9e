//! The process-wide current pollwatch: the state a watched future feeds when it is not given
//! one. Watched futures have no subscriber to find their pollwatch through, so building one
//! (`init`, `try_init`, `runtime`, `Builder::build`, `build_hooks`, `build_watched`, `build_worker_hooks`, `hooks`) makes it
//! current: the most recent one built wins, and [`Handle::make_current`] chooses another.
//!
//! Held weakly: once every handle, guard and layer of the current pollwatch is gone, there is
//! none, and watched futures created then measure nothing. Read once per watched future, when
//! it is created, never per poll: an atomic load when none was ever set, else a read lock.
//!
//! [`Handle::make_current`]: crate::Handle::make_current

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::RwLock;

use crate::state::State;

/// Whether any pollwatch was ever made current: until then, no lock is taken.
static EVER_SET: AtomicBool = AtomicBool::new(false);

/// The current pollwatch's state.
static CURRENT: RwLock<Weak<State>> = parking_lot::const_rwlock(Weak::new());

/// Makes `state` the one watched futures feed when created without a handle.
pub(crate) fn set(state: &Arc<State>) {
    *CURRENT.write() = Arc::downgrade(state);
    EVER_SET.store(true, Ordering::Release);
}

/// The current pollwatch's state, if one is alive.
pub(crate) fn get() -> Option<Arc<State>> {
    if !EVER_SET.load(Ordering::Acquire) {
        return None;
    }
    CURRENT.read().upgrade()
}
