//! Shared helpers for the proxy's integration tests: the real `host-proxy` process, TCP test
//! backends that can be killed and brought back on the same port, deterministic data.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Upper bound on any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// Waits until `condition` holds, polling every 20 ms, failing after [`WAIT`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running `host-proxy` process, killed on drop.
pub struct ProxyProcess {
    child: Child,
    pub address: SocketAddr,
    pub metrics_address: SocketAddr,
}

impl ProxyProcess {
    /// Starts the built binary on free loopback ports with these extra arguments and waits
    /// for it to report readiness.
    pub fn start(extra: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_host-proxy"));
        command.args([
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--log-level",
            "warn",
        ]);
        command.args(extra);
        Self::spawn(command)
    }

    /// Starts the binary with exactly these arguments (they must make it listen).
    pub fn spawn(mut command: Command) -> Self {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("start host-proxy");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut address = None;
            let mut metrics = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("listening on ") {
                    address = rest.parse::<SocketAddr>().ok();
                } else if let Some(rest) = line.strip_prefix("metrics on ") {
                    metrics = rest.parse::<SocketAddr>().ok();
                } else if line == "ready" {
                    let _ = sender.send((address, metrics));
                }
            }
        });
        let Ok((Some(address), Some(metrics_address))) = receiver.recv_timeout(WAIT) else {
            let _ = child.kill();
            let status = child.wait();
            panic!("host-proxy did not report its addresses (exit: {status:?})");
        };
        Self {
            child,
            address,
            metrics_address,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The proxy's peak resident memory (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:")
    }

    /// The proxy's current resident memory (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// The Prometheus text (a blocking HTTP/1.1 request).
    pub fn metrics(&self) -> String {
        let (status, body) = http_get(self.metrics_address, "/metrics");
        assert_eq!(status, 200, "metrics status; body: {body}");
        body
    }

    /// One sample's value, e.g. `host_proxy_connections_refused_total{reason="limit"}`.
    pub fn metric(&self, sample: &str) -> u64 {
        let text = self.metrics();
        metric_value(&text, sample).unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
    }

    /// Polls a sample until it has `expected`, or panics after [`WAIT`].
    pub async fn wait_for_metric(&self, sample: &str, expected: u64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.metric(sample);
            if value == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{sample} stayed {value}, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM-equivalent termination and waits for the exit status.
    pub fn kill_and_wait(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A sample's value in Prometheus text.
pub fn metric_value(text: &str, sample: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(sample)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// A blocking `GET path` with `Connection: close`; returns the status and the body.
pub fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).expect("connect to metrics");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").expect("response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    (status, body.to_owned())
}

/// Deterministic bytes for one seed (xorshift64*), so that every connection can check that
/// what it gets back is its own data.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// What a test backend does with each connection.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Echo every byte back; pass on the EOF.
    Echo,
    /// Send `name` and a newline first, then echo.
    NamedEcho(String),
    /// Echo; after the client's EOF send the number of bytes received (8 bytes, big endian),
    /// then close.
    EchoThenCount,
}

/// A TCP backend in this process; `kill` closes its listener and every connection.
pub struct TestBackend {
    pub address: SocketAddr,
    task: Option<JoinHandle<()>>,
    pub accepted: Arc<AtomicUsize>,
    pub open: Arc<AtomicU64>,
}

impl TestBackend {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        Self::serve(listener, behaviour)
    }

    /// Binds again on `address` (the same port after a kill).
    pub async fn restart_on(address: SocketAddr, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind(address).await.expect("rebind backend");
        Self::serve(listener, behaviour)
    }

    fn serve(listener: TcpListener, behaviour: Behaviour) -> Self {
        let address = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let accepted = Arc::clone(&accepted);
            let open = Arc::clone(&open);
            async move {
                // Dropping the set (when this task is aborted) aborts every connection.
                let mut connections = JoinSet::new();
                loop {
                    tokio::select! {
                        accepted_stream = listener.accept() => {
                            let Ok((stream, _)) = accepted_stream else { continue };
                            accepted.fetch_add(1, Ordering::SeqCst);
                            let behaviour = behaviour.clone();
                            // Counted from the accept until the stream is dropped, also when
                            // the task is aborted (even before its first poll): `kill` waits
                            // for zero.
                            open.fetch_add(1, Ordering::SeqCst);
                            let guard = OpenGuard(Arc::clone(&open));
                            connections.spawn(async move {
                                let _guard = guard;
                                let _ = handle(stream, behaviour).await;
                            });
                        }
                        Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    }
                }
            }
        });
        Self {
            address,
            task: Some(task),
            accepted,
            open,
        }
    }

    /// `tcp:<address>` for `--backend`.
    pub fn backend_arg(&self) -> String {
        format!("tcp:{}", self.address)
    }

    /// Stops listening and drops every open connection, like a crashed enclave.
    pub async fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        // Aborting the connection tasks only schedules their cancellation: wait until every
        // stream is really closed, so that the proxy sees the FIN before the test goes on.
        let open = Arc::clone(&self.open);
        wait_until("the killed backend's connections to close", || {
            open.load(Ordering::SeqCst) == 0
        })
        .await;
    }
}

/// Decrements a backend's open-connection count when its connection future is dropped.
struct OpenGuard(Arc<AtomicU64>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn handle(mut stream: TcpStream, behaviour: Behaviour) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    if let Behaviour::NamedEcho(name) = &behaviour {
        stream.write_all(format!("{name}\n").as_bytes()).await?;
    }
    let (mut reader, mut writer) = stream.split();
    let copied = tokio::io::copy(&mut reader, &mut writer).await?;
    if let Behaviour::EchoThenCount = behaviour {
        writer.write_all(&copied.to_be_bytes()).await?;
    }
    writer.shutdown().await?;
    Ok(())
}

/// Connects to the proxy within [`WAIT`].
pub async fn connect(proxy: &ProxyProcess) -> TcpStream {
    tokio::time::timeout(WAIT, TcpStream::connect(proxy.address))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Sends `payload` and checks it comes back within [`WAIT`].
pub async fn ping(stream: &mut TcpStream, payload: &[u8]) {
    stream.write_all(payload).await.expect("send");
    let mut echoed = vec![0u8; payload.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut echoed))
        .await
        .expect("echo in time")
        .expect("echo");
    assert_eq!(echoed, payload);
}

/// Connects through the proxy to a [`Behaviour::NamedEcho`] backend: returns the backend's
/// name after checking an echo round trip, and the open stream.
pub async fn named_round_trip(proxy: SocketAddr, payload: &[u8]) -> (String, TcpStream) {
    let mut stream = tokio::time::timeout(WAIT, TcpStream::connect(proxy))
        .await
        .expect("connect in time")
        .expect("connect");
    let name = read_line(&mut stream).await;
    stream.write_all(payload).await.expect("send");
    let mut echoed = vec![0u8; payload.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut echoed))
        .await
        .expect("echo in time")
        .expect("echo");
    assert_eq!(echoed, payload, "echo through {name}");
    (name, stream)
}

/// Reads one `\n`-terminated line (without it).
pub async fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(WAIT, stream.read(&mut byte))
            .await
            .expect("line in time")
            .expect("read line");
        assert_eq!(read, 1, "connection closed before a full line: {line:?}");
        if byte[0] == b'\n' {
            return String::from_utf8(line).expect("utf-8 line");
        }
        line.push(byte[0]);
    }
}

/// Serves every connection on `listener` with `handler` and returns the first successful
/// result. The proxy's health checks open connections that close at once; their handlers
/// fail and are ignored.
pub async fn first_served<T, F, Fut>(listener: TcpListener, handler: F) -> T
where
    T: Send + 'static,
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = std::io::Result<T>> + Send + 'static,
{
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let acceptor = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let sender = sender.clone();
            let work = handler(stream);
            connections.spawn(async move {
                if let Ok(result) = work.await {
                    let _ = sender.send(result);
                }
            });
            while connections.try_join_next().is_some() {}
        }
    });
    let result = receiver.recv().await.expect("a connection was served");
    acceptor.abort();
    result
}
