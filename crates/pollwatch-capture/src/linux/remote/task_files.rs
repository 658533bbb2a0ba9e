//! The `/proc/<pid>/task/<tid>/` files read at every tick, kept open and read again from their
//! start: opening one walks its path through `/proc`, which costs more than reading it.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::Tid;

/// The most of a file read here (`syscall`'s line is under 200 bytes, `schedstat`'s under 64).
const MAX_LEN: usize = 512;

/// The files kept open, by thread and name.
#[derive(Debug, Default)]
pub(crate) struct TaskFiles {
    open: RefCell<HashMap<(Tid, &'static str), File>>,
}

impl TaskFiles {
    /// File `name` of thread `tid` of process `pid`, read whole and parsed; `None` when it
    /// cannot be read (the thread is gone: its file is closed, and opened again next time, in
    /// case a new thread took its id).
    pub(crate) fn read<T>(
        &self,
        pid: i32,
        tid: Tid,
        name: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        let mut open = self.open.borrow_mut();
        let file = match open.entry((tid, name)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                e.insert(File::open(format!("/proc/{pid}/task/{tid}/{name}")).ok()?)
            }
        };
        let mut buf = [0u8; MAX_LEN];
        match file.read_at(&mut buf, 0) {
            Ok(n) if n > 0 => parse(std::str::from_utf8(&buf[..n]).ok()?),
            _ => {
                open.remove(&(tid, name));
                None
            }
        }
    }

    /// Closes the files of the threads `alive` says are gone.
    pub(crate) fn retain(&self, alive: impl Fn(Tid) -> bool) {
        self.open.borrow_mut().retain(|(tid, _), _| alive(*tid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_file_is_read_again_from_its_start() {
        let files = TaskFiles::default();
        let pid = i32::try_from(std::process::id()).unwrap();
        let tid = crate::linux::current_tid();
        let run_ns = |files: &TaskFiles| {
            files.read(pid, tid, "schedstat", |text| {
                text.split_whitespace().next()?.parse::<u64>().ok()
            })
        };
        let first = run_ns(&files).unwrap();
        let mut spin = 0u64;
        for i in 0..2_000_000u64 {
            spin = std::hint::black_box(spin.wrapping_add(i));
        }
        let second = run_ns(&files).unwrap();
        assert!(
            second > first,
            "read again, not the first read: {first} then {second}"
        );
        assert_eq!(files.open.borrow().len(), 1, "one file, kept open");
        files.retain(|_| false);
        assert!(files.open.borrow().is_empty());
        assert_eq!(
            files.read(pid, 0, "schedstat", |_| Some(())),
            None,
            "no thread 0"
        );
    }
}
