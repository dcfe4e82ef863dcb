//! Multi-process cluster tests: separate `ollystack-node` processes on
//! loopback (each test on its own 127.0.0.x addresses, fixed ports so a
//! restarted node keeps its address), formed with `join`, checked through
//! the `members` CLI and the HTTP API. Every wait is bounded.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use prost::Message;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_ollystack-node");
const TOKEN: &str = "test-join-token";

/// One node process and where it listens.
struct Node {
    ip: String,
    dir: PathBuf,
    child: Option<Child>,
    /// `node-…` as printed at start.
    id: String,
}

impl Node {
    fn new(ip: &str, root: &std::path::Path) -> Self {
        Self { ip: ip.into(), dir: root.join(ip), child: None, id: String::new() }
    }

    fn cluster(&self) -> String {
        format!("{}:4320", self.ip)
    }

    fn api(&self, path: &str) -> String {
        format!("http://{}:8080{path}", self.ip)
    }

    fn otlp_http(&self) -> String {
        format!("http://{}:4318/v1/traces", self.ip)
    }

    fn args(&self, token: &str) -> Vec<String> {
        let ip = &self.ip;
        [
            "--data-dir",
            &self.dir.display().to_string(),
            "--listen-otlp-grpc",
            &format!("{ip}:4317"),
            "--listen-otlp-http",
            &format!("{ip}:4318"),
            "--listen-api",
            &format!("{ip}:8080"),
            "--listen-cluster",
            &format!("{ip}:4320"),
            "--cluster-join-token",
            token,
            "--cluster-heartbeat-interval-ms",
            "200",
            "--cluster-election-timeout-ms",
            "1000",
            "--cluster-failure-timeout-ms",
            "2000",
            "--cluster-rpc-timeout-ms",
            "1000",
            "--session-idle-timeout-ms",
            "1500",
            "--session-tick-interval-ms",
            "100",
            "--log",
            "warn",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn command(&self, seed: Option<&str>, token: &str) -> Command {
        let mut cmd = Command::new(BIN);
        match seed {
            Some(seed) => cmd.args(["join", "--seed", seed]),
            None => cmd.arg("start"),
        };
        cmd.args(self.args(token)).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        cmd
    }

    /// Starts (or restarts) the process and waits until it is ready.
    async fn start(&mut self, seed: Option<&str>) {
        let mut child = self.command(seed, TOKEN).spawn().expect("node binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if line.starts_with("ollystack-node ready:") {
                    return line;
                }
            }
            panic!("node {} exited before it was ready", self.ip);
        })
        .await
        .expect("node ready in time");
        // "... | cluster HOST:PORT (node-123)"
        self.id = ready.rsplit('(').next().and_then(|s| s.strip_suffix(')')).expect("node id in the ready line").to_owned();
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }

    /// `kill -9`.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("kill");
            let _ = child.wait().await;
        }
    }
}

/// `ollystack-node members --node ADDR`: (ring epoch, leader, rows).
struct Members {
    epoch: u64,
    leader: String,
    /// node → (role, health, in ring)
    rows: BTreeMap<String, (String, String, bool)>,
}

async fn members(addr: &str) -> Option<Members> {
    let out = Command::new(BIN).args(["members", "--node", addr]).output().await.ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next()?.split_whitespace().collect();
    // "ring epoch N  raft term T  leader node-X  (answered by node-Y)"
    let epoch = head.get(2)?.parse().ok()?;
    let leader = head.get(7)?.to_string();
    let rows = lines
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first()?.to_string(), (f.get(1)?.to_string(), f.get(2)?.to_string(), *f.get(3)? == "yes")))
        })
        .collect();
    Some(Members { epoch, leader, rows })
}

/// Waits until every node reports the same ring epoch with exactly `ids`
/// on the ring, all up. Returns the epoch.
async fn converged(nodes: &[&Node], limit: Duration) -> u64 {
    let ids: BTreeSet<String> = nodes.iter().map(|n| n.id.clone()).collect();
    eventually(limit, || async {
        let mut epochs = BTreeSet::new();
        for n in nodes {
            let m = members(&n.cluster()).await?;
            let in_ring: BTreeSet<String> = m.rows.iter().filter(|(_, r)| r.2).map(|(id, _)| id.clone()).collect();
            let all_up = m.rows.values().all(|r| r.1 == "up");
            if in_ring != ids || !all_up || m.leader == "node-0" {
                return None;
            }
            epochs.insert(m.epoch);
        }
        (epochs.len() == 1).then(|| epochs.into_iter().next().unwrap_or_default())
    })
    .await
}

/// Waits until `asked` reports `node` off the ring (failure detection and
/// a Raft decision, after a new election when `node` led).
async fn off_the_ring(asked: &str, node: &str) {
    eventually(Duration::from_secs(20), || async {
        let m = members(asked).await?;
        let row = m.rows.get(node)?;
        (!row.2 && row.1 == "down" && m.leader != node && m.leader != "node-0").then_some(())
    })
    .await
}

async fn three_nodes(root: &std::path::Path, ips: [&str; 3]) -> Vec<Node> {
    let mut nodes: Vec<Node> = ips.iter().map(|ip| Node::new(ip, root)).collect();
    nodes[0].start(None).await;
    let seed = nodes[0].cluster();
    for n in nodes.iter_mut().skip(1) {
        n.start(Some(&seed)).await;
    }
    nodes
}

fn span_ids(body: &Value) -> Vec<String> {
    body["traces"].as_array().into_iter().flatten().filter_map(|s| s["span_id"].as_str().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_join_and_every_node_answers_the_same() {
    let root = tempfile::tempdir().expect("tempdir");
    let nodes = three_nodes(root.path(), ["127.0.0.21", "127.0.0.22", "127.0.0.23"]).await;
    let refs: Vec<&Node> = nodes.iter().collect();
    converged(&refs, Duration::from_secs(30)).await;

    // A wrong token is refused with a clear message, and the node stops.
    let mut intruder = Node::new("127.0.0.24", root.path());
    let out = tokio::time::timeout(Duration::from_secs(30), intruder.command(Some(&nodes[1].cluster()), "wrong").output())
        .await
        .expect("refused in time")
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wrong join token"), "stderr: {stderr}");
    intruder.id = "never".into();

    // One trace, its spans sent to three different nodes; only the root
    // (sent last) names the correlation ID.
    let client = reqwest::Client::new();
    let trace = [0x5b; 16];
    let mut parts = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let root_span = i == 2;
        let mut req = trace_request(&format!("svc-{i}"), root_span.then_some("order-77"), trace, i as u64 * 10, 3);
        if !root_span {
            for s in &mut req.resource_spans[0].scope_spans[0].spans {
                s.parent_span_id = 21u64.to_be_bytes().to_vec();
            }
        }
        parts.push((node.otlp_http(), req));
    }
    for (url, req) in parts {
        assert_eq!(post_protobuf(&client, &url, req.encode_to_vec()).await.status(), 200);
    }
    let answers = eventually(Duration::from_secs(20), || async {
        let mut answers = Vec::new();
        for n in &nodes {
            let (status, body) = get_json(&n.api("/api/v1/correlate/order-77")).await;
            // Partial for a moment after the ring changes: a node that has
            // just handed the session to its owner says so.
            if status != 200 || span_ids(&body).len() != 9 || body["partial"] != false {
                return None;
            }
            answers.push(body);
        }
        Some(answers)
    })
    .await;
    assert!(answers.iter().all(|a| *a == answers[0]), "every node answers the same JSON");
    assert_eq!(answers[0]["partial"], false);
    // The trace lookup and listing agree from any node.
    for n in &nodes {
        let (s, t) = get_json(&n.api(&format!("/api/v1/traces/{}", hex::encode(trace)))).await;
        assert_eq!(s, 200);
        assert_eq!(t["correlation_id"], "order-77");
    }
    // RCA from any node: per request (routed to the owner) and per
    // incident (every node's aggregate merged) give the same answer.
    let client = reqwest::Client::new();
    let mut per_request = Vec::new();
    let mut per_incident = Vec::new();
    for n in &nodes {
        let r = client.post(n.api("/api/v1/ai/rca")).json(&serde_json::json!({"correlation_id": "order-77"})).send().await.expect("rca");
        assert_eq!(r.status(), 200);
        per_request.push(r.json::<Value>().await.expect("json"));
        let window = serde_json::json!({"start": "1699999999000000000", "end": "1700000001000000000"});
        let r = client.post(n.api("/api/v1/ai/rca")).json(&window).send().await.expect("incident rca");
        assert_eq!(r.status(), 200);
        per_incident.push(r.json::<Value>().await.expect("json"));
    }
    assert!(per_request.iter().all(|a| a["root_cause"] == per_request[0]["root_cause"] && !a["root_cause"].is_null()));
    assert!(per_incident.iter().all(|a| a["sessions"] == per_incident[0]["sessions"] && a["partial"] == false));
    assert_eq!(per_incident[0]["sessions"]["incident"], 1, "the one session, counted once across three nodes");
    let (_, list) = get_json(&nodes[1].api("/api/v1/sessions")).await;
    let ids: Vec<&str> = list["sessions"].as_array().expect("sessions").iter().filter_map(|s| s["correlation_id"].as_str()).collect();
    assert_eq!(ids, vec!["order-77"], "one session, not a derived one beside it");

    // Sessions spread over the three nodes, finished (archived where they
    // live) before the third node leaves.
    let archived: Vec<String> = (0..20).map(|i| format!("archived-{i}")).collect();
    for (i, id) in archived.iter().enumerate() {
        let req = trace_request("svc-a", Some(id), [0x60 + i as u8; 16], 0, 2);
        assert_eq!(post_protobuf(&client, &nodes[i % 3].otlp_http(), req.encode_to_vec()).await.status(), 200);
    }
    eventually(Duration::from_secs(20), || async {
        for id in &archived {
            let (status, body) = get_json(&nodes[0].api(&format!("/api/v1/correlate/{id}"))).await;
            if status != 200 || body["live"] != false || body["partial"] != false || span_ids(&body).len() != 2 {
                return None;
            }
        }
        Some(())
    })
    .await;

    // The third node leaves: off the ring, out of the membership, stopped.
    let mut nodes = nodes;
    let out =
        Command::new(BIN).args(["leave", "--node", &nodes[2].cluster(), "--cluster-join-token", TOKEN]).output().await.expect("leave runs");
    assert!(out.status.success(), "leave: {}", String::from_utf8_lossy(&out.stderr));
    let mut gone = nodes.pop().expect("third node");
    let exited = tokio::time::timeout(Duration::from_secs(20), gone.child.as_mut().expect("running").wait()).await;
    assert!(exited.is_ok(), "the node that left stops by itself");
    let refs: Vec<&Node> = nodes.iter().collect();
    converged(&refs, Duration::from_secs(20)).await;
    let m = members(&nodes[0].cluster()).await.expect("members");
    assert!(!m.rows.contains_key(&gone.id), "no longer a member");
    // What it had archived was handed over: every session is still whole.
    for id in archived.iter().chain(std::iter::once(&"order-77".to_owned())) {
        for n in &nodes {
            let (status, body) = get_json(&n.api(&format!("/api/v1/correlate/{id}"))).await;
            assert_eq!(status, 200, "{id} via {}: {body}", n.ip);
            assert_eq!(body["partial"], false, "{id} via {}: {body}", n.ip);
            let want = if id == "order-77" { 9 } else { 2 };
            assert_eq!(span_ids(&body).len(), want, "{id} via {}", n.ip);
        }
    }
    // Their traces are still found, though some had their home on the node
    // that left.
    let traces = archived.iter().enumerate().map(|(i, id)| ([0x60 + i as u8; 16], id.as_str())).chain([(trace, "order-77")]);
    for (t, id) in traces {
        for n in &nodes {
            let (status, body) = get_json(&n.api(&format!("/api/v1/traces/{}", hex::encode(t)))).await;
            assert_eq!((status, body["correlation_id"].as_str()), (200, Some(id)), "trace of {id} via {}: {body}", n.ip);
        }
    }
}

/// Sends traces to the nodes in turn until stopped; records what was
/// acknowledged (session → span IDs). A refused batch is retried on the
/// next node, up to a bound.
async fn load(urls: Arc<parking_lot::Mutex<Vec<String>>>, stop: Arc<AtomicBool>) -> (BTreeMap<String, BTreeSet<String>>, u64) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let mut acked: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut given_up = 0;
    let mut i: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("load-{}", i % 40);
        let mut trace = [0u8; 16];
        trace[..8].copy_from_slice(&(i + 1).to_be_bytes());
        trace[8] = 0xAA;
        let req = trace_request("load", Some(&id), trace, i * 4, 4).encode_to_vec();
        let mut ok = false;
        for attempt in 0..40u64 {
            let url = {
                let urls = urls.lock();
                urls[((i + attempt) as usize) % urls.len()].clone()
            };
            match client.post(&url).header("content-type", "application/x-protobuf").body(req.clone()).send().await {
                Ok(r) if r.status() == 200 => {
                    ok = true;
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        if ok {
            let spans = acked.entry(id).or_default();
            for s in 0..4u64 {
                spans.insert(hex::encode((i * 4 + s + 1).to_be_bytes()));
            }
        } else {
            given_up += 1;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (acked, given_up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_restarts_and_a_join_under_load_lose_nothing_acknowledged() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = three_nodes(root.path(), ["127.0.0.31", "127.0.0.32", "127.0.0.33"]).await;
    let refs: Vec<&Node> = nodes.iter().collect();
    let formed = converged(&refs, Duration::from_secs(30)).await;
    let urls = Arc::new(parking_lot::Mutex::new(nodes.iter().map(Node::otlp_http).collect::<Vec<_>>()));
    let stop = Arc::new(AtomicBool::new(false));
    let generator = tokio::spawn(load(urls.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // kill -9 a follower, then bring it back.
    let leader = members(&nodes[0].cluster()).await.expect("members").leader;
    let follower = nodes.iter().position(|n| n.id != leader).expect("a follower");
    nodes[follower].kill().await;
    let survivor = nodes.iter().find(|n| n.child.is_some()).expect("a node").cluster();
    off_the_ring(&survivor, &nodes[follower].id).await;
    nodes[follower].start(None).await;
    let refs: Vec<&Node> = nodes.iter().collect();
    converged(&refs, Duration::from_secs(30)).await;

    // kill -9 the leader, then bring it back.
    let any_up = nodes.iter().find(|n| n.child.is_some()).expect("a node").cluster();
    let leader = members(&any_up).await.expect("members").leader;
    let leading = nodes.iter().position(|n| n.id == leader).expect("the leader is one of ours");
    nodes[leading].kill().await;
    let survivor = nodes.iter().find(|n| n.child.is_some()).expect("a node").cluster();
    off_the_ring(&survivor, &nodes[leading].id).await;
    nodes[leading].start(None).await;
    let refs: Vec<&Node> = nodes.iter().collect();
    converged(&refs, Duration::from_secs(30)).await;

    // A fourth node joins under load.
    let mut fourth = Node::new("127.0.0.34", root.path());
    fourth.start(Some(&nodes[1].cluster())).await;
    urls.lock().push(fourth.otlp_http());
    nodes.push(fourth);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, given_up) = generator.await.expect("load task");
    assert_eq!(given_up, 0, "every batch was eventually accepted");
    assert!(acked.values().map(BTreeSet::len).sum::<usize>() > 100, "the load ran");

    let refs: Vec<&Node> = nodes.iter().collect();
    let epoch = converged(&refs, Duration::from_secs(30)).await;
    let total: usize = acked.values().map(BTreeSet::len).sum();
    eprintln!("acknowledged {total} spans in {} sessions; ring epoch {epoch}", acked.len());
    // 2 per failure and return, 1 for the fourth node.
    assert!(epoch >= formed + 5, "failures, returns and the join each moved the ring (epoch {formed} → {epoch})");

    // Every acknowledged span is there exactly once, asked through any node.
    for (k, (id, want)) in acked.iter().enumerate() {
        let node = &nodes[k % nodes.len()];
        let url = node.api(&format!("/api/v1/correlate/{id}"));
        let got = eventually(Duration::from_secs(30), || async {
            let (status, body) = get_json(&url).await;
            let spans = span_ids(&body);
            let have: BTreeSet<String> = spans.iter().cloned().collect();
            (status == 200 && body["partial"] == false && want.is_subset(&have)).then_some(spans)
        })
        .await;
        let unique: BTreeSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "{id}: no span twice");
    }
    for n in &mut nodes {
        n.kill().await;
    }
}
