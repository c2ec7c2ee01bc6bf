//! The proxy: accept client connections, enforce the connection limit, choose a backend with
//! failover, relay, and drain on shutdown.
//!
//! Thread per core: each worker thread runs its own single-threaded event loop with its own
//! listening socket on the same address (`SO_REUSEPORT` spreads connections over them), and
//! keeps its own pre-connected backend streams. A connection is accepted, relayed and closed
//! on one thread, so no step of it waits for another thread to wake up. Only the backend pool,
//! the connection limit and the metrics are shared (atomics and short locks).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::address::BackendStream;
use crate::config::ProxyConfig;
use crate::metrics::{self, ProxyMetrics};
use crate::pool::{BackendLease, ConnectCheck, HealthCheck, Pool, check_forever, keep_warm};
use crate::relay::{ByteTotals, RelayEnd, relay};

/// Pending connections each listening socket queues before the kernel refuses more.
const LISTEN_BACKLOG: i32 = 1024;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The client listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    BindListen {
        /// Where.
        address: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
    /// The metrics listener could not be bound.
    #[error("cannot serve metrics on {address}: {source}")]
    BindMetrics {
        /// Where.
        address: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
    /// A worker thread or its event loop could not be started.
    #[error("cannot start worker thread {worker}: {source}")]
    StartWorker {
        /// Which worker.
        worker: usize,
        /// The operating system's error.
        source: io::Error,
    },
}

/// A proxy with its listeners bound, ready to [`run`](BoundProxy::run).
#[derive(Debug)]
pub struct BoundProxy {
    config: ProxyConfig,
    /// One per worker thread, all on `listen_address`.
    listeners: Vec<std::net::TcpListener>,
    listen_address: SocketAddr,
    metrics_listener: Option<(TcpListener, SocketAddr)>,
    pool: Arc<Pool>,
    metrics: Arc<ProxyMetrics>,
    health_check: Arc<dyn HealthCheck>,
}

impl BoundProxy {
    /// Binds one client listener per worker thread and, if configured, the metrics listener
    /// (port 0 picks a free port; see [`listen_address`](Self::listen_address)). Health checks
    /// are connect checks.
    pub async fn bind(config: ProxyConfig) -> Result<Self, ProxyError> {
        Self::bind_with_check(config, Arc::new(ConnectCheck)).await
    }

    /// As [`bind`](Self::bind), with another active health check.
    pub async fn bind_with_check(
        config: ProxyConfig,
        health_check: Arc<dyn HealthCheck>,
    ) -> Result<Self, ProxyError> {
        let (listeners, listen_address) =
            bind_listeners(config.listen, config.threads).map_err(|source| {
                ProxyError::BindListen {
                    address: config.listen,
                    source,
                }
            })?;
        let metrics_listener = match config.metrics {
            Some(address) => {
                let bind_error = |source| ProxyError::BindMetrics { address, source };
                let listener = TcpListener::bind(address).await.map_err(bind_error)?;
                let local = listener.local_addr().map_err(bind_error)?;
                Some((listener, local))
            }
            None => None,
        };
        let pool = Arc::new(Pool::new(&config.backends, config.threads));
        let metrics = Arc::new(ProxyMetrics::new(config.threads));
        Ok(Self {
            config,
            listeners,
            listen_address,
            metrics_listener,
            pool,
            metrics,
            health_check,
        })
    }

    /// Where clients connect.
    pub fn listen_address(&self) -> SocketAddr {
        self.listen_address
    }

    /// Where metrics are served, if anywhere.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, address)| *address)
    }

    /// Accepts and relays connections until `shutdown` completes, then stops accepting and
    /// gives open connections up to the drain timeout to finish.
    ///
    /// Worker 0 and the health checks and metrics run on the calling runtime (make it a
    /// current-thread runtime for worker 0 to be single-threaded too); every other worker gets
    /// a thread with its own current-thread runtime. Fails only if a worker cannot start.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ProxyError> {
        let Self {
            config,
            listeners,
            listen_address,
            metrics_listener,
            pool,
            metrics,
            health_check,
        } = self;
        let max_connections = config.max_connections;
        let drain_timeout = config.drain_timeout;
        let shared = Arc::new(Shared {
            slots: Arc::new(Semaphore::new(max_connections)),
            next_id: AtomicU64::new(1),
            config,
            pool,
            metrics,
        });
        let (phase, phase_watch) = watch::channel(Phase::Accepting);
        let mut listeners = listeners.into_iter();
        let first = listeners
            .next()
            .map(TcpListener::from_std)
            .transpose()
            .map_err(|source| ProxyError::StartWorker { worker: 0, source })?;

        // Everything spawned from here on ends with `background` or with `phase`, whichever
        // way this function returns.
        let mut background = JoinSet::new();
        let mut workers = Vec::new();
        for (index, listener) in listeners.enumerate() {
            match start_worker(
                index + 1,
                Arc::clone(&shared),
                listener,
                phase_watch.clone(),
            )
            .await
            {
                Ok(thread) => workers.push(thread),
                Err(error) => {
                    let _ = phase.send(Phase::Exiting);
                    join_workers(workers).await;
                    return Err(error);
                }
            }
        }
        let config = &shared.config;
        for index in 0..shared.pool.backends().len() {
            background.spawn(check_forever(
                Arc::clone(&shared.pool),
                index,
                Arc::clone(&health_check),
                config.health_interval,
                config.health_timeout,
                config.healthy_after,
                config.unhealthy_after,
            ));
        }
        if let Some((metrics_listener, address)) = metrics_listener {
            tracing::info!(%address, "serving metrics at /metrics");
            background.spawn(metrics::serve(
                metrics_listener,
                Arc::clone(&shared.metrics),
                Arc::clone(&shared.pool),
                config.max_connections,
            ));
        }
        if let Some(listener) = first {
            background.spawn(serve_worker(
                0,
                Arc::clone(&shared),
                listener,
                phase_watch.clone(),
            ));
        }
        tracing::info!(address = %listen_address, config = %config, "proxy listening");

        shutdown.await;
        let _ = phase.send(Phase::Draining);
        let slots = &shared.slots;
        tracing::info!(
            open = max_connections - slots.available_permits(),
            ?drain_timeout,
            "shutting down: no new connections, draining open ones"
        );
        let all_slots = u32::try_from(max_connections).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(drain_timeout, slots.acquire_many(all_slots))
            .await
            .is_ok();
        if drained {
            tracing::info!("all connections finished");
        } else {
            tracing::warn!(
                open = max_connections - slots.available_permits(),
                "drain timeout reached, closing the remaining connections"
            );
        }
        // Each worker's runtime closes its remaining connections as it ends.
        let _ = phase.send(Phase::Exiting);
        join_workers(workers).await;
        background.shutdown().await;
        Ok(())
    }
}

/// Binds `count` listening sockets on `address`, all sharing one port through `SO_REUSEPORT`
/// when there are several (the kernel then spreads incoming connections over them). Port 0
/// resolves to the first socket's port.
fn bind_listeners(
    address: SocketAddr,
    count: usize,
) -> io::Result<(Vec<std::net::TcpListener>, SocketAddr)> {
    let mut bound = address;
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let socket = Socket::new(
            Domain::for_address(bound),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        // As tokio's bind: a restarted proxy can listen while old connections are in TIME_WAIT.
        socket.set_reuse_address(true)?;
        if count > 1 {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&bound.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        socket.set_nonblocking(true)?;
        let listener = std::net::TcpListener::from(socket);
        bound = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok((listeners, bound))
}

/// What the workers should be doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Accepting and relaying.
    Accepting,
    /// Relaying open connections only (listeners closed).
    Draining,
    /// Stopping: open connections are closed.
    Exiting,
}

/// What every worker shares.
#[derive(Debug)]
struct Shared {
    config: ProxyConfig,
    pool: Arc<Pool>,
    metrics: Arc<ProxyMetrics>,
    /// The connection limit.
    slots: Arc<Semaphore>,
    next_id: AtomicU64,
}

/// Starts worker `worker` on a thread of its own, with a current-thread runtime, and waits
/// until it accepts.
async fn start_worker(
    worker: usize,
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    phase: watch::Receiver<Phase>,
) -> Result<std::thread::JoinHandle<()>, ProxyError> {
    let start_error = |source| ProxyError::StartWorker { worker, source };
    let (started, start_report) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("host-proxy-worker-{worker}"))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = started.send(Err(error));
                    return;
                }
            };
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => {
                        let _ = started.send(Ok(()));
                        serve_worker(worker, shared, listener, phase).await;
                    }
                    Err(error) => {
                        let _ = started.send(Err(error));
                    }
                }
            });
            // Dropping the runtime here closes the connections still open on this worker.
        })
        .map_err(start_error)?;
    match start_report.await {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(error)) => Err(start_error(error)),
        Err(_) => Err(start_error(io::Error::other(
            "the worker thread ended at start",
        ))),
    }
}

/// Waits for worker threads to end (after [`Phase::Exiting`]) without blocking the runtime.
async fn join_workers(workers: Vec<std::thread::JoinHandle<()>>) {
    if workers.is_empty() {
        return;
    }
    let joined = tokio::task::spawn_blocking(move || {
        for worker in workers {
            if worker.join().is_err() {
                tracing::error!("a worker thread panicked");
            }
        }
    })
    .await;
    if let Err(error) = joined {
        tracing::error!(%error, "cannot wait for the worker threads");
    }
}

/// One worker: keeps its pre-connected streams, accepts on its listener until draining, then
/// lets its connections finish until told to exit.
async fn serve_worker(
    worker: usize,
    shared: Arc<Shared>,
    listener: TcpListener,
    mut phase: watch::Receiver<Phase>,
) {
    let config = &shared.config;
    let mut warm = JoinSet::new();
    if config.preconnect > 0 {
        for backend in shared.pool.backends() {
            warm.spawn(keep_warm(
                Arc::clone(backend),
                worker,
                config.preconnect,
                config.preconnect_max_age,
                config.connect_timeout,
            ));
        }
    }
    loop {
        let accepted = tokio::select! {
            // A closed channel (the proxy's future dropped) also ends the worker.
            _ = phase.wait_for(|phase| *phase != Phase::Accepting) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Usually out of file descriptors: back off instead of spinning.
                shared
                    .metrics
                    .accept_errors_total
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        shared.metrics.count_accepted(worker);
        let Ok(slot) = Arc::clone(&shared.slots).try_acquire_owned() else {
            // Clean refusal: close at once (FIN), never queue unboundedly.
            shared
                .metrics
                .refused_limit_total
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "connection limit reached, closing");
            drop(stream);
            continue;
        };
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Connection {
            worker,
            shared: Arc::clone(&shared),
            _slot: slot,
        };
        let span = tracing::debug_span!("connection", id, worker, %peer);
        tokio::spawn(connection.serve(stream).instrument(span));
    }
    drop(listener);
    warm.shutdown().await;
    let _ = phase.wait_for(|phase| *phase == Phase::Exiting).await;
}

/// One accepted client connection, holding a slot of the connection limit.
struct Connection {
    /// The worker thread it runs on (whose pre-connected streams it may take).
    worker: usize,
    shared: Arc<Shared>,
    _slot: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    async fn serve(self, mut client: TcpStream) {
        self.shared.metrics.active.fetch_add(1, Ordering::Relaxed);
        let _active = ActiveGuard(&self.shared.metrics.active);
        // Handshakes and streamed tokens are small writes; never hold them back.
        if let Err(error) = client.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on the client socket");
        }
        let started = Instant::now();
        let Some((lease, mut backend)) = self.connect_with_failover().await else {
            self.shared
                .metrics
                .no_backend_total
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!("no healthy backend accepted the connection, closing it");
            return;
        };
        let chosen = lease.backend();
        chosen.connections_total.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(backend = %chosen.address(), "relaying");
        let report = relay(
            &mut client,
            &mut backend,
            self.shared.config.buffer_bytes,
            self.shared.config.idle_timeout,
            ByteTotals {
                to_backend: &chosen.bytes_to_backend_total,
                from_backend: &chosen.bytes_from_backend_total,
            },
        )
        .await;
        let outcome = match &report.end {
            RelayEnd::Completed => "completed",
            RelayEnd::IdleTimeout => {
                self.shared
                    .metrics
                    .idle_timeouts_total
                    .fetch_add(1, Ordering::Relaxed);
                "idle_timeout"
            }
            RelayEnd::Failed(_) => {
                self.shared
                    .metrics
                    .relay_errors_total
                    .fetch_add(1, Ordering::Relaxed);
                "error"
            }
        };
        let error = match &report.end {
            RelayEnd::Failed(error) => Some(error.to_string()),
            _ => None,
        };
        tracing::debug!(
            backend = %chosen.address(),
            outcome,
            error,
            bytes_to_backend = report.bytes_to_backend,
            bytes_from_backend = report.bytes_from_backend,
            duration_ms = started.elapsed().as_millis() as u64,
            "connection closed"
        );
    }

    /// Connects to the least loaded healthy backend; on failure ejects it and tries the next,
    /// until one accepts or none is left.
    async fn connect_with_failover(&self) -> Option<(BackendLease, BackendStream)> {
        let mut tried = Vec::new();
        loop {
            let lease = self.shared.pool.lease(&tried)?;
            if self.shared.config.preconnect > 0
                && let Some(stream) = lease
                    .backend()
                    .take_preconnected(self.worker, self.shared.config.preconnect_max_age)
            {
                return Some((lease, stream));
            }
            let backend = Arc::clone(lease.backend());
            let address = backend.address();
            let error =
                match tokio::time::timeout(self.shared.config.connect_timeout, address.connect())
                    .await
                {
                    Ok(Ok(stream)) => return Some((lease, stream)),
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => format!(
                        "no connection within {:?}",
                        self.shared.config.connect_timeout
                    ),
                };
            tracing::warn!(backend = %address, %error, "backend connect failed, trying the next");
            tried.push(lease.index());
            drop(lease);
            self.shared.pool.eject_after_connect_failure(&backend);
        }
    }
}

/// Decrements the active-connection gauge when the connection ends however it ends.
struct ActiveGuard<'a>(&'a AtomicU64);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_listeners_share_one_port_and_all_accept() {
        let (listeners, address) =
            bind_listeners("127.0.0.1:0".parse().expect("addr"), 3).expect("bind");
        assert_eq!(listeners.len(), 3);
        assert_ne!(address.port(), 0, "port 0 resolves");
        for listener in &listeners {
            assert_eq!(listener.local_addr().expect("addr"), address);
        }
        let clients: Vec<_> = (0..60)
            .map(|_| std::net::TcpStream::connect(address).expect("connect"))
            .collect();
        // Every connection is queued on one of the sockets (the kernel hashes the client's
        // port); with 60 connections each socket gets some.
        let mut accepted = [0usize; 3];
        let deadline = Instant::now() + Duration::from_secs(10);
        while accepted.iter().sum::<usize>() < clients.len() {
            assert!(Instant::now() < deadline, "accepted only {accepted:?}");
            for (index, listener) in listeners.iter().enumerate() {
                while listener.accept().is_ok() {
                    accepted[index] += 1;
                }
            }
        }
        assert!(
            accepted.iter().all(|&count| count > 0),
            "one socket got none: {accepted:?}"
        );
        let (single, _) = bind_listeners("127.0.0.1:0".parse().expect("addr"), 1).expect("bind");
        assert_eq!(single.len(), 1);
    }
}
