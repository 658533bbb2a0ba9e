//! What pollwatch learns about a task from its `runtime.spawn` span, once, when the task is
//! spawned: never on the poll path.

use std::fmt;
use std::hash::{Hash, Hasher};

use tracing::field::{Field, Visit};

/// The target of the spans tokio opens around every poll of a task or `block_on` future.
/// `spawn_blocking` and the runtime's worker threads use `tokio::task::blocking`: blocking
/// there is allowed, and a worker thread lives inside such a span, so those are never ours.
pub(crate) const TASK_TARGET: &str = "tokio::task";

/// The name of tokio's task spans.
pub(crate) const TASK_SPAN_NAME: &str = "runtime.spawn";

/// True for the callsites whose spans are task polls.
pub(crate) fn is_task_span(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.target() == TASK_TARGET && metadata.name() == TASK_SPAN_NAME
}

/// The `u64` of a task's id, as tokio's task spans record it (`task.id`): read through
/// `task::Id`'s `Hash`, which writes the id's `NonZeroU64` (the id has no stable accessor).
pub(crate) fn id_u64(id: tokio::task::Id) -> u64 {
    let mut writer = IdWriter(0);
    id.hash(&mut writer);
    writer.0
}

/// A `Hasher` that keeps the last `u64` written.
struct IdWriter(u64);

impl Hasher for IdWriter {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The fields of a `runtime.spawn` span, as tokio records them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TaskFields {
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) task_id: u64,
    pub(crate) file: String,
    pub(crate) line: u32,
    pub(crate) col: u32,
}

impl Visit for TaskFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        let small = u32::try_from(value).unwrap_or(u32::MAX);
        match field.name() {
            "task.id" => self.task_id = value,
            "loc.line" => self.line = small,
            "loc.col" => self.col = small,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "loc.file" => self.file = value.to_owned(),
            "task.name" => self.name = value.to_owned(),
            "kind" => self.kind = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // tokio records `kind` and `task.name` with `%`, which reaches visitors as Debug of a
        // Display wrapper: its Debug output is the Display text.
        match field.name() {
            "task.name" => self.name = format!("{value:?}"),
            "kind" => self.kind = format!("{value:?}"),
            "loc.file" if self.file.is_empty() => self.file = format!("{value:?}"),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_read_through_hash_match_tokio_s() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for _ in 0..3 {
            let handle = rt.spawn(async {});
            let id = handle.id();
            assert_eq!(id_u64(id).to_string(), id.to_string());
        }
    }
}
