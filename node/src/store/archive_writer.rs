//! The one writer of the embedded archive. Finished segments from every
//! closing session queue here and are archived in batches: one page of the
//! time index ([`Archive::store_batch`]) and one settle (done markers, one
//! sled flush, WAL release) per batch, instead of per session.
//!
//! The queue is bounded: a closing session waits for room, so a slow disk
//! holds sessions (and their memory, which the budget counts) instead of
//! piling up segments here.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::{Archive, FinishedSegment, Settler, StoreError};

/// Segments waiting for the writer, at most.
const QUEUE_SEGMENTS: usize = 1024;

/// A batch closes at this many segments or bytes (whichever first).
const BATCH_SEGMENTS_MAX: usize = 512;
const BATCH_BYTES_MAX: usize = 8 << 20;

struct Job {
    segment: FinishedSegment,
    done: oneshot::Sender<Result<(), String>>,
}

/// Hands segments to the writer.
#[derive(Debug, Clone)]
pub struct ArchiveQueue(mpsc::Sender<Job>);

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("seq", &self.segment.seq).finish_non_exhaustive()
    }
}

impl ArchiveQueue {
    /// Starts the writer; it runs until `stop` or until every queue handle is gone.
    pub fn start(archive: Arc<Archive>, settler: Arc<Settler>, stop: watch::Receiver<bool>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_SEGMENTS);
        (Self(tx), tokio::spawn(run(archive, settler, rx, stop)))
    }

    /// Returns once the segment is archived and settled (its WAL entries
    /// released, its memory returned), as storing it in place did before.
    pub async fn archive(&self, segment: FinishedSegment) -> Result<(), StoreError> {
        let stopped = || StoreError::Archive("the archive writer stopped".into());
        let (done, answer) = oneshot::channel();
        self.0.send(Job { segment, done }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(StoreError::Archive)
    }
}

async fn run(archive: Arc<Archive>, settler: Arc<Settler>, mut jobs: mpsc::Receiver<Job>, mut stop: watch::Receiver<bool>) {
    loop {
        let first = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let mut bytes = first.segment.encoded.len();
        let mut batch = vec![first];
        while batch.len() < BATCH_SEGMENTS_MAX && bytes < BATCH_BYTES_MAX {
            let Ok(job) = jobs.try_recv() else { break };
            bytes += job.segment.encoded.len();
            batch.push(job);
        }
        write(&archive, &settler, batch).await;
    }
}

/// Archives one batch, settles it, then answers its callers.
async fn write(archive: &Arc<Archive>, settler: &Settler, batch: Vec<Job>) {
    let (segments, answers): (Vec<FinishedSegment>, Vec<_>) = batch.into_iter().map(|j| (j.segment, j.done)).unzip();
    let archive = archive.clone();
    let stored = ollystack_cluster::blocking::unblock(move || {
        let result = archive.store_batch(&segments);
        (segments, result)
    })
    .await;
    let (segments, result) = match stored {
        Ok((segments, result)) => (segments, result.map_err(|e| e.to_string())),
        Err(panicked) => (Vec::new(), Err(format!("archive write failed: {panicked}"))),
    };
    if result.is_ok() {
        // The archived copies are written; settling makes them and the done
        // markers durable in one sled flush before the WAL lets go.
        let settled: Vec<(&[u64], u64)> = segments.iter().map(|s| (s.wal_keys.as_slice(), s.held_bytes)).collect();
        if let Err(e) = settler.settle(&settled).await {
            tracing::error!(segments = segments.len(), error = %e, "archive flush failed; wal entries kept");
        }
    }
    for answer in answers {
        let _ = answer.send(result.clone());
    }
}
