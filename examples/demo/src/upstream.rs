//! The slow upstream the `client` routes call: one route, `/slow-upstream`, that answers
//! after 40 ms (a `tokio::time::sleep`). It stands for another service, so it runs on its own
//! unwatched thread ([`crate::unwatched`]), not on the service's runtime.

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::sync::oneshot;

/// The upstream's one route.
pub const PATH: &str = "/slow-upstream";

/// How long the upstream takes to answer.
pub const DELAY: Duration = Duration::from_millis(40);

/// A running upstream; [`Upstream::stop`] shuts it down.
#[derive(Debug)]
pub struct Upstream {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    thread: JoinHandle<io::Result<io::Result<()>>>,
}

impl Upstream {
    /// Starts the upstream on an ephemeral port of 127.0.0.1.
    pub fn start() -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread = crate::unwatched::spawn("demo-upstream", move || async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let app = Router::new().route(PATH, get(slow_answer));
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        })?;
        Ok(Self {
            addr,
            shutdown,
            thread,
        })
    }

    /// Where the upstream listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the upstream and waits for its thread.
    pub fn stop(self) -> io::Result<()> {
        let _ = self.shutdown.send(());
        match self.thread.join() {
            Ok(result) => result?,
            Err(_) => Err(io::Error::other("the upstream thread panicked")),
        }
    }
}

async fn slow_answer() -> &'static str {
    tokio::time::sleep(DELAY).await;
    "upstream: here is your answer\n"
}
