//! Stream handling of the real `host-proxy` process: byte-exact large transfers with
//! half-close in both directions, backpressure, idle timeout, the connection limit, metrics,
//! and configuration errors.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Behaviour, ProxyProcess, TestBackend, WAIT, connect, pattern, ping};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads until EOF or reset; true when the peer closed (either way) within [`WAIT`].
async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 64];
    matches!(
        tokio::time::timeout(WAIT, stream.read(&mut buffer)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_and_echo_are_byte_exact_and_half_close_passes_through() {
    let backend = TestBackend::start(Behaviour::EchoThenCount).await;
    let proxy = ProxyProcess::start(&["--backend", &backend.backend_arg()]);
    let data = pattern(1, 48 * 1024 * 1024 + 12_345);
    let stream = connect(&proxy).await;
    let (mut reader, mut writer) = stream.into_split();
    let upload = {
        let data = data.clone();
        tokio::spawn(async move {
            // Uneven chunks so that record boundaries never line up with the relay buffer.
            for chunk in data.chunks(100_003) {
                writer.write_all(chunk).await.expect("upload");
            }
            // Half-close: the backend must see EOF while our read side stays open.
            writer.shutdown().await.expect("shutdown write");
            writer
        })
    };
    let mut received = Vec::with_capacity(data.len() + 8);
    tokio::time::timeout(Duration::from_secs(120), reader.read_to_end(&mut received))
        .await
        .expect("transfer in time")
        .expect("download");
    let _writer = upload.await.expect("upload task");
    assert_eq!(received.len(), data.len() + 8, "echo plus the 8-byte count");
    assert!(received[..data.len()] == data[..], "echo differs");
    // The count arrives after the backend saw our EOF: the reverse direction outlived it.
    let count = u64::from_be_bytes(received[data.len()..].try_into().expect("8 bytes"));
    assert_eq!(count, data.len() as u64);
    let sample = format!(
        "host_proxy_backend_sent_bytes_total{{backend=\"{}\"}}",
        backend.backend_arg()
    );
    proxy.wait_for_metric(&sample, data.len() as u64).await;
    let sample = format!(
        "host_proxy_backend_received_bytes_total{{backend=\"{}\"}}",
        backend.backend_arg()
    );
    proxy.wait_for_metric(&sample, data.len() as u64 + 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_half_close_keeps_the_client_to_backend_direction_open() {
    // The backend sends a large body, closes its write side, and only then reads what the
    // client sends (until the client's EOF).
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let backend_address = listener.local_addr().expect("addr");
    let download = pattern(2, 40 * 1024 * 1024 + 777);
    let upload = pattern(3, 24 * 1024 * 1024 + 999);
    let backend = tokio::spawn({
        let download = download.clone();
        common::first_served(listener, move |mut stream| {
            let download = download.clone();
            async move {
                stream.write_all(&download).await?;
                stream.shutdown().await?;
                let mut received = Vec::new();
                stream.read_to_end(&mut received).await?;
                if received.is_empty() {
                    // A health check's connection (or nothing sent): not the test's client.
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                Ok(received)
            }
        })
    });
    let proxy = ProxyProcess::start(&["--backend", &format!("tcp:{backend_address}")]);
    let mut stream = connect(&proxy).await;
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), stream.read_to_end(&mut received))
        .await
        .expect("download in time")
        .expect("download");
    assert_eq!(received.len(), download.len());
    assert!(received == download, "download differs");
    // Our read side has seen EOF; the write side must still reach the backend.
    for chunk in upload.chunks(65_537) {
        stream.write_all(chunk).await.expect("upload after EOF");
    }
    stream.shutdown().await.expect("close");
    let backend_got = tokio::time::timeout(Duration::from_secs(120), backend)
        .await
        .expect("backend done in time")
        .expect("backend task");
    assert_eq!(backend_got.len(), upload.len());
    assert!(backend_got == upload, "upload differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_stops_the_backend_instead_of_filling_memory() {
    // The backend pushes as fast as it can; the client reads nothing for a while. The bytes
    // in flight must stay bounded (socket buffers plus one relay buffer), not grow with time.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let backend_address = listener.local_addr().expect("addr");
    let total: usize = 256 * 1024 * 1024;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let backend = tokio::spawn({
        let sent = std::sync::Arc::clone(&sent);
        common::first_served(listener, move |mut stream| {
            let sent = std::sync::Arc::clone(&sent);
            async move {
                let mut offset = 0u64;
                while (offset as usize) < total {
                    let chunk = pattern(offset, 1024 * 1024);
                    stream.write_all(&chunk).await?;
                    offset += chunk.len() as u64;
                    // Only the test client's connection gets this far (a health check's
                    // connection is closed long before 1 MiB fits).
                    sent.fetch_max(offset as usize, std::sync::atomic::Ordering::SeqCst);
                }
                stream.shutdown().await
            }
        })
    });
    let proxy = ProxyProcess::start(&[
        "--backend",
        &format!("tcp:{backend_address}"),
        "--buffer-bytes",
        "65536",
        // Only the start-up check: no check connection during the measurement.
        "--health-interval",
        "1h",
    ]);
    let mut stream = connect(&proxy).await;
    let rss_before = proxy.rss_kib();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let in_flight = sent.load(std::sync::atomic::Ordering::SeqCst);
    // Loopback socket buffers can hold a few MiB each way (tcp_wmem/tcp_rmem autotuning);
    // without backpressure the whole 256 MiB would be gone in well under two seconds.
    assert!(
        in_flight <= 48 * 1024 * 1024,
        "the backend could write {in_flight} bytes to a client that reads nothing"
    );
    let rss_growth = proxy.rss_kib().saturating_sub(rss_before);
    assert!(
        rss_growth < 16 * 1024,
        "proxy memory grew by {rss_growth} KiB while the client read nothing"
    );
    // Now read everything, byte-exact, in 1 MiB pieces generated the way the backend did.
    let mut offset = 0u64;
    let mut piece = vec![0u8; 1024 * 1024];
    while (offset as usize) < total {
        tokio::time::timeout(WAIT, stream.read_exact(&mut piece))
            .await
            .expect("data in time")
            .expect("read");
        assert!(
            piece == pattern(offset, piece.len()),
            "bytes at {offset} differ"
        );
        offset += piece.len() as u64;
    }
    assert!(closed_by_peer(&mut stream).await, "EOF after the body");
    backend.await.expect("backend task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_active_ones_are_not() {
    let backend = TestBackend::start(Behaviour::Echo).await;
    let proxy = ProxyProcess::start(&[
        "--backend",
        &backend.backend_arg(),
        "--idle-timeout",
        "600ms",
    ]);
    let mut idle = connect(&proxy).await;
    ping(&mut idle, b"hello").await;
    let mut busy = connect(&proxy).await;
    // The busy connection exchanges a byte every 150 ms for 2 s, well past the timeout.
    for round in 0..14u8 {
        ping(&mut busy, &[round]).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        closed_by_peer(&mut idle).await,
        "idle connection still open"
    );
    ping(&mut busy, b"still here").await;
    assert_eq!(proxy.metric("host_proxy_idle_timeouts_total"), 1);
    // Once it falls silent, it is closed too.
    assert!(
        closed_by_peer(&mut busy).await,
        "silent connection still open"
    );
    proxy
        .wait_for_metric("host_proxy_idle_timeouts_total", 2)
        .await;
    proxy
        .wait_for_metric("host_proxy_connections_active", 0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_at_once_and_counted() {
    let backend = TestBackend::start(Behaviour::Echo).await;
    let proxy = ProxyProcess::start(&[
        "--backend",
        &backend.backend_arg(),
        "--max-connections",
        "3",
    ]);
    let mut held = Vec::new();
    for index in 0..3u8 {
        let mut stream = connect(&proxy).await;
        ping(&mut stream, &[index; 10]).await;
        held.push(stream);
    }
    proxy
        .wait_for_metric("host_proxy_connections_active", 3)
        .await;
    for _ in 0..2 {
        let mut refused = connect(&proxy).await;
        // Writing may fail once the proxy has closed; either way no echo comes back.
        let _ = refused.write_all(b"anyone?").await;
        assert!(
            closed_by_peer(&mut refused).await,
            "refused connection not closed"
        );
    }
    assert_eq!(
        proxy.metric("host_proxy_connections_refused_total{reason=\"limit\"}"),
        2
    );
    assert_eq!(
        proxy.metric(&format!(
            "host_proxy_backend_connections_total{{backend=\"{}\"}}",
            backend.backend_arg()
        )),
        3
    );
    // The held connections are unaffected; freeing one makes room for a new one.
    for stream in &mut held {
        ping(stream, b"ok").await;
    }
    drop(held.pop());
    proxy
        .wait_for_metric("host_proxy_connections_active", 2)
        .await;
    let mut fresh = connect(&proxy).await;
    ping(&mut fresh, b"room again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_serves_only_get_metrics() {
    let backend = TestBackend::start(Behaviour::Echo).await;
    let proxy = ProxyProcess::start(&["--backend", &backend.backend_arg()]);
    let mut stream = connect(&proxy).await;
    ping(&mut stream, b"count me").await;
    drop(stream);
    proxy
        .wait_for_metric("host_proxy_connections_accepted_total", 1)
        .await;
    let text = proxy.metrics();
    let label = format!("{{backend=\"{}\"}}", backend.backend_arg());
    for sample in [
        format!("host_proxy_backend_up{label} 1"),
        format!("host_proxy_backend_connections_total{label} 1"),
        format!("host_proxy_backend_sent_bytes_total{label} 8"),
        "host_proxy_connections_refused_total{reason=\"no_backend\"} 0".to_owned(),
    ] {
        assert!(
            text.lines().any(|line| line == sample),
            "no {sample} in\n{text}"
        );
    }
    let (status, _) = common::http_get(proxy.metrics_address, "/");
    assert_eq!(status, 404);
    let mut raw = std::net::TcpStream::connect(proxy.metrics_address).expect("connect");
    std::io::Write::write_all(&mut raw, b"POST /metrics HTTP/1.1\r\n\r\n").expect("send");
    let mut response = String::new();
    std::io::Read::read_to_string(&mut raw, &mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 405"), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_backends_down_closes_the_client_and_counts_it() {
    // A port that was free a moment ago: nothing listens there.
    let dead = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead_address = dead.local_addr().expect("addr");
    drop(dead);
    let proxy = ProxyProcess::start(&["--backend", &format!("tcp:{dead_address}")]);
    let mut stream = connect(&proxy).await;
    assert!(closed_by_peer(&mut stream).await);
    proxy
        .wait_for_metric(
            "host_proxy_connections_refused_total{reason=\"no_backend\"}",
            1,
        )
        .await;
    assert_eq!(
        proxy.metric(&format!(
            "host_proxy_backend_up{{backend=\"tcp:{dead_address}\"}}"
        )),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_file_works_and_the_command_line_overrides_it() {
    let backend = TestBackend::start(Behaviour::Echo).await;
    let directory = testkit::TempDir::new("host-proxy-config");
    let path = directory.path().join("proxy.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\nbackends = [\"{}\"]\n\
             max_connections = 1\nidle_timeout = \"30s\"\nlog_format = \"json\"\n",
            backend.backend_arg()
        ),
    )
    .expect("write config");
    let mut command = Command::new(env!("CARGO_BIN_EXE_host-proxy"));
    command
        .arg("--config")
        .arg(&path)
        .args(["--max-connections", "2", "--log-level", "warn"]);
    let proxy = ProxyProcess::spawn(command);
    assert_eq!(proxy.metric("host_proxy_connections_max"), 2);
    let mut stream = connect(&proxy).await;
    ping(&mut stream, b"configured").await;
}

fn run_cli(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_host-proxy"))
        .args(args)
        .output()
        .expect("run host-proxy");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_command_lines_exit_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9000"],
            "must be tcp:<addr:port> or vsock:<cid>:<port>",
        ),
        (
            &["--listen", "127.0.0.1:0", "--backend", "vsock:2:5005"],
            "vsock cid",
        ),
        (&["--listen", "127.0.0.1:0"], "no backend"),
        (&["--backend", "tcp:127.0.0.1:9000"], "no listen address"),
        (
            &[
                "--listen",
                "127.0.0.1:0",
                "--backend",
                "tcp:127.0.0.1:9000",
                "--idle-timeout",
                "5",
            ],
            "ms, s, m or h",
        ),
        (
            &[
                "--listen",
                "127.0.0.1:0",
                "--backend",
                "tcp:127.0.0.1:9000",
                "--backend",
                "tcp:127.0.0.1:9000",
            ],
            "more than once",
        ),
        (
            &[
                "--listen",
                "127.0.0.1:0",
                "--backend",
                "tcp:127.0.0.1:9000",
                "--config",
                "/nonexistent/host-proxy.toml",
            ],
            "cannot read configuration file",
        ),
        (
            &[
                "--listen",
                "127.0.0.1:0",
                "--backend",
                "tcp:127.0.0.1:9000",
                "--threads",
                "0",
            ],
            "threads must be greater than zero",
        ),
    ];
    for (args, expected) in cases {
        let (code, stderr) = run_cli(args);
        assert_eq!(code, Some(2), "{args:?} must exit 2; stderr: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
    }
    // A listen address that cannot be bound is a runtime failure, not a usage error.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_address = taken.local_addr().expect("addr").to_string();
    let (code, stderr) = run_cli(&[
        "--listen",
        &taken_address,
        "--backend",
        "tcp:127.0.0.1:9000",
    ]);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(stderr.contains("cannot listen"), "{stderr}");
}

#[test]
fn a_port_in_use_is_refused_whatever_the_thread_count() {
    // Several workers share their port through SO_REUSEPORT; a socket that did not opt in
    // (here, another program's listener) still keeps the port to itself.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("addr").to_string();
    for threads in ["1", "3"] {
        let output = Command::new(env!("CARGO_BIN_EXE_host-proxy"))
            .args([
                "--listen",
                &address,
                "--backend",
                "tcp:127.0.0.1:9000",
                "--threads",
                threads,
            ])
            .output()
            .expect("run host-proxy");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{threads} threads: started anyway"
        );
        assert!(
            stderr.contains(&format!("cannot listen on {address}")),
            "{threads} threads: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_accepting_and_lets_open_connections_finish() {
    let backend = TestBackend::start(Behaviour::Echo).await;
    // Several workers, and enough connections that some land on each (their listeners share
    // the port; the kernel spreads connections by address hash).
    let mut proxy = ProxyProcess::start(&[
        "--backend",
        &backend.backend_arg(),
        "--drain-timeout",
        "20s",
        "--threads",
        "4",
    ]);
    let mut open = Vec::new();
    for index in 0..8 {
        let mut stream = connect(&proxy).await;
        ping(&mut stream, format!("before {index}").as_bytes()).await;
        open.push(stream);
    }
    let status = Command::new("kill")
        .args(["-TERM", &proxy.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    // New connections are refused once the listener is closed.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        // Until the signal is handled, connections are still accepted (and relayed).
        if TcpStream::connect(proxy.address).await.is_err() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "listener still open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The open connections keep working during the drain, and the proxy exits once they end.
    for (index, stream) in open.iter_mut().enumerate() {
        ping(stream, format!("during drain {index}").as_bytes()).await;
    }
    let mut last = open.pop().expect("a connection");
    drop(open);
    ping(&mut last, b"the last one still works").await;
    assert!(
        proxy.child_mut().try_wait().expect("wait").is_none(),
        "exited while a connection was open"
    );
    drop(last);
    let deadline = std::time::Instant::now() + WAIT;
    let exit = loop {
        if let Some(exit) = proxy.child_mut().try_wait().expect("wait") {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "proxy did not exit after the drain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");
}
