//! The site of a `&'static Location`, from a per-thread cache: what the sources that learn a
//! future's site from a location (tokio's runtime hooks, for every poll; watched futures, once
//! each) use instead of taking the site table's lock each time.
//!
//! The cache is direct-mapped, keyed by the poll path's id and the location's address, so two
//! pollwatches in one process never read each other's sites. A miss interns the site
//! ([`Sites::site_for`](crate::sites::Sites::site_for), which counts no task) and allocates
//! its key; a hit takes no lock and allocates nothing.

use std::cell::Cell;
use std::panic::Location;

use crate::sites::SiteId;
use crate::state::State;
use crate::task::TaskFields;

/// Entries of the per-thread site cache (a power of two).
const CACHE: usize = 64;

thread_local! {
    /// (poll path id, location address, site index); a zero location is empty.
    static SITE_CACHE: [Cell<(u64, usize, u32)>; CACHE] =
        const { [const { Cell::new((0, 0, 0)) }; CACHE] };
}

/// The site of futures from `location` (unnamed, of `kind` when new): from this thread's
/// cache, else interned.
pub(crate) fn site_of(state: &State, location: &'static Location<'static>, kind: &str) -> SiteId {
    let address = std::ptr::from_ref(location) as usize;
    let key = state.poll.id();
    let slot = (address >> 3) & (CACHE - 1);
    let cached = SITE_CACHE
        .try_with(|cache| {
            let (owner, at, site) = cache[slot].get();
            (owner == key && at == address).then_some(SiteId::from_index(site))
        })
        .ok()
        .flatten();
    if let Some(site) = cached {
        return site;
    }
    let site = state.sites.site_for(&fields(location, kind, ""));
    let _ = SITE_CACHE.try_with(|cache| cache[slot].set((key, address, site.index())));
    site
}

/// The fields of a future of `kind` named `name` from `location`, as the site table keys them.
pub(crate) fn fields(location: &Location<'_>, kind: &str, name: &str) -> TaskFields {
    TaskFields {
        kind: kind.to_owned(),
        name: name.to_owned(),
        task_id: 0,
        file: location.file().to_owned(),
        line: location.line(),
        col: location.column(),
    }
}
