//! Each gRPC method of a tonic service, or each request path of a hyper or other tower
//! service, a site of its own (feature `tower`): a `tower` layer that runs every request's
//! future as a watched future named by its method and path, in any build (no
//! `--cfg tokio_unstable` needed).
//!
//! ```no_run
//! use tower_layer::Layer;
//!
//! # let service = ();
//! let _guard = pollwatch::init();
//! // tonic: `Server::builder().layer(pollwatch::tower::WatchRequests).add_service(...)`;
//! // hyper or any tower service: `ServiceBuilder::new().layer(...)`, or:
//! let service = pollwatch::tower::WatchRequests.layer(service);
//! # let _ = service;
//! ```
//!
//! Without it, every request of a tonic or hyper server is polled inside the connection task
//! the server spawns, so all its stalls share that one spawn site. With it, a tonic site is
//! `POST /helloworld.Greeter/SayHello`: a gRPC path names the method, so the sites are bounded
//! by the service's methods. A plain HTTP service's paths may hold ids (`/users/42`): there,
//! put the layer where the paths are a fixed set (axum has [`crate::axum::watch_routes`],
//! which names the route's template). All requests share this layer's location, which keeps
//! a few names apart (8 by default): with more methods, raise
//! [`crate::Builder::names_per_location`] to their number, or the others share one site.
//!
//! What it costs: per request, the site lookup (a read lock on pollwatch's site table) and
//! the name (one string of the method and path); per poll, what every pollwatch poll source
//! costs.

use std::task::{Context, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::source::watched::{Watch, Watched};

/// The layer: `.layer(pollwatch::tower::WatchRequests)` (see the module).
#[derive(Clone, Copy, Debug, Default)]
pub struct WatchRequests;

impl<S> Layer<S> for WatchRequests {
    type Service = WatchRequestsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WatchRequestsService { inner }
    }
}

/// The service [`WatchRequests`] wraps around the inner one: each call's future watched,
/// named by the request's method and path.
#[derive(Clone, Debug)]
pub struct WatchRequestsService<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for WatchRequestsService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Watched<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let name = format!("{} {}", request.method(), request.uri().path());
        self.inner.call(request).watched_named(&name)
    }
}
