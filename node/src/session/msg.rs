//! What a session actor is told: the messages of its mailbox. Apart from
//! the actor, so the registry and the holdings, which address and account
//! for the actors, need not name the actor itself.

use ollystack_cluster::NodeId;
use ractor::RpcReplyPort;

use super::finish::FinishReason;
use super::state::{SessionInput, SessionState};
use super::Summary;
use crate::model::CorrelationId;
use crate::query::Segment;

pub enum SessionMsg {
    /// Signals of one accepted batch (already in the WAL). Boxed: every
    /// mailbox slot is as large as the largest message, and each actor's
    /// mailbox allocates slots in blocks.
    Ingest(Box<SessionInput>),
    /// Another segment's data (trace unification or a closing segment whose
    /// ID was merged meanwhile).
    Absorb(Box<SessionState>),
    /// A copy of the data, for a query.
    Snapshot(RpcReplyPort<Segment>),
    /// The running summary and the last activity time, for listings.
    Describe(RpcReplyPort<(Summary, u64)>),
    /// Check the finishing rule.
    Tick,
    /// Archive and stop. Sent by the actor to itself after it retired.
    Close(FinishReason),
    /// Forward everything to the session `to` and stop (trace unification).
    MergeInto(CorrelationId),
    /// Send everything to `node` as shipment `shipment` and stop: a
    /// hand-off a crash interrupted, resumed from the WAL (the node may
    /// hold it already; it takes a shipment once).
    ShipTo(NodeId, u64),
    /// Panic (tests and the simulations' build only): how the supervisor's
    /// rebuild of a failed session is exercised.
    #[cfg(any(test, feature = "sim-faults"))]
    Crash,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mailbox slots are sized by the largest message; keep it small.
    #[test]
    fn messages_stay_small() {
        assert!(std::mem::size_of::<SessionMsg>() <= 32, "{}", std::mem::size_of::<SessionMsg>());
    }
}
