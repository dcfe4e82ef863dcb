//! The server side of the Raft transport: decodes openraft's RPCs, hands
//! them to the local Raft and encodes `Result<reply, RaftError>` back.

use ollystack_proto::cluster::raft_server;
use ollystack_proto::cluster::RaftMessage;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

use super::auth::{require_member, Trust};
use crate::raft::Raft;

/// Serves `ollystack.v1.Raft` for one node.
#[derive(Clone)]
pub struct RaftService {
    raft: Raft,
    trust: Trust,
}

impl std::fmt::Debug for RaftService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftService").finish_non_exhaustive()
    }
}

impl RaftService {
    pub fn new(raft: Raft, trust: Trust) -> Self {
        Self { raft, trust }
    }

    /// Raft is served to members only (see [`super::auth`]): a forged vote
    /// or append from anyone else would depose the leader or rewrite the
    /// membership.
    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let metrics = self.raft.metrics().borrow().clone();
        let identities: Vec<&str> = metrics.membership_config.nodes().map(|(_, info)| info.identity.as_str()).collect();
        let members = (!identities.is_empty()).then_some(identities.as_slice());
        require_member(self.trust, request, members)
    }

    /// The tonic service, with message limits fit for snapshots.
    pub fn into_server(self) -> raft_server::RaftServer<Self> {
        raft_server::RaftServer::new(self).max_decoding_message_size(64 << 20).max_encoding_message_size(64 << 20)
    }
}

fn decode<T: DeserializeOwned>(request: Request<RaftMessage>) -> Result<T, Status> {
    serde_json::from_slice(&request.into_inner().json).map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))
}

fn encode<T: Serialize>(result: &T) -> Result<Response<RaftMessage>, Status> {
    let json = serde_json::to_vec(result).map_err(|e| Status::internal(format!("unencodable raft reply: {e}")))?;
    Ok(Response::new(RaftMessage { json }))
}

#[tonic::async_trait]
impl raft_server::Raft for RaftService {
    async fn append_entries(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.authorize(&request)?;
        let rpc = decode(request)?;
        encode(&self.raft.append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.authorize(&request)?;
        let rpc = decode(request)?;
        encode(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.authorize(&request)?;
        let rpc = decode(request)?;
        encode(&self.raft.install_snapshot(rpc).await)
    }
}
