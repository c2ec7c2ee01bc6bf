//! The Enclave Image Format (EIF), version 4, as `nitro-cli` and the
//! `aws-nitro-enclaves-image-format` crate write it. All integers are big-endian.
//!
//! ```text
//! header (548 bytes)
//!   magic ".eif" | version u16 | flags u16 | default_mem u64 | default_cpus u64
//!   reserved u16 | num_sections u16 | section_offsets [u64; 32] | section_sizes [u64; 32]
//!   unused u32 | crc32 u32
//! then, for each section in order:
//!   section header (12 bytes): type u16 | flags u16 | size u64,  then `size` bytes
//! ```
//!
//! `section_offsets[i]` is the file offset of section i's *header*; `section_sizes[i]` the size
//! of its data. The CRC-32 (IEEE) covers every byte of the file except the CRC field itself.
//! `nitro-cli` orders sections kernel, cmdline, metadata, ramdisks, signature; this module
//! writes them in the order given and reads any order, but refuses layouts it does not
//! understand (a missing or repeated kernel, cmdline, metadata or signature; no ramdisk).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::pcr::{MeasuredAs, Measurements, PcrAccumulator};

/// The four magic bytes, `.eif`.
pub const EIF_MAGIC: [u8; 4] = *b".eif";
/// The format version written (and the newest read).
pub const EIF_VERSION: u16 = 4;
/// The oldest version read: version 1 had no CRC.
pub const EIF_MIN_VERSION: u16 = 2;
/// Most sections an image can hold.
pub const MAX_SECTIONS: usize = 32;
/// Length of the file header.
pub const HEADER_LEN: usize = 548;
/// Length of a section header.
pub const SECTION_HEADER_LEN: usize = 12;
/// Header flag: the image is for aarch64 (cleared: x86_64).
pub const FLAG_ARCH_AARCH64: u16 = 0x1;
/// `default_mem` written by `nitro-cli` (1 GiB; `run-enclave --memory` overrides it).
pub const DEFAULT_MEMORY_BYTES: u64 = 1 << 30;
/// `default_cpus` written by `nitro-cli` (`run-enclave --cpu-count` overrides it).
pub const DEFAULT_CPUS: u64 = 2;

/// Largest metadata or signature section read into memory.
const SMALL_SECTION_LIMIT: u64 = 1 << 20;
/// Streaming buffer size.
const CHUNK: usize = 1 << 20;
const CRC_OFFSET: usize = HEADER_LEN - 4;

/// Why an image cannot be written or read. One variant per failed check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EifError {
    /// Reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file ends inside the header or a section.
    #[error("the image is truncated: {needed} more bytes expected at offset {offset}")]
    Truncated {
        /// Where the missing bytes start.
        offset: u64,
        /// How many are missing at least.
        needed: u64,
    },
    /// The file does not start with `.eif`.
    #[error("not an EIF: the magic is {found:02x?}, expected \".eif\"")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A format version this tool does not know.
    #[error(
        "EIF version {version} is not supported (versions {EIF_MIN_VERSION} to {EIF_VERSION} are)"
    )]
    UnsupportedVersion {
        /// The version in the header.
        version: u16,
    },
    /// More than 32 sections.
    #[error("the image declares {count} sections, at most {MAX_SECTIONS} are possible")]
    TooManySections {
        /// The count declared or requested.
        count: usize,
    },
    /// A section header carries an unknown type.
    #[error("section {index} has the unknown type {value}")]
    InvalidSectionType {
        /// Index of the section.
        index: usize,
        /// The type found.
        value: u16,
    },
    /// The header's offset table disagrees with where a section is.
    #[error("section {index} starts at offset {actual}, the header says {declared}")]
    SectionOffsetMismatch {
        /// Index of the section.
        index: usize,
        /// Offset in the header table.
        declared: u64,
        /// Where it is.
        actual: u64,
    },
    /// The header's size table disagrees with a section's own header.
    #[error("section {index} holds {actual} bytes, the header says {declared}")]
    SectionSizeMismatch {
        /// Index of the section.
        index: usize,
        /// Size in the header table.
        declared: u64,
        /// Size in the section header.
        actual: u64,
    },
    /// The file holds more bytes after the declared sections.
    #[error("{extra} unexpected bytes after the last declared section (offset {offset})")]
    TrailingBytes {
        /// Where they start.
        offset: u64,
        /// How many.
        extra: u64,
    },
    /// A required section is missing.
    #[error("the image has no {kind} section")]
    MissingSection {
        /// Which kind.
        kind: SectionKind,
    },
    /// A section that must be unique appears twice.
    #[error("the image has more than one {kind} section")]
    DuplicateSection {
        /// Which kind.
        kind: SectionKind,
    },
    /// The CRC in the header does not match the bytes.
    #[error("CRC mismatch: the header says {declared:08x}, the bytes give {computed:08x}")]
    CrcMismatch {
        /// CRC in the header.
        declared: u32,
        /// CRC of the file.
        computed: u32,
    },
    /// A metadata or signature section is implausibly large.
    #[error("the {kind} section is {size} bytes, more than the {limit} accepted")]
    OversizedSection {
        /// Which kind.
        kind: SectionKind,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The metadata section is not the JSON `nitro-cli` writes.
    #[error("the metadata section is not valid JSON: {reason}")]
    InvalidMetadata {
        /// The parser's reason.
        reason: String,
    },
    /// The signature section cannot be decoded.
    #[error("the signature section is invalid: {reason}")]
    InvalidSignature {
        /// What is wrong.
        reason: String,
    },
    /// An input file's length changed while the image was written.
    #[error("{} changed while the image was being written (expected {expected} bytes)", .path.display())]
    InputChanged {
        /// The file.
        path: PathBuf,
        /// Its length when the layout was computed.
        expected: u64,
    },
    /// The writer was given a signature section that is not in memory.
    #[error("the signature section must be given as bytes")]
    SignatureNotInMemory,
    /// The image's signature does not check.
    #[error(transparent)]
    Signature(#[from] crate::sign::SignError),
}

impl EifError {
    fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// The kinds of sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum SectionKind {
    /// The kernel (bzImage on x86_64).
    Kernel = 1,
    /// The kernel command line (no terminating NUL).
    Cmdline = 2,
    /// A ramdisk (cpio archive).
    Ramdisk = 3,
    /// The PCR0 signature: CBOR `[{signing_certificate, signature}]`.
    Signature = 4,
    /// JSON build metadata (not measured).
    Metadata = 5,
}

impl SectionKind {
    /// The kind for a type number.
    #[must_use]
    pub fn from_u16(value: u16) -> Option<Self> {
        match value {
            1 => Some(Self::Kernel),
            2 => Some(Self::Cmdline),
            3 => Some(Self::Ramdisk),
            4 => Some(Self::Signature),
            5 => Some(Self::Metadata),
            _ => None,
        }
    }
}

impl std::fmt::Display for SectionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Kernel => "kernel",
            Self::Cmdline => "cmdline",
            Self::Ramdisk => "ramdisk",
            Self::Signature => "signature",
            Self::Metadata => "metadata",
        })
    }
}

/// The decoded file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EifHeader {
    /// Format version.
    pub version: u16,
    /// Flags ([`FLAG_ARCH_AARCH64`]).
    pub flags: u16,
    /// Default enclave memory in bytes.
    pub default_mem: u64,
    /// Default vCPU count.
    pub default_cpus: u64,
    /// Reserved (0).
    pub reserved: u16,
    /// Number of sections.
    pub num_sections: u16,
    /// Offset of each section's header.
    pub section_offsets: [u64; MAX_SECTIONS],
    /// Size of each section's data.
    pub section_sizes: [u64; MAX_SECTIONS],
    /// Unused (0).
    pub unused: u32,
    /// CRC-32 (IEEE) of the file without this field.
    pub crc32: u32,
}

impl EifHeader {
    /// Encodes the header (big-endian, 548 bytes).
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&EIF_MAGIC);
        out[4..6].copy_from_slice(&self.version.to_be_bytes());
        out[6..8].copy_from_slice(&self.flags.to_be_bytes());
        out[8..16].copy_from_slice(&self.default_mem.to_be_bytes());
        out[16..24].copy_from_slice(&self.default_cpus.to_be_bytes());
        out[24..26].copy_from_slice(&self.reserved.to_be_bytes());
        out[26..28].copy_from_slice(&self.num_sections.to_be_bytes());
        for (i, offset) in self.section_offsets.iter().enumerate() {
            out[28 + 8 * i..36 + 8 * i].copy_from_slice(&offset.to_be_bytes());
        }
        for (i, size) in self.section_sizes.iter().enumerate() {
            out[284 + 8 * i..292 + 8 * i].copy_from_slice(&size.to_be_bytes());
        }
        out[540..544].copy_from_slice(&self.unused.to_be_bytes());
        out[544..548].copy_from_slice(&self.crc32.to_be_bytes());
        out
    }

    /// Decodes and checks the magic, the version and the section count.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Self, EifError> {
        let u16_at = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if magic != EIF_MAGIC {
            return Err(EifError::BadMagic { found: magic });
        }
        let version = u16_at(4);
        if !(EIF_MIN_VERSION..=EIF_VERSION).contains(&version) {
            return Err(EifError::UnsupportedVersion { version });
        }
        let num_sections = u16_at(26);
        if usize::from(num_sections) > MAX_SECTIONS {
            return Err(EifError::TooManySections {
                count: num_sections.into(),
            });
        }
        let mut section_offsets = [0u64; MAX_SECTIONS];
        let mut section_sizes = [0u64; MAX_SECTIONS];
        for i in 0..MAX_SECTIONS {
            section_offsets[i] = u64_at(28 + 8 * i);
            section_sizes[i] = u64_at(284 + 8 * i);
        }
        Ok(Self {
            version,
            flags: u16_at(6),
            default_mem: u64_at(8),
            default_cpus: u64_at(16),
            reserved: u16_at(24),
            num_sections,
            section_offsets,
            section_sizes,
            unused: u32_at(540),
            crc32: u32_at(544),
        })
    }
}

fn section_header(kind: SectionKind, size: u64) -> [u8; SECTION_HEADER_LEN] {
    let mut out = [0u8; SECTION_HEADER_LEN];
    out[0..2].copy_from_slice(&(kind as u16).to_be_bytes());
    // bytes 2..4: section flags, always 0
    out[4..12].copy_from_slice(&size.to_be_bytes());
    out
}

/// A piece of a section's data: bytes in memory, or a whole file streamed from disk (the model
/// can be larger than the memory one would like to spend on building).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Bytes held in memory.
    Bytes(Vec<u8>),
    /// A file, read when the image is written; its length is fixed when the layout is made.
    File {
        /// The file.
        path: PathBuf,
        /// Its length when the layout was made.
        len: u64,
    },
}

impl Chunk {
    /// The chunk's length in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        match self {
            Self::Bytes(bytes) => bytes.len() as u64,
            Self::File { len, .. } => *len,
        }
    }

    /// Whether the chunk holds no byte.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One section to write: its kind and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionSource {
    /// The section kind.
    pub kind: SectionKind,
    /// Its data, in order.
    pub chunks: Vec<Chunk>,
}

impl SectionSource {
    /// A section held in memory.
    #[must_use]
    pub fn bytes(kind: SectionKind, bytes: Vec<u8>) -> Self {
        Self {
            kind,
            chunks: vec![Chunk::Bytes(bytes)],
        }
    }

    /// The data length.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.chunks.iter().map(Chunk::len).sum()
    }

    /// Whether the section holds no byte.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What writing an image produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenImage {
    /// The PCRs of the image.
    pub measurements: Measurements,
    /// The SHA-256 of every file chunk, as read while writing (so a check of the model's hash
    /// covers exactly the bytes that went into the image).
    pub file_sha256: Vec<(PathBuf, [u8; 32])>,
    /// The image's length in bytes.
    pub len: u64,
}

/// Measures sections in file order: which PCR run each section feeds.
#[derive(Debug, Default)]
struct SectionClassifier {
    ramdisks_seen: usize,
}

impl SectionClassifier {
    fn classify(&mut self, kind: SectionKind) -> MeasuredAs {
        match kind {
            SectionKind::Kernel | SectionKind::Cmdline => MeasuredAs::Boot,
            SectionKind::Ramdisk => {
                self.ramdisks_seen += 1;
                if self.ramdisks_seen == 1 {
                    MeasuredAs::Boot
                } else {
                    MeasuredAs::Application
                }
            }
            SectionKind::Signature | SectionKind::Metadata => MeasuredAs::Unmeasured,
        }
    }
}

/// Checks the section layout rules shared by the writer and the reader.
fn check_layout(kinds: &[SectionKind]) -> Result<(), EifError> {
    if kinds.len() > MAX_SECTIONS {
        return Err(EifError::TooManySections { count: kinds.len() });
    }
    for kind in [
        SectionKind::Kernel,
        SectionKind::Cmdline,
        SectionKind::Metadata,
        SectionKind::Signature,
    ] {
        if kinds.iter().filter(|k| **k == kind).count() > 1 {
            return Err(EifError::DuplicateSection { kind });
        }
    }
    for kind in [
        SectionKind::Kernel,
        SectionKind::Cmdline,
        SectionKind::Ramdisk,
    ] {
        if !kinds.contains(&kind) {
            return Err(EifError::MissingSection { kind });
        }
    }
    Ok(())
}

/// Writes an image with `sections` in the given order, streaming file chunks, and returns its
/// PCRs (PCR8 from the signature section's certificate, when there is one; the signature
/// itself is the caller's: see [`crate::sign`]). `flags` is 0 for x86_64 or
/// [`FLAG_ARCH_AARCH64`].
pub fn write_image<W: Write + Seek>(
    out: &mut W,
    sections: &[SectionSource],
    flags: u16,
) -> Result<WrittenImage, EifError> {
    let kinds: Vec<SectionKind> = sections.iter().map(|s| s.kind).collect();
    check_layout(&kinds)?;

    let mut header = EifHeader {
        version: EIF_VERSION,
        flags,
        default_mem: DEFAULT_MEMORY_BYTES,
        default_cpus: DEFAULT_CPUS,
        reserved: 0,
        num_sections: sections.len() as u16,
        section_offsets: [0; MAX_SECTIONS],
        section_sizes: [0; MAX_SECTIONS],
        unused: 0,
        crc32: 0,
    };
    let mut offset = HEADER_LEN as u64;
    for (i, section) in sections.iter().enumerate() {
        header.section_offsets[i] = offset;
        header.section_sizes[i] = section.len();
        offset += SECTION_HEADER_LEN as u64 + section.len();
    }
    let total_len = offset;

    let mut crc = crc32fast::Hasher::new();
    let header_bytes = header.encode();
    crc.update(&header_bytes[..CRC_OFFSET]);
    out.seek(SeekFrom::Start(0))
        .map_err(EifError::io("seeking to the start of the image"))?;
    out.write_all(&header_bytes)
        .map_err(EifError::io("writing the EIF header"))?;

    let mut pcrs = PcrAccumulator::default();
    let mut classifier = SectionClassifier::default();
    let mut file_sha256 = Vec::new();
    let mut buffer = vec![0u8; CHUNK];
    for section in sections {
        if section.kind == SectionKind::Signature {
            let [Chunk::Bytes(bytes)] = section.chunks.as_slice() else {
                return Err(EifError::SignatureNotInMemory);
            };
            let (pem, _) = decode_signature_section(bytes)?;
            pcrs.set_certificate(&pem_certificate_to_der(&pem)?);
        }
        let measured_as = classifier.classify(section.kind);
        let head = section_header(section.kind, section.len());
        crc.update(&head);
        out.write_all(&head)
            .map_err(EifError::io("writing a section header"))?;
        for chunk in &section.chunks {
            match chunk {
                Chunk::Bytes(bytes) => {
                    crc.update(bytes);
                    pcrs.update(measured_as, bytes);
                    out.write_all(bytes).map_err(EifError::io(format!(
                        "writing the {} section",
                        section.kind
                    )))?;
                }
                Chunk::File { path, len } => {
                    let digest = stream_file(path, *len, &mut buffer, |bytes| {
                        crc.update(bytes);
                        pcrs.update(measured_as, bytes);
                        out.write_all(bytes)
                    })?;
                    file_sha256.push((path.clone(), digest));
                }
            }
        }
    }

    header.crc32 = crc.finalize();
    out.seek(SeekFrom::Start(CRC_OFFSET as u64))
        .map_err(EifError::io("seeking to the CRC field"))?;
    out.write_all(&header.crc32.to_be_bytes())
        .map_err(EifError::io("writing the CRC"))?;
    out.seek(SeekFrom::Start(total_len))
        .map_err(EifError::io("seeking to the end of the image"))?;
    out.flush().map_err(EifError::io("flushing the image"))?;
    Ok(WrittenImage {
        measurements: pcrs.finish(),
        file_sha256,
        len: total_len,
    })
}

/// Streams exactly `len` bytes of `path` into `sink` and returns their SHA-256; fails if the
/// file is shorter or longer than `len` (it changed since the layout was made).
fn stream_file(
    path: &Path,
    len: u64,
    buffer: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<[u8; 32], EifError> {
    let mut file = File::open(path).map_err(EifError::io(format!("opening {}", path.display())))?;
    let mut remaining = len;
    let mut sha256 = Sha256::new();
    while remaining > 0 {
        let want = remaining.min(buffer.len() as u64) as usize;
        let read = file
            .read(&mut buffer[..want])
            .map_err(EifError::io(format!("reading {}", path.display())))?;
        if read == 0 {
            return Err(EifError::InputChanged {
                path: path.to_path_buf(),
                expected: len,
            });
        }
        sha256.update(&buffer[..read]);
        sink(&buffer[..read]).map_err(EifError::io("writing the image"))?;
        remaining -= read as u64;
    }
    let mut probe = [0u8; 1];
    let extra = file
        .read(&mut probe)
        .map_err(EifError::io(format!("reading {}", path.display())))?;
    if extra != 0 {
        return Err(EifError::InputChanged {
            path: path.to_path_buf(),
            expected: len,
        });
    }
    Ok(sha256.finalize().into())
}

/// Where one section lies in a read image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionInfo {
    /// Its kind.
    pub kind: SectionKind,
    /// Offset of its section header.
    pub offset: u64,
    /// Size of its data.
    pub size: u64,
}

/// Everything `measure` learns from an image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDescription {
    /// The decoded header (its CRC checked).
    pub header: EifHeader,
    /// The sections in file order.
    pub sections: Vec<SectionInfo>,
    /// The PCRs.
    pub measurements: Measurements,
    /// The metadata section's JSON, when present.
    pub metadata: Option<serde_json::Value>,
    /// The signing certificate (PEM as stored), when the image is signed; its signature over
    /// PCR0 has been checked.
    pub signing_certificate_pem: Option<Vec<u8>>,
}

/// One entry of the signature section (serde's default encoding of `Vec<u8>`: CBOR arrays of
/// integers, as `nitro-cli` writes them; byte strings are accepted too).
#[derive(Debug, Deserialize)]
struct PcrSignatureEntry {
    signing_certificate: ByteVec,
    signature: ByteVec,
}

/// Bytes encoded either as a CBOR byte string or as an array of integers.
#[derive(Debug)]
struct ByteVec(Vec<u8>);

impl<'de> Deserialize<'de> for ByteVec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ByteVec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes or an array of integers 0..=255")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<ByteVec, E> {
                Ok(ByteVec(bytes.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<ByteVec, E> {
                Ok(ByteVec(bytes))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ByteVec, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(byte) = seq.next_element::<u8>()? {
                    out.push(byte);
                }
                Ok(ByteVec(out))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Decodes the signature section and returns the first entry's certificate (PEM as stored)
/// and signature (COSE_Sign1).
pub fn decode_signature_section(bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>), EifError> {
    let mut reader = bytes;
    let entries: Vec<PcrSignatureEntry> =
        ciborium::de::from_reader(&mut reader).map_err(|e| EifError::InvalidSignature {
            reason: e.to_string(),
        })?;
    if !reader.is_empty() {
        return Err(EifError::InvalidSignature {
            reason: format!("{} bytes after the CBOR value", reader.len()),
        });
    }
    let first = entries
        .into_iter()
        .next()
        .ok_or(EifError::InvalidSignature {
            reason: "no signature entry".to_string(),
        })?;
    Ok((first.signing_certificate.0, first.signature.0))
}

/// Decodes the first `CERTIFICATE` block of a PEM text into DER.
pub fn pem_certificate_to_der(pem: &[u8]) -> Result<Vec<u8>, EifError> {
    use base64::Engine as _;
    let invalid = |reason: &str| EifError::InvalidSignature {
        reason: format!("signing certificate: {reason}"),
    };
    let text = std::str::from_utf8(pem).map_err(|_| invalid("PEM is not UTF-8"))?;
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let start = text
        .find(begin)
        .ok_or_else(|| invalid("no BEGIN CERTIFICATE line"))?
        + begin.len();
    let stop = text[start..]
        .find(end)
        .ok_or_else(|| invalid("no END CERTIFICATE line"))?
        + start;
    let body: String = text[start..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| invalid("the PEM body is not base64"))
}

/// Reads and checks an image from `input` (whose length is `total_len`), streaming its
/// sections, and measures it.
pub fn read_image<R: Read>(mut input: R, total_len: u64) -> Result<ImageDescription, EifError> {
    let mut header_bytes = [0u8; HEADER_LEN];
    read_exact_at(&mut input, &mut header_bytes, 0, total_len)?;
    let header = EifHeader::decode(&header_bytes)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header_bytes[..CRC_OFFSET]);

    let mut offset = HEADER_LEN as u64;
    let mut sections = Vec::new();
    let mut pcrs = PcrAccumulator::default();
    let mut classifier = SectionClassifier::default();
    let mut metadata = None;
    let mut signing_certificate_pem = None;
    let mut signature = None;
    let mut buffer = vec![0u8; CHUNK];
    for index in 0..usize::from(header.num_sections) {
        if header.section_offsets[index] != offset {
            return Err(EifError::SectionOffsetMismatch {
                index,
                declared: header.section_offsets[index],
                actual: offset,
            });
        }
        let mut head = [0u8; SECTION_HEADER_LEN];
        read_exact_at(&mut input, &mut head, offset, total_len)?;
        crc.update(&head);
        let type_value = u16::from_be_bytes([head[0], head[1]]);
        let kind = SectionKind::from_u16(type_value).ok_or(EifError::InvalidSectionType {
            index,
            value: type_value,
        })?;
        let size = u64::from_be_bytes(head[4..12].try_into().unwrap_or([0; 8]));
        if header.section_sizes[index] != size {
            return Err(EifError::SectionSizeMismatch {
                index,
                declared: header.section_sizes[index],
                actual: size,
            });
        }
        let data_offset = offset + SECTION_HEADER_LEN as u64;
        let available = total_len.saturating_sub(data_offset);
        if size > available {
            return Err(EifError::Truncated {
                offset: data_offset + available,
                needed: size - available,
            });
        }
        let measured_as = classifier.classify(kind);
        let keep = matches!(kind, SectionKind::Metadata | SectionKind::Signature);
        if keep && size > SMALL_SECTION_LIMIT {
            return Err(EifError::OversizedSection {
                kind,
                size,
                limit: SMALL_SECTION_LIMIT,
            });
        }
        let mut kept = Vec::new();
        let mut remaining = size;
        while remaining > 0 {
            let want = remaining.min(CHUNK as u64) as usize;
            let at = data_offset + (size - remaining);
            read_exact_at(&mut input, &mut buffer[..want], at, total_len)?;
            crc.update(&buffer[..want]);
            pcrs.update(measured_as, &buffer[..want]);
            if keep {
                kept.extend_from_slice(&buffer[..want]);
            }
            remaining -= want as u64;
        }
        match kind {
            SectionKind::Metadata => {
                metadata =
                    Some(
                        serde_json::from_slice(&kept).map_err(|e| EifError::InvalidMetadata {
                            reason: e.to_string(),
                        })?,
                    );
            }
            SectionKind::Signature => {
                let (pem, cose) = decode_signature_section(&kept)?;
                let der = pem_certificate_to_der(&pem)?;
                pcrs.set_certificate(&der);
                signing_certificate_pem = Some(pem);
                signature = Some((der, cose));
            }
            _ => {}
        }
        sections.push(SectionInfo { kind, offset, size });
        offset = data_offset + size;
    }
    if offset != total_len {
        return Err(EifError::TrailingBytes {
            offset,
            extra: total_len - offset,
        });
    }
    let kinds: Vec<SectionKind> = sections.iter().map(|s| s.kind).collect();
    check_layout(&kinds)?;
    let computed = crc.finalize();
    if computed != header.crc32 {
        return Err(EifError::CrcMismatch {
            declared: header.crc32,
            computed,
        });
    }
    let measurements = pcrs.finish();
    if let Some((der, cose)) = signature {
        crate::sign::check_signature(&der, &cose, &measurements.pcr0)?;
    }
    Ok(ImageDescription {
        header,
        sections,
        measurements,
        metadata,
        signing_certificate_pem,
    })
}

/// Reads, checks and measures the image file at `path`.
pub fn read_image_file(path: &Path) -> Result<ImageDescription, EifError> {
    let file = File::open(path).map_err(EifError::io(format!("opening {}", path.display())))?;
    let len = file
        .metadata()
        .map_err(EifError::io(format!(
            "reading the size of {}",
            path.display()
        )))?
        .len();
    read_image(io::BufReader::with_capacity(CHUNK, file), len)
}

fn read_exact_at<R: Read>(
    input: &mut R,
    buf: &mut [u8],
    offset: u64,
    total_len: u64,
) -> Result<(), EifError> {
    let available = total_len.saturating_sub(offset);
    if (buf.len() as u64) > available {
        return Err(EifError::Truncated {
            offset: offset + available,
            needed: buf.len() as u64 - available,
        });
    }
    input.read_exact(buf).map_err(|source| {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            EifError::Truncated {
                offset,
                needed: buf.len() as u64,
            }
        } else {
            EifError::Io {
                context: format!("reading the image at offset {offset}"),
                source,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn minimal_sections() -> Vec<SectionSource> {
        vec![
            SectionSource::bytes(SectionKind::Kernel, b"kernel bytes".to_vec()),
            SectionSource::bytes(SectionKind::Cmdline, b"console=ttyS0".to_vec()),
            SectionSource::bytes(SectionKind::Metadata, br#"{"ImageName":"t"}"#.to_vec()),
            SectionSource::bytes(SectionKind::Ramdisk, b"boot".to_vec()),
            SectionSource::bytes(SectionKind::Ramdisk, b"app".to_vec()),
        ]
    }

    fn written() -> (Vec<u8>, WrittenImage) {
        let mut out = Cursor::new(Vec::new());
        let image = write_image(&mut out, &minimal_sections(), 0).unwrap();
        (out.into_inner(), image)
    }

    #[test]
    fn header_is_548_bytes_and_round_trips() {
        let (bytes, image) = written();
        assert_eq!(bytes.len() as u64, image.len);
        let header = EifHeader::decode(bytes[..HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(header.encode().as_slice(), &bytes[..HEADER_LEN]);
        assert_eq!(header.num_sections, 5);
        assert_eq!(header.section_offsets[0], HEADER_LEN as u64);
        assert_eq!(header.section_sizes[0], 12);
        assert_eq!(header.default_mem, 1 << 30);
        assert_eq!(header.default_cpus, 2);
    }

    #[test]
    fn read_measures_what_write_measured() {
        let (bytes, image) = written();
        let read = read_image(Cursor::new(&bytes), bytes.len() as u64).unwrap();
        assert_eq!(read.measurements, image.measurements);
        assert_eq!(read.sections.len(), 5);
        assert_eq!(read.metadata.unwrap()["ImageName"], "t");
    }

    #[test]
    fn every_flipped_byte_is_caught_or_changes_nothing_silently() {
        let (bytes, _) = written();
        for at in 0..bytes.len() {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= 0x01;
            assert!(
                read_image(Cursor::new(&corrupt), corrupt.len() as u64).is_err(),
                "a flipped bit at offset {at} went unnoticed"
            );
        }
    }

    #[test]
    fn truncation_and_trailing_bytes_are_errors() {
        let (bytes, _) = written();
        for len in [0, 10, HEADER_LEN, bytes.len() - 1] {
            let cut = &bytes[..len];
            assert!(matches!(
                read_image(Cursor::new(cut), cut.len() as u64),
                Err(EifError::Truncated { .. })
            ));
        }
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"xx");
        assert!(matches!(
            read_image(Cursor::new(&longer), longer.len() as u64),
            Err(EifError::TrailingBytes { extra: 2, .. })
        ));
    }

    #[test]
    fn layout_rules() {
        let mut no_ramdisk = minimal_sections();
        no_ramdisk.retain(|s| s.kind != SectionKind::Ramdisk);
        let mut out = Cursor::new(Vec::new());
        assert!(matches!(
            write_image(&mut out, &no_ramdisk, 0),
            Err(EifError::MissingSection {
                kind: SectionKind::Ramdisk
            })
        ));
        let mut two_kernels = minimal_sections();
        two_kernels.push(SectionSource::bytes(SectionKind::Kernel, vec![1]));
        assert!(matches!(
            write_image(&mut out, &two_kernels, 0),
            Err(EifError::DuplicateSection {
                kind: SectionKind::Kernel
            })
        ));
        let many = vec![SectionSource::bytes(SectionKind::Ramdisk, vec![]); 33];
        assert!(matches!(
            write_image(&mut out, &many, 0),
            Err(EifError::TooManySections { count: 33 })
        ));
    }

    #[test]
    fn bad_magic_and_version() {
        let (bytes, _) = written();
        let mut magic = bytes.clone();
        magic[0] = b'x';
        assert!(matches!(
            read_image(Cursor::new(&magic), magic.len() as u64),
            Err(EifError::BadMagic { .. })
        ));
        let mut version = bytes.clone();
        version[5] = 9;
        assert!(matches!(
            read_image(Cursor::new(&version), version.len() as u64),
            Err(EifError::UnsupportedVersion { version: 9 })
        ));
    }

    #[test]
    fn file_chunks_are_streamed_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payload");
        std::fs::write(&path, vec![7u8; 3 * CHUNK + 5]).unwrap();
        let mut sections = minimal_sections();
        sections[4] = SectionSource {
            kind: SectionKind::Ramdisk,
            chunks: vec![
                Chunk::Bytes(b"head".to_vec()),
                Chunk::File {
                    path: path.clone(),
                    len: (3 * CHUNK + 5) as u64,
                },
            ],
        };
        let mut out = Cursor::new(Vec::new());
        let image = write_image(&mut out, &sections, 0).unwrap();
        assert_eq!(
            image.file_sha256,
            vec![(
                path.clone(),
                Sha256::digest(vec![7u8; 3 * CHUNK + 5]).into()
            )]
        );
        let bytes = out.into_inner();
        let read = read_image(Cursor::new(&bytes), bytes.len() as u64).unwrap();
        assert_eq!(read.measurements, image.measurements);

        // The file grew after the layout was made.
        sections[4].chunks[1] = Chunk::File {
            path: path.clone(),
            len: (3 * CHUNK + 4) as u64,
        };
        assert!(matches!(
            write_image(&mut Cursor::new(Vec::new()), &sections, 0),
            Err(EifError::InputChanged { .. })
        ));
        // It shrank.
        sections[4].chunks[1] = Chunk::File {
            path,
            len: (3 * CHUNK + 6) as u64,
        };
        assert!(matches!(
            write_image(&mut Cursor::new(Vec::new()), &sections, 0),
            Err(EifError::InputChanged { .. })
        ));
    }

    /// The signature section encoding of `aws-nitro-enclaves-image-format` 0.8.1's own test
    /// vector (`src/utils/cbor.rs`, `SIGNATURE_0_8_0`: bytes as serde_cbor 0.11 wrote them).
    #[test]
    fn decodes_the_image_format_crates_signature_vector() {
        let vector = "81a2737369676e696e675f6365727469666963617465983b182d182d182d182d182d1842184518471849184e182018431845185218541849184618491843184118541845182d182d182d182d182d0a184d1849184918420a182d182d182d182d182d1845184e1844182018431845185218541849184618491843184118541845182d182d182d182d182d0a697369676e61747572658a18d21884184418a1011838182218a018401840";
        let (pem, cose) = decode_signature_section(&hex::decode(vector).unwrap()).unwrap();
        assert_eq!(
            cose,
            [0xd2, 0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x40, 0x40]
        );
        assert_eq!(
            pem,
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        );
        assert_eq!(
            pem_certificate_to_der(&pem).unwrap(),
            vec![0x30, 0x82, 0x01]
        );
        let mut trailing = hex::decode(vector).unwrap();
        trailing.push(0);
        assert!(decode_signature_section(&trailing).is_err());
        assert!(decode_signature_section(&[0x80]).is_err());
    }
}
