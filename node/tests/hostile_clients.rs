//! Clients that hold a port's resources without finishing their requests,
//! as the network-safety issue found them: hundreds of connections that
//! send headers and a few bytes of a large body, then stall; a connection
//! that sends half its headers and nothing more. Real clients must be
//! served meanwhile, and the stalled ones cut off.

mod common;

use std::time::Duration;

use common::*;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_do_not_keep_exporters_out() {
    let node = start_node(|_| {}).await;
    let addr = node.node.otlp_http_addr;
    // More stalled requests than the receiver admits at once (256).
    let mut stalled = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let head = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000000\r\n\r\n";
        s.write_all(head.as_bytes()).await.expect("head");
        s.write_all(&[0u8; 100]).await.expect("some body");
        stalled.push(s);
    }
    let client = reqwest::Client::new();
    let body = trace_request("checkout", Some("order-stall-1"), [7; 16], 0, 3).encode_to_vec();
    let sent = tokio::time::timeout(Duration::from_secs(10), post_protobuf(&client, &format!("{}/v1/traces", node.otlp_http()), body))
        .await
        .expect("answered while 300 bodies stall");
    assert_eq!(sent.status(), 200, "an exporter was shed while others stalled");
    let (status, body) = get_json(&node.api("/api/v1/correlate/order-stall-1")).await;
    assert_eq!((status, body["summary"]["total_spans"].as_u64()), (200, Some(3)));
    drop(stalled);
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_are_cut_off() {
    let node = start_node(|_| {}).await;
    for addr in [node.node.otlp_http_addr, node.node.api_addr] {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("half the headers");
        let mut buf = [0u8; 256];
        // The header deadline is 10 s; the connection must end soon after.
        let read = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await.expect("the connection was cut off");
        assert!(matches!(read, Ok(0) | Err(_)) || buf.starts_with(b"HTTP/1.1 408"), "{addr}: {:?}", String::from_utf8_lossy(&buf));
    }
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let node = start_node(|_| {}).await;
    for addr in [node.node.otlp_http_addr, node.node.api_addr] {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("a whole request");
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.expect("an answer");
        assert!(n > 0);
        // Then nothing: the connection must not be held open for ever.
        let started = std::time::Instant::now();
        let end = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(end.is_ok(), "{addr}: an idle keep-alive connection stayed open 30 s");
        eprintln!("{addr}: idle connection closed after {:?}", started.elapsed());
    }
    node.node.shutdown().await;
}

/// A request of about `bytes` bytes: one ID, spans of 300-byte names.
fn big_request(id: &str, bytes: usize) -> (Vec<u8>, u64) {
    let one = |n: u64| {
        let mut req = trace_request("checkout", Some(id), [3; 16], 0, n);
        for span in &mut req.resource_spans[0].scope_spans[0].spans {
            span.name = format!("{:0>300}", span.name);
        }
        req
    };
    let per_span = one(100).encoded_len() / 100;
    let spans = (bytes / per_span) as u64;
    let body = one(spans).encode_to_vec();
    assert!(body.len() < 16 << 20, "{} bytes", body.len());
    (body, spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_large_requests_are_charged_before_decoding() {
    // As the attack had it: 16 concurrent 15 MB requests, a 100 MB budget.
    let node = start_node(|f| f.session.memory_budget_bytes = 100 << 20).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", node.otlp_http());
    let sends = (0..16).map(|i| {
        let (client, url) = (client.clone(), url.clone());
        let (body, _) = big_request(&format!("order-big-{i}"), 15_000_000);
        tokio::spawn(async move { (i, post_protobuf(&client, &url, body).await.status().as_u16()) })
    });
    let answers: Vec<(usize, u16)> = futures::future::join_all(sends).await.into_iter().map(|r| r.expect("sent")).collect();
    let taken: Vec<usize> = answers.iter().filter(|(_, s)| *s == 200).map(|(i, _)| *i).collect();
    let refused = answers.iter().filter(|(_, s)| *s == 429).count();
    assert_eq!(taken.len() + refused, 16, "only 200 or a retryable 429: {answers:?}");
    assert!(refused > 0 && !taken.is_empty(), "{answers:?}");
    let text = metrics_text(&node).await;
    assert!(metric(&text, "ollystack_memory_used_bytes").expect("used") <= 100 << 20);
    for i in taken {
        let (_, spans) = big_request(&format!("order-big-{i}"), 15_000_000);
        // 503 (a busy session actor did not answer in time) is retryable.
        let url = node.api(&format!("/api/v1/correlate/order-big-{i}"));
        let body = eventually(Duration::from_secs(60), || {
            let url = url.clone();
            async move {
                let (status, body) = get_json(&url).await;
                assert!(status == 200 || status == 503, "{status} {body}");
                (status == 200).then_some(body)
            }
        })
        .await;
        assert_eq!(body["summary"]["total_spans"].as_u64(), Some(spans), "order-big-{i}: every span of an accepted request");
    }
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_grpc_bodies_do_not_keep_exporters_out() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    let node = start_node(|_| {}).await;
    // 270 calls (more than the 256 admitted at once) that declare a 1 MiB
    // message, send its first bytes and stall.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let tcp = TcpStream::connect(node.node.otlp_grpc_addr).await.expect("connect");
        let (mut client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
        tokio::spawn(connection);
        for _ in 0..90 {
            client = client.ready().await.expect("stream slot");
            let request = tonic::codegen::http::Request::post("http://x/opentelemetry.proto.collector.trace.v1.TraceService/Export")
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .expect("request");
            let (response, mut body) = client.send_request(request, false).expect("send");
            body.send_data(bytes::Bytes::from_static(&[0, 0, 0x10, 0, 0, 1, 2, 3]), false).expect("first bytes");
            stalled.push((response, body));
        }
    }
    let mut exporter = TraceServiceClient::connect(node.otlp_grpc()).await.expect("connect");
    let request = trace_request("checkout", Some("order-grpc-stall-1"), [8; 16], 0, 3);
    let sent = tokio::time::timeout(Duration::from_secs(10), exporter.export(request)).await.expect("answered while 270 bodies stall");
    assert!(sent.is_ok(), "an exporter was shed while others stalled: {sent:?}");
    let (status, body) = get_json(&node.api("/api/v1/correlate/order-grpc-stall-1")).await;
    assert_eq!((status, body["summary"]["total_spans"].as_u64()), (200, Some(3)));
    drop(stalled);
    node.node.shutdown().await;
}
