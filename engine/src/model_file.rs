//! Reading a GGUF model into memory once, hashing exactly those bytes and parsing the same
//! buffer, so that the hash always describes the weights that are actually used.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};
use crate::progress::{Progress, ProgressUnit};

/// A SHA-256 digest of model bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelHash(pub [u8; 32]);

impl ModelHash {
    /// Parses 64 hexadecimal characters (either case).
    pub fn from_hex(hex_digest: &str) -> Result<Self> {
        let invalid = || EngineError::InvalidExpectedHash {
            given: hex_digest.to_owned(),
        };
        let trimmed = hex_digest.trim();
        if trimmed.len() != 64 {
            return Err(invalid());
        }
        let mut digest = [0u8; 32];
        hex::decode_to_slice(trimmed, &mut digest).map_err(|_| invalid())?;
        Ok(Self(digest))
    }

    /// Lower-case hexadecimal.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for ModelHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModelHash({})", self.to_hex())
    }
}

impl std::fmt::Display for ModelHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A model file's bytes, their hash, and the parsed GGUF header (metadata and tensor index).
///
/// Tensor data is read from `bytes` later, so the hashed buffer is the parsed buffer.
pub struct ModelFile {
    path: PathBuf,
    bytes: Vec<u8>,
    sha256: ModelHash,
    content: gguf_file::Content,
}

impl std::fmt::Debug for ModelFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelFile")
            .field("path", &self.path)
            .field("len", &self.bytes.len())
            .field("sha256", &self.sha256)
            .field("metadata_keys", &self.content.metadata.len())
            .field("tensors", &self.content.tensor_infos.len())
            .finish()
    }
}

/// Bytes read and hashed per step: large enough to be fast, small enough for smooth progress.
const READ_CHUNK: usize = 4 << 20;

impl ModelFile {
    /// Reads the whole file into memory, hashing while reading, and fails with
    /// [`EngineError::ModelHashMismatch`] when `expected` is given and differs.
    pub fn read(
        path: &Path,
        expected: Option<ModelHash>,
        progress: &mut dyn Progress,
    ) -> Result<Self> {
        let read_error = |source| EngineError::ModelRead {
            path: path.to_owned(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read_error)?;
        let announced_len = file.metadata().map_err(read_error)?.len();
        let mut bytes = Vec::with_capacity(usize::try_from(announced_len).unwrap_or(0));
        let mut hasher = Sha256::new();
        progress.start("hashing", announced_len, ProgressUnit::Bytes);
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            let read = match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(read_error(error)),
            };
            hasher.update(&chunk[..read]);
            bytes.extend_from_slice(&chunk[..read]);
            progress.update(bytes.len() as u64);
        }
        progress.finish();
        let sha256 = ModelHash(hasher.finalize().into());
        Self::verify_and_parse(path.to_owned(), bytes, sha256, expected)
    }

    /// Hashes and parses bytes that are already in memory (tests, embedded models).
    pub fn from_bytes(path: PathBuf, bytes: Vec<u8>, expected: Option<ModelHash>) -> Result<Self> {
        let sha256 = ModelHash(Sha256::digest(&bytes).into());
        Self::verify_and_parse(path, bytes, sha256, expected)
    }

    fn verify_and_parse(
        path: PathBuf,
        bytes: Vec<u8>,
        sha256: ModelHash,
        expected: Option<ModelHash>,
    ) -> Result<Self> {
        if let Some(expected) = expected
            && expected != sha256
        {
            return Err(EngineError::ModelHashMismatch {
                path,
                expected: expected.to_hex(),
                actual: sha256.to_hex(),
            });
        }
        let content = gguf_file::Content::read(&mut Cursor::new(bytes.as_slice()))
            .map_err(|error| EngineError::GgufParse(error.to_string()))?;
        Ok(Self {
            path,
            bytes,
            sha256,
            content,
        })
    }

    /// The SHA-256 of the bytes in memory.
    pub fn sha256(&self) -> ModelHash {
        self.sha256
    }

    /// Where the bytes were read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed GGUF header.
    pub fn content(&self) -> &gguf_file::Content {
        &self.content
    }

    /// The size of the model file in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the file is empty (never true for a parsed GGUF).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Reads one tensor from the in-memory bytes.
    pub fn tensor(&self, name: &str) -> Result<candle_core::quantized::QTensor> {
        let mut cursor = Cursor::new(self.bytes.as_slice());
        self.content
            .tensor(&mut cursor, name, &candle_core::Device::Cpu)
            .map_err(|error| EngineError::Tensor {
                name: name.to_owned(),
                reason: error.to_string(),
            })
    }

    /// The raw bytes of a tensor's data, or `None` when it is absent or lies outside the file.
    pub fn tensor_bytes(&self, name: &str) -> Option<&[u8]> {
        let info = self.content.tensor_infos.get(name)?;
        let dtype = info.ggml_dtype;
        let elements = info.shape.elem_count();
        if !elements.is_multiple_of(dtype.block_size()) {
            return None;
        }
        let size = elements / dtype.block_size() * dtype.type_size();
        let start =
            usize::try_from(self.content.tensor_data_offset.checked_add(info.offset)?).ok()?;
        self.bytes.get(start..start.checked_add(size)?)
    }

    /// Whether the file has a tensor of that name.
    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// A metadata value, or a [`EngineError::Metadata`] naming the missing key.
    pub fn metadata(&self, key: &str) -> Result<&gguf_file::Value> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| EngineError::Metadata {
                key: key.to_owned(),
                reason: "missing".to_owned(),
            })
    }

    /// A metadata value as u32.
    pub fn metadata_u32(&self, key: &str) -> Result<u32> {
        self.metadata(key)?
            .to_u32()
            .map_err(|e| metadata_error(key, e))
    }

    /// A metadata value as f32.
    pub fn metadata_f32(&self, key: &str) -> Result<f32> {
        self.metadata(key)?
            .to_f32()
            .map_err(|e| metadata_error(key, e))
    }

    /// A metadata value as a string.
    pub fn metadata_str(&self, key: &str) -> Result<&str> {
        self.metadata(key)?
            .to_string()
            .map(String::as_str)
            .map_err(|e| metadata_error(key, e))
    }

    /// A boolean metadata value, or `None` when the key is absent.
    pub fn metadata_bool_opt(&self, key: &str) -> Result<Option<bool>> {
        match self.content.metadata.get(key) {
            None => Ok(None),
            Some(value) => value
                .to_bool()
                .map(Some)
                .map_err(|e| metadata_error(key, e)),
        }
    }

    /// Drops the file bytes once every tensor has been read, keeping the header and hash.
    pub(crate) fn release_bytes(&mut self) {
        self.bytes = Vec::new();
    }
}

fn metadata_error(key: &str, error: candle_core::Error) -> EngineError {
    EngineError::Metadata {
        key: key.to_owned(),
        reason: error.to_string(),
    }
}
