//! Step 2 of ingest: decide each prepared signal's session. Runs under the
//! node's binding lock because it reads and updates the trace index (the
//! decisions themselves are `correlate::resolve`); groups signals by
//! session and collects the merges trace unification asks for.

use std::collections::{BTreeMap, HashMap};

use super::prepare::{Prepared, PreparedBatch, Signal};
use crate::correlate::{self, CorrelationSettings, TraceBinding};
use crate::metrics::NodeMetrics;
use crate::model::{CorrelationId, IdSource, SessionKey, TenantId, TraceId};
use crate::session::SessionInput;
use crate::store::{StoreError, TraceIndex};

/// The signals of one batch for one session.
#[derive(Debug, Default)]
pub struct Group {
    pub input: SessionInput,
}

/// A derived session whose trace joined an explicit one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    pub tenant: TenantId,
    pub from: CorrelationId,
    pub to: CorrelationId,
}

#[derive(Debug, Default)]
pub struct Assigned {
    /// In a stable order (by session key) so WAL writes are deterministic.
    pub groups: BTreeMap<SessionKey, Group>,
    pub merges: Vec<Merge>,
    /// Trace bindings made, explicit or derived (logged in the WAL with the
    /// batch: sled's copy is not flushed before the batch is acknowledged).
    pub bindings: Vec<(TenantId, TraceId, TraceBinding)>,
}

/// Resolves every signal, updating the trace index (bindings and aliases).
/// A signal with no ID and no trace joins its service's unscoped session
/// of this minute ([`correlate::unscoped`]).
pub fn assign(
    s: &CorrelationSettings,
    batch: PreparedBatch,
    traces: &TraceIndex,
    metrics: &NodeMetrics,
    now_unix_ms: u64,
) -> Result<Assigned, StoreError> {
    let mut out = Assigned::default();
    // Bindings seen or made in this batch (a batch often holds many spans of one trace).
    let mut known: HashMap<(TenantId, TraceId), Option<TraceBinding>> = HashMap::new();
    for Prepared { tenant, trace, candidate, signal } in batch.items {
        let binding = match trace {
            Some(t) => match known.get(&(tenant.clone(), t)) {
                Some(b) => b.clone(),
                None => {
                    let b = traces.binding(&tenant, t)?;
                    known.insert((tenant.clone(), t), b.clone());
                    b
                }
            },
            None => None,
        };
        let res = correlate::resolve(s, candidate, trace, binding.as_ref(), || correlate::unscoped(signal.service(), now_unix_ms));
        count(metrics, &res);
        if let (Some(t), Some(bind)) = (trace, &res.bind) {
            tracing::debug!(trace = %correlate::derive_from_trace(t), id = %bind.id, explicit = bind.explicit, merge_from = ?res.merge_from, "trace bound");
            traces.bind(&tenant, t, bind, now_unix_ms)?;
            known.insert((tenant.clone(), t), Some(bind.clone()));
            out.bindings.push((tenant.clone(), t, bind.clone()));
        }
        if let Some(from) = &res.merge_from {
            traces.set_alias(&tenant, from, &res.id, now_unix_ms)?;
            out.merges.push(Merge { tenant: tenant.clone(), from: from.clone(), to: res.id.clone() });
        }
        let key = SessionKey { tenant, id: res.id };
        let group = out.groups.entry(key).or_default();
        match signal {
            Signal::Span(span) => group.input.spans.push(span),
            Signal::Log(log) => group.input.logs.push(log),
            Signal::Exemplar(ex) => group.input.exemplars.push(ex),
        }
    }
    Ok(out)
}

fn count(m: &NodeMetrics, res: &correlate::Resolution) {
    if let Some(reason) = &res.rejected {
        m.correlation_ids_rejected.add(reason.as_str(), 1);
    }
    if res.sanitized {
        m.correlation_ids_sanitized.inc();
    }
    if res.conflict {
        m.correlation_trace_conflicts.inc();
    }
    match res.source {
        IdSource::Derived => m.correlation_ids_derived.inc(),
        IdSource::Generated => m.correlation_ids_generated.inc(),
        _ => {}
    }
}
