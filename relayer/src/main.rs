//! `relayer`: the untrusted chain relayer (see the library documentation).
//!
//! ```text
//! relayer run      --rpc-url URL --relay ADDR --enclave-url https://HOST:PORT [policy] --state FILE
//! relayer stake    --rpc-url URL --relay ADDR --amount-wei N
//! relayer register --rpc-url URL --registry ADDR --enclave-url https://HOST:PORT [policy]
//! relayer register --rpc-url URL --nitro-registrar ADDR --enclave-url https://HOST:PORT [policy]
//! ```
//! Keys come from the environment (`RELAYER_OPERATOR_KEY`, `RELAYER_VERIFIER_KEY`), never from
//! the command line, where other users of the machine could read them.
#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use attest::connection::{AttestedConnection, ConnectOptions};
use attest::policy::PolicyArgs;
use clap::{Args, Parser, Subcommand};
use relayer::RelayerError;
use relayer::contracts::IInferenceRelay;
use relayer::enclave::EnclaveAnswers;
use relayer::register::{registration_for, submit_nitro_registration, submit_registration};
use relayer::relay::{Relayer, RelayerSettings};
use relayer::state::RelayerState;

#[derive(Debug, Parser)]
#[command(
    name = "relayer",
    version,
    about = "Chain relayer for attested inference (untrusted: it cannot forge answers)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Watch the relay and fulfil every request for the enclave's model, exactly once.
    Run(RunArgs),
    /// Stake ETH in the relay as the operator (claims lock part of it).
    Stake(StakeArgs),
    /// Verify the enclave's attestation and register its key with a trusted verifier key.
    Register(RegisterArgs),
}

#[derive(Debug, Args)]
struct ChainArgs {
    /// JSON-RPC endpoint of the chain.
    #[arg(long, env = "RELAYER_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc_url: String,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The InferenceRelay contract.
    #[arg(long, env = "RELAYER_RELAY")]
    relay: Address,
    /// The enclave (directly or through host-proxy).
    #[arg(long, env = "RELAYER_ENCLAVE_URL")]
    enclave_url: String,
    #[command(flatten)]
    policy: PolicyArgs,
    /// The persistent state file (cursor and unfinished requests).
    #[arg(long, env = "RELAYER_STATE")]
    state: PathBuf,
    /// First block to read when the state file is new (default: the current block).
    #[arg(long)]
    start_block: Option<u64>,
    /// Blocks to wait before reading a block's events (use 0 on a local chain).
    #[arg(long, default_value_t = 0)]
    confirmations: u64,
    /// Pause between polls, in milliseconds.
    #[arg(long, default_value_t = 500)]
    poll_interval_ms: u64,
}

#[derive(Debug, Args)]
struct StakeArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The InferenceRelay contract.
    #[arg(long, env = "RELAYER_RELAY")]
    relay: Address,
    /// Amount to stake, in wei.
    #[arg(long)]
    amount_wei: U256,
}

#[derive(Debug, Args)]
struct RegisterArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The EnclaveRegistry contract (the verifier-key route).
    #[arg(
        long,
        env = "RELAYER_REGISTRY",
        required_unless_present = "nitro_registrar"
    )]
    registry: Option<Address>,
    /// Register through this NitroRegistrar instead: the trustless route, where the contract
    /// verifies the attestation document itself (no verifier key; the operator key pays).
    #[arg(long, env = "RELAYER_NITRO_REGISTRAR", conflicts_with = "registry")]
    nitro_registrar: Option<Address>,
    /// The enclave to register.
    #[arg(long, env = "RELAYER_ENCLAVE_URL")]
    enclave_url: String,
    #[command(flatten)]
    policy: PolicyArgs,
    /// How long the registration lasts, in seconds (at most the registry's maximum).
    #[arg(long, default_value_t = 86_400)]
    validity_secs: u64,
}

/// `register --nitro-registrar`: the enclave's document, verified here under the policy first,
/// then on-chain by the registrar.
async fn register_nitro(args: &RegisterArgs, registrar: Address) -> Result<(), RelayerError> {
    let provider = provider_for(&args.chain.rpc_url, key_from_env("RELAYER_OPERATOR_KEY")?)?;
    let policy = args.policy.build().map_err(RelayerError::Usage)?;
    let connection =
        AttestedConnection::connect(&args.enclave_url, policy, ConnectOptions::default())
            .await
            .map_err(|error| RelayerError::Enclave(error.to_string()))?;
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default();
    let expiry = now_secs.saturating_add(args.validity_secs);
    let registration =
        submit_nitro_registration(&provider, registrar, connection.document(), expiry).await?;
    for (tx, gas) in &registration.cached {
        println!("cached an intermediate certificate (tx {tx}, {gas} gas)");
    }
    println!(
        "registered enclave {} through NitroRegistrar {registrar} until {expiry} (tx {}, {} gas)",
        registration.enclave, registration.tx, registration.gas_used
    );
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Stake(args) => stake(args).await,
            Command::Register(args) => register(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn key_from_env(variable: &str) -> Result<PrivateKeySigner, RelayerError> {
    let value = std::env::var(variable)
        .map_err(|_| RelayerError::Usage(format!("set {variable} to the private key (hex)")))?;
    value.trim().parse().map_err(|_| {
        RelayerError::Usage(format!("{variable} is not a secp256k1 private key in hex"))
    })
}

fn provider_for(
    rpc_url: &str,
    signer: PrivateKeySigner,
) -> Result<impl Provider + Clone, RelayerError> {
    let url = rpc_url
        .parse()
        .map_err(|error| RelayerError::Usage(format!("--rpc-url {rpc_url:?}: {error}")))?;
    Ok(ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url))
}

async fn run(args: RunArgs) -> Result<(), RelayerError> {
    let signer = key_from_env("RELAYER_OPERATOR_KEY")?;
    let operator = signer.address();
    let provider = provider_for(&args.chain.rpc_url, signer)?;
    let policy = args.policy.build().map_err(RelayerError::Usage)?;
    let answers =
        EnclaveAnswers::connect(&args.enclave_url, policy, ConnectOptions::default()).await?;
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| RelayerError::chain("eth_chainId", e))?;
    let start_block = match args.start_block {
        Some(block) => block,
        None => provider
            .get_block_number()
            .await
            .map_err(|e| RelayerError::chain("eth_blockNumber", e))?,
    };
    let state = RelayerState::open(&args.state, chain_id, args.relay, start_block)?;
    tracing::info!(%operator, relay = %args.relay, chain_id, next_block = state.next_block(), pending = state.pending().count(), "relayer started");
    let settings = RelayerSettings {
        poll_interval: Duration::from_millis(args.poll_interval_ms),
        confirmations: args.confirmations,
        ..RelayerSettings::default()
    };
    let mut relayer =
        Relayer::new(provider, operator, args.relay, answers, state, settings).await?;
    relayer
        .run(async {
            let signal = stop_signal().await;
            tracing::info!(signal, "stopping (the state file is up to date)");
        })
        .await
}

/// Ctrl-C or SIGTERM (what systemd and process supervisors send). Between polls the state file
/// is always up to date, so either stops the loop cleanly at its next pause.
async fn stop_signal() -> &'static str {
    let mut terminate = match tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::terminate(),
    ) {
        Ok(terminate) => terminate,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM; only Ctrl-C stops the relayer cleanly");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

async fn stake(args: StakeArgs) -> Result<(), RelayerError> {
    let signer = key_from_env("RELAYER_OPERATOR_KEY")?;
    let operator = signer.address();
    let provider = provider_for(&args.chain.rpc_url, signer)?;
    let relay = IInferenceRelay::new(args.relay, provider);
    let receipt = relay
        .stake()
        .value(args.amount_wei)
        .send()
        .await
        .map_err(|e| RelayerError::chain("stake", e))?
        .get_receipt()
        .await
        .map_err(|e| RelayerError::chain("stake receipt", e))?;
    if !receipt.status() {
        return Err(RelayerError::Chain {
            action: "stake",
            reason: format!("transaction {} reverted", receipt.transaction_hash),
        });
    }
    let staked = relay
        .getOperator(operator)
        .call()
        .await
        .map_err(|e| RelayerError::chain("getOperator", e))?;
    println!(
        "operator {operator} staked {} wei in total (tx {})",
        staked.staked, receipt.transaction_hash
    );
    Ok(())
}

async fn register(args: RegisterArgs) -> Result<(), RelayerError> {
    if let Some(registrar) = args.nitro_registrar {
        return register_nitro(&args, registrar).await;
    }
    let registry = args
        .registry
        .ok_or_else(|| RelayerError::Usage("--registry or --nitro-registrar is required".into()))?;
    let verifier_key = key_from_env("RELAYER_VERIFIER_KEY")?;
    // Any funded account may submit the statement; by default the verifier key pays.
    let submitter = match std::env::var("RELAYER_OPERATOR_KEY") {
        Ok(_) => key_from_env("RELAYER_OPERATOR_KEY")?,
        Err(_) => verifier_key.clone(),
    };
    let provider = provider_for(&args.chain.rpc_url, submitter)?;
    let policy = args.policy.build().map_err(RelayerError::Usage)?;
    let connection =
        AttestedConnection::connect(&args.enclave_url, policy, ConnectOptions::default())
            .await
            .map_err(|error| RelayerError::Enclave(error.to_string()))?;
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| RelayerError::chain("eth_chainId", e))?;
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default();
    let registration = registration_for(connection.enclave(), now_secs, args.validity_secs)?;
    let tx =
        submit_registration(&provider, chain_id, registry, &verifier_key, &registration).await?;
    println!(
        "registered enclave {} (image {}, model {}) until {} (tx {tx})",
        Address::from(registration.enclave),
        alloy::primitives::B256::from(registration.image_id),
        alloy::primitives::B256::from(registration.model_hash),
        registration.expiry
    );
    Ok(())
}
