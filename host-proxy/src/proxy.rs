//! The proxy: accept client connections, enforce the connection limit, choose a backend with
//! failover, relay, and drain on shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::address::BackendStream;
use crate::config::ProxyConfig;
use crate::metrics::{self, ProxyMetrics};
use crate::pool::{BackendLease, ConnectCheck, HealthCheck, Pool, check_forever, keep_warm};
use crate::relay::{ByteTotals, RelayEnd, relay};

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
}

/// A proxy with its listeners bound, ready to [`run`](BoundProxy::run).
#[derive(Debug)]
pub struct BoundProxy {
    config: ProxyConfig,
    listener: TcpListener,
    listen_address: SocketAddr,
    metrics_listener: Option<(TcpListener, SocketAddr)>,
    pool: Arc<Pool>,
    metrics: Arc<ProxyMetrics>,
    health_check: Arc<dyn HealthCheck>,
}

impl BoundProxy {
    /// Binds the client listener and, if configured, the metrics listener (port 0 picks a
    /// free port; see [`listen_address`](Self::listen_address)). Health checks are
    /// connect checks.
    pub async fn bind(config: ProxyConfig) -> Result<Self, ProxyError> {
        Self::bind_with_check(config, Arc::new(ConnectCheck)).await
    }

    /// As [`bind`](Self::bind), with another active health check.
    pub async fn bind_with_check(
        config: ProxyConfig,
        health_check: Arc<dyn HealthCheck>,
    ) -> Result<Self, ProxyError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ProxyError::BindListen {
                    address: config.listen,
                    source,
                })?;
        let listen_address = listener
            .local_addr()
            .map_err(|source| ProxyError::BindListen {
                address: config.listen,
                source,
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
        let pool = Arc::new(Pool::new(&config.backends));
        Ok(Self {
            config,
            listener,
            listen_address,
            metrics_listener,
            pool,
            metrics: Arc::new(ProxyMetrics::default()),
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
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self {
            config,
            listener,
            listen_address,
            metrics_listener,
            pool,
            metrics,
            health_check,
        } = self;
        let config = Arc::new(config);
        let mut background = JoinSet::new();
        for index in 0..pool.backends().len() {
            background.spawn(check_forever(
                Arc::clone(&pool),
                index,
                Arc::clone(&health_check),
                config.health_interval,
                config.health_timeout,
                config.healthy_after,
                config.unhealthy_after,
            ));
        }
        if config.preconnect > 0 {
            for backend in pool.backends() {
                background.spawn(keep_warm(
                    Arc::clone(backend),
                    config.preconnect,
                    config.preconnect_max_age,
                    config.connect_timeout,
                ));
            }
        }
        if let Some((metrics_listener, address)) = metrics_listener {
            tracing::info!(%address, "serving metrics at /metrics");
            background.spawn(metrics::serve(
                metrics_listener,
                Arc::clone(&metrics),
                Arc::clone(&pool),
                config.max_connections,
            ));
        }
        tracing::info!(address = %listen_address, config = %config, "proxy listening");

        let slots = Arc::new(Semaphore::new(config.max_connections));
        let next_id = AtomicU64::new(1);
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    metrics.accept_errors_total.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            metrics.accepted_total.fetch_add(1, Ordering::Relaxed);
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                // Clean refusal: close at once (FIN), never queue unboundedly.
                metrics.refused_limit_total.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, "connection limit reached, closing");
                drop(stream);
                continue;
            };
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            let connection = Connection {
                config: Arc::clone(&config),
                pool: Arc::clone(&pool),
                metrics: Arc::clone(&metrics),
                _slot: slot,
            };
            let span = tracing::debug_span!("connection", id, %peer);
            tokio::spawn(connection.serve(stream).instrument(span));
        }
        drop(listener);
        tracing::info!(
            open = config.max_connections - slots.available_permits(),
            drain_timeout = ?config.drain_timeout,
            "shutting down: no new connections, draining open ones"
        );
        let all_slots = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(config.drain_timeout, slots.acquire_many(all_slots))
            .await
            .is_ok();
        if drained {
            tracing::info!("all connections finished");
        } else {
            tracing::warn!(
                open = config.max_connections - slots.available_permits(),
                "drain timeout reached, closing the remaining connections"
            );
        }
        background.shutdown().await;
    }
}

/// One accepted client connection, holding a slot of the connection limit.
struct Connection {
    config: Arc<ProxyConfig>,
    pool: Arc<Pool>,
    metrics: Arc<ProxyMetrics>,
    _slot: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    async fn serve(self, mut client: TcpStream) {
        self.metrics.active.fetch_add(1, Ordering::Relaxed);
        let _active = ActiveGuard(&self.metrics.active);
        // Handshakes and streamed tokens are small writes; never hold them back.
        if let Err(error) = client.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on the client socket");
        }
        let started = Instant::now();
        let Some((lease, mut backend)) = self.connect_with_failover().await else {
            self.metrics
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
            self.config.buffer_bytes,
            self.config.idle_timeout,
            ByteTotals {
                to_backend: &chosen.bytes_to_backend_total,
                from_backend: &chosen.bytes_from_backend_total,
            },
        )
        .await;
        let outcome = match &report.end {
            RelayEnd::Completed => "completed",
            RelayEnd::IdleTimeout => {
                self.metrics
                    .idle_timeouts_total
                    .fetch_add(1, Ordering::Relaxed);
                "idle_timeout"
            }
            RelayEnd::Failed(_) => {
                self.metrics
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
            let lease = self.pool.lease(&tried)?;
            if self.config.preconnect > 0
                && let Some(stream) = lease
                    .backend()
                    .take_preconnected(self.config.preconnect_max_age)
            {
                return Some((lease, stream));
            }
            let backend = Arc::clone(lease.backend());
            let address = backend.address();
            let error =
                match tokio::time::timeout(self.config.connect_timeout, address.connect()).await {
                    Ok(Ok(stream)) => return Some((lease, stream)),
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => format!("no connection within {:?}", self.config.connect_timeout),
                };
            tracing::warn!(backend = %address, %error, "backend connect failed, trying the next");
            tried.push(lease.index());
            drop(lease);
            self.pool.eject_after_connect_failure(&backend);
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
