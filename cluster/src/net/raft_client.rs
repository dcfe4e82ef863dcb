//! openraft's network factory over tonic. Channels connect lazily and are
//! cached per (node, address); a failed call is reported to openraft, which
//! retries with its own backoff.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ollystack_proto::cluster::raft_client::RaftClient;
use ollystack_proto::cluster::RaftMessage;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Mutex;
use tonic::transport::{Channel, Endpoint};

use super::transport::SharedTransport;
use crate::raft::{NodeInfo, RaftId, TypeConfig};

/// How long opening a TCP connection to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// HTTP/2 pings on every channel: a connection whose peer stopped reading (a
/// frozen process, a black-holed path) is closed within interval + timeout and
/// the next call reconnects, instead of every call on it timing out until TCP
/// gives up.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// A lazily connected channel to a peer's cluster listener (`host:port`),
/// over `transport`. Calls on it fail fast while the peer is down and
/// reconnect by themselves.
pub fn channel(addr: &str, transport: &SharedTransport) -> Result<Channel, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    let transport = transport.clone();
    let connector = tower::service_fn(move |uri: tonic::codegen::http::Uri| {
        let transport = transport.clone();
        async move {
            let host = uri.host().unwrap_or_default();
            let port = uri.port_u16().unwrap_or(80);
            transport.connect(format!("{host}:{port}")).await.map(hyper_util::rt::TokioIo::new)
        }
    });
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// openraft's network factory: one [`Connection`] per peer, sharing a
/// channel cache.
#[derive(Clone)]
pub struct GrpcNetwork {
    transport: SharedTransport,
    /// Channels by peer, with the address they were made for (a peer that
    /// moved gets a new channel). At most one per member.
    channels: Arc<Mutex<BTreeMap<RaftId, (String, Channel)>>>,
}

impl std::fmt::Debug for GrpcNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcNetwork").finish_non_exhaustive()
    }
}

impl GrpcNetwork {
    pub fn new(transport: SharedTransport) -> Self {
        Self { transport, channels: Arc::default() }
    }

    fn channel_for(&self, target: RaftId, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((a, ch)) = channels.get(&target) {
            if a == addr {
                return Ok(ch.clone());
            }
        }
        let ch = channel(addr, &self.transport)?;
        channels.insert(target, (addr.to_owned(), ch.clone()));
        Ok(ch)
    }
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetwork {
    type Network = Connection;

    async fn new_client(&mut self, target: RaftId, node: &NodeInfo) -> Connection {
        Connection { target, node: node.clone(), channel: self.channel_for(target, &node.cluster_addr).map_err(|e| e.to_string()) }
    }
}

/// The link to one peer.
pub struct Connection {
    target: RaftId,
    node: NodeInfo,
    /// The channel, or why the peer's address is unusable.
    channel: Result<Channel, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

impl Connection {
    /// One call: encode, send under `deadline`, decode `Result<Reply, E>`.
    async fn call<Req, Reply, E>(
        &self,
        action: RPCTypes,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Reply, RPCError<RaftId, NodeInfo, RaftError<RaftId, E>>>
    where
        Req: Serialize,
        Reply: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let channel = self.channel.clone().map_err(|e| RPCError::Unreachable(Unreachable::new(&TransportError(e))))?;
        let json = serde_json::to_vec(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let deadline = option.hard_ttl();
        let mut req = tonic::Request::new(RaftMessage { json });
        req.set_timeout(deadline);
        let mut client = RaftClient::new(channel);
        let call = async {
            match action {
                RPCTypes::AppendEntries => client.append_entries(req).await,
                RPCTypes::Vote => client.vote(req).await,
                RPCTypes::InstallSnapshot => client.install_snapshot(req).await,
            }
        };
        let timeout = || RPCError::Timeout(Timeout { action, id: 0, target: self.target, timeout: deadline });
        let reply = match tokio::time::timeout(deadline, call).await {
            Err(_) => return Err(timeout()),
            Ok(Err(status)) => {
                return Err(match status.code() {
                    tonic::Code::DeadlineExceeded => timeout(),
                    tonic::Code::Unavailable => RPCError::Unreachable(Unreachable::new(&status)),
                    _ => RPCError::Network(NetworkError::new(&status)),
                })
            }
            Ok(Ok(reply)) => reply.into_inner(),
        };
        let result: Result<Reply, RaftError<RaftId, E>> =
            serde_json::from_slice(&reply.json).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new_with_node(self.target, self.node.clone(), e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<RaftId>, RPCError<RaftId, NodeInfo, RaftError<RaftId>>> {
        self.call(RPCTypes::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<RaftId>, RPCError<RaftId, NodeInfo, RaftError<RaftId, InstallSnapshotError>>> {
        self.call(RPCTypes::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<RaftId>,
        option: RPCOption,
    ) -> Result<VoteResponse<RaftId>, RPCError<RaftId, NodeInfo, RaftError<RaftId>>> {
        self.call(RPCTypes::Vote, &rpc, &option).await
    }
}
