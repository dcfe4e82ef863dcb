//! OTLP batches forwarded here recently, so a forward that arrives again
//! is taken once.
//!
//! A node that receives a batch forwards each part to its traces' home and
//! retries a forward whose answer does not come. When the first attempt was
//! taken and only its answer was lost, the retry was taken again; if the ring
//! had moved the session meanwhile, the two copies went to two owners and were
//! stored twice. Each forward now carries an ID, fixed by its sender for all
//! its attempts; the receiver remembers the ones it completed, with their
//! answer, and answers a repeat with it.
//!
//! Memory only, bounded in count and age: a sender retries a forward for
//! seconds (`Shipper`'s attempts), well within [`RETENTION_MS`]. A
//! receiver that crashed forgets; a sender then gets no answer and fails
//! the client's batch, as before.

use std::collections::{HashMap, VecDeque};

use ollystack_cluster::NodeId;
use parking_lot::Mutex;

use crate::ingest::Accepted;

/// Forwards remembered, at most.
pub const CAPACITY: usize = 65_536;
/// How long a completed forward is remembered.
pub const RETENTION_MS: u64 = 120_000;

/// (sending node, the sender's forward ID).
pub type ForwardId = (NodeId, u64);

/// What a forward's arrival finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// New: take it, then [`RecentForwards::done`] or [`RecentForwards::abandon`].
    New,
    /// Being taken right now: answer retryable.
    InFlight,
    /// Taken before: answer this again.
    Done(Accepted),
}

#[derive(Debug, Default)]
struct Inner {
    /// `None` while in flight.
    by_id: HashMap<ForwardId, Option<Accepted>>,
    /// Completed forwards, oldest first, with the time they completed.
    order: VecDeque<(u64, ForwardId)>,
}

#[derive(Debug, Default)]
pub struct RecentForwards {
    inner: Mutex<Inner>,
}

impl RecentForwards {
    /// Checks a forward in. ID 0 means "no ID" (always new).
    pub fn arrive(&self, id: ForwardId, now_ms: u64) -> Seen {
        if id.1 == 0 {
            return Seen::New;
        }
        let mut inner = self.inner.lock();
        inner.expire(now_ms);
        match inner.by_id.get(&id) {
            Some(Some(answer)) => Seen::Done(answer.clone()),
            Some(None) => Seen::InFlight,
            None => {
                inner.by_id.insert(id, None);
                Seen::New
            }
        }
    }

    /// Records a forward as taken, with its answer.
    pub fn done(&self, id: ForwardId, answer: &Accepted, now_ms: u64) {
        if id.1 == 0 {
            return;
        }
        let mut inner = self.inner.lock();
        inner.by_id.insert(id, Some(answer.clone()));
        inner.order.push_back((now_ms, id));
        while inner.order.len() > CAPACITY {
            if let Some((_, old)) = inner.order.pop_front() {
                inner.by_id.remove(&old);
            }
        }
    }

    /// Forgets a forward that was not taken (its sender may send it again).
    pub fn abandon(&self, id: ForwardId) {
        if id.1 != 0 {
            self.inner.lock().by_id.remove(&id);
        }
    }
}

impl Inner {
    fn expire(&mut self, now_ms: u64) {
        while self.order.front().is_some_and(|(at, _)| now_ms.saturating_sub(*at) > RETENTION_MS) {
            if let Some((_, old)) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(rejected: u64) -> Accepted {
        Accepted { rejected_items: rejected, ..Accepted::default() }
    }

    #[test]
    fn a_forward_is_taken_once_and_its_answer_repeated() {
        let r = RecentForwards::default();
        assert_eq!(r.arrive((NodeId(1), 7), 0), Seen::New);
        assert_eq!(r.arrive((NodeId(1), 7), 10), Seen::InFlight);
        r.done((NodeId(1), 7), &answer(2), 20);
        assert_eq!(r.arrive((NodeId(1), 7), 30), Seen::Done(answer(2)));
        assert_eq!(r.arrive((NodeId(2), 7), 30), Seen::New, "another sender's 7");
    }

    #[test]
    fn an_abandoned_forward_is_new_again_and_no_id_is_always_new() {
        let r = RecentForwards::default();
        assert_eq!(r.arrive((NodeId(1), 7), 0), Seen::New);
        r.abandon((NodeId(1), 7));
        assert_eq!(r.arrive((NodeId(1), 7), 0), Seen::New);
        assert_eq!(r.arrive((NodeId(1), 0), 0), Seen::New);
        r.done((NodeId(1), 0), &answer(0), 0);
        assert_eq!(r.arrive((NodeId(1), 0), 0), Seen::New);
    }

    #[test]
    fn completed_forwards_are_forgotten_by_age_and_by_count() {
        let r = RecentForwards::default();
        r.arrive((NodeId(1), 1), 0);
        r.done((NodeId(1), 1), &answer(0), 0);
        assert!(matches!(r.arrive((NodeId(1), 1), RETENTION_MS), Seen::Done(_)));
        assert_eq!(r.arrive((NodeId(1), 1), RETENTION_MS + 1), Seen::New, "expired");
        for id in 1..=(CAPACITY as u64 + 1) {
            r.done((NodeId(2), id), &answer(0), RETENTION_MS + 1);
        }
        assert_eq!(r.arrive((NodeId(2), 1), RETENTION_MS + 1), Seen::New, "the oldest made room");
        assert!(matches!(r.arrive((NodeId(2), 2), RETENTION_MS + 1), Seen::Done(_)));
    }
}
