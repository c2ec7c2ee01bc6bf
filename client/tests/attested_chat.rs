//! The client against the real server in-process (development attester, real model): chat,
//! stream, evidence saved and re-verified offline; a hostile middle between them; enclaves
//! other than the expected one.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attest::connection::{AttestedConnection, ChatRequest, ClientError, ConnectOptions};
use attest::policy::{ClientPolicy, PolicyError};
use attest::{EvidenceBundle, ExchangeError};
use attestation_verifier::VerifyError;
use attestation_verifier::binding::BindingError;
use attestation_verifier::receipt::address_hex;
use enclave::identity::TlsIdentity;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use testkit::{DevEnclave, MODEL_SHA256, TempDir, model_sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PROMPT: &str = "What is the capital of France? A SECRET-PROMPT-MARKER";

/// A real enclave server on 127.0.0.1:0 with a fresh development CA.
fn start_enclave() -> DevEnclave {
    DevEnclave::start(None)
}

fn options() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(30),
        answer_timeout: Duration::from_secs(120),
    }
}

fn request(response_document: bool) -> ChatRequest {
    ChatRequest {
        prompt: PROMPT.to_owned(),
        max_tokens: Some(8),
        response_document,
        ..ChatRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_stream_and_evidence_verify_end_to_end() {
    let enclave = start_enclave();
    let policy = enclave.policy();
    let mut connection = AttestedConnection::connect(&enclave.url(), policy.clone(), options())
        .await
        .expect("the genuine enclave is accepted");
    assert_eq!(
        connection.enclave_address(),
        address_hex(&enclave.server().enclave_address())
    );

    // Non-streamed, with a per-response document.
    let answer = connection
        .chat(&request(true))
        .await
        .expect("verified answer");
    assert!(!answer.answer.is_empty());
    assert_eq!(answer.receipt.signer(), enclave.server().enclave_address());
    assert_eq!(answer.receipt.claims().model_hash, model_sha256());
    assert!(answer.response_document.is_some());
    let offline = answer
        .evidence
        .verify(&policy)
        .expect("evidence verifies offline");
    assert_eq!(offline.answer, answer.answer);

    // Streamed on the same connection: the text arrives piece by piece, each verified.
    let mut pieces = Vec::new();
    let streamed = connection
        .chat_stream(&request(false), |text| pieces.push(text.to_owned()))
        .await
        .expect("verified stream");
    assert!(streamed.stream_events.unwrap() >= 2);
    assert_eq!(pieces.concat(), streamed.answer);
    assert!(streamed.response_document.is_none());

    // Saved, reloaded and re-verified offline, by the library and by the CLI.
    let directory = TempDir::new("attest-it");
    let file = directory.path().join("stream-evidence.json");
    streamed.evidence.save(&file).expect("save");
    let reloaded = EvidenceBundle::load(&file).expect("load");
    assert_eq!(reloaded, streamed.evidence);
    reloaded.verify(&policy).expect("stream evidence verifies");
    let root = enclave.root_pem();
    let output = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(["verify-evidence", file.to_str().unwrap(), "--root"])
        .arg(&root)
        .args(["--model-sha256", MODEL_SHA256])
        .output()
        .expect("run attest");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("VALID evidence"), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        streamed.answer.trim()
    );

    // Offline verification under another expectation fails.
    let other_model = policy.clone().expect_model_sha256([0u8; 32]);
    assert!(matches!(
        reloaded.verify(&other_model),
        Err(attest::EvidenceError::Document(PolicyError::Binding(
            BindingError::ModelMismatch { .. }
        )))
    ));
}

#[test]
fn the_cli_chats_streams_and_saves_evidence() {
    let enclave = start_enclave();
    let directory = TempDir::new("attest-it");
    let evidence = directory.path().join("evidence.json");
    let pcr0 = format!("0={}", hex::encode(enclave.pcr(0)));
    for stream in [false, true] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_attest"));
        command
            .args(["chat", "--url", &enclave.url(), "--root"])
            .arg(enclave.root_pem())
            .args(["--pcr", &pcr0, "--model-sha256", MODEL_SHA256])
            .args(["--max-tokens", "6", "--system", "Answer briefly."])
            .arg("--save-evidence")
            .arg(&evidence);
        if stream {
            command.arg("--stream");
        }
        let output = command.arg(PROMPT).output().expect("run attest chat");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(!String::from_utf8_lossy(&output.stdout).trim().is_empty());
        for line in [
            "enclave key:",
            "PCR0:",
            "model sha256:",
            "receipt:       verified",
        ] {
            assert!(stderr.contains(line), "{line} missing in {stderr}");
        }
        let output = Command::new(env!("CARGO_BIN_EXE_attest"))
            .arg("verify-evidence")
            .arg(&evidence)
            .arg("--root")
            .arg(enclave.root_pem())
            .output()
            .expect("run attest verify-evidence");
        assert!(output.status.success());
    }
    // A wrong model expectation: refused, exit 1, nothing printed as an answer.
    let output = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(["chat", "--url", &enclave.url(), "--root"])
        .arg(enclave.root_pem())
        .args(["--model-sha256", &"00".repeat(32), PROMPT])
        .output()
        .expect("run attest chat");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("REFUSED"));
    // The AWS root without a pinned image: a usage error before connecting.
    let output = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(["chat", "--url", &enclave.url(), PROMPT])
        .output()
        .expect("run attest chat");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--insecure-accept-any-image"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_enclaves_are_refused_before_any_prompt() {
    let enclave = start_enclave();
    let refused = |policy: ClientPolicy| {
        let url = enclave.url();
        async move {
            AttestedConnection::connect(&url, policy, options())
                .await
                .expect_err("must be refused")
        }
    };
    // Another model than the one expected.
    let error = refused(enclave.policy().expect_model_sha256([7u8; 32])).await;
    assert!(
        matches!(
            error,
            ClientError::Attestation(PolicyError::Binding(BindingError::ModelMismatch { .. }))
        ),
        "{error}"
    );
    // Another image than the one expected.
    let mut wrong_pcr = enclave.pcr(0);
    wrong_pcr[0] ^= 1;
    let error = refused(enclave.policy().expect_pcr(0, wrong_pcr)).await;
    assert!(
        matches!(
            error,
            ClientError::Attestation(PolicyError::Attestation(VerifyError::PcrMismatch { .. }))
        ),
        "{error}"
    );
    // The AWS root: a development enclave never chains to it.
    let error = refused(ClientPolicy::aws().insecure_accept_any_image()).await;
    assert!(
        matches!(
            error,
            ClientError::Attestation(PolicyError::Attestation(VerifyError::UntrustedRoot { .. }))
        ),
        "{error}"
    );
    // The AWS root without an expected image: refused before connecting.
    let error = refused(ClientPolicy::aws()).await;
    assert!(
        matches!(error, ClientError::Policy(PolicyError::ImageNotPinned)),
        "{error}"
    );
}

/// What the hostile middle does to the server → client bytes.
#[derive(Debug, Clone)]
enum Tamper {
    /// Flip one bit at this offset.
    FlipByte(usize),
    /// Close both sides after this many bytes.
    Truncate(usize),
    /// Send these recorded bytes of an earlier session instead of the server's.
    Replay(Arc<Vec<u8>>),
    /// Forward faithfully and record (to replay later).
    Record(Arc<Mutex<Vec<u8>>>),
}

/// A TCP proxy that tampers with one connection at a time; returns its address.
async fn hostile_proxy(upstream: std::net::SocketAddr, tamper: Tamper) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let tamper = tamper.clone();
            tokio::spawn(async move {
                let server = TcpStream::connect(upstream).await.expect("upstream");
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let upward = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                let mut seen = 0usize;
                let mut buffer = vec![0u8; 16 * 1024];
                if let Tamper::Replay(recorded) = &tamper {
                    let _ = client_write.write_all(recorded).await;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    upward.abort();
                    return;
                }
                loop {
                    let read = match server_read.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(read) => read,
                    };
                    let chunk = &mut buffer[..read];
                    match &tamper {
                        Tamper::FlipByte(offset) if (seen..seen + read).contains(offset) => {
                            chunk[offset - seen] ^= 0x01;
                        }
                        Tamper::Truncate(limit) if seen + read >= *limit => {
                            let keep = limit - seen;
                            let _ = client_write.write_all(&chunk[..keep]).await;
                            break;
                        }
                        Tamper::Record(record) => record.lock().unwrap().extend_from_slice(chunk),
                        _ => {}
                    }
                    seen += read;
                    if client_write.write_all(chunk).await.is_err() {
                        break;
                    }
                }
                upward.abort();
            });
        }
    });
    address
}

/// Connects through `proxy` and chats; returns the first error, or None if all verified.
async fn attempt(proxy: std::net::SocketAddr, policy: ClientPolicy) -> Option<ClientError> {
    let url = format!("https://{proxy}");
    let mut connection = match AttestedConnection::connect(&url, policy, options()).await {
        Ok(connection) => connection,
        Err(error) => return Some(error),
    };
    connection.chat(&request(false)).await.err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_middle_is_refused_every_time() {
    let enclave = start_enclave();
    let upstream = enclave.server().socket_addr().expect("tcp");
    let policy = enclave.policy();

    // A faithful middle (it only sees ciphertext) changes nothing; record that session.
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let proxy = hostile_proxy(upstream, Tamper::Record(Arc::clone(&recorded))).await;
    assert!(
        attempt(proxy, policy.clone()).await.is_none(),
        "a faithful proxy works"
    );
    let recorded = Arc::new(recorded.lock().unwrap().clone());
    let total = recorded.len();
    assert!(total > 2000, "recorded {total} bytes");

    // Every flipped byte, every truncation, and a replay of that session: refused.
    let mut cases: Vec<(String, Tamper)> = Vec::new();
    // Offsets fall in the handshake, the attestation document, the model list and the
    // answer; none in what may follow the answer unread (a closing alert).
    for offset in [5, 60, 400, 900, 1500, total / 2, total * 3 / 4] {
        cases.push((format!("flip byte {offset}"), Tamper::FlipByte(offset)));
    }
    for limit in [0, 100, 1200, total / 2, total * 3 / 4] {
        cases.push((format!("truncate at {limit}"), Tamper::Truncate(limit)));
    }
    cases.push((
        "replay an earlier session".to_owned(),
        Tamper::Replay(recorded),
    ));
    for (name, tamper) in cases {
        let proxy = hostile_proxy(upstream, tamper).await;
        let error = attempt(proxy, policy.clone()).await;
        let error = error.unwrap_or_else(|| panic!("{name}: the tampered session was accepted"));
        // A truncation before the answer's head is a lost connection (the client tried once
        // more, through the same middle); tampered bytes never are.
        let truncated = name.starts_with("truncate");
        assert!(
            matches!(
                error,
                ClientError::Tls { .. }
                    | ClientError::Http { .. }
                    | ClientError::Answer(ExchangeError::Receipt(_))
            ) || (truncated && matches!(error, ClientError::ConnectionLost { .. })),
            "{name}: unexpected error {error:?}"
        );
        assert!(!error.to_string().is_empty());
    }
}

/// Accepts any server certificate: the middle's own client side.
#[derive(Debug)]
struct AnyCertificate(rustls::crypto::WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A middle that terminates TLS with another enclave identity's certificate and relays the
/// plaintext to the real enclave (recording what the client sent), or answers the
/// attestation request itself with `canned_document`.
async fn terminating_middle(
    upstream: std::net::SocketAddr,
    canned_document: Option<Vec<u8>>,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let identity = TlsIdentity::generate(&["localhost".to_owned()]).expect("identity");
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config().expect("config"));
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let mut client_config = rustls::ClientConfig::builder_with_provider(Arc::new(provider.clone()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(
            provider.signature_verification_algorithms,
        )))
        .with_no_client_auth();
    client_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(client) = acceptor.accept(client).await else {
                continue;
            };
            let (mut client_read, mut client_write) = tokio::io::split(client);
            if let Some(document) = &canned_document {
                let mut buffer = vec![0u8; 4096];
                let read = client_read.read(&mut buffer).await.unwrap_or(0);
                record.lock().unwrap().extend_from_slice(&buffer[..read]);
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/cbor\r\ncontent-length: {}\r\n\r\n",
                    document.len()
                );
                let _ = client_write.write_all(head.as_bytes()).await;
                let _ = client_write.write_all(document).await;
                let _ = client_write.flush().await;
                let mut rest = vec![0u8; 4096];
                while let Ok(read) = client_read.read(&mut rest).await {
                    if read == 0 {
                        break;
                    }
                    record.lock().unwrap().extend_from_slice(&rest[..read]);
                }
                continue;
            }
            let tcp = TcpStream::connect(upstream).await.expect("upstream");
            let server = connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .expect("TLS to the real enclave");
            let (mut server_read, mut server_write) = tokio::io::split(server);
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                while let Ok(read) = client_read.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    record.lock().unwrap().extend_from_slice(&buffer[..read]);
                    if server_write.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (address, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_middle_terminating_tls_never_sees_the_prompt() {
    let enclave = start_enclave();
    let upstream = enclave.server().socket_addr().expect("tcp");

    // Relaying the genuine enclave's fresh document: the document binds the enclave's TLS
    // key, not the middle's.
    let (middle, seen) = terminating_middle(upstream, None).await;
    let error = attempt(middle, enclave.policy()).await.expect("refused");
    assert!(
        matches!(
            error,
            ClientError::TlsKeyNotAttested(BindingError::TlsKeyMismatch { .. })
        ),
        "{error:?}"
    );
    let plaintext = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(
        plaintext.contains("GET /v1/attestation?nonce="),
        "{plaintext}"
    );
    assert!(
        !plaintext.contains("SECRET-PROMPT-MARKER"),
        "the prompt leaked: {plaintext}"
    );
    assert!(
        !plaintext.contains("POST"),
        "a request body was sent: {plaintext}"
    );

    // Replaying an earlier genuine document instead: it answers no fresh nonce.
    let (middle, seen) = terminating_middle(upstream, Some(enclave.server().boot_document())).await;
    let error = attempt(middle, enclave.policy()).await.expect("refused");
    assert!(
        matches!(
            error,
            ClientError::Attestation(PolicyError::Attestation(
                VerifyError::NonceMissing | VerifyError::NonceMismatch { .. }
            ))
        ),
        "{error:?}"
    );
    let plaintext = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(
        !plaintext.contains("SECRET-PROMPT-MARKER"),
        "the prompt leaked: {plaintext}"
    );
}
