//! The verifier-key registration route (docs/onchain.md §4): a party the registry owner trusts
//! checks the enclave's attestation document with the verifier library (here: over an attested
//! connection, under the caller's policy) and signs an `EnclaveRegistration` statement binding
//! the enclave's key to its image and model; anyone may submit it. The trustless route
//! ([`submit_nitro_registration`]) submits the attestation document itself to `NitroRegistrar`.

use alloy::primitives::{Address, B256, Bytes};
use alloy::providers::Provider;
use alloy::signers::SignerSync as _;
use alloy::signers::local::PrivateKeySigner;
use attest::TrustedEnclave;
use attestation_verifier::onchain::{ContractDomain, Registration, image_id};
use attestation_verifier::receipt::keccak256;

use crate::contracts::mined;
use crate::contracts::{IEnclaveRegistry, INitroRegistrar};
use crate::error::RelayerError;

/// The statement for a verified enclave, valid for `validity_secs` from `now_secs`.
///
/// # Errors
/// [`RelayerError::Usage`] when the document lacks PCR0..2 or binds no operator (the
/// registry refuses a key bound to nobody).
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
    let operator = trusted.binding.operator().ok_or_else(|| {
        RelayerError::Usage(
            "the enclave's attestation binds no operator yet: the operator binds it over the \
             enclave's parent channel first (relayer bind-operator)"
                .to_owned(),
        )
    })?;
    Ok(Registration {
        enclave: trusted.signer.address,
        operator,
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
        operator: Address::from(registration.operator),
        imageId: B256::from(registration.image_id),
        modelHash: B256::from(registration.model_hash),
        expiry: registration.expiry,
        attestedAtMs: registration.attested_at_ms,
    };
    let receipt = mined(
        IEnclaveRegistry::new(registry, provider.clone())
            .registerWithVerifierSignature(statement, Bytes::from(signature.as_bytes().to_vec()))
            .send()
            .await,
        "registerWithVerifierSignature",
        B256::ZERO,
    )
    .await?;
    Ok(receipt.transaction_hash)
}

/// What a registration through `NitroRegistrar` took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NitroRegistration {
    /// The registered enclave key's address.
    pub enclave: Address,
    /// One `(transaction, gas used)` per intermediate certificate cached first.
    pub cached: Vec<(B256, u64)>,
    /// The `register` transaction and its gas.
    pub tx: B256,
    /// Gas used by `register`.
    pub gas_used: u64,
}

/// The `hints` argument of `NitroRegistrar.verifyAttestation` / `register` for `document`: one
/// P-384 hint per signature, in the contract's order.
///
/// # Errors
/// [`RelayerError::Usage`] when the document does not verify off-chain (no hints exist for it).
pub fn nitro_hint_calldata(document: &[u8]) -> Result<Vec<Bytes>, RelayerError> {
    Ok(nitro_hints::document::document_hints(document)
        .map_err(|error| RelayerError::Usage(format!("no on-chain hints: {error}")))?
        .into_iter()
        .map(|hint| Bytes::copy_from_slice(hint.hint.as_bytes()))
        .collect())
}

/// The trustless route (docs/onchain.md, "Nitro route"): submits the enclave's attestation
/// document itself to `NitroRegistrar`, which verifies it on-chain, with the hints computed
/// here. Intermediate certificates the registrar has not cached yet are cached first, one
/// transaction each, so that no transaction comes near the per-transaction gas cap.
///
/// # Errors
/// [`RelayerError::Usage`] when the document does not verify off-chain (no hints exist for it),
/// [`RelayerError::Chain`] (with the revert data) or [`RelayerError::Reverted`].
pub async fn submit_nitro_registration<P: Provider + Clone>(
    provider: &P,
    registrar: Address,
    document: &[u8],
    expiry: u64,
) -> Result<NitroRegistration, RelayerError> {
    let parsed = attestation_verifier::parse_document(document)
        .map_err(|error| RelayerError::Usage(format!("attestation document: {error}")))?;
    let hints = nitro_hint_calldata(document)?;
    let contract = INitroRegistrar::new(registrar, provider.clone());

    let mut cached = Vec::new();
    let cabundle = parsed.cabundle();
    for index in 1..cabundle.len() {
        let hash = keccak256(&cabundle[index]);
        let entry = contract
            .cachedCertificate(B256::from(hash))
            .call()
            .await
            .map_err(|e| RelayerError::chain("cachedCertificate", e))?;
        if entry.hash != B256::ZERO {
            continue;
        }
        let receipt = mined(
            contract
                .cacheCertificate(
                    Bytes::copy_from_slice(&cabundle[index]),
                    B256::from(keccak256(&cabundle[index - 1])),
                    hints[index - 1].clone(),
                )
                .send()
                .await,
            "cacheCertificate",
            B256::ZERO,
        )
        .await?;
        cached.push((receipt.transaction_hash, receipt.gas_used));
    }

    let call = contract.register(Bytes::copy_from_slice(document), hints, expiry);
    let enclave = call
        .call()
        .await
        .map_err(|e| RelayerError::chain("register (simulated)", e))?;
    let receipt = mined(call.send().await, "register", B256::ZERO).await?;
    Ok(NitroRegistration {
        enclave,
        cached,
        tx: receipt.transaction_hash,
        gas_used: receipt.gas_used,
    })
}
