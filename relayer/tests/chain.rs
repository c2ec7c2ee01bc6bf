//! The relayer against the real contracts on a real anvil chain (deployed by
//! `contracts/script/deploy.sh`), with the real enclave in development mode and the real model:
//!
//! - the example consumer's question is answered by callback through the relayer binary, which is
//!   killed (SIGKILL) mid-way and restarted: the request is fulfilled exactly once, and the stored
//!   answer is what the attested enclave produced;
//! - an operator that misses its deadline is slashed and the requester refunded (and the
//!   relayer leaves another operator's claim alone);
//! - the enclave signs fulfilments only for the operator its parent bound (`relayer
//!   bind-operator`): another staker that claims a request cannot have it sign for itself;
//! - the trustless route: `relayer register --nitro-registrar` has `NitroRegistrar` verify the
//!   enclave's attestation document on-chain and register its key; anyone can submit a fresh
//!   document with a one-second expiry, and the registry refuses to cut the registration short;
//! - a restarted enclave (same address, new key) is bound, registered and answered with by the
//!   running relayer, without a restart or the renewal timer;
//! - fulfilments signed by an unregistered, expired or revoked key, or for another model, chain or
//!   relay, revert on-chain with `EnclaveNotAuthorized`, and the Rust digest of a correct one is
//!   the one the contract accepts.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, TransactionReceipt};
use alloy::signers::SignerSync as _;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent as _;
use attest::connection::{AttestedConnection, ChatRequest, ConnectOptions};
use attestation_verifier::onchain::{ContractDomain, Fulfillment, Registration, image_id};
use relayer::contracts::IEnclaveRegistry::{self, EnclaveStatus};
use relayer::contracts::IInferenceRelay::{self, InferenceRequested, RequestFulfilled, Status};
use relayer::register::submit_registration;
use testkit::chain::{
    Account, EnclaveNotAuthorized, IExampleConsumer, IRegistryOwner, IRequests, ONE_ETHER,
    advance_time, chain_time, key_for, mined,
};
use testkit::{Anvil, ChildGuard, DeploySettings, Deployment, DevEnclave, TempDir};

const FEE_WEI: u128 = ONE_ETHER / 100;
const PARAMS: &str = r#"{"max_tokens":24,"temperature":0}"#;

/// `requester` asks the relay directly (no callback), with a deadline `seconds` from now.
async fn request_inference(
    requester: &Account,
    relay: Address,
    model_hash: B256,
    input: &'static [u8],
    seconds: u64,
) -> B256 {
    let deadline = chain_time(&requester.provider).await + seconds;
    let receipt = mined(
        IRequests::new(relay, requester.provider.clone())
            .requestInference(
                model_hash,
                Bytes::from_static(input),
                Bytes::from(PARAMS.as_bytes().to_vec()),
                Address::ZERO,
                0,
                deadline,
            )
            .value(U256::from(FEE_WEI))
            .send()
            .await,
        "requestInference",
    )
    .await;
    requested_id(&receipt)
}

fn requested_id(receipt: &TransactionReceipt) -> B256 {
    receipt
        .decoded_log::<InferenceRequested>()
        .expect("the transaction emitted InferenceRequested")
        .requestId
}

async fn fulfilments_of(
    provider: &DynProvider,
    relay: Address,
    request_id: B256,
) -> Vec<RequestFulfilled> {
    let filter = Filter::new()
        .address(relay)
        .event_signature(RequestFulfilled::SIGNATURE_HASH)
        .topic1(request_id)
        .from_block(0);
    provider
        .get_logs(&filter)
        .await
        .expect("eth_getLogs")
        .iter()
        .map(|log| {
            log.log_decode::<RequestFulfilled>()
                .expect("RequestFulfilled")
                .inner
                .data
        })
        .collect()
}

/// The relayer binary as a child process; its log lines (stderr) arrive on a channel.
struct RelayerProcess {
    process: ChildGuard,
    lines: mpsc::Receiver<String>,
}

impl RelayerProcess {
    fn spawn(args: &[String], operator: &Account) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_relayer"))
            .args(args)
            .env("RELAYER_OPERATOR_KEY", operator.key_hex())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the relayer binary");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[relayer] {line}");
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            process: ChildGuard(child),
            lines,
        }
    }

    /// Waits until a log line containing each of `needles` has been seen (in any order);
    /// panics after `timeout`. "already fulfilled" does not count as "fulfilled".
    fn wait_for_all(&self, needles: &[&str], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut missing: Vec<&str> = needles.to_vec();
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!("the relayer did not log {missing:?} within {timeout:?}");
            };
            if line.contains("already fulfilled") {
                continue;
            }
            missing.retain(|needle| !line.contains(needle));
        }
    }

    fn kill(mut self) {
        self.process.0.kill().expect("SIGKILL the relayer");
        self.process.0.wait().expect("reap the relayer");
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn run_relayer_binary(args: &[String], envs: &[(&str, String)]) {
    run_relayer_binary_output(args, envs);
}

/// Runs the relayer binary to success and returns its standard output.
fn run_relayer_binary_output(args: &[String], envs: &[(&str, String)]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_relayer"))
        .args(args)
        .envs(envs.iter().map(|(key, value)| (*key, value.as_str())))
        .output()
        .expect("run the relayer binary");
    assert!(
        output.status.success(),
        "relayer {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn policy_args(enclave: &DevEnclave) -> Vec<String> {
    let mut args = vec![
        "--root".to_owned(),
        enclave.root_pem().display().to_string(),
        "--model-sha256".to_owned(),
        testkit::MODEL_SHA256.to_owned(),
    ];
    for index in 0..3 {
        args.push("--pcr".to_owned());
        args.push(format!(
            "{index}={}",
            alloy::hex::encode(enclave.pcr(index))
        ));
    }
    args
}

fn run_args(
    anvil: &Anvil,
    deployment: &Deployment,
    enclave: &DevEnclave,
    state: &Path,
) -> Vec<String> {
    let mut args = strings(&[
        "run",
        "--rpc-url",
        &anvil.rpc_url(),
        "--relay",
        &Address::from(deployment.relay).to_string(),
        "--enclave-url",
        &enclave.url(),
        "--state",
        &state.display().to_string(),
        "--start-block",
        "0",
        "--poll-interval-ms",
        "200",
        "--enclave-parent",
        &enclave.parent_address(),
    ]);
    args.extend(policy_args(enclave));
    args
}

/// `relayer bind-operator` for `operator` on `enclave`'s parent channel.
fn bind_operator_binary(enclave: &DevEnclave, operator: &Account) -> String {
    run_relayer_binary_output(
        &strings(&[
            "bind-operator",
            "--enclave-parent",
            &enclave.parent_address(),
        ]),
        &[("RELAYER_OPERATOR_KEY", operator.key_hex())],
    )
}

/// The greedy answer of the attested enclave to `prompt` over its chat API, for comparison.
async fn greedy_chat_answer(enclave: &DevEnclave, prompt: &str) -> String {
    let mut connection =
        AttestedConnection::connect(&enclave.url(), enclave.policy(), ConnectOptions::default())
            .await
            .expect("attested connection");
    connection
        .chat(&ChatRequest {
            prompt: prompt.to_owned(),
            max_tokens: Some(24),
            temperature: Some(0.0),
            ..ChatRequest::default()
        })
        .await
        .expect("a verified chat answer")
        .answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayer_answers_the_consumer_exactly_once_across_a_kill_and_a_miss_is_slashed() {
    let anvil = Anvil::start();
    let verifier = key_for("chain test verifier");
    let deployment = Deployment::deploy(
        &anvil,
        &DeploySettings {
            verifier_address: Some(verifier.address().to_string()),
            image: None,
            nitro_root_cert: None,
        },
    );
    let enclave = DevEnclave::start(Some(deployment.onchain_relay()));
    let owner = Account::deployer(&anvil);
    let operator = Account::funded(&anvil, "chain test operator").await;
    let lazy_operator = Account::funded(&anvil, "chain test operator that misses").await;
    let requester = Account::funded(&anvil, "chain test requester").await;
    let registry = Address::from(deployment.registry);
    let relay_address = Address::from(deployment.relay);
    let model_hash = B256::from(deployment.model_hash);

    // The owner allows the enclave's image; the verifier key registers the enclave after
    // checking its attestation (`relayer register`), the operator stakes (`relayer stake`).
    mined(
        IRegistryOwner::new(registry, owner.provider.clone())
            .allowImage(
                enclave.pcr(0).into(),
                enclave.pcr(1).into(),
                enclave.pcr(2).into(),
            )
            .send()
            .await,
        "allowImage",
    )
    .await;
    // The operator binds itself on the enclave over its parent channel; the verifier's
    // statement then names it, from the enclave's attestation.
    let bound = bind_operator_binary(&enclave, &operator);
    assert!(bound.contains(&operator.address().to_string()), "{bound}");
    let mut register = strings(&["register", "--rpc-url", &anvil.rpc_url()]);
    register.extend(strings(&[
        "--registry",
        &registry.to_string(),
        "--enclave-url",
        &enclave.url(),
    ]));
    register.extend(policy_args(&enclave));
    run_relayer_binary(
        &register,
        &[
            (
                "RELAYER_VERIFIER_KEY",
                format!("0x{}", alloy::hex::encode(verifier.to_bytes())),
            ),
            ("RELAYER_OPERATOR_KEY", operator.key_hex()),
        ],
    );
    for account in [&operator, &lazy_operator] {
        let stake = strings(&[
            "stake",
            "--rpc-url",
            &anvil.rpc_url(),
            "--relay",
            &relay_address.to_string(),
            "--amount-wei",
            &ONE_ETHER.to_string(),
        ]);
        run_relayer_binary(&stake, &[("RELAYER_OPERATOR_KEY", account.key_hex())]);
    }
    let attested =
        AttestedConnection::connect(&enclave.url(), enclave.policy(), ConnectOptions::default())
            .await
            .expect("attested connection")
            .enclave()
            .signer
            .address;
    let enclave_address = Address::from(attested);
    let status = IEnclaveRegistry::new(registry, owner.provider.clone())
        .enclaveStatus(enclave_address, model_hash)
        .call()
        .await
        .expect("enclaveStatus");
    assert!(
        matches!(status, EnclaveStatus::Authorized),
        "the enclave is registered"
    );

    // The consumer asks; the relayer sees the request and is killed before it can answer.
    let prompt = "Name the largest planet of the solar system.";
    let consumer =
        IExampleConsumer::new(Address::from(deployment.consumer), owner.provider.clone());
    let deadline = chain_time(&owner.provider).await + 3_600;
    let asked = mined(
        consumer
            .ask(
                prompt.to_owned(),
                Bytes::from(PARAMS.as_bytes().to_vec()),
                2_000_000,
                deadline,
            )
            .value(U256::from(FEE_WEI))
            .send()
            .await,
        "ExampleConsumer.ask",
    )
    .await;
    let asked_id = requested_id(&asked);

    let state_dir = TempDir::new("relayer-state");
    let state = state_dir.path().join("state.json");
    let args = run_args(&anvil, &deployment, &enclave, &state);
    let first = RelayerProcess::spawn(&args, &operator);
    first.wait_for_all(&["request seen"], Duration::from_secs(60));
    first.kill();
    let relay = IInferenceRelay::new(relay_address, owner.provider.clone());
    let status = relay
        .getRequest(asked_id)
        .call()
        .await
        .expect("getRequest")
        .status;
    assert!(
        matches!(status, Status::Open | Status::Claimed),
        "killed before fulfilling, the request is still pending"
    );

    // While it is down, another operator claims a new request (and will miss its deadline).
    let missed_id = request_inference(
        &requester,
        relay_address,
        model_hash,
        b"What is two plus two?",
        60,
    )
    .await;
    let lazy_relay = IInferenceRelay::new(relay_address, lazy_operator.provider.clone());
    mined(
        lazy_relay.claim(missed_id).send().await,
        "claim by the lazy operator",
    )
    .await;
    // The harvesting attack: the other staker asks our enclave to sign its claim's answer.
    let mut connection =
        AttestedConnection::connect(&enclave.url(), enclave.policy(), ConnectOptions::default())
            .await
            .expect("attested connection");
    let harvest = serde_json::json!({
        "chain_id": deployment.chain_id,
        "relay": relay_address,
        "request_id": missed_id,
        "operator": lazy_operator.address(),
        "model_hash": model_hash,
        "input": Bytes::from_static(b"What is two plus two?"),
        "params": Bytes::from(PARAMS.as_bytes().to_vec()),
    });
    let refused = connection
        .post_json_verified(
            attestation_verifier::protocol::FULFILLMENTS_PATH,
            harvest.to_string().into_bytes(),
        )
        .await
        .expect_err("the enclave signed for another operator");
    assert!(
        refused.to_string().contains("403") && refused.to_string().contains("operator"),
        "{refused}"
    );

    // Restarted from its state file, the relayer finishes the first request and leaves the
    // other operator's claim alone.
    let second = RelayerProcess::spawn(&args, &operator);
    second.wait_for_all(
        &["fulfilled", "claimed by another operator"],
        Duration::from_secs(180),
    );
    second.kill();
    advance_time(&owner.provider, 120).await;
    mined(
        IRequests::new(relay_address, requester.provider.clone())
            .refund(missed_id)
            .send()
            .await,
        "refund",
    )
    .await;

    // Exactly one fulfilment, by the attested enclave, stored by the consumer as produced.
    let fulfilments = fulfilments_of(&owner.provider, relay_address, asked_id).await;
    assert_eq!(fulfilments.len(), 1, "fulfilled exactly once");
    let fulfilment = &fulfilments[0];
    assert_eq!(fulfilment.enclave, enclave_address);
    assert_eq!(fulfilment.operator, operator.address());
    assert!(fulfilment.callbackSucceeded);
    let stored = consumer.question(asked_id).call().await.expect("question");
    assert!(stored.answered);
    assert_eq!(stored.answer.as_bytes(), fulfilment.output.as_ref());
    assert!(!stored.answer.trim().is_empty());
    assert_eq!(stored.answer, greedy_chat_answer(&enclave, prompt).await);

    // The miss: slashed collateral plus the fee go to the requester; counters per operator.
    let lazy = relay
        .getOperator(lazy_operator.address())
        .call()
        .await
        .expect("getOperator");
    let collateral = deployment.claim_collateral_wei;
    assert_eq!(lazy.staked.to::<u128>(), ONE_ETHER - collateral);
    assert_eq!(lazy.locked.to::<u128>(), 0);
    assert_eq!((lazy.fulfilledCount, lazy.missedCount), (0, 1));
    let diligent = relay
        .getOperator(operator.address())
        .call()
        .await
        .expect("getOperator");
    assert_eq!((diligent.fulfilledCount, diligent.missedCount), (1, 0));
    assert_eq!(diligent.staked.to::<u128>(), ONE_ETHER);
    let refunded = relay
        .credits(requester.address())
        .call()
        .await
        .expect("credits");
    assert_eq!(refunded, U256::from(FEE_WEI + collateral));
    assert_eq!(
        relay
            .credits(operator.address())
            .call()
            .await
            .expect("credits"),
        U256::from(FEE_WEI),
        "the fee went to the operator that fulfilled"
    );
    let missed_status = relay
        .getRequest(missed_id)
        .call()
        .await
        .expect("getRequest")
        .status;
    assert!(matches!(missed_status, Status::Refunded));
}

/// Signs `Fulfillment` for `output` with `key` under `domain`.
fn sign_fulfillment(
    key: &PrivateKeySigner,
    domain: &ContractDomain,
    request_id: B256,
    operator: Address,
    model_hash: B256,
    input: &[u8],
    output: &[u8],
) -> Bytes {
    let digest = Fulfillment::for_exchange(
        request_id.0,
        operator.into_array(),
        model_hash.0,
        input,
        PARAMS.as_bytes(),
        output,
    )
    .digest(domain);
    Bytes::from(
        key.sign_hash_sync(&B256::from(digest))
            .expect("sign")
            .as_bytes()
            .to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fulfilments_not_signed_by_an_authorized_key_for_this_relay_revert() {
    let anvil = Anvil::start();
    let verifier = key_for("revert test verifier");
    let pcrs = [vec![1u8; 48], vec![2u8; 48], vec![3u8; 48]];
    let deployment = Deployment::deploy(
        &anvil,
        &DeploySettings {
            verifier_address: Some(verifier.address().to_string()),
            image: Some(pcrs.clone()),
            nitro_root_cert: None,
        },
    );
    let owner = Account::deployer(&anvil);
    let operator = Account::funded(&anvil, "revert test operator").await;
    let registry = Address::from(deployment.registry);
    let relay_address = Address::from(deployment.relay);
    let model_hash = B256::from(deployment.model_hash);
    let other_model = B256::repeat_byte(0x77);
    let chain_id = deployment.chain_id;
    let domain = ContractDomain::relay(chain_id, deployment.relay);
    let image = image_id(&pcrs[0], &pcrs[1], &pcrs[2]);
    mined(
        IRegistryOwner::new(registry, owner.provider.clone())
            .allowModel(other_model)
            .send()
            .await,
        "allowModel",
    )
    .await;

    // Keys in every registry state. Registration goes through the verifier-key route, with the
    // statement built and signed by the relayer library.
    let key = key_for;
    let (good, unregistered, revoked, expiring, other_model_key) = (
        key("enclave good"),
        key("enclave unregistered"),
        key("enclave revoked"),
        key("enclave expiring"),
        key("enclave for another model"),
    );
    let now = chain_time(&owner.provider).await;
    for (signer, model, validity) in [
        (&good, model_hash, 30 * 86_400),
        (&revoked, model_hash, 30 * 86_400),
        (&expiring, model_hash, 600),
        (&other_model_key, other_model, 30 * 86_400),
    ] {
        let registration = Registration {
            enclave: signer.address().into_array(),
            operator: operator.address().into_array(),
            image_id: image,
            model_hash: model.0,
            expiry: now + validity,
            attested_at_ms: now * 1_000,
        };
        submit_registration(
            &owner.provider,
            chain_id,
            registry,
            &verifier,
            &registration,
        )
        .await
        .expect("registration");
    }
    mined(
        IRegistryOwner::new(registry, owner.provider.clone())
            .revoke(revoked.address())
            .send()
            .await,
        "revoke",
    )
    .await;
    let relay = IInferenceRelay::new(relay_address, operator.provider.clone());
    mined(
        relay.stake().value(U256::from(ONE_ETHER)).send().await,
        "stake",
    )
    .await;
    // Past the expiring key's expiry, well before the requests' deadline.
    advance_time(&owner.provider, 1_200).await;

    let input = b"What is the capital of France?";
    let output = b"The capital of France is Paris.";
    let request_id = request_inference(&operator, relay_address, model_hash, input, 3_600).await;
    mined(relay.claim(request_id).send().await, "claim").await;

    let us = operator.address();
    let other_chain = ContractDomain::relay(chain_id + 1, deployment.relay);
    let other_relay = ContractDomain::relay(chain_id, [0x42; 20]);
    let cases: [(&str, Bytes, Address, u8); 6] = [
        (
            "unregistered key",
            sign_fulfillment(
                &unregistered,
                &domain,
                request_id,
                us,
                model_hash,
                input,
                output,
            ),
            unregistered.address(),
            EnclaveStatus::Unknown as u8,
        ),
        (
            "revoked key",
            sign_fulfillment(&revoked, &domain, request_id, us, model_hash, input, output),
            revoked.address(),
            EnclaveStatus::Revoked as u8,
        ),
        (
            "expired key",
            sign_fulfillment(
                &expiring, &domain, request_id, us, model_hash, input, output,
            ),
            expiring.address(),
            EnclaveStatus::Expired as u8,
        ),
        (
            "key registered for another model",
            sign_fulfillment(
                &other_model_key,
                &domain,
                request_id,
                us,
                model_hash,
                input,
                output,
            ),
            other_model_key.address(),
            EnclaveStatus::ModelMismatch as u8,
        ),
        (
            "signed for another chain",
            sign_fulfillment(
                &good,
                &other_chain,
                request_id,
                us,
                model_hash,
                input,
                output,
            ),
            Address::ZERO,
            EnclaveStatus::Unknown as u8,
        ),
        (
            "signed for another relay",
            sign_fulfillment(
                &good,
                &other_relay,
                request_id,
                us,
                model_hash,
                input,
                output,
            ),
            Address::ZERO,
            EnclaveStatus::Unknown as u8,
        ),
    ];
    let mut cases = cases.to_vec();
    cases.push((
        "signed for another operator",
        sign_fulfillment(
            &good,
            &domain,
            request_id,
            Address::repeat_byte(0x55),
            model_hash,
            input,
            output,
        ),
        Address::ZERO,
        EnclaveStatus::Unknown as u8,
    ));
    cases.push((
        "signed over another model",
        sign_fulfillment(&good, &domain, request_id, us, other_model, input, output),
        Address::ZERO,
        EnclaveStatus::Unknown as u8,
    ));
    for (case, signature, signer, expected_status) in cases {
        let Err(error) = relay
            .fulfill(request_id, Bytes::from_static(output), signature)
            .call()
            .await
        else {
            panic!("{case}: the fulfilment was accepted");
        };
        let decoded = error
            .as_decoded_error::<EnclaveNotAuthorized>()
            .unwrap_or_else(|| panic!("{case}: reverted with something else: {error}"));
        assert_eq!(decoded.status, expected_status, "{case}");
        assert_eq!(decoded.modelHash, model_hash, "{case}");
        if signer != Address::ZERO {
            assert_eq!(decoded.enclave, signer, "{case}");
        } else {
            // The recovered address is unrelated to the good key: the digest differs.
            assert_ne!(decoded.enclave, good.address(), "{case}");
        }
    }

    // The correct statement, signed by the good key, is accepted once; a second time reverts.
    let signature = sign_fulfillment(&good, &domain, request_id, us, model_hash, input, output);
    let fulfilled = mined(
        relay
            .fulfill(request_id, Bytes::from_static(output), signature.clone())
            .send()
            .await,
        "fulfill",
    )
    .await;
    let event = fulfilled
        .decoded_log::<RequestFulfilled>()
        .expect("RequestFulfilled");
    assert_eq!(event.enclave, good.address());
    assert!(
        relay
            .fulfill(request_id, Bytes::from_static(output), signature)
            .call()
            .await
            .is_err(),
        "a second fulfilment reverts"
    );
}

/// The trustless route: `relayer register --nitro-registrar` submits the enclave's attestation
/// document to `NitroRegistrar` (trusting the enclave's development root, an explicit opt-in at
/// deployment), which verifies it on-chain and registers the key. The intermediate is cached by
/// the first registration; a renewal with a newer document reuses it. A griefer with a fresh
/// document of the same enclave cannot cut the registration short. Then the enclave restarts
/// (same addresses, new key) under a running relayer, which binds, registers and answers with
/// the new key by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nitro_registrar_verifies_the_document_on_chain_and_registers_the_enclave() {
    let anvil = Anvil::start();
    let pki = TempDir::new("nitro-route-pki");
    let enclave = DevEnclave::start_with_pki(None, Some(pki.path()));
    let image = [enclave.pcr(0), enclave.pcr(1), enclave.pcr(2)];
    let deployment = Deployment::deploy(
        &anvil,
        &DeploySettings {
            verifier_address: None,
            image: Some(image.clone()),
            nitro_root_cert: Some(enclave.root_pem()),
        },
    );
    let operator = Account::funded(&anvil, "nitro route operator").await;
    let registrar = Address::from(deployment.nitro_registrar);
    let registry = IEnclaveRegistry::new(
        Address::from(deployment.registry),
        operator.provider.clone(),
    );
    let nitro = relayer::contracts::INitroRegistrar::new(registrar, operator.provider.clone());
    assert!(
        !nitro.isAwsRoot().call().await.unwrap(),
        "a development root is not the AWS root"
    );

    let mut register = strings(&["register", "--rpc-url", &anvil.rpc_url()]);
    register.extend(strings(&[
        "--nitro-registrar",
        &registrar.to_string(),
        "--enclave-url",
        &enclave.url(),
    ]));
    register.extend(policy_args(&enclave));
    // Before the operator is bound, the registration is refused off-chain (and would revert
    // on-chain with OperatorNotBound).
    let unbound = Command::new(env!("CARGO_BIN_EXE_relayer"))
        .args(&register)
        .env("RELAYER_OPERATOR_KEY", operator.key_hex())
        .output()
        .expect("run the relayer binary");
    assert!(!unbound.status.success());
    assert!(
        String::from_utf8_lossy(&unbound.stderr).contains("binds no operator"),
        "{}",
        String::from_utf8_lossy(&unbound.stderr)
    );
    bind_operator_binary(&enclave, &operator);
    let first =
        run_relayer_binary_output(&register, &[("RELAYER_OPERATOR_KEY", operator.key_hex())]);
    assert_eq!(
        first.matches("cached an intermediate certificate").count(),
        1,
        "{first}"
    );
    eprintln!("first registration (cold):\n{first}");

    let attested =
        AttestedConnection::connect(&enclave.url(), enclave.policy(), ConnectOptions::default())
            .await
            .expect("attested connection")
            .enclave()
            .signer
            .address;
    let status = registry
        .enclaveStatus(Address::from(attested), deployment.model_hash.into())
        .call()
        .await
        .unwrap();
    assert!(matches!(status, EnclaveStatus::Authorized));
    let record_before = registry
        .enclaves(Address::from(attested))
        .call()
        .await
        .expect("enclaves()");
    assert_eq!(
        record_before.operator,
        operator.address(),
        "bound to its operator"
    );

    // A renewal: a newer document; the cached intermediate is reused.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second =
        run_relayer_binary_output(&register, &[("RELAYER_OPERATOR_KEY", operator.key_hex())]);
    assert!(!second.contains("cached an intermediate"), "{second}");
    eprintln!("renewal (warm):\n{second}");
    let record_after = registry
        .enclaves(Address::from(attested))
        .call()
        .await
        .expect("enclaves()");
    assert!(
        record_after.attestedAtMs > record_before.attestedAtMs,
        "attestedAtMs must grow on renewal"
    );

    // The griefing attack: anyone can get a fresh document of the enclave (every attested
    // connection does) and submit it with an expiry one second away. The renewal is newer, so
    // only the rule that a renewal never shortens a registration stops it.
    let griefer = Account::funded(&anvil, "nitro route griefer").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh =
        AttestedConnection::connect(&enclave.url(), enclave.policy(), ConnectOptions::default())
            .await
            .expect("attested connection")
            .document()
            .to_vec();
    let fresh_hints = relayer::register::nitro_hint_calldata(&fresh).unwrap();
    let griefed = relayer::contracts::INitroRegistrar::new(registrar, griefer.provider.clone())
        .register(
            fresh.into(),
            fresh_hints,
            chain_time(&griefer.provider).await + 1,
        )
        .call()
        .await
        .expect_err("a renewal cut the registration to one second");
    let shortened = griefed
        .as_decoded_error::<ExpiryShortened>()
        .unwrap_or_else(|| panic!("reverted with something else: {griefed}"));
    assert_eq!(shortened.registeredExpiry, record_after.expiry);
    assert_eq!(
        registry
            .enclaves(Address::from(attested))
            .call()
            .await
            .expect("enclaves()")
            .expiry,
        record_after.expiry,
        "the registration is untouched"
    );

    // For docs/benchmarks.md: what verification alone costs (the rest of `register` is policy
    // and the registry's record).
    let boot = enclave.server().boot_document();
    let boot_hints = relayer::register::nitro_hint_calldata(&boot).unwrap();
    let verify_gas = nitro
        .verifyAttestation(boot.clone().into(), boot_hints.clone())
        .estimate_gas()
        .await
        .unwrap();
    eprintln!("verifyAttestation of the boot document (intermediate cached): {verify_gas} gas");

    // A document whose signature was tampered with is refused on-chain.
    let mut document = boot;
    let last = document.len() - 1;
    document[last] ^= 1;
    let reverted = nitro
        .register(
            document.into(),
            boot_hints,
            chain_time(&operator.provider).await + 3600,
        )
        .call()
        .await;
    assert!(reverted.is_err(), "a tampered document registered");

    // The restart: a relayer runs with the Nitro route; the enclave is killed and a new one
    // (new key, same root, same addresses) takes its place. The relayer binds its operator on
    // it, registers the new key and fulfils the next request with it.
    let relay_address = Address::from(deployment.relay);
    mined(
        IInferenceRelay::new(relay_address, operator.provider.clone())
            .stake()
            .value(U256::from(ONE_ETHER))
            .send()
            .await,
        "stake",
    )
    .await;
    let state_dir = TempDir::new("relayer-restart-state");
    let mut args = run_args(
        &anvil,
        &deployment,
        &enclave,
        &state_dir.path().join("state.json"),
    );
    args.extend(strings(&["--nitro-registrar", &registrar.to_string()]));
    let relayer = RelayerProcess::spawn(&args, &operator);
    relayer.wait_for_all(&["relayer started"], Duration::from_secs(60));
    let (listen, parent) = (enclave.socket_addr(), enclave.parent_socket_addr());
    drop(enclave);
    let restarted = DevEnclave::start_on(
        Some(deployment.onchain_relay()),
        Some(pki.path()),
        listen,
        parent,
    );
    let new_key = Address::from(restarted.server().enclave_address());
    assert_ne!(
        new_key,
        Address::from(attested),
        "a restart makes a new key"
    );
    let requester = Account::funded(&anvil, "nitro route requester").await;
    let request_id = request_inference(
        &requester,
        relay_address,
        B256::from(deployment.model_hash),
        b"Name a primary colour.",
        3_600,
    )
    .await;
    relayer.wait_for_all(
        &[
            "registered the enclave's key through NitroRegistrar",
            "fulfilled",
        ],
        Duration::from_secs(240),
    );
    relayer.kill();
    let fulfilments = fulfilments_of(&operator.provider, relay_address, request_id).await;
    assert_eq!(fulfilments.len(), 1, "fulfilled exactly once");
    assert_eq!(fulfilments[0].enclave, new_key, "answered by the new key");
    assert_eq!(fulfilments[0].operator, operator.address());
    let record = registry.enclaves(new_key).call().await.expect("enclaves()");
    assert_eq!(record.operator, operator.address());
}

alloy::sol! {
    /// The registry's refusal of a renewal that would end a registration sooner.
    error ExpiryShortened(address enclave, uint64 expiry, uint64 registeredExpiry);
}
