//! What our enclave binds into a document's `user_data` (docs/protocol.md §2):
//! - boot documents: `0x01 || sha256(TLS certificate SubjectPublicKeyInfo DER) || model_sha256 ||
//!   operator`, the operator being the 20-byte address the enclave signs on-chain fulfilments
//!   for (zeros until its parent instance binds one, docs/protocol.md §2);
//! - per-response documents: `0x02 || receipt digest`.
//!
//! The leading byte names the layout, so that a per-response document can never be read as a
//! boot document (or the reverse) even though both are signed by the same NSM.

use crate::crypto::sha256;
use crate::error::to_hex;
use crate::verifier::VerifiedAttestation;

/// First byte of a boot binding.
pub const BOOT_BINDING_TAG: u8 = 0x01;
/// First byte of a per-response binding.
pub const RESPONSE_BINDING_TAG: u8 = 0x02;
/// Length of a boot binding: tag, TLS SPKI hash, model hash, operator address.
pub const BOOT_BINDING_BYTES: usize = 85;
/// Length of a per-response binding: tag, receipt digest.
pub const RESPONSE_BINDING_BYTES: usize = 33;

/// Why `user_data` is not the binding the caller needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The document carries no `user_data` (CBOR null).
    #[error("the attestation document carries no user_data")]
    UserDataMissing,
    /// `user_data` is present but empty.
    #[error("user_data is empty")]
    Empty,
    /// The first byte names no layout this protocol defines.
    #[error(
        "user_data starts with 0x{tag:02x}, which names no binding layout (0x01 boot, 0x02 response)"
    )]
    UnknownTag {
        /// The first byte.
        tag: u8,
    },
    /// The layout is known but the length is wrong for it.
    #[error("user_data with tag 0x{tag:02x} must be {expected} bytes, found {length}")]
    WrongLength {
        /// The first byte.
        tag: u8,
        /// Actual length.
        length: usize,
        /// The layout's length.
        expected: usize,
    },
    /// A valid binding of the other kind (a response binding where a boot binding was needed,
    /// or the reverse).
    #[error("user_data is a {found} binding where a {expected} binding was needed")]
    WrongKind {
        /// What the document carries.
        found: &'static str,
        /// What the caller needed.
        expected: &'static str,
    },
    /// The TLS key the connection presented is not the attested one.
    #[error("TLS SubjectPublicKeyInfo hashes to {actual_hex}, the document binds {attested_hex}")]
    TlsKeyMismatch {
        /// SHA-256 bound in the document, hex.
        attested_hex: String,
        /// SHA-256 of the presented SPKI, hex.
        actual_hex: String,
    },
    /// The document binds no operator (all zeros): the enclave signs no on-chain fulfilments.
    #[error("the document binds no operator: the enclave signs on-chain fulfilments for nobody")]
    OperatorMissing,
    /// The attested operator is not the one the caller expects.
    #[error("the document binds operator 0x{attested_hex}, expected 0x{expected_hex}")]
    OperatorMismatch {
        /// Operator bound in the document, hex.
        attested_hex: String,
        /// The caller's expected operator, hex.
        expected_hex: String,
    },
    /// The attested model is not the one the caller expects.
    #[error("the document binds model {attested_hex}, expected {expected_hex}")]
    ModelMismatch {
        /// Model hash bound in the document, hex.
        attested_hex: String,
        /// The caller's expected model hash, hex.
        expected_hex: String,
    },
}

/// A boot document's binding: the enclave's TLS key, the model it serves and the operator it
/// signs on-chain fulfilments for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BootBinding {
    /// SHA-256 of the TLS certificate's SubjectPublicKeyInfo DER.
    pub tls_spki_sha256: [u8; 32],
    /// SHA-256 of the model file (GGUF) the enclave loaded.
    pub model_sha256: [u8; 32],
    /// The operator's Ethereum address; zeros while the enclave serves no operator.
    pub operator: [u8; 20],
}

impl BootBinding {
    /// The binding for a TLS SubjectPublicKeyInfo (DER) and a model hash, with no operator.
    pub fn for_tls_spki(spki_der: &[u8], model_sha256: [u8; 32]) -> Self {
        Self {
            tls_spki_sha256: sha256(spki_der),
            model_sha256,
            operator: [0u8; 20],
        }
    }

    /// This binding naming `operator` (zeros: none).
    pub fn with_operator(self, operator: [u8; 20]) -> Self {
        Self { operator, ..self }
    }

    /// The operator the enclave serves, or `None` when it serves none (zeros).
    pub fn operator(&self) -> Option<[u8; 20]> {
        (self.operator != [0u8; 20]).then_some(self.operator)
    }

    /// The 85 `user_data` bytes.
    pub fn to_user_data(&self) -> [u8; BOOT_BINDING_BYTES] {
        let mut out = [0u8; BOOT_BINDING_BYTES];
        out[0] = BOOT_BINDING_TAG;
        out[1..33].copy_from_slice(&self.tls_spki_sha256);
        out[33..65].copy_from_slice(&self.model_sha256);
        out[65..].copy_from_slice(&self.operator);
        out
    }

    /// Parses a boot binding; any other layout is an error.
    ///
    /// # Errors
    /// [`BindingError`] naming what is wrong with `user_data`.
    pub fn parse(user_data: &[u8]) -> Result<Self, BindingError> {
        match UserDataBinding::parse(user_data)? {
            UserDataBinding::Boot(binding) => Ok(binding),
            UserDataBinding::Response(_) => Err(BindingError::WrongKind {
                found: "response",
                expected: "boot",
            }),
        }
    }

    /// The boot binding of a verified document.
    ///
    /// # Errors
    /// [`BindingError::UserDataMissing`] without `user_data`, else as [`BootBinding::parse`].
    pub fn from_attestation(attestation: &VerifiedAttestation) -> Result<Self, BindingError> {
        Self::parse(
            attestation
                .user_data()
                .ok_or(BindingError::UserDataMissing)?,
        )
    }

    /// Checks that `spki_der` (the TLS key a connection presented) is the attested one.
    ///
    /// # Errors
    /// [`BindingError::TlsKeyMismatch`].
    pub fn check_tls_spki(&self, spki_der: &[u8]) -> Result<(), BindingError> {
        let actual = sha256(spki_der);
        if actual != self.tls_spki_sha256 {
            return Err(BindingError::TlsKeyMismatch {
                attested_hex: to_hex(&self.tls_spki_sha256),
                actual_hex: to_hex(&actual),
            });
        }
        Ok(())
    }

    /// Checks that the enclave serves `expected_operator`.
    ///
    /// # Errors
    /// [`BindingError::OperatorMissing`] when it serves none, else
    /// [`BindingError::OperatorMismatch`].
    pub fn check_operator(&self, expected_operator: &[u8; 20]) -> Result<(), BindingError> {
        match self.operator() {
            None => Err(BindingError::OperatorMissing),
            Some(operator) if &operator == expected_operator => Ok(()),
            Some(operator) => Err(BindingError::OperatorMismatch {
                attested_hex: to_hex(&operator),
                expected_hex: to_hex(expected_operator),
            }),
        }
    }

    /// Checks that the attested model is `expected_model_sha256`.
    ///
    /// # Errors
    /// [`BindingError::ModelMismatch`].
    pub fn check_model(&self, expected_model_sha256: &[u8; 32]) -> Result<(), BindingError> {
        if &self.model_sha256 != expected_model_sha256 {
            return Err(BindingError::ModelMismatch {
                attested_hex: to_hex(&self.model_sha256),
                expected_hex: to_hex(expected_model_sha256),
            });
        }
        Ok(())
    }
}

/// A per-response document's binding: the digest of the receipt it vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseBinding {
    /// The EIP-712 digest of the receipt (see [`crate::receipt`]).
    pub receipt_digest: [u8; 32],
}

impl ResponseBinding {
    /// The 33 `user_data` bytes.
    pub fn to_user_data(&self) -> [u8; RESPONSE_BINDING_BYTES] {
        let mut out = [0u8; RESPONSE_BINDING_BYTES];
        out[0] = RESPONSE_BINDING_TAG;
        out[1..].copy_from_slice(&self.receipt_digest);
        out
    }

    /// Parses a per-response binding; any other layout is an error.
    ///
    /// # Errors
    /// [`BindingError`] naming what is wrong with `user_data`.
    pub fn parse(user_data: &[u8]) -> Result<Self, BindingError> {
        match UserDataBinding::parse(user_data)? {
            UserDataBinding::Response(binding) => Ok(binding),
            UserDataBinding::Boot(_) => Err(BindingError::WrongKind {
                found: "boot",
                expected: "response",
            }),
        }
    }
}

/// Either binding, as told apart by the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UserDataBinding {
    /// `0x01 || tls_spki_sha256 || model_sha256 || operator`.
    Boot(BootBinding),
    /// `0x02 || receipt_digest`.
    Response(ResponseBinding),
}

impl UserDataBinding {
    /// Parses `user_data` strictly: known tag, exact length.
    ///
    /// # Errors
    /// [`BindingError`] naming what is wrong.
    pub fn parse(user_data: &[u8]) -> Result<Self, BindingError> {
        let (&tag, rest) = user_data.split_first().ok_or(BindingError::Empty)?;
        let expected = match tag {
            BOOT_BINDING_TAG => BOOT_BINDING_BYTES,
            RESPONSE_BINDING_TAG => RESPONSE_BINDING_BYTES,
            other => return Err(BindingError::UnknownTag { tag: other }),
        };
        if user_data.len() != expected {
            return Err(BindingError::WrongLength {
                tag,
                length: user_data.len(),
                expected,
            });
        }
        let hash_at = |offset: usize| {
            let mut out = [0u8; 32];
            out.copy_from_slice(&rest[offset..offset + 32]);
            out
        };
        Ok(if tag == BOOT_BINDING_TAG {
            let mut operator = [0u8; 20];
            operator.copy_from_slice(&rest[64..84]);
            Self::Boot(BootBinding {
                tls_spki_sha256: hash_at(0),
                model_sha256: hash_at(32),
                operator,
            })
        } else {
            Self::Response(ResponseBinding {
                receipt_digest: hash_at(0),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_binding_round_trips_and_hashes_the_spki() {
        let binding = BootBinding::for_tls_spki(b"spki", [7u8; 32]);
        assert_eq!(binding.tls_spki_sha256, sha256(b"spki"));
        let bytes = binding.to_user_data();
        assert_eq!(bytes.len(), 85);
        assert_eq!(bytes[0], 0x01);
        assert_eq!(&bytes[33..65], &[7u8; 32]);
        assert_eq!(&bytes[65..], &[0u8; 20], "no operator: zeros");
        assert_eq!(binding.operator(), None);
        assert_eq!(BootBinding::parse(&bytes), Ok(binding));
        assert_eq!(
            UserDataBinding::parse(&bytes),
            Ok(UserDataBinding::Boot(binding))
        );
        assert_eq!(binding.check_tls_spki(b"spki"), Ok(()));
        assert!(matches!(
            binding.check_tls_spki(b"other"),
            Err(BindingError::TlsKeyMismatch { .. })
        ));
        assert_eq!(binding.check_model(&[7u8; 32]), Ok(()));
        assert!(matches!(
            binding.check_model(&[8u8; 32]),
            Err(BindingError::ModelMismatch { .. })
        ));
    }

    #[test]
    fn boot_binding_carries_the_operator() {
        let operator = [0x0f; 20];
        let binding = BootBinding::for_tls_spki(b"spki", [7u8; 32]).with_operator(operator);
        let bytes = binding.to_user_data();
        assert_eq!(&bytes[65..], &operator);
        let parsed = BootBinding::parse(&bytes).expect("parses");
        assert_eq!(parsed.operator(), Some(operator));
        assert_eq!(parsed.check_operator(&operator), Ok(()));
        assert!(matches!(
            parsed.check_operator(&[0x10; 20]),
            Err(BindingError::OperatorMismatch { .. })
        ));
        assert_eq!(
            BootBinding::for_tls_spki(b"spki", [7u8; 32]).check_operator(&operator),
            Err(BindingError::OperatorMissing)
        );
    }

    #[test]
    fn response_binding_round_trips() {
        let binding = ResponseBinding {
            receipt_digest: [9u8; 32],
        };
        let bytes = binding.to_user_data();
        assert_eq!(bytes[0], 0x02);
        assert_eq!(ResponseBinding::parse(&bytes), Ok(binding));
    }

    #[test]
    fn kinds_never_cross() {
        let boot = BootBinding::for_tls_spki(b"k", [1u8; 32]).to_user_data();
        let response = ResponseBinding {
            receipt_digest: [2u8; 32],
        }
        .to_user_data();
        assert!(matches!(
            ResponseBinding::parse(&boot),
            Err(BindingError::WrongKind { found: "boot", .. })
        ));
        assert!(matches!(
            BootBinding::parse(&response),
            Err(BindingError::WrongKind {
                found: "response",
                ..
            })
        ));
    }

    #[test]
    fn rejects_malformed_user_data() {
        assert_eq!(UserDataBinding::parse(&[]), Err(BindingError::Empty));
        assert_eq!(
            UserDataBinding::parse(&[0x03; 85]),
            Err(BindingError::UnknownTag { tag: 0x03 })
        );
        let boot = BootBinding::for_tls_spki(b"k", [1u8; 32]).to_user_data();
        // The earlier 65-byte layout (no operator) is refused, not read as something else.
        assert_eq!(
            UserDataBinding::parse(&boot[..65]),
            Err(BindingError::WrongLength {
                tag: 1,
                length: 65,
                expected: 85
            })
        );
        let mut long = boot.to_vec();
        long.push(0);
        assert!(matches!(
            UserDataBinding::parse(&long),
            Err(BindingError::WrongLength { length: 86, .. })
        ));
        assert_eq!(
            UserDataBinding::parse(&[0x02; 65]),
            Err(BindingError::WrongLength {
                tag: 2,
                length: 65,
                expected: 33
            })
        );
    }
}
