//! What a node is started with besides its config: its sources of time,
//! randomness and network, and the simulations' hooks.

use std::sync::Arc;

use ollystack_cluster::net::{SharedTransport, TcpTransport};

use super::faults::Faults;
use crate::clock::{SeededRng, SharedClock, TokioClock};
use crate::store::SessionStore;

/// Injectable sources of time, randomness and network (tests and
/// simulations pass their own).
#[derive(Debug, Clone)]
pub struct Sources {
    pub clock: SharedClock,
    pub rng: Arc<SeededRng>,
    pub transport: SharedTransport,
    /// Deliberately broken behaviours: only in the simulations' build (the
    /// `sim-faults` feature); the release binary has no such switch.
    #[cfg(feature = "sim-faults")]
    pub faults: Faults,
    /// Wraps the session store the node builds (the simulations put a
    /// failing, slow sink around it); `None` in production.
    pub store_layer: Option<StoreLayer>,
    /// Told the WAL's durable file lengths (the simulations' crashes cut
    /// files back to them); `None` in production.
    pub wal_observer: Option<crate::wal::SyncObserver>,
    /// Given the node's sled database, opened without sled's timed
    /// background flush so that only the node's explicit flushes reach its
    /// files (the simulations keep it, and leak it when they crash the
    /// node: the last handle's drop would flush what a crash loses);
    /// `None` in production.
    pub sled_hold: Option<SledHold>,
}

/// Receives a node's sled database (see [`Sources::sled_hold`]).
#[derive(Clone)]
pub struct SledHold(pub Arc<dyn Fn(sled::Db) + Send + Sync>);

impl std::fmt::Debug for SledHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SledHold(..)")
    }
}

/// Wraps a node's [`SessionStore`].
#[derive(Clone)]
pub struct StoreLayer(pub Arc<WrapStore>);

/// A function from the node's store to the store it uses.
pub type WrapStore = dyn Fn(Arc<dyn SessionStore>) -> Arc<dyn SessionStore> + Send + Sync;

impl std::fmt::Debug for StoreLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLayer(..)")
    }
}

impl Sources {
    /// The faults switched on: none outside the simulations' build.
    pub(super) fn faults(&self) -> Faults {
        #[cfg(feature = "sim-faults")]
        return self.faults;
        #[cfg(not(feature = "sim-faults"))]
        Faults::default()
    }

    pub fn production(seed: Option<u64>) -> Self {
        Self {
            clock: Arc::new(TokioClock::system()),
            rng: Arc::new(seed.map_or_else(SeededRng::from_os, SeededRng::from_seed)),
            transport: TcpTransport::shared(),
            #[cfg(feature = "sim-faults")]
            faults: Faults::default(),
            store_layer: None,
            wal_observer: None,
            sled_hold: None,
        }
    }
}
