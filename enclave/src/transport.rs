//! The transport seam: where the enclave listens. `vsock:<port>` inside a Nitro enclave (the
//! parent instance's proxy forwards TCP to it), `tcp:<addr:port>` in development and tests.
//! The server above sees one [`Listener`] and byte streams ([`Connection`]) either way; TLS
//! runs on top, so the transport never sees plaintext.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_vsock::{VMADDR_CID_ANY, VsockAddr, VsockListener, VsockStream};

/// Where to listen, parsed from `tcp:<addr:port>` or `vsock:<port>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenAddress {
    /// A TCP socket address, e.g. `tcp:127.0.0.1:8443` or `tcp:[::1]:8443`.
    Tcp(SocketAddr),
    /// A vsock port on any CID (the enclave's own), e.g. `vsock:5005`.
    Vsock {
        /// The port.
        port: u32,
    },
}

/// Why a listen address does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenAddressError {
    /// No `tcp:` or `vsock:` prefix.
    #[error("listen address {input:?} must be tcp:<addr:port> or vsock:<port>")]
    UnknownScheme {
        /// The input.
        input: String,
    },
    /// The TCP part is not `<ip>:<port>`.
    #[error("tcp listen address {input:?} is not <ip>:<port> ({reason})")]
    InvalidTcp {
        /// The input after `tcp:`.
        input: String,
        /// The parser's reason.
        reason: String,
    },
    /// The vsock port is not a number in 1..=4294967294.
    #[error(
        "vsock port {input:?} must be a decimal number from 1 to 4294967294 (0 is reserved, 4294967295 means any)"
    )]
    InvalidVsockPort {
        /// The input after `vsock:`.
        input: String,
    },
}

impl FromStr for ListenAddress {
    type Err = ListenAddressError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = input.strip_prefix("tcp:") {
            let address =
                rest.parse::<SocketAddr>()
                    .map_err(|error| ListenAddressError::InvalidTcp {
                        input: rest.to_owned(),
                        reason: error.to_string(),
                    })?;
            return Ok(Self::Tcp(address));
        }
        if let Some(rest) = input.strip_prefix("vsock:") {
            let invalid = || ListenAddressError::InvalidVsockPort {
                input: rest.to_owned(),
            };
            // Digits only: u32::from_str would also take a leading '+'.
            if rest.is_empty() || !rest.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(invalid());
            }
            let port = rest.parse::<u32>().map_err(|_| invalid())?;
            if port == 0 || port == u32::MAX {
                return Err(invalid());
            }
            return Ok(Self::Vsock { port });
        }
        Err(ListenAddressError::UnknownScheme {
            input: input.to_owned(),
        })
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(address) => write!(f, "tcp:{address}"),
            Self::Vsock { port } => write!(f, "vsock:{port}"),
        }
    }
}

/// Why listening or accepting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The socket could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// Where.
        address: ListenAddress,
        /// The operating system's error.
        source: io::Error,
    },
    /// Accepting a connection failed.
    #[error("accepting a connection on {address} failed: {source}")]
    Accept {
        /// Where.
        address: ListenAddress,
        /// The operating system's error.
        source: io::Error,
    },
}

/// A bound listener of either kind.
#[derive(Debug)]
pub struct Listener {
    address: ListenAddress,
    inner: ListenerInner,
}

#[derive(Debug)]
enum ListenerInner {
    Tcp(TcpListener),
    Vsock(VsockListener),
}

/// Who connected: a TCP peer or a vsock peer (CID and port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerAddress {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A vsock peer.
    Vsock {
        /// The peer's context id.
        cid: u32,
        /// The peer's port.
        port: u32,
    },
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(address) => write!(f, "tcp:{address}"),
            Self::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
        }
    }
}

impl Listener {
    /// Binds `address` (inside a tokio runtime).
    ///
    /// # Errors
    /// [`TransportError::Bind`].
    pub async fn bind(address: ListenAddress) -> Result<Self, TransportError> {
        let bind_error = |source| TransportError::Bind { address, source };
        let inner = match address {
            ListenAddress::Tcp(socket_address) => ListenerInner::Tcp(
                TcpListener::bind(socket_address)
                    .await
                    .map_err(bind_error)?,
            ),
            ListenAddress::Vsock { port } => ListenerInner::Vsock(
                VsockListener::bind(VsockAddr::new(VMADDR_CID_ANY, port)).map_err(bind_error)?,
            ),
        };
        let address = match &inner {
            // Report the port actually bound (tcp:...:0 picks a free one).
            ListenerInner::Tcp(listener) => {
                ListenAddress::Tcp(listener.local_addr().map_err(bind_error)?)
            }
            ListenerInner::Vsock(_) => address,
        };
        Ok(Self { address, inner })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_address(&self) -> ListenAddress {
        self.address
    }

    /// Waits for the next connection.
    ///
    /// # Errors
    /// [`TransportError::Accept`].
    pub async fn accept(&self) -> Result<(Connection, PeerAddress), TransportError> {
        let accept_error = |source| TransportError::Accept {
            address: self.address,
            source,
        };
        match &self.inner {
            ListenerInner::Tcp(listener) => {
                let (stream, peer) = listener.accept().await.map_err(accept_error)?;
                // Small request/response exchanges: do not wait to coalesce segments.
                stream.set_nodelay(true).map_err(accept_error)?;
                Ok((Connection::Tcp(stream), PeerAddress::Tcp(peer)))
            }
            ListenerInner::Vsock(listener) => {
                let (stream, peer) = listener.accept().await.map_err(accept_error)?;
                Ok((
                    Connection::Vsock(stream),
                    PeerAddress::Vsock {
                        cid: peer.cid(),
                        port: peer.port(),
                    },
                ))
            }
        }
    }
}

/// An accepted byte stream of either kind.
#[derive(Debug)]
#[non_exhaustive]
pub enum Connection {
    /// TCP.
    Tcp(TcpStream),
    /// vsock.
    Vsock(VsockStream),
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Vsock(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Vsock(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Self::Vsock(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Vsock(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn parses_tcp_and_vsock_addresses() {
        assert_eq!(
            "tcp:127.0.0.1:8443".parse(),
            Ok(ListenAddress::Tcp("127.0.0.1:8443".parse().expect("addr")))
        );
        assert_eq!(
            "tcp:[::1]:443".parse(),
            Ok(ListenAddress::Tcp("[::1]:443".parse().expect("addr")))
        );
        assert_eq!(
            "vsock:5005".parse(),
            Ok(ListenAddress::Vsock { port: 5005 })
        );
        assert_eq!(
            "vsock:4294967294".parse(),
            Ok(ListenAddress::Vsock {
                port: 4_294_967_294
            })
        );
        for text in ["tcp:127.0.0.1:8443", "tcp:[::1]:443", "vsock:5005"] {
            let parsed: ListenAddress = text.parse().expect("parses");
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn rejects_malformed_addresses() {
        for input in [
            "",
            "127.0.0.1:80",
            "http://x",
            "unix:/tmp/s",
            "TCP:1.2.3.4:5",
        ] {
            assert!(
                matches!(
                    input.parse::<ListenAddress>(),
                    Err(ListenAddressError::UnknownScheme { .. })
                ),
                "{input}"
            );
        }
        for input in [
            "tcp:",
            "tcp:localhost:80",
            "tcp:1.2.3.4",
            "tcp:1.2.3.4:70000",
        ] {
            assert!(
                matches!(
                    input.parse::<ListenAddress>(),
                    Err(ListenAddressError::InvalidTcp { .. })
                ),
                "{input}"
            );
        }
        for input in [
            "vsock:",
            "vsock:0",
            "vsock:4294967295",
            "vsock:4294967296",
            "vsock:+5",
            "vsock:-1",
            "vsock:3:5005",
            "vsock: 5",
        ] {
            assert!(
                matches!(
                    input.parse::<ListenAddress>(),
                    Err(ListenAddressError::InvalidVsockPort { .. })
                ),
                "{input}"
            );
        }
    }

    #[tokio::test]
    async fn tcp_listener_accepts_and_carries_bytes() {
        let listener = Listener::bind("tcp:127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let ListenAddress::Tcp(bound) = listener.local_address() else {
            panic!("not tcp");
        };
        assert_ne!(bound.port(), 0);
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(bound).await.expect("connect");
            stream.write_all(b"ping").await.expect("write");
            let mut answer = [0u8; 4];
            stream.read_exact(&mut answer).await.expect("read");
            answer
        });
        let (mut connection, peer) = listener.accept().await.expect("accept");
        assert!(matches!(peer, PeerAddress::Tcp(address) if address.ip().is_loopback()));
        let mut request = [0u8; 4];
        connection.read_exact(&mut request).await.expect("read");
        assert_eq!(&request, b"ping");
        connection.write_all(b"pong").await.expect("write");
        connection.flush().await.expect("flush");
        assert_eq!(&client.await.expect("client"), b"pong");
    }

    #[tokio::test]
    async fn tcp_bind_conflict_is_a_clear_error() {
        let first = Listener::bind("tcp:127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let taken = first.local_address();
        match Listener::bind(taken).await {
            Err(error @ TransportError::Bind { .. }) => {
                assert!(error.to_string().contains(&taken.to_string()), "{error}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn vsock_listener_binds_or_fails_with_context() {
        // Hosts without a vsock transport (like CI machines) refuse the bind; a Nitro enclave
        // or a host with vsock_loopback accepts it. Either way there is no panic and the
        // result names the address.
        let address: ListenAddress = "vsock:52001".parse().expect("addr");
        match Listener::bind(address).await {
            Ok(listener) => assert_eq!(listener.local_address(), address),
            Err(error @ TransportError::Bind { .. }) => {
                assert!(error.to_string().contains("vsock:52001"), "{error}");
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
}
