//! Reading a request body within bounds, shared by the OTLP receivers:
//! a size limit, a deadline, and a budget for bodies being read.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::codec::DecodeError;
use super::ReceiverLimits;

/// How long a request's body may take to arrive.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a body was not read.
pub enum BodyError {
    Decode(DecodeError),
    /// The receivers' body budget is spent: shed (retryable).
    Full,
}

/// KiB of request bodies held while they are read, at most: room for 16
/// bodies of the largest size at once.
pub fn body_budget_kib(limits: &ReceiverLimits) -> usize {
    (limits.max_request_bytes.saturating_mul(16) / 1024).clamp(1, Semaphore::MAX_PERMITS)
}

/// KiB (rounded up) of `bytes`.
fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}

/// Reads the whole body, failing as soon as it passes `limit_bytes` (or at
/// once when `Content-Length` says it will), so memory stays bounded; each
/// chunk is paid for from `budget` as it arrives, and the reservation
/// comes back with the body. A stalled body holds only what it sent.
pub async fn read_body_bounded<B>(
    body: B,
    content_length: Option<usize>,
    limit_bytes: usize,
    budget: &Arc<Semaphore>,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), BodyError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    if content_length.is_some_and(|len| len > limit_bytes) {
        return Err(BodyError::Decode(DecodeError::TooLarge { limit_bytes }));
    }
    let mut held: Option<OwnedSemaphorePermit> = None;
    let mut buffer = BytesMut::new();
    let mut body = std::pin::pin!(body);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| BodyError::Decode(DecodeError::Read(err.to_string())))?;
        let Ok(chunk) = frame.into_data() else { continue };
        let len = buffer.len().saturating_add(chunk.len());
        if len > limit_bytes {
            return Err(BodyError::Decode(DecodeError::TooLarge { limit_bytes }));
        }
        let more = u32::try_from(kib(len) - kib(buffer.len())).map_err(|_| BodyError::Full)?;
        if more > 0 {
            let permit = budget.clone().try_acquire_many_owned(more).map_err(|_| BodyError::Full)?;
            match &mut held {
                Some(h) => h.merge(permit),
                None => held = Some(permit),
            }
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok((buffer.freeze(), held))
}
