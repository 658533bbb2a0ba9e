//! A tokio-console client for the console feed tests: the protocol `tokio-console` speaks.

use std::net::SocketAddr;
use std::time::Duration;

use console_api::instrument::instrument_client::InstrumentClient;
use tonic::transport::Channel;

/// Connects to the feed on `addr`, retrying until it listens (it starts, or starts again, on
/// its own thread), or `None` once `deadline` passes.
pub async fn connect(
    addr: SocketAddr,
    deadline: tokio::time::Instant,
) -> Option<InstrumentClient<Channel>> {
    loop {
        match tokio::time::timeout_at(
            deadline,
            InstrumentClient::connect(format!("http://{addr}")),
        )
        .await
        {
            Ok(Ok(client)) => return Some(client),
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => return None,
        }
    }
}

/// A free local port (bound, then released for the feed to take).
pub fn free_local_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
