//! What a node keeps on disk besides the WAL, all in one sled database under
//! the data dir (one database, so archiving a segment and releasing its WAL
//! entries is one transaction):
//!
//! * [`archive`]: finished session segments (the embedded default storage)
//!   with a time index for listings and retention by age and bytes.
//! * [`index`]: the trace index (which session each trace belongs to, and
//!   aliases from trace-derived IDs to the explicit ID their trace joined)
//!   and the per-metric exemplar index.

pub mod archive;
pub mod index;
mod keys;

pub use archive::{Archive, ArchiveIndexEntry};
pub use index::{ExemplarIndex, TraceIndex};

/// Errors of the node's storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(inner) => inner,
            sled::transaction::TransactionError::Storage(s) => Self::Sled(s),
        }
    }
}
