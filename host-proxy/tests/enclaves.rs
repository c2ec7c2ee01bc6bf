//! Real enclave servers (development attester, real model) behind the real `host-proxy`
//! process: attested chats through the proxy with the client library (TLS ends in the
//! enclave, the attestation document is verified under the development root, every answer's
//! receipt is verified); one enclave is killed, the following chats all succeed on the
//! others; it comes back on the same port and rejoins. Chats in flight on an enclave that dies
//! are sent again by the client library on a new attested connection, and none fails.

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
        parent_listen: None,
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

/// A TCP forwarder in front of an enclave that can be killed the way SIGKILL kills the enclave
/// process: every connection through it closes at once, mid-request, and its port refuses new
/// ones.
struct KillSwitch {
    address: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl KillSwitch {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the forwarder");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(async move {
                    if let Ok(mut backend) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                    }
                });
            }
        });
        Self { address, task }
    }

    /// Closes every forwarded connection and the listener (the JoinSet drops with the task).
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The issue-17 scenario: chats in flight, 8 at a time, through host-proxy to two enclaves;
/// one enclave dies mid-way. The client library sends a request whose connection died before
/// any response again, once, on a new attested connection (the proxy hands it to the
/// surviving enclave): no chat fails.
#[test]
fn chats_in_flight_on_a_killed_enclave_are_retried_on_a_new_attested_connection() {
    const WORKERS: usize = 8;
    const CHATS: usize = 48;
    const KILL_AFTER: usize = 12;
    let pki = TempDir::new("enclaves-in-flight");
    let doomed = start_enclave(&pki, "tcp:127.0.0.1:0");
    let survivor = start_enclave(&pki, "tcp:127.0.0.1:0");
    let root = doomed
        .dev_root_pem()
        .expect("read dev root")
        .expect("development root");
    let policy = ClientPolicy::new(TrustAnchor::from_pem_explicit(&root).expect("anchor"))
        .expect_model_sha256(model_sha256());
    let doomed_key = attestation_verifier::receipt::address_hex(&doomed.enclave_address());
    let survivor_key = attestation_verifier::receipt::address_hex(&survivor.enclave_address());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let switch = KillSwitch::start(doomed.socket_addr().expect("TCP")).await;
        let arguments = [
            "--health-interval".to_owned(),
            "200ms".to_owned(),
            "--backend".to_owned(),
            format!("tcp:{}", switch.address),
            "--backend".to_owned(),
            format!("tcp:{}", survivor.socket_addr().expect("TCP")),
        ];
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        let proxy = ProxyProcess::start(&arguments);
        let url = format!("https://{}", proxy.address);
        let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = Vec::new();
        for worker in 0..WORKERS {
            let (url, policy) = (url.clone(), policy.clone());
            let (started, answered) = (started.clone(), answered.clone());
            workers.push(tokio::spawn(async move {
                let options = ConnectOptions {
                    connect_timeout: Duration::from_secs(60),
                    answer_timeout: Duration::from_secs(120),
                };
                let mut connection = AttestedConnection::connect(&url, policy, options)
                    .await
                    .unwrap_or_else(|error| panic!("worker {worker}: connect: {error}"));
                let first_key = connection.enclave_address();
                let mut keys = Vec::new();
                loop {
                    let index = started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if index >= CHATS {
                        break;
                    }
                    let answer = connection
                        .chat(&ChatRequest {
                            prompt: format!("Count to {index}."),
                            max_tokens: Some(8),
                            ..ChatRequest::default()
                        })
                        .await
                        .unwrap_or_else(|error| panic!("chat {index} failed: {error}"));
                    assert!(!answer.answer.is_empty());
                    keys.push(connection.enclave_address());
                    answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                (first_key, keys, connection.reconnections())
            }));
        }
        while answered.load(std::sync::atomic::Ordering::SeqCst) < KILL_AFTER {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        switch.kill().await;
        let mut reconnected = 0;
        for worker in workers {
            let (first_key, keys, reconnections) = worker.await.expect("no chat failed");
            if first_key == doomed_key {
                // Its connection died with the enclave: it went on with the survivor.
                assert!(
                    reconnections >= 1,
                    "a worker on the killed enclave never reconnected"
                );
                assert_eq!(keys.last(), Some(&survivor_key));
                reconnected += 1;
            } else {
                assert_eq!(reconnections, 0, "a worker on the survivor reconnected");
            }
        }
        assert!(
            reconnected >= 1,
            "no worker was on the killed enclave: the proxy did not spread them"
        );
        assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), CHATS);
    });
    drop(doomed);
    survivor.shutdown();
}
