//! Injectable time and randomness.
//!
//! Production uses [`TokioClock`] (wall-clock anchored once, then advanced by
//! `tokio::time`, so a paused tokio runtime makes time fully deterministic)
//! and [`SeededRng`] (seeded from the OS unless a seed is configured). The
//! simulations drive both.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};

/// A source of time. Everything that reads the clock goes through this.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch, by this node's clock.
    fn now_unix_ms(&self) -> u64;
    /// Sleeps for `duration` of this clock's time.
    fn sleep(&self, duration: Duration) -> futures::future::BoxFuture<'static, ()>;
}

/// Wall-clock time read once at construction and advanced by tokio's
/// monotonic clock, so `tokio::time::pause()` freezes and drives it.
#[derive(Debug)]
pub struct TokioClock {
    /// Unix time at `anchor`.
    anchor_unix_ms: u64,
    /// The tokio instant that corresponds to `anchor_unix_ms`.
    anchor: tokio::time::Instant,
}

impl TokioClock {
    /// Anchors at the system's current wall-clock time.
    pub fn system() -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        Self::anchored_at(now)
    }

    /// Anchors at a chosen Unix time (simulations, tests).
    pub fn anchored_at(anchor_unix_ms: u64) -> Self {
        Self { anchor_unix_ms, anchor: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now_unix_ms(&self) -> u64 {
        self.anchor_unix_ms + self.anchor.elapsed().as_millis() as u64
    }

    fn sleep(&self, duration: Duration) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Shared handle to the node's clock.
pub type SharedClock = Arc<dyn Clock>;

/// Seeded randomness for generated IDs. One per node; the lock is held for a
/// single draw.
#[derive(Debug)]
pub struct SeededRng {
    rng: Mutex<rand::rngs::StdRng>,
}

impl SeededRng {
    pub fn from_seed(seed: u64) -> Self {
        Self { rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)) }
    }

    /// Seeds from the operating system (production default).
    pub fn from_os() -> Self {
        Self::from_seed(rand::random())
    }

    pub fn next_u32(&self) -> u32 {
        self.rng.lock().random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paused_tokio_time_drives_the_clock() {
        let clock = TokioClock::anchored_at(1_000);
        assert_eq!(clock.now_unix_ms(), 1_000);
        clock.sleep(Duration::from_millis(250)).await;
        assert_eq!(clock.now_unix_ms(), 1_250);
    }

    #[test]
    fn same_seed_same_sequence() {
        let a = SeededRng::from_seed(7);
        let b = SeededRng::from_seed(7);
        let xs: Vec<u32> = (0..4).map(|_| a.next_u32()).collect();
        let ys: Vec<u32> = (0..4).map(|_| b.next_u32()).collect();
        assert_eq!(xs, ys);
    }
}
