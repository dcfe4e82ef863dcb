//! Shared fixtures of the integration tests: an in-process node on
//! loopback port 0 with a temporary data dir, JSON helpers, and a bounded
//! wait on state (never a sleep for synchronisation).

#![allow(dead_code)]

pub mod chdb;

use std::future::Future;
use std::time::Duration;

use ollystack_node::config::ConfigFile;
use ollystack_node::server::{self, RunningNode};
use serde_json::Value;

pub struct TestNode {
    pub node: RunningNode,
    pub dir: tempfile::TempDir,
}

impl TestNode {
    pub fn api(&self, path: &str) -> String {
        format!("http://{}{}", self.node.api_addr, path)
    }
    pub fn otlp_http(&self) -> String {
        format!("http://{}", self.node.otlp_http_addr)
    }
    pub fn otlp_grpc(&self) -> String {
        format!("http://{}", self.node.otlp_grpc_addr)
    }
}

/// A config on loopback port 0 in a fresh temp dir; sessions stay live for a
/// minute unless `tweak` says otherwise.
pub fn test_config(dir: &std::path::Path, tweak: impl FnOnce(&mut ConfigFile)) -> ConfigFile {
    let mut f = ConfigFile { data_dir: dir.to_path_buf(), ..ConfigFile::default() };
    f.listen.otlp_grpc = "127.0.0.1:0".into();
    f.listen.otlp_http = "127.0.0.1:0".into();
    f.listen.api = "127.0.0.1:0".into();
    f.listen.cluster = "127.0.0.1:0".into();
    f.session.idle_timeout_ms = 60_000;
    f.session.max_age_ms = 600_000;
    f.session.tick_interval_ms = 50;
    f.correlation.seed = Some(7);
    tweak(&mut f);
    f
}

pub async fn start_node(tweak: impl FnOnce(&mut ConfigFile)) -> TestNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = test_config(dir.path(), tweak).build_and_validate().expect("valid config");
    let node = server::start(cfg).await.expect("node starts");
    TestNode { node, dir }
}

/// The value of the first `/metrics` line that starts with `line_start`
/// (a name, with its labels when it has any).
pub fn metric(text: &str, line_start: &str) -> Option<u64> {
    text.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

/// The node's `/metrics` text.
pub async fn metrics_text(node: &TestNode) -> String {
    reqwest::get(node.api("/metrics")).await.expect("metrics").text().await.expect("text")
}

pub async fn get_json(url: &str) -> (u16, Value) {
    let resp = reqwest::get(url).await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("body");
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

/// Polls `check` until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not reached within {limit:?}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The correlate answer once it satisfies `ok`.
pub async fn correlate_until(node: &TestNode, id: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let url = node.api(&format!("/api/v1/correlate/{id}"));
    eventually(Duration::from_secs(15), || {
        let url = url.clone();
        let ok = &ok;
        async move {
            let (status, body) = get_json(&url).await;
            (status == 200 && ok(&body)).then_some(body)
        }
    })
    .await
}

pub fn strs(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// Builds an OTLP trace request: `spans` spans of one trace each carrying
/// `correlation_id` (when given) as a span attribute.
pub fn trace_request(
    service: &str,
    correlation_id: Option<&str>,
    trace: [u8; 16],
    first_span: u64,
    spans: u64,
) -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    use opentelemetry_proto::tonic::common::v1::{any_value::Value as V, AnyValue, KeyValue as Kv};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    let kv = |k: &str, v: &str| Kv { key: k.into(), value: Some(AnyValue { value: Some(V::StringValue(v.into())) }), ..Default::default() };
    let spans = (first_span..first_span + spans)
        .map(|i| Span {
            trace_id: trace.to_vec(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            name: format!("op-{i}"),
            start_time_unix_nano: 1_700_000_000_000_000_000 + i * 1_000,
            end_time_unix_nano: 1_700_000_000_000_000_000 + i * 1_000 + 500,
            attributes: correlation_id.map(|c| vec![kv("correlation_id", c)]).unwrap_or_default(),
            ..Default::default()
        })
        .collect();
    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", service)], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// POSTs a protobuf body to an OTLP/HTTP endpoint; returns the status.
pub async fn post_protobuf(client: &reqwest::Client, url: &str, body: Vec<u8>) -> reqwest::Response {
    client.post(url).header("content-type", "application/x-protobuf").body(body).send().await.expect("post")
}
