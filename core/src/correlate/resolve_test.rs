//! Tests of `resolve`: each rule, then trace unification over random
//! sequences of signals against a simulated trace index.

use std::cell::Cell;
use std::collections::HashMap;

use super::*;
use proptest::prelude::*;

fn settings() -> CorrelationSettings {
    CorrelationSettings::default()
}

fn id(text: &str) -> CorrelationId {
    CorrelationId::from_trusted(text)
}

fn header(raw: &str) -> Option<Candidate> {
    Some(Candidate { raw: raw.to_owned(), source: IdSource::Header })
}

fn trace() -> TraceId {
    TraceId([7; 16])
}

fn explicit(text: &str) -> TraceBinding {
    TraceBinding { id: id(text), explicit: true }
}

fn never() -> CorrelationId {
    panic!("generate called although not needed")
}

#[test]
fn explicit_id_without_trace_binds_nothing() {
    let r = resolve(&settings(), header("abc"), None, None, never);
    assert_eq!(r, Resolution::plain(id("abc"), IdSource::Header, None));
}

#[test]
fn explicit_id_binds_an_unknown_trace() {
    let r = resolve(&settings(), header("abc"), Some(trace()), None, never);
    assert_eq!(r.bind, Some(explicit("abc")));
    assert_eq!((r.merge_from, r.conflict), (None, false));
}

#[test]
fn explicit_id_takes_over_a_derived_trace_and_merges_it() {
    let derived = TraceBinding { id: derive_from_trace(trace()), explicit: false };
    let r = resolve(&settings(), header("abc"), Some(trace()), Some(&derived), never);
    assert_eq!(r.bind, Some(explicit("abc")));
    assert_eq!(r.merge_from, Some(derived.id));
}

#[test]
fn explicit_id_equal_to_the_derived_one_upgrades_without_merge() {
    let derived = derive_from_trace(trace());
    let known = TraceBinding { id: derived.clone(), explicit: false };
    let r = resolve(&settings(), header(derived.as_str()), Some(trace()), Some(&known), never);
    assert_eq!(r.bind, Some(TraceBinding { id: derived, explicit: true }));
    assert_eq!(r.merge_from, None);
}

#[test]
fn same_explicit_id_changes_nothing() {
    let r = resolve(&settings(), header("abc"), Some(trace()), Some(&explicit("abc")), never);
    assert_eq!(r, Resolution::plain(id("abc"), IdSource::Header, None));
}

#[test]
fn other_explicit_id_is_a_conflict_and_keeps_its_own_id() {
    let r = resolve(&settings(), header("new"), Some(trace()), Some(&explicit("old")), never);
    assert_eq!((r.id, r.conflict, r.bind), (id("new"), true, None));
}

#[test]
fn sanitized_ids_are_flagged() {
    let r = resolve(&settings(), header("a b"), None, None, never);
    assert_eq!((r.id, r.sanitized), (id("a_b"), true));
}

#[test]
fn rejected_candidate_is_counted_and_falls_through() {
    let r = resolve(&settings(), header("x;drop"), Some(trace()), Some(&explicit("abc")), never);
    assert_eq!(r.rejected, Some(RejectReason::Injection("statement_separator")));
    assert_eq!((r.id, r.source, r.bind), (id("abc"), IdSource::Trace, None));
}

#[test]
fn known_trace_gives_its_id() {
    let r = resolve(&settings(), None, Some(trace()), Some(&explicit("abc")), never);
    assert_eq!(r, Resolution::plain(id("abc"), IdSource::Trace, None));
}

#[test]
fn unknown_trace_derives_and_binds() {
    let r = resolve(&settings(), None, Some(trace()), None, never);
    let derived = derive_from_trace(trace());
    assert_eq!((r.id.clone(), r.source), (derived.clone(), IdSource::Derived));
    assert_eq!(r.bind, Some(TraceBinding { id: derived, explicit: false }));
}

#[test]
fn no_candidate_and_no_trace_generates_once() {
    let calls = Cell::new(0);
    let generate = || {
        calls.set(calls.get() + 1);
        id("olly-1-00000000")
    };
    let r = resolve(&settings(), header(""), None, None, generate);
    assert_eq!((r.id, r.source, r.rejected), (id("olly-1-00000000"), IdSource::Generated, Some(RejectReason::Empty)));
    assert_eq!(calls.get(), 1);
}

/// One signal of the simulated trace: no ID, a valid explicit ID, or an
/// invalid one.
#[derive(Debug, Clone)]
enum Signal {
    Plain,
    Explicit(&'static str),
    Invalid,
}

fn signal() -> impl Strategy<Value = Signal> {
    prop_oneof![
        3 => Just(Signal::Plain),
        2 => prop::sample::select(vec!["e1", "e2", "e3"]).prop_map(Signal::Explicit),
        1 => Just(Signal::Invalid),
    ]
}

proptest! {
    #[test]
    fn a_trace_follows_its_first_explicit_id(
        signals in prop::collection::vec(signal(), 1..40),
        trace_bytes in any::<[u8; 16]>(),
    ) {
        let s = settings();
        let trace = TraceId(trace_bytes);
        let derived = derive_from_trace(trace);
        let mut index: HashMap<TraceId, TraceBinding> = HashMap::new();
        let mut first_explicit: Option<CorrelationId> = None;
        for signal in signals {
            let candidate = match &signal {
                Signal::Plain => None,
                Signal::Explicit(text) => header(text),
                Signal::Invalid => header("<script>"),
            };
            let before = index.get(&trace).cloned();
            let r = resolve(&s, candidate, Some(trace), before.as_ref(), never);
            match signal {
                Signal::Explicit(text) => {
                    prop_assert_eq!(r.id.clone(), id(text));
                    prop_assert_eq!(r.conflict, first_explicit.as_ref().is_some_and(|e| *e != r.id));
                    if first_explicit.is_none() {
                        let merge = before.map(|b| b.id);
                        prop_assert_eq!(r.merge_from.clone(), merge);
                        first_explicit = Some(r.id.clone());
                    }
                }
                Signal::Plain | Signal::Invalid => {
                    let expected = first_explicit.clone().unwrap_or_else(|| derived.clone());
                    prop_assert_eq!(r.id.clone(), expected);
                    prop_assert_eq!(r.rejected.is_some(), matches!(signal, Signal::Invalid));
                }
            }
            if let Some(bind) = r.bind {
                index.insert(trace, bind);
            }
        }
        if let Some(e) = first_explicit {
            prop_assert_eq!(index.get(&trace), Some(&TraceBinding { id: e, explicit: true }));
        }
    }

    #[test]
    fn generate_is_called_only_without_id_and_trace(
        raw in prop::option::of(".{0,20}"),
        has_trace in any::<bool>(),
    ) {
        let calls = Cell::new(0);
        let trace_id = has_trace.then(trace);
        let candidate = raw.map(|raw| Candidate { raw, source: IdSource::Baggage });
        let r = resolve(&settings(), candidate, trace_id, None, || {
            calls.set(calls.get() + 1);
            id("olly-0-00000000")
        });
        prop_assert_eq!(calls.get(), usize::from(r.source == IdSource::Generated));
        prop_assert_eq!(r.source == IdSource::Generated, trace_id.is_none() && !r.source.is_explicit());
    }
}
