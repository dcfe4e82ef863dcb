//! Deciding the correlation ID of one signal and the change its trace's
//! entry in the trace index needs (trace unification). Pure: the caller
//! looks the trace up, applies [`Resolution::bind`] and carries out merges.

use super::extract::Candidate;
use super::ids::derive_from_trace;
use super::settings::CorrelationSettings;
use super::validate::{validate, RejectReason, Validated};
use crate::model::{CorrelationId, IdSource, TraceId};

/// What the trace index knows about a trace: the session it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceBinding {
    /// The session of the trace.
    pub id: CorrelationId,
    /// True once a signal of the trace carried an explicit ID; a derived
    /// binding is replaced by the first explicit one.
    pub explicit: bool,
}

/// Outcome for one signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The session the signal belongs to.
    pub id: CorrelationId,
    /// How `id` was found.
    pub source: IdSource,
    /// Set when an explicit candidate was rejected (the caller counts it);
    /// the signal then resolved as if it had no candidate.
    pub rejected: Option<RejectReason>,
    /// The explicit ID was used after sanitizing.
    pub sanitized: bool,
    /// Change the trace index must make (None = nothing).
    pub bind: Option<TraceBinding>,
    /// Set when the trace previously lived under a derived session that must now merge into `id`.
    pub merge_from: Option<CorrelationId>,
    /// The trace already had a different explicit ID (counted, signal keeps its own explicit ID).
    pub conflict: bool,
}

impl Resolution {
    /// A resolution that changes nothing in the trace index.
    fn plain(id: CorrelationId, source: IdSource, rejected: Option<RejectReason>) -> Self {
        Self { id, source, rejected, sanitized: false, bind: None, merge_from: None, conflict: false }
    }
}

/// Resolves one signal. `known` is the trace index entry of `trace` (ignored
/// without a trace); `generate` is called only when the signal has neither a
/// valid explicit ID nor a trace.
pub fn resolve(
    s: &CorrelationSettings,
    candidate: Option<Candidate>,
    trace: Option<TraceId>,
    known: Option<&TraceBinding>,
    generate: impl FnOnce() -> CorrelationId,
) -> Resolution {
    let verdict = candidate.map(|c| {
        debug_assert!(c.source.is_explicit(), "candidate from {:?}", c.source);
        (validate(s, &c.raw), c.source)
    });
    let rejected = match verdict {
        Some((Validated::Accepted(id), source)) => return explicit(id, source, false, trace, known),
        Some((Validated::Sanitized(id), source)) => return explicit(id, source, true, trace, known),
        Some((Validated::Rejected(reason), _)) => Some(reason),
        None => None,
    };
    implicit(trace, known, rejected, generate)
}

/// The resolution of a valid explicit ID, with the trace index change it
/// needs when the signal belongs to a trace.
fn explicit(id: CorrelationId, source: IdSource, sanitized: bool, trace: Option<TraceId>, known: Option<&TraceBinding>) -> Resolution {
    let mut out = Resolution::plain(id, source, None);
    out.sanitized = sanitized;
    if trace.is_some() {
        unify(&mut out, known);
    }
    out
}

/// Sets the trace index change for an explicit ID on a signal of a trace.
fn unify(out: &mut Resolution, known: Option<&TraceBinding>) {
    let bind = Some(TraceBinding { id: out.id.clone(), explicit: true });
    match known {
        None => out.bind = bind,
        Some(b) if !b.explicit => {
            // A derived binding equal to the explicit ID (the derived ID was
            // propagated as the explicit one) is upgraded without a merge, so
            // later conflicting IDs are still detected.
            out.bind = bind;
            out.merge_from = (b.id != out.id).then(|| b.id.clone());
        }
        Some(b) => out.conflict = b.id != out.id,
    }
}

/// The ID of a signal without a valid explicit ID: its trace's, derived
/// from its trace, or generated.
fn implicit(
    trace: Option<TraceId>,
    known: Option<&TraceBinding>,
    rejected: Option<RejectReason>,
    generate: impl FnOnce() -> CorrelationId,
) -> Resolution {
    let Some(trace) = trace else {
        return Resolution::plain(generate(), IdSource::Generated, rejected);
    };
    if let Some(binding) = known {
        return Resolution::plain(binding.id.clone(), IdSource::Trace, rejected);
    }
    let derived = derive_from_trace(trace);
    let mut out = Resolution::plain(derived.clone(), IdSource::Derived, rejected);
    out.bind = Some(TraceBinding { id: derived, explicit: false });
    out
}

#[cfg(test)]
#[path = "resolve_test.rs"]
mod tests;
