//! `POST /v1/onchain/fulfillments` on the real model over real TLS: the enclave answers and
//! signs the relay's EIP-712 `Fulfillment` for exactly the request's bytes and its answer, with
//! the attested key, only for the relay it was started with; the HTTP answer carries a receipt.

mod common;

use attestation_verifier::Policy;
use attestation_verifier::binding::UserDataBinding;
use attestation_verifier::onchain::Fulfillment;
use attestation_verifier::receipt::{
    Receipt, ReceiptClaims, ethereum_address, recover_signer, verify_receipt,
};
use common::SMOLLM2_SHA256;
use common::https::{Reply, TestServer, base64_decode, hex, hex_decode};
use enclave::config::Limits;
use enclave::server::onchain::OnchainRelay;
use hyper::StatusCode;

const RELAY: &str = "31337:0xc2be970268c5f0924b50ecb8842b4b8ffd4e57a8";
const INPUT: &str = "What is the capital of France?";
const PARAMS: &str = r#"{"max_tokens":12,"temperature":0}"#;
/// The operator the tests' parent binds.
const OPERATOR: [u8; 20] = [0x0e; 20];

fn request_body(chain_id: u64, relay: &str, model_hash: &[u8; 32], params: &str) -> String {
    request_body_for(chain_id, relay, &OPERATOR, model_hash, params)
}

fn request_body_for(
    chain_id: u64,
    relay: &str,
    operator: &[u8; 20],
    model_hash: &[u8; 32],
    params: &str,
) -> String {
    let mut request_id = [0u8; 32];
    request_id[31] = 7;
    serde_json::json!({
        "chain_id": chain_id,
        "relay": relay,
        "request_id": format!("0x{}", hex(&request_id)),
        "operator": format!("0x{}", hex(operator)),
        "model_hash": format!("0x{}", hex(model_hash)),
        "input": format!("0x{}", hex(INPUT.as_bytes())),
        "params": format!("0x{}", hex(params.as_bytes())),
    })
    .to_string()
}

fn error_code(reply: &Reply) -> String {
    reply.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_the_fulfilment_for_its_relay_only() {
    let relay: OnchainRelay = RELAY.parse().expect("relay");
    let server = TestServer::start_with(Limits::default(), Some(relay));
    let relay_hex = "0xc2be970268c5f0924b50ecb8842b4b8ffd4e57a8";

    let body = request_body(31337, relay_hex, &SMOLLM2_SHA256, PARAMS);
    // Until its parent binds an operator, the enclave signs for nobody.
    let reply = server.post("/v1/onchain/fulfillments", &body).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&reply), "operator_not_bound");
    let (status, state) = server.parent("GET", "/v1/operator", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&state).expect("JSON")["operator"],
        serde_json::Value::Null
    );
    server.bind_operator(OPERATOR).await;
    // Once per boot: another operator is refused, the same one again changes nothing.
    let (status, refused) = server
        .parent(
            "PUT",
            "/v1/operator",
            &format!(r#"{{"operator":"0x{}"}}"#, "ba".repeat(20)),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused.contains("operator_already_bound"), "{refused}");
    server.bind_operator(OPERATOR).await;
    // The harvesting attack: a staker that is not the operator asks for a signature.
    let harvest = request_body_for(31337, relay_hex, &[0xba; 20], &SMOLLM2_SHA256, PARAMS);
    let reply = server.post("/v1/onchain/fulfillments", &harvest).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&reply), "operator_not_served");

    let reply = server.post("/v1/onchain/fulfillments", &body).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let answer = reply.json();
    let output = hex_decode(answer["output"].as_str().expect("output"));
    assert_eq!(
        String::from_utf8(output.clone()).expect("UTF-8"),
        answer["output_text"].as_str().expect("text")
    );
    assert!(output.len() > 3, "a real answer: {output:?}");
    assert!(
        answer["usage"]["completion_tokens"]
            .as_u64()
            .expect("usage")
            <= 12
    );

    // The signature recovers, through our own digest of the request's bytes, to the key the
    // boot document attests.
    let document = base64_decode(reply.header("x-attested-document").expect("document"));
    let attested = server.verify(&document, &Policy::new());
    // The document sent with the answer names the operator (user_data, docs/protocol.md §2).
    let binding = match UserDataBinding::parse(attested.user_data().expect("user_data")) {
        Ok(UserDataBinding::Boot(binding)) => binding,
        other => panic!("not a boot binding: {other:?}"),
    };
    assert_eq!(binding.operator(), Some(OPERATOR));
    let enclave = ethereum_address(attested.public_key().expect("public key")).expect("address");
    let mut request_id = [0u8; 32];
    request_id[31] = 7;
    let statement = Fulfillment::for_exchange(
        request_id,
        OPERATOR,
        SMOLLM2_SHA256,
        INPUT.as_bytes(),
        PARAMS.as_bytes(),
        &output,
    );
    let digest = statement.digest(&relay.domain());
    assert_eq!(
        hex_decode(answer["digest"].as_str().expect("digest")),
        digest
    );
    let signature = hex_decode(answer["signature"].as_str().expect("signature"));
    assert_eq!(
        recover_signer(&digest, &signature).expect("recovers"),
        enclave
    );
    assert_eq!(
        answer["enclave"].as_str().expect("enclave"),
        format!("0x{}", hex(&enclave))
    );
    // Another output under the same signature names someone else.
    let forged = Fulfillment::for_exchange(
        request_id,
        OPERATOR,
        SMOLLM2_SHA256,
        INPUT.as_bytes(),
        PARAMS.as_bytes(),
        b"Lyon.",
    );
    assert_ne!(
        recover_signer(&forged.digest(&relay.domain()), &signature).ok(),
        Some(enclave)
    );

    // The HTTP answer has its off-chain receipt, like every answer.
    let hash = |name: &str| -> [u8; 32] {
        hex_decode(reply.header(name).expect("hash header"))
            .try_into()
            .expect("32 bytes")
    };
    let receipt = Receipt {
        claims: ReceiptClaims {
            model_hash: hash("x-attested-model-sha256"),
            request_hash: hash("x-attested-request-sha256"),
            response_hash: hash("x-attested-response-sha256"),
            timestamp_ms: reply
                .header("x-attested-timestamp-ms")
                .expect("timestamp")
                .parse()
                .expect("number"),
        },
        signature: hex_decode(reply.header("x-attested-signature").expect("signature")),
    };
    verify_receipt(&receipt, &attested, body.as_bytes(), &reply.body).expect("receipt verifies");

    // Never for another chain or relay, never for another model, never with bad params.
    let other_chain = request_body(1, relay_hex, &SMOLLM2_SHA256, PARAMS);
    let other_relay = request_body(
        31337,
        &format!("0x{}", "11".repeat(20)),
        &SMOLLM2_SHA256,
        PARAMS,
    );
    for body in [other_chain, other_relay] {
        let reply = server.post("/v1/onchain/fulfillments", &body).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(error_code(&reply), "relay_not_allowed");
    }
    let other_model = request_body(31337, relay_hex, &[0x22; 32], PARAMS);
    let reply = server.post("/v1/onchain/fulfillments", &other_model).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&reply), "model_mismatch");
    let bad_params = request_body(
        31337,
        relay_hex,
        &SMOLLM2_SHA256,
        r#"{"max_tokens":"many"}"#,
    );
    let reply = server.post("/v1/onchain/fulfillments", &bad_params).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&reply), "invalid_params");
    let reply = server.get("/v1/onchain/fulfillments").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_relay_setting_it_signs_nothing() {
    let server = TestServer::start(Limits::default());
    server.bind_operator(OPERATOR).await;
    let body = request_body(
        31337,
        "0xc2be970268c5f0924b50ecb8842b4b8ffd4e57a8",
        &SMOLLM2_SHA256,
        PARAMS,
    );
    let reply = server.post("/v1/onchain/fulfillments", &body).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&reply), "onchain_disabled");
}
