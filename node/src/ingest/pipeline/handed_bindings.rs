//! Trace bindings another node sent here: bindings follow their trace's
//! home after a ring change (`cluster::bindings`), and a leaving node hands
//! its bindings over. What one changes is decided by
//! [`correlate::reconcile`]; this applies it under the binding lock, makes
//! it durable, and merges derived sessions into the explicit sessions they
//! turned out to belong to.

use std::sync::Arc;

use super::{IngestError, Ingestor};
use crate::correlate::{self, BindingChange, TraceBinding};
use crate::ingest::assign::Merge;
use crate::model::{CorrelationId, TenantId, TraceId};

/// A trace's binding as one node sends it to another.
pub type SentBinding = (TenantId, TraceId, TraceBinding);

impl Ingestor {
    /// Applies bindings sent by another node (or the answers this node got
    /// back for its own). Returns the answers for the sender: traces it
    /// holds as derived whose explicit session this node knows.
    pub async fn receive_bindings(
        self: &Arc<Self>,
        bindings: Vec<SentBinding>,
    ) -> Result<Vec<(TenantId, TraceId, CorrelationId)>, IngestError> {
        let this = self.clone();
        // To its end: bindings and aliases are written before the merges
        // they ask for run.
        super::to_completion(async move { this.receive_bindings_now(bindings).await }).await
    }

    async fn receive_bindings_now(&self, bindings: Vec<SentBinding>) -> Result<Vec<(TenantId, TraceId, CorrelationId)>, IngestError> {
        self.check_accepting()?;
        let env = &self.env;
        let now = env.clock.now_unix_ms();
        let (mut merges, mut answers, mut changed) = (Vec::new(), Vec::new(), false);
        {
            let _guard = self.binding_lock.lock();
            for (tenant, trace, incoming) in bindings {
                let have = env.storage.traces.binding(&tenant, trace)?;
                let change = correlate::reconcile(have.as_ref(), &incoming);
                tracing::debug!(trace = %correlate::derive_from_trace(trace), have = ?have, incoming = ?incoming, change = ?change, "binding received");
                let explicit = match change {
                    BindingChange::Take => {
                        env.storage.traces.bind(&tenant, trace, &incoming, now)?;
                        changed = true;
                        incoming.explicit.then_some(incoming.id)
                    }
                    BindingChange::Answer(to) => {
                        answers.push((tenant.clone(), trace, to.clone()));
                        Some(to)
                    }
                    // Even when nothing changes, the derived session may have reached this node
                    // before the binding did (handed off under its own ID while its merge on the
                    // sender was on its way).
                    BindingChange::Keep => have.filter(|h| h.explicit).map(|h| h.id),
                };
                // Wherever the explicit binding is, what arrives under the
                // trace's derived ID (handed off, replayed) belongs to it.
                if let Some(to) = explicit {
                    if let Some(from) = correlate::derived_to_merge(trace, &to) {
                        if env.storage.traces.alias_of(&tenant, &from)?.is_none() {
                            env.storage.traces.set_alias(&tenant, &from, &to, now)?;
                            merges.push(Merge { tenant: tenant.clone(), from, to });
                        }
                    }
                }
            }
        }
        if changed || !merges.is_empty() {
            // Durable before the sender drops its copy, and before a merge
            // moves data (a replay routes through the alias).
            env.storage.settler.flusher.flush().await?;
        }
        for m in merges {
            env.registry.merge(&m.tenant, &m.from, &m.to).await.map_err(|e| IngestError::Internal(e.to_string()))?;
        }
        Ok(answers)
    }
}
