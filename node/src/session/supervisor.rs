//! The parent of every session actor of one node.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::metrics::NodeMetrics;

/// Parent of all session actors of one node. A session actor that panics
/// loses only its in-memory copy: its signals are still in the WAL and are
/// replayed at the next start.
pub struct SessionSupervisor;

impl Actor for SessionSupervisor {
    type Msg = ();
    type State = Arc<NodeMetrics>;
    type Arguments = Arc<NodeMetrics>;

    async fn pre_start(&self, _me: ActorRef<()>, metrics: Arc<NodeMetrics>) -> Result<Self::State, ActorProcessingErr> {
        Ok(metrics)
    }

    async fn handle_supervisor_evt(
        &self,
        _me: ActorRef<()>,
        event: SupervisionEvent,
        _metrics: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, err) = event {
            tracing::error!(actor = %cell.get_id(), error = %err, "session actor failed; its data stays in the WAL");
        }
        Ok(())
    }
}
