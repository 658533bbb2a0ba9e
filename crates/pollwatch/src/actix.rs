//! Each route of an actix-web service a site of its own (feature `actix-web`): a middleware
//! that runs every request's handling as a watched future named by its method and matched
//! route, with no change to the handlers and in any build (no `--cfg tokio_unstable` needed).
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer};
//!
//! # async fn run() -> std::io::Result<()> {
//! let _guard = pollwatch::init();
//! HttpServer::new(|| {
//!     App::new()
//!         .wrap(pollwatch::actix::WatchRoutes)
//!         .route("/users/{id}", web::get().to(|| async { "a user" }))
//! })
//! .bind(("127.0.0.1", 8080))?
//! .run()
//! .await
//! # }
//! ```
//!
//! Without it, actix-web polls every request inside the connection task it spawns for each
//! connection, so all its stalls share that one spawn site. With it, a site is
//! `GET /users/{id}`: the route's pattern (`HttpRequest::match_pattern`), never the path a
//! request asked for (`/users/42`), so the sites are bounded by the routes, not by the
//! requests. All routes share this middleware's location, which keeps a few names apart (8 by
//! default): with more routes, raise [`crate::Builder::names_per_location`] to their number,
//! or the routes beyond it share one site. A request that matched no route is not watched.

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use futures_util::future::Either;

use crate::source::watched::{Watch, Watched};

/// The middleware: `App::new().wrap(pollwatch::actix::WatchRoutes)` (see the module).
#[derive(Clone, Copy, Debug, Default)]
pub struct WatchRoutes;

impl<S, B> Transform<S, ServiceRequest> for WatchRoutes
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = WatchRoutesService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(WatchRoutesService { service }))
    }
}

/// The service [`WatchRoutes`] wraps around the application's.
#[derive(Debug)]
pub struct WatchRoutesService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for WatchRoutesService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Either<Watched<S::Future>, S::Future>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        match request.match_pattern() {
            Some(route) => {
                let name = format!("{} {route}", request.method());
                Either::Left(self.service.call(request).watched_named(&name))
            }
            None => Either::Right(self.service.call(request)),
        }
    }
}
