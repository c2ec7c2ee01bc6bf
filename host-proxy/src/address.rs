//! Backend addresses (`tcp:<addr:port>` or `vsock:<cid>:<port>`) and the byte stream to one.
//!
//! In production every backend is an enclave reached over vsock from the parent instance; in
//! development and tests the enclaves listen on loopback TCP. The relay above sees one
//! [`BackendStream`] either way and only moves bytes.

use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};

use serde::Deserialize;
use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_vsock::{VsockAddr, VsockStream};

/// Where a backend (an enclave) listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
#[non_exhaustive]
pub enum BackendAddress {
    /// A TCP socket address, e.g. `tcp:127.0.0.1:8443` or `tcp:[::1]:8443`.
    Tcp(SocketAddr),
    /// A vsock address, e.g. `vsock:16:5005` (enclave CID 16, port 5005).
    Vsock {
        /// The enclave's context id.
        cid: u32,
        /// The port.
        port: u32,
    },
}

/// Why a backend address does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendAddressError {
    /// No `tcp:` or `vsock:` prefix.
    #[error("backend address {input:?} must be tcp:<addr:port> or vsock:<cid>:<port>")]
    UnknownScheme {
        /// The input.
        input: String,
    },
    /// The TCP part is not `<ip>:<port>`.
    #[error("tcp backend address {input:?} is not <ip>:<port> ({reason})")]
    InvalidTcp {
        /// The input after `tcp:`.
        input: String,
        /// The parser's reason.
        reason: String,
    },
    /// The TCP port is 0 (nothing can be connected there).
    #[error("tcp backend address {input:?} has port 0")]
    TcpPortZero {
        /// The input after `tcp:`.
        input: String,
    },
    /// The vsock part is not `<cid>:<port>`.
    #[error("vsock backend address {input:?} must be <cid>:<port>")]
    InvalidVsockShape {
        /// The input after `vsock:`.
        input: String,
    },
    /// The CID is not a decimal number naming a connectable context (3 to 4294967294; 0 is the
    /// hypervisor, 1 local loopback, 2 the host itself, 4294967295 means any).
    #[error(
        "vsock cid {input:?} must be a decimal number from 3 to 4294967294 (an enclave's context id)"
    )]
    InvalidVsockCid {
        /// The CID text.
        input: String,
    },
    /// The port is not a decimal number from 1 to 4294967294.
    #[error(
        "vsock port {input:?} must be a decimal number from 1 to 4294967294 (0 is reserved, 4294967295 means any)"
    )]
    InvalidVsockPort {
        /// The port text.
        input: String,
    },
}

/// Parses a decimal `u32` made of ASCII digits only (`u32::from_str` would take a leading `+`).
fn parse_decimal_u32(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl FromStr for BackendAddress {
    type Err = BackendAddressError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = input.strip_prefix("tcp:") {
            let address =
                rest.parse::<SocketAddr>()
                    .map_err(|error| BackendAddressError::InvalidTcp {
                        input: rest.to_owned(),
                        reason: error.to_string(),
                    })?;
            if address.port() == 0 {
                return Err(BackendAddressError::TcpPortZero {
                    input: rest.to_owned(),
                });
            }
            return Ok(Self::Tcp(address));
        }
        if let Some(rest) = input.strip_prefix("vsock:") {
            let (cid_text, port_text) =
                rest.split_once(':')
                    .ok_or_else(|| BackendAddressError::InvalidVsockShape {
                        input: rest.to_owned(),
                    })?;
            let cid = parse_decimal_u32(cid_text)
                .filter(|cid| (3..u32::MAX).contains(cid))
                .ok_or_else(|| BackendAddressError::InvalidVsockCid {
                    input: cid_text.to_owned(),
                })?;
            let port = parse_decimal_u32(port_text)
                .filter(|port| (1..u32::MAX).contains(port))
                .ok_or_else(|| BackendAddressError::InvalidVsockPort {
                    input: port_text.to_owned(),
                })?;
            return Ok(Self::Vsock { cid, port });
        }
        Err(BackendAddressError::UnknownScheme {
            input: input.to_owned(),
        })
    }
}

impl TryFrom<String> for BackendAddress {
    type Error = BackendAddressError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        input.parse()
    }
}

impl fmt::Display for BackendAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(address) => write!(f, "tcp:{address}"),
            Self::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
        }
    }
}

impl BackendAddress {
    /// Opens a byte stream to the backend (no timeout here; the caller bounds it).
    pub async fn connect(&self) -> io::Result<BackendStream> {
        match *self {
            Self::Tcp(address) => {
                let stream = TcpStream::connect(address).await?;
                // Small TLS records (handshakes, streamed tokens) must not wait for Nagle.
                stream.set_nodelay(true)?;
                Ok(BackendStream::Tcp(stream))
            }
            Self::Vsock { cid, port } => Ok(BackendStream::Vsock(
                VsockStream::connect(VsockAddr::new(cid, port)).await?,
            )),
        }
    }
}

/// An open byte stream to a backend.
#[derive(Debug)]
#[non_exhaustive]
pub enum BackendStream {
    /// TCP.
    Tcp(TcpStream),
    /// vsock.
    Vsock(VsockStream),
}

impl BackendStream {
    /// Whether the stream is still open and nothing has arrived on it: a non-blocking peek
    /// on the socket itself (not the runtime's cached readiness, which may not have seen a
    /// FIN yet) would block. EOF, a reset or unexpected bytes mean it must not be used.
    pub(crate) fn is_open_and_silent(&self) -> bool {
        let socket = match self {
            Self::Tcp(stream) => SockRef::from(stream),
            Self::Vsock(stream) => SockRef::from(stream),
        };
        let mut byte = [MaybeUninit::uninit(); 1];
        matches!(socket.peek(&mut byte), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
    }
}

impl AsyncRead for BackendStream {
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

impl AsyncWrite for BackendStream {
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
    use super::*;

    #[test]
    fn parses_tcp_and_vsock_backends() {
        assert_eq!(
            "tcp:127.0.0.1:8443".parse(),
            Ok(BackendAddress::Tcp("127.0.0.1:8443".parse().expect("addr")))
        );
        assert_eq!(
            "tcp:[::1]:443".parse(),
            Ok(BackendAddress::Tcp("[::1]:443".parse().expect("addr")))
        );
        assert_eq!(
            "vsock:16:5005".parse(),
            Ok(BackendAddress::Vsock {
                cid: 16,
                port: 5005
            })
        );
        assert_eq!(
            "vsock:4294967294:4294967294".parse(),
            Ok(BackendAddress::Vsock {
                cid: u32::MAX - 1,
                port: u32::MAX - 1
            })
        );
        for text in ["tcp:127.0.0.1:8443", "tcp:[::1]:443", "vsock:3:1"] {
            let parsed: BackendAddress = text.parse().expect("parses");
            assert_eq!(parsed.to_string(), text, "round trip of {text}");
        }
    }

    #[test]
    fn rejects_malformed_backends_with_the_right_reason() {
        type IsExpected = fn(&BackendAddressError) -> bool;
        let cases: &[(&str, IsExpected)] = &[
            ("127.0.0.1:80", |e| {
                matches!(e, BackendAddressError::UnknownScheme { .. })
            }),
            ("vsok:16:5005", |e| {
                matches!(e, BackendAddressError::UnknownScheme { .. })
            }),
            ("", |e| {
                matches!(e, BackendAddressError::UnknownScheme { .. })
            }),
            ("tcp:localhost:80", |e| {
                matches!(e, BackendAddressError::InvalidTcp { .. })
            }),
            ("tcp:127.0.0.1", |e| {
                matches!(e, BackendAddressError::InvalidTcp { .. })
            }),
            ("tcp:127.0.0.1:65536", |e| {
                matches!(e, BackendAddressError::InvalidTcp { .. })
            }),
            ("tcp:127.0.0.1:0", |e| {
                matches!(e, BackendAddressError::TcpPortZero { .. })
            }),
            ("vsock:5005", |e| {
                matches!(e, BackendAddressError::InvalidVsockShape { .. })
            }),
            ("vsock:", |e| {
                matches!(e, BackendAddressError::InvalidVsockShape { .. })
            }),
            ("vsock::5005", |e| {
                matches!(e, BackendAddressError::InvalidVsockCid { .. })
            }),
            ("vsock:0:5005", |e| {
                matches!(e, BackendAddressError::InvalidVsockCid { .. })
            }),
            ("vsock:1:5005", |e| {
                matches!(e, BackendAddressError::InvalidVsockCid { .. })
            }),
            ("vsock:2:5005", |e| {
                matches!(e, BackendAddressError::InvalidVsockCid { .. })
            }),
            ("vsock:4294967295:5005", |e| {
                matches!(e, BackendAddressError::InvalidVsockCid { .. })
            }),
            ("vsock:+16:5005", |e| {
                matches!(e, BackendAddressError::InvalidVsockCid { .. })
            }),
            ("vsock:16:0", |e| {
                matches!(e, BackendAddressError::InvalidVsockPort { .. })
            }),
            ("vsock:16:4294967295", |e| {
                matches!(e, BackendAddressError::InvalidVsockPort { .. })
            }),
            ("vsock:16:4294967296", |e| {
                matches!(e, BackendAddressError::InvalidVsockPort { .. })
            }),
            ("vsock:16:5005:1", |e| {
                matches!(e, BackendAddressError::InvalidVsockPort { .. })
            }),
            ("vsock:16: 5", |e| {
                matches!(e, BackendAddressError::InvalidVsockPort { .. })
            }),
            ("vsock:16:-1", |e| {
                matches!(e, BackendAddressError::InvalidVsockPort { .. })
            }),
        ];
        for (input, expected) in cases {
            let error = input
                .parse::<BackendAddress>()
                .expect_err(&format!("{input:?} must not parse"));
            assert!(
                expected(&error),
                "{input:?} gave the wrong error: {error:?}"
            );
            assert!(!error.to_string().is_empty());
        }
    }

    #[tokio::test]
    async fn vsock_connect_fails_cleanly_where_there_is_no_enclave() {
        // No enclave with this CID exists here (and hosts without vsock refuse the socket):
        // the connect must return an error, never panic or hang.
        let address: BackendAddress = "vsock:4000000000:5005".parse().expect("addr");
        let result =
            tokio::time::timeout(std::time::Duration::from_secs(10), address.connect()).await;
        match result {
            Ok(Err(_)) => {}
            Ok(Ok(_)) => panic!("connected to a vsock CID that cannot exist here"),
            Err(_) => panic!("vsock connect did not finish within 10 s"),
        }
    }
}
