//! pollwatch against plain tokio and its peers: every configuration side by side, in
//! interleaved rounds within one run.
//!
//! `cargo run --release -p pollwatch-bench -- [workload]`.

#![allow(dead_code)]

mod config;
mod floor;
mod measure;
mod report;

fn main() {}
