//! The `enclave` binary. Subcommands: `generate` (one prompt, printed answer); the attested
//! server (`serve`) comes next. The work happens in the `inference_engine` library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use inference_engine::{
    ChatMessage, ConsoleProgress, Engine, EngineConfig, GenerationOutput, GenerationParams,
    GenerationRequest, ModelHash, Prompt, Role, SamplingParams,
};

#[derive(Debug, Parser)]
#[command(
    name = "enclave",
    version,
    about = "Attested LLM inference inside an AWS Nitro enclave"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load a GGUF model (checking its SHA-256) and answer one prompt.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// The GGUF model file.
    #[arg(long)]
    model: PathBuf,
    /// Refuse the model unless its bytes have this SHA-256 (64 hex characters).
    #[arg(long, value_name = "HEX")]
    model_sha256: Option<String>,
    /// Use this tokenizer.json instead of the tokenizer in the GGUF metadata.
    #[arg(long, value_name = "PATH")]
    tokenizer_json: Option<PathBuf>,
    /// Wrap the prompt in the model's chat template as a user message.
    #[arg(long)]
    chat: bool,
    /// System message for --chat (default: the template's own default, if any).
    #[arg(long, requires = "chat")]
    system: Option<String>,
    /// The most tokens to generate.
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Sampling temperature; greedy decoding when absent or 0.
    #[arg(long)]
    temperature: Option<f32>,
    /// Nucleus sampling threshold in (0, 1].
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Sample among the K most likely tokens only (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Penalty for recently seen tokens (1: none).
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// Seed for reproducible sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop when the output contains this text (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Keep generating through end-of-generation tokens until --max-tokens.
    #[arg(long)]
    ignore_eos: bool,
    /// Threads for the forward pass (default: all available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Context window in tokens (default: the model's trained length).
    #[arg(long)]
    ctx_size: Option<usize>,
    /// Print one JSON object (ids, text, counts, timings) instead of streaming text.
    #[arg(long)]
    json: bool,
    /// Read the prompt from this file instead of the command line.
    #[arg(long, value_name = "PATH", conflicts_with = "prompt")]
    prompt_file: Option<PathBuf>,
    /// The prompt.
    #[arg(required_unless_present = "prompt_file")]
    prompt: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .init();
    let result = match cli.command {
        Command::Generate(args) => generate(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn generate(args: GenerateArgs) -> Result<(), String> {
    let prompt_text = match (&args.prompt, &args.prompt_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read prompt file {}: {e}", path.display()))?,
        (None, None) => return Err("no prompt given".to_owned()),
    };
    let expected_sha256 = args
        .model_sha256
        .as_deref()
        .map(ModelHash::from_hex)
        .transpose()
        .map_err(|e| e.to_string())?;
    let config = EngineConfig {
        expected_sha256,
        tokenizer_json: args.tokenizer_json.clone(),
        threads: args.threads,
        context_length: args.ctx_size,
        ..EngineConfig::new(&args.model)
    };
    let engine = Engine::load(&config, &mut ConsoleProgress::new()).map_err(|e| e.to_string())?;

    let prompt = if args.chat {
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(ChatMessage::new(Role::System, system.clone()));
        }
        messages.push(ChatMessage::new(Role::User, prompt_text));
        Prompt::Chat(messages)
    } else {
        Prompt::Text(prompt_text)
    };
    let request = GenerationRequest {
        prompt,
        params: GenerationParams {
            max_tokens: args.max_tokens,
            sampling: SamplingParams {
                temperature: args.temperature.unwrap_or(0.0),
                top_p: args.top_p,
                top_k: args.top_k,
                repetition_penalty: args.repetition_penalty,
                seed: args.seed,
                ..SamplingParams::greedy()
            },
            stop: args.stop.clone(),
            ignore_eos: args.ignore_eos,
        },
    };
    let stream = !args.json;
    let output = engine
        .generate(request, move |delta| {
            if stream {
                let mut stdout = std::io::stdout().lock();
                // A closed stdout (e.g. `| head`) ends the generation.
                stdout.write_all(delta.as_bytes()).is_ok() && stdout.flush().is_ok()
            } else {
                true
            }
        })
        .map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", json_report(&engine, &output));
    } else {
        println!();
        tracing::info!(
            prompt_tokens = output.prompt_tokens,
            completion_tokens = output.completion_tokens,
            finish_reason = output.finish_reason.as_str(),
            prompt_tokens_per_s = format!("{:.1}", output.timings.prompt_tokens_per_s),
            decode_tokens_per_s = format!("{:.1}", output.timings.decode_tokens_per_s),
            "done"
        );
    }
    Ok(())
}

fn json_report(engine: &Engine, output: &GenerationOutput) -> serde_json::Value {
    serde_json::json!({
        "model_sha256": engine.model_sha256().to_hex(),
        "prompt_ids": output.prompt_ids,
        "output_ids": output.output_ids,
        "text": output.text,
        "prompt_tokens": output.prompt_tokens,
        "completion_tokens": output.completion_tokens,
        "finish_reason": output.finish_reason.as_str(),
        "threads": engine.threads(),
        "timings": {
            "load_ms": engine.load_ms(),
            "prompt_ms": output.timings.prompt_ms,
            "decode_ms": output.timings.decode_ms,
            "prompt_tokens_per_s": output.timings.prompt_tokens_per_s,
            "decode_tokens_per_s": output.timings.decode_tokens_per_s,
        },
    })
}
