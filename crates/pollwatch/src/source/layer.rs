//! The tracing poll source: a `tracing_subscriber::Layer` that classifies spans and forwards
//! task polls to the poll path.

use std::sync::Arc;

use tracing_core::span::{Attributes, Id};
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::poll::TaskInfo;
use crate::state::State;
use crate::task::{is_task_span, TaskFields, TASK_TARGET};

/// The layer that measures every poll of every tokio task. Build it with
/// [`crate::PollWatch::builder`] and add it to a `tracing_subscriber::registry()`.
///
/// It observes the `runtime.spawn` spans tokio opens around every poll when built with
/// `--cfg tokio_unstable` and its `tracing` feature, and ignores every other span. It never
/// filters: other layers see exactly what they would see without it.
#[derive(Debug)]
#[must_use = "the layer measures nothing until it is added to a subscriber"]
pub struct PollWatchLayer {
    state: Arc<State>,
}

impl PollWatchLayer {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for PollWatchLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.state.subscriber.set(subscriber);
        self.state.setup.installed();
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.state.setup.saw_callsite(metadata);
        Interest::always()
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !is_task_span(attrs.metadata()) {
            return;
        }
        let mut fields = TaskFields::default();
        attrs.record(&mut fields);
        let site = self.state.sites.intern(&fields);
        self.state.setup.saw_task();
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
        let Some(task) = span.extensions().get::<TaskInfo>().copied() else {
            return;
        };
        self.state.poll.close(id.into_u64(), task);
    }
}
