//! Generation: requests, per-sequence state, and the batched step that advances several
//! sequences through one forward pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::chat::ChatMessage;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::llama::{KvCache, LogitsWanted, SequenceChunk};
use crate::sampling::{Sampler, SamplingParams};
use crate::stream::{StopMatcher, StopOutcome, Utf8Stream};

/// What the model continues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Prompt {
    /// Raw text: BOS is added only where the model's metadata asks for it; control-token
    /// text (e.g. `<|im_start|>`) is parsed as such.
    Text(String),
    /// A conversation rendered through the model's chat template, ending with an open
    /// assistant turn.
    Chat(Vec<ChatMessage>),
    /// Token ids, used as they are.
    Tokens(Vec<u32>),
}

/// Limits and sampling of one generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationParams {
    /// The most tokens to generate.
    pub max_tokens: usize,
    /// How tokens are chosen.
    pub sampling: SamplingParams,
    /// Generation ends when the text contains one of these (the stop text is not returned).
    pub stop: Vec<String>,
    /// Keep generating through end-of-generation tokens (fixed-length benchmarks).
    pub ignore_eos: bool,
}

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            sampling: SamplingParams::greedy(),
            stop: Vec::new(),
            ignore_eos: false,
        }
    }
}

/// A prompt and how to continue it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRequest {
    /// What to continue.
    pub prompt: Prompt,
    /// How.
    #[serde(default)]
    pub params: GenerationParams,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinishReason {
    /// An end-of-generation token or a stop sequence.
    Stop,
    /// `max_tokens` or the context window was reached.
    Length,
    /// The caller cancelled (or stopped listening).
    Cancelled,
}

impl FinishReason {
    /// The OpenAI-style name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Time spent, in milliseconds, and the derived rates.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Timings {
    /// The whole prompt pass, up to the logits of the first generated token.
    pub prompt_ms: f64,
    /// The forward passes of the generated tokens after the first one.
    pub decode_ms: f64,
    /// Prompt tokens per second.
    pub prompt_tokens_per_s: f64,
    /// Generated tokens (after the first) per second.
    pub decode_tokens_per_s: f64,
}

/// The result of a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationOutput {
    /// The prompt as tokens.
    pub prompt_ids: Vec<u32>,
    /// Generated tokens (an end-of-generation token that ended it is included).
    pub output_ids: Vec<u32>,
    /// Generated text (without end-of-generation tokens or stop sequences).
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// `prompt_ids.len()`.
    pub prompt_tokens: usize,
    /// `output_ids.len()`.
    pub completion_tokens: usize,
    /// Time spent.
    pub timings: Timings,
}

/// A cancellation flag shared between a request's owner and the generator.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the generation to stop at its next step.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Receives a sequence's text as it is generated; returning `false` cancels it (e.g. the
/// client disconnected).
pub trait DeltaSink: Send {
    /// New text (whole UTF-8 characters, never part of a stop sequence).
    fn delta(&mut self, text: &str) -> bool;
}

impl<F: FnMut(&str) -> bool + Send> DeltaSink for F {
    fn delta(&mut self, text: &str) -> bool {
        self(text)
    }
}

/// Prompt tokens one sequence feeds per step while others are decoding, so that a long
/// prompt delays the other sequences' next tokens by a bounded amount.
pub(crate) const PREFILL_CHUNK: usize = 256;

/// One sequence being generated.
pub(crate) struct ActiveSequence {
    prompt_ids: Vec<u32>,
    /// Prompt tokens already in the cache.
    prefilled: usize,
    output_ids: Vec<u32>,
    /// All tokens so far, for the repetition penalty.
    history: Vec<u32>,
    cache: KvCache,
    sampler: Sampler,
    params: GenerationParams,
    utf8: Utf8Stream,
    stops: StopMatcher,
    text: String,
    sink: Box<dyn DeltaSink>,
    cancel: CancelToken,
    started: Instant,
    prompt_done: Option<Instant>,
    finish: Option<FinishReason>,
}

impl std::fmt::Debug for ActiveSequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveSequence")
            .field("prompt_tokens", &self.prompt_ids.len())
            .field("prefilled", &self.prefilled)
            .field("output_tokens", &self.output_ids.len())
            .field("finish", &self.finish)
            .finish_non_exhaustive()
    }
}

impl ActiveSequence {
    /// Tokenizes and validates a request; nothing runs yet.
    pub(crate) fn new(
        engine: &Engine,
        request: GenerationRequest,
        sink: Box<dyn DeltaSink>,
        cancel: CancelToken,
    ) -> Result<Self> {
        let prompt_ids = engine.prompt_ids(&request.prompt)?;
        engine.check_fits(prompt_ids.len())?;
        let sampler = Sampler::new(request.params.sampling.clone())?;
        let stops = StopMatcher::new(&request.params.stop);
        Ok(Self {
            history: prompt_ids.clone(),
            prompt_ids,
            prefilled: 0,
            output_ids: Vec::new(),
            cache: engine.new_cache(),
            sampler,
            params: request.params,
            utf8: Utf8Stream::new(),
            stops,
            text: String::new(),
            sink,
            cancel,
            started: Instant::now(),
            prompt_done: None,
            finish: None,
        })
    }

    pub(crate) fn prompt_tokens(&self) -> usize {
        self.prompt_ids.len()
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finish.is_some()
    }

    /// The tokens this sequence feeds in the next step.
    fn next_tokens(&self) -> &[u32] {
        if self.prefilled < self.prompt_ids.len() {
            let end = (self.prefilled + PREFILL_CHUNK).min(self.prompt_ids.len());
            &self.prompt_ids[self.prefilled..end]
        } else {
            // Decoding: the last generated token is not in the cache yet.
            match self.output_ids.last() {
                Some(last) => std::slice::from_ref(last),
                None => &[],
            }
        }
    }

    fn emit(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.text.push_str(text);
        if !self.sink.delta(text) {
            self.finish = Some(FinishReason::Cancelled);
        }
    }

    fn end(&mut self, reason: FinishReason) {
        let tail = self.utf8.finish();
        let mut rest = match self.stops.push(&tail) {
            StopOutcome::Continue(text) | StopOutcome::Stopped(text) => text,
        };
        if reason != FinishReason::Cancelled {
            rest.push_str(&self.stops.finish());
            self.emit(&rest);
        }
        // `emit` may have seen a disconnected sink; the first reason stands otherwise.
        if self.finish.is_none() {
            self.finish = Some(reason);
        }
    }

    /// Takes the sampled token: text, stop checks, limits.
    fn accept(&mut self, engine: &Engine, token: u32) {
        self.output_ids.push(token);
        self.history.push(token);
        let tokenizer = engine.tokenizer();
        if !self.params.ignore_eos && tokenizer.is_end_of_generation(token) {
            self.end(FinishReason::Stop);
            return;
        }
        let bytes = tokenizer.token_bytes(token).unwrap_or_default();
        let text = self.utf8.push(bytes);
        match self.stops.push(&text) {
            StopOutcome::Continue(text) => self.emit(&text),
            StopOutcome::Stopped(text) => {
                self.emit(&text);
                if self.finish.is_none() {
                    self.finish = Some(FinishReason::Stop);
                }
                return;
            }
        }
        if self.finish.is_some() {
            return;
        }
        let context_full = self.prompt_ids.len() + self.output_ids.len() >= engine.context_length();
        if self.output_ids.len() >= self.params.max_tokens || context_full {
            self.end(FinishReason::Length);
        }
    }

    /// The result; call once finished.
    pub(crate) fn output(&self) -> GenerationOutput {
        let prompt_done = self.prompt_done.unwrap_or_else(Instant::now);
        let prompt = prompt_done.duration_since(self.started);
        let decode = Instant::now().duration_since(prompt_done);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let rate = |count: usize, d: Duration| {
            if d.is_zero() {
                0.0
            } else {
                count as f64 / d.as_secs_f64()
            }
        };
        let decoded = self.output_ids.len().saturating_sub(1);
        GenerationOutput {
            prompt_ids: self.prompt_ids.clone(),
            output_ids: self.output_ids.clone(),
            text: self.text.clone(),
            finish_reason: self.finish.unwrap_or(FinishReason::Cancelled),
            prompt_tokens: self.prompt_ids.len(),
            completion_tokens: self.output_ids.len(),
            timings: Timings {
                prompt_ms: ms(prompt),
                decode_ms: ms(decode),
                prompt_tokens_per_s: rate(self.prompt_ids.len(), prompt),
                decode_tokens_per_s: rate(decoded, decode),
            },
        }
    }
}

/// Advances every unfinished sequence by one step (a prompt chunk or one token) in a single
/// forward pass. Sequences that finish are marked; the caller removes them.
pub(crate) fn step(engine: &Engine, sequences: &mut [ActiveSequence]) -> Result<()> {
    // Cancellation and zero-length requests end before any work.
    for sequence in sequences.iter_mut() {
        if sequence.finish.is_none() && sequence.cancel.is_cancelled() {
            sequence.finish = Some(FinishReason::Cancelled);
        }
        if sequence.finish.is_none() && sequence.params.max_tokens == 0 {
            sequence.end(FinishReason::Length);
        }
    }
    let mut working: Vec<&mut ActiveSequence> = sequences
        .iter_mut()
        .filter(|s| s.finish.is_none())
        .collect();
    if working.is_empty() {
        return Ok(());
    }
    // Token lists are copied so that the caches can be borrowed mutably alongside them.
    let token_lists: Vec<Vec<u32>> = working.iter().map(|s| s.next_tokens().to_vec()).collect();
    let wants: Vec<LogitsWanted> = working
        .iter()
        .zip(&token_lists)
        .map(|(s, tokens)| {
            let completes_prompt = s.prefilled + tokens.len() >= s.prompt_ids.len();
            if completes_prompt {
                LogitsWanted::Last
            } else {
                LogitsWanted::None
            }
        })
        .collect();
    let logits = {
        let mut chunks: Vec<SequenceChunk<'_>> = working
            .iter_mut()
            .zip(&token_lists)
            .zip(&wants)
            .map(|((s, tokens), &logits)| SequenceChunk {
                tokens,
                cache: &mut s.cache,
                logits,
            })
            .collect();
        engine.forward(&mut chunks)?
    };
    for ((sequence, tokens), mut row) in working.iter_mut().zip(&token_lists).zip(logits) {
        let was_prefilling = sequence.prefilled < sequence.prompt_ids.len();
        if was_prefilling {
            sequence.prefilled += tokens.len();
        }
        if row.is_empty() {
            continue;
        }
        let token = sequence.sampler.sample(&mut row, &sequence.history);
        if was_prefilling {
            sequence.prompt_done = Some(Instant::now());
        }
        sequence.accept(engine, token);
    }
    Ok(())
}

/// Runs one request to completion on the calling thread.
pub(crate) fn generate_one(
    engine: &Engine,
    request: GenerationRequest,
    sink: Box<dyn DeltaSink>,
    cancel: CancelToken,
) -> Result<GenerationOutput> {
    let mut sequences = vec![ActiveSequence::new(engine, request, sink, cancel)?];
    while !sequences[0].is_finished() {
        step(engine, &mut sequences)?;
    }
    Ok(sequences[0].output())
}

/// Checks the request's parameters without running it.
pub(crate) fn validate_params(params: &GenerationParams) -> Result<()> {
    params.sampling.validate()?;
    if params.stop.iter().any(|s| s.len() > 1024) {
        return Err(EngineError::InvalidParameter {
            name: "stop",
            reason: "stop sequences are limited to 1024 bytes".to_owned(),
        });
    }
    Ok(())
}
