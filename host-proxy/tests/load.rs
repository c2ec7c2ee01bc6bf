//! Load on the real `host-proxy` process: thousands of short connections and several long
//! streams at once through two backends. Each client checks that it gets back exactly its own
//! bytes (none lost, none mixed up), the proxy's counters add up, and its memory stays bounded.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Behaviour, ProxyProcess, TestBackend, pattern};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const SHORT_CONNECTIONS: u64 = 3000;
const SHORT_CONCURRENCY: usize = 200;
const LONG_STREAMS: u64 = 6;
const LONG_STREAM_BYTES: usize = 24 * 1024 * 1024;
const BUFFER_BYTES: usize = 64 * 1024;

/// Sends `data` (half-closing after it) while reading the echo; checks it byte for byte.
async fn echo_exchange(proxy: std::net::SocketAddr, data: Vec<u8>, chunk: usize) {
    let stream = TcpStream::connect(proxy).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let expected_len = data.len();
    let upload = tokio::spawn(async move {
        for piece in data.chunks(chunk) {
            writer.write_all(piece).await.expect("send");
        }
        writer.shutdown().await.expect("half-close");
        data
    });
    let mut received = Vec::with_capacity(expected_len);
    reader.read_to_end(&mut received).await.expect("receive");
    let data = upload.await.expect("upload task");
    assert_eq!(received.len(), data.len(), "length of the echo");
    assert!(received == data, "echo is not this connection's own data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_short_connections_and_long_streams_at_once() {
    let a = TestBackend::start(Behaviour::Echo).await;
    let b = TestBackend::start(Behaviour::Echo).await;
    let buffer = BUFFER_BYTES.to_string();
    let proxy = ProxyProcess::start(&[
        "--backend",
        &a.backend_arg(),
        "--backend",
        &b.backend_arg(),
        "--max-connections",
        "1024",
        "--buffer-bytes",
        &buffer,
        // Several workers share the load (and the connection limit).
        "--threads",
        "3",
    ]);
    let address = proxy.address;
    let baseline_kib = proxy.rss_kib();

    let mut work = JoinSet::new();
    for stream in 0..LONG_STREAMS {
        work.spawn(async move {
            let data = pattern(1_000_000 + stream, LONG_STREAM_BYTES);
            echo_exchange(address, data, 50_000 + stream as usize * 7_919).await;
        });
    }
    let slots = Arc::new(Semaphore::new(SHORT_CONCURRENCY));
    for connection in 0..SHORT_CONNECTIONS {
        let slot = Arc::clone(&slots).acquire_owned().await.expect("slot");
        work.spawn(async move {
            let _slot = slot;
            // Sizes from 1 byte to ~4 KiB, every connection its own bytes.
            let len = 1 + (connection as usize * 37) % 4096;
            echo_exchange(address, pattern(connection, len), 1024).await;
        });
    }
    let finished = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(result) = work.join_next().await {
            result.expect("client task");
        }
    })
    .await;
    assert!(finished.is_ok(), "load did not finish in 300 s");

    let total = SHORT_CONNECTIONS + LONG_STREAMS;
    proxy
        .wait_for_metric("host_proxy_connections_active", 0)
        .await;
    assert_eq!(proxy.metric("host_proxy_connections_accepted_total"), total);
    for sample in [
        "host_proxy_connections_refused_total{reason=\"limit\"}",
        "host_proxy_connections_refused_total{reason=\"no_backend\"}",
        "host_proxy_relay_errors_total",
        "host_proxy_idle_timeouts_total",
    ] {
        assert_eq!(proxy.metric(sample), 0, "{sample}");
    }
    let per_backend = |backend: &TestBackend| {
        proxy.metric(&format!(
            "host_proxy_backend_connections_total{{backend=\"{}\"}}",
            backend.backend_arg()
        ))
    };
    let (on_a, on_b) = (per_backend(&a), per_backend(&b));
    assert_eq!(on_a + on_b, total);
    assert!(
        on_a > total / 4 && on_b > total / 4,
        "both backends share the load: {on_a} / {on_b}"
    );
    // And the three workers share the connections (their listeners share the port).
    let per_worker: Vec<u64> = (0..3)
        .map(|worker| {
            proxy.metric(&format!(
                "host_proxy_worker_connections_accepted_total{{worker=\"{worker}\"}}"
            ))
        })
        .collect();
    assert_eq!(per_worker.iter().sum::<u64>(), total);
    assert!(
        per_worker.iter().all(|&accepted| accepted > total / 10),
        "every worker accepts its share: {per_worker:?}"
    );

    // Memory: at most two relay buffers per open connection (at most 206 here, ~26 MiB)
    // plus the runtime. A proxy that buffered without bound would hold the 144 MiB of the
    // long streams, or grow with the 3000 connections.
    let peak_kib = proxy.peak_rss_kib();
    let growth_kib = peak_kib.saturating_sub(baseline_kib);
    eprintln!("proxy peak RSS {peak_kib} KiB, baseline {baseline_kib} KiB");
    assert!(
        growth_kib < 64 * 1024,
        "proxy memory grew by {growth_kib} KiB (peak {peak_kib} KiB)"
    );
}
