//! Shared helpers for the integration tests: the real documents and a small CBOR writer.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use attestation_verifier::AttestationDocument;

/// A real document from `shared/vectors/nitro/` and the facts its `.json` records.
pub struct RealDocument {
    pub name: String,
    pub bytes: Vec<u8>,
    pub facts: serde_json::Value,
}

impl RealDocument {
    pub fn timestamp_ms(&self) -> u64 {
        self.facts["decoded"]["timestamp_ms"]
            .as_u64()
            .expect("timestamp_ms")
    }
    pub fn is_debug(&self) -> bool {
        self.facts["decoded"]["debug_mode_pcr0_zero"]
            .as_bool()
            .expect("debug flag")
    }
    pub fn signature_is_high_s(&self) -> bool {
        self.facts["cose_signature_s_is_high"]
            .as_bool()
            .expect("high-S flag")
    }
    /// An optional hex field of `decoded` (`null` when absent).
    pub fn optional_hex(&self, field: &str) -> Option<Vec<u8>> {
        self.facts["decoded"][field].as_str().map(decode_hex)
    }
}

/// `NITRO_VECTORS_DIR`, else `../shared/vectors/nitro/` beside the repository.
pub fn vectors_dir() -> PathBuf {
    std::env::var_os("NITRO_VECTORS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/nitro"),
        PathBuf::from,
    )
}

/// Every `.cbor` document with its `.json`; fails (never skips) when they are missing.
pub fn real_documents() -> Vec<RealDocument> {
    let dir = vectors_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|error| {
        panic!(
            "real Nitro attestation documents not found at {} ({error}): put the shared \
             vectors in shared/vectors/nitro/ beside the repository checkout, or set \
             NITRO_VECTORS_DIR to their folder",
            dir.display()
        )
    });
    let mut documents: Vec<RealDocument> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "cbor")
        })
        .map(|path| {
            let facts_path = path.with_extension("json");
            let facts = std::fs::read(&facts_path)
                .unwrap_or_else(|error| panic!("{}: {error}", facts_path.display()));
            RealDocument {
                name: path
                    .file_stem()
                    .expect("stem")
                    .to_string_lossy()
                    .into_owned(),
                bytes: std::fs::read(&path).expect("document bytes"),
                facts: serde_json::from_slice(&facts).expect("facts JSON"),
            }
        })
        .collect();
    documents.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        documents.len() >= 8,
        "expected the 8 real documents in {}, found {}",
        dir.display(),
        documents.len()
    );
    documents
}

pub fn real_document(name: &str) -> RealDocument {
    real_documents()
        .into_iter()
        .find(|document| document.name == name)
        .unwrap_or_else(|| panic!("real document {name} missing"))
}

pub fn aws_root_pem() -> Vec<u8> {
    std::fs::read(vectors_dir().join("aws_nitro_root_g1.pem")).expect("aws_nitro_root_g1.pem")
}

pub fn decode_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).expect("hex"))
        .collect()
}

/// Minimal CBOR writer (shortest-form heads), enough to rebuild attestation documents.
#[derive(Default)]
pub struct CborWriter {
    pub out: Vec<u8>,
}

impl CborWriter {
    pub fn head(&mut self, major: u8, value: u64) -> &mut Self {
        let major = major << 5;
        if value < 24 {
            self.out.push(major | value as u8);
        } else if value <= 0xff {
            self.out.extend_from_slice(&[major | 24, value as u8]);
        } else if value <= 0xffff {
            self.out.push(major | 25);
            self.out.extend_from_slice(&(value as u16).to_be_bytes());
        } else if value <= 0xffff_ffff {
            self.out.push(major | 26);
            self.out.extend_from_slice(&(value as u32).to_be_bytes());
        } else {
            self.out.push(major | 27);
            self.out.extend_from_slice(&value.to_be_bytes());
        }
        self
    }
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.head(3, text.len() as u64);
        self.out.extend_from_slice(text.as_bytes());
        self
    }
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.head(2, bytes.len() as u64);
        self.out.extend_from_slice(bytes);
        self
    }
    pub fn optional_bytes(&mut self, bytes: Option<&[u8]>) -> &mut Self {
        match bytes {
            Some(bytes) => self.bytes(bytes),
            None => {
                self.out.push(0xf6);
                self
            }
        }
    }
}

/// The payload fields, in the order the NSM writes them.
#[derive(Clone)]
pub struct Payload {
    pub module_id: String,
    pub digest: String,
    pub timestamp: u64,
    pub pcrs: Vec<(u8, Vec<u8>)>,
    pub certificate: Vec<u8>,
    pub cabundle: Vec<Vec<u8>>,
    pub public_key: Option<Vec<u8>>,
    pub user_data: Option<Vec<u8>>,
    pub nonce: Option<Vec<u8>>,
}

impl Payload {
    pub fn from_document(document: &AttestationDocument) -> Self {
        Self {
            module_id: document.module_id().to_owned(),
            digest: "SHA384".to_owned(),
            timestamp: document.timestamp().as_millis(),
            pcrs: document.pcrs().to_vec(),
            certificate: document.certificate().to_vec(),
            cabundle: document.cabundle().to_vec(),
            public_key: document.public_key().map(<[u8]>::to_vec),
            user_data: document.user_data().map(<[u8]>::to_vec),
            nonce: document.nonce().map(<[u8]>::to_vec),
        }
    }

    /// The payload map; `extra` entries (already encoded key and value) are appended.
    pub fn encode_with(&self, extra: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = CborWriter::default();
        writer.head(5, 9 + extra.len() as u64);
        writer.text("module_id").text(&self.module_id);
        writer.text("digest").text(&self.digest);
        writer.text("timestamp").head(0, self.timestamp);
        writer.text("pcrs").head(5, self.pcrs.len() as u64);
        for (index, value) in &self.pcrs {
            writer.head(0, u64::from(*index)).bytes(value);
        }
        writer.text("certificate").bytes(&self.certificate);
        writer.text("cabundle").head(4, self.cabundle.len() as u64);
        for entry in &self.cabundle {
            writer.bytes(entry);
        }
        writer
            .text("public_key")
            .optional_bytes(self.public_key.as_deref());
        writer
            .text("user_data")
            .optional_bytes(self.user_data.as_deref());
        writer.text("nonce").optional_bytes(self.nonce.as_deref());
        for (key, encoded_value) in extra {
            writer.text(key);
            writer.out.extend_from_slice(encoded_value);
        }
        writer.out
    }

    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(&[])
    }
}

/// An untagged COSE_Sign1: `[protected, {}, payload, signature]`.
pub fn encode_cose_sign1(protected: &[u8], payload: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut writer = CborWriter::default();
    writer.head(4, 4).bytes(protected);
    writer.head(5, 0);
    writer.bytes(payload).bytes(signature);
    writer.out
}

/// The COSE Sig_structure bytes for COSE_Sign1 with empty external AAD.
pub fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut writer = CborWriter::default();
    writer
        .head(4, 4)
        .text("Signature1")
        .bytes(protected)
        .bytes(&[])
        .bytes(payload);
    writer.out
}

pub const ES384_PROTECTED: [u8; 4] = [0xa1, 0x01, 0x38, 0x22];
