//! The inference engine of the attested enclave: a GGUF model read once into memory, hashed
//! and parsed from that same buffer, a tokenizer and chat template taken from the model's
//! metadata, and batched generation on the CPU.
//!
//! Entry points: [`Engine::load`] then [`Engine::generate`] for one request on the calling
//! thread, or [`Scheduler`] for many concurrent requests sharing batched forward passes.

mod chat;
mod engine;
mod error;
mod generate;
mod llama;
mod model_file;
mod pool;
mod progress;
mod quant;
mod sampling;
mod scheduler;
mod stream;
mod tokenizer;

pub use chat::{ChatMessage, ChatTemplate, Role};
pub use engine::{Engine, EngineConfig};
pub use error::{EngineError, Result};
pub use generate::{
    CancelToken, DeltaSink, FinishReason, GenerationOutput, GenerationParams, GenerationRequest,
    Prompt, Timings,
};
pub use llama::{KvCache, LlamaConfig, LlamaModel, LogitsWanted, SequenceChunk};
pub use model_file::{ModelFile, ModelHash};
pub use progress::{ConsoleProgress, NoProgress, Progress, ProgressUnit};
pub use quant::KernelKind;
pub use sampling::{Sampler, SamplingParams, argmax};
pub use scheduler::{GenerationEvent, RequestHandle, Scheduler, SchedulerConfig};
pub use stream::{StopMatcher, StopOutcome, Utf8Stream};
pub use tokenizer::Tokenizer;
