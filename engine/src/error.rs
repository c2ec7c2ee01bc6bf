//! The engine's error type: one variant per failed check, with what is needed to act on it.

use std::path::PathBuf;

/// Everything that can go wrong while loading a model or generating text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The model file could not be opened or read.
    #[error("cannot read model file {path}: {source}")]
    ModelRead {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The expected SHA-256 given by the operator is not 64 hexadecimal characters.
    #[error("expected model SHA-256 {given:?} is not 64 hexadecimal characters")]
    InvalidExpectedHash {
        /// What was given.
        given: String,
    },
    /// The model bytes do not hash to the expected value: the model is refused.
    #[error("model hash mismatch for {path}: expected sha256 {expected}, computed {actual}")]
    ModelHashMismatch {
        /// The file that was hashed.
        path: PathBuf,
        /// The SHA-256 the operator pinned (hex).
        expected: String,
        /// The SHA-256 of the bytes actually read (hex).
        actual: String,
    },
    /// The bytes are not a GGUF file candle can parse.
    #[error("cannot parse GGUF model: {0}")]
    GgufParse(String),
    /// A metadata key the engine needs is missing or has the wrong type.
    #[error("GGUF metadata key `{key}` is missing or invalid: {reason}")]
    Metadata {
        /// The metadata key.
        key: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The model's architecture has no forward pass in this engine.
    #[error("unsupported model architecture `{0}` (supported: llama)")]
    UnsupportedArchitecture(String),
    /// A tensor the architecture needs is missing or has an unexpected shape.
    #[error("tensor `{name}` is missing or invalid: {reason}")]
    Tensor {
        /// The tensor name in the GGUF file.
        name: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The tokenizer could not be built from the metadata or loaded from `tokenizer.json`.
    #[error("cannot build tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template is missing, does not compile, or fails to render.
    #[error("chat template error: {0}")]
    ChatTemplate(String),
    /// The prompt does not leave room for a single generated token in the context window.
    #[error(
        "prompt of {prompt_tokens} tokens does not fit the context window of {context_length} tokens (at most {max_prompt_tokens} prompt tokens)"
    )]
    PromptTooLong {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// The model's context window.
        context_length: usize,
        /// The longest prompt that still allows one generated token.
        max_prompt_tokens: usize,
    },
    /// The prompt has no tokens at all, so there is nothing to condition on.
    #[error("the prompt is empty after tokenization")]
    EmptyPrompt,
    /// A sampling or generation parameter is out of range.
    #[error("invalid generation parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// A token id is outside the model's vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab_size} tokens")]
    TokenOutOfRange {
        /// The offending id.
        id: u32,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// The thread pool for the forward pass could not be created.
    #[error("cannot create a thread pool of {threads} threads: {reason}")]
    ThreadPool {
        /// The requested number of threads.
        threads: usize,
        /// Why it failed.
        reason: String,
    },
    /// A tensor operation inside candle failed.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// Too many requests are waiting; the caller should retry later (HTTP 503).
    #[error("the generation queue is full ({waiting} requests waiting, limit {limit})")]
    QueueFull {
        /// Requests waiting or running.
        waiting: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The batched forward pass this request was part of failed.
    #[error("the batched forward pass failed: {0}")]
    BatchFailed(String),
    /// The batch scheduler has stopped (its worker thread exited).
    #[error("the generation scheduler is no longer running")]
    SchedulerStopped,
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, EngineError>;
