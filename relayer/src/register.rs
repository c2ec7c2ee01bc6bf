//! The verifier-key registration route (docs/onchain.md §4): a party the registry owner trusts
//! checks the enclave's attestation document with the verifier library (here: over an attested
//! connection, under the caller's policy) and signs an `EnclaveRegistration` statement binding
//! the enclave's key to its image and model; anyone may submit it.

use alloy::primitives::{Address, B256, Bytes};
use alloy::providers::Provider;
use alloy::signers::SignerSync as _;
use alloy::signers::local::PrivateKeySigner;
use attest::TrustedEnclave;
use attestation_verifier::onchain::{ContractDomain, Registration, image_id};

use crate::contracts::IEnclaveRegistry;
use crate::error::RelayerError;

/// The statement for a verified enclave, valid for `validity_secs` from `now_secs`.
///
/// # Errors
/// [`RelayerError::Usage`] when the document lacks PCR0..2.
pub fn registration_for(
    trusted: &TrustedEnclave,
    now_secs: u64,
    validity_secs: u64,
) -> Result<Registration, RelayerError> {
    let pcr = |index: u8| {
        trusted.attestation.pcr(index).ok_or_else(|| {
            RelayerError::Usage(format!("the attestation document has no PCR{index}"))
        })
    };
    Ok(Registration {
        enclave: trusted.signer.address,
        image_id: image_id(pcr(0)?, pcr(1)?, pcr(2)?),
        model_hash: trusted.binding.model_sha256,
        expiry: now_secs.saturating_add(validity_secs),
        attested_at_ms: trusted.attestation.timestamp().as_millis(),
    })
}

/// Signs `registration` with the verifier key for the registry at `registry` on `chain_id`,
/// submits it, and returns the transaction hash.
///
/// # Errors
/// [`RelayerError::Chain`] or [`RelayerError::Reverted`].
pub async fn submit_registration<P: Provider + Clone>(
    provider: &P,
    chain_id: u64,
    registry: Address,
    verifier_key: &PrivateKeySigner,
    registration: &Registration,
) -> Result<B256, RelayerError> {
    let digest = registration.digest(&ContractDomain::registry(chain_id, registry.into_array()));
    let signature = verifier_key
        .sign_hash_sync(&B256::from(digest))
        .map_err(|e| RelayerError::chain("signing the registration", e))?;
    let statement = IEnclaveRegistry::EnclaveRegistration {
        enclave: Address::from(registration.enclave),
        imageId: B256::from(registration.image_id),
        modelHash: B256::from(registration.model_hash),
        expiry: registration.expiry,
        attestedAtMs: registration.attested_at_ms,
    };
    let receipt = IEnclaveRegistry::new(registry, provider.clone())
        .registerWithVerifierSignature(statement, Bytes::from(signature.as_bytes().to_vec()))
        .send()
        .await
        .map_err(|e| RelayerError::chain("registerWithVerifierSignature", e))?
        .get_receipt()
        .await
        .map_err(|e| RelayerError::chain("registerWithVerifierSignature receipt", e))?;
    if !receipt.status() {
        return Err(RelayerError::Reverted {
            action: "registerWithVerifierSignature",
            tx: receipt.transaction_hash,
            request_id: B256::ZERO,
        });
    }
    Ok(receipt.transaction_hash)
}
