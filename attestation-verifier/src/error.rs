//! The verifier's errors: one variant per failed check, carrying what a caller needs to act.

use std::fmt;

use crate::time::UnixMillis;

/// Where a certificate sits in the chain that was being verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainPosition {
    /// The trust anchor (the pinned root, `cabundle[0]`).
    Root,
    /// An intermediate CA: its index in the document's root-first `cabundle`.
    Intermediate(usize),
    /// The document's signing certificate (`certificate`).
    Leaf,
}

impl fmt::Display for ChainPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => f.write_str("root"),
            Self::Intermediate(index) => write!(f, "intermediate cabundle[{index}]"),
            Self::Leaf => f.write_str("leaf"),
        }
    }
}

/// A certificate named in an error: its position and, when it could be parsed, its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRef {
    /// Position in the chain.
    pub position: ChainPosition,
    /// Subject distinguished name (empty when the certificate could not be parsed).
    pub subject: String,
}

impl fmt::Display for CertificateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            write!(f, "{} certificate", self.position)
        } else {
            write!(f, "{} certificate \"{}\"", self.position, self.subject)
        }
    }
}

/// A payload field of the attestation document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// `module_id`
    ModuleId,
    /// `digest`
    Digest,
    /// `timestamp`
    Timestamp,
    /// `pcrs`
    Pcrs,
    /// `certificate`
    Certificate,
    /// `cabundle`
    Cabundle,
    /// `public_key`
    PublicKey,
    /// `user_data`
    UserData,
    /// `nonce`
    Nonce,
}

impl Field {
    /// The field's CBOR map key.
    pub fn name(self) -> &'static str {
        match self {
            Self::ModuleId => "module_id",
            Self::Digest => "digest",
            Self::Timestamp => "timestamp",
            Self::Pcrs => "pcrs",
            Self::Certificate => "certificate",
            Self::Cabundle => "cabundle",
            Self::PublicKey => "public_key",
            Self::UserData => "user_data",
            Self::Nonce => "nonce",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The document could not be decoded, or breaks AWS's rules for its structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The input is larger than any genuine document, so it was not parsed at all.
    #[error("document is {length} bytes, more than the {max} bytes accepted")]
    TooLarge {
        /// Input length.
        length: usize,
        /// Accepted maximum.
        max: usize,
    },
    /// The input is empty.
    #[error("document is empty")]
    Empty,
    /// The outer structure is not a COSE_Sign1 message.
    #[error("not a COSE_Sign1 message: {reason}")]
    MalformedCose {
        /// What the COSE decoder reported.
        reason: String,
    },
    /// The COSE_Sign1 carries a CBOR tag other than 18.
    #[error("COSE_Sign1 carries an unexpected CBOR tag")]
    UnexpectedTag,
    /// Bytes follow the COSE_Sign1 message.
    #[error("trailing bytes after the COSE_Sign1 message")]
    TrailingBytesAfterCose,
    /// The protected header is not exactly `{1: -35}` (ES384).
    #[error(
        "protected header must be exactly {{1: -35}} (ES384, bytes a1013822), found {found_hex}"
    )]
    UnsupportedProtectedHeader {
        /// The protected header bytes, hex.
        found_hex: String,
    },
    /// The unprotected header is not empty (the NSM always sends an empty one).
    #[error("unprotected header must be empty")]
    UnexpectedUnprotectedHeader,
    /// The COSE_Sign1 has a detached (nil) payload.
    #[error("COSE_Sign1 has no payload")]
    MissingPayload,
    /// The signature is not 96 bytes (r || s, 48 bytes each).
    #[error("ES384 signature must be 96 bytes, found {length}")]
    SignatureLength {
        /// Actual length.
        length: usize,
    },
    /// The payload ended in the middle of an item.
    #[error("payload truncated at byte {offset}")]
    Truncated {
        /// Offset where more bytes were needed.
        offset: usize,
    },
    /// Bytes follow the payload map.
    #[error("{count} trailing bytes after the payload map")]
    TrailingBytesInPayload {
        /// How many bytes follow.
        count: usize,
    },
    /// Indefinite-length items, reserved encodings or non-shortest integer heads.
    #[error("payload is not strict CBOR at byte {offset}: {reason}")]
    NonCanonicalCbor {
        /// Offset of the offending head.
        offset: usize,
        /// Which rule was broken.
        reason: &'static str,
    },
    /// The payload is not a map.
    #[error("payload must be a CBOR map")]
    PayloadNotMap,
    /// A payload map key is not a text string.
    #[error("payload map key at byte {offset} is not a text string")]
    NonTextKey {
        /// Offset of the key.
        offset: usize,
    },
    /// A payload key that AWS does not define.
    #[error("unknown payload field {name:?}")]
    UnknownField {
        /// The key.
        name: String,
    },
    /// A payload key appears twice.
    #[error("duplicate payload field {0}")]
    DuplicateField(Field),
    /// A required payload field is absent.
    #[error("missing required payload field {0}")]
    MissingField(Field),
    /// A payload field has the wrong CBOR type.
    #[error("payload field {field} must be {expected}")]
    WrongType {
        /// The field.
        field: Field,
        /// The type it must have.
        expected: &'static str,
    },
    /// Text that is not valid UTF-8.
    #[error("payload field {0} is not valid UTF-8")]
    InvalidUtf8(Field),
    /// `module_id` is empty.
    #[error("module_id is empty")]
    EmptyModuleId,
    /// `digest` is not `"SHA384"`.
    #[error("digest must be \"SHA384\", found {found:?}")]
    UnsupportedDigest {
        /// The digest named by the document.
        found: String,
    },
    /// `timestamp` is zero.
    #[error("timestamp must be greater than zero")]
    ZeroTimestamp,
    /// `pcrs` has no entries or more than 32.
    #[error("pcrs must have 1 to 32 entries, found {count}")]
    PcrCount {
        /// Number of entries.
        count: u64,
    },
    /// A PCR index outside 0..=31.
    #[error("PCR index {index} is outside 0..=31")]
    PcrIndexOutOfRange {
        /// The index.
        index: u64,
    },
    /// A PCR index appears twice.
    #[error("PCR index {index} appears twice")]
    DuplicatePcr {
        /// The index.
        index: u8,
    },
    /// A PCR value is not 32, 48 or 64 bytes.
    #[error("PCR{index} is {length} bytes; a PCR is 32, 48 or 64 bytes")]
    PcrLength {
        /// The index.
        index: u8,
        /// Its length.
        length: usize,
    },
    /// `cabundle` is empty or longer than accepted.
    #[error("cabundle must have 1 to {max} entries, found {count}")]
    CabundleCount {
        /// Number of entries.
        count: u64,
        /// Accepted maximum.
        max: u64,
    },
    /// A byte-string field is outside its allowed length.
    #[error("payload field {field} is {length} bytes, allowed {min}..={max}")]
    FieldLength {
        /// The field.
        field: Field,
        /// Its length.
        length: usize,
        /// Minimum length.
        min: usize,
        /// Maximum length.
        max: usize,
    },
}

/// Why an attestation document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The document is malformed or breaks AWS's structural rules.
    #[error("malformed attestation document: {0}")]
    Document(#[from] DocumentError),

    /// `cabundle[0]` is not the trust anchor the verifier was configured with.
    #[error(
        "cabundle[0] (SHA-256 {found_sha256}) is not the pinned trust anchor (SHA-256 {expected_sha256})"
    )]
    UntrustedRoot {
        /// SHA-256 of the document's first cabundle entry, hex.
        found_sha256: String,
        /// SHA-256 of the configured anchor, hex.
        expected_sha256: String,
    },
    /// A certificate is not valid DER X.509.
    #[error("{certificate} cannot be parsed: {reason}")]
    CertificateMalformed {
        /// The certificate.
        certificate: CertificateRef,
        /// The parser's message.
        reason: String,
    },
    /// A certificate is signed with something other than ecdsa-with-SHA384.
    #[error(
        "{certificate} uses signature algorithm {algorithm_oid}; only ecdsa-with-SHA384 is accepted"
    )]
    UnsupportedCertificateSignatureAlgorithm {
        /// The certificate.
        certificate: CertificateRef,
        /// The algorithm's OID.
        algorithm_oid: String,
    },
    /// A certificate's key is not an uncompressed P-384 point.
    #[error("{certificate} does not carry an uncompressed P-384 public key")]
    UnsupportedPublicKey {
        /// The certificate.
        certificate: CertificateRef,
    },
    /// A certificate carries a critical extension this verifier does not process.
    #[error("{certificate} has unrecognised critical extension {extension_oid}")]
    UnknownCriticalExtension {
        /// The certificate.
        certificate: CertificateRef,
        /// The extension's OID.
        extension_oid: String,
    },
    /// The verification time is after a certificate's notAfter.
    #[error("{certificate} expired at {not_after} (verification time {verification_time})")]
    CertificateExpired {
        /// The certificate.
        certificate: CertificateRef,
        /// Its notAfter.
        not_after: UnixMillis,
        /// The time verification was asked for.
        verification_time: UnixMillis,
    },
    /// The verification time is before a certificate's notBefore.
    #[error(
        "{certificate} is not valid before {not_before} (verification time {verification_time})"
    )]
    CertificateNotYetValid {
        /// The certificate.
        certificate: CertificateRef,
        /// Its notBefore.
        not_before: UnixMillis,
        /// The time verification was asked for.
        verification_time: UnixMillis,
    },
    /// A certificate's issuer name is not its parent's subject name.
    #[error(
        "{certificate} names issuer \"{issuer}\" but its parent's subject is \"{parent_subject}\""
    )]
    IssuerMismatch {
        /// The certificate.
        certificate: CertificateRef,
        /// The issuer it names.
        issuer: String,
        /// The subject of the certificate above it.
        parent_subject: String,
    },
    /// A certificate's signature does not verify under its parent's key.
    #[error("{certificate} signature does not verify under its issuer's key")]
    CertificateSignatureInvalid {
        /// The certificate.
        certificate: CertificateRef,
    },
    /// A CA certificate lacks basicConstraints cA=TRUE.
    #[error("{certificate} is used as a CA but basicConstraints does not say cA=TRUE")]
    NotACertificateAuthority {
        /// The certificate.
        certificate: CertificateRef,
    },
    /// A CA certificate lacks keyUsage keyCertSign.
    #[error("{certificate} is used as a CA but its keyUsage lacks keyCertSign")]
    MissingKeyCertSign {
        /// The certificate.
        certificate: CertificateRef,
    },
    /// More CAs below a certificate than its pathLenConstraint allows.
    #[error(
        "{certificate} allows {path_len_constraint} CA certificates below it, the chain has {cas_below}"
    )]
    PathLengthExceeded {
        /// The certificate.
        certificate: CertificateRef,
        /// Its pathLenConstraint.
        path_len_constraint: u32,
        /// CA certificates below it in this chain.
        cas_below: usize,
    },
    /// The signing certificate is a CA.
    #[error("{certificate} is a CA; the document must be signed by an end-entity certificate")]
    LeafIsCertificateAuthority {
        /// The certificate.
        certificate: CertificateRef,
    },
    /// The signing certificate's keyUsage lacks digitalSignature.
    #[error("{certificate} keyUsage lacks digitalSignature")]
    LeafMissingDigitalSignature {
        /// The certificate.
        certificate: CertificateRef,
    },
    /// The COSE signature does not verify under the leaf's key.
    #[error("COSE_Sign1 ES384 signature does not verify under the leaf certificate's key")]
    SignatureInvalid,

    /// The document's timestamp lies after the verification time (beyond the allowed skew).
    #[error("document timestamp {timestamp} is after the verification time {verification_time}")]
    TimestampInFuture {
        /// Document timestamp.
        timestamp: UnixMillis,
        /// Verification time.
        verification_time: UnixMillis,
    },
    /// The document's timestamp lies outside the leaf certificate's validity.
    #[error(
        "document timestamp {timestamp} is outside the leaf's validity {not_before} .. {not_after}"
    )]
    TimestampOutsideLeafValidity {
        /// Document timestamp.
        timestamp: UnixMillis,
        /// Leaf notBefore.
        not_before: UnixMillis,
        /// Leaf notAfter.
        not_after: UnixMillis,
    },
    /// The document is older than the policy's maximum age.
    #[error(
        "document is {age_ms} ms old at the verification time, the policy allows {max_age_ms} ms"
    )]
    TooOld {
        /// Age at the verification time.
        age_ms: u64,
        /// Maximum allowed.
        max_age_ms: u64,
    },
    /// Debug mode (PCR0, PCR1 and PCR2 all zero) without `allow_debug`.
    #[error(
        "enclave runs in debug mode (PCR0, PCR1 and PCR2 are all zero); its memory is readable by the host"
    )]
    DebugModeRejected,
    /// An expected PCR is absent.
    #[error("expected PCR{index} is absent from the document")]
    PcrMissing {
        /// PCR index.
        index: u8,
    },
    /// A PCR differs from the expected value.
    #[error("PCR{index} is {actual_hex}, expected {expected_hex}")]
    PcrMismatch {
        /// PCR index.
        index: u8,
        /// Expected value, hex.
        expected_hex: String,
        /// Value in the document, hex.
        actual_hex: String,
    },
    /// The policy expects a nonce and the document has none.
    #[error("the policy expects a nonce and the document has none")]
    NonceMissing,
    /// The nonce differs from the expected one.
    #[error("nonce is {actual_hex}, expected {expected_hex}")]
    NonceMismatch {
        /// Expected, hex.
        expected_hex: String,
        /// In the document, hex.
        actual_hex: String,
    },
    /// The policy expects user_data and the document has none.
    #[error("the policy expects user_data and the document has none")]
    UserDataMissing,
    /// user_data differs from the expected value.
    #[error("user_data is {actual_hex}, expected {expected_hex}")]
    UserDataMismatch {
        /// Expected, hex.
        expected_hex: String,
        /// In the document, hex.
        actual_hex: String,
    },
    /// The policy expects a public_key and the document has none.
    #[error("the policy expects a public_key and the document has none")]
    PublicKeyMissing,
    /// public_key differs from the expected value.
    #[error("public_key is {actual_hex}, expected {expected_hex}")]
    PublicKeyMismatch {
        /// Expected, hex.
        expected_hex: String,
        /// In the document, hex.
        actual_hex: String,
    },
}

/// A trust anchor could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The PEM text holds no CERTIFICATE block.
    #[error("no PEM CERTIFICATE block found: {reason}")]
    InvalidPem {
        /// What went wrong.
        reason: String,
    },
    /// The anchor certificate is unusable as a root (parse, key, CA flags).
    #[error("unusable trust anchor: {0}")]
    Unusable(Box<VerifyError>),
}

/// Lower-case hex of bytes, for error messages and summaries.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}
