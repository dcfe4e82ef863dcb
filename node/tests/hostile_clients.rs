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
