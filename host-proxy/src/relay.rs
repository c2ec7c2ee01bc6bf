//! Moving bytes between a client and a backend: both directions at once with one bounded buffer
//! each (a slow reader stops the other side's reads instead of growing memory), half-close (an
//! EOF from one side shuts down the write side of the other, the opposite direction keeps
//! going), and an idle timeout. The bytes are never inspected; only their count is kept.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// When bytes last moved on a connection (either direction).
#[derive(Debug)]
struct Activity {
    start: Instant,
    last_millis: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_millis: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(millis, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_millis.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// A byte counter for one connection that also feeds a running total.
#[derive(Debug)]
struct Meter<'a> {
    connection: AtomicU64,
    total: &'a AtomicU64,
}

impl<'a> Meter<'a> {
    fn new(total: &'a AtomicU64) -> Self {
        Self {
            connection: AtomicU64::new(0),
            total,
        }
    }

    fn add(&self, bytes: usize) {
        let bytes = bytes as u64;
        self.connection.fetch_add(bytes, Ordering::Relaxed);
        self.total.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// A stream that records activity and, optionally, counts what is read and written.
#[derive(Debug)]
struct Tracked<'a, S> {
    inner: &'a mut S,
    activity: &'a Activity,
    reads: Option<&'a Meter<'a>>,
    writes: Option<&'a Meter<'a>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut *this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let read = buf.filled().len() - before;
            if read > 0 {
                this.activity.touch();
                if let Some(meter) = this.reads {
                    meter.add(read);
                }
            }
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut *this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = result
            && written > 0
        {
            this.activity.touch();
            if let Some(meter) = this.writes {
                meter.add(written);
            }
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_shutdown(cx)
    }
}

/// How a relayed connection ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum RelayEnd {
    /// Both sides finished their writes (each EOF was passed on).
    Completed,
    /// No byte moved in either direction for the idle timeout.
    IdleTimeout,
    /// A read, write or shutdown failed (often a reset by one side).
    Failed(io::Error),
}

/// What one relayed connection did.
#[derive(Debug)]
pub struct RelayReport {
    /// How it ended.
    pub end: RelayEnd,
    /// Bytes written to the backend.
    pub bytes_to_backend: u64,
    /// Bytes read from the backend.
    pub bytes_from_backend: u64,
}

/// The running byte totals a relay adds to (usually a backend's).
#[derive(Debug, Clone, Copy)]
pub struct ByteTotals<'a> {
    /// Client to backend.
    pub to_backend: &'a AtomicU64,
    /// Backend to client.
    pub from_backend: &'a AtomicU64,
}

/// Relays bytes between `client` and `backend` until both directions have ended, one side
/// fails, or nothing moves for `idle_timeout`. Each direction uses one buffer of
/// `buffer_bytes`: at most two such buffers exist per connection whatever the peers do.
pub async fn relay<C, B>(
    client: &mut C,
    backend: &mut B,
    buffer_bytes: usize,
    idle_timeout: Duration,
    totals: ByteTotals<'_>,
) -> RelayReport
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Activity::new();
    let to_backend = Meter::new(totals.to_backend);
    let from_backend = Meter::new(totals.from_backend);
    let mut client = Tracked {
        inner: client,
        activity: &activity,
        reads: None,
        writes: None,
    };
    let mut backend = Tracked {
        inner: backend,
        activity: &activity,
        reads: Some(&from_backend),
        writes: Some(&to_backend),
    };
    let end = tokio::select! {
        result = tokio::io::copy_bidirectional_with_sizes(
            &mut client,
            &mut backend,
            buffer_bytes,
            buffer_bytes,
        ) => match result {
            Ok(_) => RelayEnd::Completed,
            Err(error) => RelayEnd::Failed(error),
        },
        () = idle_watch(&activity, idle_timeout) => RelayEnd::IdleTimeout,
    };
    RelayReport {
        end,
        bytes_to_backend: to_backend.connection.load(Ordering::Relaxed),
        bytes_from_backend: from_backend.connection.load(Ordering::Relaxed),
    }
}

/// Returns once no byte has moved for `idle_timeout`.
async fn idle_watch(activity: &Activity, idle_timeout: Duration) {
    loop {
        let idle_for = activity.idle_for();
        if idle_for >= idle_timeout {
            return;
        }
        tokio::time::sleep(idle_timeout - idle_for).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn relays_both_ways_with_half_close_and_counts() {
        let (mut client_far, mut client_near) = tokio::io::duplex(1024);
        let (mut backend_near, mut backend_far) = tokio::io::duplex(1024);
        let to_total = AtomicU64::new(7);
        let from_total = AtomicU64::new(0);
        let totals = ByteTotals {
            to_backend: &to_total,
            from_backend: &from_total,
        };
        let upload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let download: Vec<u8> = (0..50_000u32).map(|i| (i % 241) as u8).collect();
        let relay_task = relay(
            &mut client_near,
            &mut backend_near,
            4096,
            Duration::from_secs(10),
            totals,
        );
        let client_side = async {
            client_far.write_all(&upload).await.expect("upload");
            client_far.shutdown().await.expect("half-close");
            let mut received = Vec::new();
            client_far
                .read_to_end(&mut received)
                .await
                .expect("download");
            received
        };
        let backend_side = async {
            let mut received = Vec::new();
            backend_far
                .read_to_end(&mut received)
                .await
                .expect("upload arrives, then EOF");
            // The client's write side is closed; this direction still works.
            backend_far.write_all(&download).await.expect("download");
            backend_far.shutdown().await.expect("close");
            received
        };
        let (report, client_got, backend_got) = tokio::join!(relay_task, client_side, backend_side);
        assert!(matches!(report.end, RelayEnd::Completed), "{report:?}");
        assert_eq!(backend_got, upload);
        assert_eq!(client_got, download);
        assert_eq!(report.bytes_to_backend, upload.len() as u64);
        assert_eq!(report.bytes_from_backend, download.len() as u64);
        assert_eq!(to_total.load(Ordering::Relaxed), 7 + upload.len() as u64);
        assert_eq!(from_total.load(Ordering::Relaxed), download.len() as u64);
    }

    #[tokio::test]
    async fn idle_connection_ends_but_a_trickle_keeps_it_open() {
        let (mut client_far, mut client_near) = tokio::io::duplex(64);
        let (mut backend_near, mut backend_far) = tokio::io::duplex(64);
        let to_total = AtomicU64::new(0);
        let from_total = AtomicU64::new(0);
        let totals = ByteTotals {
            to_backend: &to_total,
            from_backend: &from_total,
        };
        let started = Instant::now();
        let relay_task = relay(
            &mut client_near,
            &mut backend_near,
            1024,
            Duration::from_millis(300),
            totals,
        );
        // One byte every 100 ms for 900 ms keeps it alive past three idle periods.
        let trickle = async {
            for _ in 0..9 {
                client_far.write_all(b"x").await.expect("write");
                let mut byte = [0u8; 1];
                backend_far.read_exact(&mut byte).await.expect("read");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let (report, ()) = tokio::join!(relay_task, trickle);
        assert!(matches!(report.end, RelayEnd::IdleTimeout), "{report:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(1100),
            "ended after {:?}, before the trickle stopped",
            started.elapsed()
        );
        assert_eq!(report.bytes_to_backend, 9);
    }
}
