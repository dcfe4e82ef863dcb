//! What the workload sent and what the cluster acknowledged, per correlation
//! session, and the check of a query answer against it (invariants 1 and 4):
//! every acknowledged span, log and exemplar is in the answer, nothing is in it twice,
//! and nothing is in it that was never sent. Items sent but never
//! acknowledged may or may not be there (the acknowledgement may be what was
//! lost). Pure.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default, Clone)]
struct Expect {
    sent_spans: BTreeSet<String>,
    acked_spans: BTreeSet<String>,
    sent_logs: BTreeSet<String>,
    acked_logs: BTreeSet<String>,
    sent_exemplars: BTreeSet<String>,
    acked_exemplars: BTreeSet<String>,
}

/// The acknowledged items of one session at some moment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Acked {
    pub spans: BTreeSet<String>,
    pub logs: BTreeSet<String>,
    pub exemplars: BTreeSet<String>,
}

/// A query answer, reduced to what the oracle checks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Answer {
    pub partial: bool,
    /// Span IDs, one per span in the answer.
    pub spans: Vec<String>,
    /// Log bodies (unique per log record), one per log in the answer.
    pub logs: Vec<String>,
    /// Exemplar span IDs (unique per exemplar), one per exemplar.
    pub exemplars: Vec<String>,
}

/// One batch's items: span IDs, log bodies, exemplar span IDs.
#[derive(Debug, Clone, Copy)]
pub struct Items<'a> {
    pub spans: &'a [String],
    pub logs: &'a [String],
    pub exemplars: &'a [String],
}

/// (sent, acknowledged) items of every session, by kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub spans: (usize, usize),
    pub logs: (usize, usize),
    pub exemplars: (usize, usize),
}

#[derive(Debug, Default)]
pub struct Oracle {
    sessions: BTreeMap<String, Expect>,
    /// Items the workload sent more than once (a retry): the cluster may
    /// have taken both copies, so they may be stored twice.
    resent: BTreeSet<String>,
    /// Items sent by trace only (no session ID on the record), with their
    /// trace. They reach their session through the trace's binding, which
    /// lives on the trace's home, once a span or log carrying the ID has
    /// reached it: until then they sit in a derived session, and no node
    /// can know they belong to the one asked for.
    by_trace: BTreeMap<String, [u8; 16]>,
    /// Traces a span or log batch carrying the session's ID was
    /// acknowledged for. From then on a by-trace item of the trace that
    /// was acknowledged is part of the session: an answer without it must
    /// say partial (while a binding is on its way to a new trace home, or
    /// a node holding part is out of reach).
    joined: BTreeSet<[u8; 16]>,
}

/// One segment a store committed: where, and the items it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCopy {
    pub node: String,
    pub seq: u64,
    pub session: String,
    pub items: Vec<String>,
}

impl Oracle {
    pub fn sent(&mut self, session: &str, items: Items<'_>) {
        let e = self.sessions.entry(session.to_owned()).or_default();
        for (set, new) in [(&mut e.sent_spans, items.spans), (&mut e.sent_logs, items.logs), (&mut e.sent_exemplars, items.exemplars)] {
            for item in new {
                if !set.insert(item.clone()) {
                    self.resent.insert(item.clone());
                }
            }
        }
    }

    /// Invariant 1 at the storage layer (queries de-duplicate, so they
    /// cannot see this): an item sent once is in at most one committed
    /// segment. Copies are told apart by (node, segment seq); a segment
    /// stored again under its own seq overwrites itself.
    pub fn stored_twice(&self, copies: &[StoredCopy]) -> Vec<String> {
        let mut holders: BTreeMap<&str, BTreeSet<(&str, u64)>> = BTreeMap::new();
        for c in copies {
            for item in &c.items {
                holders.entry(item).or_default().insert((c.node.as_str(), c.seq));
            }
        }
        holders
            .into_iter()
            .filter(|(item, at)| at.len() > 1 && !self.resent.contains(*item))
            .map(|(item, at)| {
                let session = copies.iter().find(|c| c.items.iter().any(|i| i == item)).map_or("?", |c| c.session.as_str());
                format!("{session}: {item} (sent once) is in {} stored segments {at:?}", at.len())
            })
            .collect()
    }

    pub fn acked(&mut self, session: &str, items: Items<'_>) {
        let e = self.sessions.entry(session.to_owned()).or_default();
        e.acked_spans.extend(items.spans.iter().cloned());
        e.acked_logs.extend(items.logs.iter().cloned());
        e.acked_exemplars.extend(items.exemplars.iter().cloned());
    }

    /// Items of a batch sent without the session ID.
    pub fn sent_by_trace(&mut self, items: Items<'_>, trace: [u8; 16]) {
        self.by_trace.extend(items.spans.iter().chain(items.logs).map(|i| (i.clone(), trace)));
    }

    /// A span or log batch carrying the session's ID was acknowledged for
    /// `trace`.
    pub fn joined(&mut self, trace: [u8; 16]) {
        self.joined.insert(trace);
    }

    pub fn sessions(&self) -> Vec<String> {
        self.sessions.keys().cloned().collect()
    }

    /// Sessions with at least one acknowledged item.
    pub fn acked_sessions(&self) -> Vec<String> {
        self.sessions
            .iter()
            .filter(|(_, e)| !e.acked_spans.is_empty() || !e.acked_logs.is_empty() || !e.acked_exemplars.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn acked_of(&self, session: &str) -> Acked {
        self.sessions.get(session).map_or_else(Acked::default, |e| Acked {
            spans: e.acked_spans.clone(),
            logs: e.acked_logs.clone(),
            exemplars: e.acked_exemplars.clone(),
        })
    }

    /// What a query during faults must find (or say partial): the
    /// acknowledged items but those sent by trace only whose trace no
    /// acknowledged batch has joined to the session yet.
    pub fn expected_now(&self, session: &str) -> Acked {
        let mut acked = self.acked_of(session);
        let waiting = |i: &String| self.by_trace.get(i).is_some_and(|t| !self.joined.contains(t));
        acked.spans.retain(|i| !waiting(i));
        acked.logs.retain(|i| !waiting(i));
        acked
    }

    pub fn totals(&self) -> Totals {
        let add = |t: (usize, usize), sent: &BTreeSet<String>, acked: &BTreeSet<String>| (t.0 + sent.len(), t.1 + acked.len());
        self.sessions.values().fold(Totals::default(), |t, e| Totals {
            spans: add(t.spans, &e.sent_spans, &e.acked_spans),
            logs: add(t.logs, &e.sent_logs, &e.acked_logs),
            exemplars: add(t.exemplars, &e.sent_exemplars, &e.acked_exemplars),
        })
    }

    /// Violations of `answer` for `session`, given what was acknowledged
    /// before the query was sent.
    pub fn check(&self, session: &str, acked_before: &Acked, answer: &Answer) -> Vec<String> {
        let empty = Expect::default();
        let e = self.sessions.get(session).unwrap_or(&empty);
        let mut out = Vec::new();
        check_kind(session, "span", &acked_before.spans, &e.sent_spans, &answer.spans, &mut out);
        check_kind(session, "log", &acked_before.logs, &e.sent_logs, &answer.logs, &mut out);
        check_kind(session, "exemplar", &acked_before.exemplars, &e.sent_exemplars, &answer.exemplars, &mut out);
        out
    }
}

fn check_kind(session: &str, kind: &str, acked: &BTreeSet<String>, sent: &BTreeSet<String>, got: &[String], out: &mut Vec<String>) {
    let mut seen = BTreeMap::<&str, usize>::new();
    for item in got {
        *seen.entry(item).or_default() += 1;
    }
    for (item, n) in &seen {
        if *n > 1 {
            out.push(format!("{session}: {kind} {item} appears {n} times"));
        }
        if !sent.contains(*item) {
            out.push(format!("{session}: {kind} {item} was never sent to this session"));
        }
    }
    let missing: Vec<&String> = acked.iter().filter(|a| !seen.contains_key(a.as_str())).collect();
    if !missing.is_empty() {
        out.push(format!("{session}: {} acknowledged {kind}(s) missing, e.g. {}", missing.len(), missing[0]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    fn oracle() -> Oracle {
        let mut o = Oracle::default();
        let (sent_spans, spans, logs, exemplars) = (s(&["s1", "s2", "s3"]), s(&["s1", "s2"]), s(&["l1"]), s(&["e1"]));
        o.sent("a", Items { spans: &sent_spans, logs: &logs, exemplars: &exemplars });
        o.acked("a", Items { spans: &spans, logs: &logs, exemplars: &exemplars });
        o
    }

    #[test]
    fn an_item_sent_once_and_stored_twice_is_a_violation() {
        let mut o = oracle();
        let copy = |node: &str, seq, items: &[&str]| StoredCopy { node: node.into(), seq, session: "a".into(), items: s(items) };
        assert!(o.stored_twice(&[copy("n1", 1, &["s1"]), copy("n1", 2, &["s2"]), copy("n2", 1, &["l1"])]).is_empty());
        let twice = [copy("n1", 1, &["s1", "s2"]), copy("n1", 4, &["s2"])];
        assert_eq!(o.stored_twice(&twice).len(), 1, "{:?}", o.stored_twice(&twice));
        assert!(o.stored_twice(&[copy("n1", 1, &["s2"]), copy("n1", 1, &["s2"])]).is_empty(), "same segment rewritten");
        let s2 = s(&["s2"]);
        o.sent("a", Items { spans: &s2, logs: &[], exemplars: &[] });
        assert!(o.stored_twice(&twice).is_empty(), "a resent span may be stored twice");
    }

    #[test]
    fn an_answer_with_every_acknowledged_item_once_passes() {
        let o = oracle();
        let answer = Answer { partial: false, spans: s(&["s1", "s2", "s3"]), logs: s(&["l1"]), exemplars: s(&["e1"]) };
        assert!(o.check("a", &o.acked_of("a"), &answer).is_empty());
        let without_unacked = Answer { spans: s(&["s2", "s1"]), ..answer };
        assert!(o.check("a", &o.acked_of("a"), &without_unacked).is_empty());
    }

    #[test]
    fn lost_duplicated_and_foreign_items_are_violations() {
        let o = oracle();
        let lost = Answer { partial: false, spans: s(&["s1"]), logs: s(&["l1"]), exemplars: s(&["e1"]) };
        assert_eq!(o.check("a", &o.acked_of("a"), &lost).len(), 1);
        let dup = Answer { partial: false, spans: s(&["s1", "s2", "s2"]), logs: s(&["l1"]), exemplars: s(&["e1"]) };
        assert!(o.check("a", &o.acked_of("a"), &dup)[0].contains("appears 2 times"));
        let foreign = Answer { partial: false, spans: s(&["s1", "s2", "x9"]), logs: s(&["l1"]), exemplars: s(&["e1"]) };
        assert!(o.check("a", &o.acked_of("a"), &foreign)[0].contains("never sent"));
        let lost_exemplar = Answer { partial: false, spans: s(&["s1", "s2"]), logs: s(&["l1"]), exemplars: Vec::new() };
        assert!(o.check("a", &o.acked_of("a"), &lost_exemplar)[0].contains("1 acknowledged exemplar(s) missing"));
    }

    #[test]
    fn items_sent_by_trace_are_expected_once_their_trace_joined() {
        let mut o = Oracle::default();
        let (by_id, by_trace) = (["s1".to_owned()], ["s2".to_owned()]);
        let none: [String; 0] = [];
        let items = |spans| Items { spans, logs: &none, exemplars: &none };
        o.sent("a", items(&by_id));
        o.sent("a", items(&by_trace));
        o.sent_by_trace(items(&by_trace), [7; 16]);
        o.acked("a", items(&by_id));
        o.acked("a", items(&by_trace));
        assert_eq!(o.expected_now("a").spans, ["s1".to_owned()].into());
        assert_eq!(o.acked_of("a").spans, ["s1".to_owned(), "s2".to_owned()].into());
        o.joined([8; 16]);
        assert_eq!(o.expected_now("a").spans, ["s1".to_owned()].into(), "another trace joined");
        o.joined([7; 16]);
        assert_eq!(o.expected_now("a").spans, ["s1".to_owned(), "s2".to_owned()].into(), "its trace joined the session");
    }
}
