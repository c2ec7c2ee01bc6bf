//! The tokenizer: built from the GGUF metadata (GPT-2 style byte-level BPE) the same way
//! llama.cpp builds it, or loaded from a `tokenizer.json`.
//!
//! Encoding goes through the `tokenizers` crate. Decoding uses a per-token byte table so
//! that streamed output can be assembled byte by byte and never splits a UTF-8 character.

use std::collections::HashMap;
use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

use crate::error::{EngineError, Result};
use crate::model_file::ModelFile;

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Token texts that end a generation, as llama.cpp detects them by name in the vocabulary.
const END_OF_GENERATION_TEXTS: &[&str] = &[
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|end_of_text|>",
    "</s>",
];

/// A tokenizer with the special-token facts generation needs.
pub struct Tokenizer {
    /// Splits on special (control) tokens as well as user-defined ones.
    parsing_special: tokenizers::Tokenizer,
    /// Treats control-token text as ordinary text.
    plain: tokenizers::Tokenizer,
    /// The raw bytes each token id stands for (control tokens: their text).
    token_bytes: Vec<Vec<u8>>,
    token_texts: Vec<String>,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
    add_bos: bool,
    end_of_generation: Vec<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.token_bytes.len())
            .field("bos_id", &self.bos_id)
            .field("eos_id", &self.eos_id)
            .field("add_bos", &self.add_bos)
            .field("end_of_generation", &self.end_of_generation)
            .finish()
    }
}

fn tokenizer_error(error: impl std::fmt::Display) -> EngineError {
    EngineError::Tokenizer(error.to_string())
}

fn metadata_invalid(key: &str, reason: impl Into<String>) -> EngineError {
    EngineError::Metadata {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// GPT-2's reversible byte <-> printable character mapping (the inverse direction).
fn unicode_to_byte() -> HashMap<char, u8> {
    let mut printable: Vec<u8> = (b'!'..=b'~').collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut map: HashMap<char, u8> = printable.iter().map(|&b| (char::from(b), b)).collect();
    let mut next = 0u32;
    for byte in 0..=255u8 {
        if !printable.contains(&byte) {
            // Bytes without a printable form map to U+0100 and up, in byte order.
            if let Some(c) = char::from_u32(256 + next) {
                map.insert(c, byte);
            }
            next += 1;
        }
    }
    map
}

/// The pre-tokenizer llama.cpp uses for a `tokenizer.ggml.pre` name: a list of regex
/// splits applied in order before byte-level encoding.
fn pre_tokenizer_for(pre: &str) -> Result<PreTokenizerWrapper> {
    let isolate = |pattern: &str| -> Result<PreTokenizerWrapper> {
        Ok(Split::new(
            SplitPattern::Regex(pattern.to_owned()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(tokenizer_error)?
        .into())
    };
    // The final byte-level step applies the GPT-2 regex itself (use_regex = true).
    let byte_level: PreTokenizerWrapper = ByteLevel::new(false, false, true).into();
    let steps = match pre {
        // GPT-2's regex alone.
        "gpt-2" | "gpt2" | "default" | "mpt" | "olmo" | "jais" => vec![byte_level],
        // Digits are split one by one before the GPT-2 regex.
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            vec![isolate(r"\p{N}")?, byte_level]
        }
        other => {
            return Err(EngineError::Tokenizer(format!(
                "pre-tokenizer `{other}` is not supported (supported: gpt2 family, smollm family)"
            )));
        }
    };
    Ok(Sequence::new(steps).into())
}

impl Tokenizer {
    /// Builds the tokenizer from the model's GGUF metadata.
    pub fn from_gguf(model: &ModelFile) -> Result<Self> {
        let kind = model.metadata_str("tokenizer.ggml.model")?;
        if kind != "gpt2" {
            return Err(metadata_invalid(
                "tokenizer.ggml.model",
                format!("`{kind}` is not supported (supported: gpt2 byte-level BPE)"),
            ));
        }
        let pre = match model.content().metadata.get("tokenizer.ggml.pre") {
            Some(value) => value
                .to_string()
                .map_err(|e| metadata_invalid("tokenizer.ggml.pre", e.to_string()))?
                .clone(),
            None => "default".to_owned(),
        };
        let tokens: Vec<String> = model
            .metadata("tokenizer.ggml.tokens")?
            .to_vec()
            .map_err(|e| metadata_invalid("tokenizer.ggml.tokens", e.to_string()))?
            .iter()
            .map(|v| v.to_string().cloned())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| metadata_invalid("tokenizer.ggml.tokens", e.to_string()))?;
        let token_types: Vec<i32> = match model.content().metadata.get("tokenizer.ggml.token_type")
        {
            Some(value) => value
                .to_vec()
                .map_err(|e| metadata_invalid("tokenizer.ggml.token_type", e.to_string()))?
                .iter()
                .map(|v| v.to_i32())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| metadata_invalid("tokenizer.ggml.token_type", e.to_string()))?,
            None => vec![1; tokens.len()],
        };
        if token_types.len() != tokens.len() {
            return Err(metadata_invalid(
                "tokenizer.ggml.token_type",
                format!("{} entries for {} tokens", token_types.len(), tokens.len()),
            ));
        }
        let merges: Vec<(String, String)> = model
            .metadata("tokenizer.ggml.merges")?
            .to_vec()
            .map_err(|e| metadata_invalid("tokenizer.ggml.merges", e.to_string()))?
            .iter()
            .map(|v| {
                let merge = v.to_string().map_err(|e| e.to_string())?;
                merge
                    .split_once(' ')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .ok_or_else(|| format!("merge `{merge}` has no space"))
            })
            .collect::<std::result::Result<_, _>>()
            .map_err(|reason| metadata_invalid("tokenizer.ggml.merges", reason))?;

        let vocab: tokenizers::models::bpe::Vocab = tokens
            .iter()
            .enumerate()
            .map(|(id, token)| (token.clone(), id as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(tokenizer_error)?;
        let mut plain = tokenizers::Tokenizer::new(bpe);
        plain.with_pre_tokenizer(Some(pre_tokenizer_for(&pre)?));
        plain.with_decoder(Some(ByteLevel::default()));

        // llama.cpp always splits on user-defined tokens, and on control tokens only when
        // asked to parse special tokens.
        let added = |wanted: i32| -> Vec<AddedToken> {
            tokens
                .iter()
                .zip(&token_types)
                .filter(|(_, ty)| **ty == wanted)
                .map(|(text, _)| AddedToken::from(text.clone(), true).normalized(false))
                .collect()
        };
        plain
            .add_tokens(added(TOKEN_TYPE_USER_DEFINED))
            .map_err(tokenizer_error)?;
        let mut parsing_special = plain.clone();
        parsing_special
            .add_special_tokens(added(TOKEN_TYPE_CONTROL))
            .map_err(tokenizer_error)?;

        let byte_of = unicode_to_byte();
        let token_bytes = tokens
            .iter()
            .zip(&token_types)
            .map(|(text, ty)| {
                if *ty == TOKEN_TYPE_CONTROL || *ty == TOKEN_TYPE_USER_DEFINED {
                    text.as_bytes().to_vec()
                } else {
                    byte_level_bytes(text, &byte_of)
                }
            })
            .collect();

        let optional_id = |key: &str| -> Result<Option<u32>> {
            match model.content().metadata.get(key) {
                None => Ok(None),
                Some(v) => v
                    .to_u32()
                    .map(Some)
                    .map_err(|e| metadata_invalid(key, e.to_string())),
            }
        };
        let bos_id = optional_id("tokenizer.ggml.bos_token_id")?;
        let eos_id = optional_id("tokenizer.ggml.eos_token_id")?;
        let eot_id = optional_id("tokenizer.ggml.eot_token_id")?;
        // llama.cpp adds BOS for BPE vocabularies unless the metadata says otherwise.
        let add_bos = model
            .metadata_bool_opt("tokenizer.ggml.add_bos_token")?
            .unwrap_or(true);
        Self::assemble(
            parsing_special,
            plain,
            token_bytes,
            tokens,
            bos_id,
            eos_id,
            eot_id,
            add_bos,
        )
    }

    /// Loads a `tokenizer.json`; the model's metadata still supplies BOS/EOS facts.
    pub fn from_tokenizer_json(path: &Path, model: &ModelFile) -> Result<Self> {
        let parsing_special = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| EngineError::Tokenizer(format!("{}: {e}", path.display())))?;
        if !matches!(
            parsing_special.get_decoder(),
            Some(tokenizers::DecoderWrapper::ByteLevel(_))
        ) {
            return Err(EngineError::Tokenizer(format!(
                "{}: only byte-level BPE tokenizers are supported",
                path.display()
            )));
        }
        let vocab = parsing_special.get_vocab(true);
        let size = vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0);
        let mut tokens = vec![String::new(); size];
        for (text, id) in vocab {
            tokens[id as usize] = text;
        }
        let added = parsing_special.get_added_tokens_decoder();
        let byte_of = unicode_to_byte();
        let token_bytes = tokens
            .iter()
            .enumerate()
            .map(|(id, text)| match added.get(&(id as u32)) {
                Some(_) => text.as_bytes().to_vec(),
                None => byte_level_bytes(text, &byte_of),
            })
            .collect();
        // A tokenizer.json has no notion of "do not parse specials"; keep one instance.
        let plain = parsing_special.clone();
        let id_of = |key: &str| -> Result<Option<u32>> {
            match model.content().metadata.get(key) {
                None => Ok(None),
                Some(v) => v
                    .to_u32()
                    .map(Some)
                    .map_err(|e| metadata_invalid(key, e.to_string())),
            }
        };
        let add_bos = model
            .metadata_bool_opt("tokenizer.ggml.add_bos_token")?
            .unwrap_or(true);
        Self::assemble(
            parsing_special,
            plain,
            token_bytes,
            tokens,
            id_of("tokenizer.ggml.bos_token_id")?,
            id_of("tokenizer.ggml.eos_token_id")?,
            id_of("tokenizer.ggml.eot_token_id")?,
            add_bos,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        parsing_special: tokenizers::Tokenizer,
        plain: tokenizers::Tokenizer,
        token_bytes: Vec<Vec<u8>>,
        token_texts: Vec<String>,
        bos_id: Option<u32>,
        eos_id: Option<u32>,
        eot_id: Option<u32>,
        add_bos: bool,
    ) -> Result<Self> {
        let vocab_size = token_texts.len();
        for id in [bos_id, eos_id, eot_id].into_iter().flatten() {
            if id as usize >= vocab_size {
                return Err(EngineError::TokenOutOfRange { id, vocab_size });
            }
        }
        let mut end_of_generation: Vec<u32> = [eos_id, eot_id].into_iter().flatten().collect();
        for (id, text) in token_texts.iter().enumerate() {
            if END_OF_GENERATION_TEXTS.contains(&text.as_str()) {
                end_of_generation.push(id as u32);
            }
        }
        end_of_generation.sort_unstable();
        end_of_generation.dedup();
        Ok(Self {
            parsing_special,
            plain,
            token_bytes,
            token_texts,
            bos_id,
            eos_id,
            add_bos,
            end_of_generation,
        })
    }

    /// Tokenizes `text`. `add_special` prepends BOS when the model asks for it;
    /// `parse_special` turns control-token text such as `<|im_start|>` into its id.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        let tokenizer = if parse_special {
            &self.parsing_special
        } else {
            &self.plain
        };
        let encoding = tokenizer.encode(text, false).map_err(tokenizer_error)?;
        let mut ids = Vec::with_capacity(encoding.len() + 1);
        if add_special
            && self.add_bos
            && let Some(bos) = self.bos_id
        {
            ids.push(bos);
        }
        ids.extend_from_slice(encoding.get_ids());
        Ok(ids)
    }

    /// The raw bytes a token stands for (a control token: its text).
    pub fn token_bytes(&self, id: u32) -> Result<&[u8]> {
        self.token_bytes
            .get(id as usize)
            .map(Vec::as_slice)
            .ok_or(EngineError::TokenOutOfRange {
                id,
                vocab_size: self.token_bytes.len(),
            })
    }

    /// The vocabulary entry of a token, as stored in the model (byte-level form).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.token_texts.get(id as usize).map(String::as_str)
    }

    /// Decodes ids to text; invalid UTF-8 (a character cut at the end) becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend_from_slice(self.token_bytes(id)?);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    /// The beginning-of-sequence token, if the model has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// The end-of-sequence token, if the model has one.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos_id
    }

    /// Whether the model asks for BOS at the start of a prompt.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// Tokens that end a generation (EOS, EOT and the usual end-of-turn names).
    pub fn end_of_generation(&self) -> &[u32] {
        &self.end_of_generation
    }

    /// Whether `id` ends a generation.
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.end_of_generation.contains(&id)
    }
}

/// Maps a byte-level token string back to raw bytes; characters outside the mapping
/// (never present in a well-formed vocabulary) are kept as their UTF-8.
fn byte_level_bytes(text: &str, byte_of: &HashMap<char, u8>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    for c in text.chars() {
        match byte_of.get(&c) {
            Some(&b) => bytes.push(b),
            None => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_mapping_is_a_bijection_over_all_bytes() {
        let map = unicode_to_byte();
        assert_eq!(map.len(), 256);
        let mut seen: Vec<u8> = map.values().copied().collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 256);
        assert_eq!(map[&'Ġ'], b' ');
        assert_eq!(map[&'Ċ'], b'\n');
    }

    #[test]
    fn unknown_pre_tokenizer_is_rejected() {
        assert!(matches!(
            pre_tokenizer_for("no-such-pre"),
            Err(EngineError::Tokenizer(_))
        ));
    }
}
