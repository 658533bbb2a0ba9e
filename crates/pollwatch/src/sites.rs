//! The site table: every spawn site (`loc.file:line:col` plus task name) interned once to a
//! small [`SiteId`], so per-site memory grows with sites, not with tasks.
//!
//! The table is bounded ([`crate::DEFAULT_MAX_SITES`] by default). Tasks from sites beyond the
//! bound share one overflow site, and are counted. Interning happens on the spawn path (a read
//! lock, a write lock only the first time a site is seen), never on the poll path.
//!
//! Sites are keyed by spawn location first: task names are a bounded attribute of their
//! location, so names that carry ids (`conn-{peer}`, `job-{id}`) never fill the table and a new
//! spawn location always gets a site of its own. A name's digit runs are folded to `#`
//! (`conn-2999` is `conn-#`); a location keeps at most a few names apart (8 by default), and
//! names never take the last quarter of the table (kept for new locations); tasks with any
//! other name share the location's own site (its label without a name).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::RwLock;
use pollwatch_judge::location::display_file;

use crate::task::TaskFields;

/// A site's index in the table, and in every thread's recorder array.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SiteId(u32);

impl SiteId {
    /// The id with index `index` (tests and the poll path's atomics store the raw index).
    pub(crate) const fn from_index(index: u32) -> Self {
        Self(index)
    }

    /// The raw index, for recorder arrays and atomics.
    pub(crate) const fn index(self) -> u32 {
        self.0
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

use crate::config::DEFAULT_NAMES_PER_LOCATION as NAMES_PER_LOCATION;

/// A task name as a site keeps it: each run of ASCII digits folded to one `#`.
fn fold_digits(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.bytes().any(|b| b.is_ascii_digit()) {
        return name.into();
    }
    let mut folded = String::with_capacity(name.len());
    let mut in_digits = false;
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                folded.push('#');
            }
            in_digits = true;
        } else {
            folded.push(c);
            in_digits = false;
        }
    }
    folded.into()
}

/// The label of the site that collects tasks from sites beyond the bound.
pub(crate) const OVERFLOW_LABEL: &str = "<overflow>";

/// The label of a site the table does not know.
pub(crate) const UNKNOWN_LABEL: &str = "<unknown>";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SiteKey {
    file: String,
    line: u32,
    col: u32,
    name: String,
}

/// What is known about one site.
#[derive(Debug)]
pub(crate) struct Site {
    /// `file:line:col`, plus ` "name"` when the task is named: the site in reports.
    pub(crate) label: String,
    /// `file:line:col` (the label without the name), or the label when there is no file.
    pub(crate) location: String,
    pub(crate) file: String,
    pub(crate) line: u32,
    pub(crate) col: u32,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) tasks_spawned: AtomicU64,
}

impl Site {
    /// The site of `fields`'s location, with the task name `name` (folded; empty for the
    /// location's own site).
    fn new(fields: &TaskFields, name: &str) -> Self {
        let file = display_file(&fields.file);
        let location = format!("{file}:{}:{}", fields.line, fields.col);
        Self {
            label: label(&location, name),
            location,
            file: file.to_owned(),
            line: fields.line,
            col: fields.col,
            name: name.to_owned(),
            kind: fields.kind.clone(),
            tasks_spawned: AtomicU64::new(0),
        }
    }

    fn overflow() -> Self {
        Self::without_location(OVERFLOW_LABEL)
    }

    fn without_location(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            location: label.to_owned(),
            file: String::new(),
            line: 0,
            col: 0,
            name: String::new(),
            kind: String::new(),
            tasks_spawned: AtomicU64::new(0),
        }
    }
}

/// `location`, plus ` "name"` when the task is named.
fn label(location: &str, name: &str) -> String {
    if name.is_empty() {
        location.to_owned()
    } else {
        format!("{location} \"{name}\"")
    }
}

#[derive(Debug, Default)]
struct Inner {
    ids: HashMap<SiteKey, SiteId>,
    /// How many named sites each location (its key with an empty name) has.
    names_at: HashMap<SiteKey, usize>,
    sites: Vec<Arc<Site>>,
}

impl Inner {
    /// Whether a new name at `location` gets a site of its own in a table of `max_sites`
    /// that keeps `names` names apart per location.
    fn names_room(&self, location: &SiteKey, max_sites: u32, names: usize) -> bool {
        let for_names = max_sites as usize - max_sites as usize / 4;
        self.sites.len() < for_names && self.names_at.get(location).copied().unwrap_or(0) < names
    }

    fn find(&self, key: &SiteKey) -> Option<(SiteId, Arc<Site>)> {
        self.ids
            .get(key)
            .map(|&id| (id, self.sites[id.0 as usize].clone()))
    }
}

/// The bounded table of sites. Site ids `0..max_sites` are real sites; `max_sites` is the
/// overflow site.
#[derive(Debug)]
pub(crate) struct Sites {
    max_sites: u32,
    names_per_location: usize,
    inner: RwLock<Inner>,
    overflow: Arc<Site>,
    unknown: Arc<Site>,
    overflowed_tasks: AtomicU64,
}

impl Sites {
    pub(crate) fn new(max_sites: u32) -> Self {
        Self {
            max_sites,
            names_per_location: NAMES_PER_LOCATION,
            inner: RwLock::default(),
            overflow: Arc::new(Site::overflow()),
            unknown: Arc::new(Site::without_location(UNKNOWN_LABEL)),
            overflowed_tasks: AtomicU64::new(0),
        }
    }

    /// The same table, keeping `names` task names apart per location.
    pub(crate) fn names_per_location(mut self, names: usize) -> Self {
        self.names_per_location = names;
        self
    }

    /// The number of recorder slots a thread needs: every site and the overflow site.
    pub(crate) fn slots(&self) -> usize {
        self.max_sites as usize + 1
    }

    /// The site bound.
    pub(crate) fn max_sites(&self) -> u32 {
        self.max_sites
    }

    fn overflow_id(&self) -> SiteId {
        SiteId(self.max_sites)
    }

    /// Interns the task's site and counts the task as spawned there.
    pub(crate) fn intern(&self, fields: &TaskFields) -> SiteId {
        let (id, site) = self.lookup(fields);
        self.count(id, &site);
        id
    }

    /// Counts one more task spawned at `id`.
    pub(crate) fn count_task(&self, id: SiteId) {
        self.count(id, &self.get(id));
    }

    fn count(&self, id: SiteId, site: &Site) {
        site.tasks_spawned.fetch_add(1, Relaxed);
        if id == self.overflow_id() {
            self.overflowed_tasks.fetch_add(1, Relaxed);
        }
    }

    /// The task's site, interned if new, without counting a task.
    pub(crate) fn site_for(&self, fields: &TaskFields) -> SiteId {
        self.lookup(fields).0
    }

    fn lookup(&self, fields: &TaskFields) -> (SiteId, Arc<Site>) {
        let location = SiteKey {
            file: fields.file.clone(),
            line: fields.line,
            col: fields.col,
            name: String::new(),
        };
        let key = (!fields.name.is_empty()).then(|| SiteKey {
            name: fold_digits(&fields.name).into_owned(),
            ..location.clone()
        });
        let found = {
            let inner = self.inner.read();
            match &key {
                Some(key) => inner.find(key).or_else(|| {
                    // The location keeps no more names: its own site, if it has one yet.
                    (!inner.names_room(&location, self.max_sites, self.names_per_location))
                        .then(|| inner.find(&location))
                        .flatten()
                }),
                None => inner.find(&location),
            }
        };
        match found {
            Some(found) => found,
            None => self.insert(location, key, fields),
        }
    }

    /// Adds the site for `key` (a name at `location`), or `location`'s own site when the
    /// location keeps no more names, or gives the overflow site when the table is full.
    fn insert(
        &self,
        location: SiteKey,
        key: Option<SiteKey>,
        fields: &TaskFields,
    ) -> (SiteId, Arc<Site>) {
        let mut inner = self.inner.write();
        let key = match key {
            Some(key) if inner.ids.contains_key(&key) => key,
            Some(key) if inner.names_room(&location, self.max_sites, self.names_per_location) => {
                *inner.names_at.entry(location).or_default() += 1;
                key
            }
            _ => location,
        };
        if let Some(found) = inner.find(&key) {
            return found;
        }
        if inner.sites.len() >= self.max_sites as usize {
            return (self.overflow_id(), self.overflow.clone());
        }
        let id = SiteId(inner.sites.len() as u32);
        let site = Arc::new(Site::new(fields, &key.name));
        inner.sites.push(site.clone());
        inner.ids.insert(key, id);
        (id, site)
    }

    /// Every site, indexed by id; the overflow site last.
    pub(crate) fn all(&self) -> Vec<(SiteId, Arc<Site>)> {
        let mut all: Vec<(SiteId, Arc<Site>)> = self
            .inner
            .read()
            .sites
            .iter()
            .enumerate()
            .map(|(id, site)| (SiteId(id as u32), site.clone()))
            .collect();
        all.push((self.overflow_id(), self.overflow.clone()));
        all
    }

    /// One site, or the `<unknown>` site for an id the table never gave out.
    pub(crate) fn get(&self, id: SiteId) -> Arc<Site> {
        if id == self.overflow_id() {
            return self.overflow.clone();
        }
        self.inner
            .read()
            .sites
            .get(id.0 as usize)
            .cloned()
            .unwrap_or_else(|| self.unknown.clone())
    }

    /// Tasks counted in the overflow site because the table was full.
    pub(crate) fn overflowed_tasks(&self) -> u64 {
        self.overflowed_tasks.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: u32, name: &str) -> TaskFields {
        TaskFields {
            kind: "task".into(),
            name: name.into(),
            task_id: 1,
            file: "src/main.rs".into(),
            line,
            col: 5,
        }
    }

    #[test]
    fn same_location_and_name_is_one_site() {
        let sites = Sites::new(8);
        assert_eq!(sites.intern(&fields(3, "")), sites.intern(&fields(3, "")));
        assert_ne!(
            sites.intern(&fields(3, "")),
            sites.intern(&fields(3, "worker"))
        );
        let site = sites.get(SiteId(0));
        assert_eq!(site.tasks_spawned.load(Relaxed), 3);
        assert_eq!(site.label, "src/main.rs:3:5");
        let named = sites.get(SiteId(1));
        assert_eq!(named.label, "src/main.rs:3:5 \"worker\"");
        assert_eq!(named.location, "src/main.rs:3:5");
    }

    #[test]
    fn names_with_ids_are_one_site_and_a_new_location_still_gets_its_own() {
        let sites = Sites::new(16);
        let conn = sites.intern(&fields(3, "conn-0"));
        for i in 1..3000 {
            assert_eq!(sites.intern(&fields(3, &format!("conn-{i}"))), conn);
        }
        let site = sites.get(conn);
        assert_eq!(site.label, "src/main.rs:3:5 \"conn-#\"");
        assert_eq!(site.tasks_spawned.load(Relaxed), 3000);
        let other = sites.intern(&fields(9, ""));
        assert_ne!(other, sites.overflow_id());
        assert_eq!(sites.get(other).label, "src/main.rs:9:5");
        assert_eq!(sites.overflowed_tasks(), 0);
    }

    #[test]
    fn a_location_keeps_a_few_names_apart_and_the_rest_share_its_own_site() {
        let sites = Sites::new(64);
        let names: Vec<String> = (b'a'..=b'z')
            .map(|c| format!("job {}", c as char))
            .collect();
        let ids: Vec<SiteId> = names.iter().map(|n| sites.intern(&fields(3, n))).collect();
        let mut distinct = ids.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), NAMES_PER_LOCATION + 1);
        let shared = ids[NAMES_PER_LOCATION];
        assert_eq!(sites.get(shared).label, "src/main.rs:3:5");
        assert_eq!(
            sites.get(shared).tasks_spawned.load(Relaxed),
            (26 - NAMES_PER_LOCATION) as u64
        );
        // A name kept apart stays its own site; an unnamed task shares the location's site.
        assert_eq!(sites.intern(&fields(3, "job a")), ids[0]);
        assert_eq!(sites.intern(&fields(3, "")), shared);
    }

    #[test]
    fn names_leave_the_last_quarter_of_the_table_to_new_locations() {
        let sites = Sites::new(8);
        // Three locations with two names each use the three quarters names may use.
        for line in 1..=3 {
            sites.intern(&fields(line, "a"));
            sites.intern(&fields(line, "b"));
        }
        // Further names share their location's own site, while the table has room.
        let named = sites.intern(&fields(1, "c"));
        assert_eq!(sites.get(named).label, "src/main.rs:1:5");
        let new = sites.intern(&fields(20, ""));
        assert_eq!(sites.get(new).label, "src/main.rs:20:5");
        assert_eq!(sites.overflowed_tasks(), 0);
    }

    #[test]
    fn digit_runs_fold_to_one_mark() {
        assert_eq!(fold_digits("conn-127.0.0.1:8080"), "conn-#.#.#.#:#");
        assert_eq!(fold_digits("worker"), "worker");
        assert_eq!(fold_digits("job42x7"), "job#x#");
    }

    #[test]
    fn registry_paths_start_at_the_crate() {
        assert_eq!(
            display_file("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/axum-0.8.9/src/serve/mod.rs"),
            "axum-0.8.9/src/serve/mod.rs"
        );
        assert_eq!(display_file("src/main.rs"), "src/main.rs");
    }

    #[test]
    fn sites_beyond_the_bound_go_to_the_overflow_site_and_are_counted() {
        let sites = Sites::new(2);
        assert_eq!(sites.intern(&fields(1, "")), SiteId(0));
        assert_eq!(sites.intern(&fields(2, "")), SiteId(1));
        assert_eq!(sites.intern(&fields(3, "")), SiteId(2));
        assert_eq!(sites.intern(&fields(4, "")), SiteId(2));
        assert_eq!(sites.overflowed_tasks(), 2);
        assert_eq!(sites.get(SiteId(2)).label, OVERFLOW_LABEL);
        assert_eq!(sites.get(SiteId(7)).label, UNKNOWN_LABEL);
    }
}
