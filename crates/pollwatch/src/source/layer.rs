//! The tracing poll source: a `tracing_subscriber::Layer` that classifies spans and forwards
//! task polls to the poll path.
//!
//! It is a per-layer-filtered layer: its [`TaskFilter`] enables tokio's task spans and nothing
//! else, so installing pollwatch never switches on another callsite (a `trace!` event or a
//! `debug_span!` the application's own output filters out stays disabled, at no cost). It still
//! sees every span *another* layer enabled being entered, which is how a stall can name the
//! innermost span of the application inside the poll: `on_enter`, `on_exit` and `on_close`
//! bypass the filter's per-span check, which would cost a registry lookup per call.
//!
//! Entering a task span reads its task from the layer's [`TaskTable`] (filled when the span
//! opens): no registry lookup and no lock on the poll path. Other spans are looked up in the
//! registry, to tell a span the application entered inside a poll.

use std::any::TypeId;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::{LookupSpan, Registry};
use tracing_subscriber::Layer;

use crate::poll::TaskInfo;
use crate::source::task_table::TaskTable;
use crate::state::State;
use crate::task::{is_task_span, TaskFields, TASK_TARGET};

/// The layer that measures every poll of every tokio task. Build it with
/// [`crate::Builder::build`] and add it to a `tracing_subscriber::registry()`.
///
/// It observes the `runtime.spawn` spans tokio opens around every poll when built with
/// `--cfg tokio_unstable` and its `tracing` feature, and ignores every other span. It never
/// filters what other layers see, and it enables no callsite but tokio's task spans: it is a
/// per-layer-filtered layer, so it needs the `Registry` (as every layer reading spans does).
#[must_use = "the layer measures nothing until it is added to a subscriber"]
pub struct PollWatchLayer<S = Registry> {
    inner: Filtered<TaskLayer, TaskFilter, S>,
}

impl<S> std::fmt::Debug for PollWatchLayer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollWatchLayer").finish_non_exhaustive()
    }
}

impl<S> PollWatchLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    pub(crate) fn new(state: Arc<State>) -> Self {
        let filter = TaskFilter {
            state: state.clone(),
        };
        Self {
            inner: TaskLayer {
                state,
                tasks: TaskTable::default(),
            }
            .with_filter(filter),
        }
    }
}

impl<S> Layer<S> for PollWatchLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.inner.max_level_hint()
    }

    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.inner.on_record(span, values, ctx);
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.inner.on_follows_from(span, follows, ctx);
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.inner.on_event(event, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.inner().on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.inner().on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.inner.inner().on_close(id, ctx);
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }

    // `tracing_subscriber` finds a per-layer filter (and its id) through `downcast_raw`, so
    // the wrapped `Filtered` must answer it; without this, every callsite pollwatch does not
    // want would turn from disabled into "ask every time".
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: the pointer comes from `Filtered::downcast_raw` for the same `id`, under the
        // same contract as this method's: it points into `self.inner`, which lives as long as
        // `self`, and is to a value of the type `id` names.
        unsafe { self.inner.downcast_raw(id) }
    }
}

/// Enables tokio's task spans and nothing else; sees every callsite for the setup check.
struct TaskFilter {
    state: Arc<State>,
}

impl<S> Filter<S> for TaskFilter {
    fn enabled(&self, metadata: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        is_task_span(metadata)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.state.setup.saw_callsite(metadata);
        if is_task_span(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // Task spans are TRACE.
        Some(LevelFilter::TRACE)
    }
}

/// What the layer does with the spans it sees.
struct TaskLayer {
    state: Arc<State>,
    /// The open task spans' tasks, read on enter without the registry.
    tasks: TaskTable,
}

impl<S> Layer<S> for TaskLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.state.subscriber.set(subscriber);
        self.state.setup.installed();
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !is_task_span(attrs.metadata()) {
            return;
        }
        let mut fields = TaskFields::default();
        attrs.record(&mut fields);
        let site = self.state.sites.intern(&fields);
        self.state.setup.saw_task();
        if !self.state.layer_counts_spawns.load(Relaxed) {
            self.state.layer_counts_spawns.store(true, Relaxed);
        }
        let task = TaskInfo {
            task_id: fields.task_id,
            site,
        };
        self.tasks.insert(id.into_u64(), task);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(task);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(task) = self.tasks.get(id.into_u64()) {
            self.state.poll.enter(id.into_u64(), task);
            return;
        }
        // Not a task span, or a task span the table had no room for.
        let Some(span) = ctx.span(id) else { return };
        if span.metadata().target() != TASK_TARGET {
            self.state.poll.enter_inner(id.into_u64());
            return;
        }
        let Some(task) = span.extensions().get::<TaskInfo>().copied() else {
            return;
        };
        self.state.poll.enter(id.into_u64(), task);
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        self.state.poll.exit(id.into_u64());
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if is_task_span(span.metadata()) {
            self.tasks.remove(id.into_u64());
        }
        let Some(task) = span.extensions().get::<TaskInfo>().copied() else {
            return;
        };
        self.state.poll.close(id.into_u64(), task);
    }
}
