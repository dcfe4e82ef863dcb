//! The node's [`Transport`] on turmoil's simulated network, and the
//! simulated clock nodes read: the simulation's elapsed time from a fixed
//! Unix instant, plus the node's skew. Both read turmoil's world, so they
//! only work inside a simulated host.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use ollystack_cluster::net::transport::{Acceptor, BoxIo, Peer};
use ollystack_cluster::net::Transport;
use ollystack_node::clock::Clock;

#[derive(Debug, Default, Clone, Copy)]
pub struct TurmoilTransport;

struct Listener(turmoil::net::TcpListener);

impl Acceptor for Listener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxIo, Peer)>> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            Ok((Box::new(stream) as BoxIo, Peer::plain(peer)))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Transport for TurmoilTransport {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Acceptor>>> {
        Box::pin(async move { Ok(Box::new(Listener(turmoil::net::TcpListener::bind(addr).await?)) as Box<dyn Acceptor>) })
    }

    fn connect(&self, addr: String) -> BoxFuture<'static, io::Result<BoxIo>> {
        Box::pin(async move { Ok(Box::new(turmoil::net::TcpStream::connect(addr).await?) as BoxIo) })
    }
}

/// Unix time of the simulation's start: 2026-01-01T00:10:00Z (ten minutes
/// into an hour, so a skewed clock stays in the same limit window).
pub const EPOCH_UNIX_MS: u64 = 1_767_226_200_000;

/// A node's clock: simulated time since the start, offset by its skew.
#[derive(Debug)]
pub struct SimClock {
    pub skew_ms: i64,
}

impl Clock for SimClock {
    fn now_unix_ms(&self) -> u64 {
        let elapsed = turmoil::sim_elapsed().unwrap_or_default().as_millis() as i64;
        (EPOCH_UNIX_MS as i64 + elapsed + self.skew_ms) as u64
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}
