//! Shipments of session data this node has taken from other nodes, so a
//! shipment that arrives twice is taken once.
//!
//! A node ships session groups to their owner (ingest on a non-owner, a
//! hand-off after a ring change, a trace merged into a session owned elsewhere)
//! and lets go of its copy only once the owner answers. When the answer is lost
//! (a timeout, a stalled link) the sender ships again. If the owner's segment
//! holding the first copy finished meanwhile, the second copy opened a new
//! segment and the same signals were stored twice. Each shipment therefore
//! carries an ID, fixed by its sender for all its retries; the owner records
//! the IDs it took, durably with the data (the ID is in the WAL with the
//! entries, and a replay records it here again), and answers a repeat as done
//! without taking it again.
//!
//! Only shipments of held session data carry an ID (hand-offs, merges into
//! a session owned elsewhere: rare, and retried for as long as the owner
//! does not answer); ingest's own shipments do not (see
//! `ingest::pipeline`). Records expire after [`RETENTION_MS`].
//!
//! A node that leaves tells each sender which of its shipments it took
//! (`cluster::handover`): the sender records them as *delivered*. A sender
//! still waiting for the answer to one of them must not send it elsewhere once
//! the taker is gone: the data went on with the taker's hand-over, and a second
//! copy would be stored twice.

use std::collections::{BTreeMap, BTreeSet};

use ollystack_cluster::NodeId;
use parking_lot::Mutex;

use super::keys::u64_at;
use super::StoreError;

/// How long a taken shipment is remembered: longer than a sender retries
/// one while its owner is reachable, short enough to stay small.
pub const RETENTION_MS: u64 = 3_600_000;

/// A shipment: (sending node, the sender's shipment ID).
pub type ShipmentId = (NodeId, u64);

#[derive(Debug)]
pub struct ShipmentLog {
    /// `origin (8 bytes BE) ++ id (8 bytes BE)` → unix ms taken.
    taken: sled::Tree,
    /// This node's own shipment IDs (8 bytes BE) that a node which left
    /// reported taken → unix ms reported.
    delivered: sled::Tree,
    /// Shipments being taken right now: a repeat that arrives meanwhile is
    /// told to retry instead of being taken twice.
    in_flight: Mutex<BTreeSet<ShipmentId>>,
}

/// Whether a shipment is new here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Take it; call [`ShipmentLog::taken`] once it is durable, or
    /// [`ShipmentLog::abandon`] if taking it failed.
    New,
    /// Taken before: answer success without taking it again.
    Repeat,
    /// The same shipment is being taken right now: answer retryable.
    InFlight,
}

fn key((origin, id): ShipmentId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&origin.0.to_be_bytes());
    k[8..].copy_from_slice(&id.to_be_bytes());
    k
}

impl ShipmentLog {
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            taken: db.open_tree("shipments")?,
            delivered: db.open_tree("shipments_delivered")?,
            in_flight: Mutex::new(BTreeSet::new()),
        })
    }

    /// Checks a shipment in. ID 0 means "no ID" (always new, never recorded).
    pub fn arrive(&self, shipment: ShipmentId) -> Result<Arrival, StoreError> {
        if shipment.1 == 0 {
            return Ok(Arrival::New);
        }
        let mut in_flight = self.in_flight.lock();
        if in_flight.contains(&shipment) {
            return Ok(Arrival::InFlight);
        }
        if self.taken.contains_key(key(shipment))? {
            return Ok(Arrival::Repeat);
        }
        in_flight.insert(shipment);
        Ok(Arrival::New)
    }

    /// Whether a shipment was taken here or is being taken right now,
    /// without checking it in (`None`: neither).
    pub fn seen(&self, shipment: ShipmentId) -> Result<Option<Arrival>, StoreError> {
        if shipment.1 == 0 {
            return Ok(None);
        }
        if self.in_flight.lock().contains(&shipment) {
            return Ok(Some(Arrival::InFlight));
        }
        Ok(self.taken.contains_key(key(shipment))?.then_some(Arrival::Repeat))
    }

    /// Records a shipment as taken (its data is durable here).
    pub fn taken(&self, shipment: ShipmentId, now_unix_ms: u64) -> Result<(), StoreError> {
        if shipment.1 == 0 {
            return Ok(());
        }
        let result = self.record(shipment, now_unix_ms);
        self.in_flight.lock().remove(&shipment);
        result
    }

    /// Records a shipment as taken without the in-flight bookkeeping (WAL
    /// replay: the record of a shipment taken before a crash).
    pub fn record(&self, shipment: ShipmentId, now_unix_ms: u64) -> Result<(), StoreError> {
        self.taken.insert(key(shipment), &now_unix_ms.to_be_bytes())?;
        Ok(())
    }

    /// Lets go of a shipment that could not be taken (the sender retries).
    pub fn abandon(&self, shipment: ShipmentId) {
        self.in_flight.lock().remove(&shipment);
    }

    /// The shipments taken here, by sending node: what a leaving node
    /// tells each sender (see the module docs).
    pub fn taken_by_origin(&self) -> Result<BTreeMap<NodeId, Vec<u64>>, StoreError> {
        let mut out: BTreeMap<NodeId, Vec<u64>> = BTreeMap::new();
        for item in self.taken.iter() {
            let (k, _) = item?;
            if let (Some(origin), Some(id)) = (u64_at(&k, 0), u64_at(&k, 8)) {
                out.entry(NodeId(origin)).or_default().push(id);
            }
        }
        Ok(out)
    }

    /// Records this node's shipments `ids` as taken by a node that is
    /// leaving; durable with the database's next flush (`SledFlusher`,
    /// which the caller waits for).
    pub fn note_delivered(&self, ids: &[u64], now_unix_ms: u64) -> Result<(), StoreError> {
        for id in ids.iter().filter(|id| **id != 0) {
            self.delivered.insert(id.to_be_bytes(), &now_unix_ms.to_be_bytes())?;
        }
        Ok(())
    }

    /// Whether this node's shipment `id` was reported taken by a node that
    /// left since.
    pub fn delivered(&self, id: u64) -> Result<bool, StoreError> {
        Ok(id != 0 && self.delivered.contains_key(id.to_be_bytes())?)
    }

    /// Drops records taken (or reported delivered) before `cutoff_unix_ms`.
    pub fn expire(&self, cutoff_unix_ms: u64) -> Result<u64, StoreError> {
        let mut removed = 0;
        for tree in [&self.taken, &self.delivered] {
            for item in tree.iter() {
                let (k, v) = item?;
                if u64_at(&v, 0).unwrap_or(0) < cutoff_unix_ms {
                    tree.remove(k)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Result = std::result::Result<(), StoreError>;

    fn log() -> std::result::Result<ShipmentLog, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        ShipmentLog::open(&db)
    }

    #[test]
    fn a_shipment_is_taken_once() -> Result {
        let log = log()?;
        assert_eq!(log.arrive((NodeId(1), 7))?, Arrival::New);
        assert_eq!(log.arrive((NodeId(1), 7))?, Arrival::InFlight, "a repeat while the first is being taken");
        log.taken((NodeId(1), 7), 100)?;
        assert_eq!(log.arrive((NodeId(1), 7))?, Arrival::Repeat);
        assert_eq!(log.arrive((NodeId(2), 7))?, Arrival::New, "another sender's shipment 7");
        Ok(())
    }

    #[test]
    fn an_abandoned_shipment_can_be_taken_again() -> Result {
        let log = log()?;
        assert_eq!(log.arrive((NodeId(1), 7))?, Arrival::New);
        log.abandon((NodeId(1), 7));
        assert_eq!(log.arrive((NodeId(1), 7))?, Arrival::New);
        Ok(())
    }

    #[test]
    fn shipments_without_an_id_are_never_recorded() -> Result {
        let log = log()?;
        assert_eq!(log.arrive((NodeId(1), 0))?, Arrival::New);
        log.taken((NodeId(1), 0), 100)?;
        assert_eq!(log.arrive((NodeId(1), 0))?, Arrival::New);
        Ok(())
    }

    #[test]
    fn taken_shipments_are_listed_by_sender() -> Result {
        let log = log()?;
        for shipment in [(NodeId(2), 9), (NodeId(1), 7), (NodeId(2), 3)] {
            log.arrive(shipment)?;
            log.taken(shipment, 100)?;
        }
        let by_origin = log.taken_by_origin()?;
        assert_eq!(by_origin.into_iter().collect::<Vec<_>>(), [(NodeId(1), vec![7]), (NodeId(2), vec![3, 9])]);
        Ok(())
    }

    #[test]
    fn delivered_shipments_are_remembered_until_they_expire() -> Result {
        let log = log()?;
        assert!(!log.delivered(7)?);
        log.note_delivered(&[7, 0], 100)?;
        assert!(log.delivered(7)?);
        assert!(!log.delivered(0)?, "0 is no shipment");
        assert_eq!(log.expire(200)?, 1);
        assert!(!log.delivered(7)?);
        Ok(())
    }

    #[test]
    fn old_records_expire() -> Result {
        let log = log()?;
        log.arrive((NodeId(1), 7))?;
        log.taken((NodeId(1), 7), 100)?;
        log.arrive((NodeId(1), 8))?;
        log.taken((NodeId(1), 8), 300)?;
        assert_eq!(log.expire(200)?, 1);
        assert_eq!(log.arrive((NodeId(1), 7))?, Arrival::New);
        assert_eq!(log.arrive((NodeId(1), 8))?, Arrival::Repeat);
        Ok(())
    }
}
