//! The service pollwatch watches: the routes of [`crate::routes`] served by axum on the
//! multi-thread runtime the caller built.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::routes::{self, AppState};

/// A running service; [`Service::stop`] shuts it down.
#[derive(Debug)]
pub struct Service {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<io::Result<()>>,
}

impl Service {
    /// Binds `addr` and serves the routes in a task named `http_server` on the current
    /// runtime.
    pub async fn start(addr: SocketAddr, state: AppState) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = routes::router(state);
        let server = crate::named_tasks::spawn_named("http_server", async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        })?;
        Ok(Self {
            addr,
            shutdown,
            server,
        })
    }

    /// Where the service listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets open requests finish for at most `grace`, and stops.
    pub async fn stop(self, grace: Duration) -> io::Result<()> {
        let _ = self.shutdown.send(());
        let mut server = self.server;
        match tokio::time::timeout(grace, &mut server).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(io::Error::other(format!("the server task failed: {e}"))),
            Err(_) => {
                server.abort();
                Err(io::Error::other(format!(
                    "connections still open {grace:?} after shutdown began"
                )))
            }
        }
    }
}
