//! The whole stack on one machine, as `make demo` runs it: a real anvil chain with the contracts
//! deployed, two enclaves (development attester, real model) sharing one development root behind
//! host-proxy, the relayer, and the client.
//!
//! 1. An attested chat through the proxy, verified by the client; its evidence bundle is saved
//!    and re-verified offline.
//! 2. The example consumer asks on-chain; the relayer, connected to an enclave through the same
//!    proxy, has it answer and sign, claims and fulfils; the consumer stores the answer signed
//!    by one of the two registered enclaves.
//!
//! Everything is torn down on drop (anvil is killed, temporary directories removed).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, Bytes, U256};
use attest::connection::{AttestedConnection, ChatRequest, ConnectOptions};
use attest::{ClientPolicy, EvidenceBundle};
use host_proxy::config::DurationSetting;
use host_proxy::{BackendAddress, BoundProxy, ConfigLayer};
use relayer::contracts::IInferenceRelay::{self, RequestFulfilled};
use relayer::enclave::EnclaveAnswers;
use relayer::register::{registration_for, submit_registration};
use relayer::relay::{Outcome, Relayer, RelayerSettings};
use relayer::state::RelayerState;
use testkit::chain::{
    Account, IExampleConsumer, IRegistryOwner, ONE_ETHER, chain_time, key_for, mined,
};
use testkit::{Anvil, DeploySettings, Deployment, DevEnclave, TempDir};

const QUESTION: &str = "What does a digital signature prove?";
const PARAMS: &str = r#"{"max_tokens":32,"temperature":0}"#;

fn options() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(60),
        answer_timeout: Duration::from_secs(180),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_is_answered_and_verified_off_chain_and_on_chain_through_the_proxy() {
    // The chain and the contracts; the owner trusts one attestation-verifier key.
    let anvil = Anvil::start();
    let verifier = key_for("stack test verifier");
    let deployment = Deployment::deploy(
        &anvil,
        &DeploySettings {
            verifier_address: Some(verifier.address().to_string()),
            image: None,
            nitro_root_cert: None,
        },
    );

    // Two enclaves with one development root, behind the proxy.
    let pki = TempDir::new("stack-pki");
    let enclaves = [
        DevEnclave::start_with_pki(Some(deployment.onchain_relay()), Some(pki.path())),
        DevEnclave::start_with_pki(Some(deployment.onchain_relay()), Some(pki.path())),
    ];
    assert_eq!(enclaves[0].root_pem(), enclaves[1].root_pem());
    let policy: ClientPolicy = enclaves[0].policy();
    let proxy_config = ConfigLayer {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        backends: enclaves
            .iter()
            .map(|enclave| BackendAddress::Tcp(enclave.socket_addr()))
            .collect(),
        health_interval: Some(DurationSetting(Duration::from_millis(500))),
        ..ConfigLayer::default()
    }
    .resolve()
    .expect("proxy configuration");
    let proxy = BoundProxy::bind(proxy_config).await.expect("proxy binds");
    let proxy_url = format!("https://{}", proxy.listen_address());
    let (stop_proxy, proxy_stopped) = tokio::sync::oneshot::channel::<()>();
    let proxy_task = tokio::spawn(proxy.run(async {
        let _ = proxy_stopped.await;
    }));

    // 1. An attested chat through the proxy; the evidence re-verifies offline.
    let mut connection = AttestedConnection::connect(&proxy_url, policy.clone(), options())
        .await
        .expect("an attested connection through the proxy");
    let answer = connection
        .chat(&ChatRequest {
            prompt: QUESTION.to_owned(),
            max_tokens: Some(32),
            ..ChatRequest::default()
        })
        .await
        .expect("a verified answer");
    assert!(!answer.answer.trim().is_empty());
    let evidence_dir = TempDir::new("stack-evidence");
    let evidence_file = evidence_dir.path().join("evidence.json");
    answer.evidence.save(&evidence_file).expect("save evidence");
    let offline = EvidenceBundle::load(&evidence_file)
        .expect("load evidence")
        .verify(&policy)
        .expect("the saved evidence verifies offline");
    assert_eq!(offline.answer, answer.answer);
    assert_eq!(
        offline.enclave.signer.address,
        connection.enclave().signer.address
    );
    drop(connection);

    // 2. On-chain. The owner allows the image; the verifier key registers both enclaves after
    // verifying their attestation; the operator stakes.
    let owner = Account::deployer(&anvil);
    let operator = Account::funded(&anvil, "stack test operator").await;
    let registry = Address::from(deployment.registry);
    let relay_address = Address::from(deployment.relay);
    mined(
        IRegistryOwner::new(registry, owner.provider.clone())
            .allowImage(
                enclaves[0].pcr(0).into(),
                enclaves[0].pcr(1).into(),
                enclaves[0].pcr(2).into(),
            )
            .send()
            .await,
        "allowImage",
    )
    .await;
    let mut registered = BTreeSet::new();
    for enclave in &enclaves {
        // The operator's relayer binds itself on each enclave over its parent channel.
        enclave.bind_operator(operator.address().into_array());
        let connection = AttestedConnection::connect(&enclave.url(), policy.clone(), options())
            .await
            .expect("attested connection to an enclave");
        let now = chain_time(&owner.provider).await;
        let registration =
            registration_for(connection.enclave(), now, 86_400).expect("registration");
        submit_registration(
            &owner.provider,
            deployment.chain_id,
            registry,
            &verifier,
            &registration,
        )
        .await
        .expect("register the enclave");
        registered.insert(Address::from(registration.enclave));
    }
    assert_eq!(registered.len(), 2, "two enclaves, two keys");
    mined(
        IInferenceRelay::new(relay_address, operator.provider.clone())
            .stake()
            .value(U256::from(ONE_ETHER))
            .send()
            .await,
        "stake",
    )
    .await;

    // The consumer asks; the relayer (through the proxy) answers.
    let consumer =
        IExampleConsumer::new(Address::from(deployment.consumer), owner.provider.clone());
    let deadline = chain_time(&owner.provider).await + 3_600;
    let asked = mined(
        consumer
            .ask(
                QUESTION.to_owned(),
                Bytes::from(PARAMS.as_bytes().to_vec()),
                2_000_000,
                deadline,
            )
            .value(U256::from(ONE_ETHER / 100))
            .send()
            .await,
        "ExampleConsumer.ask",
    )
    .await;
    let request_id = asked
        .decoded_log::<IInferenceRelay::InferenceRequested>()
        .expect("InferenceRequested")
        .requestId;

    let answers =
        EnclaveAnswers::connect(&proxy_url, policy.clone(), options(), operator.address())
            .await
            .expect("the relayer's attested connection");
    let state_dir = TempDir::new("stack-relayer");
    let state = RelayerState::open(
        &state_dir.path().join("state.json"),
        deployment.chain_id,
        relay_address,
        0,
    )
    .expect("relayer state");
    let mut relayer = Relayer::new(
        operator.provider.clone(),
        operator.address(),
        relay_address,
        answers,
        state,
        RelayerSettings::default(),
    )
    .await
    .expect("relayer");
    let until = Instant::now() + Duration::from_secs(300);
    let outcome = loop {
        let finished = relayer.poll_once().await.expect("relayer poll");
        if let Some((_, outcome)) = finished.into_iter().find(|(id, _)| *id == request_id) {
            break outcome;
        }
        assert!(
            Instant::now() < until,
            "the request was not fulfilled in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let Outcome::Fulfilled { tx, gas_used } = outcome else {
        panic!("expected a fulfilment, got {outcome:?}");
    };
    assert!(gas_used > 0);

    let receipt = alloy::providers::Provider::get_transaction_receipt(&owner.provider, tx)
        .await
        .expect("receipt")
        .expect("the fulfil transaction is mined");
    let fulfilled = receipt
        .decoded_log::<RequestFulfilled>()
        .expect("RequestFulfilled");
    assert_eq!(fulfilled.requestId, request_id);
    assert!(
        registered.contains(&fulfilled.enclave),
        "signed by a registered enclave"
    );
    assert!(fulfilled.callbackSucceeded);
    let stored = consumer
        .question(request_id)
        .call()
        .await
        .expect("question");
    assert!(stored.answered);
    assert_eq!(stored.answer.as_bytes(), fulfilled.output.as_ref());
    assert_eq!(
        B256::from(alloy::primitives::keccak256(stored.answer.as_bytes())),
        fulfilled.outputHash
    );

    let _ = stop_proxy.send(());
    proxy_task
        .await
        .expect("the proxy task ends")
        .expect("the proxy stops cleanly");
}
