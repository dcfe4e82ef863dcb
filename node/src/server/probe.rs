//! What the simulations reach into a node for: a [`Probe`] that reads a
//! running node's state without keeping any of it alive (a crashed node's
//! storage must close). Their deliberate bugs are in `faults`.

use std::sync::{Arc, Weak};

use ollystack_cluster::raft::{ClusterView, NodeInfo, RaftId};
use ollystack_cluster::NodeId;

use crate::cluster::Cluster;
use crate::model::{CorrelationId, TenantId};
use crate::session::SessionEnv;

/// Read access to a running node's cluster view and live sessions.
#[derive(Debug, Clone)]
pub struct Probe {
    pub id: NodeId,
    pub(super) cluster: Weak<Cluster>,
    pub(super) env: Weak<SessionEnv>,
}

impl Probe {
    pub fn raft_metrics(&self) -> Option<openraft::RaftMetrics<RaftId, NodeInfo>> {
        Some(self.cluster.upgrade()?.raft.metrics().borrow().clone())
    }

    pub fn view(&self) -> Option<Arc<ClusterView>> {
        Some(self.cluster.upgrade()?.view())
    }

    /// The owner of a session by this node's applied ring.
    pub fn owner(&self, tenant: &str, id: &str) -> Option<NodeId> {
        Some(self.cluster.upgrade()?.owner(&TenantId::from_trusted(tenant), &CorrelationId::from_trusted(id)))
    }

    /// (tenant, correlation ID) of every live session actor; `None` when
    /// the node is gone or its registry is busy right now. Never waits, so
    /// a probe holds nothing of the node across simulation steps.
    pub fn live_sessions(&self) -> Option<Vec<(String, String)>> {
        let keys = self.env.upgrade()?.registry.try_live_keys()?;
        Some(keys.into_iter().map(|k| (k.tenant.as_str().to_owned(), k.id.as_str().to_owned())).collect())
    }
}

impl Probe {
    /// Tells one live session actor (the `pick`-th, modulo how many there
    /// are) to panic; its ID, or `None` when there is none or the registry
    /// is busy right now (never waits).
    #[cfg(feature = "sim-faults")]
    pub fn panic_a_session(&self, pick: u64) -> Option<String> {
        let env = self.env.upgrade()?;
        let (key, actor) = env.registry.try_live_actor(pick)?;
        actor.send_message(crate::session::SessionMsg::Crash).ok()?;
        Some(key.id.as_str().to_owned())
    }

    /// What this node holds of a session, for a failure report: the
    /// bindings of `traces`, where `ids` resolve, and the live and closing
    /// actors of each. `None` when the node is gone or a registry shard is
    /// busy right now (never waits).
    pub fn explain(&self, tenant: &str, ids: &[String], traces: &[[u8; 16]]) -> Option<String> {
        let env = self.env.upgrade()?;
        let tenant = TenantId::from_trusted(tenant);
        let mut out = Vec::new();
        for t in traces {
            let trace = crate::model::TraceId(*t);
            let binding = env.storage.traces.binding(&tenant, trace).ok().flatten();
            out.push(format!("trace {} bound to {binding:?}", crate::correlate::derive_from_trace(trace)));
        }
        for id in ids {
            let id = CorrelationId::from_trusted(id.as_str());
            let alias = env.storage.traces.alias_of(&tenant, &id).ok().flatten();
            let (live, closing) = env.registry.try_holder_counts(&crate::model::SessionKey { tenant: tenant.clone(), id: id.clone() })?;
            out.push(format!("{id}: alias {alias:?}, {live} live + {closing} closing actor(s)"));
        }
        Some(out.join("; "))
    }
}
