//! Prometheus metrics: the proxy's counters, rendered in the text exposition format (0.0.4),
//! served at `GET /metrics` on a listener of its own (so that scraping never competes with
//! client connections for the connection limit).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::pool::Pool;

/// Counters of the proxy as a whole (per-backend counters live in the pool).
#[derive(Debug, Default)]
pub struct ProxyMetrics {
    /// Client connections accepted by the kernel and seen by the proxy, per worker thread
    /// (shows how the kernel spreads connections over them; the total is their sum).
    pub(crate) accepted_by_worker: Box<[AtomicU64]>,
    /// Connections closed at once because the connection limit was reached.
    pub(crate) refused_limit_total: AtomicU64,
    /// Connections closed because no healthy backend accepted them.
    pub(crate) no_backend_total: AtomicU64,
    /// Relayed connections closed by the idle timeout.
    pub(crate) idle_timeouts_total: AtomicU64,
    /// Relayed connections that ended with a read or write error (resets included).
    pub(crate) relay_errors_total: AtomicU64,
    /// Failed `accept` calls (e.g. out of file descriptors).
    pub(crate) accept_errors_total: AtomicU64,
    /// Client connections open now.
    pub(crate) active: AtomicU64,
}

impl ProxyMetrics {
    /// Zeroed counters for a proxy with `workers` worker threads.
    pub fn new(workers: usize) -> Self {
        Self {
            accepted_by_worker: (0..workers.max(1)).map(|_| AtomicU64::new(0)).collect(),
            ..Self::default()
        }
    }

    /// Counts a connection accepted by `worker`.
    pub(crate) fn count_accepted(&self, worker: usize) {
        if let Some(counter) = self.accepted_by_worker.get(worker) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self, pool: &Pool, max_connections: usize) -> String {
        let mut out = String::with_capacity(4096);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut single = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        single(
            "host_proxy_connections_accepted_total",
            "counter",
            "Client connections accepted.",
            self.accepted_by_worker.iter().map(load).sum(),
        );
        single(
            "host_proxy_connections_active",
            "gauge",
            "Client connections open now.",
            load(&self.active),
        );
        single(
            "host_proxy_connections_max",
            "gauge",
            "The connection limit.",
            max_connections as u64,
        );
        single(
            "host_proxy_idle_timeouts_total",
            "counter",
            "Connections closed by the idle timeout.",
            load(&self.idle_timeouts_total),
        );
        single(
            "host_proxy_relay_errors_total",
            "counter",
            "Relayed connections that ended with a read or write error.",
            load(&self.relay_errors_total),
        );
        single(
            "host_proxy_accept_errors_total",
            "counter",
            "Failed accept calls.",
            load(&self.accept_errors_total),
        );
        let _ = writeln!(
            out,
            "# HELP host_proxy_worker_connections_accepted_total Client connections accepted, by worker thread."
        );
        let _ = writeln!(
            out,
            "# TYPE host_proxy_worker_connections_accepted_total counter"
        );
        for (worker, counter) in self.accepted_by_worker.iter().enumerate() {
            let _ = writeln!(
                out,
                "host_proxy_worker_connections_accepted_total{{worker=\"{worker}\"}} {}",
                load(counter)
            );
        }
        let _ = writeln!(
            out,
            "# HELP host_proxy_connections_refused_total Client connections closed without relaying, by reason."
        );
        let _ = writeln!(out, "# TYPE host_proxy_connections_refused_total counter");
        let _ = writeln!(
            out,
            "host_proxy_connections_refused_total{{reason=\"limit\"}} {}",
            load(&self.refused_limit_total)
        );
        let _ = writeln!(
            out,
            "host_proxy_connections_refused_total{{reason=\"no_backend\"}} {}",
            load(&self.no_backend_total)
        );

        let backends = pool.backends();
        let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(usize) -> u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (index, backend) in backends.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}{{backend=\"{}\"}} {}",
                    backend.address(),
                    value(index)
                );
            }
        };
        family(
            "host_proxy_backend_up",
            "gauge",
            "1 if the backend is in the pool, 0 if it is out.",
            &|index| u64::from(backends[index].is_healthy()),
        );
        family(
            "host_proxy_backend_preconnected",
            "gauge",
            "Connections to the backend opened ahead of clients, unused now.",
            &|index| backends[index].preconnected() as u64,
        );
        family(
            "host_proxy_backend_preconnected_used_total",
            "counter",
            "Client connections relayed over a pre-connected backend stream.",
            &|index| load(&backends[index].preconnected_used_total),
        );
        family(
            "host_proxy_backend_connections_active",
            "gauge",
            "Connections open to the backend now.",
            &|index| backends[index].active_connections() as u64,
        );
        family(
            "host_proxy_backend_connections_total",
            "counter",
            "Connections relayed to the backend.",
            &|index| load(&backends[index].connections_total),
        );
        family(
            "host_proxy_backend_connect_failures_total",
            "counter",
            "Failed connects to the backend (each ejects it from the pool).",
            &|index| load(&backends[index].connect_failures_total),
        );
        family(
            "host_proxy_backend_health_checks_passed_total",
            "counter",
            "Active health checks that passed.",
            &|index| load(&backends[index].health_checks_passed_total),
        );
        family(
            "host_proxy_backend_health_checks_failed_total",
            "counter",
            "Active health checks that failed.",
            &|index| load(&backends[index].health_checks_failed_total),
        );
        family(
            "host_proxy_backend_sent_bytes_total",
            "counter",
            "Bytes written to the backend (client to enclave).",
            &|index| load(&backends[index].bytes_to_backend_total),
        );
        family(
            "host_proxy_backend_received_bytes_total",
            "counter",
            "Bytes read from the backend (enclave to client).",
            &|index| load(&backends[index].bytes_from_backend_total),
        );
        out
    }
}

/// Largest request head the metrics endpoint reads.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Scrapes served at once; more wait for a slot.
const MAX_CONCURRENT_SCRAPES: usize = 16;
/// Time a scraper has to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `GET /metrics` on `listener` forever.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<ProxyMetrics>,
    pool: Arc<Pool>,
    max_connections: usize,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_SCRAPES));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(error) = answer(stream, &metrics, &pool, max_connections).await {
                tracing::debug!(%error, "metrics request failed");
            }
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    metrics: &ProxyMetrics,
    pool: &Pool,
    max_connections: usize,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let complete = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        loop {
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&chunk[..read]);
            if head.windows(4).any(|window| window == b"\r\n\r\n") {
                return Ok(true);
            }
            if head.len() > MAX_REQUEST_HEAD {
                return Ok(false);
            }
        }
    })
    .await;
    let (status, content_type, body) = match complete {
        Ok(Ok(true)) => {
            let request_line = head.split(|&byte| byte == b'\r').next().unwrap_or_default();
            let mut parts = request_line.split(|&byte| byte == b' ');
            match (parts.next(), parts.next()) {
                (Some(b"GET"), Some(b"/metrics")) => (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    metrics.render(pool, max_connections),
                ),
                (Some(b"GET"), _) => (
                    "404 Not Found",
                    "text/plain; charset=utf-8",
                    "only /metrics is served here\n".to_owned(),
                ),
                _ => (
                    "405 Method Not Allowed",
                    "text/plain; charset=utf-8",
                    "only GET is served here\n".to_owned(),
                ),
            }
        }
        Ok(Ok(false)) => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "incomplete or oversized request head\n".to_owned(),
        ),
        Ok(Err(error)) => return Err(error),
        Err(_) => (
            "408 Request Timeout",
            "text/plain; charset=utf-8",
            "request head not received in time\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::BackendAddress;

    #[test]
    fn renders_every_family_with_backend_labels() {
        let addresses: Vec<BackendAddress> = ["tcp:127.0.0.1:9000", "vsock:16:5005"]
            .iter()
            .map(|text| text.parse().expect("addr"))
            .collect();
        let pool = Pool::new(&addresses, 1);
        pool.eject_after_connect_failure(&pool.backends()[1]);
        let _lease = pool.lease(&[]).expect("backend 0 is up");
        let metrics = ProxyMetrics::new(2);
        metrics.accepted_by_worker[0].store(12, Ordering::Relaxed);
        metrics.count_accepted(1);
        metrics.refused_limit_total.store(3, Ordering::Relaxed);
        let text = metrics.render(&pool, 100);
        for line in [
            "host_proxy_connections_accepted_total 13",
            "host_proxy_worker_connections_accepted_total{worker=\"0\"} 12",
            "host_proxy_worker_connections_accepted_total{worker=\"1\"} 1",
            "host_proxy_connections_max 100",
            "host_proxy_connections_refused_total{reason=\"limit\"} 3",
            "host_proxy_connections_refused_total{reason=\"no_backend\"} 0",
            "host_proxy_backend_up{backend=\"tcp:127.0.0.1:9000\"} 1",
            "host_proxy_backend_up{backend=\"vsock:16:5005\"} 0",
            "host_proxy_backend_connections_active{backend=\"tcp:127.0.0.1:9000\"} 1",
            "host_proxy_backend_connect_failures_total{backend=\"vsock:16:5005\"} 1",
        ] {
            assert!(
                text.lines().any(|candidate| candidate == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample line belongs to a family declared with HELP and TYPE.
        for sample in text.lines().filter(|line| !line.starts_with('#')) {
            let name = sample.split(['{', ' ']).next().expect("sample has a name");
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "no TYPE for {name}"
            );
        }
    }
}
