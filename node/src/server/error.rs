//! Why a node did not start.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("cannot open storage in {path}: {detail} (is another node using this data dir?)")]
    Storage { path: String, detail: String },
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind { addr: SocketAddr, what: &'static str, source: std::io::Error },
    #[error("start-up failed: {0}")]
    Startup(String),
    #[error("cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
}
