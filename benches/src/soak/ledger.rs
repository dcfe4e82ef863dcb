//! What the node acknowledged, kept so the soak can look up acknowledged
//! IDs while it runs and check afterwards that every acknowledged span is
//! there: per ID, the numbers of the acknowledged requests that carried it
//! (span IDs follow from `Layout`, so they need not be stored).

use std::collections::HashMap;

use super::plan::Layout;

/// Acknowledged requests by ID. Its size is bounded by the run: four bytes
/// per (acknowledged request, ID slot), e.g. 36 MB for 9M slots.
#[derive(Debug)]
pub struct Ledger {
    layout: Layout,
    /// Per ID, the acknowledged requests that carried it.
    seqs_by_id: Vec<Vec<u32>>,
    /// IDs with at least one acknowledged request, in first-ack order:
    /// what the lookup loop picks from.
    acked_ids: Vec<u32>,
    pub acked_requests: u64,
    pub acked_spans: u64,
}

impl Ledger {
    pub fn new(layout: Layout) -> Self {
        assert!(layout.ids <= u64::from(u32::MAX), "IDs are stored as u32");
        Self { layout, seqs_by_id: vec![Vec::new(); layout.ids as usize], acked_ids: Vec::new(), acked_requests: 0, acked_spans: 0 }
    }

    /// Records that the node took request `seq` whole.
    pub fn ack(&mut self, seq: u64) {
        let seq32 = u32::try_from(seq).expect("the run plans fewer than 2^32 requests");
        for slot in 0..self.layout.ids_per_request {
            let id = self.layout.id_of(seq, slot) as usize;
            if self.seqs_by_id[id].is_empty() {
                self.acked_ids.push(id as u32);
            }
            self.seqs_by_id[id].push(seq32);
        }
        self.acked_requests += 1;
        self.acked_spans += self.layout.spans_per_request();
    }

    /// An acknowledged ID chosen by `r` (any number), if there is one.
    pub fn pick(&self, r: u64) -> Option<u64> {
        let len = self.acked_ids.len() as u64;
        (len > 0).then(|| u64::from(self.acked_ids[(r % len) as usize]))
    }

    pub fn acked_id_count(&self) -> usize {
        self.acked_ids.len()
    }

    /// At most `n` acknowledged IDs spread evenly over all of them (`n` = 0:
    /// all), for the presence check.
    pub fn sample(&self, n: usize) -> Vec<u64> {
        let len = self.acked_ids.len();
        let n = if n == 0 { len } else { n.min(len) };
        (0..n).map(|i| u64::from(self.acked_ids[i * len / n.max(1)])).collect()
    }

    /// Every span ID acknowledged for `id`.
    pub fn expected_span_ids(&self, id: u64) -> Vec<u64> {
        let seqs = self.seqs_by_id.get(id as usize).map(Vec::as_slice).unwrap_or_default();
        seqs.iter().flat_map(|&seq| self.layout.span_ids(u64::from(seq), id)).collect()
    }
}

/// How one ID's stored spans compare with what was acknowledged.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    /// Acknowledged spans.
    pub expected: u64,
    /// Acknowledged spans found.
    pub present: u64,
    /// Acknowledged spans not found: data loss.
    pub missing: u64,
    /// Extra copies of a span found more than once.
    pub duplicated: u64,
    /// Spans found that were never acknowledged (their request timed out
    /// or was refused after the node had taken it): not an error.
    pub unacknowledged: u64,
}

impl Presence {
    pub fn add(&mut self, other: Presence) {
        self.expected += other.expected;
        self.present += other.present;
        self.missing += other.missing;
        self.duplicated += other.duplicated;
        self.unacknowledged += other.unacknowledged;
    }
}

/// Compares the acknowledged span IDs of one ID with those the node
/// answered.
pub fn compare(expected: &[u64], observed: &[u64]) -> Presence {
    let mut seen: HashMap<u64, u64> = HashMap::with_capacity(observed.len());
    for &span in observed {
        *seen.entry(span).or_default() += 1;
    }
    let mut presence = Presence { expected: expected.len() as u64, ..Presence::default() };
    for span in expected {
        match seen.get(span) {
            Some(_) => presence.present += 1,
            None => presence.missing += 1,
        }
    }
    let expected: std::collections::HashSet<u64> = expected.iter().copied().collect();
    for (span, copies) in seen {
        presence.duplicated += copies - 1;
        if !expected.contains(&span) {
            presence.unacknowledged += 1;
        }
    }
    presence
}

/// The span IDs in a `GET /api/v1/correlate/{id}` answer (`traces[].span_id`,
/// hex). A span ID that is not 16 hex digits cannot be one of ours and is
/// returned as 0, which no soak span has.
pub fn answered_span_ids(answer: &serde_json::Value) -> Vec<u64> {
    let spans = answer.get("traces").and_then(serde_json::Value::as_array).map(Vec::as_slice).unwrap_or_default();
    spans
        .iter()
        .map(|span| span.get("span_id").and_then(serde_json::Value::as_str).and_then(|hex| u64::from_str_radix(hex, 16).ok()).unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new(30, 10, 20).expect("valid")
    }

    #[test]
    fn acks_are_found_by_id_and_span() {
        let mut ledger = Ledger::new(layout());
        ledger.ack(1);
        ledger.ack(4);
        assert_eq!((ledger.acked_requests, ledger.acked_spans), (2, 40));
        // Request 1 carries IDs 10..20, request 4 carries 10..20 again
        // (4 * 10 % 30 = 10).
        assert_eq!(ledger.acked_id_count(), 10);
        let id = layout().id_of(1, 3);
        let spans = ledger.expected_span_ids(id);
        assert_eq!(spans.len(), 4, "two spans per ID in each of two requests");
        assert!(spans.iter().all(|s| [1, 4].contains(&(s >> 16))));
        assert!(ledger.expected_span_ids(0).is_empty(), "never acknowledged");
    }

    #[test]
    fn lookups_and_samples_only_pick_acknowledged_ids() {
        let mut ledger = Ledger::new(layout());
        assert_eq!(ledger.pick(7), None);
        ledger.ack(2);
        let ids: Vec<u64> = (20..30).collect();
        assert!((0..100).all(|r| ledger.pick(r).is_some_and(|id| ids.contains(&id))));
        assert_eq!(ledger.sample(0).len(), 10);
        let sample = ledger.sample(3);
        assert_eq!(sample.len(), 3);
        assert!(sample.iter().all(|id| ids.contains(id)));
        assert_eq!(ledger.sample(50).len(), 10, "at most what exists");
    }

    #[test]
    fn compare_counts_missing_duplicated_and_unacknowledged() {
        let presence = compare(&[1, 2, 3, 4], &[1, 2, 2, 2, 4, 9]);
        assert_eq!(presence, Presence { expected: 4, present: 3, missing: 1, duplicated: 2, unacknowledged: 1 });
        assert_eq!(compare(&[5, 6], &[6, 5]), Presence { expected: 2, present: 2, ..Presence::default() });
    }

    #[test]
    fn span_ids_are_read_from_the_answer() {
        let answer = serde_json::json!({"traces": [{"span_id": "0000000000010003"}, {"span_id": "zz"}]});
        assert_eq!(answered_span_ids(&answer), vec![(1 << 16) | 3, 0]);
        assert!(answered_span_ids(&serde_json::json!({})).is_empty());
    }
}
