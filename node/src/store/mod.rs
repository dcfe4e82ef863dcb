//! What a node keeps on disk besides the WAL, in the same sled database
//! under the data dir.
//!
//! sled transactions and batches are deliberately not used (see `archive`).
//!
//! * [`archive`]: finished session segments (the embedded default storage)
//!   with a time index for listings and retention by age and bytes.
//! * [`index`]: the trace index (which session each trace belongs to, and
//!   aliases from trace-derived IDs to the explicit ID their trace joined)
//!   and the per-metric exemplar index.

pub mod archive;
pub mod clickhouse;
pub mod index;
mod keys;

mod flush;

pub use archive::{Archive, ArchiveIndexEntry};
pub use flush::SledFlusher;
pub use index::{ExemplarIndex, TraceIndex};

/// Errors of the node's storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    #[error(transparent)]
    Wal(#[from] crate::wal::WalError),
}
