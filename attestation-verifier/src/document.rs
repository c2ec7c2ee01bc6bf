//! Parsing (without verifying) a Nitro attestation document: COSE_Sign1 with coset, the payload
//! with the strict reader in [`crate::cbor`], following AWS's published rules.

use coset::{CborSerializable, CoseSign1, TaggedCborSerializable};

use crate::cbor::{MAJOR_ARRAY, MAJOR_BYTES, MAJOR_MAP, MAJOR_TEXT, MAJOR_UNSIGNED, Reader};
use crate::cose::ES384_PROTECTED_HEADER;
use crate::error::{DocumentError, Field, to_hex};
use crate::protocol::{MAX_NONCE_BYTES, MAX_PUBLIC_KEY_BYTES, MAX_USER_DATA_BYTES};
use crate::time::UnixMillis;

/// Largest document accepted. Genuine documents are under 6 KiB (a 4-5 certificate chain of
/// about 650 bytes each plus PCRs); the bound stops oversized input before any parsing.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
/// Most `cabundle` entries accepted (genuine chains have 4 or 5 CAs including the root).
pub const MAX_CABUNDLE_ENTRIES: u64 = 8;

/// CBOR tag of a tagged COSE_Sign1 (18), as its one-byte head.
const COSE_SIGN1_TAG_HEAD: u8 = 0xd2;
/// ES384 signatures are r || s, 48 bytes each.
pub(crate) const ES384_SIGNATURE_BYTES: usize = 96;

const MAX_CERTIFICATE_BYTES: usize = 1024;
const MAX_PCR_INDEX: u64 = 31;
const MAX_PCR_COUNT: u64 = 32;

/// A decoded but **unverified** attestation document. Nothing in it may be trusted until
/// [`crate::Verifier::verify`] has accepted the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationDocument {
    pub(crate) protected_header: Vec<u8>,
    pub(crate) payload: Vec<u8>,
    pub(crate) signature: Vec<u8>,
    pub(crate) module_id: String,
    pub(crate) timestamp: UnixMillis,
    pub(crate) pcrs: Vec<(u8, Vec<u8>)>,
    pub(crate) certificate: Vec<u8>,
    pub(crate) cabundle: Vec<Vec<u8>>,
    pub(crate) public_key: Option<Vec<u8>>,
    pub(crate) user_data: Option<Vec<u8>>,
    pub(crate) nonce: Option<Vec<u8>>,
}

impl AttestationDocument {
    /// `module_id` (the enclave's identifier).
    pub fn module_id(&self) -> &str {
        &self.module_id
    }
    /// `timestamp` as the document states it.
    pub fn timestamp(&self) -> UnixMillis {
        self.timestamp
    }
    /// PCRs as (index, value), sorted by index.
    pub fn pcrs(&self) -> &[(u8, Vec<u8>)] {
        &self.pcrs
    }
    /// One PCR by index.
    pub fn pcr(&self, index: u8) -> Option<&[u8]> {
        self.pcrs
            .iter()
            .find(|(pcr_index, _)| *pcr_index == index)
            .map(|(_, value)| value.as_slice())
    }
    /// The signing (leaf) certificate, DER.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }
    /// The CA bundle, root first, DER.
    pub fn cabundle(&self) -> &[Vec<u8>] {
        &self.cabundle
    }
    /// `public_key`, when present.
    pub fn public_key(&self) -> Option<&[u8]> {
        self.public_key.as_deref()
    }
    /// `user_data`, when present (possibly empty).
    pub fn user_data(&self) -> Option<&[u8]> {
        self.user_data.as_deref()
    }
    /// `nonce`, when present.
    pub fn nonce(&self) -> Option<&[u8]> {
        self.nonce.as_deref()
    }
    /// The raw ES384 signature (r || s).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
    /// The raw payload bytes the signature covers.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The COSE `Sig_structure` for COSE_Sign1 with empty external AAD:
    /// `["Signature1", protected, h'', payload]`, the bytes the ES384 signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        crate::cose::sig_structure(&self.protected_header, &self.payload)
    }
}

/// Decodes a COSE_Sign1 attestation document (tagged with 18 or untagged) and checks its
/// structure against AWS's rules. Verifies nothing cryptographic: see [`crate::Verifier`].
///
/// # Errors
/// A [`DocumentError`] naming the first rule the input breaks.
pub fn parse_document(input: &[u8]) -> Result<AttestationDocument, DocumentError> {
    if input.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::TooLarge {
            length: input.len(),
            max: MAX_DOCUMENT_BYTES,
        });
    }
    let Some(&first) = input.first() else {
        return Err(DocumentError::Empty);
    };
    let decoded = if first == COSE_SIGN1_TAG_HEAD {
        CoseSign1::from_tagged_slice(input)
    } else if first >> 5 == 6 {
        return Err(DocumentError::UnexpectedTag);
    } else {
        CoseSign1::from_slice(input)
    };
    let sign1 = decoded.map_err(|error| match error {
        coset::CoseError::ExtraneousData => DocumentError::TrailingBytesAfterCose,
        coset::CoseError::UnexpectedItem("tag", _) => DocumentError::UnexpectedTag,
        other => DocumentError::MalformedCose {
            reason: other.to_string(),
        },
    })?;

    // The algorithm comes from these exact bytes, never from a parsed header that could hold
    // other labels or a different encoding.
    let protected_header = sign1.protected.original_data.unwrap_or_default();
    if protected_header != ES384_PROTECTED_HEADER {
        return Err(DocumentError::UnsupportedProtectedHeader {
            found_hex: to_hex(&protected_header),
        });
    }
    if !sign1.unprotected.is_empty() {
        return Err(DocumentError::UnexpectedUnprotectedHeader);
    }
    let payload = sign1.payload.ok_or(DocumentError::MissingPayload)?;
    if sign1.signature.len() != ES384_SIGNATURE_BYTES {
        return Err(DocumentError::SignatureLength {
            length: sign1.signature.len(),
        });
    }
    let fields = parse_payload(&payload)?;
    Ok(AttestationDocument {
        protected_header,
        payload,
        signature: sign1.signature,
        module_id: fields.module_id,
        timestamp: fields.timestamp,
        pcrs: fields.pcrs,
        certificate: fields.certificate,
        cabundle: fields.cabundle,
        public_key: fields.public_key,
        user_data: fields.user_data,
        nonce: fields.nonce,
    })
}

struct PayloadFields {
    module_id: String,
    timestamp: UnixMillis,
    pcrs: Vec<(u8, Vec<u8>)>,
    certificate: Vec<u8>,
    cabundle: Vec<Vec<u8>>,
    public_key: Option<Vec<u8>>,
    user_data: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
}

fn field_for_key(key: &[u8]) -> Option<Field> {
    Some(match key {
        b"module_id" => Field::ModuleId,
        b"digest" => Field::Digest,
        b"timestamp" => Field::Timestamp,
        b"pcrs" => Field::Pcrs,
        b"certificate" => Field::Certificate,
        b"cabundle" => Field::Cabundle,
        b"public_key" => Field::PublicKey,
        b"user_data" => Field::UserData,
        b"nonce" => Field::Nonce,
        _ => return None,
    })
}

fn field_bit(field: Field) -> u16 {
    1 << (field as u16)
}

fn parse_payload(payload: &[u8]) -> Result<PayloadFields, DocumentError> {
    let mut reader = Reader::new(payload);
    let map = reader.head()?;
    if map.major != MAJOR_MAP {
        return Err(DocumentError::PayloadNotMap);
    }
    let mut seen: u16 = 0;
    let mut module_id = None;
    let mut digest_seen = false;
    let mut timestamp = None;
    let mut pcrs = None;
    let mut certificate = None;
    let mut cabundle = None;
    let mut public_key = None;
    let mut user_data = None;
    let mut nonce = None;

    // Each iteration consumes at least one byte, so a forged huge count ends in `Truncated`.
    for _ in 0..map.argument {
        let key_head = reader.head()?;
        if key_head.major != MAJOR_TEXT {
            return Err(DocumentError::NonTextKey {
                offset: key_head.offset,
            });
        }
        let key = reader.string_body(key_head.argument)?;
        let field = field_for_key(key).ok_or_else(|| DocumentError::UnknownField {
            name: String::from_utf8_lossy(key).into_owned(),
        })?;
        if seen & field_bit(field) != 0 {
            return Err(DocumentError::DuplicateField(field));
        }
        seen |= field_bit(field);
        match field {
            Field::ModuleId => {
                let text = read_text(&mut reader, field)?;
                if text.is_empty() {
                    return Err(DocumentError::EmptyModuleId);
                }
                module_id = Some(text.to_owned());
            }
            Field::Digest => {
                let text = read_text(&mut reader, field)?;
                if text != "SHA384" {
                    return Err(DocumentError::UnsupportedDigest {
                        found: text.to_owned(),
                    });
                }
                digest_seen = true;
            }
            Field::Timestamp => {
                let head = reader.head()?;
                if head.major != MAJOR_UNSIGNED {
                    return Err(DocumentError::WrongType {
                        field,
                        expected: "an unsigned integer",
                    });
                }
                if head.argument == 0 {
                    return Err(DocumentError::ZeroTimestamp);
                }
                timestamp = Some(UnixMillis(head.argument));
            }
            Field::Pcrs => pcrs = Some(read_pcrs(&mut reader)?),
            Field::Certificate => {
                certificate =
                    Some(read_bytes(&mut reader, field, 1, MAX_CERTIFICATE_BYTES)?.to_vec());
            }
            Field::Cabundle => cabundle = Some(read_cabundle(&mut reader)?),
            Field::PublicKey => {
                public_key = read_optional_bytes(&mut reader, field, MAX_PUBLIC_KEY_BYTES)?;
            }
            Field::UserData => {
                user_data = read_optional_bytes(&mut reader, field, MAX_USER_DATA_BYTES)?;
            }
            Field::Nonce => nonce = read_optional_bytes(&mut reader, field, MAX_NONCE_BYTES)?,
        }
    }
    if reader.remaining() != 0 {
        return Err(DocumentError::TrailingBytesInPayload {
            count: reader.remaining(),
        });
    }
    if !digest_seen {
        return Err(DocumentError::MissingField(Field::Digest));
    }
    Ok(PayloadFields {
        module_id: module_id.ok_or(DocumentError::MissingField(Field::ModuleId))?,
        timestamp: timestamp.ok_or(DocumentError::MissingField(Field::Timestamp))?,
        pcrs: pcrs.ok_or(DocumentError::MissingField(Field::Pcrs))?,
        certificate: certificate.ok_or(DocumentError::MissingField(Field::Certificate))?,
        cabundle: cabundle.ok_or(DocumentError::MissingField(Field::Cabundle))?,
        public_key,
        user_data,
        nonce,
    })
}

fn read_text<'a>(reader: &mut Reader<'a>, field: Field) -> Result<&'a str, DocumentError> {
    let head = reader.head()?;
    if head.major != MAJOR_TEXT {
        return Err(DocumentError::WrongType {
            field,
            expected: "a text string",
        });
    }
    let body = reader.string_body(head.argument)?;
    std::str::from_utf8(body).map_err(|_| DocumentError::InvalidUtf8(field))
}

fn read_bytes<'a>(
    reader: &mut Reader<'a>,
    field: Field,
    min: usize,
    max: usize,
) -> Result<&'a [u8], DocumentError> {
    let head = reader.head()?;
    if head.major != MAJOR_BYTES {
        return Err(DocumentError::WrongType {
            field,
            expected: "a byte string",
        });
    }
    let body = reader.string_body(head.argument)?;
    if body.len() < min || body.len() > max {
        return Err(DocumentError::FieldLength {
            field,
            length: body.len(),
            min,
            max,
        });
    }
    Ok(body)
}

/// An optional field: CBOR `null` means absent; a present one may be empty (one genuine
/// document carries an empty `user_data`).
fn read_optional_bytes(
    reader: &mut Reader<'_>,
    field: Field,
    max: usize,
) -> Result<Option<Vec<u8>>, DocumentError> {
    if reader.take_null() {
        return Ok(None);
    }
    read_bytes(reader, field, 0, max)
        .map(|bytes| Some(bytes.to_vec()))
        .map_err(|error| match error {
            DocumentError::WrongType { field, .. } => DocumentError::WrongType {
                field,
                expected: "a byte string or null",
            },
            other => other,
        })
}

fn read_pcrs(reader: &mut Reader<'_>) -> Result<Vec<(u8, Vec<u8>)>, DocumentError> {
    let head = reader.head()?;
    if head.major != MAJOR_MAP {
        return Err(DocumentError::WrongType {
            field: Field::Pcrs,
            expected: "a map",
        });
    }
    if head.argument == 0 || head.argument > MAX_PCR_COUNT {
        return Err(DocumentError::PcrCount {
            count: head.argument,
        });
    }
    let mut seen: u32 = 0;
    let mut pcrs = Vec::with_capacity(head.argument as usize);
    for _ in 0..head.argument {
        let key = reader.head()?;
        if key.major != MAJOR_UNSIGNED {
            return Err(DocumentError::WrongType {
                field: Field::Pcrs,
                expected: "a map with unsigned integer keys",
            });
        }
        if key.argument > MAX_PCR_INDEX {
            return Err(DocumentError::PcrIndexOutOfRange {
                index: key.argument,
            });
        }
        let index = key.argument as u8;
        if seen & (1 << index) != 0 {
            return Err(DocumentError::DuplicatePcr { index });
        }
        seen |= 1 << index;
        let value = reader.head()?;
        if value.major != MAJOR_BYTES {
            return Err(DocumentError::WrongType {
                field: Field::Pcrs,
                expected: "a map with byte string values",
            });
        }
        let body = reader.string_body(value.argument)?;
        if !matches!(body.len(), 32 | 48 | 64) {
            return Err(DocumentError::PcrLength {
                index,
                length: body.len(),
            });
        }
        pcrs.push((index, body.to_vec()));
    }
    pcrs.sort_unstable_by_key(|(index, _)| *index);
    Ok(pcrs)
}

fn read_cabundle(reader: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, DocumentError> {
    let head = reader.head()?;
    if head.major != MAJOR_ARRAY {
        return Err(DocumentError::WrongType {
            field: Field::Cabundle,
            expected: "an array",
        });
    }
    if head.argument == 0 || head.argument > MAX_CABUNDLE_ENTRIES {
        return Err(DocumentError::CabundleCount {
            count: head.argument,
            max: MAX_CABUNDLE_ENTRIES,
        });
    }
    let mut entries = Vec::with_capacity(head.argument as usize);
    for _ in 0..head.argument {
        entries.push(read_bytes(reader, Field::Cabundle, 1, MAX_CERTIFICATE_BYTES)?.to_vec());
    }
    Ok(entries)
}
