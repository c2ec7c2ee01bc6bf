//! Trust anchors: the pinned AWS Nitro Enclaves Root G1 by default, another root only when a
//! caller asks for it by name.

use std::sync::{Arc, OnceLock};

use crate::chain::{Role, check_issued_by, examine};
use crate::crypto::P384Key;
use crate::error::{AnchorError, ChainPosition, VerifyError, to_hex};
use crate::time::UnixMillis;

/// The AWS Nitro Enclaves Root G1, as AWS publishes it
/// (<https://aws-nitro-enclaves.amazonaws.com/AWS_NitroEnclaves_Root-G1.zip>).
const AWS_NITRO_ROOT_G1_PEM: &[u8] = include_bytes!("aws_nitro_root_g1.pem");

/// SHA-256 of the AWS Nitro Enclaves Root G1 DER, as AWS documents it. The embedded copy is
/// checked against it, so a corrupted or substituted file cannot become the default anchor.
pub const AWS_NITRO_ROOT_G1_SHA256: [u8; 32] = [
    0x64, 0x1a, 0x03, 0x21, 0xa3, 0xe2, 0x44, 0xef, 0xe4, 0x56, 0x46, 0x31, 0x95, 0xd6, 0x06, 0x31,
    0x7e, 0xd7, 0xcd, 0xcc, 0x3c, 0x17, 0x56, 0xe0, 0x98, 0x93, 0xf3, 0xc6, 0x8f, 0x79, 0xbb, 0x5b,
];

/// A root certificate documents must chain to. `cabundle[0]` must be byte-identical to it.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    pub(crate) inner: Arc<AnchorCertificate>,
}

#[derive(Debug)]
pub(crate) struct AnchorCertificate {
    pub(crate) der: Vec<u8>,
    pub(crate) sha256: [u8; 32],
    pub(crate) subject: String,
    pub(crate) subject_raw: Vec<u8>,
    pub(crate) not_before: UnixMillis,
    pub(crate) not_after: UnixMillis,
    pub(crate) path_len_constraint: Option<u32>,
    pub(crate) key: Arc<P384Key>,
}

impl TrustAnchor {
    /// The AWS Nitro Enclaves Root G1, the only anchor genuine Nitro documents chain to.
    pub fn aws_nitro_root_g1() -> Self {
        static AWS_ROOT: OnceLock<TrustAnchor> = OnceLock::new();
        AWS_ROOT
            .get_or_init(|| {
                let anchor = Self::from_pem_explicit(AWS_NITRO_ROOT_G1_PEM)
                    .expect("the embedded AWS Nitro root G1 is a valid P-384 CA certificate");
                assert_eq!(
                    anchor.sha256(),
                    AWS_NITRO_ROOT_G1_SHA256,
                    "the embedded AWS Nitro root G1 does not match its pinned SHA-256"
                );
                anchor
            })
            .clone()
    }

    /// Trusts another root, given as DER: for the development attester's locally generated
    /// root, never for production documents. The certificate must be a self-signed P-384 CA.
    ///
    /// # Errors
    /// [`AnchorError::Unusable`] when it is not a self-signed ecdsa-with-SHA384 P-384 CA.
    pub fn from_der_explicit(der: &[u8]) -> Result<Self, AnchorError> {
        let unusable = |error: VerifyError| AnchorError::Unusable(Box::new(error));
        let examined =
            examine(der, ChainPosition::Root, Role::CertificateAuthority).map_err(unusable)?;
        check_issued_by(
            &examined,
            ChainPosition::Root,
            &examined.subject,
            &examined.subject_raw,
            &examined.key,
            None,
        )
        .map_err(unusable)?;
        Ok(Self {
            inner: Arc::new(AnchorCertificate {
                der: der.to_vec(),
                sha256: examined.sha256,
                subject: examined.subject,
                subject_raw: examined.subject_raw,
                not_before: examined.not_before,
                not_after: examined.not_after,
                path_len_constraint: examined.path_len_constraint,
                key: examined.key,
            }),
        })
    }

    /// Like [`TrustAnchor::from_der_explicit`], from the first PEM `CERTIFICATE` block.
    ///
    /// # Errors
    /// [`AnchorError::InvalidPem`] without a certificate block, else as `from_der_explicit`.
    pub fn from_pem_explicit(pem: &[u8]) -> Result<Self, AnchorError> {
        let (_, block) =
            x509_parser::pem::parse_x509_pem(pem).map_err(|error| AnchorError::InvalidPem {
                reason: error.to_string(),
            })?;
        if block.label != "CERTIFICATE" {
            return Err(AnchorError::InvalidPem {
                reason: format!("block is {:?}, not CERTIFICATE", block.label),
            });
        }
        Self::from_der_explicit(&block.contents)
    }

    /// SHA-256 of the anchor's DER.
    pub fn sha256(&self) -> [u8; 32] {
        self.inner.sha256
    }

    /// SHA-256 of the anchor's DER, hex.
    pub fn sha256_hex(&self) -> String {
        to_hex(&self.inner.sha256)
    }

    /// The anchor's subject name.
    pub fn subject(&self) -> &str {
        &self.inner.subject
    }

    /// The anchor's DER.
    pub fn der(&self) -> &[u8] {
        &self.inner.der
    }

    /// True for the pinned AWS Nitro Enclaves Root G1.
    pub fn is_aws_nitro_root_g1(&self) -> bool {
        self.inner.sha256 == AWS_NITRO_ROOT_G1_SHA256
    }
}

impl Default for TrustAnchor {
    fn default() -> Self {
        Self::aws_nitro_root_g1()
    }
}
