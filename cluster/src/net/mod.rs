//! The Raft transport over tonic: [`GrpcNetwork`] is openraft's network
//! factory (one lazily connected channel per peer, every RPC under the
//! deadline openraft gives it), and [`RaftService`] is the server side that
//! hands incoming RPCs to the local [`Raft`](crate::raft::Raft).
//!
//! openraft's messages travel as JSON inside `ollystack.v1.RaftMessage`
//! (see `proto/ollystack/v1/cluster.proto`): the Raft state is small and one
//! encoding serves the log, snapshots and the wire.

pub mod auth;
mod raft_client;
mod raft_service;
mod serve;
mod serve_http;
pub mod server_tls;
pub mod tls;
pub mod transport;

pub use auth::Trust;
pub use raft_client::{channel, GrpcNetwork, CONNECT_TIMEOUT};
pub use raft_service::RaftService;
pub use serve::serve_grpc;
pub use serve_http::{serve_http, HttpBounds};
pub use server_tls::{ServerTls, ServerTlsFiles};
pub use tls::{TlsFiles, TlsTransport};
pub use transport::{Acceptor, Peer, SharedTransport, TcpAcceptor, TcpTransport, Transport};
