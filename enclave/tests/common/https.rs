//! A real attested server on loopback and a small HTTPS client for it: TLS 1.3 with the
//! server's certificate as the only trust anchor, HTTP/1.1 or HTTP/2 (hyper), exact bytes.

use std::sync::Arc;
use std::time::Duration;

use attestation_verifier::stream::StreamVerifier;
use attestation_verifier::{Policy, TrustAnchor, UnixMillis, VerifiedAttestation, Verifier};
use bytes::Bytes;
use enclave::config::{AttesterChoice, EnclaveConfig, Limits};
use enclave::server::onchain::OnchainRelay;
use enclave::server::{RunningServer, Server};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{SMOLLM2_SHA256, TempDir, model_path};

/// A started server and the development root it trusts (read into memory: the CA directory
/// is removed right after the start, the attester keeps its CA in memory).
pub struct TestServer {
    pub server: RunningServer,
    pub root_pem: Vec<u8>,
}

impl TestServer {
    pub fn start(limits: Limits) -> Self {
        Self::start_with(limits, None)
    }

    /// A server that signs on-chain fulfilments for `onchain_relay`.
    pub fn start_with(limits: Limits, onchain_relay: Option<OnchainRelay>) -> Self {
        let directory = TempDir::new();
        let config = EnclaveConfig {
            model: model_path(),
            model_sha256: SMOLLM2_SHA256,
            listen: "tcp:127.0.0.1:0".parse().expect("listen"),
            parent_listen: Some("tcp:127.0.0.1:0".parse().expect("parent listen")),
            attester: AttesterChoice::Dev {
                pki_dir: directory.path().join("pki"),
            },
            server_names: vec!["localhost".to_owned()],
            limits,
            onchain_relay,
        };
        let server = Server::start(&config).expect("server starts");
        let root_pem = server
            .dev_root_pem()
            .expect("root readable")
            .expect("development root");
        drop(directory);
        Self { server, root_pem }
    }

    pub fn model(&self) -> &str {
        self.server.model_id()
    }

    pub fn verifier(&self) -> Verifier {
        Verifier::new(TrustAnchor::from_pem_explicit(&self.root_pem).expect("anchor"))
    }

    /// Verifies a document under the development root.
    pub fn verify(&self, document: &[u8], policy: &Policy) -> VerifiedAttestation {
        self.verifier()
            .verify(document, policy, UnixMillis::now())
            .expect("document verifies under the development root")
    }

    fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.server.certificate_der().to_vec()))
            .expect("pinned certificate");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }

    /// A TLS connection offering `alpn`.
    pub async fn connect(&self, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let address = self.server.socket_addr().expect("tcp");
        let tcp = TcpStream::connect(address).await.expect("connect");
        self.connector(alpn)
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("TLS handshake with the pinned certificate")
    }

    /// An HTTP/2 connection on which many requests can be sent at once.
    pub async fn h2_sender(&self) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
        let tls = self.connect(&[b"h2"]).await;
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("h2 handshake");
        tokio::spawn(connection);
        sender
    }

    /// One request on a fresh connection.
    pub async fn request(
        &self,
        version: Version,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let alpn: &[&[u8]] = match version {
            Version::Http1 => &[b"http/1.1"],
            Version::Http2 => &[b"h2"],
        };
        let tls = self.connect(alpn).await;
        let peer_certificate = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .expect("a peer certificate")
            .to_vec();
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("https://localhost{path}"));
        if version == Version::Http1 {
            builder = builder.header("host", "localhost");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(Bytes::copy_from_slice(body)))
            .expect("request");
        let io = TokioIo::new(tls);
        let response = match version {
            Version::Http1 => {
                let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
                    .await
                    .expect("http1 handshake");
                tokio::spawn(connection);
                sender.send_request(request).await.expect("response")
            }
            Version::Http2 => {
                let (mut sender, connection) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .expect("h2 handshake");
                tokio::spawn(connection);
                sender.send_request(request).await.expect("response")
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = tokio::time::timeout(Duration::from_secs(120), response.into_body().collect())
            .await
            .expect("body in time")
            .expect("body")
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
            peer_certificate,
        }
    }

    /// POSTs JSON to `path` over HTTP/1.1.
    pub async fn post(&self, path: &str, body: &str) -> Reply {
        self.request(
            Version::Http1,
            "POST",
            path,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Version::Http1, "GET", path, &[], b"").await
    }

    /// One plain HTTP/1.1 request on the parent channel (docs/protocol.md §5a): status, body.
    pub async fn parent(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let address = self
            .server
            .parent_socket_addr()
            .expect("a TCP parent channel");
        let mut stream = TcpStream::connect(address)
            .await
            .expect("connect the parent channel");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: enclave\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
            .await
            .expect("the parent channel answers")
            .expect("read");
        let answer = String::from_utf8(answer).expect("UTF-8");
        let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status");
        (status, body.to_owned())
    }

    /// The enclave's metrics, from the parent channel.
    pub async fn metrics(&self) -> String {
        let (status, body) = self.parent("GET", "/metrics", "").await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Binds `operator` over the parent channel, as the operator's relayer does.
    pub async fn bind_operator(&self, operator: [u8; 20]) {
        let (status, body) = self
            .parent(
                "PUT",
                "/v1/operator",
                &format!(r#"{{"operator":"0x{}"}}"#, hex(&operator)),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http1,
    Http2,
}

/// An answer, as received.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
    pub peer_certificate: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("ASCII header"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts an OpenAI-style error with this status, returning its `error` object.
    pub fn expect_error(&self, status: StatusCode) -> serde_json::Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        let value = self.json();
        let error = value["error"].clone();
        assert!(error["message"].is_string(), "{value}");
        assert!(error["type"].is_string(), "{value}");
        assert!(
            error.get("param").is_some() && error.get("code").is_some(),
            "{value}"
        );
        error
    }
}

pub fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

pub fn hex_decode(text: &str) -> Vec<u8> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    assert!(text.len().is_multiple_of(2), "odd hex {text}");
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).expect("hex"))
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// One server-sent event with its receipt fields (docs/protocol.md §4a).
#[derive(Debug, Clone)]
pub struct SignedEvent {
    pub data: Vec<u8>,
    pub timestamp_ms: u64,
    pub signature: Vec<u8>,
    pub response_document: Option<Vec<u8>>,
}

/// Splits a stream body into events; every event must have exactly the documented fields.
pub fn parse_events(body: &[u8]) -> Vec<SignedEvent> {
    let text = std::str::from_utf8(body).expect("UTF-8 stream");
    assert!(text.ends_with("\n\n"), "stream ends with a blank line");
    text.trim_end_matches('\n')
        .split("\n\n")
        .map(|block| {
            let mut data = None;
            let mut timestamp_ms = None;
            let mut signature = None;
            let mut response_document = None;
            for line in block.split('\n') {
                let (field, value) = line.split_once(": ").expect("field: value");
                match field {
                    "data" => data = Some(value.as_bytes().to_vec()),
                    "x-attested-timestamp-ms" => {
                        timestamp_ms = Some(value.parse().expect("timestamp"));
                    }
                    "x-attested-signature" => signature = Some(hex_decode(value)),
                    "x-attested-response-document" => {
                        response_document = Some(base64_decode(value));
                    }
                    other => panic!("unexpected SSE field {other}"),
                }
            }
            SignedEvent {
                data: data.expect("data field"),
                timestamp_ms: timestamp_ms.expect("timestamp field"),
                signature: signature.expect("signature field"),
                response_document,
            }
        })
        .collect()
}

/// Checks every event of a stream against the boot document; returns the text of the
/// chunks (chat deltas or completion texts) and the final (`[DONE]`) receipt digest.
pub fn verify_stream(
    boot: &VerifiedAttestation,
    request_body: &[u8],
    events: &[SignedEvent],
) -> Result<(String, [u8; 32]), attestation_verifier::receipt::ReceiptError> {
    let mut verifier = StreamVerifier::new(boot, request_body)?;
    let mut text = String::new();
    let mut last_digest = None;
    for event in events {
        let value = verifier.accept_chunk(&event.data, event.timestamp_ms, &event.signature)?;
        let claims = attestation_verifier::receipt::ReceiptClaims {
            model_hash: SMOLLM2_SHA256,
            request_hash: sha256(request_body),
            response_hash: value,
            timestamp_ms: event.timestamp_ms,
        };
        last_digest = Some(claims.digest());
        if event.data != b"[DONE]" {
            let chunk: serde_json::Value = serde_json::from_slice(&event.data).expect("json chunk");
            if let Some(choice) = chunk["choices"].get(0) {
                text.push_str(
                    choice["delta"]["content"]
                        .as_str()
                        .or_else(|| choice["text"].as_str())
                        .unwrap_or(""),
                );
            }
        }
    }
    assert_eq!(
        events.last().map(|event| event.data.as_slice()),
        Some(&b"[DONE]"[..]),
        "a complete stream ends with [DONE]"
    );
    Ok((text, last_digest.expect("events")))
}

/// Reads whatever the server sends until it closes (raw TLS tests).
pub async fn read_to_close(tls: &mut TlsStream<TcpStream>) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), tls.read_to_end(&mut out)).await;
    out
}

pub async fn write_all(tls: &mut TlsStream<TcpStream>, bytes: &[u8]) {
    tls.write_all(bytes).await.expect("write");
    tls.flush().await.expect("flush");
}
