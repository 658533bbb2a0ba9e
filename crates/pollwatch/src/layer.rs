//! The `tracing_subscriber::Layer`: classifies spans and forwards task polls to the poll path.

use tracing_core::span::{Attributes, Id};
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use std::sync::Arc;

use crate::shared::Shared;
use crate::task::{is_task_span, TaskFields, TaskInfo, TASK_TARGET};

/// The layer that measures every poll of every tokio task. Build it with
/// [`crate::PollWatch::builder`] and add it to a `tracing_subscriber::registry()`.
///
/// It observes the `runtime.spawn` spans tokio opens around every poll when built with
/// `--cfg tokio_unstable` and its `tracing` feature, and ignores every other span. It never
/// filters: other layers see exactly what they would see without it.
#[derive(Debug)]
#[must_use = "the layer measures nothing until it is added to a subscriber"]
pub struct PollWatchLayer {
    pub(crate) shared: Arc<Shared>,
}

impl<S> Layer<S> for PollWatchLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        if let Ok(mut dispatch) = self.shared.dispatch.lock() {
            *dispatch = Some(subscriber.downgrade());
        }
        self.shared.setup.installed();
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.shared.setup.saw_callsite(metadata);
        Interest::always()
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !is_task_span(attrs.metadata()) {
            return;
        }
        let mut fields = TaskFields::default();
        attrs.record(&mut fields);
        let site = self.shared.sites.intern(&fields);
        self.shared.setup.saw_task();
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(TaskInfo {
                task_id: fields.task_id,
                site,
            });
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if span.metadata().target() != TASK_TARGET {
            self.shared.poll.enter_inner(id.into_u64());
            return;
        }
        let Some(task) = span.extensions().get::<TaskInfo>().copied() else {
            return;
        };
        self.shared.poll.enter(id.into_u64(), task);
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        self.shared.poll.exit(id.into_u64());
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(task) = span.extensions().get::<TaskInfo>().copied() else {
            return;
        };
        self.shared.poll.close(id.into_u64(), task);
    }
}
