//! The limiter's wiring over an in-memory cluster: the pure `ClusterState`
//! applies proposals at once (or refuses them while "unreachable"), and
//! applied limiter commands go out on a broadcast like the Raft state
//! machine's. No sockets, no Raft.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use ollystack_cluster::admission::{Command, LimiterConfig, Window};
use ollystack_cluster::raft::{learnable, ClusterRequest, ClusterResponse, ClusterState};
use ollystack_cluster::NodeId;
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};

use super::{ClusterLimiter, LimiterCluster};
use crate::clock::{Clock, SharedClock};
use crate::cluster::ClusterError;
use crate::ingest::{AttributeLimiter, Verdict};
use crate::metrics::NodeMetrics;

const ATTR: &str = "http.route";
const START_MS: u64 = 1_700_000_000_000;

/// The replicated state every fake node proposes to, and its event channel.
struct FakeRaft {
    state: Mutex<ClusterState>,
    events: broadcast::Sender<Command>,
    /// Learnable commands sent so far.
    sent: AtomicU64,
}

impl FakeRaft {
    fn new() -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(ClusterState::default()), events: broadcast::channel(4096).0, sent: AtomicU64::new(0) })
    }

    fn admitted(&self, window: Window) -> u64 {
        self.state.lock().limiter().and_then(|l| l.usage(ATTR, window)).map_or(0, |u| u.admitted)
    }
}

/// One node's view of the fake cluster.
struct FakeNode {
    id: NodeId,
    raft: Arc<FakeRaft>,
    leader: bool,
    reachable: AtomicBool,
    /// Proposals still to fail before the cluster answers again.
    fail_next: AtomicU32,
}

impl FakeNode {
    fn new(id: u64, raft: &Arc<FakeRaft>, leader: bool) -> Arc<Self> {
        Arc::new(Self { id: NodeId(id), raft: raft.clone(), leader, reachable: AtomicBool::new(true), fail_next: AtomicU32::new(0) })
    }
}

impl LimiterCluster for FakeNode {
    fn node_id(&self) -> NodeId {
        self.id
    }

    fn is_leader(&self) -> bool {
        self.leader
    }

    fn applied_limits(&self) -> Option<LimiterConfig> {
        self.raft.state.lock().limits().cloned()
    }

    /// The fake cluster has no ring: as a real node before its first ring.
    fn members(&self) -> u64 {
        1
    }

    fn propose(&self, request: ClusterRequest) -> BoxFuture<'_, Result<ClusterResponse, ClusterError>> {
        let failing = !self.reachable.load(Ordering::SeqCst)
            || self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        let result = if failing {
            Err(ClusterError::NoLeader)
        } else {
            let response = self.raft.state.lock().apply(&request);
            if let Some(command) = learnable(&request, &response) {
                self.raft.sent.fetch_add(1, Ordering::SeqCst);
                let _ = self.raft.events.send(command.clone());
            }
            Ok(response)
        };
        Box::pin(async move { result })
    }

    fn proposal_timeout(&self) -> Duration {
        Duration::from_secs(1)
    }
}

/// A clock the test moves.
#[derive(Debug)]
struct ManualClock(AtomicU64);

impl Clock for ManualClock {
    fn now_unix_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

struct Running {
    limiter: Arc<ClusterLimiter>,
    node: Arc<FakeNode>,
    metrics: Arc<NodeMetrics>,
    clock: Arc<ManualClock>,
    _stop: watch::Sender<bool>,
}

impl Running {
    /// Admits on a blocking thread, as ingest does.
    async fn admit(&self, value: &str) -> Verdict {
        let (limiter, value) = (self.limiter.clone(), value.to_owned());
        tokio::task::spawn_blocking(move || limiter.admit(ATTR, &value)).await.expect("admit thread")
    }

    fn window(&self) -> Window {
        self.limiter.active_limits().expect("active").window_at(self.clock.now_unix_ms())
    }
}

fn config(limit: u64, lease_units: u64) -> LimiterConfig {
    LimiterConfig::new(1_000, lease_units, [(ATTR.to_owned(), limit)]).expect("valid config")
}

fn start(node: Arc<FakeNode>, proposed: Option<LimiterConfig>, wait_max: Duration) -> Running {
    let metrics = Arc::new(NodeMetrics::default());
    let clock = Arc::new(ManualClock(AtomicU64::new(START_MS)));
    let events = node.raft.events.subscribe();
    let limiter = Arc::new(ClusterLimiter::new(node.clone(), proposed, clock.clone() as SharedClock, metrics.clone(), wait_max));
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(limiter.clone().run(events, stop));
    Running { limiter, node, metrics, clock, _stop: stop_tx }
}

/// Polls `done` until it holds, for at most five seconds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not reached in time");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_admits_known_values_without_waiting() {
    let raft = FakeRaft::new();
    let node = start(FakeNode::new(1, &raft, true), Some(config(100, 4)), Duration::from_secs(5));
    assert_eq!(node.admit("/a").await, Verdict::Keep);
    assert_eq!(node.metrics.limits_lease_waits.get(), 1, "the first value waited for the first lease");
    // Cut off from the cluster: known values still pass, at once.
    node.node.reachable.store(false, Ordering::SeqCst);
    let started = Instant::now();
    for _ in 0..100 {
        assert_eq!(node.admit("/a").await, Verdict::Keep);
    }
    assert_eq!(node.metrics.limits_lease_waits.get(), 1, "known values never wait");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(node.limiter.counters().known, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_overflows_new_values_past_the_limit() {
    let raft = FakeRaft::new();
    let node = start(FakeNode::new(1, &raft, true), Some(config(5, 2)), Duration::from_secs(5));
    let mut verdicts = Vec::new();
    for i in 0..20 {
        verdicts.push(node.admit(&format!("/route-{i}")).await);
    }
    let kept = verdicts.iter().filter(|v| **v == Verdict::Keep).count();
    assert_eq!(kept, 5, "{verdicts:?}");
    assert!(verdicts[..5].iter().all(|v| *v == Verdict::Keep), "{verdicts:?}");
    assert_eq!(node.metrics.limits_values_overflowed.get(ATTR), 15);
    assert_eq!(node.metrics.limits_values_admitted.get(ATTR), 5);
    assert_eq!(node.metrics.limits_refusals.get(), 0);
    // Admitted values stay admitted; the cluster learns all five.
    assert_eq!(node.admit("/route-3").await, Verdict::Keep);
    let window = node.window();
    until("five values reported", || raft.admitted(window) == 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_wait_that_times_out_yields_wait() {
    let raft = FakeRaft::new();
    raft.state.lock().apply(&ClusterRequest::SetLimits { config: config(5, 2) });
    let fake = FakeNode::new(1, &raft, true);
    fake.reachable.store(false, Ordering::SeqCst);
    let node = start(fake, Some(config(5, 2)), Duration::from_millis(100));
    until("limits adopted", || node.limiter.active_limits().is_some()).await;
    // No lease can come: the value waits, then is left undecided.
    let started = Instant::now();
    assert_eq!(node.admit("/a").await, Verdict::Wait);
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!((node.metrics.limits_lease_waits.get(), node.metrics.limits_refusals.get()), (1, 1));
    assert_eq!(node.metrics.limits_values_overflowed.get(ATTR), 0, "an undecided value is not an overflow");
    // Back in touch: the same value is decided.
    node.node.reachable.store(true, Ordering::SeqCst);
    assert_eq!(node.admit("/a").await, Verdict::Keep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_without_cluster_limits_waits_then_refuses() {
    let raft = FakeRaft::new();
    let fake = FakeNode::new(1, &raft, true);
    fake.reachable.store(false, Ordering::SeqCst);
    let node = start(fake, Some(config(5, 2)), Duration::from_millis(50));
    assert!(node.limiter.limits(ATTR), "limited by this node's config before the cluster has limits");
    assert!(!node.limiter.limits("other"));
    assert_eq!(node.admit("/a").await, Verdict::Wait);
    assert!(node.limiter.active_limits().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_retries_failed_proposals() {
    let raft = FakeRaft::new();
    let fake = FakeNode::new(1, &raft, true);
    fake.fail_next.store(3, Ordering::SeqCst);
    let node = start(fake, Some(config(5, 2)), Duration::from_secs(5));
    assert_eq!(node.admit("/a").await, Verdict::Keep);
    assert_eq!(node.metrics.limits_proposal_failures.get(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_enforces_the_clusters_limits_over_its_own() {
    let raft = FakeRaft::new();
    let first = start(FakeNode::new(1, &raft, true), Some(config(2, 1)), Duration::from_secs(5));
    assert_eq!(first.admit("/a").await, Verdict::Keep);
    // A node configured with a higher limit, and one with none at all.
    let second = start(FakeNode::new(2, &raft, false), Some(config(100, 1)), Duration::from_secs(5));
    let third = start(FakeNode::new(3, &raft, false), None, Duration::from_secs(5));
    until("limits adopted", || third.limiter.active_limits().is_some() && second.limiter.active_limits().is_some()).await;
    assert!(third.limiter.limits(ATTR), "a node without [limits] enforces the cluster's");
    assert_eq!(second.limiter.active_limits(), Some(&config(2, 1)));
    // "/a" holds one of the two units (the first node may hold the other).
    let verdicts = [second.admit("/b").await, second.admit("/c").await, third.admit("/d").await];
    assert!(verdicts.iter().filter(|v| **v == Verdict::Keep).count() <= 1, "{verdicts:?}");
    assert!(verdicts.contains(&Verdict::Overflow), "{verdicts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_learns_values_admitted_elsewhere() {
    let raft = FakeRaft::new();
    // Ten units, five per lease: one lease each takes them all (one value
    // each stays above the refill mark). Neither node leads: no expiry.
    let a = start(FakeNode::new(1, &raft, false), Some(config(10, 5)), Duration::from_secs(5));
    let b = start(FakeNode::new(2, &raft, false), Some(config(10, 5)), Duration::from_secs(5));
    assert_eq!(b.admit("/b").await, Verdict::Keep);
    assert_eq!(a.admit("/x").await, Verdict::Keep);
    let window = a.window();
    until("both values reported", || raft.admitted(window) == 2).await;
    until("b learned every applied command", || b.limiter.learned() == raft.sent.load(Ordering::SeqCst)).await;
    // "/x" passes on b as a known value, without spending a unit.
    let before = b.limiter.counters();
    assert_eq!(b.admit("/x").await, Verdict::Keep);
    let after = b.limiter.counters();
    assert_eq!((after.known - before.known, after.new - before.new), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_leader_expires_old_windows() {
    let raft = FakeRaft::new();
    let node = start(FakeNode::new(1, &raft, true), Some(config(5, 2)), Duration::from_secs(5));
    assert_eq!(node.admit("/a").await, Verdict::Keep);
    let old = node.window();
    until("reported", || raft.admitted(old) == 1).await;
    node.clock.0.fetch_add(2_500, Ordering::SeqCst);
    until("old window expired", || raft.state.lock().limiter().and_then(|l| l.usage(ATTR, old)).is_none()).await;
    // The new window admits afresh.
    assert_eq!(node.admit("/a").await, Verdict::Keep);
    assert_eq!(node.limiter.counters().new, 2);
}
