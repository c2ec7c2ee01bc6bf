//! The first request head of an HTTP/1.1 connection, read before hyper takes over, so that a
//! client too slow to send it gets a 408 JSON answer (hyper's own header timeout closes the
//! connection without one), and a stream that replays those bytes to hyper.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::errors::ApiError;

/// Bytes read ahead at most while looking for the end of the head; a longer head is left to
/// hyper, which refuses it (431).
const MAX_PEEKED_HEAD_BYTES: usize = 64 * 1024;

/// How reading the first head ended.
#[derive(Debug)]
pub(crate) enum HeadOutcome {
    /// The head (and maybe more) arrived, or the peek limit was reached: these bytes.
    Ready(Bytes),
    /// The peer closed the connection or it failed.
    Closed,
    /// The deadline passed first.
    TimedOut,
}

/// Reads until the end of the first request head (`\r\n\r\n`), the peek limit, or `deadline`.
pub(crate) async fn read_first_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    deadline: tokio::time::Instant,
) -> HeadOutcome {
    let mut buffer = BytesMut::with_capacity(4096);
    loop {
        let searched_from = buffer.len().saturating_sub(3);
        let read = tokio::time::timeout_at(deadline, stream.read_buf(&mut buffer)).await;
        match read {
            Err(_) => return HeadOutcome::TimedOut,
            Ok(Err(_) | Ok(0)) => return HeadOutcome::Closed,
            Ok(Ok(_)) => {}
        }
        if buffer[searched_from..]
            .windows(4)
            .any(|window| window == b"\r\n\r\n")
            || buffer.len() >= MAX_PEEKED_HEAD_BYTES
        {
            return HeadOutcome::Ready(buffer.freeze());
        }
    }
}

/// Answers a slow client with 408 and an OpenAI-style JSON error, then closes.
pub(crate) async fn answer_timeout<S: AsyncWrite + Unpin>(stream: &mut S, timeout: Duration) {
    let error = ApiError::request_timeout("head", timeout.as_millis() as u32);
    let body = error.body();
    let head = format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    // The client may already be gone; nothing more to do then.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.shutdown().await
    })
    .await;
}

/// A stream that first yields `prefix`, then reads from `inner`.
#[derive(Debug)]
pub(crate) struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    pub(crate) fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.prefix.has_remaining() {
            let count = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..count]);
            this.prefix.advance(count);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_head_is_replayed_before_the_rest() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\nBODY")
            .await
            .expect("write");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let HeadOutcome::Ready(head) = read_first_head(&mut server, deadline).await else {
            panic!("no head");
        };
        client.write_all(b"MORE").await.expect("write");
        drop(client);
        let mut replay = Rewind::new(head, server);
        let mut all = Vec::new();
        replay.read_to_end(&mut all).await.expect("read");
        assert_eq!(all, b"GET / HTTP/1.1\r\nhost: x\r\n\r\nBODYMORE");
    }

    #[tokio::test]
    async fn a_head_split_across_reads_is_found_and_a_slow_one_times_out() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r")
            .await
            .expect("write");
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        let outcome = tokio::spawn(async move {
            let outcome = read_first_head(&mut server, deadline).await;
            (outcome, server)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.write_all(b"\n").await.expect("write");
        let (outcome, mut server) = outcome.await.expect("task");
        assert!(matches!(outcome, HeadOutcome::Ready(head) if head.ends_with(b"\r\n\r\n")));

        client
            .write_all(b"GET / HTTP/1.1\r\n")
            .await
            .expect("write");
        let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
        assert!(matches!(
            read_first_head(&mut server, deadline).await,
            HeadOutcome::TimedOut
        ));
        drop(client);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
        assert!(matches!(
            read_first_head(&mut server, deadline).await,
            HeadOutcome::Closed
        ));
    }
}
