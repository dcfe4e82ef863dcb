//! Blocking work (fsync, CPU-heavy decoding) off the async threads.
//!
//! On a multi-threaded runtime (production) it goes to tokio's blocking
//! pool. On a current-thread runtime — the simulations, where every node
//! runs on one thread under a paused clock — a blocking-pool thread would
//! finish at a real-time moment the simulation cannot control, so the work
//! runs inline instead: deterministic, and there is no other worker to
//! starve.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Whether blocking work runs inline here (see the module docs).
pub fn inline() -> bool {
    Handle::try_current().map_or(true, |h| h.runtime_flavor() == RuntimeFlavor::CurrentThread)
}

/// Blocking work panicked (or its runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("blocking task failed: {0}")]
pub struct Panicked(String);

/// Runs `work` where blocking is allowed and returns its result, or
/// [`Panicked`] if it panicked.
pub async fn unblock<T, F>(work: F) -> Result<T, Panicked>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if inline() {
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|panic| Panicked(panic_message(&*panic)));
    }
    tokio::task::spawn_blocking(work).await.map_err(|e| Panicked(e.to_string()))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default()
}

/// Makes a sled tree's writes durable.
pub async fn flush(tree: &sled::Tree) -> sled::Result<usize> {
    if inline() {
        tree.flush()
    } else {
        tree.flush_async().await
    }
}
