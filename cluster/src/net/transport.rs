//! How a node reaches the network: [`Transport`] binds listeners and opens
//! connections. Production uses [`TcpTransport`] (tokio TCP); the
//! simulations pass one backed by turmoil's simulated network, so the same
//! tonic and axum servers and clients run unchanged on either.

use std::fmt::Debug;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A byte stream: one accepted or opened connection.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

pub type BoxIo = Box<dyn Io>;

/// Who is at the other end of an accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The name in the certificate the peer presented, checked against the
    /// cluster's CA (see [`super::tls`]); `None` without TLS.
    pub identity: Option<Arc<str>>,
}

impl Peer {
    pub fn plain(addr: SocketAddr) -> Self {
        Self { addr, identity: None }
    }
}

/// A bound listener.
pub trait Acceptor: Send + 'static {
    /// The next connection and its peer.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxIo, Peer)>>;
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// The network a node uses.
pub trait Transport: Send + Sync + Debug + 'static {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Acceptor>>>;
    /// Connects to `host:port`.
    fn connect(&self, addr: String) -> BoxFuture<'static, io::Result<BoxIo>>;
}

pub type SharedTransport = Arc<dyn Transport>;

/// The operating system's TCP (no Nagle delay: RPCs are small).
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpTransport;

impl TcpTransport {
    pub fn shared() -> SharedTransport {
        Arc::new(TcpTransport)
    }
}

/// A bound tokio TCP listener.
pub struct TcpAcceptor(pub tokio::net::TcpListener);

impl Acceptor for TcpAcceptor {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxIo, Peer)>> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            stream.set_nodelay(true)?;
            Ok((Box::new(stream) as BoxIo, Peer::plain(peer)))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Transport for TcpTransport {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Acceptor>>> {
        Box::pin(async move { Ok(Box::new(TcpAcceptor(tokio::net::TcpListener::bind(addr).await?)) as Box<dyn Acceptor>) })
    }

    fn connect(&self, addr: String) -> BoxFuture<'static, io::Result<BoxIo>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BoxIo)
        })
    }
}

/// An accepted connection and its peer.
pub struct Conn {
    io: BoxIo,
    pub peer: Peer,
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = SocketAddr;

    fn connect_info(&self) -> SocketAddr {
        self.peer.addr
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// How long the accept loop pauses after an accept error (out of file
/// descriptors, say) before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The next connection, retrying accept errors.
pub async fn accept_retrying(acceptor: &mut dyn Acceptor) -> Conn {
    loop {
        match acceptor.accept().await {
            Ok((io, peer)) => return Conn { io, peer },
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}
