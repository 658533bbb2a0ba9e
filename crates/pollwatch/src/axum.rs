//! Each route of an axum service a site of its own (feature `axum`): a route layer that runs
//! every request's handler as a watched future named by its method and matched route, with
//! no change to the handlers and in any build (no `--cfg tokio_unstable` needed).
//!
//! ```no_run
//! use axum::routing::get;
//! use axum::Router;
//!
//! # async fn run() -> std::io::Result<()> {
//! let _guard = pollwatch::init();
//! let app = pollwatch::axum::watch_routes(
//!     Router::new()
//!         .route("/users/{id}", get(|| async { "a user" }))
//!         .route("/health", get(|| async { "ok" })),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! Without it, every request of an axum service is polled inside the connection task axum
//! spawns in `axum::serve`, so all its stalls share that one spawn site. With it, a site is
//! `GET /users/{id}`: the route's template ([`MatchedPath`]), never the path a request asked
//! for (`/users/42`), so the sites are bounded by the routes, not by the requests. All routes
//! share this layer's location, which keeps a few names apart (8 by default): with more
//! routes, raise [`crate::Builder::names_per_location`] to their number, or the routes beyond
//! it share one site.
//!
//! What it costs: per request, the site lookup (a read lock on pollwatch's site table) and
//! the name (one string of the method and route); per poll, what every pollwatch poll source
//! costs. A request that matched no route is not watched. Beside pollwatch's tracing layer (a
//! build with the flag), the connection task's polls that run a handler are counted once, at
//! the route's site.

use ::axum::extract::{MatchedPath, Request};
use ::axum::middleware::{self, Next};
use ::axum::response::Response;
use ::axum::Router;

use crate::source::watched::Watch;

/// `router` with every route's requests watched by the current pollwatch, each route a site
/// of its own (see the module). Call it after the last `route`: it applies to the routes
/// added so far.
pub fn watch_routes<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route_layer(middleware::from_fn(watch_route))
}

/// The middleware [`watch_routes`] adds, for a service that composes its own layers: runs
/// the rest of the request (the handler) as a watched future named by its method and matched
/// route. As a `route_layer`, it runs after routing, so the route is known.
pub async fn watch_route(request: Request, next: Next) -> Response {
    match request.extensions().get::<MatchedPath>() {
        Some(route) => {
            let name = format!("{} {}", request.method(), route.as_str());
            next.run(request).watched_named(&name).await
        }
        None => next.run(request).await,
    }
}
