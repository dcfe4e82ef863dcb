//! Recovery in a whole node:
//! * a session actor that panics: its data answers as unknown or partial
//!   while the supervisor rebuilds it, then whole; the memory budget ends
//!   where it was; across a restart nothing is lost or stored twice;
//! * a WAL replay with more data than the memory budget: all of it is
//!   replayed, and the budget holds.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::*;
use crate::config::ConfigFile;
use crate::ingest::{IngestHandle, IngestSink};
use crate::model::{CorrelationId, SessionKey, TenantId};
use crate::session::{SessionEnv, SessionMsg};

const SPANS: usize = 50;
const ID: &str = "order-rebuild-1";

fn config(dir: &std::path::Path) -> Config {
    config_with(dir, |_| {})
}

fn config_with(dir: &std::path::Path, tweak: impl FnOnce(&mut ConfigFile)) -> Config {
    let mut f = ConfigFile { data_dir: dir.to_owned(), ..ConfigFile::default() };
    for addr in [&mut f.listen.otlp_grpc, &mut f.listen.otlp_http, &mut f.listen.api, &mut f.listen.cluster] {
        *addr = "127.0.0.1:0".into();
    }
    f.session.idle_timeout_ms = 120_000;
    f.session.tick_interval_ms = 50;
    // The rebuilt data plus the one later span fill a segment: it is
    // archived at once, deterministically.
    f.session.max_spans = SPANS as u64 + 1;
    tweak(&mut f);
    f.build_and_validate().expect("config")
}

fn spans(first: usize, count: usize) -> ExportTraceServiceRequest {
    spans_of(ID, first, count, "")
}

/// Spans `first..first + count` of session `id`, each carrying `payload`.
fn spans_of(id: &str, first: usize, count: usize, payload: &str) -> ExportTraceServiceRequest {
    let attr = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(Value::StringValue(v.into())) }),
        ..Default::default()
    };
    let spans = (first..first + count)
        .map(|i| Span {
            trace_id: vec![7; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("op-{i}"),
            start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            end_time_unix_nano: 1_700_000_000_000_000_500 + i as u64,
            attributes: vec![attr("payload", payload)],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![attr("service.name", "api"), attr("correlation_id", id)], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// Starts a node on a data dir a node of this process just left: the
/// previous instance's storage tasks may hold the dir's lock a moment
/// longer than `start` waits when the machine is busy (the whole lib test
/// suite in parallel); waits for the lock, not for a time.
async fn restart(config: Config) -> RunningNode {
    for _ in 0..40 {
        match start(config.clone()).await {
            Ok(node) => return node,
            Err(NodeError::Storage { detail, .. }) if detail.contains("lock") => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("node restarts: {e}"),
        }
    }
    panic!("the data dir stayed locked");
}

fn key() -> SessionKey {
    SessionKey { tenant: TenantId::default_tenant(), id: CorrelationId::from_trusted(ID) }
}

/// Polls `check` until it holds (state, not time: the bound only ends a
/// broken test).
async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    for _ in 0..1_000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn get(node: &RunningNode) -> (u16, serde_json::Value) {
    get_id(node, ID).await
}

async fn get_id(node: &RunningNode, id: &str) -> (u16, serde_json::Value) {
    let url = format!("http://{}/api/v1/correlate/{id}", node.api_addr);
    let resp = reqwest::get(url).await.expect("api answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// Spans stored for the session, counting copies (the API de-duplicates).
async fn stored_span_copies(env: &SessionEnv) -> usize {
    let stored = env.storage.store.segments(&key().tenant, &[key().id]).await.expect("segments");
    stored.segments.iter().map(|s| s.spans.len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicked_session_is_rebuilt_at_once_and_nothing_is_lost_or_doubled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(config(dir.path())).await.expect("node starts");
    let env = node.probe.env.upgrade().expect("env");
    let sink = IngestHandle(node.ingestor.clone());
    sink.traces(spans(0, SPANS)).await.expect("accepted");
    let live = env.registry.holders(&key()).await;
    assert_eq!(live.len(), 1);

    // The actor panics; the rebuild waits for the test's permit.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    // A call, not a send: supervision events go before messages.
    node.supervisor.call(|r| crate::session::supervisor::SupervisorMsg::GateRebuilds(gate.clone(), r), None).await.expect("gate");
    live[0].send_message(SessionMsg::Crash).expect("crash");
    wait_for("the rebuild to start", || async { env.registry.awaiting_rebuild(&key(), &[]).await }).await;
    assert_eq!(env.metrics.sessions_live.get(), 0, "the failed actor's post_stop work was done once");

    // Only the failed actor held the session: unknown (retry), not absent.
    let (status, body) = get(&node).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.to_string().contains("rebuilt"), "{body}");

    // A new signal reaches a new live actor, not the dead mailbox; the
    // answer has it and says it is partial.
    sink.traces(spans(SPANS, 1)).await.expect("accepted");
    let (status, body) = get(&node).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["partial"], true, "{body}");
    assert_eq!(body["summary"]["total_spans"], 1, "{body}");

    // Rebuilt: whole again, and (the segment being full) archived.
    gate.add_permits(1);
    wait_for("the rebuild", || async { env.metrics.sessions_rebuilt.get() == 1 && !env.registry.awaiting_rebuild(&key(), &[]).await })
        .await;
    let (status, body) = get(&node).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["partial"], false, "{body}");
    assert_eq!(body["summary"]["total_spans"], SPANS + 1, "{body}");
    wait_for("the full segment to be archived", || async { env.registry.counts().await == (0, 0) }).await;
    // Nothing leaked, nothing released twice (a double release would
    // also trip `MemoryBudget::release`'s debug assertion).
    wait_for("its memory to be settled", || async { env.budget.used_bytes() == 0 }).await;
    assert_eq!(stored_span_copies(&env).await, SPANS + 1, "stored once");
    assert_eq!(env.metrics.sessions_live.get(), 0);
    drop((env, sink));
    node.shutdown().await;

    // Restart: the settled entries do not replay; the archive has each
    // span once.
    let node = restart(config(dir.path())).await;
    let env = node.probe.env.upgrade().expect("env");
    assert_eq!(env.metrics.wal_replayed_entries.get(), 0);
    assert_eq!(stored_span_copies(&env).await, SPANS + 1);
    let (status, body) = get(&node).await;
    assert_eq!((status, body["summary"]["total_spans"].as_u64()), (200, Some(SPANS as u64 + 1)), "{body}");
    assert_eq!(env.budget.used_bytes(), 0);
    drop(env);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_holds_exactly_what_it_held_before_the_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(config(dir.path())).await.expect("node starts");
    let env = node.probe.env.upgrade().expect("env");
    let sink = IngestHandle(node.ingestor.clone());
    // Two batches, the second re-delivering half of the first (an exporter
    // retry): the duplicates' memory is given back once.
    sink.traces(spans(0, SPANS)).await.expect("accepted");
    sink.traces(spans(SPANS / 2, SPANS / 2 - 1)).await.expect("accepted");
    let live = env.registry.holders(&key()).await;
    // Answered after both batches (FIFO mailbox): the duplicates are given back.
    assert_eq!(get(&node).await.1["summary"]["total_spans"], SPANS);
    let used_before = env.budget.used_bytes();
    live[0].send_message(SessionMsg::Crash).expect("crash");
    wait_for("the rebuild", || async { env.metrics.sessions_rebuilt.get() == 1 }).await;
    wait_for("a live actor", || async { env.registry.counts().await == (1, 0) }).await;
    assert_eq!(env.budget.used_bytes(), used_before, "the rebuilt session holds what the failed one held");
    assert_eq!(env.metrics.sessions_live.get(), 1);
    let (status, body) = get(&node).await;
    assert_eq!((status, body["partial"].as_bool()), (200, Some(false)), "{body}");
    assert_eq!(body["summary"]["total_spans"], SPANS, "{body}");
    drop((env, sink));
    node.shutdown().await;

    // Restart with the rebuilt session still live: its entries replay
    // once, into one session.
    let node = restart(config(dir.path())).await;
    let env = node.probe.env.upgrade().expect("env");
    assert_eq!(env.metrics.wal_replayed_entries.get(), 2);
    let (status, body) = get(&node).await;
    assert_eq!((status, body["summary"]["total_spans"].as_u64()), (200, Some(SPANS as u64)), "{body}");
    assert_eq!(env.budget.used_bytes(), used_before, "replay reserves what the session held");
    drop(env);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_larger_than_the_budget_replays_everything_within_it() {
    const SESSIONS: usize = 100;
    const PER_SESSION: usize = 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(config(dir.path())).await.expect("node starts");
    let sink = IngestHandle(node.ingestor.clone());
    let payload = "x".repeat(4_000);
    for s in 0..SESSIONS {
        sink.traces(spans_of(&format!("order-{s}"), 0, PER_SESSION, &payload)).await.expect("accepted");
    }
    let held = node.probe.env.upgrade().expect("env").budget.used_bytes();
    drop(sink);
    node.shutdown().await;

    // The same WAL, a budget a fifth of what it holds.
    let budget = 1 << 20;
    assert!(held > 5 * budget, "{held}");
    let node = restart(config_with(dir.path(), |f| f.session.memory_budget_bytes = budget)).await;
    let env = node.probe.env.upgrade().expect("env");
    assert_eq!(env.metrics.wal_replayed_entries.get(), SESSIONS as u64);
    assert!(env.budget.used_bytes() <= budget, "{} over {budget}", env.budget.used_bytes());
    assert!(env.metrics.sessions_finished.get("memory") > 0, "sessions were finished early");
    for s in 0..SESSIONS {
        let (status, body) = get_id(&node, &format!("order-{s}")).await;
        assert_eq!((status, body["summary"]["total_spans"].as_u64()), (200, Some(PER_SESSION as u64)), "order-{s}: {body}");
    }
    drop(env);
    node.shutdown().await;
}
