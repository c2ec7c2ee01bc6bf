//! X.509 processing for the attestation chain: every certificate is P-384 / ecdsa-with-SHA384,
//! CAs carry cA=TRUE and keyCertSign, the leaf is an end entity with digitalSignature.

use std::sync::Arc;

use x509_parser::asn1_rs::Oid;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_SIG_ECDSA_WITH_SHA384,
    OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_KEY_USAGE,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Version;

use crate::crypto::{P384Key, SignatureEncoding, sha256};
use crate::error::{CertificateRef, ChainPosition, VerifyError};
use crate::time::UnixMillis;

/// What the chain walk needs from a certificate once it has been parsed and checked on its own.
#[derive(Debug)]
pub(crate) struct ExaminedCertificate {
    pub(crate) sha256: [u8; 32],
    pub(crate) subject: String,
    pub(crate) subject_raw: Vec<u8>,
    pub(crate) issuer: String,
    pub(crate) issuer_raw: Vec<u8>,
    pub(crate) not_before: UnixMillis,
    pub(crate) not_after: UnixMillis,
    pub(crate) key: Arc<P384Key>,
    /// pathLenConstraint of a CA (None: unlimited).
    pub(crate) path_len_constraint: Option<u32>,
    /// The signed part and its DER signature, checked against the parent's key.
    pub(crate) tbs: Vec<u8>,
    pub(crate) signature_der: Vec<u8>,
}

impl ExaminedCertificate {
    pub(crate) fn reference(&self, position: ChainPosition) -> CertificateRef {
        CertificateRef {
            position,
            subject: self.subject.clone(),
        }
    }
}

/// The role a certificate plays, which decides its extension checks and key encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    CertificateAuthority,
    Leaf,
}

/// Parses one DER certificate and checks everything that does not depend on its neighbours:
/// algorithms, key, critical extensions and the flags its role requires.
pub(crate) fn examine(
    der: &[u8],
    position: ChainPosition,
    role: Role,
) -> Result<ExaminedCertificate, VerifyError> {
    let unnamed = || CertificateRef {
        position,
        subject: String::new(),
    };
    let (rest, certificate) =
        X509Certificate::from_der(der).map_err(|error| VerifyError::CertificateMalformed {
            certificate: unnamed(),
            reason: error.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(VerifyError::CertificateMalformed {
            certificate: unnamed(),
            reason: format!("{} bytes after the certificate", rest.len()),
        });
    }
    let reference = || CertificateRef {
        position,
        subject: certificate.subject().to_string(),
    };
    if certificate.version() != X509Version::V3 {
        return Err(VerifyError::CertificateMalformed {
            certificate: reference(),
            reason: "not an X.509 v3 certificate".to_owned(),
        });
    }

    // The outer algorithm and the signed copy inside the TBS must agree (RFC 5280 4.1.1.2),
    // and both must be ecdsa-with-SHA384 with absent parameters.
    let outer = &certificate.signature_algorithm;
    let inner = &certificate.tbs_certificate.signature;
    for algorithm in [outer, inner] {
        if algorithm.algorithm != OID_SIG_ECDSA_WITH_SHA384 || algorithm.parameters.is_some() {
            return Err(VerifyError::UnsupportedCertificateSignatureAlgorithm {
                certificate: reference(),
                algorithm_oid: algorithm.algorithm.to_id_string(),
            });
        }
    }

    let spki = certificate.public_key();
    let named_curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|parameters| Oid::try_from(parameters).ok());
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY
        || named_curve.as_ref() != Some(&OID_NIST_EC_P384)
        || spki.subject_public_key.unused_bits != 0
    {
        return Err(VerifyError::UnsupportedPublicKey {
            certificate: reference(),
        });
    }
    let encoding = match role {
        Role::CertificateAuthority => SignatureEncoding::Der,
        Role::Leaf => SignatureEncoding::Fixed,
    };
    let key =
        P384Key::from_uncompressed(&spki.subject_public_key.data, encoding).map_err(|_| {
            VerifyError::UnsupportedPublicKey {
                certificate: reference(),
            }
        })?;

    let mut ca_flag = None;
    let mut path_len_constraint = None;
    let mut key_usage = None;
    for extension in certificate.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::ParseError { error } => {
                return Err(VerifyError::CertificateMalformed {
                    certificate: reference(),
                    reason: format!(
                        "extension {} does not parse: {error}",
                        extension.oid.to_id_string()
                    ),
                });
            }
            ParsedExtension::BasicConstraints(constraints) => {
                ca_flag = Some(constraints.ca);
                path_len_constraint = constraints.path_len_constraint;
            }
            ParsedExtension::KeyUsage(usage) => {
                key_usage = Some((usage.key_cert_sign(), usage.digital_signature()));
            }
            _ => {}
        }
        // A critical extension we do not process would change the certificate's meaning
        // without us noticing (RFC 5280 4.2): refuse it.
        let understood = extension.oid == OID_X509_EXT_BASIC_CONSTRAINTS
            || extension.oid == OID_X509_EXT_KEY_USAGE;
        if extension.critical && !understood {
            return Err(VerifyError::UnknownCriticalExtension {
                certificate: reference(),
                extension_oid: extension.oid.to_id_string(),
            });
        }
    }
    // x509-parser reports duplicated extensions through these accessors.
    if let Err(error) = certificate
        .basic_constraints()
        .and_then(|_| certificate.key_usage())
    {
        return Err(VerifyError::CertificateMalformed {
            certificate: reference(),
            reason: error.to_string(),
        });
    }

    match role {
        Role::CertificateAuthority => {
            if ca_flag != Some(true) {
                return Err(VerifyError::NotACertificateAuthority {
                    certificate: reference(),
                });
            }
            if !key_usage.is_some_and(|(key_cert_sign, _)| key_cert_sign) {
                return Err(VerifyError::MissingKeyCertSign {
                    certificate: reference(),
                });
            }
        }
        Role::Leaf => {
            if ca_flag == Some(true) {
                return Err(VerifyError::LeafIsCertificateAuthority {
                    certificate: reference(),
                });
            }
            if !key_usage.is_some_and(|(_, digital_signature)| digital_signature) {
                return Err(VerifyError::LeafMissingDigitalSignature {
                    certificate: reference(),
                });
            }
            path_len_constraint = None;
        }
    }

    let validity = certificate.validity();
    Ok(ExaminedCertificate {
        sha256: sha256(der),
        subject: certificate.subject().to_string(),
        subject_raw: certificate.subject().as_raw().to_vec(),
        issuer: certificate.issuer().to_string(),
        issuer_raw: certificate.issuer().as_raw().to_vec(),
        not_before: seconds_to_millis(validity.not_before.timestamp()),
        not_after: seconds_to_millis(validity.not_after.timestamp()),
        key: Arc::new(key),
        path_len_constraint,
        tbs: certificate.tbs_certificate.as_ref().to_vec(),
        signature_der: certificate.signature_value.data.to_vec(),
    })
}

fn seconds_to_millis(seconds: i64) -> UnixMillis {
    UnixMillis(u64::try_from(seconds).unwrap_or(0).saturating_mul(1000))
}

/// Checks that `parent` issued `child`: names chain and the parent's key signed the child.
/// `signature_verdict` is the outcome of that same signature check when it was already computed
/// (see `Verifier`'s parallel pre-check); `None` computes it here.
pub(crate) fn check_issued_by(
    child: &ExaminedCertificate,
    child_position: ChainPosition,
    parent_subject: &str,
    parent_subject_raw: &[u8],
    parent_key: &P384Key,
    signature_verdict: Option<bool>,
) -> Result<(), VerifyError> {
    if child.issuer_raw != parent_subject_raw {
        return Err(VerifyError::IssuerMismatch {
            certificate: child.reference(child_position),
            issuer: child.issuer.clone(),
            parent_subject: parent_subject.to_owned(),
        });
    }
    let signature_valid = signature_verdict
        .unwrap_or_else(|| parent_key.verify(&child.tbs, &child.signature_der).is_ok());
    if signature_valid {
        Ok(())
    } else {
        Err(VerifyError::CertificateSignatureInvalid {
            certificate: child.reference(child_position),
        })
    }
}

/// Checks `not_before <= at <= not_after` (both bounds inclusive, RFC 5280 4.1.2.5).
pub(crate) fn check_validity(
    not_before: UnixMillis,
    not_after: UnixMillis,
    at: UnixMillis,
    certificate: impl FnOnce() -> CertificateRef,
) -> Result<(), VerifyError> {
    if at < not_before {
        return Err(VerifyError::CertificateNotYetValid {
            certificate: certificate(),
            not_before,
            verification_time: at,
        });
    }
    if at > not_after {
        return Err(VerifyError::CertificateExpired {
            certificate: certificate(),
            not_after,
            verification_time: at,
        });
    }
    Ok(())
}
