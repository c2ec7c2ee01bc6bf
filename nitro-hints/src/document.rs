//! The hints for a whole attestation document, in the order `NitroRegistrar` consumes them:
//! one per signature of the chain below the root (`cabundle[1]` … `cabundle[last]`, then the
//! leaf `certificate`), then one for the document's own ES384 signature.

use attestation_verifier::{DocumentError, P384_UNCOMPRESSED_POINT_BYTES, parse_document};
use sha2::{Digest, Sha384};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::ecdsa::{EcdsaHint, HintError, ecdsa_hint};

/// Which signature of a document a hint is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// `cabundle[index]` (index ≥ 1), signed by `cabundle[index - 1]`.
    CaBundle(usize),
    /// The leaf `certificate`, signed by the last `cabundle` entry.
    Leaf,
    /// The COSE_Sign1 signature over the document, by the leaf's key.
    Document,
}

/// Why no hints could be computed for a document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentHintError {
    /// The bytes are not a well-formed attestation document.
    #[error("not a well-formed attestation document: {0}")]
    Document(#[from] DocumentError),
    /// A certificate of the chain does not parse as X.509.
    #[error("{signed:?}: certificate does not parse: {reason}")]
    CertificateMalformed { signed: Signed, reason: String },
    /// A certificate's signature is not a DER ECDSA-Sig-Value of two P-384 scalars.
    #[error("{signed:?}: certificate signature is not a P-384 ECDSA-Sig-Value")]
    CertificateSignatureMalformed { signed: Signed },
    /// A signing certificate's key is not an uncompressed P-384 point.
    #[error("{signed:?}: the signer's public key is not an uncompressed P-384 point")]
    SignerKeyMalformed { signed: Signed },
    /// The signature does not verify, so no hint can make it pass on-chain.
    #[error("{signed:?}: {source}")]
    Signature { signed: Signed, source: HintError },
}

/// One hint and the signature it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHint {
    /// Which signature.
    pub signed: Signed,
    /// The hint `NitroRegistrar` takes for it.
    pub hint: EcdsaHint,
}

/// Computes the hints for every signature of `cose` (a COSE_Sign1 attestation document), in
/// the contract's order. Checks each signature on the way: a document whose chain does not
/// verify gets an error, never hints that would only fail on-chain. Validity periods and the
/// root are not checked here (the contract does, against the block time and its pinned root).
///
/// # Errors
/// [`DocumentHintError`] naming the first part that is malformed or does not verify.
pub fn document_hints(cose: &[u8]) -> Result<Vec<SignatureHint>, DocumentHintError> {
    let document = parse_document(cose)?;
    let mut chain: Vec<(Signed, &[u8])> = document
        .cabundle()
        .iter()
        .enumerate()
        .map(|(index, der)| (Signed::CaBundle(index), der.as_slice()))
        .collect();
    chain.push((Signed::Leaf, document.certificate()));

    let mut hints = Vec::with_capacity(chain.len());
    for pair in chain.windows(2) {
        let [(parent_role, parent_der), (signed, child_der)] = [pair[0], pair[1]];
        let parent = parse_certificate(parent_der, parent_role)?;
        let child = parse_certificate(child_der, signed)?;
        let signature = ecdsa_sig_value(child.signature_value.data.as_ref())
            .ok_or(DocumentHintError::CertificateSignatureMalformed { signed })?;
        let digest: [u8; 48] = Sha384::digest(child.tbs_certificate.as_ref()).into();
        let hint = ecdsa_hint(&digest, &signature, signer_key(&parent, signed)?)
            .map_err(|source| DocumentHintError::Signature { signed, source })?;
        hints.push(SignatureHint { signed, hint });
    }

    let leaf = parse_certificate(document.certificate(), Signed::Leaf)?;
    let digest: [u8; 48] = Sha384::digest(document.signed_bytes()).into();
    let hint = ecdsa_hint(
        &digest,
        document.signature(),
        signer_key(&leaf, Signed::Document)?,
    )
    .map_err(|source| DocumentHintError::Signature {
        signed: Signed::Document,
        source,
    })?;
    hints.push(SignatureHint {
        signed: Signed::Document,
        hint,
    });
    Ok(hints)
}

fn parse_certificate(der: &[u8], signed: Signed) -> Result<X509Certificate<'_>, DocumentHintError> {
    match X509Certificate::from_der(der) {
        Ok(([], certificate)) => Ok(certificate),
        Ok(_) => Err(DocumentHintError::CertificateMalformed {
            signed,
            reason: "trailing bytes".into(),
        }),
        Err(error) => Err(DocumentHintError::CertificateMalformed {
            signed,
            reason: error.to_string(),
        }),
    }
}

fn signer_key<'a>(
    signer: &'a X509Certificate<'_>,
    signed: Signed,
) -> Result<&'a [u8], DocumentHintError> {
    let key = signer.public_key().subject_public_key.data.as_ref();
    if key.len() == P384_UNCOMPRESSED_POINT_BYTES && key[0] == 0x04 {
        Ok(key)
    } else {
        Err(DocumentHintError::SignerKeyMalformed { signed })
    }
}

/// `SEQUENCE { INTEGER r, INTEGER s }` → 96 bytes `r || s` (each left-padded to 48 bytes).
/// Short-form lengths only: the whole value of a P-384 signature is at most 104 bytes.
fn ecdsa_sig_value(der: &[u8]) -> Option<[u8; 96]> {
    let (&[0x30, length], body) = der.split_first_chunk::<2>()? else {
        return None;
    };
    if usize::from(length) != body.len() {
        return None;
    }
    let (r, rest) = der_integer(body)?;
    let (s, rest) = der_integer(rest)?;
    if !rest.is_empty() {
        return None;
    }
    let mut out = [0u8; 96];
    out[48 - r.len()..48].copy_from_slice(r);
    out[96 - s.len()..].copy_from_slice(s);
    Some(out)
}

/// A positive, minimally encoded DER INTEGER of at most 48 significant bytes.
fn der_integer(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&[0x02, length], rest) = input.split_first_chunk::<2>()? else {
        return None;
    };
    let length = usize::from(length);
    if length == 0 || length > 49 || rest.len() < length {
        return None;
    }
    let (value, rest) = rest.split_at(length);
    let value = match value {
        [0x00, next, ..] if *next >= 0x80 => &value[1..],
        [0x00, ..] if length > 1 => return None,
        [first, ..] if *first >= 0x80 => return None,
        _ => value,
    };
    (value.len() <= 48).then_some((value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_value_strict() {
        let mut der = vec![0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07];
        let sig = ecdsa_sig_value(&der).unwrap();
        assert_eq!((sig[47], sig[95]), (5, 7));
        der[1] = 0x07;
        assert!(ecdsa_sig_value(&der).is_none(), "length mismatch");
        // Negative, non-minimal, empty integers are rejected.
        for integer in [
            &[0x02, 0x01, 0x85][..],
            &[0x02, 0x02, 0x00, 0x05],
            &[0x02, 0x00],
        ] {
            let mut der = vec![0x30, (integer.len() + 3) as u8];
            der.extend_from_slice(integer);
            der.extend_from_slice(&[0x02, 0x01, 0x07]);
            assert!(ecdsa_sig_value(&der).is_none(), "{integer:02x?}");
        }
    }
}
