//! The site table: every spawn site (`loc.file:line:col` plus task name) interned once to a
//! small [`SiteId`], so per-site memory grows with sites, not with tasks.
//!
//! The table is bounded ([`crate::DEFAULT_MAX_SITES`] by default). Tasks from sites beyond the
//! bound share one overflow site, and are counted. Interning happens on the spawn path (a read
//! lock, a write lock only the first time a site is seen), never on the poll path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use crate::task::TaskFields;

/// A site's index in the table, and in every thread's recorder array.
pub(crate) type SiteId = u32;

/// The label of the site that collects tasks from sites beyond the bound.
pub(crate) const OVERFLOW_LABEL: &str = "<overflow>";

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
    pub(crate) label: String,
    pub(crate) file: String,
    pub(crate) line: u32,
    pub(crate) col: u32,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) tasks_spawned: AtomicU64,
}

impl Site {
    fn new(fields: &TaskFields) -> Self {
        Self {
            label: label(
                display_file(&fields.file),
                fields.line,
                fields.col,
                &fields.name,
            ),
            file: display_file(&fields.file).to_owned(),
            line: fields.line,
            col: fields.col,
            name: fields.name.clone(),
            kind: fields.kind.clone(),
            tasks_spawned: AtomicU64::new(0),
        }
    }

    fn overflow() -> Self {
        Self {
            label: OVERFLOW_LABEL.to_owned(),
            file: String::new(),
            line: 0,
            col: 0,
            name: String::new(),
            kind: String::new(),
            tasks_spawned: AtomicU64::new(0),
        }
    }
}

/// A spawn location's file as a person reads it: paths into cargo's registry or git checkouts
/// start at the crate (`axum-0.8.9/src/serve/mod.rs`), others are kept as tokio gives them.
pub(crate) fn display_file(file: &str) -> &str {
    for marker in ["/.cargo/registry/src/", "/.cargo/git/checkouts/"] {
        if let Some(at) = file.find(marker) {
            let rest = &file[at + marker.len()..];
            // Skip the registry index directory (`index.crates.io-<hash>/`).
            return rest.split_once('/').map_or(rest, |(_, krate)| krate);
        }
    }
    file
}

/// `file:line:col`, plus ` "name"` when the task is named.
pub(crate) fn label(file: &str, line: u32, col: u32, name: &str) -> String {
    if name.is_empty() {
        format!("{file}:{line}:{col}")
    } else {
        format!("{file}:{line}:{col} \"{name}\"")
    }
}

#[derive(Debug, Default)]
struct Inner {
    ids: HashMap<SiteKey, SiteId>,
    sites: Vec<Arc<Site>>,
}

/// The bounded table of sites. Site ids `0..max_sites` are real sites; `max_sites` is the
/// overflow site.
#[derive(Debug)]
pub(crate) struct Sites {
    max_sites: u32,
    inner: RwLock<Inner>,
    overflow: Arc<Site>,
    overflowed_tasks: AtomicU64,
}

impl Sites {
    pub(crate) fn new(max_sites: u32) -> Self {
        Self {
            max_sites,
            inner: RwLock::default(),
            overflow: Arc::new(Site::overflow()),
            overflowed_tasks: AtomicU64::new(0),
        }
    }

    /// Interns the task's site and counts the task as spawned there.
    pub(crate) fn intern(&self, fields: &TaskFields) -> SiteId {
        let key = SiteKey {
            file: fields.file.clone(),
            line: fields.line,
            col: fields.col,
            name: fields.name.clone(),
        };
        let found = self.inner.read().ok().and_then(|inner| {
            inner
                .ids
                .get(&key)
                .map(|&id| (id, inner.sites[id as usize].clone()))
        });
        let (id, site) = match found {
            Some(found) => found,
            None => match self.inner.write() {
                Ok(mut inner) => {
                    if let Some(&id) = inner.ids.get(&key) {
                        (id, inner.sites[id as usize].clone())
                    } else if inner.sites.len() < self.max_sites as usize {
                        let id = inner.sites.len() as SiteId;
                        let site = Arc::new(Site::new(fields));
                        inner.sites.push(site.clone());
                        inner.ids.insert(key, id);
                        (id, site)
                    } else {
                        (self.max_sites, self.overflow.clone())
                    }
                }
                Err(_) => (self.max_sites, self.overflow.clone()),
            },
        };
        site.tasks_spawned.fetch_add(1, Relaxed);
        if id == self.max_sites {
            self.overflowed_tasks.fetch_add(1, Relaxed);
        }
        id
    }

    /// Every site, indexed by id; the overflow site last.
    pub(crate) fn all(&self) -> Vec<(SiteId, Arc<Site>)> {
        let mut all: Vec<(SiteId, Arc<Site>)> = match self.inner.read() {
            Ok(inner) => inner
                .sites
                .iter()
                .enumerate()
                .map(|(id, site)| (id as SiteId, site.clone()))
                .collect(),
            Err(_) => Vec::new(),
        };
        all.push((self.max_sites, self.overflow.clone()));
        all
    }

    /// The label of one site, for events.
    pub(crate) fn get(&self, id: SiteId) -> Option<Arc<Site>> {
        if id == self.max_sites {
            return Some(self.overflow.clone());
        }
        self.inner.read().ok()?.sites.get(id as usize).cloned()
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
        assert_eq!(sites.get(0).unwrap().tasks_spawned.load(Relaxed), 3);
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
        assert_eq!(sites.intern(&fields(1, "")), 0);
        assert_eq!(sites.intern(&fields(2, "")), 1);
        assert_eq!(sites.intern(&fields(3, "")), 2);
        assert_eq!(sites.intern(&fields(4, "")), 2);
        assert_eq!(sites.overflowed_tasks(), 2);
        assert_eq!(sites.get(2).unwrap().label, OVERFLOW_LABEL);
    }
}
