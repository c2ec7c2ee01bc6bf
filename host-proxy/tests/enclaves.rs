//! Real enclave servers (development attester, real model) behind the real `host-proxy`
//! process: attested chats through the proxy with the client library (TLS ends in the
//! enclave, the attestation document is verified under the development root, every answer's
//! receipt is verified); one enclave is killed, the following chats all succeed on the
//! others; it comes back on the same port and rejoins.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use attest::ClientPolicy;
use attest::connection::{AttestedConnection, ChatRequest, ConnectOptions};
use attestation_verifier::TrustAnchor;
use common::ProxyProcess;
use enclave::config::{AttesterChoice, EnclaveConfig, Limits};
use enclave::server::{RunningServer, Server};
use testkit::{TempDir, model_path, model_sha256};

fn start_enclave(pki: &TempDir, listen: &str) -> RunningServer {
    let config = EnclaveConfig {
        model: model_path(),
        model_sha256: model_sha256(),
        listen: listen.parse().expect("listen address"),
        // One development CA for all enclaves, as one operator's fleet would share a root.
        attester: AttesterChoice::Dev {
            pki_dir: pki.path().join("dev-pki"),
        },
        server_names: vec!["localhost".to_owned()],
        limits: Limits::default(),
        onchain_relay: None,
    };
    Server::start(&config).expect("enclave server starts")
}

/// One attested chat through the proxy; returns the receipt key address of the enclave that
/// answered (verified by the client library).
async fn attested_chat(proxy: &ProxyProcess, policy: &ClientPolicy, index: usize) -> String {
    let url = format!("https://{}", proxy.address);
    let options = ConnectOptions {
        connect_timeout: Duration::from_secs(60),
        answer_timeout: Duration::from_secs(120),
    };
    let mut connection = AttestedConnection::connect(&url, policy.clone(), options)
        .await
        .unwrap_or_else(|error| panic!("chat {index}: attested connect failed: {error}"));
    let answer = connection
        .chat(&ChatRequest {
            prompt: format!("Say hello number {index}."),
            max_tokens: Some(4),
            ..ChatRequest::default()
        })
        .await
        .unwrap_or_else(|error| panic!("chat {index}: verified answer failed: {error}"));
    assert!(!answer.answer.is_empty(), "chat {index}: empty answer");
    connection.enclave_address()
}

async fn chats(
    proxy: &ProxyProcess,
    policy: &ClientPolicy,
    count: usize,
    first: usize,
) -> Vec<String> {
    let mut served = Vec::with_capacity(count);
    for index in first..first + count {
        served.push(attested_chat(proxy, policy, index).await);
    }
    served
}

#[test]
fn attested_chats_through_the_proxy_survive_an_enclave_kill_and_rejoin() {
    let pki = TempDir::new("enclaves");
    let mut enclaves: Vec<Option<RunningServer>> = (0..3)
        .map(|_| Some(start_enclave(&pki, "tcp:127.0.0.1:0")))
        .collect();
    let sockets: Vec<_> = enclaves
        .iter()
        .map(|server| {
            server
                .as_ref()
                .and_then(RunningServer::socket_addr)
                .expect("TCP listener")
        })
        .collect();
    let addresses: Vec<String> = enclaves
        .iter()
        .flatten()
        .map(|server| attestation_verifier::receipt::address_hex(&server.enclave_address()))
        .collect();
    let root = enclaves[0]
        .as_ref()
        .and_then(|server| server.dev_root_pem().expect("read dev root"))
        .expect("development root");
    // The development root is trusted explicitly, as a development client must.
    let policy = ClientPolicy::new(TrustAnchor::from_pem_explicit(&root).expect("anchor"))
        .expect_model_sha256(model_sha256());

    let mut arguments = vec![
        "--health-interval".to_owned(),
        "200ms".to_owned(),
        "--health-timeout".to_owned(),
        "1s".to_owned(),
    ];
    for socket in &sockets {
        arguments.push("--backend".to_owned());
        arguments.push(format!("tcp:{socket}"));
    }
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let proxy = ProxyProcess::start(&arguments);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // Sequential chats rotate over the equally idle enclaves: all three answer.
        let before: BTreeSet<String> = chats(&proxy, &policy, 6, 0).await.into_iter().collect();
        assert_eq!(
            before,
            addresses.iter().cloned().collect(),
            "every enclave answered through the proxy"
        );

        // Kill enclave 1: every following chat succeeds on the other two.
        if let Some(server) = enclaves[1].take() {
            server.shutdown();
        }
        let during = chats(&proxy, &policy, 6, 100).await;
        assert!(
            during.iter().all(|address| *address != addresses[1]),
            "a chat reached the killed enclave: {during:?}"
        );
        let up = format!("host_proxy_backend_up{{backend=\"tcp:{}\"}}", sockets[1]);
        proxy.wait_for_metric(&up, 0).await;

        // Bring it back on the same port (a restarted enclave has fresh keys): it rejoins.
        let revived = start_enclave(&pki, &format!("tcp:{}", sockets[1]));
        let revived_address =
            attestation_verifier::receipt::address_hex(&revived.enclave_address());
        enclaves[1] = Some(revived);
        proxy.wait_for_metric(&up, 1).await;
        let after = chats(&proxy, &policy, 6, 200).await;
        assert!(
            after.contains(&revived_address),
            "the restarted enclave did not rejoin: {after:?}"
        );
        assert_eq!(
            proxy.metric("host_proxy_connections_refused_total{reason=\"no_backend\"}"),
            0
        );
    });
    for server in enclaves.into_iter().flatten() {
        server.shutdown();
    }
}
