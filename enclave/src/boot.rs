//! The boot sequence: load the model and check its hash (a mismatch stops here, before any
//! key exists) → open the attester → generate the keys → obtain the boot document; then keep
//! the document fresh, requesting a new one well before its leaf certificate expires.
//!
//! What every boot document says ([`BootClaims`]) is fixed at boot but for one field: the
//! operator the enclave serves, which its parent instance binds once, after boot, over the
//! parent channel (docs/protocol.md §2, §5a). Documents requested after that carry it.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use attestation_verifier::binding::{BootBinding, UserDataBinding};
use attestation_verifier::receipt::{EthereumAddress, address_hex};
use attestation_verifier::{UnixMillis, parse_document};
use inference_engine::{Engine, EngineConfig, EngineError, ModelHash, Progress};

use crate::attester::{
    AttestationRequest, Attester, AttesterError, DevAttester, DevCa, DevMeasurements, NsmAttester,
};
use crate::config::{AttesterChoice, EnclaveConfig};
use crate::identity::{EnclaveIdentity, IdentityError};

/// A new document is requested once this fraction of the leaf's remaining lifetime (from the
/// document's timestamp) has passed: with AWS's ~3-hour leaves, after about 1.5 hours.
const REFRESH_AT_FRACTION: f64 = 0.5;
/// Never refresh more often than this, whatever the certificate says.
const MIN_REFRESH_DELAY: Duration = Duration::from_secs(30);
/// Wait between attempts after a failed refresh.
const RETRY_DELAY: Duration = Duration::from_secs(30);

/// Why the enclave did not boot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// The model did not load, or its hash is not the expected one.
    #[error("model: {0}")]
    Model(#[source] EngineError),
    /// The attester could not be opened or produced no document.
    #[error("attester: {0}")]
    Attester(#[source] AttesterError),
    /// Key generation failed.
    #[error("identity: {0}")]
    Identity(#[source] IdentityError),
    /// The attester's document has no usable leaf certificate validity.
    #[error("the boot document's leaf certificate cannot be read: {reason}")]
    DocumentValidity {
        /// What is wrong.
        reason: String,
    },
}

/// Why an operator cannot be bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// The zero address names nobody.
    #[error("the operator must not be the zero address")]
    Zero,
    /// Another operator is bound already; a key serves one operator for its whole life.
    #[error(
        "this enclave serves operator {bound} already (bound once per boot; restart the enclave to serve another)"
    )]
    AlreadyBound {
        /// The bound operator, 0x-hex.
        bound: String,
    },
}

/// The operator the enclave serves: unset at boot, then bound once by the parent instance.
#[derive(Debug, Clone, Default)]
pub struct OperatorBinding(Arc<OnceLock<EthereumAddress>>);

impl OperatorBinding {
    /// The bound operator, if any.
    pub fn get(&self) -> Option<EthereumAddress> {
        self.0.get().copied()
    }

    /// Binds `operator`. Binding the same operator again is allowed (and changes nothing).
    ///
    /// # Errors
    /// [`OperatorError::Zero`], or [`OperatorError::AlreadyBound`] for another operator.
    pub fn bind(&self, operator: EthereumAddress) -> Result<(), OperatorError> {
        if operator == [0u8; 20] {
            return Err(OperatorError::Zero);
        }
        let bound = *self.0.get_or_init(|| operator);
        if bound != operator {
            return Err(OperatorError::AlreadyBound {
                bound: address_hex(&bound),
            });
        }
        Ok(())
    }
}

/// What every boot document binds: the signing key as `public_key`, and as `user_data` the
/// TLS key, the model and the operator bound so far (docs/protocol.md §2).
#[derive(Debug, Clone)]
pub struct BootClaims {
    public_key: Arc<[u8]>,
    binding: BootBinding,
    operator: OperatorBinding,
}

impl BootClaims {
    /// The claims of `identity`, with no operator bound yet.
    pub fn new(identity: &EnclaveIdentity) -> Self {
        Self {
            public_key: identity
                .signing_key
                .public_key_uncompressed()
                .to_vec()
                .into(),
            binding: identity.boot_binding(),
            operator: OperatorBinding::default(),
        }
    }

    /// The operator binding (shared by every clone).
    pub fn operator(&self) -> &OperatorBinding {
        &self.operator
    }

    /// The boot binding as of now (with the operator once bound).
    pub fn binding(&self) -> BootBinding {
        self.binding
            .with_operator(self.operator.get().unwrap_or_default())
    }

    /// The request for a boot document answering `nonce` (none: the cached boot document).
    pub fn request(&self, nonce: Option<Vec<u8>>) -> AttestationRequest {
        AttestationRequest::boot(&self.public_key, &self.binding(), nonce)
    }
}

/// An attestation document with the facts the refresher needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootDocument {
    /// The raw COSE_Sign1 bytes.
    pub bytes: Arc<[u8]>,
    /// The document's timestamp.
    pub timestamp: UnixMillis,
    /// When its leaf certificate expires.
    pub leaf_not_after: UnixMillis,
    /// The operator its boot binding names, if any.
    pub operator: Option<EthereumAddress>,
}

impl BootDocument {
    /// Reads timestamp and leaf expiry from a document just produced by our attester.
    ///
    /// # Errors
    /// [`BootError::DocumentValidity`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, BootError> {
        let invalid = |reason: String| BootError::DocumentValidity { reason };
        let parsed = parse_document(&bytes).map_err(|error| invalid(error.to_string()))?;
        let (_, leaf) = x509_parser::parse_x509_certificate(parsed.certificate())
            .map_err(|error| invalid(error.to_string()))?;
        let not_after = leaf.validity().not_after.timestamp();
        let not_after = u64::try_from(not_after)
            .map_err(|_| invalid(format!("leaf expires before 1970 ({not_after})")))?;
        let operator = match parsed.user_data().map(UserDataBinding::parse) {
            Some(Ok(UserDataBinding::Boot(binding))) => binding.operator(),
            _ => None,
        };
        Ok(Self {
            timestamp: parsed.timestamp(),
            leaf_not_after: UnixMillis::from_unix_seconds(not_after),
            operator,
            bytes: bytes.into(),
        })
    }

    /// How long to wait at `now` before requesting the next document: halfway between the
    /// document's timestamp and its leaf's expiry, at least [`MIN_REFRESH_DELAY`].
    pub fn refresh_delay(&self, now: UnixMillis) -> Duration {
        let lifetime_ms = self
            .leaf_not_after
            .as_millis()
            .saturating_sub(self.timestamp.as_millis());
        let refresh_at = self
            .timestamp
            .as_millis()
            .saturating_add((lifetime_ms as f64 * REFRESH_AT_FRACTION) as u64);
        Duration::from_millis(refresh_at.saturating_sub(now.as_millis())).max(MIN_REFRESH_DELAY)
    }
}

/// The current boot document, shared between the server and the refresher.
#[derive(Debug, Clone)]
pub struct DocumentCache {
    current: Arc<RwLock<BootDocument>>,
}

impl DocumentCache {
    /// A cache holding `document`.
    pub fn new(document: BootDocument) -> Self {
        Self {
            current: Arc::new(RwLock::new(document)),
        }
    }

    /// The current document.
    pub fn current(&self) -> BootDocument {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, document: BootDocument) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = document;
    }
}

/// A booted enclave: the checked model, the generated identity and a fresh boot document.
#[derive(Debug)]
pub struct BootedEnclave {
    /// The inference engine on the hash-checked model.
    pub engine: Engine,
    /// The keys generated at boot.
    pub identity: EnclaveIdentity,
    /// The attester, for refreshes and per-response documents.
    pub attester: Arc<dyn Attester>,
    /// The current boot document.
    pub documents: DocumentCache,
    /// What boot documents bind, the operator once bound included.
    pub claims: BootClaims,
}

impl BootedEnclave {
    /// The request every boot document answers (no nonce).
    pub fn boot_request(&self) -> AttestationRequest {
        self.claims.request(None)
    }

    /// Requests a new boot document and makes it current.
    ///
    /// # Errors
    /// The attester's error; the previous document stays current.
    pub fn refresh_document(&self) -> Result<BootDocument, BootError> {
        refresh_once(
            self.attester.as_ref(),
            &self.boot_request(),
            &self.documents,
        )
    }
}

/// Boots the enclave as `config` says (see the module documentation for the order).
///
/// # Errors
/// The first step that failed, as a [`BootError`].
pub fn boot(
    config: &EnclaveConfig,
    progress: &mut dyn Progress,
) -> Result<BootedEnclave, BootError> {
    let engine_config = EngineConfig {
        expected_sha256: Some(ModelHash(config.model_sha256)),
        ..EngineConfig::new(&config.model)
    };
    let engine = Engine::load(&engine_config, progress).map_err(BootError::Model)?;
    let attester = open_attester(config)?;
    let identity = EnclaveIdentity::generate(config.model_sha256, &config.server_names)
        .map_err(BootError::Identity)?;
    let claims = BootClaims::new(&identity);
    let bytes = attester
        .attest(&claims.request(None))
        .map_err(BootError::Attester)?;
    let documents = DocumentCache::new(BootDocument::from_bytes(bytes)?);
    Ok(BootedEnclave {
        engine,
        identity,
        attester,
        documents,
        claims,
    })
}

/// The attester `config` names.
///
/// # Errors
/// [`BootError::Attester`].
pub fn open_attester(config: &EnclaveConfig) -> Result<Arc<dyn Attester>, BootError> {
    Ok(match &config.attester {
        AttesterChoice::Nsm => Arc::new(NsmAttester::open().map_err(BootError::Attester)?),
        AttesterChoice::Dev { pki_dir } => {
            let ca = DevCa::load_or_create(pki_dir).map_err(BootError::Attester)?;
            let measurements = DevMeasurements::for_running_executable(&config.model_sha256)
                .map_err(BootError::Attester)?;
            Arc::new(DevAttester::new(ca, measurements).map_err(BootError::Attester)?)
        }
    })
}

/// Requests one new document for `request` and makes it current.
///
/// # Errors
/// The attester's error; the cache keeps the previous document.
pub fn refresh_once(
    attester: &dyn Attester,
    request: &AttestationRequest,
    documents: &DocumentCache,
) -> Result<BootDocument, BootError> {
    let bytes = attester.attest(request).map_err(BootError::Attester)?;
    let document = BootDocument::from_bytes(bytes)?;
    documents.replace(document.clone());
    Ok(document)
}

/// Keeps `documents` fresh forever (spawn it on the runtime): sleeps until the current
/// document is half-way to its leaf's expiry, requests a new one for `claims` as they are
/// then, retries every [`RETRY_DELAY`] on failure (logging each failure).
pub async fn run_refresher(
    attester: Arc<dyn Attester>,
    claims: BootClaims,
    documents: DocumentCache,
) {
    run_refresher_observed(attester, claims, documents, |_| {}).await;
}

/// [`run_refresher`], telling `on_attempt` the outcome of every refresh attempt (`true` for a
/// new document): the server counts them in its metrics.
pub async fn run_refresher_observed(
    attester: Arc<dyn Attester>,
    claims: BootClaims,
    documents: DocumentCache,
    on_attempt: impl Fn(bool) + Send + Sync + 'static,
) {
    loop {
        let delay = documents.current().refresh_delay(UnixMillis::now());
        tokio::time::sleep(delay).await;
        loop {
            let (attester, request, cache) = (
                Arc::clone(&attester),
                claims.request(None),
                documents.clone(),
            );
            let outcome = tokio::task::spawn_blocking(move || {
                refresh_once(attester.as_ref(), &request, &cache)
            })
            .await;
            match outcome {
                Ok(Ok(document)) => {
                    on_attempt(true);
                    tracing::info!(
                        timestamp = %document.timestamp,
                        leaf_not_after = %document.leaf_not_after,
                        "boot attestation document refreshed"
                    );
                    break;
                }
                Ok(Err(error)) => {
                    on_attempt(false);
                    tracing::error!(%error, "boot attestation document refresh failed; retrying");
                }
                Err(error) => {
                    on_attempt(false);
                    tracing::error!(%error, "boot attestation document refresh task failed; retrying");
                }
            }
            tokio::time::sleep(RETRY_DELAY).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(timestamp_ms: u64, not_after_ms: u64) -> BootDocument {
        BootDocument {
            bytes: Arc::from(Vec::new()),
            timestamp: UnixMillis(timestamp_ms),
            leaf_not_after: UnixMillis(not_after_ms),
            operator: None,
        }
    }

    #[test]
    fn an_operator_is_bound_once() {
        let binding = OperatorBinding::default();
        assert_eq!(binding.get(), None);
        assert_eq!(binding.bind([0u8; 20]), Err(OperatorError::Zero));
        assert_eq!(binding.get(), None, "the zero address binds nothing");
        binding.bind([1u8; 20]).expect("first binding");
        binding.bind([1u8; 20]).expect("the same operator again");
        assert!(matches!(
            binding.bind([2u8; 20]),
            Err(OperatorError::AlreadyBound { .. })
        ));
        assert_eq!(binding.clone().get(), Some([1u8; 20]), "clones share it");
    }

    #[test]
    fn refresh_happens_halfway_to_the_leaf_expiry() {
        let three_hours = 3 * 3600 * 1000;
        let doc = document(1_000_000, 1_000_000 + three_hours);
        assert_eq!(
            doc.refresh_delay(UnixMillis(1_000_000)),
            Duration::from_millis(three_hours / 2)
        );
        assert_eq!(
            doc.refresh_delay(UnixMillis(1_000_000 + 3600 * 1000)),
            Duration::from_millis(1800 * 1000)
        );
        // Past the refresh point (or a clock jump): soon, but never in a tight loop.
        assert_eq!(
            doc.refresh_delay(UnixMillis(1_000_000 + three_hours)),
            MIN_REFRESH_DELAY
        );
        // A leaf already expired at its own timestamp: the minimum delay.
        assert_eq!(
            document(5_000, 1_000).refresh_delay(UnixMillis(5_000)),
            MIN_REFRESH_DELAY
        );
    }

    #[test]
    fn malformed_documents_are_refused() {
        assert!(matches!(
            BootDocument::from_bytes(b"garbage".to_vec()),
            Err(BootError::DocumentValidity { .. })
        ));
    }
}
