//! A thread's cache of the sites its polls' spawn locations map to: what the runtime-hooks
//! source reads on every poll instead of the site table (whose lookup takes a lock and hashes
//! the location's file name).
//!
//! Direct-mapped and keyed by the address of the `&'static Location`: a hit is two loads from
//! the thread's own slot, with no hashing, no lock and no other thread-local access. Only the
//! slot's thread reads or writes it.

use std::panic::Location;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};

use crate::sites::SiteId;

/// Entries of the cache (a power of two).
const ENTRIES: usize = 64;

/// One location's site; a zero address is an empty entry.
#[derive(Debug, Default)]
struct Entry {
    location: AtomicUsize,
    site: AtomicU32,
}

/// The sites of the locations a thread's polls came from.
#[derive(Debug)]
pub(crate) struct SiteCache {
    entries: [Entry; ENTRIES],
}

impl Default for SiteCache {
    fn default() -> Self {
        Self {
            entries: std::array::from_fn(|_| Entry::default()),
        }
    }
}

impl SiteCache {
    /// The site of futures spawned at `location`, if cached.
    #[inline(always)]
    pub(crate) fn get(&self, location: &'static Location<'static>) -> Option<SiteId> {
        let (entry, address) = self.entry(location);
        (entry.location.load(Relaxed) == address)
            .then(|| SiteId::from_index(entry.site.load(Relaxed)))
    }

    /// The site of futures spawned at `location`: cached, else `intern`ed and cached.
    #[inline]
    pub(crate) fn site(
        &self,
        location: &'static Location<'static>,
        intern: impl FnOnce() -> SiteId,
    ) -> SiteId {
        if let Some(site) = self.get(location) {
            return site;
        }
        let (entry, address) = self.entry(location);
        self.miss(entry, address, intern)
    }

    /// The entry `location` maps to, and the address it is keyed by.
    #[inline(always)]
    fn entry(&self, location: &'static Location<'static>) -> (&Entry, usize) {
        let address = std::ptr::from_ref(location) as usize;
        (&self.entries[(address >> 3) & (ENTRIES - 1)], address)
    }

    #[cold]
    #[inline(never)]
    fn miss(&self, entry: &Entry, address: usize, intern: impl FnOnce() -> SiteId) -> SiteId {
        let site = intern();
        entry.site.store(site.index(), Relaxed);
        entry.location.store(address, Relaxed);
        site
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_location_is_interned_once() {
        let cache = SiteCache::default();
        let here: &'static Location<'static> = Location::caller();
        let other: &'static Location<'static> = Location::caller();
        let interned = std::cell::Cell::new(0);
        let intern = |index| {
            interned.set(interned.get() + 1);
            SiteId::from_index(index)
        };
        assert_eq!(cache.site(here, || intern(3)).index(), 3);
        assert_eq!(cache.site(here, || intern(4)).index(), 3, "cached");
        assert_eq!(cache.site(other, || intern(5)).index(), 5);
        assert_eq!(cache.site(other, || intern(6)).index(), 5, "cached");
        assert_eq!(cache.site(here, || intern(7)).index(), 3, "both cached");
        assert_eq!(interned.get(), 2);
    }
}
