//! What the simulated process reads from the OS, pinned: the clocks and
//! the random bytes. The simulation binary interposes libc's
//! `clock_gettime` and `getrandom` (`src/interpose.rs`) and answers from
//! here, so code the nodes run and we cannot inject into sees simulated
//! time and seeded bytes: hyper's `Date` header, h2's expiry of locally
//! reset streams (one real second, which made a seed replay differently
//! on a loaded machine), std's `HashMap` keys.
//!
//! Outside a run the clocks are the real ones: the sweep's watchdog in the
//! parent process measures real time. Random bytes are seeded from the
//! process's start (the same stream in every process of this binary).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::net::EPOCH_UNIX_MS;

static RUNNING: AtomicBool = AtomicBool::new(false);
/// Simulated milliseconds since the run began.
static NOW_MS: AtomicU64 = AtomicU64::new(0);
/// The real monotonic clock when the run began, in ns: monotonic time in a
/// run is this plus simulated time, so it never goes back.
static MONOTONIC_BASE_NS: AtomicU64 = AtomicU64::new(0);
/// Position in the random byte stream.
static RANDOM_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A clock the process reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockKind {
    /// Wall time (`SystemTime`).
    Realtime,
    /// `Instant` and friends.
    Monotonic,
}

/// From now on, clocks read simulated time (`real_monotonic` is the real
/// monotonic clock now). Called once per process, before the simulation is
/// built.
pub fn begin_run(real_monotonic: Duration) {
    MONOTONIC_BASE_NS.store(real_monotonic.as_nanos() as u64, Ordering::SeqCst);
    NOW_MS.store(0, Ordering::SeqCst);
    RUNNING.store(true, Ordering::SeqCst);
}

/// The harness moved simulated time to `ms` since the run began.
pub fn set_now_ms(ms: u64) {
    NOW_MS.fetch_max(ms, Ordering::SeqCst);
}

/// What `clock` reads now, as time since its epoch; `None` outside a run
/// (read the real clock).
pub fn clock(clock: ClockKind) -> Option<Duration> {
    if !RUNNING.load(Ordering::Acquire) {
        return None;
    }
    let now = Duration::from_millis(NOW_MS.load(Ordering::Acquire));
    Some(match clock {
        ClockKind::Realtime => Duration::from_millis(EPOCH_UNIX_MS) + now,
        ClockKind::Monotonic => Duration::from_nanos(MONOTONIC_BASE_NS.load(Ordering::Acquire)) + now,
    })
}

/// Fills `buf` with the next bytes of the process's random stream
/// (splitmix64 over a shared counter: any thread may ask).
pub fn fill_random(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        let mut z = RANDOM_COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_differ_along_the_stream() {
        let (mut a, mut b) = ([0u8; 13], [0u8; 13]);
        fill_random(&mut a);
        fill_random(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0; 13]);
    }
}
