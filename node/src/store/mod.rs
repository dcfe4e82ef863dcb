//! What a node keeps on disk besides the WAL, in the same sled database
//! under the data dir.
//!
//! sled transactions and batches are deliberately not used (see `archive`).
//!
//! * [`SessionStore`]: the trait finished segments go through, with the
//!   embedded archive ([`EmbeddedStore`]) and [`clickhouse`] behind it.
//! * [`archive`]: finished session segments (the embedded default storage)
//!   with a time index for listings and retention by age and bytes.
//! * [`index`]: the trace index (which session each trace belongs to, and
//!   aliases from trace-derived IDs to the explicit ID their trace joined)
//!   and the per-metric exemplar index.
//! * [`shipments`]: shipments of session data taken from other nodes, so a
//!   repeated shipment is taken once.

pub mod archive;
pub mod clickhouse;
pub mod index;
mod keys;
pub mod listing;
pub mod shipments;

mod archive_writer;
mod embedded;
mod flush;
mod key_filter;
mod segment_store;
mod segment_walk;

pub use crate::session::finished::{ArchiveIndexEntry, FinishedSegment};
pub use archive::Archive;
pub use embedded::EmbeddedStore;
pub use flush::SledFlusher;
pub use index::{ExemplarIndex, TraceIndex};
pub use segment_store::{HandedSegment, SessionStore, Settler, StoreFuture, StoredPage, StoredSegments};
pub use shipments::ShipmentLog;

/// Errors of the node's storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    #[error(transparent)]
    Wal(#[from] crate::wal::WalError),
    #[error("clickhouse: {0}")]
    ClickHouse(String),
    #[error("storage backlog full ({0} segments waiting); retrying")]
    Backlog(usize),
    #[error("archive: {0}")]
    Archive(String),
}
