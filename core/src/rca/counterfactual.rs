//! Counterfactuals recomputed on the actual trees.
//!
//! Latency: some spans get a new (shorter) duration, their subtrees are
//! dropped, and the tree is re-timed top-down with these rules: a parent's
//! own work between events keeps its length; a child waits for every
//! sibling that had ended before it started (and for nothing else), so it
//! starts as long after the last of them (re-timed) as it did originally,
//! or as long after its parent's start when none had; the parent ends as
//! long after the last child that ended within it as it did originally.
//! Then the critical path is recomputed on the new times. Concurrent work
//! that was hidden behind the shortened span bounds the saving.
//!
//! Failure: if a span had not failed, which failing ancestors would not
//! have failed either? An ancestor's failure is explained by its failing
//! children; it survives the fix if it has a failing child that still
//! fails, or no failing child at all originally (its own fault).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::critical_path::{critical_path_over, CriticalPath};
use super::origin::has_failing_child;
use super::tree::{Node, Tree};

/// The outcome of a latency counterfactual.
#[derive(Debug, Clone, PartialEq)]
pub struct Retimed {
    pub total_ns: u64,
    pub counterfactual_ns: u64,
    /// The critical path on the new times.
    pub path: CriticalPath,
}

/// Re-times the tree with the given spans shortened to the given durations
/// (longer ones are ignored: a counterfactual only removes delay).
pub fn retime(tree: &Tree, durations_ns: &HashMap<Node, u64>) -> Option<Retimed> {
    let top = tree.top()?;
    let times = new_times(tree, top, durations_ns);
    let path = critical_path_over(tree, top, &|n| times[n]);
    let (start, end) = tree.interval(top);
    Some(Retimed { total_ns: end - start, counterfactual_ns: path.total_ns, path })
}

/// Failing ancestors of `origin` that would not have failed had it not.
/// Nearest first.
pub fn spared_by_fixing(tree: &Tree, origin: Node) -> Vec<Node> {
    let mut still_fails: HashMap<Node, bool> = HashMap::from([(origin, false)]);
    let mut spared = Vec::new();
    for a in tree.ancestors(origin) {
        let span = &tree.spans[a];
        if !span.is_error {
            break;
        }
        // Its own fault when no child failed originally (never on this
        // chain, checked for clarity); else explained by failing children.
        let own_fault = !has_failing_child(tree, a);
        let child_fails = tree.children(a).iter().any(|&c| still_fails.get(&c).copied().unwrap_or(tree.spans[c].is_error));
        if own_fault || child_fails {
            break;
        }
        still_fails.insert(a, false);
        spared.push(a);
    }
    spared
}

/// A node's new (start, end), `None` for nodes inside a shortened subtree.
type Times = Vec<Option<(u64, u64)>>;

/// One node being re-timed (an explicit stack: trees may be deep).
struct Frame {
    node: Node,
    new_start: i128,
    next_child: usize,
    /// Processed children by original end: (end, new end).
    ended: BinaryHeap<Reverse<(u64, i128)>>,
    /// Latest original end and latest new end among children that ended
    /// before the current point.
    waited: Option<(u64, i128)>,
    /// The child just re-timed, to be pushed onto `ended`.
    returning: Option<Node>,
}

fn new_times(tree: &Tree, top: Node, durations_ns: &HashMap<Node, u64>) -> Times {
    let mut times: Times = vec![None; tree.len() + 1];
    let (top_start, _) = tree.interval(top);
    let mut stack = vec![frame(top, i128::from(top_start))];
    while let Some(mut f) = stack.pop() {
        let (start, end) = tree.interval(f.node);
        let shortened = durations_ns.get(&f.node).filter(|&&d| d < end - start);
        if let Some(&d) = shortened {
            times[f.node] = Some(clamp(f.new_start, f.new_start + i128::from(d)));
            continue;
        }
        if let Some(done) = f.returning.take() {
            if let Some((_, new_end)) = times[done] {
                f.ended.push(Reverse((tree.interval(done).1, i128::from(new_end))));
            }
        }
        let children = tree.children(f.node);
        if let Some(&child) = children.get(f.next_child) {
            let child_start = tree.interval(child).0;
            absorb_ended(&mut f, child_start);
            let new_child_start = resume_at(&f, start, child_start);
            f.next_child += 1;
            f.returning = Some(child);
            stack.push(f);
            stack.push(frame(child, new_child_start));
            continue;
        }
        absorb_ended(&mut f, end);
        let new_end = resume_at(&f, start, end);
        times[f.node] = Some(clamp(f.new_start, new_end));
    }
    times
}

fn frame(node: Node, new_start: i128) -> Frame {
    Frame { node, new_start, next_child: 0, ended: BinaryHeap::new(), waited: None, returning: None }
}

/// Takes in every processed child that ended by `at` (original time).
fn absorb_ended(f: &mut Frame, at: u64) {
    while let Some(&Reverse((end, new_end))) = f.ended.peek() {
        if end > at {
            break;
        }
        f.ended.pop();
        f.waited = Some(match f.waited {
            Some((e, n)) => (e.max(end), n.max(new_end)),
            None => (end, new_end),
        });
    }
}

/// The new time of an event originally at `at` inside the frame's node.
fn resume_at(f: &Frame, node_start: u64, at: u64) -> i128 {
    match f.waited {
        Some((last_end, new_last_end)) => new_last_end + (i128::from(at) - i128::from(last_end)),
        None => f.new_start + (i128::from(at) - i128::from(node_start)),
    }
}

fn clamp(start: i128, end: i128) -> (u64, u64) {
    let to_u64 = |v: i128| u64::try_from(v.max(0)).unwrap_or(u64::MAX);
    let s = to_u64(start);
    (s, to_u64(end).max(s))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn retimed(spans: &[crate::rca::model::RcaSpan], shorten: &[(Node, u64)]) -> (u64, u64) {
        let tree = Tree::new(spans);
        let map: HashMap<Node, u64> = shorten.iter().map(|&(n, d)| (n, ms(d))).collect();
        let r = retime(&tree, &map).expect("spans");
        assert!(crate::rca::critical_path::tiles(&r.path));
        (r.total_ns / MS_NS, r.counterfactual_ns / MS_NS)
    }

    #[test]
    fn sequential_work_shifts_earlier() {
        let spans = vec![sp("web", "root", 1, None, 0, 100), sp("a", "a", 2, Some(1), 0, 30), sp("b", "slow", 3, Some(1), 30, 90)];
        assert_eq!(retimed(&spans, &[(2, 10)]), (100, 50));
        assert_eq!(retimed(&spans, &[]), (100, 100), "nothing changed: identity");
    }

    #[test]
    fn concurrent_siblings_bound_the_saving() {
        let spans = vec![sp("web", "root", 1, None, 0, 100), sp("a", "slow", 2, Some(1), 0, 100), sp("b", "other", 3, Some(1), 0, 60)];
        assert_eq!(retimed(&spans, &[(1, 20)]), (100, 60));
        // Shortening the hidden sibling changes nothing.
        assert_eq!(retimed(&spans, &[(2, 10)]), (100, 100));
    }

    #[test]
    fn joins_wait_for_every_earlier_sibling() {
        // a and b in parallel, then c after both; a shrinks but b still holds c.
        let spans = vec![
            sp("web", "root", 1, None, 0, 100),
            sp("a", "a", 2, Some(1), 0, 50),
            sp("b", "b", 3, Some(1), 0, 40),
            sp("c", "c", 4, Some(1), 55, 95),
        ];
        assert_eq!(retimed(&spans, &[(1, 10)]), (100, 90));
    }

    #[test]
    fn a_deep_leaf_shortens_every_ancestor() {
        let spans = vec![
            sp("web", "root", 1, None, 0, 200),
            sp("api", "handler", 2, Some(1), 10, 190),
            sp("db", "query", 3, Some(2), 20, 170),
            sp("db", "inner", 4, Some(3), 30, 160),
        ];
        assert_eq!(retimed(&spans, &[(2, 20)]), (200, 70));
    }

    #[test]
    fn failure_counterfactual_spares_ancestors_explained_only_by_the_origin() {
        let spans = vec![
            fail(sp("frontend", "GET /checkout", 1, None, 0, 100), "502"),
            fail(sp("checkout", "POST /checkout", 2, Some(1), 5, 95), "payment failed"),
            fail(sp("payments", "POST /charge", 3, Some(2), 10, 90), "db error"),
            fail(sp("db", "INSERT", 4, Some(3), 20, 30), "deadlock"),
            fail(sp("inventory", "reserve", 5, Some(1), 5, 8), "out of stock"),
        ];
        let tree = Tree::new(&spans);
        // The root also failed because of inventory: it would still fail.
        assert_eq!(spared_by_fixing(&tree, 3), [2, 1]);
        assert_eq!(spared_by_fixing(&tree, 4), Vec::<Node>::new());
        // Without the second failure the whole chain is spared.
        let single = spans[..4].to_vec();
        let tree = Tree::new(&single);
        assert_eq!(spared_by_fixing(&tree, 3), [2, 1, 0]);
    }
}
