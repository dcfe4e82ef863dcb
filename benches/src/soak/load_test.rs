//! The sender's bounds against a stub OTLP/HTTP server that answers every
//! request with one fixed status (port 0, no node needed).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::*;

/// Serves `response` (a whole HTTP/1.1 answer) to every request, keeping
/// connections alive; returns its `/v1/traces` URL.
async fn stub(response: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                loop {
                    // One request: headers, then content-length bytes of body.
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length: usize =
                        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
                    while buf.len() < end + 4 + length {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..end + 4 + length);
                    if conn.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}/v1/traces")
}

fn sender(url: String, retry_queue: u32, max_attempts: u32) -> Arc<Sender> {
    let layout = Layout::new(100, 2, 4).expect("valid");
    Arc::new(Sender {
        client: reqwest::Client::new(),
        url,
        layout,
        policy: RetryPolicy {
            enabled: true,
            max_attempts,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        },
        ledger: Mutex::new(Ledger::new(layout)),
        counters: Counters::default(),
        retry_slots: Arc::new(Semaphore::new(retry_queue as usize)),
        retry_queue,
    })
}

const REFUSE: &str = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n";

#[tokio::test]
async fn a_refusing_node_fills_the_bounded_retry_queue_and_the_rest_is_dropped() {
    let s = sender(stub(REFUSE).await, 3, 2);
    let ended = offer(s.clone(), 500.0, Duration::from_millis(300), 4, Duration::from_secs(20)).await;
    let c = &s.counters;
    assert!(ended, "every request ended");
    let offered = c.offered.load(Relaxed);
    assert!(offered >= 100, "open loop offered {offered}");
    assert!(c.retried.load(Relaxed) <= offered);
    assert!(c.dropped_queue_full.load(Relaxed) > 0, "the queue of 3 overflowed");
    // Every request that was sent ended in exactly one way.
    let sent = offered - c.unsent.load(Relaxed);
    assert_eq!(sent, c.dropped_queue_full.load(Relaxed) + c.dropped_gave_up.load(Relaxed));
    // Queued requests were retried once (max_attempts 2) after Retry-After.
    assert_eq!(c.dropped_gave_up.load(Relaxed), c.retried.load(Relaxed));
    assert_eq!(c.answers_429.load(Relaxed), sent + c.retried.load(Relaxed));
    assert_eq!(s.ledger.lock().expect("ledger").acked_requests, 0);
}

#[tokio::test]
async fn first_attempts_in_flight_are_bounded_and_the_excess_is_unsent() {
    // A node that never answers: every first attempt stays in flight.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/v1/traces", listener.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            conns.push(conn);
        }
    });
    let s = sender(url, 0, 1);
    let ended = offer(s.clone(), 200.0, Duration::from_millis(300), 5, Duration::from_millis(100)).await;
    assert!(!ended, "the stuck requests outlive the drain wait");
    let c = &s.counters;
    assert!(c.offered.load(Relaxed) >= 40);
    assert_eq!(c.offered.load(Relaxed) - c.unsent.load(Relaxed), 5, "exactly max_in_flight sent");
    held.abort();
}

#[tokio::test]
async fn accepted_requests_enter_the_ledger() {
    let s = sender(stub("HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n").await, 3, 2);
    assert!(offer(s.clone(), 200.0, Duration::from_millis(200), 8, Duration::from_secs(10)).await);
    let offered = s.counters.offered.load(Relaxed);
    let ledger = s.ledger.lock().expect("ledger");
    assert_eq!(ledger.acked_requests, offered - s.counters.unsent.load(Relaxed));
    assert!(ledger.acked_requests > 0);
    assert_eq!(ledger.acked_spans, ledger.acked_requests * 4);
}
