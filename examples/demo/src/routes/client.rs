//! Mistake 5: a blocking network client (`std::net::TcpStream`, or any "sync" HTTP client)
//! called from a task waits for the upstream's answer on the worker thread. The same request
//! over `tokio::net::TcpStream` waits without holding it.
//!
//! The upstream (`/slow-upstream`, answering after 40 ms) is served by [`crate::upstream`] on
//! its own thread, like another service would be. Served by this same runtime, the blocking
//! call could deadlock it: with every worker blocked waiting for the upstream, no worker is
//! left to answer.

use axum::extract::State;

use super::{in_named_task, AppState, HandlerError, Outcome};
use crate::client::{self, ClientError, Response};
use crate::upstream::PATH;

/// `GET /bad/client`: calls the upstream with the blocking client.
pub async fn bad(State(state): State<AppState>) -> Outcome {
    in_named_task("bad_client", async move {
        let response = client::get_blocking(state.upstream, PATH, state.upstream_timeout);
        answer("bad_client", "std::net::TcpStream", response)
    })
    .await
}

/// `GET /good/client`: calls the upstream with the async client.
pub async fn good(State(state): State<AppState>) -> Outcome {
    in_named_task("good_client", async move {
        let response = client::get(state.upstream, PATH, state.upstream_timeout).await;
        answer("good_client", "tokio::net::TcpStream", response)
    })
    .await
}

fn answer(name: &str, via: &str, response: Result<Response, ClientError>) -> Outcome {
    match response {
        Ok(r) if r.status == 200 => Ok(format!(
            "{name}: upstream answered {} bytes over {via}\n",
            r.body.len()
        )),
        Ok(r) => Err(HandlerError(format!(
            "{name}: upstream answered status {}",
            r.status
        ))),
        Err(e) => Err(HandlerError(format!("{name}: upstream call failed: {e}"))),
    }
}
