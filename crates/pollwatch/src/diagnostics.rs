//! Problems with the setup or the environment that pollwatch noticed, as sentences saying
//! what to change: printed once on stderr and listed in every report.

use std::io::Write;

use parking_lot::Mutex;

/// Prints `text` and a newline on stderr. A stderr that cannot be written (closed, a pipe
/// nobody reads) loses the line and nothing else: `eprintln!` panics there, which on
/// pollwatch's threads would stop them, and in a guard dropped while the application unwinds
/// from a panic would abort the process.
pub(crate) fn say(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// The diagnostics of one layer.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    list: Mutex<Vec<String>>,
    /// The keys of the diagnostics said once ([`Diagnostics::push_once`]).
    said: Mutex<Vec<&'static str>>,
}

impl Diagnostics {
    /// Records `text` and prints it on stderr.
    pub(crate) fn push(&self, text: String) {
        say(&text);
        self.list.lock().push(text);
    }

    /// Records and prints `text` unless a diagnostic with the same `key` was pushed before:
    /// a problem that can recur says so once.
    pub(crate) fn push_once(&self, key: &'static str, text: String) {
        {
            let mut said = self.said.lock();
            if said.contains(&key) {
                return;
            }
            said.push(key);
        }
        self.push(text);
    }

    /// Records `text` without printing it (it was said another way, as an event).
    pub(crate) fn record(&self, text: String) {
        self.list.lock().push(text);
    }

    /// Every diagnostic so far, oldest first.
    pub(crate) fn all(&self) -> Vec<String> {
        self.list.lock().clone()
    }
}
