//! The backend pool: least-connections choice among healthy backends, passive ejection on a
//! failed connect, and active health checks that take backends out and bring them back.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::address::{BackendAddress, BackendStream};

/// A backend connection opened ahead of a client (see [`keep_warm`]).
#[derive(Debug)]
struct WarmConnection {
    opened: Instant,
    stream: BackendStream,
}

/// One worker's pre-connected streams to one backend. Each worker thread keeps its own: a
/// stream is registered with the event loop of the thread that opened it, and relaying it on
/// another thread would wake that thread for every read.
#[derive(Debug, Default)]
struct WarmStreams {
    /// Oldest first.
    streams: Mutex<VecDeque<WarmConnection>>,
    /// Wakes the worker's [`keep_warm`] task when a stream was taken.
    taken: Notify,
}

/// One backend and its live counters.
#[derive(Debug)]
pub struct Backend {
    address: BackendAddress,
    healthy: AtomicBool,
    active: AtomicUsize,
    checks_passed_in_row: AtomicU32,
    checks_failed_in_row: AtomicU32,
    /// Connections relayed to this backend (successful connects).
    pub(crate) connections_total: AtomicU64,
    /// Connects that failed (refused, unreachable, timed out); each one ejects the backend.
    pub(crate) connect_failures_total: AtomicU64,
    /// Active health checks that passed.
    pub(crate) health_checks_passed_total: AtomicU64,
    /// Active health checks that failed.
    pub(crate) health_checks_failed_total: AtomicU64,
    /// Bytes written to this backend (client to enclave).
    pub(crate) bytes_to_backend_total: AtomicU64,
    /// Bytes read from this backend (enclave to client).
    pub(crate) bytes_from_backend_total: AtomicU64,
    /// Client connections that got a pre-connected backend stream (no connect on their path).
    pub(crate) preconnected_used_total: AtomicU64,
    /// Pre-connected streams, one set per worker thread.
    warm: Box<[WarmStreams]>,
}

impl Backend {
    fn new(address: BackendAddress, workers: usize) -> Self {
        Self {
            address,
            // Unknown counts as up until the first check or connect says otherwise; a
            // failed connect ejects it at once and the client's connection fails over.
            healthy: AtomicBool::new(true),
            active: AtomicUsize::new(0),
            checks_passed_in_row: AtomicU32::new(0),
            checks_failed_in_row: AtomicU32::new(0),
            connections_total: AtomicU64::new(0),
            connect_failures_total: AtomicU64::new(0),
            health_checks_passed_total: AtomicU64::new(0),
            health_checks_failed_total: AtomicU64::new(0),
            bytes_to_backend_total: AtomicU64::new(0),
            bytes_from_backend_total: AtomicU64::new(0),
            preconnected_used_total: AtomicU64::new(0),
            warm: (0..workers.max(1))
                .map(|_| WarmStreams::default())
                .collect(),
        }
    }

    /// The newest stream that `worker` pre-connected less than `max_age` ago and that is still
    /// open and has not spoken (a TLS server never speaks first); stale or closed ones are
    /// dropped.
    pub fn take_preconnected(&self, worker: usize, max_age: Duration) -> Option<BackendStream> {
        let warm = self.warm.get(worker)?;
        let mut streams = warm.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let mut taken = None;
        while let Some(connection) = streams.pop_back() {
            if connection.opened.elapsed() < max_age && connection.stream.is_open_and_silent() {
                taken = Some(connection.stream);
                break;
            }
        }
        drop(streams);
        if taken.is_some() {
            self.preconnected_used_total.fetch_add(1, Ordering::Relaxed);
        }
        warm.taken.notify_one();
        taken
    }

    /// Pre-connected streams held now, all workers together.
    pub fn preconnected(&self) -> usize {
        self.warm
            .iter()
            .map(|warm| {
                warm.streams
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len()
            })
            .sum()
    }

    /// The backend's address.
    pub fn address(&self) -> BackendAddress {
        self.address
    }

    /// Whether new connections may go to this backend.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Connections open to this backend now.
    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
}

/// A connection counted against a backend's load until dropped.
#[derive(Debug)]
pub struct BackendLease {
    backend: Arc<Backend>,
    index: usize,
}

impl BackendLease {
    /// The leased backend.
    pub fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    /// Its position in the pool.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Drop for BackendLease {
    fn drop(&mut self) {
        self.backend.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The set of backends.
#[derive(Debug)]
pub struct Pool {
    backends: Vec<Arc<Backend>>,
    /// Serialises choose-and-count so that concurrent accepts see each other's choices;
    /// holds the round-robin start used to break ties between equally loaded backends.
    choice: Mutex<usize>,
}

impl Pool {
    /// A pool of these backends, all presumed up, served by `workers` worker threads (each
    /// keeps its own pre-connected streams).
    pub fn new(addresses: &[BackendAddress], workers: usize) -> Self {
        Self {
            backends: addresses
                .iter()
                .map(|address| Arc::new(Backend::new(*address, workers)))
                .collect(),
            choice: Mutex::new(0),
        }
    }

    /// The backends, in configuration order.
    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    /// Leases the healthy backend with the fewest open connections, skipping the positions in
    /// `exclude` (backends this connection already failed on). Ties rotate. `None` when no
    /// healthy backend is left.
    pub fn lease(&self, exclude: &[usize]) -> Option<BackendLease> {
        let mut rotation = self.choice.lock().unwrap_or_else(PoisonError::into_inner);
        let count = self.backends.len();
        let mut best: Option<(usize, usize)> = None;
        for offset in 0..count {
            let index = (*rotation + offset) % count;
            let backend = &self.backends[index];
            if exclude.contains(&index) || !backend.is_healthy() {
                continue;
            }
            let load = backend.active_connections();
            if best.is_none_or(|(_, best_load)| load < best_load) {
                best = Some((index, load));
            }
        }
        let (index, _) = best?;
        *rotation = (index + 1) % count;
        let backend = Arc::clone(&self.backends[index]);
        backend.active.fetch_add(1, Ordering::AcqRel);
        Some(BackendLease { backend, index })
    }

    /// Records a failed connect: the backend leaves the pool until health checks bring it
    /// back. Returns whether it was in the pool before.
    pub fn eject_after_connect_failure(&self, backend: &Backend) -> bool {
        backend
            .connect_failures_total
            .fetch_add(1, Ordering::Relaxed);
        backend.checks_passed_in_row.store(0, Ordering::Release);
        let was_healthy = backend.healthy.swap(false, Ordering::AcqRel);
        if was_healthy {
            tracing::warn!(backend = %backend.address, "backend ejected after a failed connect");
        }
        was_healthy
    }

    /// Records one active health check result and moves the backend in or out of the pool
    /// after enough results in a row. Returns the backend's health afterwards.
    pub fn record_check(
        &self,
        backend: &Backend,
        result: &Result<(), HealthCheckError>,
        healthy_after: u32,
        unhealthy_after: u32,
    ) -> bool {
        match result {
            Ok(()) => {
                backend
                    .health_checks_passed_total
                    .fetch_add(1, Ordering::Relaxed);
                backend.checks_failed_in_row.store(0, Ordering::Release);
                let passed = backend
                    .checks_passed_in_row
                    .fetch_add(1, Ordering::AcqRel)
                    .saturating_add(1);
                if passed >= healthy_after && !backend.healthy.swap(true, Ordering::AcqRel) {
                    tracing::info!(backend = %backend.address, checks_passed = passed, "backend back in the pool");
                }
            }
            Err(error) => {
                backend
                    .health_checks_failed_total
                    .fetch_add(1, Ordering::Relaxed);
                backend.checks_passed_in_row.store(0, Ordering::Release);
                let failed = backend
                    .checks_failed_in_row
                    .fetch_add(1, Ordering::AcqRel)
                    .saturating_add(1);
                if failed >= unhealthy_after && backend.healthy.swap(false, Ordering::AcqRel) {
                    tracing::warn!(backend = %backend.address, checks_failed = failed, %error, "backend left the pool");
                } else {
                    tracing::debug!(backend = %backend.address, %error, "health check failed");
                }
            }
        }
        backend.is_healthy()
    }
}

/// Why a health check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HealthCheckError {
    /// The connect was refused or failed.
    #[error("connect failed: {0}")]
    Connect(#[source] io::Error),
    /// The check did not finish in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The backend answered but the check rejected it (e.g. an attested check whose
    /// attestation document fails verification).
    #[error("rejected: {reason}")]
    Rejected {
        /// Why.
        reason: String,
    },
}

/// The future a [`HealthCheck`] returns.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), HealthCheckError>> + Send + 'a>>;

/// An active health check of one backend. The proxy bounds each call with the configured
/// health timeout.
///
/// [`ConnectCheck`] (open a TCP or vsock connection, close it) is the built-in one. The hook
/// exists for an attested check: a TLS handshake with the client library that verifies the
/// enclave's attestation document against the expected PCRs, so that an enclave that answers
/// but runs the wrong image leaves the pool. That check is not implemented in this crate yet.
pub trait HealthCheck: Send + Sync + fmt::Debug + 'static {
    /// Checks the backend once.
    fn check<'a>(&'a self, backend: &'a BackendAddress) -> CheckFuture<'a>;
}

/// The built-in check: the backend accepts a connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectCheck;

impl HealthCheck for ConnectCheck {
    fn check<'a>(&'a self, backend: &'a BackendAddress) -> CheckFuture<'a> {
        Box::pin(async move {
            let stream = backend.connect().await.map_err(HealthCheckError::Connect)?;
            // Closed at once; the enclave sees a connection that ends before a TLS handshake.
            drop(stream);
            Ok(())
        })
    }
}

/// Runs the health checks of one backend forever (the caller aborts the task to stop).
pub async fn check_forever(
    pool: Arc<Pool>,
    index: usize,
    check: Arc<dyn HealthCheck>,
    interval: Duration,
    timeout: Duration,
    healthy_after: u32,
    unhealthy_after: u32,
) {
    let backend = Arc::clone(&pool.backends()[index]);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let address = backend.address();
        let result = match tokio::time::timeout(timeout, check.check(&address)).await {
            Ok(result) => result,
            Err(_) => Err(HealthCheckError::Timeout(timeout)),
        };
        pool.record_check(&backend, &result, healthy_after, unhealthy_after);
    }
}

/// Keeps up to `count` connections to `backend` open ahead of the clients of one worker
/// thread, so that a client's connection is relayed at once instead of waiting for a backend
/// connect. Run it on that worker's event loop. Each stream is used at most once, only while
/// younger than `max_age` (keep it well below the enclave's handshake timeout, which closes
/// silent connections) and while it is still open. Nothing is kept for a backend out of the
/// pool; failed connects only pause this task (the health checks decide about the backend).
pub async fn keep_warm(
    backend: Arc<Backend>,
    worker: usize,
    count: usize,
    max_age: Duration,
    connect_timeout: Duration,
) {
    let Some(warm) = backend.warm.get(worker) else {
        return;
    };
    let pause = (max_age / 4).max(Duration::from_millis(10));
    loop {
        let kept = {
            let mut streams = warm.streams.lock().unwrap_or_else(PoisonError::into_inner);
            let max_age = if backend.is_healthy() {
                max_age
            } else {
                Duration::ZERO
            };
            streams.retain(|connection| connection.opened.elapsed() < max_age);
            streams.len()
        };
        if backend.is_healthy()
            && kept < count
            && let Ok(Ok(stream)) =
                tokio::time::timeout(connect_timeout, backend.address.connect()).await
        {
            warm.streams
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_back(WarmConnection {
                    opened: Instant::now(),
                    stream,
                });
            continue;
        }
        // Until a stream is taken, or the oldest may have aged out.
        tokio::select! {
            () = warm.taken.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(count: u16) -> Pool {
        let addresses: Vec<BackendAddress> = (1..=count)
            .map(|port| format!("tcp:127.0.0.1:{port}").parse().expect("addr"))
            .collect();
        Pool::new(&addresses, 1)
    }

    fn refused() -> Result<(), HealthCheckError> {
        Err(HealthCheckError::Connect(io::Error::from(
            io::ErrorKind::ConnectionRefused,
        )))
    }

    #[test]
    fn least_connections_with_rotating_ties() {
        let pool = pool(3);
        let leases: Vec<BackendLease> = (0..6).map(|_| pool.lease(&[]).expect("lease")).collect();
        let indices: Vec<usize> = leases.iter().map(BackendLease::index).collect();
        assert_eq!(indices, vec![0, 1, 2, 0, 1, 2]);
        for backend in pool.backends() {
            assert_eq!(backend.active_connections(), 2);
        }
        // Free both connections of backend 1: it is now the least loaded, twice.
        let mut leases = leases;
        leases.retain(|lease| lease.index() != 1);
        assert_eq!(pool.backends()[1].active_connections(), 0);
        let next: Vec<usize> = (0..2)
            .map(|_| {
                let lease = pool.lease(&[]).expect("lease");
                let index = lease.index();
                leases.push(lease);
                index
            })
            .collect();
        assert_eq!(next, vec![1, 1]);
    }

    #[test]
    fn excluded_and_unhealthy_backends_are_never_chosen() {
        let pool = pool(3);
        assert!(pool.eject_after_connect_failure(&pool.backends()[0]));
        assert!(!pool.eject_after_connect_failure(&pool.backends()[0]));
        for _ in 0..10 {
            let lease = pool.lease(&[2]).expect("backend 1 is left");
            assert_eq!(lease.index(), 1);
        }
        assert!(pool.lease(&[1, 2]).is_none());
        assert_eq!(
            pool.backends()[0]
                .connect_failures_total
                .load(Ordering::Relaxed),
            2
        );
    }

    #[test]
    fn health_thresholds_take_backends_out_and_bring_them_back() {
        let pool = pool(1);
        let backend = Arc::clone(&pool.backends()[0]);
        // Out after two failures in a row, not one.
        assert!(pool.record_check(&backend, &refused(), 2, 2));
        assert!(pool.record_check(&backend, &Ok(()), 2, 2));
        assert!(pool.record_check(&backend, &refused(), 2, 2));
        assert!(!pool.record_check(&backend, &refused(), 2, 2));
        assert!(pool.lease(&[]).is_none());
        // Back after two passes in a row; a failure in between restarts the count.
        assert!(!pool.record_check(&backend, &Ok(()), 2, 2));
        assert!(!pool.record_check(&backend, &refused(), 2, 2));
        assert!(!pool.record_check(&backend, &Ok(()), 2, 2));
        assert!(pool.record_check(&backend, &Ok(()), 2, 2));
        assert!(pool.lease(&[]).is_some());
        // A failed connect ejects at once and resets the pass count.
        pool.eject_after_connect_failure(&backend);
        assert!(!pool.record_check(&backend, &Ok(()), 2, 2));
        assert!(pool.record_check(&backend, &Ok(()), 2, 2));
        assert_eq!(
            backend.health_checks_passed_total.load(Ordering::Relaxed),
            6
        );
        assert_eq!(
            backend.health_checks_failed_total.load(Ordering::Relaxed),
            4
        );
    }
}
