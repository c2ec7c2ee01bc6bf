//! The crate's only signature path: ECDSA P-384 with SHA-384 (aws-lc-rs, chosen on
//! measurements in docs/benchmarks.md), plus SHA-256 for pinning certificates.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};

/// Length of an uncompressed SEC1 P-384 point: 0x04 || x || y.
pub const P384_UNCOMPRESSED_POINT_BYTES: usize = 97;
/// Length of a P-384 scalar.
const P384_SCALAR_BYTES: usize = 48;
/// The order n of the P-384 group, big-endian; r and s must lie in 1..n.
const P384_ORDER: [u8; P384_SCALAR_BYTES] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// Why an ES384 signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The key is not a valid uncompressed point on P-384.
    #[error("public key is not an uncompressed P-384 point")]
    InvalidPublicKey,
    /// The signature is not 96 bytes (r || s).
    #[error("signature must be 96 bytes (r || s), found {length}")]
    MalformedSignature {
        /// Actual length.
        length: usize,
    },
    /// r or s is zero or not below the group order.
    #[error("signature scalar r or s is outside 1..n")]
    ScalarOutOfRange,
    /// The signature does not verify.
    #[error("signature does not verify")]
    Mismatch,
}

/// A P-384 public key, validated once and reusable for many verifications.
#[derive(Debug)]
pub(crate) struct P384Key {
    parsed: ParsedPublicKey,
}

/// How a key's signatures are encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SignatureEncoding {
    /// r || s, 48 bytes each (COSE, JOSE, IEEE P1363).
    Fixed,
    /// DER `ECDSA-Sig-Value` (X.509).
    Der,
}

impl P384Key {
    pub(crate) fn from_uncompressed(
        point: &[u8],
        encoding: SignatureEncoding,
    ) -> Result<Self, SignatureError> {
        // Uncompressed only: certificates and COSE keys from the NSM always use it, and one
        // accepted encoding leaves nothing to confuse.
        if point.len() != P384_UNCOMPRESSED_POINT_BYTES || point[0] != 0x04 {
            return Err(SignatureError::InvalidPublicKey);
        }
        let algorithm: &'static dyn VerificationAlgorithm = match encoding {
            SignatureEncoding::Fixed => &signature::ECDSA_P384_SHA384_FIXED,
            SignatureEncoding::Der => &signature::ECDSA_P384_SHA384_ASN1,
        };
        let parsed =
            ParsedPublicKey::new(algorithm, point).map_err(|_| SignatureError::InvalidPublicKey)?;
        Ok(Self { parsed })
    }

    /// Verifies a signature in the encoding this key was built for. High-S signatures are
    /// accepted: ECDSA as specified (and as the NSM produces it) is not low-S normalised.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        self.parsed
            .verify_sig(message, signature)
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// Verifies an ES384 signature (IEEE P1363 `r || s`) over `message` with an uncompressed SEC1
/// P-384 public key. This is the exact path the verifier uses for COSE_Sign1 signatures.
///
/// # Errors
/// [`SignatureError`] saying whether the key, the encoding, the scalars or the signature
/// itself was rejected.
pub fn verify_es384(
    public_key_uncompressed: &[u8],
    message: &[u8],
    signature_p1363: &[u8],
) -> Result<(), SignatureError> {
    let key = P384Key::from_uncompressed(public_key_uncompressed, SignatureEncoding::Fixed)?;
    verify_es384_with(&key, message, signature_p1363)
}

pub(crate) fn verify_es384_with(
    key: &P384Key,
    message: &[u8],
    signature_p1363: &[u8],
) -> Result<(), SignatureError> {
    if signature_p1363.len() != 2 * P384_SCALAR_BYTES {
        return Err(SignatureError::MalformedSignature {
            length: signature_p1363.len(),
        });
    }
    let (r, s) = signature_p1363.split_at(P384_SCALAR_BYTES);
    if !scalar_in_range(r) || !scalar_in_range(s) {
        return Err(SignatureError::ScalarOutOfRange);
    }
    key.verify(message, signature_p1363)
}

/// 0 < scalar < n, big-endian (public values: no constant-time need).
fn scalar_in_range(scalar: &[u8]) -> bool {
    scalar.iter().any(|&byte| byte != 0) && scalar < &P384_ORDER[..]
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_range_bounds() {
        assert!(!scalar_in_range(&[0u8; 48]));
        assert!(!scalar_in_range(&P384_ORDER));
        let mut below = P384_ORDER;
        below[47] -= 1;
        assert!(scalar_in_range(&below));
        assert!(!scalar_in_range(&[0xff; 48]));
    }

    #[test]
    fn rejects_compressed_and_short_keys() {
        let mut compressed = [0u8; 49];
        compressed[0] = 0x02;
        assert_eq!(
            verify_es384(&compressed, b"m", &[1u8; 96]),
            Err(SignatureError::InvalidPublicKey)
        );
        assert_eq!(
            verify_es384(&[0x04; 97], b"m", &[1u8; 96]),
            Err(SignatureError::InvalidPublicKey)
        );
    }
}
