//! What one session actor answers for, kept outside the actor so that it
//! survives the actor's panic: the WAL entries sent to it and the memory
//! reserved for them. A panic loses the actor's state and its mailbox; the
//! supervisor rebuilds the session from these entries and settles the
//! budget from these bytes (see [`super::supervisor`]).
//!
//! Who writes what (each under the holding's own lock):
//! * the registry, when it sends an actor signals (`took`), under the
//!   session's shard lock, before the send; undone if the send fails;
//! * the actor, when it gives back memory of duplicates (`freed`);
//! * the registry, when the actor hands its data on for good (archived,
//!   forwarded or shipped: `finish_closing`), which drops the holding.
//!
//! So at any time `bytes` is the reservation the actor answers for: its
//! state's `held_bytes` plus the reserved bytes of the signals in its
//! mailbox (and of the one it was handling when it failed).

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::msg::SessionMsg;
use crate::model::SessionKey;

/// What an actor holds (a plain value, for the pure parts and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// WAL entries sent to the actor.
    pub wal_keys: Vec<u64>,
    /// Memory reserved for them and not given back.
    pub bytes: u64,
}

impl Held {
    /// Signals sent to the actor: their WAL entries and reserved bytes.
    pub fn took(&mut self, wal_keys: &[u64], bytes: u64) {
        self.wal_keys.extend_from_slice(wal_keys);
        self.bytes += bytes;
    }

    /// Signals sent and then taken back (the send failed).
    pub fn untook(&mut self, wal_keys: &[u64], bytes: u64) {
        self.wal_keys.retain(|k| !wal_keys.contains(k));
        self.bytes = self.bytes.saturating_sub(bytes);
    }

    /// Memory the actor gave back (duplicates).
    pub fn freed(&mut self, bytes: u64) {
        debug_assert!(self.bytes >= bytes, "freed more than held: {} < {bytes}", self.bytes);
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}

/// The WAL entries and reserved bytes a message carries to an actor.
pub fn carried(msg: &SessionMsg) -> Option<(Vec<u64>, u64)> {
    match msg {
        SessionMsg::Ingest(input) => Some((input.wal_key.into_iter().collect(), input.cost_bytes())),
        SessionMsg::Absorb(state) => Some((state.wal_keys.clone(), state.held_bytes)),
        _ => None,
    }
}

/// One actor's [`Held`], shared by the registry and the actor.
#[derive(Debug)]
pub struct Holding {
    pub key: SessionKey,
    held: Mutex<Held>,
    /// The actor's segment clock (opened, last activity; unix ms), as it
    /// last told: the finishing sweep ticks only actors that may be due.
    /// 0 until told.
    opened_unix_ms: AtomicU64,
    last_activity_unix_ms: AtomicU64,
}

impl Holding {
    pub fn new(key: SessionKey) -> Self {
        Self { key, held: Mutex::new(Held::default()), opened_unix_ms: AtomicU64::new(0), last_activity_unix_ms: AtomicU64::new(0) }
    }

    /// The actor's segment clock after a message.
    pub fn note_clock(&self, opened_unix_ms: u64, last_activity_unix_ms: u64) {
        self.opened_unix_ms.store(opened_unix_ms, Ordering::Relaxed);
        self.last_activity_unix_ms.store(last_activity_unix_ms, Ordering::Relaxed);
    }

    /// (opened, last activity) as last told, or `None` before the actor told.
    pub fn clock(&self) -> Option<(u64, u64)> {
        let opened = self.opened_unix_ms.load(Ordering::Relaxed);
        (opened > 0).then(|| (opened, self.last_activity_unix_ms.load(Ordering::Relaxed)))
    }

    pub fn took(&self, wal_keys: &[u64], bytes: u64) {
        self.held.lock().took(wal_keys, bytes);
    }

    pub fn untook(&self, wal_keys: &[u64], bytes: u64) {
        self.held.lock().untook(wal_keys, bytes);
    }

    pub fn freed(&self, bytes: u64) {
        self.held.lock().freed(bytes);
    }

    /// Everything held, leaving nothing: the actor failed, the supervisor
    /// answers for it now.
    pub fn take(&self) -> Held {
        std::mem::take(&mut *self.held.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_is_what_was_sent_less_what_was_given_back() {
        let mut h = Held::default();
        h.took(&[3], 100);
        h.took(&[4, 5], 250);
        h.freed(40);
        h.took(&[6], 10);
        h.untook(&[6], 10);
        assert_eq!(h, Held { wal_keys: vec![3, 4, 5], bytes: 310 });
    }
}
