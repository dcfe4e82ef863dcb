//! Two nodes' bindings of one trace, reconciled. A trace's binding belongs
//! on the trace's home (the owner of its derived ID), but a ring change
//! moves the home while bindings stay where they were made: a span that
//! arrives by trace alone at the new home then opens a derived session,
//! and the old home may hold the explicit ID. Bindings therefore follow
//! their home; the receiver decides here what one it is sent changes.
//! Pure.

use super::ids::derive_from_trace;
use super::resolve::TraceBinding;
use crate::model::{CorrelationId, TraceId};

/// What a node does with a binding another node sent it for a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingChange {
    /// Keep the sender's binding: nothing was known here, or only the
    /// derived session and the sender knows the explicit one.
    Take,
    /// This node knows the explicit session and the sender only the
    /// derived one: the sender must merge its derived session into this.
    Answer(CorrelationId),
    /// Nothing to do: the same binding, both derived (the same ID), or two
    /// different explicit IDs (a conflict ingest also keeps as is).
    Keep,
}

pub fn reconcile(have: Option<&TraceBinding>, incoming: &TraceBinding) -> BindingChange {
    match have {
        None => BindingChange::Take,
        Some(have) if !have.explicit && incoming.explicit => BindingChange::Take,
        Some(have) if have.explicit && !incoming.explicit && have.id != incoming.id => BindingChange::Answer(have.id.clone()),
        Some(_) => BindingChange::Keep,
    }
}

/// The derived session that must merge into `explicit`, the session a
/// trace was bound to: the trace's derived ID, unless the derived ID itself
/// was propagated as the explicit one. Wherever a node holds the explicit
/// binding, what arrives under the derived ID belongs to it.
pub fn derived_to_merge(trace: TraceId, explicit: &CorrelationId) -> Option<CorrelationId> {
    Some(derive_from_trace(trace)).filter(|d| d != explicit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(id: &str, explicit: bool) -> TraceBinding {
        TraceBinding { id: CorrelationId::from_trusted(id), explicit }
    }

    #[test]
    fn an_unknown_trace_takes_the_senders_binding() {
        assert_eq!(reconcile(None, &b("olly-1-aa", false)), BindingChange::Take);
        assert_eq!(reconcile(None, &b("order-7", true)), BindingChange::Take);
    }

    #[test]
    fn an_explicit_binding_replaces_a_derived_one() {
        assert_eq!(reconcile(Some(&b("olly-1-aa", false)), &b("order-7", true)), BindingChange::Take);
    }

    #[test]
    fn the_derived_session_merges_unless_its_id_is_the_explicit_one() {
        let trace = TraceId([7; 16]);
        let derived = derive_from_trace(trace);
        assert_eq!(derived_to_merge(trace, &CorrelationId::from_trusted("order-7")), Some(derived.clone()));
        assert_eq!(derived_to_merge(trace, &derived), None);
    }

    #[test]
    fn a_derived_binding_sent_to_a_node_that_knows_the_session_is_answered() {
        let answer = BindingChange::Answer(CorrelationId::from_trusted("order-7"));
        assert_eq!(reconcile(Some(&b("order-7", true)), &b("olly-1-aa", false)), answer);
    }

    #[test]
    fn same_derived_or_conflicting_explicit_bindings_change_nothing() {
        assert_eq!(reconcile(Some(&b("olly-1-aa", false)), &b("olly-1-aa", false)), BindingChange::Keep);
        assert_eq!(reconcile(Some(&b("order-7", true)), &b("order-7", true)), BindingChange::Keep);
        assert_eq!(reconcile(Some(&b("order-7", true)), &b("order-8", true)), BindingChange::Keep);
        assert_eq!(reconcile(Some(&b("order-7", true)), &b("order-7", false)), BindingChange::Keep);
    }
}
