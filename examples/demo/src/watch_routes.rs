//! Every request handler of an axum service measured by pollwatch, per route, with no change
//! to the handlers and in any build (no `--cfg tokio_unstable` needed): a middleware wraps
//! each request's future in a watched future named by the route it matched.
//!
//! ```no_run
//! use axum::routing::get;
//! use axum::Router;
//!
//! # async fn run() -> std::io::Result<()> {
//! let _guard = pollwatch::init();
//! let app = pollwatch_demo::watch_routes::watch_routes(
//!     Router::new()
//!         .route("/users/{id}", get(|| async { "a user" }))
//!         .route("/health", get(|| async { "ok" })),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The sites: one per route, at [`watch_route`]'s `watched_named` call, named by the route's
//! template (`/users/{id}`, never `/users/42`: [`MatchedPath`]), so their number is bounded by
//! the routes, not the requests. pollwatch keeps a few names apart per location (8 by
//! default): with more routes, raise [`pollwatch::Builder::names_per_location`] to their
//! number, or the routes beyond it share one site. A raw path as the name would be bounded
//! too (its digit runs fold to `#`, and the location's name bound holds), but would waste the
//! bound on whichever paths came first.
//!
//! What it costs: per request, the site lookup (a read lock on pollwatch's site table);
//! per poll, what every pollwatch poll source costs. Beside pollwatch's tracing layer (a build
//! with the flag), the connection task's polls that run a handler are counted once, at the
//! route's site, instead of at axum's `serve` spawn site.

use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use pollwatch::Watch;

/// `router` with every route's requests watched by the current pollwatch, each route a site
/// of its own (see the module). Call it after the last `route`: it applies to the routes
/// added so far.
pub fn watch_routes<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route_layer(middleware::from_fn(watch_route))
}

/// The middleware: runs the rest of the request (the handler) as a watched future named by
/// the matched route. A `route_layer` runs after routing, so the route is known.
pub async fn watch_route(request: Request, next: Next) -> Response {
    // `MatchedPath` is an `Arc<str>`: cloning it allocates nothing.
    match request.extensions().get::<MatchedPath>().cloned() {
        Some(route) => next.run(request).watched_named(route.as_str()).await,
        None => next.run(request).await,
    }
}
