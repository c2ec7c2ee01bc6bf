//! Pre-connected backend streams (`--preconnect`): a client is relayed over a stream opened
//! ahead of it; streams are refreshed before they age out, and a stream the backend closed is
//! never handed to a client.

mod common;

use std::sync::atomic::Ordering;

use common::{Behaviour, ProxyProcess, TestBackend, connect, ping, wait_until};

async fn echo_through(proxy: &ProxyProcess, payload: &[u8]) {
    ping(&mut connect(proxy).await, payload).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_relayed_over_a_stream_opened_ahead_of_it() {
    let backend = TestBackend::start(Behaviour::Echo).await;
    // Two workers, each keeping its own two streams.
    let proxy = ProxyProcess::start(&[
        "--backend",
        &backend.backend_arg(),
        "--preconnect",
        "2",
        "--preconnect-max-age",
        "5s",
        "--threads",
        "2",
    ]);
    let warm = format!(
        "host_proxy_backend_preconnected{{backend=\"{}\"}}",
        backend.backend_arg()
    );
    let used = format!(
        "host_proxy_backend_preconnected_used_total{{backend=\"{}\"}}",
        backend.backend_arg()
    );
    proxy.wait_for_metric(&warm, 4).await;
    echo_through(&proxy, b"over a warm stream").await;
    assert_eq!(proxy.metric(&used), 1);
    // The used stream is replaced.
    proxy.wait_for_metric(&warm, 4).await;
    echo_through(&proxy, b"and again").await;
    assert_eq!(proxy.metric(&used), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_closed_streams_are_never_used() {
    let mut backend = TestBackend::start(Behaviour::Echo).await;
    let proxy = ProxyProcess::start(&[
        "--backend",
        &backend.backend_arg(),
        "--preconnect",
        "1",
        "--preconnect-max-age",
        "200ms",
        // One worker: the counts below are one worker's streams.
        "--threads",
        "1",
        // Health checks (connects too) out of the way of the count below.
        "--health-interval",
        "1h",
    ]);
    // Aged-out streams are closed and replaced while no client comes.
    wait_until("streams to be refreshed", || {
        backend.accepted.load(Ordering::SeqCst) >= 6
    })
    .await;
    wait_until("old streams to be closed", || {
        backend.open.load(Ordering::SeqCst) <= 2
    })
    .await;

    // The backend restarts: every stream the proxy holds is now closed by the other side.
    let address = backend.address;
    backend.kill().await;
    let backend = TestBackend::restart_on(address, Behaviour::Echo).await;
    for round in 0..20 {
        echo_through(&proxy, format!("after the restart {round}").as_bytes()).await;
    }
    assert!(backend.accepted.load(Ordering::SeqCst) >= 1);
}
