//! The attester seam: "give me an attestation document for (public_key, user_data, nonce)".
//!
//! Production uses the Nitro Secure Module ([`NsmAttester`], `/dev/nsm`); development and tests
//! use [`DevAttester`], which emits documents of the identical format signed by a locally
//! generated P-384 CA. Both return the raw COSE_Sign1 bytes and check, before returning, that
//! the document parses and carries exactly the requested fields (fail closed: a document that
//! does not say what we asked for is never handed out).

mod cbor;
mod dev;
mod nsm;

use std::fmt;
use std::path::PathBuf;

use attestation_verifier::binding::BootBinding;
use attestation_verifier::{DocumentError, VerifyError, parse_document};

pub use dev::{
    DEV_LEAF_LIFETIME, DEV_PCR1_MARKER, DevAttester, DevCa, DevMeasurements, ROOT_CERTIFICATE_FILE,
    ROOT_KEY_FILE,
};
pub use nsm::NsmAttester;

/// The NSM's field limits, which the verifier's parser enforces too.
pub use attestation_verifier::protocol::{
    MAX_NONCE_BYTES, MAX_PUBLIC_KEY_BYTES, MAX_USER_DATA_BYTES,
};

/// What a document must carry. Absent fields appear as CBOR null in the document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttestationRequest {
    /// The key the document vouches for (ours: the 65-byte secp256k1 signing key).
    pub public_key: Option<Vec<u8>>,
    /// Application data (ours: a `0x01` boot or `0x02` response binding).
    pub user_data: Option<Vec<u8>>,
    /// A verifier's challenge.
    pub nonce: Option<Vec<u8>>,
}

impl AttestationRequest {
    /// A boot document's request (docs/protocol.md §2): the enclave's signing key as
    /// `public_key`, its boot binding as `user_data`, and the client's nonce if any.
    pub fn boot(public_key: &[u8], binding: &BootBinding, nonce: Option<Vec<u8>>) -> Self {
        Self {
            public_key: Some(public_key.to_vec()),
            user_data: Some(binding.to_user_data().to_vec()),
            nonce,
        }
    }

    /// Checks the NSM's size limits, so both attesters refuse the same requests.
    ///
    /// # Errors
    /// [`AttesterError::FieldTooLarge`] for the first field over its limit.
    pub fn check_limits(&self) -> Result<(), AttesterError> {
        let limits = [
            ("public_key", &self.public_key, MAX_PUBLIC_KEY_BYTES),
            ("user_data", &self.user_data, MAX_USER_DATA_BYTES),
            ("nonce", &self.nonce, MAX_NONCE_BYTES),
        ];
        for (field, value, max) in limits {
            if let Some(value) = value
                && value.len() > max
            {
                return Err(AttesterError::FieldTooLarge {
                    field,
                    length: value.len(),
                    max,
                });
            }
        }
        Ok(())
    }
}

/// Which implementation produced a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttesterKind {
    /// The Nitro Secure Module.
    Nsm,
    /// The development attester (trusted only with its root passed explicitly).
    Development,
}

impl fmt::Display for AttesterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Nsm => "nsm",
            Self::Development => "dev",
        })
    }
}

/// Produces attestation documents.
pub trait Attester: Send + Sync + fmt::Debug {
    /// A document binding `request`, as raw COSE_Sign1 bytes.
    ///
    /// # Errors
    /// An [`AttesterError`] when no document matching the request could be produced.
    fn attest(&self, request: &AttestationRequest) -> Result<Vec<u8>, AttesterError>;

    /// Which implementation this is.
    fn kind(&self) -> AttesterKind;
}

/// Why no document was produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttesterError {
    /// A requested field is larger than the NSM accepts.
    #[error("{field} is {length} bytes, the NSM accepts at most {max}")]
    FieldTooLarge {
        /// The field.
        field: &'static str,
        /// Its length.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// The NSM device cannot be opened (not inside a Nitro enclave, or no permission).
    #[error(
        "cannot open the Nitro Secure Module at {path}: {source} (outside a Nitro enclave use the development attester)"
    )]
    DeviceUnavailable {
        /// The device path.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The NSM answered with an error code.
    #[error("the NSM refused the attestation request: {code}")]
    NsmRejected {
        /// The NSM's error code.
        code: String,
    },
    /// The NSM answered with something other than a document.
    #[error("the NSM answered an attestation request with an unexpected response: {response}")]
    UnexpectedNsmResponse {
        /// The response, summarised.
        response: String,
    },
    /// The produced document does not parse as a Nitro attestation document.
    #[error("the attester produced a malformed document: {0}")]
    MalformedDocument(#[source] DocumentError),
    /// The produced document does not carry the requested value of a field.
    #[error("the attester's document does not carry the requested {field}")]
    DocumentMismatch {
        /// The field that differs.
        field: &'static str,
    },
    /// Reading or writing the development CA directory failed.
    #[error("development CA: cannot {action} {path}: {source}")]
    DevCaIo {
        /// What was attempted.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// One of the two development CA files exists without the other.
    #[error(
        "development CA directory is incomplete: {present} exists but {missing} does not; restore it or remove both to start a new CA"
    )]
    DevCaIncomplete {
        /// The file found.
        present: PathBuf,
        /// The file missing.
        missing: PathBuf,
    },
    /// A development CA file does not hold what it must.
    #[error("development CA file {path} is unusable: {reason}")]
    DevCaInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Generating a key or certificate failed.
    #[error("cannot generate the {what}: {reason}")]
    Generation {
        /// What was being generated.
        what: &'static str,
        /// The library's reason.
        reason: String,
    },
    /// Reading the running executable for PCR0 failed.
    #[error("cannot measure the running executable {path}: {source}")]
    Measurement {
        /// The executable.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The system clock is before the Unix epoch or beyond what certificates can express.
    #[error("the system clock is unusable for certificates: {reason}")]
    Clock {
        /// What is wrong.
        reason: String,
    },
    /// A freshly produced development document does not verify under the development root.
    #[error("the development attester's own document does not verify under its root: {0}")]
    SelfCheckFailed(#[source] Box<VerifyError>),
}

/// Checks that `document` parses and carries exactly the requested fields.
pub(crate) fn check_document_matches(
    document: &[u8],
    request: &AttestationRequest,
) -> Result<(), AttesterError> {
    let parsed = parse_document(document).map_err(AttesterError::MalformedDocument)?;
    let expected = [
        (
            "public_key",
            parsed.public_key(),
            request.public_key.as_deref(),
        ),
        (
            "user_data",
            parsed.user_data(),
            request.user_data.as_deref(),
        ),
        ("nonce", parsed.nonce(), request.nonce.as_deref()),
    ];
    for (field, found, requested) in expected {
        if found != requested {
            return Err(AttesterError::DocumentMismatch { field });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_match_the_nsm() {
        let mut request = AttestationRequest {
            public_key: Some(vec![0; MAX_PUBLIC_KEY_BYTES]),
            user_data: Some(vec![0; MAX_USER_DATA_BYTES]),
            nonce: Some(vec![0; MAX_NONCE_BYTES]),
        };
        request.check_limits().expect("at the limits");
        request.nonce = Some(vec![0; MAX_NONCE_BYTES + 1]);
        assert!(matches!(
            request.check_limits(),
            Err(AttesterError::FieldTooLarge {
                field: "nonce",
                length: 513,
                max: 512
            })
        ));
        request.nonce = None;
        request.user_data = Some(vec![0; MAX_USER_DATA_BYTES + 1]);
        assert!(matches!(
            request.check_limits(),
            Err(AttesterError::FieldTooLarge {
                field: "user_data",
                ..
            })
        ));
        request.user_data = None;
        request.public_key = Some(vec![0; MAX_PUBLIC_KEY_BYTES + 1]);
        assert!(matches!(
            request.check_limits(),
            Err(AttesterError::FieldTooLarge {
                field: "public_key",
                ..
            })
        ));
    }
}
