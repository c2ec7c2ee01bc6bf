//! `relayer`: the untrusted chain relayer (see the library documentation).
//!
//! ```text
//! relayer run      --rpc-url URL --relay ADDR --enclave-url https://HOST:PORT [policy] --state FILE
//!                  [--enclave-parent vsock:CID:PORT] [--registry ADDR | --nitro-registrar ADDR]
//! relayer bind-operator --enclave-parent vsock:CID:PORT
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
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use attest::connection::{AttestedConnection, ConnectOptions};
use attest::policy::PolicyArgs;
use clap::{Args, Parser, Subcommand};
use host_proxy::BackendAddress;
use relayer::RelayerError;
use relayer::contracts::IEnclaveRegistry::{self, EnclaveStatus};
use relayer::contracts::IInferenceRelay;
use relayer::contracts::mined;
use relayer::enclave::EnclaveAnswers;
use relayer::parent::bind_operator;
use relayer::register::{registration_for, submit_nitro_registration, submit_registration};
use relayer::relay::AnswerSource as _;
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
    /// Bind the operator (RELAYER_OPERATOR_KEY's address) on a freshly booted enclave, over
    /// its parent channel: the enclave then attests it and signs fulfilments for it alone.
    BindOperator(BindArgs),
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
    /// The enclave's parent channel (`vsock:<cid>:<port>`, `tcp:<addr:port>` in development):
    /// the operator is bound there at start and on every enclave restart.
    #[arg(long, env = "RELAYER_ENCLAVE_PARENT")]
    enclave_parent: Option<BackendAddress>,
    /// Re-register a restarted enclave's new key through this NitroRegistrar (the operator
    /// key pays), instead of waiting for attested-register.timer.
    #[arg(long, env = "RELAYER_NITRO_REGISTRAR", conflicts_with = "registry")]
    nitro_registrar: Option<Address>,
    /// Re-register a restarted enclave's new key in this EnclaveRegistry with
    /// RELAYER_VERIFIER_KEY (only where that key may live).
    #[arg(long, env = "RELAYER_REGISTRY")]
    registry: Option<Address>,
    /// How long such a registration lasts, in seconds.
    #[arg(long, default_value_t = 172_800)]
    validity_secs: u64,
}

#[derive(Debug, Args)]
struct BindArgs {
    /// The enclave's parent channel (`vsock:<cid>:<port>`, `tcp:<addr:port>` in development).
    #[arg(long, env = "RELAYER_ENCLAVE_PARENT")]
    enclave_parent: BackendAddress,
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
    let now_secs = unix_now();
    let expiry = now_secs.saturating_add(args.validity_secs);
    if connection.enclave().binding.operator().is_none() {
        return Err(RelayerError::Usage(
            "the enclave's attestation binds no operator yet: bind it first (relayer bind-operator)"
                .to_owned(),
        ));
    }
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
            Command::BindOperator(args) => bind(args).await,
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

/// Whether `variable` holds a key: set and not empty (the shipped `relayer.env` leaves the key
/// a machine does not hold empty, `RELAYER_VERIFIER_KEY=`).
fn key_is_set(variable: &str) -> bool {
    std::env::var(variable).is_ok_and(|key| !key.trim().is_empty())
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

async fn bind(args: BindArgs) -> Result<(), RelayerError> {
    let operator = key_from_env("RELAYER_OPERATOR_KEY")?.address();
    bind_operator(args.enclave_parent, operator).await?;
    println!(
        "the enclave at {} serves operator {operator}",
        args.enclave_parent
    );
    Ok(())
}

async fn run(args: RunArgs) -> Result<(), RelayerError> {
    let signer = key_from_env("RELAYER_OPERATOR_KEY")?;
    let operator = signer.address();
    // Where a restarted enclave's key gets registered from here, if anywhere.
    let route = match (args.nitro_registrar, args.registry) {
        (Some(registrar), _) => Some(Route::Nitro(registrar)),
        (None, Some(registry)) if key_is_set("RELAYER_VERIFIER_KEY") => Some(Route::Verifier(
            registry,
            key_from_env("RELAYER_VERIFIER_KEY")?,
        )),
        _ => None,
    };
    let provider = provider_for(&args.chain.rpc_url, signer)?;
    let policy = args.policy.build().map_err(RelayerError::Usage)?;
    let answers = attach(&args, &policy, operator).await?;
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
    let mut relayer = Relayer::new(
        provider.clone(),
        operator,
        args.relay,
        answers,
        state,
        settings,
    )
    .await?;
    if let Some(route) = &route {
        // An enclave that booted before this relayer started (with a key nobody registered yet)
        // is registered now, not at the next renewal.
        let status = IEnclaveRegistry::new(relayer.registry(), provider.clone())
            .enclaveStatus(
                relayer.answers().enclave_address(),
                relayer.answers().model_hash(),
            )
            .call()
            .await
            .map_err(|e| RelayerError::chain("EnclaveRegistry.enclaveStatus", e))?;
        if !matches!(status, EnclaveStatus::Authorized) {
            register_enclave(&args, route, &provider, relayer.answers()).await?;
        }
    }
    let shutdown = async {
        let signal = stop_signal().await;
        tracing::info!(signal, "stopping (the state file is up to date)");
    };
    tokio::pin!(shutdown);
    loop {
        match relayer.run(&mut shutdown).await {
            Err(RelayerError::EnclaveKeyChanged { attested, .. }) => {
                // A restarted enclave: bind our operator on it, register its new key when
                // this relayer has a route, and go on answering with it.
                tracing::warn!(enclave = %attested, "the enclave restarted with a new key");
                let answers = attach(&args, &policy, operator).await?;
                if let Some(route) = &route {
                    register_enclave(&args, route, &provider, &answers).await?;
                } else {
                    tracing::warn!(enclave = %answers.enclave_address(), "no registration route (--nitro-registrar, or --registry with RELAYER_VERIFIER_KEY): requests wait until the new key is registered");
                }
                relayer.replace_answers(answers);
            }
            other => return other,
        }
    }
}

/// How `relayer run` registers a restarted enclave's key.
enum Route {
    /// Through NitroRegistrar, paid by the operator key.
    Nitro(Address),
    /// In the registry, with the verifier key's statement.
    Verifier(Address, PrivateKeySigner),
}

/// Binds our operator over the parent channel (when one is given), then attests the enclave
/// and checks that it serves us.
async fn attach(
    args: &RunArgs,
    policy: &attest::ClientPolicy,
    operator: Address,
) -> Result<EnclaveAnswers, RelayerError> {
    if let Some(parent) = args.enclave_parent {
        bind_operator(parent, operator).await?;
    }
    EnclaveAnswers::connect(
        &args.enclave_url,
        policy.clone(),
        ConnectOptions::default(),
        operator,
    )
    .await
}

/// Registers the enclave `answers` attested (the one that answers: behind a proxy with several
/// enclaves another connection could reach another one) through `route`.
async fn register_enclave<P: Provider + Clone>(
    args: &RunArgs,
    route: &Route,
    provider: &P,
    answers: &EnclaveAnswers,
) -> Result<(), RelayerError> {
    let now_secs = unix_now();
    match route {
        Route::Nitro(registrar) => {
            let expiry = now_secs.saturating_add(args.validity_secs);
            let registration =
                submit_nitro_registration(provider, *registrar, answers.document(), expiry).await?;
            tracing::info!(enclave = %registration.enclave, tx = %registration.tx, gas = registration.gas_used, expiry, "registered the enclave's key through NitroRegistrar");
        }
        Route::Verifier(registry, verifier_key) => {
            let chain_id = provider
                .get_chain_id()
                .await
                .map_err(|e| RelayerError::chain("eth_chainId", e))?;
            let registration = registration_for(answers.trusted(), now_secs, args.validity_secs)?;
            let tx =
                submit_registration(provider, chain_id, *registry, verifier_key, &registration)
                    .await?;
            tracing::info!(enclave = %Address::from(registration.enclave), %tx, expiry = registration.expiry, "registered the enclave's key with the verifier key");
        }
    }
    Ok(())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
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
    let receipt = mined(
        relay.stake().value(args.amount_wei).send().await,
        "stake",
        B256::ZERO,
    )
    .await?;
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
    let submitter = if key_is_set("RELAYER_OPERATOR_KEY") {
        key_from_env("RELAYER_OPERATOR_KEY")?
    } else {
        verifier_key.clone()
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
    let now_secs = unix_now();
    let registration = registration_for(connection.enclave(), now_secs, args.validity_secs)?;
    let tx =
        submit_registration(&provider, chain_id, registry, &verifier_key, &registration).await?;
    println!(
        "registered enclave {} (image {}, model {}) until {} (tx {tx})",
        Address::from(registration.enclave),
        B256::from(registration.image_id),
        B256::from(registration.model_hash),
        registration.expiry
    );
    Ok(())
}
