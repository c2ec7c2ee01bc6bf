//! The attested HTTP server (`enclave serve`): TLS 1.3 ends inside the enclave, HTTP/1.1 and
//! HTTP/2 (hyper) above it, the OpenAI-compatible API with a receipt on every answer
//! (docs/protocol.md §3, §4, §4a).
//!
//! [`Server::start`] boots the enclave (model hash check first, then attester, keys, boot
//! document), binds the listener (and the parent channel's, `parent.rs`) and serves on a
//! runtime of its own, so that tests and tools in any context (sync or async) can run a real
//! server in-process:
//!
//! ```no_run
//! use enclave::config::{AttesterChoice, EnclaveConfig, Limits};
//! use enclave::server::Server;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = EnclaveConfig {
//!     model: "/models/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
//!     model_sha256: [0u8; 32], // the model's real SHA-256
//!     listen: "tcp:127.0.0.1:0".parse()?,
//!     parent_listen: None,
//!     attester: AttesterChoice::Dev { pki_dir: "/tmp/dev-pki".into() },
//!     server_names: vec!["localhost".to_owned()],
//!     limits: Limits::default(),
//!     onchain_relay: None,
//! };
//! let server = Server::start(&config)?;
//! let address = server.socket_addr().expect("a TCP listener");
//! let pinned_certificate: &[u8] = server.certificate_der();
//! let dev_root = server.dev_root_pem()?; // trust this root explicitly
//! // ... talk HTTPS to `address`, pinning `pinned_certificate` ...
//! server.shutdown();
//! # Ok(())
//! # }
//! ```

mod api;
mod errors;
mod io;
mod limits;
mod metrics;
pub mod onchain;
mod openai;
mod parent;
pub mod receipts;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use attestation_verifier::receipt::{EthereumAddress, address_hex};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use inference_engine::{NoProgress, Progress, Scheduler, SchedulerConfig};
use tokio::sync::{Semaphore, oneshot};
use tokio_rustls::TlsAcceptor;

use crate::attester::ROOT_CERTIFICATE_FILE;
use crate::boot::{BootError, BootedEnclave, OperatorBinding, boot, run_refresher_observed};
use crate::config::{AttesterChoice, EnclaveConfig};
use crate::identity::IdentityError;
use crate::transport::{ListenAddress, Listener, TransportError};

use self::api::AppState;
use self::io::{HeadOutcome, Rewind, answer_timeout, read_first_head};
use self::limits::{ConnectionLimits, TokenBucket};
use self::metrics::Metrics;
use self::receipts::ReceiptSigner;

/// How long in-flight connections get to finish after [`RunningServer::shutdown`].
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Concurrent HTTP/2 streams per connection.
const MAX_H2_STREAMS: u32 = 64;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The boot sequence failed (model hash, attester, keys, boot document).
    #[error(transparent)]
    Boot(#[from] BootError),
    /// The TLS configuration could not be built.
    #[error("TLS: {0}")]
    Tls(#[source] IdentityError),
    /// The engine's scheduler did not start.
    #[error("scheduler: {0}")]
    Scheduler(#[source] inference_engine::EngineError),
    /// The async runtime or its thread could not be created.
    #[error("runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The listener could not be bound.
    #[error(transparent)]
    Listen(#[from] TransportError),
    /// The server thread ended before it reported.
    #[error("the server thread stopped during start")]
    ThreadStopped,
}

/// Starts attested servers; see the module documentation.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Boots the enclave as `config` says (the model hash is checked before anything else),
    /// binds the listener and starts serving. Returns once the listener is bound.
    ///
    /// # Errors
    /// The first failed step, as a [`ServerError`].
    pub fn start(config: &EnclaveConfig) -> Result<RunningServer, ServerError> {
        Self::start_with_progress(config, &mut NoProgress)
    }

    /// [`Server::start`], reporting model loading to `progress`.
    ///
    /// # Errors
    /// The first failed step, as a [`ServerError`].
    pub fn start_with_progress(
        config: &EnclaveConfig,
        progress: &mut dyn Progress,
    ) -> Result<RunningServer, ServerError> {
        let booted = boot(config, progress)?;
        Self::start_booted(booted, config)
    }

    /// Serves an already booted enclave with `config`'s listener and limits.
    ///
    /// # Errors
    /// A [`ServerError`] for the TLS configuration, the scheduler, the runtime or the listener.
    pub fn start_booted(
        booted: BootedEnclave,
        config: &EnclaveConfig,
    ) -> Result<RunningServer, ServerError> {
        let BootedEnclave {
            engine,
            identity,
            attester,
            documents,
            claims,
        } = booted;
        let tls_config = identity.tls.server_config().map_err(ServerError::Tls)?;
        let certificate_der = identity.tls.certificate_der().to_vec();
        let model_sha256 = identity.model_sha256;
        let address = identity.signing_key.address();
        let limits = config.limits;
        let queue_capacity =
            (limits.max_concurrent_requests as usize) + (limits.max_queued_requests as usize);
        let scheduler = Scheduler::start(
            Arc::new(engine),
            SchedulerConfig {
                max_batch: limits.max_concurrent_requests as usize,
                max_pending: queue_capacity,
            },
        )
        .map_err(ServerError::Scheduler)?;
        let model_sha256_hex = hex::encode(model_sha256);
        let state = Arc::new(AppState {
            scheduler,
            admitted: std::sync::atomic::AtomicUsize::new(0),
            queue_capacity,
            signer: ReceiptSigner {
                key: Arc::new(identity.signing_key),
                model_sha256,
                attester: Arc::clone(&attester),
            },
            claims: claims.clone(),
            documents: documents.clone(),
            model_id: model_id(&config.model),
            system_fingerprint: format!("fp_{}", &model_sha256_hex[..16]),
            model_sha256_hex,
            enclave_address: address_hex(&address),
            attester_kind: attester.kind().to_string(),
            limits,
            onchain_relay: config.onchain_relay,
            metrics: Metrics::new(),
            attestations: std::sync::Mutex::new(TokenBucket::new(
                limits.attestations_per_second,
                Duration::from_secs(1),
                std::time::Instant::now(),
            )),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs()),
        });
        let dev_root_pem_path = match &config.attester {
            AttesterChoice::Dev { pki_dir } => Some(pki_dir.join(ROOT_CERTIFICATE_FILE)),
            AttesterChoice::Nsm => None,
        };

        let (started_sender, started) = std::sync::mpsc::channel();
        let (stop_sender, stop) = oneshot::channel::<()>();
        let listen = config.listen;
        let parent_listen = config.parent_listen;
        let thread_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("enclave-server".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .thread_name("enclave-http")
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = started_sender.send(Err(ServerError::Runtime(error)));
                        return;
                    }
                };
                let bound = runtime.block_on(async {
                    let listener = Listener::bind(listen).await?;
                    let parent = match parent_listen {
                        Some(address) => Some(Listener::bind(address).await?),
                        None => None,
                    };
                    Ok::<_, TransportError>((listener, parent))
                });
                let (listener, parent) = match bound {
                    Ok(bound) => bound,
                    Err(error) => {
                        let _ = started_sender.send(Err(ServerError::Listen(error)));
                        return;
                    }
                };
                let _ = started_sender.send(Ok((
                    listener.local_address(),
                    parent.as_ref().map(Listener::local_address),
                )));
                let refresher_state = Arc::clone(&thread_state);
                runtime.spawn(run_refresher_observed(
                    attester,
                    claims,
                    documents,
                    move |succeeded| refresher_state.metrics.count_refresh(succeeded),
                ));
                if let Some(parent) = parent {
                    runtime.spawn(parent_accept_loop(parent, Arc::clone(&thread_state)));
                }
                let acceptor = TlsAcceptor::from(tls_config);
                runtime.block_on(async move {
                    tokio::select! {
                        () = accept_loop(listener, acceptor, thread_state) => {}
                        _ = stop => {}
                    }
                });
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
            })
            .map_err(ServerError::Runtime)?;
        let (local_address, parent_address) = match started.recv() {
            Ok(Ok(addresses)) => addresses,
            Ok(Err(error)) => {
                let _ = thread.join();
                return Err(error);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(ServerError::ThreadStopped);
            }
        };
        Ok(RunningServer {
            local_address,
            parent_address,
            operator: state.claims.operator().clone(),
            certificate_der,
            dev_root_pem_path,
            model_sha256,
            model_id: state.model_id.clone(),
            address,
            state,
            stop: Some(stop_sender),
            thread: Some(thread),
        })
    }
}

/// The model id clients name in requests: the model file's name without `.gguf`.
fn model_id(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(|| "model".into(), |name| name.to_string_lossy());
    name.strip_suffix(".gguf").unwrap_or(&name).to_owned()
}

/// A server serving on its own threads; stops on [`RunningServer::shutdown`] or drop.
#[derive(Debug)]
pub struct RunningServer {
    local_address: ListenAddress,
    parent_address: Option<ListenAddress>,
    operator: OperatorBinding,
    certificate_der: Vec<u8>,
    dev_root_pem_path: Option<PathBuf>,
    model_sha256: [u8; 32],
    model_id: String,
    address: EthereumAddress,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    /// The address actually bound (the real port when port 0 was asked for).
    pub fn local_address(&self) -> ListenAddress {
        self.local_address
    }

    /// The TCP address, when listening on TCP.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.local_address {
            ListenAddress::Tcp(address) => Some(address),
            ListenAddress::Vsock { .. } => None,
        }
    }

    /// The parent channel's address actually bound, when it has one.
    pub fn parent_address(&self) -> Option<ListenAddress> {
        self.parent_address
    }

    /// The parent channel's TCP address, when it listens on TCP.
    pub fn parent_socket_addr(&self) -> Option<SocketAddr> {
        match self.parent_address? {
            ListenAddress::Tcp(address) => Some(address),
            ListenAddress::Vsock { .. } => None,
        }
    }

    /// The operator bound on the parent channel, if any.
    pub fn operator(&self) -> Option<EthereumAddress> {
        self.operator.get()
    }

    /// The TLS certificate (DER) clients see in the handshake; the boot document binds its
    /// SubjectPublicKeyInfo.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// Where the development root certificate is (`<dev-pki>/root.pem`), with the development
    /// attester.
    pub fn dev_root_pem_path(&self) -> Option<&Path> {
        self.dev_root_pem_path.as_deref()
    }

    /// The development root certificate (PEM), with the development attester.
    ///
    /// # Errors
    /// When the file cannot be read; `Ok(None)` with the NSM attester.
    pub fn dev_root_pem(&self) -> std::io::Result<Option<Vec<u8>>> {
        self.dev_root_pem_path
            .as_deref()
            .map(std::fs::read)
            .transpose()
    }

    /// The SHA-256 of the model served.
    pub fn model_sha256(&self) -> [u8; 32] {
        self.model_sha256
    }

    /// The model id requests must name.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The enclave's Ethereum address (its attested receipt key).
    pub fn enclave_address(&self) -> EthereumAddress {
        self.address
    }

    /// The current boot attestation document (COSE_Sign1 bytes).
    pub fn boot_document(&self) -> Vec<u8> {
        self.state.documents.current().bytes.to_vec()
    }

    /// Stops accepting, gives in-flight work a short grace period, and waits for the
    /// server's threads. Blocking.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the server thread panicked");
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

async fn accept_loop(listener: Listener, acceptor: TlsAcceptor, state: Arc<AppState>) {
    let slots = Arc::new(Semaphore::new(state.limits.max_connections as usize));
    loop {
        match listener.accept().await {
            Ok((connection, peer)) => {
                // At the cap, close at once (before any TLS work) rather than queue: the
                // client sees the refusal, and a flood costs one accept per connection.
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    state.metrics.count_connection_refused();
                    tracing::debug!(%peer, "connection refused: max_connections open");
                    drop(connection);
                    continue;
                };
                let acceptor = acceptor.clone();
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    state.metrics.connection_opened();
                    serve_connection(connection, acceptor, Arc::clone(&state)).await;
                    state.metrics.connection_closed();
                    drop(slot);
                    tracing::trace!(%peer, "connection closed");
                });
            }
            Err(error) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(
    connection: crate::transport::Connection,
    acceptor: TlsAcceptor,
    state: Arc<AppState>,
) {
    let timeout = Duration::from_millis(u64::from(state.limits.header_timeout_ms));
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tls = match tokio::time::timeout_at(deadline, acceptor.accept(connection)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    let negotiated_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    // HTTP/2 frames arrive whole; for HTTP/1.1 the first head must arrive within the
    // timeout, or the client gets a 408 (hyper's own timer covers later requests).
    let prefix = if negotiated_h2 {
        bytes::Bytes::new()
    } else {
        match read_first_head(&mut tls, deadline).await {
            HeadOutcome::Ready(prefix) => prefix,
            HeadOutcome::Closed => return,
            HeadOutcome::TimedOut => {
                answer_timeout(&mut tls, timeout).await;
                return;
            }
        }
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS);
    let limits = Arc::new(ConnectionLimits::new(
        state.limits.attestations_per_minute_per_connection,
    ));
    let service = service_fn(move |request| {
        let state = Arc::clone(&state);
        let limits = Arc::clone(&limits);
        async move { Ok::<_, std::convert::Infallible>(api::handle(state, &limits, request).await) }
    });
    let io = TokioIo::new(Rewind::new(prefix, tls));
    if let Err(error) = builder.serve_connection(io, service).await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// The parent channel: plain HTTP/1.1, one connection at a time per task (see `parent.rs`).
async fn parent_accept_loop(listener: Listener, state: Arc<AppState>) {
    loop {
        match listener.accept().await {
            Ok((connection, peer)) => {
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move {
                            Ok::<_, std::convert::Infallible>(parent::handle(state, request).await)
                        }
                    });
                    let served = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(TokioIo::new(connection), service)
                        .await;
                    if let Err(error) = served {
                        tracing::debug!(%peer, %error, "parent channel connection ended with an error");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "parent channel accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_id_is_the_file_name_without_gguf() {
        assert_eq!(
            model_id(Path::new("/m/SmolLM2-135M-Instruct.Q4_1.gguf")),
            "SmolLM2-135M-Instruct.Q4_1"
        );
        assert_eq!(model_id(Path::new("/m/model.bin")), "model.bin");
    }
}
