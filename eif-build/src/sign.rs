//! Signed images: the signature section `nitro-cli` writes and checks, and PCR8.
//!
//! The section is the CBOR of `[{signing_certificate, signature}]` (serde's encoding of two
//! `Vec<u8>`: arrays of integers), where `signing_certificate` is the PEM certificate and
//! `signature` a tagged COSE_Sign1 (ES384: ECDSA P-384 with SHA-384, protected header
//! `{1: -35}`, empty unprotected header) whose payload is the CBOR of
//! `{register_index: 0, register_value: PCR0}`. PCR8 = extend(SHA-384(certificate DER)).
//! The encodings are checked against the `aws-nitro-enclaves-image-format` crate's own vectors
//! and its signed reference image (`tests/reference.rs`).

use std::path::Path;

use p384::ecdsa::signature::{Signer as _, Verifier as _};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use p384::pkcs8::DecodePrivateKey as _;

use crate::eif::pem_certificate_to_der;
use crate::pcr::Pcr;

/// The COSE protected header `{1: -35}` (alg: ES384).
const PROTECTED_ES384: [u8; 4] = [0xa1, 0x01, 0x38, 0x22];
/// CBOR tag 18 (COSE_Sign1).
const COSE_SIGN1_TAG: u8 = 0xd2;

/// Why signing or a signature check failed. One variant per failed check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// A key or certificate file cannot be read.
    #[error("{what} {}: {source}", .path.display())]
    Read {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The certificate is not a PEM `CERTIFICATE`.
    #[error("the signing certificate is not a PEM certificate: {reason}")]
    Certificate {
        /// What is wrong.
        reason: String,
    },
    /// The key is neither a PKCS#8 nor a SEC1 PEM P-384 private key.
    #[error("the private key is not a P-384 key in PEM (PKCS#8 or SEC1)")]
    PrivateKey,
    /// The certificate does not carry the key's public key.
    #[error("the signing certificate does not hold the private key's public key")]
    KeyMismatch,
    /// The certificate holds no P-384 public key.
    #[error("the signing certificate holds no P-384 public key")]
    NoP384Key,
    /// A COSE_Sign1 structure does not have the expected shape.
    #[error("the PCR signature is malformed: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// The signature does not verify under the certificate's key.
    #[error("the PCR signature does not verify under the signing certificate's key")]
    BadSignature,
    /// The signed payload is not PCR0 of the image.
    #[error("the signature covers another PCR0 than the image's")]
    WrongPayload,
}

/// A signing key and its certificate.
#[derive(Clone)]
pub struct SigningIdentity {
    certificate_pem: Vec<u8>,
    certificate_der: Vec<u8>,
    key: SigningKey,
}

impl std::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("SigningIdentity")
            .field("certificate_der_len", &self.certificate_der.len())
            .finish_non_exhaustive()
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, SignError> {
    std::fs::read(path).map_err(|source| SignError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

impl SigningIdentity {
    /// Reads a PEM certificate and its PEM P-384 private key (PKCS#8 or SEC1, as `openssl
    /// ecparam -genkey` writes), and checks that they belong together.
    pub fn from_pem_files(certificate: &Path, private_key: &Path) -> Result<Self, SignError> {
        let certificate_pem = read("signing certificate", certificate)?;
        let key_pem = read("private key", private_key)?;
        let key_text = std::str::from_utf8(&key_pem).map_err(|_| SignError::PrivateKey)?;
        let key = SigningKey::from_pkcs8_pem(key_text)
            .or_else(|_| {
                p384::SecretKey::from_sec1_pem(key_text).map(|secret| SigningKey::from(&secret))
            })
            .map_err(|_| SignError::PrivateKey)?;
        Self::new(certificate_pem, key)
    }

    /// An identity from a PEM certificate and a key; fails unless the certificate holds the
    /// key's public key.
    pub fn new(certificate_pem: Vec<u8>, key: SigningKey) -> Result<Self, SignError> {
        let certificate_der =
            pem_certificate_to_der(&certificate_pem).map_err(|e| SignError::Certificate {
                reason: e.to_string(),
            })?;
        if certificate_p384_key(&certificate_der)? != *key.verifying_key() {
            return Err(SignError::KeyMismatch);
        }
        Ok(Self {
            certificate_pem,
            certificate_der,
            key,
        })
    }

    /// The certificate's DER (what PCR8 measures).
    #[must_use]
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The signature section for an image whose PCR0 is `pcr0`.
    #[must_use]
    pub fn signature_section(&self, pcr0: &Pcr) -> Vec<u8> {
        let cose = cose_sign1_es384(&self.key, &pcr_info_cbor(pcr0));
        signature_section_cbor(&self.certificate_pem, &cose)
    }
}

/// The P-384 public key of a DER certificate: the SubjectPublicKeyInfo's BIT STRING
/// `03 62 00 04 ‖ X ‖ Y` (an uncompressed P-384 point is the only 97-byte key it can hold).
pub fn certificate_p384_key(certificate_der: &[u8]) -> Result<VerifyingKey, SignError> {
    let marker = [0x03, 0x62, 0x00, 0x04];
    let mut found = None;
    for (at, window) in certificate_der.windows(marker.len()).enumerate() {
        if window == marker && at + 3 + 97 <= certificate_der.len() {
            let candidate = &certificate_der[at + 3..at + 3 + 97];
            if let Ok(key) = VerifyingKey::from_sec1_bytes(candidate) {
                // The subject key comes before the signature; take the first valid point.
                found = Some(key);
                break;
            }
        }
    }
    found.ok_or(SignError::NoP384Key)
}

fn cbor_head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    match value {
        0..=23 => out.push(major | value as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, value as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    cbor_head(out, 3, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    cbor_head(out, 2, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// serde's encoding of a `Vec<u8>`: an array of unsigned integers.
fn cbor_int_array(out: &mut Vec<u8>, bytes: &[u8]) {
    cbor_head(out, 4, bytes.len() as u64);
    for byte in bytes {
        cbor_head(out, 0, u64::from(*byte));
    }
}

/// The signed payload: CBOR `{"register_index": 0, "register_value": [PCR0 bytes]}`.
#[must_use]
pub fn pcr_info_cbor(pcr0: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    cbor_head(&mut out, 5, 2);
    cbor_text(&mut out, "register_index");
    cbor_head(&mut out, 0, 0);
    cbor_text(&mut out, "register_value");
    cbor_int_array(&mut out, pcr0);
    out
}

/// The COSE `Sig_structure` for a COSE_Sign1 with the ES384 protected header and no external
/// data: `["Signature1", protected, h'', payload]`.
fn sig_structure(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    cbor_head(&mut out, 4, 4);
    cbor_text(&mut out, "Signature1");
    cbor_bytes(&mut out, &PROTECTED_ES384);
    cbor_bytes(&mut out, &[]);
    cbor_bytes(&mut out, payload);
    out
}

/// A tagged COSE_Sign1 of `payload` with ES384 (deterministic ECDSA, RFC 6979).
#[must_use]
pub fn cose_sign1_es384(key: &SigningKey, payload: &[u8]) -> Vec<u8> {
    let signature: Signature = key.sign(&sig_structure(payload));
    let mut out = vec![COSE_SIGN1_TAG];
    cbor_head(&mut out, 4, 4);
    cbor_bytes(&mut out, &PROTECTED_ES384);
    cbor_head(&mut out, 5, 0);
    cbor_bytes(&mut out, payload);
    cbor_bytes(&mut out, &signature.to_bytes());
    out
}

/// The signature section: CBOR `[{"signing_certificate": [..], "signature": [..]}]`.
#[must_use]
pub fn signature_section_cbor(certificate_pem: &[u8], cose_sign1: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    cbor_head(&mut out, 4, 1);
    cbor_head(&mut out, 5, 2);
    cbor_text(&mut out, "signing_certificate");
    cbor_int_array(&mut out, certificate_pem);
    cbor_text(&mut out, "signature");
    cbor_int_array(&mut out, cose_sign1);
    out
}

/// Reads a definite-length byte string at `at`; returns it and the offset after it.
fn take_bytes(input: &[u8], at: usize) -> Result<(&[u8], usize), SignError> {
    let malformed = |reason| SignError::Malformed { reason };
    let head = *input.get(at).ok_or(malformed("truncated"))?;
    if head >> 5 != 2 {
        return Err(malformed("expected a byte string"));
    }
    let (len, start) = match head & 0x1f {
        n @ 0..=23 => (usize::from(n), at + 1),
        24 => (
            usize::from(*input.get(at + 1).ok_or(malformed("truncated"))?),
            at + 2,
        ),
        25 => {
            let b = input.get(at + 1..at + 3).ok_or(malformed("truncated"))?;
            (usize::from(u16::from_be_bytes([b[0], b[1]])), at + 3)
        }
        26 => {
            let b = input.get(at + 1..at + 5).ok_or(malformed("truncated"))?;
            (
                u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize,
                at + 5,
            )
        }
        _ => return Err(malformed("unsupported byte string length")),
    };
    let end = start.checked_add(len).ok_or(malformed("truncated"))?;
    let bytes = input.get(start..end).ok_or(malformed("truncated"))?;
    Ok((bytes, end))
}

/// Verifies a tagged or untagged COSE_Sign1 (ES384, empty unprotected header) under `key`
/// and returns its payload.
pub fn verify_cose_sign1_es384<'a>(
    cose: &'a [u8],
    key: &VerifyingKey,
) -> Result<&'a [u8], SignError> {
    let malformed = |reason| SignError::Malformed { reason };
    let mut at = usize::from(cose.first() == Some(&COSE_SIGN1_TAG));
    if cose.get(at) != Some(&0x84) {
        return Err(malformed("expected a four-element array"));
    }
    at += 1;
    let (protected, next) = take_bytes(cose, at)?;
    if protected != PROTECTED_ES384 {
        return Err(malformed("the protected header is not {1: -35} (ES384)"));
    }
    if cose.get(next) != Some(&0xa0) {
        return Err(malformed("the unprotected header is not empty"));
    }
    let (payload, next) = take_bytes(cose, next + 1)?;
    let (signature, end) = take_bytes(cose, next)?;
    if end != cose.len() {
        return Err(malformed("trailing bytes"));
    }
    let signature = Signature::from_slice(signature).map_err(|_| SignError::BadSignature)?;
    key.verify(&sig_structure(payload), &signature)
        .map_err(|_| SignError::BadSignature)?;
    Ok(payload)
}

/// Checks a signature section against the image's PCR0: the COSE signature verifies under the
/// certificate's key and signs exactly `{register_index: 0, register_value: PCR0}`.
pub fn check_signature(
    certificate_der: &[u8],
    cose_sign1: &[u8],
    pcr0: &Pcr,
) -> Result<(), SignError> {
    let key = certificate_p384_key(certificate_der)?;
    let payload = verify_cose_sign1_es384(cose_sign1, &key)?;
    if payload != pcr_info_cbor(pcr0) {
        return Err(SignError::WrongPayload);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `aws-nitro-enclaves-image-format` 0.8.1, `src/utils/cbor.rs`: `PCR_INFO_0_8_0`, the
    /// payload for register 0 and the value 0x00..=0x2f.
    #[test]
    fn pcr_info_matches_the_image_format_crates_vector() {
        let vector = "a26e72656769737465725f696e646578006e72656769737465725f76616c75659830000102030405060708090a0b0c0d0e0f101112131415161718181819181a181b181c181d181e181f1820182118221823182418251826182718281829182a182b182c182d182e182f";
        let value: Vec<u8> = (0u8..48).collect();
        assert_eq!(hex::encode(pcr_info_cbor(&value)), vector);
    }

    /// The same file's `SIGNATURE_0_8_0`: a signature section for a stub certificate and a
    /// stub COSE structure.
    #[test]
    fn signature_section_matches_the_image_format_crates_vector() {
        let vector = "81a2737369676e696e675f6365727469666963617465983b182d182d182d182d182d1842184518471849184e182018431845185218541849184618491843184118541845182d182d182d182d182d0a184d1849184918420a182d182d182d182d182d1845184e1844182018431845185218541849184618491843184118541845182d182d182d182d182d0a697369676e61747572658a18d21884184418a1011838182218a018401840";
        let section = signature_section_cbor(
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            &[0xd2, 0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x40, 0x40],
        );
        assert_eq!(hex::encode(section), vector);
    }

    #[test]
    fn sign_then_verify_and_tampering_fails() {
        let key = SigningKey::from_slice(&[7u8; 48]).unwrap();
        let payload = pcr_info_cbor(&[9u8; 48]);
        let cose = cose_sign1_es384(&key, &payload);
        assert_eq!(
            cose_sign1_es384(&key, &payload),
            cose,
            "RFC 6979: deterministic"
        );
        assert_eq!(
            verify_cose_sign1_es384(&cose, key.verifying_key()).unwrap(),
            payload.as_slice()
        );
        // Untagged is accepted too.
        assert!(verify_cose_sign1_es384(&cose[1..], key.verifying_key()).is_ok());
        for at in [3, 10, cose.len() - 1] {
            let mut bad = cose.clone();
            bad[at] ^= 1;
            assert!(
                verify_cose_sign1_es384(&bad, key.verifying_key()).is_err(),
                "{at}"
            );
        }
        let other = SigningKey::from_slice(&[8u8; 48]).unwrap();
        assert!(matches!(
            verify_cose_sign1_es384(&cose, other.verifying_key()),
            Err(SignError::BadSignature)
        ));
        let mut trailing = cose.clone();
        trailing.push(0);
        assert!(verify_cose_sign1_es384(&trailing, key.verifying_key()).is_err());
    }
}
