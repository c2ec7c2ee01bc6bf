//! Load and slow clients on the real server: requests beyond the bounded queue get 429 with
//! `Retry-After` (the accepted ones still complete), and a client too slow to send its
//! request head gets 408, both as OpenAI-style JSON errors.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::https::{Reply, TestServer, read_to_close, write_all};
use enclave::config::Limits;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_gets_429_with_retry_after_and_accepted_requests_complete() {
    let server = std::sync::Arc::new(TestServer::start(Limits {
        max_concurrent_requests: 1,
        max_queued_requests: 1,
        ..Limits::default()
    }));
    // One HTTP/2 connection, all requests sent at once: they reach the queue together.
    let sender = server.h2_sender().await;
    let mut tasks = Vec::new();
    for index in 0..8 {
        let mut sender = sender.clone();
        let model = server.model().to_owned();
        tasks.push(tokio::spawn(async move {
            let request = serde_json::json!({
                "model": model, "prompt": format!("Story number {index}:"),
                "max_tokens": 24, "ignore_eos": true, "temperature": 0,
            })
            .to_string();
            let request = hyper::Request::post("https://localhost/v1/completions")
                .body(Full::new(Bytes::from(request)))
                .expect("request");
            let response = sender.send_request(request).await.expect("response");
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            Reply {
                status,
                headers,
                body: body.to_vec(),
                peer_certificate: Vec::new(),
            }
        }));
    }
    let mut accepted = 0;
    let mut refused = 0;
    for task in tasks {
        let reply = task.await.expect("client");
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            let error = reply.expect_error(StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(error["code"], "queue_full");
            assert_eq!(reply.header("retry-after"), Some("1"));
            refused += 1;
        } else {
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{}",
                String::from_utf8_lossy(&reply.body)
            );
            assert_eq!(reply.json()["usage"]["completion_tokens"], 24);
            accepted += 1;
        }
    }
    assert!(
        refused >= 1,
        "8 requests at once on a queue of 2 must see 429s"
    );
    assert!(
        accepted >= 2,
        "the queue's capacity is served ({accepted} accepted)"
    );
    let metrics = server.metrics().await;
    assert!(
        metrics
            .contains("enclave_http_requests_total{endpoint=\"/v1/completions\",status=\"429\"}"),
        "{metrics}"
    );
    // Every place in the queue was given back.
    assert!(
        metrics.lines().any(|line| line == "enclave_queue_depth 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_gets_408() {
    let server = TestServer::start(Limits {
        header_timeout_ms: 1_500,
        ..Limits::default()
    });
    // Half a request head, then nothing.
    let mut tls = server.connect(&[b"http/1.1"]).await;
    let started = Instant::now();
    write_all(
        &mut tls,
        b"POST /v1/completions HTTP/1.1\r\nhost: localhost\r\n",
    )
    .await;
    let answer = read_to_close(&mut tls).await;
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");

    // A head in time but a body that never comes: 408 as well.
    let mut tls = server.connect(&[b"http/1.1"]).await;
    write_all(
        &mut tls,
        b"POST /v1/completions HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{",
    )
    .await;
    let answer = read_to_close(&mut tls).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A prompt client is unaffected.
    let reply = server.get("/health").await;
    assert_eq!(reply.status, StatusCode::OK);
}
