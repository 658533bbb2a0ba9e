//! pollwatch's demo service: an HTTP service with six classic ways to hold a tokio worker
//! thread, each next to its correct twin, a built-in load generator, and pollwatch watching
//! every poll. Run it with `cargo run --release -p pollwatch-demo`; `main.rs` wires the pieces
//! together.
//!
//! - [`routes`]: the handlers, one file per mistake, bad and good twins side by side;
//! - [`service`]: serves the routes on the watched runtime;
//! - [`upstream`]: a slow upstream service for the network-client routes;
//! - [`load`]: the load generator and its summary;
//! - [`client`]: the tiny HTTP/1.1 client, blocking and async;
//! - [`unwatched`]: the side runtimes pollwatch does not watch.
//!
//! Built without its default `pollwatch` feature, the demo has no pollwatch code at all: the
//! same service and load, a target for `pollwatch attach PID`.

pub mod client;
pub mod load;
pub mod named_tasks;
pub mod routes;
pub mod service;
pub mod unwatched;
pub mod upstream;
