//! Receipts (docs/protocol.md §3): an EIP-712 signature by the attested secp256k1 key over
//! `Receipt(bytes32 modelHash,bytes32 requestHash,bytes32 responseHash,uint64 timestampMs)`
//! in the domain `EIP712Domain(string name,string version)` = ("AttestedInference", "1").
//!
//! The enclave signs with the digest computed here ([`ReceiptClaims::digest`]); clients verify
//! with [`verify_receipt`], which checks, in this order: the attested key, the signature
//! (65 bytes, v 27/28, low-S, recovering to the attested key's address), the model hash
//! against the document's boot binding, then the request and response bodies.

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use sha3::{Digest, Keccak256};

use crate::binding::{BindingError, BootBinding};
use crate::crypto::sha256;
use crate::error::to_hex;
use crate::verifier::VerifiedAttestation;

/// The receipt domain's `name`.
pub const RECEIPT_DOMAIN_NAME: &str = "AttestedInference";
/// The receipt domain's `version`.
pub const RECEIPT_DOMAIN_VERSION: &str = "1";
/// The EIP-712 domain type of receipts (no chain id: receipts are off-chain statements).
pub const RECEIPT_DOMAIN_TYPE: &str = "EIP712Domain(string name,string version)";
/// The EIP-712 struct type of receipts.
pub const RECEIPT_TYPE: &str =
    "Receipt(bytes32 modelHash,bytes32 requestHash,bytes32 responseHash,uint64 timestampMs)";
/// Length of a recoverable secp256k1 signature `r || s || v`.
pub const RECOVERABLE_SIGNATURE_BYTES: usize = 65;
/// Length of an uncompressed SEC1 secp256k1 point `0x04 || x || y`.
pub const SECP256K1_UNCOMPRESSED_POINT_BYTES: usize = 65;

/// An Ethereum address: the last 20 bytes of keccak256(x || y) of a secp256k1 public key.
pub type EthereumAddress = [u8; 20];

/// Why a receipt (or a signed stream chunk) was rejected: one variant per failed check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The attestation document carries no `public_key`, so nothing vouches for a signer.
    #[error("the attestation document carries no public_key to check the receipt signer against")]
    AttestedKeyMissing,
    /// The attested `public_key` is not a 65-byte uncompressed secp256k1 point.
    #[error(
        "the attested public_key ({length} bytes) is not an uncompressed secp256k1 point (65 bytes, 0x04 || x || y, on the curve)"
    )]
    AttestedKeyInvalid {
        /// Its length.
        length: usize,
    },
    /// The document's `user_data` is not a usable boot binding.
    #[error("the attestation document's user_data is not a boot binding: {0}")]
    Binding(#[from] BindingError),
    /// The signature is not 65 bytes.
    #[error("receipt signature must be 65 bytes (r || s || v), found {length}")]
    SignatureLength {
        /// Actual length.
        length: usize,
    },
    /// v is not 27 or 28.
    #[error("receipt signature recovery byte v must be 27 or 28, found {v}")]
    RecoveryByte {
        /// The byte found.
        v: u8,
    },
    /// r or s is zero or not below the curve order.
    #[error("receipt signature scalar r or s is outside 1..n")]
    SignatureScalarOutOfRange,
    /// s is in the upper half of the order (a malleated signature).
    #[error("receipt signature is high-S; only low-S signatures are accepted")]
    HighS,
    /// No public key recovers from the signature and digest.
    #[error("no public key recovers from the receipt signature")]
    SignerUnrecoverable,
    /// The signature recovers to a key other than the attested one: the receipt was signed
    /// by another key, or its fields were altered after signing.
    #[error("receipt is signed by {recovered}, the attested enclave key is {expected}")]
    SignerMismatch {
        /// The attested address, 0x-hex.
        expected: String,
        /// The recovered address, 0x-hex.
        recovered: String,
    },
    /// The receipt names another model than the one the document attests.
    #[error("receipt model hash {receipt_hex} differs from the attested model {attested_hex}")]
    ModelHashMismatch {
        /// The receipt's `modelHash`, hex.
        receipt_hex: String,
        /// The model bound in the document's boot user_data, hex.
        attested_hex: String,
    },
    /// The request body is not the one the receipt covers.
    #[error("receipt request hash {receipt_hex} differs from sha256(request body) {actual_hex}")]
    RequestHashMismatch {
        /// The receipt's `requestHash`, hex.
        receipt_hex: String,
        /// SHA-256 of the bytes given, hex.
        actual_hex: String,
    },
    /// The response body (or stream) is not the one the receipt covers.
    #[error("receipt response hash {receipt_hex} differs from the response's {actual_hex}")]
    ResponseHashMismatch {
        /// The receipt's `responseHash`, hex.
        receipt_hex: String,
        /// SHA-256 of the body, or the stream's last chain value, hex.
        actual_hex: String,
    },
    /// A stream chunk is signed with an earlier time than the chunk before it.
    #[error(
        "stream chunk {chunk} is signed at {timestamp_ms} ms, before the previous chunk ({previous_ms} ms)"
    )]
    StreamTimestampBackwards {
        /// 1-based chunk index.
        chunk: u64,
        /// This chunk's timestamp.
        timestamp_ms: u64,
        /// The previous chunk's timestamp.
        previous_ms: u64,
    },
    /// An earlier chunk of this stream failed; nothing after it can be trusted.
    #[error(
        "an earlier chunk of this stream failed verification; the rest of the stream is untrusted"
    )]
    StreamAlreadyFailed,
}

/// The signed statement of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReceiptClaims {
    /// SHA-256 of the model file the enclave serves.
    pub model_hash: [u8; 32],
    /// SHA-256 of the exact HTTP request body.
    pub request_hash: [u8; 32],
    /// SHA-256 of the exact HTTP response body, or a stream's last chain value.
    pub response_hash: [u8; 32],
    /// The enclave's clock when it signed, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

impl ReceiptClaims {
    /// Claims for a non-streamed exchange: hashes the two bodies.
    pub fn for_bodies(
        model_hash: [u8; 32],
        request_body: &[u8],
        response_body: &[u8],
        timestamp_ms: u64,
    ) -> Self {
        Self {
            model_hash,
            request_hash: sha256(request_body),
            response_hash: sha256(response_body),
            timestamp_ms,
        }
    }

    /// EIP-712 `hashStruct(Receipt)`.
    pub fn struct_hash(&self) -> [u8; 32] {
        let mut timestamp_word = [0u8; 32];
        timestamp_word[24..].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        let mut hasher = Keccak256::new();
        hasher.update(keccak256(RECEIPT_TYPE.as_bytes()));
        hasher.update(self.model_hash);
        hasher.update(self.request_hash);
        hasher.update(self.response_hash);
        hasher.update(timestamp_word);
        hasher.finalize().into()
    }

    /// The EIP-712 digest the enclave signs: `keccak256(0x19 0x01 || domainSeparator ||
    /// hashStruct(receipt))`.
    pub fn digest(&self) -> [u8; 32] {
        eip712_digest(&receipt_domain_separator(), &self.struct_hash())
    }
}

/// keccak256 (Ethereum's, not SHA3-256).
pub fn keccak256(bytes: &[u8]) -> [u8; 32] {
    Keccak256::digest(bytes).into()
}

/// The receipt domain separator: `hashStruct(EIP712Domain{name, version})`.
pub fn receipt_domain_separator() -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(keccak256(RECEIPT_DOMAIN_TYPE.as_bytes()));
    hasher.update(keccak256(RECEIPT_DOMAIN_NAME.as_bytes()));
    hasher.update(keccak256(RECEIPT_DOMAIN_VERSION.as_bytes()));
    hasher.finalize().into()
}

/// `keccak256(0x19 0x01 || domain_separator || struct_hash)`, for any EIP-712 domain (the
/// on-chain fulfilment uses the same construction with the relay's domain).
pub fn eip712_digest(domain_separator: &[u8; 32], struct_hash: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update([0x19, 0x01]);
    hasher.update(domain_separator);
    hasher.update(struct_hash);
    hasher.finalize().into()
}

/// The Ethereum address of an uncompressed SEC1 secp256k1 public key.
///
/// # Errors
/// [`ReceiptError::AttestedKeyInvalid`] unless it is a 65-byte point on the curve.
pub fn ethereum_address(public_key_uncompressed: &[u8]) -> Result<EthereumAddress, ReceiptError> {
    let invalid = || ReceiptError::AttestedKeyInvalid {
        length: public_key_uncompressed.len(),
    };
    if public_key_uncompressed.len() != SECP256K1_UNCOMPRESSED_POINT_BYTES
        || public_key_uncompressed[0] != 0x04
    {
        return Err(invalid());
    }
    // Decoding proves the point is on the curve: an address of a non-point would name a key
    // nobody can hold.
    VerifyingKey::from_sec1_bytes(public_key_uncompressed).map_err(|_| invalid())?;
    Ok(address_of_point(public_key_uncompressed))
}

fn address_of_point(uncompressed: &[u8]) -> EthereumAddress {
    let hash = keccak256(&uncompressed[1..]);
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash[12..]);
    address
}

fn address_of_key(key: &VerifyingKey) -> EthereumAddress {
    address_of_point(key.to_encoded_point(false).as_bytes())
}

/// `0x` + lowercase hex of an address.
pub fn address_hex(address: &EthereumAddress) -> String {
    format!("0x{}", to_hex(address))
}

/// Recovers the signer's address from a 65-byte `r || s || v` signature over `digest`,
/// accepting only v ∈ {27, 28} and low-S.
///
/// # Errors
/// The [`ReceiptError`] for the malformed part, or [`ReceiptError::SignerUnrecoverable`].
pub fn recover_signer(
    digest: &[u8; 32],
    signature: &[u8],
) -> Result<EthereumAddress, ReceiptError> {
    if signature.len() != RECOVERABLE_SIGNATURE_BYTES {
        return Err(ReceiptError::SignatureLength {
            length: signature.len(),
        });
    }
    let v = signature[64];
    let recovery_id = match v {
        27 | 28 => RecoveryId::from_byte(v - 27).ok_or(ReceiptError::RecoveryByte { v })?,
        _ => return Err(ReceiptError::RecoveryByte { v }),
    };
    let parsed = Signature::from_slice(&signature[..64])
        .map_err(|_| ReceiptError::SignatureScalarOutOfRange)?;
    if parsed.normalize_s().is_some() {
        return Err(ReceiptError::HighS);
    }
    let key = VerifyingKey::recover_from_prehash(digest, &parsed, recovery_id)
        .map_err(|_| ReceiptError::SignerUnrecoverable)?;
    Ok(address_of_key(&key))
}

/// A receipt as it travels: the claims and the enclave's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// What was signed.
    pub claims: ReceiptClaims,
    /// `r || s || v` (65 bytes when well-formed; checked at verification).
    pub signature: Vec<u8>,
}

/// A receipt that passed [`verify_receipt`] (or a stream's final check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    claims: ReceiptClaims,
    digest: [u8; 32],
    signer: EthereumAddress,
}

impl VerifiedReceipt {
    /// The verified claims.
    pub fn claims(&self) -> &ReceiptClaims {
        &self.claims
    }
    /// The EIP-712 digest that was signed (what a per-response document binds).
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }
    /// The attested enclave address that signed it.
    pub fn signer(&self) -> EthereumAddress {
        self.signer
    }
}

/// The attested signer and model of a verified boot document, extracted once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttestedSigner {
    /// The enclave's address (from the document's `public_key`).
    pub address: EthereumAddress,
    /// The document's boot binding.
    pub binding: BootBinding,
}

impl AttestedSigner {
    /// Extracts the signer and binding from a verified boot document.
    ///
    /// # Errors
    /// [`ReceiptError::AttestedKeyMissing`], [`ReceiptError::AttestedKeyInvalid`] or
    /// [`ReceiptError::Binding`].
    pub fn from_attestation(attestation: &VerifiedAttestation) -> Result<Self, ReceiptError> {
        let public_key = attestation
            .public_key()
            .ok_or(ReceiptError::AttestedKeyMissing)?;
        let address = ethereum_address(public_key)?;
        let binding = BootBinding::from_attestation(attestation)?;
        Ok(Self { address, binding })
    }

    /// Checks signature and model hash of `claims` (not the bodies).
    ///
    /// # Errors
    /// The first failed check, as a [`ReceiptError`].
    pub fn verify_claims(
        &self,
        claims: &ReceiptClaims,
        signature: &[u8],
    ) -> Result<VerifiedReceipt, ReceiptError> {
        let digest = claims.digest();
        let recovered = recover_signer(&digest, signature)?;
        if recovered != self.address {
            return Err(ReceiptError::SignerMismatch {
                expected: address_hex(&self.address),
                recovered: address_hex(&recovered),
            });
        }
        if claims.model_hash != self.binding.model_sha256 {
            return Err(ReceiptError::ModelHashMismatch {
                receipt_hex: to_hex(&claims.model_hash),
                attested_hex: to_hex(&self.binding.model_sha256),
            });
        }
        Ok(VerifiedReceipt {
            claims: *claims,
            digest,
            signer: recovered,
        })
    }
}

/// Verifies a non-streamed receipt against the verified boot document that vouches for the
/// key and the exact request and response bodies.
///
/// # Errors
/// The first failed check, as a [`ReceiptError`].
pub fn verify_receipt(
    receipt: &Receipt,
    attestation: &VerifiedAttestation,
    request_body: &[u8],
    response_body: &[u8],
) -> Result<VerifiedReceipt, ReceiptError> {
    let signer = AttestedSigner::from_attestation(attestation)?;
    let verified = signer.verify_claims(&receipt.claims, &receipt.signature)?;
    check_hash(
        &receipt.claims.request_hash,
        &sha256(request_body),
        |receipt_hex, actual_hex| ReceiptError::RequestHashMismatch {
            receipt_hex,
            actual_hex,
        },
    )?;
    check_hash(
        &receipt.claims.response_hash,
        &sha256(response_body),
        |receipt_hex, actual_hex| ReceiptError::ResponseHashMismatch {
            receipt_hex,
            actual_hex,
        },
    )?;
    Ok(verified)
}

pub(crate) fn check_hash(
    claimed: &[u8; 32],
    actual: &[u8; 32],
    error: impl FnOnce(String, String) -> ReceiptError,
) -> Result<(), ReceiptError> {
    if claimed != actual {
        return Err(error(to_hex(claimed), to_hex(actual)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keccak_and_type_hashes_match_known_values() {
        // keccak256("") from the Keccak team's test vectors.
        assert_eq!(
            to_hex(&keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        // The EIP-712 domain type hash with name and version only, as OpenZeppelin documents.
        assert_eq!(
            to_hex(&keccak256(RECEIPT_DOMAIN_TYPE.as_bytes())),
            "b03948446334eb9b2196d5eb166f69b9d49403eb4a12f36de8d3f9f3cb8e15c3"
        );
    }

    #[test]
    fn rejects_malformed_signatures() {
        let digest = [1u8; 32];
        assert_eq!(
            recover_signer(&digest, &[0u8; 64]),
            Err(ReceiptError::SignatureLength { length: 64 })
        );
        let mut signature = [1u8; 65];
        signature[64] = 0;
        assert_eq!(
            recover_signer(&digest, &signature),
            Err(ReceiptError::RecoveryByte { v: 0 })
        );
        signature[64] = 27;
        signature[..32].fill(0);
        assert_eq!(
            recover_signer(&digest, &signature),
            Err(ReceiptError::SignatureScalarOutOfRange)
        );
        let mut high_s = [1u8; 65];
        high_s[32..64].fill(0xff);
        high_s[32] = 0x80;
        high_s[64] = 27;
        assert_eq!(recover_signer(&digest, &high_s), Err(ReceiptError::HighS));
    }

    #[test]
    fn address_rejects_non_points() {
        assert_eq!(
            ethereum_address(&[0x04; 64]),
            Err(ReceiptError::AttestedKeyInvalid { length: 64 })
        );
        assert_eq!(
            ethereum_address(&[0x04; 65]),
            Err(ReceiptError::AttestedKeyInvalid { length: 65 })
        );
    }
}
