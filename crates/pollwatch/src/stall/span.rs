//! The innermost tracing span entered inside a stuck task: its name, and its fields when a
//! fmt layer recorded them. Looked up through the subscriber's `Registry` by the watchdog,
//! while the span is still open (a lock-free slab read, and the span's extensions, which are
//! only write-locked while a layer records into them).

use tracing_core::span::Id;
use tracing_core::Dispatch;
use tracing_subscriber::fmt::format::DefaultFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::registry::{LookupSpan, SpanData};
use tracing_subscriber::Registry;

/// `name{fields}` of span `id`, if the subscriber is built on a `Registry` and the span is
/// still open.
pub(crate) fn describe(dispatch: &Dispatch, id: u64) -> Option<String> {
    let registry = dispatch.downcast_ref::<Registry>()?;
    let id = Id::from_non_zero_u64(std::num::NonZeroU64::new(id)?);
    let data = registry.span_data(&id)?;
    let name = data.metadata().name();
    let fields = data
        .extensions()
        .get::<FormattedFields<DefaultFields>>()
        .map(|f| f.fields.clone())
        .unwrap_or_default();
    Some(if fields.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{fields}}}")
    })
}
