//! The engine: a verified model, its tokenizer and chat template, and a thread pool.

use std::path::PathBuf;
use std::time::Instant;

use crate::chat::{ChatMessage, ChatTemplate};
use crate::error::{EngineError, Result};
use crate::generate::{self, CancelToken, DeltaSink, GenerationOutput, GenerationRequest, Prompt};
use crate::llama::{KvCache, LlamaModel, LogitsWanted, SequenceChunk};
use crate::model_file::{ModelFile, ModelHash};
use crate::pool::WorkerPool;
use crate::progress::Progress;
use crate::quant::KernelKind;
use crate::tokenizer::Tokenizer;

/// How to load the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The GGUF model file.
    pub model_path: PathBuf,
    /// The SHA-256 the model bytes must have; loading fails on a mismatch.
    pub expected_sha256: Option<ModelHash>,
    /// A `tokenizer.json` to use instead of the GGUF metadata.
    pub tokenizer_json: Option<PathBuf>,
    /// Threads for the forward pass (`None`: all available cores).
    pub threads: Option<usize>,
    /// The context window (`None`: the model's trained length).
    pub context_length: Option<usize>,
    /// Force a matmul kernel (`None`: the fastest this CPU supports).
    pub kernel: Option<KernelKind>,
}

impl EngineConfig {
    /// Defaults for a model path.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            expected_sha256: None,
            tokenizer_json: None,
            threads: None,
            context_length: None,
            kernel: None,
        }
    }
}

/// A loaded model ready to generate.
pub struct Engine {
    model: LlamaModel,
    tokenizer: Tokenizer,
    chat_template: Option<ChatTemplate>,
    sha256: ModelHash,
    model_path: PathBuf,
    context_length: usize,
    pool: WorkerPool,
    threads: usize,
    load_ms: f64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("model_path", &self.model_path)
            .field("sha256", &self.sha256)
            .field("config", self.model.config())
            .field("context_length", &self.context_length)
            .field("threads", &self.threads)
            .field("kernel", &self.model.kernel())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Reads, hashes (checking `expected_sha256`), parses and loads the model.
    pub fn load(config: &EngineConfig, progress: &mut dyn Progress) -> Result<Self> {
        let started = Instant::now();
        let threads = match config.threads {
            Some(0) => {
                return Err(EngineError::InvalidParameter {
                    name: "threads",
                    reason: "at least one thread is needed".to_owned(),
                });
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        let pool = WorkerPool::new(threads).map_err(|error| EngineError::ThreadPool {
            threads,
            reason: error.to_string(),
        })?;
        let mut file = ModelFile::read(&config.model_path, config.expected_sha256, progress)?;
        let tokenizer = match &config.tokenizer_json {
            Some(path) => Tokenizer::from_tokenizer_json(path, &file)?,
            None => Tokenizer::from_gguf(&file)?,
        };
        let kernel = config.kernel.unwrap_or_else(KernelKind::detect);
        let model = LlamaModel::load(&file, kernel, progress)?;
        if model.config().vocab_size != tokenizer.vocab_size() {
            return Err(EngineError::Tokenizer(format!(
                "tokenizer has {} tokens, the model {}",
                tokenizer.vocab_size(),
                model.config().vocab_size
            )));
        }
        let chat_template = match file.content().metadata.get("tokenizer.chat_template") {
            None => None,
            Some(value) => {
                let source = value.to_string().map_err(|e| EngineError::Metadata {
                    key: "tokenizer.chat_template".to_owned(),
                    reason: e.to_string(),
                })?;
                let text_of = |id: Option<u32>| {
                    id.and_then(|id| tokenizer.token_bytes(id).ok())
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default()
                };
                Some(ChatTemplate::new(
                    source,
                    &text_of(tokenizer.bos_id()),
                    &text_of(tokenizer.eos_id()),
                )?)
            }
        };
        let trained = model.config().context_length;
        let context_length = match config.context_length {
            Some(0) => {
                return Err(EngineError::InvalidParameter {
                    name: "context_length",
                    reason: "must be at least 1".to_owned(),
                });
            }
            Some(n) => n.min(trained),
            None => trained,
        };
        let sha256 = file.sha256();
        let model_path = file.path().to_owned();
        // The weights now live in the engine's own layout: the file bytes can go.
        file.release_bytes();
        drop(file);
        let load_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            sha256 = %sha256,
            weights_mib = model.weights_size_in_bytes() / (1 << 20),
            threads,
            kernel = ?kernel,
            load_ms,
            "model loaded"
        );
        Ok(Self {
            model,
            tokenizer,
            chat_template,
            sha256,
            model_path,
            context_length,
            pool,
            threads,
            load_ms,
        })
    }

    /// The SHA-256 of the model bytes that were loaded.
    pub fn model_sha256(&self) -> ModelHash {
        self.sha256
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The model.
    pub fn model(&self) -> &LlamaModel {
        &self.model
    }

    /// The context window in tokens.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// Threads of the forward pass.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// How long loading took, in milliseconds.
    pub fn load_ms(&self) -> f64 {
        self.load_ms
    }

    /// The model's chat template, if it has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// Renders a conversation with the model's own template, opening the assistant turn.
    pub fn render_chat(&self, messages: &[ChatMessage]) -> Result<String> {
        self.chat_template
            .as_ref()
            .ok_or_else(|| EngineError::ChatTemplate("the model has no chat template".to_owned()))?
            .render(messages, true)
    }

    /// The token ids of a prompt, as generation will feed them.
    pub fn prompt_ids(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        let ids = match prompt {
            Prompt::Text(text) => self.tokenizer.encode(text, true, true)?,
            Prompt::Chat(messages) => {
                let rendered = self.render_chat(messages)?;
                self.tokenizer.encode(&rendered, true, true)?
            }
            Prompt::Tokens(ids) => {
                let vocab_size = self.tokenizer.vocab_size();
                if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab_size) {
                    return Err(EngineError::TokenOutOfRange { id, vocab_size });
                }
                ids.clone()
            }
        };
        if ids.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        Ok(ids)
    }

    /// Fails with [`EngineError::PromptTooLong`] unless the prompt leaves room for one
    /// generated token.
    pub fn check_fits(&self, prompt_tokens: usize) -> Result<()> {
        if prompt_tokens == 0 {
            return Err(EngineError::EmptyPrompt);
        }
        if prompt_tokens >= self.context_length {
            return Err(EngineError::PromptTooLong {
                prompt_tokens,
                context_length: self.context_length,
                max_prompt_tokens: self.context_length - 1,
            });
        }
        Ok(())
    }

    /// An empty KV cache for one sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.model.config())
    }

    /// Runs a forward pass on the engine's threads.
    pub fn forward(&self, chunks: &mut [SequenceChunk<'_>]) -> Result<Vec<Vec<f32>>> {
        self.model.forward(&self.pool, chunks)
    }

    /// The logits after every token of `tokens` (row-major, `vocab_size` per token), from a
    /// fresh cache: teacher forcing and scoring.
    pub fn logits_for_all_positions(&self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.check_fits(tokens.len())?;
        let mut cache = self.new_cache();
        let mut chunks = [SequenceChunk {
            tokens,
            cache: &mut cache,
            logits: LogitsWanted::All,
        }];
        let mut logits = self.forward(&mut chunks)?;
        Ok(logits.pop().unwrap_or_default())
    }

    /// Generates a continuation on the calling thread; `on_delta` receives text as it is
    /// produced and can return `false` to cancel.
    pub fn generate(
        &self,
        request: GenerationRequest,
        on_delta: impl FnMut(&str) -> bool + Send + 'static,
    ) -> Result<GenerationOutput> {
        generate::validate_params(&request.params)?;
        generate::generate_one(self, request, Box::new(on_delta), CancelToken::new())
    }

    /// Like [`Engine::generate`], with a sink object and a cancellation token.
    pub fn generate_with(
        &self,
        request: GenerationRequest,
        sink: Box<dyn DeltaSink>,
        cancel: CancelToken,
    ) -> Result<GenerationOutput> {
        generate::validate_params(&request.params)?;
        generate::generate_one(self, request, sink, cancel)
    }
}
