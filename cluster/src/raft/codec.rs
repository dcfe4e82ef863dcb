//! How the store encodes what it keeps in sled (JSON, except log keys and
//! snapshot data) and turns a failure into openraft's `StorageError`, naming
//! what failed (logs, vote, snapshot).

use openraft::{AnyError, StorageError, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::types::RaftId;

/// Builds the `StorageIOError` of one subject and verb, such as
/// `StorageIOError::write_logs`.
pub(super) trait Failure: Fn(AnyError) -> StorageIOError<RaftId> + Copy {}

impl<F: Fn(AnyError) -> StorageIOError<RaftId> + Copy> Failure for F {}

/// The sled key of the log entry at `index`: big-endian, so keys sort as
/// indexes do.
pub(super) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub(super) fn encode<T: Serialize>(value: &T, failure: impl Failure) -> Result<Vec<u8>, StorageError<RaftId>> {
    serde_json::to_vec(value).map_err(|error| storage_error(failure, &error))
}

pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8], failure: impl Failure) -> Result<T, StorageError<RaftId>> {
    serde_json::from_slice(bytes).map_err(|error| storage_error(failure, &error))
}

pub(super) fn storage_error<E: std::error::Error + 'static>(failure: impl Failure, error: &E) -> StorageError<RaftId> {
    failure(AnyError::new(error)).into()
}
