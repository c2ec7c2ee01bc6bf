//! The on-chain statements (docs/protocol.md §5, docs/onchain.md): the relay's EIP-712
//! `Fulfillment` that an enclave signs for `InferenceRelay.fulfill`, and the registry's
//! `EnclaveRegistration` that a trusted verifier key signs after checking an attestation
//! document. Both use the chain-bound domain `(name, version, chainId, verifyingContract)`, so a
//! signature for one chain or contract is worthless on any other.
//!
//! The digests here are what the contracts compute (`InferenceRelay.fulfillmentDigest`,
//! `EnclaveRegistry.registrationDigest`); the tests check them against vectors produced with
//! Foundry's `cast` (`contracts/test/data/eip712-vectors.json`).

use sha3::{Digest, Keccak256};

use crate::receipt::{EthereumAddress, eip712_digest, keccak256};

/// The EIP-712 domain type of both on-chain statements.
pub const CHAIN_DOMAIN_TYPE: &str =
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
/// The relay's domain `name`.
pub const RELAY_DOMAIN_NAME: &str = "InferenceRelay";
/// The registry's domain `name`.
pub const REGISTRY_DOMAIN_NAME: &str = "EnclaveRegistry";
/// The `version` of both domains.
pub const ONCHAIN_DOMAIN_VERSION: &str = "1";
/// The struct type an enclave signs to fulfil a request.
pub const FULFILLMENT_TYPE: &str = "Fulfillment(bytes32 requestId,address operator,bytes32 modelHash,bytes32 inputHash,bytes32 paramsHash,bytes32 outputHash)";
/// The struct type a verifier key signs to register an enclave.
pub const REGISTRATION_TYPE: &str = "EnclaveRegistration(address enclave,address operator,bytes32 imageId,bytes32 modelHash,uint64 expiry,uint64 attestedAtMs)";

/// A chain-bound EIP-712 domain: one contract on one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractDomain {
    /// The domain `name` (`"InferenceRelay"` or `"EnclaveRegistry"`).
    pub name: &'static str,
    /// The chain id.
    pub chain_id: u64,
    /// The contract's address (`verifyingContract`).
    pub contract: EthereumAddress,
}

impl ContractDomain {
    /// The relay at `relay` on `chain_id`.
    pub fn relay(chain_id: u64, relay: EthereumAddress) -> Self {
        Self {
            name: RELAY_DOMAIN_NAME,
            chain_id,
            contract: relay,
        }
    }

    /// The registry at `registry` on `chain_id`.
    pub fn registry(chain_id: u64, registry: EthereumAddress) -> Self {
        Self {
            name: REGISTRY_DOMAIN_NAME,
            chain_id,
            contract: registry,
        }
    }

    /// `hashStruct(EIP712Domain{name, version, chainId, verifyingContract})`.
    pub fn separator(&self) -> [u8; 32] {
        let mut hasher = Keccak256::new();
        hasher.update(keccak256(CHAIN_DOMAIN_TYPE.as_bytes()));
        hasher.update(keccak256(self.name.as_bytes()));
        hasher.update(keccak256(ONCHAIN_DOMAIN_VERSION.as_bytes()));
        hasher.update(u64_word(self.chain_id));
        hasher.update(address_word(&self.contract));
        hasher.finalize().into()
    }
}

/// What an enclave's fulfilment signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fulfillment {
    /// The relay's request id.
    pub request_id: [u8; 32],
    /// The operator that claimed the request and is paid for it: the enclave signs only for the
    /// operator it serves, so its answer is worth nothing to any other claimer.
    pub operator: EthereumAddress,
    /// The model the request asked for (the enclave's own model hash).
    pub model_hash: [u8; 32],
    /// keccak256 of the request's exact `input` bytes.
    pub input_hash: [u8; 32],
    /// keccak256 of the request's exact `params` bytes.
    pub params_hash: [u8; 32],
    /// keccak256 of the exact `output` bytes submitted to `fulfill`.
    pub output_hash: [u8; 32],
}

impl Fulfillment {
    /// The statement for a request's bytes and the answer's bytes, for `operator`.
    pub fn for_exchange(
        request_id: [u8; 32],
        operator: EthereumAddress,
        model_hash: [u8; 32],
        input: &[u8],
        params: &[u8],
        output: &[u8],
    ) -> Self {
        Self {
            request_id,
            operator,
            model_hash,
            input_hash: keccak256(input),
            params_hash: keccak256(params),
            output_hash: keccak256(output),
        }
    }

    /// `hashStruct(Fulfillment)`.
    pub fn struct_hash(&self) -> [u8; 32] {
        let mut hasher = Keccak256::new();
        hasher.update(keccak256(FULFILLMENT_TYPE.as_bytes()));
        hasher.update(self.request_id);
        hasher.update(address_word(&self.operator));
        hasher.update(self.model_hash);
        hasher.update(self.input_hash);
        hasher.update(self.params_hash);
        hasher.update(self.output_hash);
        hasher.finalize().into()
    }

    /// The digest the enclave signs for the relay `domain`.
    pub fn digest(&self, domain: &ContractDomain) -> [u8; 32] {
        eip712_digest(&domain.separator(), &self.struct_hash())
    }
}

/// What a verifier key's registration statement covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// The enclave's signing address (from the document's `public_key`).
    pub enclave: EthereumAddress,
    /// The operator the enclave serves (from the document's boot binding).
    pub operator: EthereumAddress,
    /// `keccak256(pcr0 || pcr1 || pcr2)`: see [`image_id`].
    pub image_id: [u8; 32],
    /// The model the enclave serves (from the document's boot binding).
    pub model_hash: [u8; 32],
    /// Registration expiry, seconds since the Unix epoch.
    pub expiry: u64,
    /// The attestation document's timestamp, milliseconds.
    pub attested_at_ms: u64,
}

impl Registration {
    /// `hashStruct(EnclaveRegistration)`.
    pub fn struct_hash(&self) -> [u8; 32] {
        let mut hasher = Keccak256::new();
        hasher.update(keccak256(REGISTRATION_TYPE.as_bytes()));
        hasher.update(address_word(&self.enclave));
        hasher.update(address_word(&self.operator));
        hasher.update(self.image_id);
        hasher.update(self.model_hash);
        hasher.update(u64_word(self.expiry));
        hasher.update(u64_word(self.attested_at_ms));
        hasher.finalize().into()
    }

    /// The digest the verifier key signs for the registry `domain`.
    pub fn digest(&self, domain: &ContractDomain) -> [u8; 32] {
        eip712_digest(&domain.separator(), &self.struct_hash())
    }
}

/// The registry's image id: `keccak256(pcr0 || pcr1 || pcr2)` over the raw PCR bytes.
pub fn image_id(pcr0: &[u8], pcr1: &[u8], pcr2: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(pcr0);
    hasher.update(pcr1);
    hasher.update(pcr2);
    hasher.finalize().into()
}

fn u64_word(value: u64) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[24..].copy_from_slice(&value.to_be_bytes());
    word
}

fn address_word(address: &EthereumAddress) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[12..].copy_from_slice(address);
    word
}
