//! The `enclave` binary. Subcommands: `serve` (the attested HTTPS server, a thin wrapper
//! over `enclave::server`) and `generate` (one prompt, printed answer). The work happens in
//! the `enclave` and `inference_engine` libraries.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use enclave::config::{ConfigLayer, EnclaveConfig};
use enclave::server::Server;
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
    /// Boot the enclave (model hash check, keys, attestation) and serve the attested
    /// OpenAI-compatible API over TLS. Every setting can also come from the environment
    /// (ENCLAVE_*) or a TOML file (--config); the command line wins, then the environment.
    Serve(ServeArgs),
    /// Load a GGUF model (checking its SHA-256) and answer one prompt.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// A TOML file with any of the settings below (keys as in `enclave.toml`: model,
    /// model_sha256, listen, parent_listen, attester, dev_pki, server_names,
    /// max_request_bytes, max_concurrent_requests, max_queued_requests, max_tokens,
    /// header_timeout_ms, max_connections, attestations_per_second,
    /// attestations_per_minute_per_connection, onchain_relay).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The GGUF model file [env: ENCLAVE_MODEL].
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// The model's expected SHA-256, 64 hex characters [env: ENCLAVE_MODEL_SHA256].
    #[arg(long, value_name = "HEX")]
    model_sha256: Option<String>,
    /// Where to listen: tcp:<addr:port> or vsock:<port> [env: ENCLAVE_LISTEN].
    #[arg(long, value_name = "ADDRESS")]
    listen: Option<String>,
    /// Where the parent channel listens (plain HTTP, for the parent instance only: the
    /// operator binding and metrics): tcp:<addr:port> or vsock:<port>
    /// [env: ENCLAVE_PARENT_LISTEN].
    #[arg(long, value_name = "ADDRESS")]
    parent_listen: Option<String>,
    /// nsm (the Nitro Secure Module) or dev (a local development CA) [env: ENCLAVE_ATTESTER].
    #[arg(long, value_name = "nsm|dev")]
    attester: Option<String>,
    /// The development CA directory, created when missing; its root is <dir>/root.pem
    /// [env: ENCLAVE_DEV_PKI].
    #[arg(long, value_name = "DIR")]
    dev_pki: Option<PathBuf>,
    /// Names in the TLS certificate, comma-separated [env: ENCLAVE_SERVER_NAMES].
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    server_names: Option<Vec<String>>,
    /// Largest request body in bytes [env: ENCLAVE_MAX_REQUEST_BYTES].
    #[arg(long, value_name = "BYTES")]
    max_request_bytes: Option<u64>,
    /// Generations advanced together [env: ENCLAVE_MAX_CONCURRENT_REQUESTS].
    #[arg(long, value_name = "N")]
    max_concurrent_requests: Option<u64>,
    /// Requests waiting beyond those before 429 [env: ENCLAVE_MAX_QUEUED_REQUESTS].
    #[arg(long, value_name = "N")]
    max_queued_requests: Option<u64>,
    /// Most tokens one request may generate [env: ENCLAVE_MAX_TOKENS].
    #[arg(long, value_name = "N")]
    max_tokens: Option<u64>,
    /// Time for the TLS handshake and request head, and for the body, in milliseconds
    /// [env: ENCLAVE_HEADER_TIMEOUT_MS].
    #[arg(long, value_name = "MS")]
    header_timeout_ms: Option<u64>,
    /// Connections open at once; more are closed at once [env: ENCLAVE_MAX_CONNECTIONS].
    #[arg(long, value_name = "N")]
    max_connections: Option<u64>,
    /// Fresh attestation documents per second, all clients together (429 beyond)
    /// [env: ENCLAVE_ATTESTATIONS_PER_SECOND].
    #[arg(long, value_name = "N")]
    attestations_per_second: Option<u64>,
    /// Fresh attestation documents per minute on one connection (429 beyond)
    /// [env: ENCLAVE_ATTESTATIONS_PER_MINUTE_PER_CONNECTION].
    #[arg(long, value_name = "N")]
    attestations_per_minute_per_connection: Option<u64>,
    /// The relay this enclave signs on-chain fulfilments for, <chain_id>:<0x address>;
    /// without it `POST /v1/onchain/fulfillments` is refused [env: ENCLAVE_ONCHAIN_RELAY].
    #[arg(long, value_name = "CHAIN:ADDRESS")]
    onchain_relay: Option<String>,
}

impl ServeArgs {
    fn layer(&self) -> ConfigLayer {
        ConfigLayer {
            model: self.model.clone(),
            model_sha256: self.model_sha256.clone(),
            listen: self.listen.clone(),
            parent_listen: self.parent_listen.clone(),
            attester: self.attester.clone(),
            dev_pki: self.dev_pki.clone(),
            server_names: self.server_names.clone(),
            max_request_bytes: self.max_request_bytes,
            max_concurrent_requests: self.max_concurrent_requests,
            max_queued_requests: self.max_queued_requests,
            max_tokens: self.max_tokens,
            header_timeout_ms: self.header_timeout_ms,
            max_connections: self.max_connections,
            attestations_per_second: self.attestations_per_second,
            attestations_per_minute_per_connection: self.attestations_per_minute_per_connection,
            onchain_relay: self.onchain_relay.clone(),
        }
    }

    /// File, then environment, then command line.
    fn resolve(&self) -> Result<EnclaveConfig, String> {
        let file = match &self.config {
            Some(path) => ConfigLayer::from_toml_file(path).map_err(|e| e.to_string())?,
            None => ConfigLayer::default(),
        };
        let environment =
            ConfigLayer::from_env(|name| std::env::var(name).ok()).map_err(|e| e.to_string())?;
        file.overlay(environment)
            .overlay(self.layer())
            .resolve()
            .map_err(|e| e.to_string())
    }
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
        Command::Serve(args) => serve(&args),
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

fn serve(args: &ServeArgs) -> Result<(), String> {
    let config = args.resolve()?;
    println!("effective configuration:");
    for line in config.to_string().lines() {
        println!("  {line}");
    }
    flush_stdout();
    // Handlers first: a SIGTERM right after the listening line must stop us cleanly.
    let termination = Termination::install()?;
    let server = Server::start_with_progress(&config, &mut ConsoleProgress::new())
        .map_err(|e| e.to_string())?;
    let mut line = format!(
        "listening on {} (model {} sha256 {}, enclave address {}",
        server.local_address(),
        server.model_id(),
        hex::encode(server.model_sha256()),
        attestation_verifier::receipt::address_hex(&server.enclave_address()),
    );
    if let Some(root) = server.dev_root_pem_path() {
        line.push_str(&format!(", development root {}", root.display()));
    }
    line.push(')');
    println!("{line}");
    flush_stdout();
    termination.wait();
    println!("shutting down");
    flush_stdout();
    server.shutdown();
    Ok(())
}

fn flush_stdout() {
    // A closed stdout must not stop the server.
    let _ = std::io::stdout().flush();
}

/// SIGINT and SIGTERM handlers, installed before the server starts.
struct Termination {
    runtime: tokio::runtime::Runtime,
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Termination {
    fn install() -> Result<Self, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot create the signal runtime: {e}"))?;
        let (interrupt, terminate) = runtime.block_on(async {
            let interrupt = signal(SignalKind::interrupt())
                .map_err(|e| format!("cannot listen for SIGINT: {e}"))?;
            let terminate = signal(SignalKind::terminate())
                .map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
            Ok::<_, String>((interrupt, terminate))
        })?;
        Ok(Self {
            runtime,
            interrupt,
            terminate,
        })
    }

    /// Blocks until SIGINT or SIGTERM.
    fn wait(mut self) {
        self.runtime.block_on(async {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        });
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
