//! Answers from the attested enclave: `POST /v1/onchain/fulfillments` (docs/protocol.md §5) over
//! an [`attest::connection::AttestedConnection`], so the relayer talks only to an enclave whose
//! attestation verified under its policy, and every answer's off-chain receipt verifies too.
//! The connection is re-established (with a fresh attestation) after any failure.

use alloy::primitives::{Address, B256, Bytes};
use attest::connection::{AttestedConnection, ConnectOptions};
use attest::{ClientPolicy, TrustedEnclave};
use attestation_verifier::onchain::ContractDomain;
use attestation_verifier::protocol::FULFILLMENTS_PATH;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::error::RelayerError;
use crate::relay::AnswerSource;
use crate::state::{Job, SignedAnswer};

/// An attested enclave as an [`AnswerSource`].
#[derive(Debug)]
pub struct EnclaveAnswers {
    url: String,
    policy: ClientPolicy,
    options: ConnectOptions,
    model_hash: B256,
    enclave: Address,
    operator: Address,
    /// The attestation the first connection verified (the key never changes: a new key is
    /// [`RelayerError::EnclaveKeyChanged`]).
    trusted: TrustedEnclave,
    /// That connection's attestation document, as verified.
    document: Vec<u8>,
    connection: Mutex<Option<AttestedConnection>>,
}

#[derive(Deserialize)]
struct FulfillmentAnswer {
    output: Bytes,
    signature: Bytes,
    enclave: Address,
}

impl EnclaveAnswers {
    /// Connects to the enclave at `url`, verifies it under `policy`, and checks that its
    /// attestation binds `operator` (the enclave signs fulfilments for that operator only;
    /// [`crate::parent::bind_operator`] binds it).
    ///
    /// # Errors
    /// [`RelayerError::Enclave`] when it cannot be reached or is not trusted,
    /// [`RelayerError::OperatorNotServed`] when it serves no operator or another one.
    pub async fn connect(
        url: &str,
        policy: ClientPolicy,
        options: ConnectOptions,
        operator: Address,
    ) -> Result<Self, RelayerError> {
        let connection = AttestedConnection::connect(url, policy.clone(), options.clone())
            .await
            .map_err(|error| RelayerError::Enclave(error.to_string()))?;
        check_operator(url, &connection, operator)?;
        let trusted = connection.enclave();
        let model_hash = B256::from(trusted.binding.model_sha256);
        let enclave = Address::from(trusted.signer.address);
        tracing::info!(%enclave, model = %model_hash, url, "enclave attested");
        Ok(Self {
            url: url.to_owned(),
            policy,
            options,
            model_hash,
            enclave,
            operator,
            trusted: connection.enclave().clone(),
            document: connection.document().to_vec(),
            connection: Mutex::new(Some(connection)),
        })
    }

    /// The attested enclave's signing address.
    pub fn enclave_address(&self) -> Address {
        self.enclave
    }

    /// The enclave as its attestation verified (what a registration statement is made from).
    pub fn trusted(&self) -> &TrustedEnclave {
        &self.trusted
    }

    /// The attestation document that verified (what `NitroRegistrar` is given).
    pub fn document(&self) -> &[u8] {
        &self.document
    }

    async fn ask(
        &self,
        job: &Job,
        relay_domain: &ContractDomain,
    ) -> Result<SignedAnswer, RelayerError> {
        let mut slot = self.connection.lock().await;
        if slot.is_none() {
            let connection =
                AttestedConnection::connect(&self.url, self.policy.clone(), self.options.clone())
                    .await
                    .map_err(|error| RelayerError::Enclave(error.to_string()))?;
            // A restarted enclave has a new key: it must be re-registered before its answers
            // are accepted on-chain, so it is refused here rather than claimed for.
            let enclave = Address::from(connection.enclave().signer.address);
            if enclave != self.enclave {
                return Err(RelayerError::EnclaveKeyChanged {
                    url: self.url.clone(),
                    expected: self.enclave,
                    attested: enclave,
                });
            }
            check_operator(&self.url, &connection, self.operator)?;
            *slot = Some(connection);
        }
        let Some(connection) = slot.as_mut() else {
            return Err(RelayerError::Enclave("no connection".into()));
        };
        let body = serde_json::json!({
            "chain_id": relay_domain.chain_id,
            "relay": Address::from(relay_domain.contract),
            "request_id": job.request_id,
            "operator": self.operator,
            "model_hash": job.model_hash,
            "input": job.input,
            "params": job.params,
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let result = connection.post_json_verified(FULFILLMENTS_PATH, body).await;
        let verified = match result {
            Ok(verified) => verified,
            Err(error) => {
                *slot = None;
                return Err(RelayerError::Enclave(error.to_string()));
            }
        };
        let answer: FulfillmentAnswer =
            serde_json::from_slice(&verified.body).map_err(|error| {
                RelayerError::Enclave(format!("the fulfilment answer is malformed: {error}"))
            })?;
        if answer.enclave != self.enclave {
            return Err(RelayerError::Enclave(format!(
                "the answer names enclave {}, the attested one is {}",
                answer.enclave, self.enclave
            )));
        }
        Ok(SignedAnswer {
            output: answer.output,
            signature: answer.signature,
            enclave: self.enclave,
        })
    }
}

/// The attested document must bind `operator`: an enclave bound to nobody (or to another
/// operator) refuses to sign fulfilments for us, and its registration would not be ours.
fn check_operator(
    url: &str,
    connection: &AttestedConnection,
    operator: Address,
) -> Result<(), RelayerError> {
    let attested = connection.enclave().binding.operator().map(Address::from);
    if attested == Some(operator) {
        return Ok(());
    }
    Err(RelayerError::OperatorNotServed {
        url: url.to_owned(),
        operator,
        attested,
    })
}

impl AnswerSource for EnclaveAnswers {
    fn model_hash(&self) -> B256 {
        self.model_hash
    }

    async fn answer(
        &self,
        job: &Job,
        relay_domain: &ContractDomain,
    ) -> Result<SignedAnswer, RelayerError> {
        self.ask(job, relay_domain).await
    }
}
