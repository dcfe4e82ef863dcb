//! [`ClusterLimiter`]: carries out the cluster-wide cardinality limiter on
//! this node. The decisions are the pure state machines of
//! `ollystack_cluster::admission` ([`NodeLimiter`] here, `LimiterState` in
//! the Raft state machine); this file only runs them: it answers the
//! ingest path, proposes their commands through Raft and feeds back the
//! answers.
//!
//! # Where it sits
//!
//! Ingest's prepare step (on a blocking thread, on the node that prepares
//! the batch: the trace's home, or the receiving node for trace-less logs)
//! asks [`AttributeLimiter::admit`] for every limited attribute value of a
//! span or log record (see `ingest::limit` for which). `Overflow` writes
//! [`OVERFLOW_VALUE`](ollystack_cluster::admission::OVERFLOW_VALUE) in its
//! place; `Wait` refuses the batch with the retryable `Overloaded`.
//!
//! # The hot path
//!
//! A value this node already knows in the current window (admitted here,
//! or reported by another node and learned from the applied log) is a hash
//! lookup under one short lock: no Raft, no I/O, no wait. A new value takes
//! one unit of the node's lease, also under that lock, and wakes the
//! background task ([`run`](ClusterLimiter::run)), which reports it through
//! Raft later and asks for more units before the lease runs dry (at half
//! a lease left). The node limiter sizes each request from this node's
//! recent rate of new values and the ring's member count (see
//! `ollystack_cluster::admission::LeaseSizer`); this file only tells it
//! the time and the members.
//!
//! # When the lease runs out
//!
//! A new value with no unit left waits, blocking its ingest thread, for at
//! most `wait_max` (twice the RPC deadline) while the task asks for a lease;
//! every answer, learned value or adopted config wakes it to decide again.
//! When the cluster answers that the window is exhausted, this and later
//! new values overflow. When no answer comes in time (no leader, partition)
//! the verdict is `Wait`: the batch is refused and the client retries. A
//! value that may be within the limit is never replaced by the marker, and
//! nothing waits forever.
//!
//! # Why the bound holds
//!
//! It comes from the admission state machines, not from this file: the
//! replicated `LimiterState` never grants a unit that would let admitted
//! values plus outstanding units exceed the limit, and a node admits a new
//! value only on a granted unit. Across leader changes the state is the
//! same Raft log; a proposal whose outcome is unknown (timeout, lost
//! leader) is handed to [`NodeLimiter::on_failure`] and proposed again,
//! which at worst strands units. A partitioned node admits only within
//! the lease it holds, which the state already counts. This file keeps
//! that contract: every command taken from [`NodeLimiter::commands`] gets
//! exactly one `on_response` or `on_failure`, and only applied commands are
//! learned (the state machine sends nothing else).
//!
//! # Which limits
//!
//! The cluster keeps the first `SetLimits` applied. This node proposes its
//! `[limits]` once a leader exists, but enforces the cluster's, whatever
//! its own config says (a difference is logged). Until the cluster has
//! limits, values of attributes this node's config limits wait (and are
//! refused when the wait runs out) rather than pass uncounted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use ollystack_cluster::admission::{Admit, AdmitCounters, Command, LimiterConfig, NodeLimiter, Window};
use ollystack_cluster::raft::{ClusterRequest, ClusterResponse};
use ollystack_cluster::NodeId;
use parking_lot::{Condvar, Mutex};
use tokio::sync::{broadcast, watch, Notify};

use super::{Cluster, ClusterError};
use crate::clock::SharedClock;
use crate::ingest::{AttributeLimiter, Verdict};
use crate::metrics::NodeMetrics;

/// Limiter proposals in flight at once, at most. The node limiter keeps at
/// most one lease request and one report in flight per (attribute, window).
const MAX_PROPOSALS_IN_FLIGHT: usize = 16;
/// Applied commands learned under one lock, at most.
const MAX_LEARNED_PER_LOCK: usize = 64;
/// First wait after a failed proposal; doubles up to [`RETRY_MAX`].
const RETRY_INITIAL: Duration = Duration::from_millis(20);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// How often the task looks for the cluster's limits while it has none.
const POLL_LIMITS: Duration = Duration::from_millis(20);
/// The task's longest sleep: when nothing wakes it, it still checks expiry.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// What the limiter needs of the cluster: [`Cluster`] in a node, an
/// in-memory state machine in the unit tests.
pub trait LimiterCluster: Send + Sync + 'static {
    fn node_id(&self) -> NodeId;
    fn is_leader(&self) -> bool;
    /// The limits the cluster applied (this node's replica); `None` before
    /// the first `SetLimits`.
    fn applied_limits(&self) -> Option<LimiterConfig>;
    /// Nodes sharing the quota: the ring's members (1 before a ring).
    fn members(&self) -> u64;
    /// Proposes through the leader; resolves once applied, or failed.
    fn propose(&self, request: ClusterRequest) -> BoxFuture<'_, Result<ClusterResponse, ClusterError>>;
    /// Deadline of one proposal.
    fn proposal_timeout(&self) -> Duration;
}

impl LimiterCluster for Cluster {
    fn node_id(&self) -> NodeId {
        self.id
    }

    fn is_leader(&self) -> bool {
        Cluster::is_leader(self)
    }

    fn applied_limits(&self) -> Option<LimiterConfig> {
        self.view().limits.clone()
    }

    fn members(&self) -> u64 {
        self.view().ring.as_ref().map_or(1, |ring| ring.members().count() as u64)
    }

    fn propose(&self, request: ClusterRequest) -> BoxFuture<'_, Result<ClusterResponse, ClusterError>> {
        Box::pin(Cluster::propose(self, request))
    }

    fn proposal_timeout(&self) -> Duration {
        self.rpc_timeout() * 2
    }
}

/// This node's cardinality limiter; see the module docs.
pub struct ClusterLimiter {
    /// The per-node state machine; `None` until the cluster's limits are
    /// applied here.
    node: Mutex<Option<NodeLimiter>>,
    /// Signalled when a waiting `admit` may now decide: a lease answer, a
    /// learned value, the cluster's limits adopted.
    decided: Condvar,
    /// The cluster's limits once adopted: `limits` reads them without a lock.
    active: OnceLock<LimiterConfig>,
    /// This node's configured limits, proposed to the cluster.
    proposed: Option<LimiterConfig>,
    /// Wakes the background task: a lease or a report may be due.
    wake: Notify,
    cluster: Arc<dyn LimiterCluster>,
    /// Picks the window of each decision.
    clock: SharedClock,
    metrics: Arc<NodeMetrics>,
    /// Longest an `admit` blocks waiting for quota.
    wait_max: Duration,
    /// Applied commands learned so far; read by tests.
    learned: AtomicU64,
}

impl std::fmt::Debug for ClusterLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLimiter").field("active", &self.active.get()).field("proposed", &self.proposed).finish_non_exhaustive()
    }
}

impl ClusterLimiter {
    pub fn new(
        cluster: Arc<dyn LimiterCluster>,
        proposed: Option<LimiterConfig>,
        clock: SharedClock,
        metrics: Arc<NodeMetrics>,
        wait_max: Duration,
    ) -> Self {
        Self {
            node: Mutex::new(None),
            decided: Condvar::new(),
            active: OnceLock::new(),
            proposed,
            wake: Notify::new(),
            cluster,
            clock,
            metrics,
            wait_max,
            learned: AtomicU64::new(0),
        }
    }

    /// How many applied limiter commands this node has learned.
    pub fn learned(&self) -> u64 {
        self.learned.load(Ordering::Relaxed)
    }

    /// The cluster's limits, once this node enforces them.
    pub fn active_limits(&self) -> Option<&LimiterConfig> {
        self.active.get()
    }

    /// The node limiter's decision counts (zero before limits are active).
    pub fn counters(&self) -> AdmitCounters {
        self.node.lock().as_ref().map(NodeLimiter::counters).unwrap_or_default()
    }

    /// Decides one value; see the module docs. Blocks for at most
    /// `wait_max`; call it off the async threads.
    pub fn admit(&self, attribute: &str, value: &str) -> Verdict {
        let mut deadline = None;
        let mut guard = self.node.lock();
        loop {
            let decision = match guard.as_mut() {
                Some(node) => node.admit(attribute, value, self.clock.now_unix_ms()),
                // The cluster has no limits yet: wait for them if this
                // node's config limits the attribute.
                None if self.proposed.as_ref().is_some_and(|c| c.limit(attribute).is_some()) => Admit::NeedLease,
                None => Admit::Unlimited,
            };
            match decision {
                Admit::Known | Admit::Unlimited => return Verdict::Keep,
                Admit::New => {
                    self.metrics.limits_values_admitted.add(attribute, 1);
                    self.wake.notify_one();
                    return Verdict::Keep;
                }
                Admit::Overflow => {
                    self.metrics.limits_values_overflowed.add(attribute, 1);
                    return Verdict::Overflow;
                }
                Admit::NeedLease => {}
            }
            // The wait is real time (a condvar). Where blocking work runs
            // inline on the only thread (simulations), waiting would stall
            // the very task that fetches the lease: refuse at once instead.
            let deadline = *deadline.get_or_insert_with(|| {
                self.metrics.limits_lease_waits.inc();
                std::time::Instant::now() + self.wait_max
            });
            if ollystack_cluster::blocking::inline() || std::time::Instant::now() >= deadline {
                self.wake.notify_one();
                self.metrics.limits_refusals.inc();
                return Verdict::Wait;
            }
            self.wake.notify_one();
            // Timed out or woken, decide again: an answer may have come.
            self.decided.wait_until(&mut guard, deadline);
        }
    }

    /// Runs the limiter's Raft side until `stop`: proposes this node's
    /// limits, carries out the node limiter's commands, learns applied
    /// ones from `events`, and (on the leader) expires old windows. Never
    /// blocks the async threads: its locks are held for in-memory work only.
    pub async fn run(self: Arc<Self>, mut events: broadcast::Receiver<Command>, mut stop: watch::Receiver<bool>) {
        let mut task = Task::new(self.proposed.is_none());
        let mut events_open = true;
        loop {
            if *stop.borrow() {
                break;
            }
            self.adopt_cluster_limits();
            self.start_proposals(&mut task);
            let sleep = tokio::time::sleep(self.next_wake(&task));
            tokio::select! {
                changed = stop.changed() => if changed.is_err() { break },
                () = self.wake.notified() => {}
                Some(outcome) = task.in_flight.next(), if !task.in_flight.is_empty() => self.finish(&mut task, outcome),
                event = events.recv(), if events_open => events_open = self.learn(event, &mut events),
                () = sleep => {}
            }
        }
        tracing::debug!(in_flight = task.in_flight.len(), "cardinality limiter stopped");
    }

    /// Starts enforcing the cluster's limits once they are applied here.
    fn adopt_cluster_limits(&self) {
        if self.active.get().is_some() {
            return;
        }
        let Some(config) = self.cluster.applied_limits() else { return };
        if self.proposed.as_ref().is_some_and(|mine| *mine != config) {
            tracing::warn!(cluster = ?config, configured = ?self.proposed, "the cluster's cardinality limits differ from this node's [limits]; enforcing the cluster's");
        }
        *self.node.lock() = Some(NodeLimiter::new(self.cluster.node_id(), config.clone()));
        // Set after the node limiter exists: `limits` may then send values
        // to `admit`, which needs it.
        let _ = self.active.set(config);
        self.decided.notify_all();
    }

    /// Starts the proposals that are due, within the bound on those in flight.
    fn start_proposals(&self, task: &mut Task) {
        if task.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        task.retry_at = None;
        if !task.limits_settled && !task.limits_in_flight {
            self.propose_limits(task);
        }
        let Some(config) = self.active.get() else { return };
        if task.queue.is_empty() {
            let members = self.cluster.members();
            if let Some(node) = self.node.lock().as_mut() {
                node.set_members(members);
                task.queue.extend(node.commands(self.clock.now_unix_ms()));
            }
        }
        if self.cluster.is_leader() && Instant::now() >= task.next_expire {
            task.next_expire = Instant::now() + expire_every(config);
            let before_window = config.expire_before(self.clock.now_unix_ms());
            if before_window > task.expired_before {
                task.queue.push_back(Command::Expire { before_window });
            }
        }
        while task.in_flight.len() < MAX_PROPOSALS_IN_FLIGHT {
            let Some(command) = task.queue.pop_front() else { break };
            let cluster = self.cluster.clone();
            task.in_flight.push(Box::pin(async move {
                let request = ClusterRequest::Limiter(command.clone());
                let result = propose_within(cluster.as_ref(), request).await;
                Outcome::Limiter(command, result)
            }));
        }
    }

    fn propose_limits(&self, task: &mut Task) {
        let Some(config) = self.proposed.clone() else {
            task.limits_settled = true;
            return;
        };
        // A restart, or another node proposed the same limits.
        if self.cluster.applied_limits().as_ref() == Some(&config) {
            task.limits_settled = true;
            return;
        }
        task.limits_in_flight = true;
        let cluster = self.cluster.clone();
        task.in_flight
            .push(Box::pin(async move { Outcome::Limits(propose_within(cluster.as_ref(), ClusterRequest::SetLimits { config }).await) }));
    }

    /// Hands a proposal's outcome to the node limiter and wakes waiters.
    fn finish(&self, task: &mut Task, outcome: Outcome) {
        match outcome {
            Outcome::Limits(result) => {
                task.limits_in_flight = false;
                match result {
                    Ok(ClusterResponse::Limits { accepted }) => {
                        task.limits_settled = true;
                        task.succeeded();
                        if !accepted {
                            tracing::warn!("the cluster already has other cardinality limits; this node's [limits] were not accepted");
                        }
                    }
                    other => self.failed(task, "limits", &other),
                }
            }
            Outcome::Limiter(command, result) => {
                let response = match &result {
                    Ok(ClusterResponse::Limiter(response)) => Some(response),
                    _ => None,
                };
                if let Some(node) = self.node.lock().as_mut() {
                    match response {
                        Some(response) => node.on_response(&command, response),
                        None => node.on_failure(&command),
                    }
                }
                match (response, &command) {
                    (Some(_), Command::Expire { before_window }) => task.expired_before = task.expired_before.max(*before_window),
                    (Some(_), _) => {}
                    (None, _) => self.failed(task, command_kind(&command), &result),
                }
                if response.is_some() {
                    task.succeeded();
                }
                self.decided.notify_all();
            }
        }
    }

    fn failed(&self, task: &mut Task, what: &'static str, result: &Result<ClusterResponse, ClusterError>) {
        self.metrics.limits_proposal_failures.inc();
        let retry_in = task.backoff;
        task.backoff = (task.backoff * 2).min(RETRY_MAX);
        task.retry_at = Some(Instant::now() + retry_in);
        match result {
            Err(e) => tracing::debug!(proposal = what, error = %e, retry_in_ms = retry_in.as_millis() as u64, "limiter proposal failed"),
            Ok(other) => tracing::warn!(proposal = what, response = ?other, "limiter proposal refused"),
        }
    }

    /// Learns applied commands: the one received and those queued behind
    /// it, under one lock. Returns whether the channel is still open.
    ///
    /// Missing some (`Lagged`) is safe: learning only spares quota. A value
    /// another node admitted and this node did not learn is admitted here
    /// on one of its own units; its report adds nothing to the state's
    /// admitted set (the value is there already), so the bound holds and
    /// one unit is spent for nothing.
    fn learn(&self, first: Result<Command, broadcast::error::RecvError>, events: &mut broadcast::Receiver<Command>) -> bool {
        let first = match first {
            Ok(command) => command,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "limiter fell behind the applied log; missed values cost quota, never the limit");
                return true;
            }
            Err(broadcast::error::RecvError::Closed) => return false,
        };
        let mut guard = self.node.lock();
        let Some(node) = guard.as_mut() else { return true };
        node.learn(&first);
        let mut learned = 1;
        while learned < MAX_LEARNED_PER_LOCK {
            let Ok(command) = events.try_recv() else { break };
            node.learn(&command);
            learned += 1;
        }
        drop(guard);
        self.learned.fetch_add(learned as u64, Ordering::Relaxed);
        self.decided.notify_all();
        true
    }

    /// How long the task may sleep when nothing wakes it.
    fn next_wake(&self, task: &Task) -> Duration {
        let now = Instant::now();
        let mut sleep = IDLE_TICK;
        if self.active.get().is_none() || !task.limits_settled {
            sleep = sleep.min(POLL_LIMITS);
        }
        if let Some(at) = task.retry_at {
            sleep = sleep.min(at.saturating_duration_since(now));
        }
        // A due expiry is proposed by `start_proposals` (which moves `next_expire` on)
        // unless a retry backoff holds proposals back — then `retry_at` is the
        // wake-up. A deadline already past must not count: it made the loop spin on
        // every follower, on a leader elected before the limits were applied, and
        // during a backoff.
        let until_expire = task.next_expire.saturating_duration_since(now);
        if !until_expire.is_zero() {
            sleep = sleep.min(until_expire);
        }
        sleep
    }
}

impl AttributeLimiter for ClusterLimiter {
    fn limits(&self, key: &str) -> bool {
        match self.active.get() {
            Some(config) => config.limit(key).is_some(),
            None => self.proposed.as_ref().is_some_and(|c| c.limit(key).is_some()),
        }
    }

    fn admit(&self, key: &str, value: &str) -> Verdict {
        ClusterLimiter::admit(self, key, value)
    }
}

/// A finished proposal.
enum Outcome {
    Limits(Result<ClusterResponse, ClusterError>),
    Limiter(Command, Result<ClusterResponse, ClusterError>),
}

/// The background task's state.
struct Task {
    in_flight: FuturesUnordered<BoxFuture<'static, Outcome>>,
    /// Commands taken from the node limiter, not yet proposed. Bounded by
    /// the node limiter (two per attribute and window) plus one expiry.
    queue: VecDeque<Command>,
    /// Whether this node's limits need no (more) proposing.
    limits_settled: bool,
    limits_in_flight: bool,
    /// After a failure, no proposal starts before this.
    retry_at: Option<Instant>,
    /// The next failure's wait.
    backoff: Duration,
    /// When the leader next considers expiring windows.
    next_expire: Instant,
    /// Windows before this one are expired (as far as this node proposed).
    expired_before: Window,
}

impl Task {
    fn new(limits_settled: bool) -> Self {
        Self {
            in_flight: FuturesUnordered::new(),
            queue: VecDeque::new(),
            limits_settled,
            limits_in_flight: false,
            retry_at: None,
            backoff: RETRY_INITIAL,
            next_expire: Instant::now(),
            expired_before: Window(0),
        }
    }

    fn succeeded(&mut self) {
        self.backoff = RETRY_INITIAL;
    }
}

/// A proposal under the cluster's deadline: one that takes longer counts
/// as failed (its outcome unknown), whatever happens to it later.
async fn propose_within(cluster: &dyn LimiterCluster, request: ClusterRequest) -> Result<ClusterResponse, ClusterError> {
    let timeout = cluster.proposal_timeout();
    match tokio::time::timeout(timeout, cluster.propose(request)).await {
        Ok(result) => result,
        Err(_) => Err(ClusterError::Raft(format!("no answer within {timeout:?}"))),
    }
}

/// How often the leader considers expiring windows: a few times per window,
/// between 100 ms and a minute. An expiry is proposed only when a window
/// closed since the last one, so this costs no log entries by itself.
fn expire_every(config: &LimiterConfig) -> Duration {
    Duration::from_millis((config.window_ms() / 4).clamp(100, 60_000))
}

fn command_kind(command: &Command) -> &'static str {
    match command {
        Command::Lease { .. } => "lease",
        Command::Report { .. } => "report",
        Command::Expire { .. } => "expire",
    }
}

#[cfg(test)]
#[path = "limiter_test.rs"]
mod limiter_test;
