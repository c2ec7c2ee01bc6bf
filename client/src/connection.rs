//! The attested connection (feature `net`).
//!
//! 1. TLS 1.3 to the enclave. Its certificate is self-signed, so it is accepted only
//!    provisionally: the handshake signature is still checked against the certificate's key,
//!    so the peer holds that key, but nothing is trusted yet.
//! 2. On that same connection, before any prompt: `GET /v1/attestation?nonce=<32 fresh random
//!    bytes>`; the document must verify under the caller's [`ClientPolicy`] (root, image,
//!    model, age, this nonce) and its user_data must bind this connection's certificate key.
//!    Otherwise the connection is dropped and [`AttestedConnection::connect`] fails: no
//!    request body ever leaves the client on an unverified connection.
//! 3. Chat on the verified connection; every answer is returned only after its receipt (or
//!    every stream event) verified against the attested key and the exact bytes. After any
//!    failure the connection refuses further use.

use std::sync::Arc;
use std::time::Duration;

use attestation_verifier::binding::BindingError;
use attestation_verifier::receipt::{VerifiedReceipt, address_hex};
use attestation_verifier::{MAX_DOCUMENT_BYTES, UnixMillis, VerifiedAttestation};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use crate::evidence::{EvidenceBundle, EvidenceParts};
use crate::exchange::{
    ExchangeError, StreamCheck, VerifyTime, check_answer_document, check_response_document,
    verify_live_completion,
};
use crate::headers::{self, CompletionHeaders, HeaderError, StreamHeaders};
use crate::policy::{ClientPolicy, PolicyError, TrustedEnclave};
use crate::sse::SseDecoder;

/// The largest non-streamed response body read.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// The attestation endpoint.
pub use attestation_verifier::protocol::ATTESTATION_PATH;
/// The chat endpoint.
pub use attestation_verifier::protocol::CHAT_COMPLETIONS_PATH as CHAT_PATH;

/// Why a connection or an answer was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `https://host:port`.
    #[error("invalid enclave URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The policy cannot be used (e.g. no image pinned under the AWS root).
    #[error("{0}")]
    Policy(PolicyError),
    /// TCP connection failed.
    #[error("cannot connect to {address}: {reason}")]
    Connect {
        /// host:port.
        address: String,
        /// The system's reason.
        reason: String,
    },
    /// The TLS handshake or a TLS record failed (tampered or truncated traffic included).
    #[error("TLS with the enclave failed: {reason}")]
    Tls {
        /// The reason.
        reason: String,
    },
    /// The peer presented no certificate.
    #[error("the server presented no TLS certificate")]
    NoPeerCertificate,
    /// The peer's certificate is not X.509.
    #[error("the server's TLS certificate cannot be parsed: {reason}")]
    BadPeerCertificate {
        /// The parser's reason.
        reason: String,
    },
    /// A step took too long.
    #[error("timed out after {seconds} s while {what}")]
    Timeout {
        /// What the client was doing.
        what: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// HTTP failed (connection closed, malformed response...).
    #[error("HTTP exchange with the enclave failed while {what}: {reason}")]
    Http {
        /// What the client was doing.
        what: &'static str,
        /// The reason.
        reason: String,
    },
    /// The connection died before any byte of the response arrived (the enclave or the proxy
    /// went away): nothing was answered, so the request may be sent again on a new attested
    /// connection, which [`AttestedConnection`]'s requests do once by themselves.
    #[error("the connection to the enclave was lost before any response while {what}: {reason}")]
    ConnectionLost {
        /// What the client was doing.
        what: &'static str,
        /// The reason.
        reason: String,
    },
    /// The enclave answered with an error status.
    #[error("the enclave answered {status} while {what}: {message}")]
    Status {
        /// What the client was doing.
        what: &'static str,
        /// The HTTP status.
        status: u16,
        /// The error message from the body.
        message: String,
    },
    /// A response exceeded its size limit.
    #[error("the response exceeded {limit} bytes while {what}")]
    TooLarge {
        /// What the client was doing.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The attestation document fails the policy: the server is not trusted.
    #[error("the enclave is not trusted: {0}")]
    Attestation(PolicyError),
    /// The document does not bind this connection's TLS key: someone else terminates TLS.
    #[error(
        "the TLS connection is not the attested enclave's: {0} (a machine in the middle terminates TLS)"
    )]
    TlsKeyNotAttested(BindingError),
    /// The answer fails verification.
    #[error("the answer is not verified: {0}")]
    Answer(#[from] ExchangeError),
    /// The connection failed earlier and is not used again.
    #[error("this connection failed verification earlier and is closed")]
    Closed,
}

/// Where and how long to try.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Limit for TCP, TLS and the attestation exchange together.
    pub connect_timeout: Duration,
    /// Limit for a non-streamed answer, and for the gap between two stream events.
    pub answer_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            answer_timeout: Duration::from_secs(300),
        }
    }
}

/// A chat request.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    /// The model id; when None, the id that `/v1/models` lists with the attested hash.
    pub model: Option<String>,
    /// An optional system message.
    pub system: Option<String>,
    /// The user's prompt.
    pub prompt: String,
    /// `max_tokens`.
    pub max_tokens: Option<u32>,
    /// `temperature` (0 = greedy, reproducible by anyone; the server's default when None).
    pub temperature: Option<f32>,
    /// `seed` for reproducible sampling.
    pub seed: Option<u64>,
    /// Ask for a per-response attestation document binding the receipt (a fresh NSM
    /// document with a new nonce), kept in the evidence.
    pub response_document: bool,
}

/// A verified answer.
#[derive(Debug, Clone)]
pub struct VerifiedAnswer {
    /// The answer text.
    pub answer: String,
    /// The verified receipt.
    pub receipt: VerifiedReceipt,
    /// The per-response document, verified, when requested.
    pub response_document: Option<VerifiedAttestation>,
    /// How many signed events the stream had (None when not streamed).
    pub stream_events: Option<usize>,
    /// Everything needed to verify the answer offline.
    pub evidence: EvidenceBundle,
}

/// A JSON answer of any receipt-bearing endpoint (e.g. `POST /v1/onchain/fulfillments`),
/// returned only once its receipt verified against the exact bytes.
#[derive(Debug, Clone)]
pub struct VerifiedJson {
    /// The exact response body.
    pub body: Vec<u8>,
    /// The verified receipt.
    pub receipt: VerifiedReceipt,
}

/// An attested connection to one enclave.
#[derive(Debug)]
pub struct AttestedConnection {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
    url: String,
    authority: String,
    policy: ClientPolicy,
    options: ConnectOptions,
    enclave: TrustedEnclave,
    document: Vec<u8>,
    nonce: [u8; 32],
    tls_spki_sha256: [u8; 32],
    model_id: Option<String>,
    closed: bool,
    reconnections: u32,
}

impl Drop for AttestedConnection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Accepts the server's certificate provisionally (the attestation document decides), while
/// still requiring the handshake to be signed by that certificate's key.
#[derive(Debug)]
struct ProvisionalCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ProvisionalCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Provisional: `AttestedConnection::connect` checks the attested SPKI hash against
        // this very certificate before the connection is used for anything but attestation.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The configuration offers TLS 1.3 only; refuse rather than trust.
        Err(rustls::Error::General(
            "TLS 1.2 is not offered; the enclave speaks TLS 1.3".to_owned(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `https://host:port` → (host, port). A path other than `/` is refused: the client speaks
/// to the API's fixed paths.
fn parse_url(url: &str) -> Result<(String, u16), ClientError> {
    let invalid = |reason: &str| ClientError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| invalid("must start with https:// (TLS ends inside the enclave)"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err(invalid(
            "expected https://host:port with no path, query or user",
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, port) = bracketed
            .split_once("]:")
            .ok_or_else(|| invalid("expected [IPv6]:port"))?;
        (host, port)
    } else {
        authority
            .rsplit_once(':')
            .ok_or_else(|| invalid("the port is required"))?
    };
    if host.is_empty() {
        return Err(invalid("the host is empty"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| invalid("the port must be 1..=65535"))?;
    Ok((host.to_owned(), port))
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = ProvisionalCertificate {
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| ClientError::Tls {
            reason: error.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn spki_of(certificate: &[u8]) -> Result<Vec<u8>, ClientError> {
    let (rest, parsed) = x509_parser::parse_x509_certificate(certificate).map_err(|error| {
        ClientError::BadPeerCertificate {
            reason: error.to_string(),
        }
    })?;
    if !rest.is_empty() {
        return Err(ClientError::BadPeerCertificate {
            reason: "bytes after the certificate".to_owned(),
        });
    }
    Ok(parsed.tbs_certificate.subject_pki.raw.to_vec())
}

fn random_nonce() -> Result<[u8; 32], ClientError> {
    let mut nonce = [0u8; 32];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| ClientError::Tls {
        reason: "the system random generator failed".to_owned(),
    })?;
    Ok(nonce)
}

async fn with_timeout<T>(
    limit: Duration,
    what: &'static str,
    future: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| ClientError::Timeout {
            what,
            seconds: limit.as_secs(),
        })?
}

/// [`ClientError::ConnectionLost`] for a connection that closed, reset or was cancelled before
/// a response head arrived; [`ClientError::Http`] for anything else: a head hyper could not
/// parse, a misuse, or bytes that arrived but do not decrypt (tampering is not a lost
/// connection, and is never retried).
fn lost_or_http(what: &'static str) -> impl Fn(hyper::Error) -> ClientError {
    move |error| {
        let lost = error.is_incomplete_message()
            || error.is_canceled()
            || error.is_closed()
            || io_error_kind(&error).is_some_and(|kind| {
                matches!(
                    kind,
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::NotConnected
                )
            });
        match http_error(what)(error) {
            ClientError::Http { what, reason } if lost => {
                ClientError::ConnectionLost { what, reason }
            }
            other => other,
        }
    }
}

/// The kind of the I/O error under a hyper error, if that is what it is.
fn io_error_kind(error: &hyper::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = inner.source();
    }
    None
}

fn http_error(what: &'static str) -> impl Fn(hyper::Error) -> ClientError {
    move |error| {
        // A TLS failure (bad MAC, truncation) surfaces as an I/O error inside hyper's.
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(inner) = source {
            reason = format!("{reason}: {inner}");
            source = inner.source();
        }
        ClientError::Http { what, reason }
    }
}

/// Reads a whole body, at most `limit` bytes.
async fn read_body(
    mut body: Incoming,
    limit: usize,
    what: &'static str,
) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(http_error(what))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(ClientError::TooLarge { what, limit });
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// A request as the client sends it.
type OutgoingRequest = Request<Full<Bytes>>;

/// `Ok` for 200; otherwise the enclave's error ([`status_error`]).
fn require_ok(status: StatusCode, what: &'static str, body: &[u8]) -> Result<(), ClientError> {
    if status == StatusCode::OK {
        return Ok(());
    }
    Err(status_error(status, what, body))
}

/// The enclave's error answer, with the OpenAI-style message of `body`.
fn status_error(status: StatusCode, what: &'static str, body: &[u8]) -> ClientError {
    ClientError::Status {
        what,
        status: status.as_u16(),
        message: error_message(body),
    }
}

/// The OpenAI-style error message of an error body, or its first bytes.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| {
            value
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

impl AttestedConnection {
    /// Connects to `url` (`https://host:port`) and verifies the enclave under `policy` (see the
    /// module docs). Nothing but the attestation request is sent before it verifies.
    ///
    /// # Errors
    /// The first failed step, as a [`ClientError`].
    pub async fn connect(
        url: &str,
        policy: ClientPolicy,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        let (host, port) = parse_url(url)?;
        policy.check_image_pinned().map_err(ClientError::Policy)?;
        let limit = options.connect_timeout;
        with_timeout(limit, "connecting and verifying the enclave", async move {
            Self::connect_inner(url, host, port, policy, options).await
        })
        .await
    }

    async fn connect_inner(
        url: &str,
        host: String,
        port: u16,
        policy: ClientPolicy,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|error| ClientError::Connect {
                address: authority.clone(),
                reason: error.to_string(),
            })?;
        // Nagle would hold the small attestation request back.
        let _ = tcp.set_nodelay(true);
        let server_name =
            ServerName::try_from(host.clone()).map_err(|error| ClientError::InvalidUrl {
                url: authority.clone(),
                reason: error.to_string(),
            })?;
        let tls = TlsConnector::from(tls_config()?)
            .connect(server_name, tcp)
            .await
            .map_err(|error| ClientError::Tls {
                reason: error.to_string(),
            })?;
        let certificate = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certificates| certificates.first())
            .ok_or(ClientError::NoPeerCertificate)?
            .to_vec();
        let spki = spki_of(&certificate)?;

        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(http_error("starting HTTP"))?;
        let driver = tokio::spawn(async move {
            // Errors surface through the request that hits them.
            let _ = connection.await;
        });

        let nonce = random_nonce()?;
        let request = Request::get(format!("{ATTESTATION_PATH}?nonce={}", hex::encode(nonce)))
            .header(hyper::header::HOST, &authority)
            .body(Full::new(Bytes::new()))
            .map_err(|error| ClientError::Http {
                what: "building the attestation request",
                reason: error.to_string(),
            })?;
        let what = "fetching the attestation document";
        let response = sender
            .send_request(request)
            .await
            .map_err(http_error(what))?;
        let status = response.status();
        let body = read_body(response.into_body(), MAX_DOCUMENT_BYTES, what).await?;
        if let Err(error) = require_ok(status, what, &body) {
            driver.abort();
            return Err(error);
        }
        let verification = policy
            .verify_boot_document(&body, Some(&nonce), UnixMillis::now(), true)
            .map_err(ClientError::Attestation)
            .and_then(|enclave| {
                enclave
                    .binding
                    .check_tls_spki(&spki)
                    .map_err(ClientError::TlsKeyNotAttested)?;
                Ok(enclave)
            });
        let enclave = match verification {
            Ok(enclave) => enclave,
            Err(error) => {
                driver.abort();
                return Err(error);
            }
        };
        Ok(Self {
            sender,
            driver,
            url: url.to_owned(),
            authority,
            policy,
            options,
            tls_spki_sha256: enclave.binding.tls_spki_sha256,
            enclave,
            document: body,
            nonce,
            model_id: None,
            closed: false,
            reconnections: 0,
        })
    }

    /// The verified enclave (document, binding, receipt key).
    pub fn enclave(&self) -> &TrustedEnclave {
        &self.enclave
    }

    /// The raw attestation document (COSE_Sign1) the enclave presented on this connection, as
    /// verified: what an on-chain verifier (`NitroRegistrar`) is given to check it again.
    pub fn document(&self) -> &[u8] {
        &self.document
    }

    /// The policy the enclave was verified under.
    pub fn policy(&self) -> &ClientPolicy {
        &self.policy
    }

    /// SHA-256 of this connection's TLS SubjectPublicKeyInfo (bound by the document).
    pub fn tls_spki_sha256(&self) -> [u8; 32] {
        self.tls_spki_sha256
    }

    /// The enclave's receipt key address, 0x-hex.
    pub fn enclave_address(&self) -> String {
        address_hex(&self.enclave.signer.address)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| ClientError::Http {
                what: "building a request",
                reason: error.to_string(),
            })
    }

    /// The chat request for `body`, with a fresh `x-attested-nonce` when `chat` asks for a
    /// per-response document (the nonce is returned to check that document).
    fn chat_request(
        &self,
        body: Vec<u8>,
        chat: &ChatRequest,
        what: &'static str,
    ) -> Result<(OutgoingRequest, Option<[u8; 32]>), ClientError> {
        let mut request = self.request("POST", CHAT_PATH, body)?;
        let response_nonce = chat.response_document.then(random_nonce).transpose()?;
        if let Some(nonce) = &response_nonce {
            request.headers_mut().insert(
                headers::NONCE,
                hex::encode(nonce).parse().map_err(|_| ClientError::Http {
                    what,
                    reason: "nonce header".to_owned(),
                })?,
            );
        }
        Ok((request, response_nonce))
    }

    fn ensure_open(&self) -> Result<(), ClientError> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        Ok(())
    }

    /// How many times a request found this connection dead before any response and went on
    /// over a new attested connection (to the same URL: through host-proxy, possibly another
    /// enclave, verified under the same policy).
    pub fn reconnections(&self) -> u32 {
        self.reconnections
    }

    /// Whether `result` lost the connection before any response; if so, a new attested
    /// connection to the same URL under the same policy has taken this one's place.
    ///
    /// # Errors
    /// The new connection's failure.
    async fn replaced_after_loss<T>(
        &mut self,
        result: &Result<T, ClientError>,
    ) -> Result<bool, ClientError> {
        if !matches!(result, Err(ClientError::ConnectionLost { .. })) {
            return Ok(false);
        }
        let fresh = Self::connect(&self.url, self.policy.clone(), self.options.clone()).await?;
        let reconnections = self.reconnections + 1;
        *self = fresh;
        self.reconnections = reconnections;
        Ok(true)
    }

    /// Any failure closes the connection for good: after a bad answer nothing on it is trusted.
    fn close_on_error<T>(&mut self, result: &Result<T, ClientError>) {
        if result.is_err() {
            self.closed = true;
            self.driver.abort();
        }
    }

    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
        what: &'static str,
    ) -> Result<Response<Incoming>, ClientError> {
        let limit = self.options.answer_timeout;
        let sender = &mut self.sender;
        with_timeout(limit, what, async move {
            // Until the response head arrives, a failure of the connection means the enclave
            // answered nothing (a malformed head is not that: it did answer).
            sender.ready().await.map_err(lost_or_http(what))?;
            sender
                .send_request(request)
                .await
                .map_err(lost_or_http(what))
        })
        .await
    }

    /// The model id `/v1/models` lists with the attested model hash.
    async fn attested_model_id(&mut self) -> Result<String, ClientError> {
        if let Some(id) = &self.model_id {
            return Ok(id.clone());
        }
        let what = "listing the models";
        let request = self.request(
            "GET",
            attestation_verifier::protocol::MODELS_PATH,
            Vec::new(),
        )?;
        let response = self.send(request, what).await?;
        let status = response.status();
        let body = read_body(response.into_body(), 1024 * 1024, what).await?;
        require_ok(status, what, &body)?;
        let attested = hex::encode(self.enclave.binding.model_sha256);
        let list: Value = serde_json::from_slice(&body).map_err(|error| ClientError::Http {
            what,
            reason: format!("not JSON: {error}"),
        })?;
        let id = list
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|model| model.get("sha256").and_then(Value::as_str) == Some(attested.as_str()))
            .and_then(|model| model.get("id").and_then(Value::as_str))
            .ok_or_else(|| ClientError::Http {
                what,
                reason: format!("no listed model has the attested hash {attested}"),
            })?
            .to_owned();
        self.model_id = Some(id.clone());
        Ok(id)
    }

    async fn request_body(
        &mut self,
        chat: &ChatRequest,
        stream: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let model = match &chat.model {
            Some(model) => model.clone(),
            None => self.attested_model_id().await?,
        };
        let mut messages = Vec::new();
        if let Some(system) = &chat.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": chat.prompt}));
        let mut body = json!({"model": model, "messages": messages, "stream": stream});
        if let Some(max_tokens) = chat.max_tokens {
            body["max_tokens"] = json!(max_tokens);
        }
        if let Some(temperature) = chat.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(seed) = chat.seed {
            body["seed"] = json!(seed);
        }
        Ok(serde_json::to_vec(&body).unwrap_or_default())
    }

    fn evidence_parts<'a>(
        &'a self,
        request_body: &'a [u8],
        receipt: &'a VerifiedReceipt,
        signature: &'a [u8],
        response_document: Option<(&'a [u8], &'a [u8])>,
    ) -> EvidenceParts<'a> {
        EvidenceParts {
            endpoint: CHAT_PATH,
            attestation_document: &self.document,
            attestation_nonce: Some(&self.nonce),
            request_body,
            claims: receipt.claims(),
            signature,
            response_document,
        }
    }

    /// POSTs `body` (JSON) to `path` and returns the answer once its receipt verified: signed
    /// by the attested key over the attested model, this exact request and this exact
    /// response, with the boot document sent alongside naming the same key.
    ///
    /// # Errors
    /// A [`ClientError`] (an error status included); the connection is closed after any
    /// failure.
    pub async fn post_json_verified(
        &mut self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<VerifiedJson, ClientError> {
        self.ensure_open()?;
        let mut result = self.post_json_inner(path, body.clone()).await;
        match self.replaced_after_loss(&result).await {
            Ok(true) => result = self.post_json_inner(path, body).await,
            Ok(false) => {}
            Err(error) => result = Err(error),
        }
        self.close_on_error(&result);
        result
    }

    /// Sends `request` and reads a non-streamed answer: its body (within the size and time
    /// limits) and its receipt headers; an error status is a [`ClientError::Status`].
    async fn receipted_exchange(
        &mut self,
        request: Request<Full<Bytes>>,
        what: &'static str,
    ) -> Result<(Vec<u8>, CompletionHeaders), ClientError> {
        let response = self.send(request, what).await?;
        let status = response.status();
        let response_headers = response.headers().clone();
        let limit = self.options.answer_timeout;
        let response_body = with_timeout(
            limit,
            what,
            read_body(response.into_body(), MAX_RESPONSE_BYTES, what),
        )
        .await?;
        require_ok(status, what, &response_body)?;
        let parsed = CompletionHeaders::parse(|name| {
            response_headers
                .get(name)
                .and_then(|value| value.to_str().ok())
        })
        .map_err(ExchangeError::from)?;
        Ok((response_body, parsed))
    }

    async fn post_json_inner(
        &mut self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<VerifiedJson, ClientError> {
        let what = "waiting for the answer";
        let request = self.request("POST", path, body.clone())?;
        let (response_body, parsed) = self.receipted_exchange(request, what).await?;
        check_answer_document(&self.policy, &self.enclave, &parsed.document)?;
        let receipt = attestation_verifier::receipt::verify_receipt(
            &parsed.receipt,
            &self.enclave.attestation,
            &body,
            &response_body,
        )
        .map_err(ExchangeError::from)?;
        Ok(VerifiedJson {
            body: response_body,
            receipt,
        })
    }

    /// Sends a chat request and returns the answer once its receipt verified.
    ///
    /// # Errors
    /// A [`ClientError`]; the connection is closed after any failure.
    pub async fn chat(&mut self, chat: &ChatRequest) -> Result<VerifiedAnswer, ClientError> {
        self.ensure_open()?;
        let mut result = self.chat_inner(chat).await;
        match self.replaced_after_loss(&result).await {
            Ok(true) => result = self.chat_inner(chat).await,
            Ok(false) => {}
            Err(error) => result = Err(error),
        }
        self.close_on_error(&result);
        result
    }

    async fn chat_inner(&mut self, chat: &ChatRequest) -> Result<VerifiedAnswer, ClientError> {
        let what = "waiting for the answer";
        let body = self.request_body(chat, false).await?;
        let (request, response_nonce) = self.chat_request(body.clone(), chat, what)?;
        let (response_body, parsed) = self.receipted_exchange(request, what).await?;
        let verified = verify_live_completion(
            &self.policy,
            &self.enclave,
            &body,
            &response_body,
            &parsed,
            response_nonce.as_ref().map(<[u8; 32]>::as_slice),
        )?;
        let response_document = parsed
            .response_document
            .as_deref()
            .zip(response_nonce.as_ref().map(<[u8; 32]>::as_slice));
        let evidence = EvidenceBundle::for_completion(
            &self.evidence_parts(
                &body,
                &verified.receipt,
                &verified.signature,
                response_document,
            ),
            &response_body,
        );
        Ok(VerifiedAnswer {
            answer: verified.answer,
            receipt: verified.receipt,
            response_document: verified.response_document,
            stream_events: None,
            evidence,
        })
    }

    /// Sends a streamed chat request; `on_text` receives each piece of the answer as soon as
    /// its event verified. The stream is abandoned at the first event that fails.
    ///
    /// # Errors
    /// A [`ClientError`] (an incomplete stream included); the connection is closed after any
    /// failure.
    pub async fn chat_stream(
        &mut self,
        chat: &ChatRequest,
        mut on_text: impl FnMut(&str),
    ) -> Result<VerifiedAnswer, ClientError> {
        self.ensure_open()?;
        // A lost connection is only reported before the response head, so `on_text` has seen
        // nothing of the first try when it is retried.
        let mut result = self.chat_stream_inner(chat, &mut on_text).await;
        match self.replaced_after_loss(&result).await {
            Ok(true) => result = self.chat_stream_inner(chat, &mut on_text).await,
            Ok(false) => {}
            Err(error) => result = Err(error),
        }
        self.close_on_error(&result);
        result
    }

    async fn chat_stream_inner(
        &mut self,
        chat: &ChatRequest,
        mut on_text: impl FnMut(&str),
    ) -> Result<VerifiedAnswer, ClientError> {
        let what = "reading the answer stream";
        let body = self.request_body(chat, true).await?;
        let (request, response_nonce) = self.chat_request(body.clone(), chat, what)?;
        let response = self.send(request, what).await?;
        let status = response.status();
        if status != StatusCode::OK {
            let error_body = read_body(response.into_body(), 64 * 1024, what).await?;
            return Err(status_error(status, what, &error_body));
        }
        let response_headers = response.headers();
        let stream_headers = StreamHeaders::parse(|name| {
            response_headers
                .get(name)
                .and_then(|value| value.to_str().ok())
        })
        .map_err(ExchangeError::from)?;
        let content_type = response_headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("text/event-stream") {
            return Err(ExchangeError::Headers(HeaderError::Malformed {
                name: "content-type",
                reason: format!("expected text/event-stream, got {content_type:?}"),
            })
            .into());
        }
        check_answer_document(&self.policy, &self.enclave, &stream_headers.document)?;
        let mut check = StreamCheck::new(&self.enclave, &body, Some(&stream_headers))?;
        let mut decoder = SseDecoder::new();
        let mut incoming = response.into_body();
        let gap = self.options.answer_timeout;
        loop {
            let frame = tokio::time::timeout(gap, incoming.frame())
                .await
                .map_err(|_| ClientError::Timeout {
                    what,
                    seconds: gap.as_secs(),
                })?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(http_error(what))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            decoder.push(&data);
            while let Some(event) = decoder.next_event().map_err(ExchangeError::from)? {
                let text = check.accept(event)?;
                if !text.is_empty() {
                    on_text(&text);
                }
            }
        }
        let response_document = check.response_document().map(<[u8]>::to_vec);
        let stream = check.finish()?;
        if decoder.has_partial_event() {
            return Err(ExchangeError::EventAfterDone.into());
        }
        let verified_document = check_response_document(
            &self.policy,
            &self.enclave,
            response_document.as_deref(),
            response_nonce.as_ref().map(<[u8; 32]>::as_slice),
            &stream.receipt,
            VerifyTime::Now,
        )?;
        let evidence_document = response_document
            .as_deref()
            .zip(response_nonce.as_ref().map(<[u8; 32]>::as_slice));
        let evidence = EvidenceBundle::for_stream(
            &self.evidence_parts(&body, &stream.receipt, &stream.signature, evidence_document),
            &stream.events,
        );
        Ok(VerifiedAnswer {
            answer: stream.answer,
            receipt: stream.receipt,
            response_document: verified_document,
            stream_events: Some(stream.events.len()),
            evidence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_enclave_urls() {
        assert_eq!(
            parse_url("https://127.0.0.1:8443").unwrap(),
            ("127.0.0.1".to_owned(), 8443)
        );
        assert_eq!(parse_url("https://enclave.example:443/").unwrap().1, 443);
        assert_eq!(
            parse_url("https://[::1]:9000").unwrap(),
            ("::1".to_owned(), 9000)
        );
        for bad in [
            "http://127.0.0.1:8443",
            "https://127.0.0.1",
            "https://127.0.0.1:0",
            "https://127.0.0.1:99999",
            "https://127.0.0.1:8443/v1",
            "https://user@host:1",
            "https://:443",
        ] {
            assert!(
                matches!(parse_url(bad), Err(ClientError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn reads_openai_error_messages() {
        assert_eq!(
            error_message(br#"{"error":{"message":"queue full","type":"x"}}"#),
            "queue full"
        );
        assert_eq!(error_message(b"plain"), "plain");
    }
}
