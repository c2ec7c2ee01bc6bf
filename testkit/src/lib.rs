//! Fixtures for tests that cross parts (client ↔ proxy ↔ enclave ↔ chain), shared by the
//! relayer's chain tests and the workspace's end-to-end tests (`tests/`):
//!
//! - [`model_path`] / [`MODEL_SHA256`]: the real model, fetched by `scripts/fetch-model.sh`;
//! - [`TempDir`]: a private directory removed on drop;
//! - [`Anvil`]: a real local chain on a free port, stopped on drop;
//! - [`Deployment`]: the contracts deployed on it by `contracts/script/deploy.sh`;
//! - [`DevEnclave`]: an enclave server in-process (development attester, real model);
//! - [`chain`]: funded accounts, transactions that must succeed, anvil's clock.
//!
//! Every fixture fails the test with a message saying what to install or run when the material
//! it needs is missing: none of them skips silently.
#![forbid(unsafe_code)]

pub mod chain;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use attest::ClientPolicy;
use attestation_verifier::TrustAnchor;
use enclave::config::{AttesterChoice, EnclaveConfig, Limits};
use enclave::server::onchain::OnchainRelay;
use enclave::server::{RunningServer, Server};

/// SHA-256 of the real model (SmolLM2-135M-Instruct Q4_1, DESIGN).
pub const MODEL_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// anvil's development account 0: deploys the contracts and owns them.
pub const DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// [`MODEL_SHA256`] as bytes.
pub fn model_sha256() -> [u8; 32] {
    let mut hash = [0; 32];
    hex::decode_to_slice(MODEL_SHA256, &mut hash).expect("MODEL_SHA256 is 32 bytes of hex");
    hash
}

/// The real model (or `ATTESTED_MODEL_PATH`). Panics with the command to run when it is missing.
pub fn model_path() -> PathBuf {
    let path = std::env::var_os("ATTESTED_MODEL_PATH").map_or_else(
        || repo_root().join(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "the test model is missing at {}: run scripts/fetch-model.sh (or set ATTESTED_MODEL_PATH)",
        path.display()
    );
    path
}

/// A private temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory under the system's temporary directory.
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{label}-{}", unique_suffix()));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Unique among this machine's processes: the process id, the clock and a counter (names of
/// temporary directories need uniqueness, not secrecy).
fn unique_suffix() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos:x}-{count}", std::process::id())
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("bind 127.0.0.1:0")
}

/// The Foundry tool `name` (`anvil`, `cast`, `forge`): `$ANVIL` etc. when set, else what
/// `scripts/install-foundry.sh` (idempotent) reports.
pub fn foundry_tool(name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(name.to_uppercase()) {
        return PathBuf::from(path);
    }
    let output = Command::new(repo_root().join("scripts/install-foundry.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/install-foundry.sh");
    assert!(
        output.status.success(),
        "scripts/install-foundry.sh failed; run scripts/install-deps.sh"
    );
    let prefix = format!("export {}=", name.to_uppercase());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix(&prefix).map(PathBuf::from))
        .unwrap_or_else(|| panic!("scripts/install-foundry.sh did not report {name}"))
}

/// The real AWS Nitro documents (`shared/vectors/nitro/` beside the repository, or
/// `$NITRO_VECTORS_DIR`): others' test data, read in place.
pub fn nitro_vectors_dir() -> PathBuf {
    std::env::var_os("NITRO_VECTORS_DIR").map_or_else(
        || repo_root().join("../shared/vectors/nitro"),
        PathBuf::from,
    )
}

/// A child process killed (and reaped) on drop, so a failing test leaves nothing running.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real anvil chain on a free port (chain id 31337), stopped on drop.
#[derive(Debug)]
pub struct Anvil {
    port: u16,
    _process: ChildGuard,
}

impl Anvil {
    /// Starts anvil and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts anvil whose genesis block has `timestamp` (Unix seconds), for material that is
    /// only valid at its own time (the real attestation documents).
    pub fn start_at(timestamp: u64) -> Self {
        Self::start_with(&["--timestamp", &timestamp.to_string()])
    }

    fn start_with(extra_args: &[&str]) -> Self {
        let anvil = foundry_tool("anvil");
        // The port may be taken between the probe and anvil's bind: try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut process = ChildGuard(
                Command::new(&anvil)
                    .args(["--port", &port.to_string(), "--silent"])
                    .args(extra_args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap_or_else(|error| panic!("start {}: {error}", anvil.display())),
            );
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if matches!(process.0.try_wait(), Ok(Some(_))) {
                    break;
                }
                if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                    return Self {
                        port,
                        _process: process,
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("anvil did not start ({})", anvil.display());
    }

    /// Its JSON-RPC URL.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// What `contracts/script/deploy.sh` deployed (its `deployment.json`).
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The chain id.
    pub chain_id: u64,
    /// `EnclaveRegistry`.
    pub registry: [u8; 20],
    /// `InferenceRelay`.
    pub relay: [u8; 20],
    /// `ExampleConsumer` (owned by [`DEPLOYER_KEY`]'s account).
    pub consumer: [u8; 20],
    /// `NitroRegistrar` (approved as a registrar; its root is `DeploySettings::nitro_root_cert`).
    pub nitro_registrar: [u8; 20],
    /// The model the registry allows.
    pub model_hash: [u8; 32],
    /// Stake locked per claim and slashed on a miss, in wei.
    pub claim_collateral_wei: u128,
}

/// Settings of a deployment beyond `deploy.sh`'s defaults.
#[derive(Debug, Clone, Default)]
pub struct DeploySettings {
    /// The attestation-verifier key the registry trusts (0x address).
    pub verifier_address: Option<String>,
    /// PCR0, PCR1, PCR2 of the image to allow.
    pub image: Option<[Vec<u8>; 3]>,
    /// The root `NitroRegistrar` trusts (PEM or DER file; default the AWS Nitro root G1).
    pub nitro_root_cert: Option<PathBuf>,
}

impl Deployment {
    /// Deploys the contracts on `anvil` with `contracts/script/deploy.sh` (which compiles them
    /// with the pinned solc when needed).
    pub fn deploy(anvil: &Anvil, settings: &DeploySettings) -> Self {
        let directory = TempDir::new("attested-deploy");
        let file = directory.path().join("deployment.json");
        // Tests run in parallel processes; compilation writes contracts/out and cache/, so
        // deployments (which compile when the artifacts are stale) take turns.
        let lock = std::env::temp_dir().join("attested-inference-contracts.lock");
        let mut command = Command::new("flock");
        command
            .arg(&lock)
            .arg(repo_root().join("contracts/script/deploy.sh"))
            .env("RPC_URL", anvil.rpc_url())
            .env("DEPLOYMENT_FILE", &file)
            .env("DEPLOYER_KEY", DEPLOYER_KEY)
            .env("MODEL_HASH", format!("0x{MODEL_SHA256}"))
            .stdout(Stdio::null());
        if let Some(verifier) = &settings.verifier_address {
            command.env("VERIFIER_ADDRESS", verifier);
        }
        if let Some(root) = &settings.nitro_root_cert {
            command.env("NITRO_ROOT_CERT", root);
        }
        if let Some([pcr0, pcr1, pcr2]) = &settings.image {
            command
                .env("PCR0", format!("0x{}", hex::encode(pcr0)))
                .env("PCR1", format!("0x{}", hex::encode(pcr1)))
                .env("PCR2", format!("0x{}", hex::encode(pcr2)));
        }
        let status = command
            .status()
            .expect("run contracts/script/deploy.sh under flock");
        assert!(status.success(), "contracts/script/deploy.sh failed");
        let text = std::fs::read_to_string(&file).expect("deploy.sh wrote no deployment file");
        let json: serde_json::Value = serde_json::from_str(&text).expect("deployment.json");
        let field = |name: &str| {
            json[name]
                .as_str()
                .unwrap_or_else(|| panic!("deployment.json lacks {name}"))
                .to_owned()
        };
        Self {
            chain_id: json["chainId"].as_u64().expect("deployment.json chainId"),
            registry: fixed_hex(&field("enclaveRegistry")),
            relay: fixed_hex(&field("inferenceRelay")),
            consumer: fixed_hex(&field("exampleConsumer")),
            nitro_registrar: fixed_hex(&field("nitroRegistrar")),
            model_hash: fixed_hex(&field("modelHash")),
            claim_collateral_wei: field("claimCollateralWei")
                .parse()
                .expect("claimCollateralWei"),
        }
    }

    /// The relay as the enclave's `--onchain-relay` setting.
    pub fn onchain_relay(&self) -> OnchainRelay {
        OnchainRelay {
            chain_id: self.chain_id,
            relay: self.relay,
        }
    }
}

/// `0x`-prefixed (or bare) hex of exactly `N` bytes.
pub fn fixed_hex<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0; N];
    hex::decode_to_slice(text.trim_start_matches("0x"), &mut out)
        .unwrap_or_else(|error| panic!("{text:?} is not {N} bytes of hex: {error}"));
    out
}

/// One plain HTTP/1.1 request on an enclave's parent channel (`Connection: close`): the
/// status and the body.
pub fn parent_request(address: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .expect("connect to the parent channel");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a read timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: enclave\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write the request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, body)| body.to_owned());
    (status, body)
}

/// An enclave server in-process: development attester (its own CA in a temporary directory),
/// the real model, TCP on a free port.
#[derive(Debug)]
pub struct DevEnclave {
    server: RunningServer,
    _directory: TempDir,
}

impl DevEnclave {
    /// Starts one, signing on-chain fulfilments for `onchain_relay` when given.
    pub fn start(onchain_relay: Option<OnchainRelay>) -> Self {
        Self::start_with_pki(onchain_relay, None)
    }

    /// Starts one whose development CA lives in `pki_dir` (created when missing), so several
    /// enclaves can share one root.
    pub fn start_with_pki(onchain_relay: Option<OnchainRelay>, pki_dir: Option<&Path>) -> Self {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_on(onchain_relay, pki_dir, any_port, any_port)
    }

    /// Starts one listening on `listen` with its parent channel on `parent` (an enclave
    /// restarted where the last one was: same addresses, a new key).
    pub fn start_on(
        onchain_relay: Option<OnchainRelay>,
        pki_dir: Option<&Path>,
        listen: SocketAddr,
        parent: SocketAddr,
    ) -> Self {
        let directory = TempDir::new("attested-enclave");
        let config = EnclaveConfig {
            model: model_path(),
            model_sha256: model_sha256(),
            listen: enclave::transport::ListenAddress::Tcp(listen),
            parent_listen: Some(enclave::transport::ListenAddress::Tcp(parent)),
            attester: AttesterChoice::Dev {
                pki_dir: pki_dir
                    .map_or_else(|| directory.path().join("dev-pki"), Path::to_path_buf),
            },
            server_names: vec!["localhost".to_owned()],
            limits: Limits::default(),
            onchain_relay,
        };
        let server = Server::start(&config).expect("the enclave server starts");
        Self {
            server,
            _directory: directory,
        }
    }

    /// The running server.
    pub fn server(&self) -> &RunningServer {
        &self.server
    }

    /// Its TCP address.
    pub fn socket_addr(&self) -> SocketAddr {
        self.server.socket_addr().expect("a TCP listener")
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.socket_addr())
    }

    /// Its parent channel's TCP address (docs/protocol.md §5a).
    pub fn parent_socket_addr(&self) -> SocketAddr {
        self.server
            .parent_socket_addr()
            .expect("a TCP parent channel")
    }

    /// `tcp:127.0.0.1:<port>` of its parent channel, as the relayer's `--enclave-parent`.
    pub fn parent_address(&self) -> String {
        format!("tcp:{}", self.parent_socket_addr())
    }

    /// Binds `operator` over the parent channel, as the operator's relayer does; panics
    /// unless the enclave answers 200.
    pub fn bind_operator(&self, operator: [u8; 20]) {
        let body = format!(r#"{{"operator":"0x{}"}}"#, hex::encode(operator));
        let (status, answer) =
            parent_request(self.parent_socket_addr(), "PUT", "/v1/operator", &body);
        assert_eq!(status, 200, "binding the operator failed: {answer}");
    }

    /// The development root certificate (PEM file) that verifies its documents.
    pub fn root_pem(&self) -> PathBuf {
        self.server
            .dev_root_pem_path()
            .expect("the development attester writes its root")
            .to_path_buf()
    }

    /// The policy a client uses for it: its development root (explicit opt-in), its image's
    /// PCR0..2 and the real model.
    pub fn policy(&self) -> ClientPolicy {
        let pem = std::fs::read(self.root_pem()).expect("read the development root");
        ClientPolicy::new(TrustAnchor::from_pem_explicit(&pem).expect("the development root"))
            .expect_pcr(0, self.pcr(0))
            .expect_pcr(1, self.pcr(1))
            .expect_pcr(2, self.pcr(2))
            .expect_model_sha256(model_sha256())
    }

    /// PCR `index` of its boot attestation document.
    pub fn pcr(&self, index: u8) -> Vec<u8> {
        attestation_verifier::parse_document(&self.server.boot_document())
            .expect("the boot document parses")
            .pcr(index)
            .expect("the development attester fills PCR0..2")
            .to_vec()
    }
}
