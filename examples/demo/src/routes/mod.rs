//! The service's routes: six classic ways to hold a tokio worker thread, each next to its
//! correct twin (`/bad/fs` and `/good/fs`, ...).
//!
//! Every handler runs its work in a task of its own, spawned with a name (`bad_fs`,
//! `good_fs`, ...) from a line of its own, so pollwatch's per-site report lists each mistake
//! and each fix by name.

pub mod block_on;
pub mod client;
pub mod cpu;
pub mod fs;
pub mod lock;
pub mod sleep;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Whether a route makes the mistake or avoids it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Holds a worker thread: blocking I/O, sleeping, a contended lock, CPU work, `block_on`.
    Bad,
    /// Does the same work without holding the worker.
    Good,
}

/// One route of the service, as the load generator requests it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The request path.
    pub path: &'static str,
    /// Bad or good.
    pub kind: Kind,
}

/// Every route of the service, bad and good twins side by side, in the load's round-robin
/// order.
pub const ROUTES: &[Route] = &[
    Route {
        path: "/bad/fs",
        kind: Kind::Bad,
    },
    Route {
        path: "/good/fs",
        kind: Kind::Good,
    },
    Route {
        path: "/bad/sleep",
        kind: Kind::Bad,
    },
    Route {
        path: "/good/sleep",
        kind: Kind::Good,
    },
    Route {
        path: "/bad/lock",
        kind: Kind::Bad,
    },
    Route {
        path: "/good/lock",
        kind: Kind::Good,
    },
    Route {
        path: "/bad/cpu",
        kind: Kind::Bad,
    },
    Route {
        path: "/good/cpu",
        kind: Kind::Good,
    },
    Route {
        path: "/bad/client",
        kind: Kind::Bad,
    },
    Route {
        path: "/good/client",
        kind: Kind::Good,
    },
    Route {
        path: "/bad/block-on",
        kind: Kind::Bad,
    },
    Route {
        path: "/good/block-on",
        kind: Kind::Good,
    },
];

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The data file the `fs` handlers read.
    pub data_file: Arc<fs::DataFile>,
    /// The two locks of the `lock` handlers.
    pub locks: Arc<lock::Locks>,
    /// The CPU work of the `cpu` handlers.
    pub hashing: Arc<cpu::Hashing>,
    /// The slow upstream service the `client` handlers call.
    pub upstream: SocketAddr,
    /// The timeout of a call to the upstream.
    pub upstream_timeout: Duration,
}

/// The service's router: every route of [`ROUTES`] plus `/` listing them.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/bad/fs", get(fs::bad))
        .route("/good/fs", get(fs::good))
        .route("/bad/sleep", get(sleep::bad))
        .route("/good/sleep", get(sleep::good))
        .route("/bad/lock", get(lock::bad))
        .route("/good/lock", get(lock::good))
        .route("/bad/cpu", get(cpu::bad))
        .route("/good/cpu", get(cpu::good))
        .route("/bad/client", get(client::bad))
        .route("/good/client", get(client::good))
        .route("/bad/block-on", get(block_on::bad))
        .route("/good/block-on", get(block_on::good))
        .with_state(state)
}

async fn index() -> String {
    let mut text = String::from("pollwatch-demo routes:\n");
    for route in ROUTES {
        text.push_str(route.path);
        text.push('\n');
    }
    text
}

/// A handler's failure, answered with status 500 and the message.
#[derive(Debug)]
pub struct HandlerError(pub String);

impl IntoResponse for HandlerError {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.0 + "\n").into_response()
    }
}

/// What a handler's task returns: the response body, or an error.
pub type Outcome = Result<String, HandlerError>;

/// Runs `work` in a task named `name`, spawned at the caller's line (so each handler is a
/// site of its own in pollwatch's report), and waits for its outcome.
#[track_caller]
pub fn in_named_task<F>(name: &'static str, work: F) -> impl Future<Output = Outcome>
where
    F: Future<Output = Outcome> + Send + 'static,
{
    let spawned = crate::named_tasks::spawn_named(name, work);
    async move {
        let handle = spawned.map_err(|e| HandlerError(format!("{name}: spawn failed: {e}")))?;
        handle
            .await
            .map_err(|e| HandlerError(format!("{name}: task failed: {e}")))?
    }
}
