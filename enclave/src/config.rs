//! The enclave server's configuration, from three layers (later wins): a TOML file, the
//! environment (`ENCLAVE_*`), the command line. Each layer is a [`ConfigLayer`] of optional
//! settings; [`ConfigLayer::resolve`] validates the merged result into an [`EnclaveConfig`].
//! No setting is secret, so the effective configuration can be printed at start.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::transport::{ListenAddress, ListenAddressError};
use attestation_verifier::onchain::ContractDomain;

/// Largest accepted request body limit (a chat request is far smaller).
pub const MAX_REQUEST_BYTES_CEILING: u64 = 64 * 1024 * 1024;

/// Which attester the enclave uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttesterChoice {
    /// The Nitro Secure Module (`/dev/nsm`).
    Nsm,
    /// The development attester with its CA in this directory.
    Dev {
        /// The development CA directory (`root.pem` is written there).
        pki_dir: PathBuf,
    },
}

/// Resource limits of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_request_bytes: u64,
    /// Generations running at the same time.
    pub max_concurrent_requests: u32,
    /// Requests waiting for a slot before new ones are refused.
    pub max_queued_requests: u32,
    /// Most tokens one request may generate.
    pub max_tokens: u32,
    /// Time a client has for the TLS handshake and its request head (408 after it), and
    /// again for the request body, in milliseconds.
    pub header_timeout_ms: u32,
    /// Connections open at the same time; one more is closed at once (before TLS).
    pub max_connections: u32,
    /// Fresh attestation documents (`GET /v1/attestation?nonce=`) per second, all clients
    /// together; each asks the attester (the NSM) for a signature. 429 beyond it.
    pub attestations_per_second: u32,
    /// Fresh attestation documents per minute on one connection (a client needs one per
    /// connection); 429 beyond it.
    pub attestations_per_minute_per_connection: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 1024 * 1024,
            // Sequences advanced together in one batched forward pass.
            max_concurrent_requests: 8,
            max_queued_requests: 32,
            max_tokens: 512,
            header_timeout_ms: 10_000,
            max_connections: 256,
            // The attester signs a document in about 10 ms (100 in a row took 1.0 s): at most
            // a fifth of one core goes to documents, whatever clients ask.
            attestations_per_second: 20,
            attestations_per_minute_per_connection: 12,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveConfig {
    /// The GGUF model file.
    pub model: PathBuf,
    /// Its expected SHA-256 (the enclave refuses any other bytes).
    pub model_sha256: [u8; 32],
    /// Where to listen.
    pub listen: ListenAddress,
    /// Where the parent channel listens (`vsock:<port>` in an enclave: only the parent
    /// instance can connect): plain HTTP for the parent's operator binding and metrics
    /// (docs/protocol.md §5a). None: no parent channel (no operator can be bound).
    pub parent_listen: Option<ListenAddress>,
    /// Which attester.
    pub attester: AttesterChoice,
    /// Names in the TLS certificate (clients trust the key through attestation).
    pub server_names: Vec<String>,
    /// Resource limits.
    pub limits: Limits,
    /// The relay the enclave signs on-chain fulfilments for (docs/protocol.md §5); none: the
    /// fulfilment endpoint refuses every request.
    pub onchain_relay: Option<OnchainRelay>,
}

impl fmt::Display for EnclaveConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "model = {}", self.model.display())?;
        writeln!(f, "model_sha256 = {}", hex::encode(self.model_sha256))?;
        writeln!(f, "listen = {}", self.listen)?;
        match &self.parent_listen {
            Some(address) => writeln!(f, "parent_listen = {address}")?,
            None => writeln!(f, "parent_listen = (none)")?,
        }
        match &self.attester {
            AttesterChoice::Nsm => writeln!(f, "attester = nsm")?,
            AttesterChoice::Dev { pki_dir } => {
                writeln!(f, "attester = dev")?;
                writeln!(f, "dev_pki = {}", pki_dir.display())?;
            }
        }
        writeln!(f, "server_names = {}", self.server_names.join(","))?;
        writeln!(f, "max_request_bytes = {}", self.limits.max_request_bytes)?;
        writeln!(
            f,
            "max_concurrent_requests = {}",
            self.limits.max_concurrent_requests
        )?;
        writeln!(
            f,
            "max_queued_requests = {}",
            self.limits.max_queued_requests
        )?;
        writeln!(f, "max_tokens = {}", self.limits.max_tokens)?;
        writeln!(f, "header_timeout_ms = {}", self.limits.header_timeout_ms)?;
        writeln!(f, "max_connections = {}", self.limits.max_connections)?;
        writeln!(
            f,
            "attestations_per_second = {}",
            self.limits.attestations_per_second
        )?;
        writeln!(
            f,
            "attestations_per_minute_per_connection = {}",
            self.limits.attestations_per_minute_per_connection
        )?;
        match &self.onchain_relay {
            Some(relay) => write!(f, "onchain_relay = {relay}"),
            None => write!(f, "onchain_relay = (none)"),
        }
    }
}

/// Why the configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML file cannot be read.
    #[error("cannot read configuration file {path}: {reason}")]
    FileUnreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The TOML file does not parse or has unknown keys.
    #[error("configuration file {path}: {reason}")]
    FileInvalid {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        reason: String,
    },
    /// A required setting is missing from every layer.
    #[error("missing setting {name}: give --{flag}, {env} or `{name}` in the configuration file")]
    Missing {
        /// The TOML key.
        name: &'static str,
        /// The command-line flag.
        flag: &'static str,
        /// The environment variable.
        env: &'static str,
    },
    /// `model_sha256` is not 64 hex characters.
    #[error("model_sha256 must be 64 hex characters, found {found:?}")]
    InvalidModelHash {
        /// The value given.
        found: String,
    },
    /// `listen` does not parse.
    #[error(transparent)]
    InvalidListen(#[from] ListenAddressError),
    /// `attester` is neither `nsm` nor `dev`.
    #[error("attester must be \"nsm\" or \"dev\", found {found:?}")]
    InvalidAttester {
        /// The value given.
        found: String,
    },
    /// `--attester dev` without a CA directory.
    #[error(
        "the development attester needs a CA directory: give --dev-pki, ENCLAVE_DEV_PKI or `dev_pki`"
    )]
    DevPkiMissing,
    /// A CA directory with the NSM attester (probably a mistake, so refused).
    #[error("dev_pki is set but the attester is nsm; remove dev_pki or use --attester dev")]
    DevPkiWithNsm,
    /// A numeric setting is not a number.
    #[error("{name} must be a whole number, found {found:?}")]
    InvalidNumber {
        /// The setting.
        name: &'static str,
        /// The value given.
        found: String,
    },
    /// A numeric setting is out of range.
    #[error("{name} must be between {min} and {max}, found {found}")]
    OutOfRange {
        /// The setting.
        name: &'static str,
        /// The value given.
        found: u64,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// `onchain_relay` is not `<chain_id>:<0x address>`.
    #[error("onchain_relay: {reason}")]
    InvalidOnchainRelay {
        /// What is wrong.
        reason: String,
    },
    /// A server name is empty.
    #[error("server_names contains an empty name")]
    EmptyServerName,
}

/// One layer of optional settings (a TOML file, the environment or the command line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    /// `model`: the GGUF file.
    pub model: Option<PathBuf>,
    /// `model_sha256`: 64 hex characters.
    pub model_sha256: Option<String>,
    /// `listen`: `tcp:<addr:port>` or `vsock:<port>`.
    pub listen: Option<String>,
    /// `parent_listen`: `tcp:<addr:port>` or `vsock:<port>`.
    pub parent_listen: Option<String>,
    /// `attester`: `nsm` or `dev`.
    pub attester: Option<String>,
    /// `dev_pki`: the development CA directory.
    pub dev_pki: Option<PathBuf>,
    /// `server_names`: names in the TLS certificate.
    pub server_names: Option<Vec<String>>,
    /// `max_request_bytes`.
    pub max_request_bytes: Option<u64>,
    /// `max_concurrent_requests`.
    pub max_concurrent_requests: Option<u64>,
    /// `max_queued_requests`.
    pub max_queued_requests: Option<u64>,
    /// `max_tokens`.
    pub max_tokens: Option<u64>,
    /// `header_timeout_ms`.
    pub header_timeout_ms: Option<u64>,
    /// `max_connections`.
    pub max_connections: Option<u64>,
    /// `attestations_per_second`.
    pub attestations_per_second: Option<u64>,
    /// `attestations_per_minute_per_connection`.
    pub attestations_per_minute_per_connection: Option<u64>,
    /// `onchain_relay`: `<chain_id>:<0x relay address>`.
    pub onchain_relay: Option<String>,
}

/// Environment variables, one per setting.
pub const ENV_VARS: [(&str, &str); 16] = [
    ("model", "ENCLAVE_MODEL"),
    ("model_sha256", "ENCLAVE_MODEL_SHA256"),
    ("listen", "ENCLAVE_LISTEN"),
    ("parent_listen", "ENCLAVE_PARENT_LISTEN"),
    ("attester", "ENCLAVE_ATTESTER"),
    ("dev_pki", "ENCLAVE_DEV_PKI"),
    ("server_names", "ENCLAVE_SERVER_NAMES"),
    ("max_request_bytes", "ENCLAVE_MAX_REQUEST_BYTES"),
    ("max_concurrent_requests", "ENCLAVE_MAX_CONCURRENT_REQUESTS"),
    ("max_queued_requests", "ENCLAVE_MAX_QUEUED_REQUESTS"),
    ("max_tokens", "ENCLAVE_MAX_TOKENS"),
    ("header_timeout_ms", "ENCLAVE_HEADER_TIMEOUT_MS"),
    ("max_connections", "ENCLAVE_MAX_CONNECTIONS"),
    ("attestations_per_second", "ENCLAVE_ATTESTATIONS_PER_SECOND"),
    (
        "attestations_per_minute_per_connection",
        "ENCLAVE_ATTESTATIONS_PER_MINUTE_PER_CONNECTION",
    ),
    ("onchain_relay", "ENCLAVE_ONCHAIN_RELAY"),
];

fn env_name(setting: &str) -> &'static str {
    ENV_VARS
        .iter()
        .find(|(name, _)| *name == setting)
        .map_or("", |(_, env)| env)
}

impl ConfigLayer {
    /// Parses a TOML configuration (unknown keys are errors).
    ///
    /// # Errors
    /// [`ConfigError::FileInvalid`].
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|error| ConfigError::FileInvalid {
            path: path.to_owned(),
            reason: error.to_string(),
        })
    }

    /// Reads and parses a TOML configuration file.
    ///
    /// # Errors
    /// [`ConfigError::FileUnreadable`] or [`ConfigError::FileInvalid`].
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::FileUnreadable {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
        Self::from_toml(&text, path)
    }

    /// Reads the `ENCLAVE_*` variables through `lookup` (`std::env::var` in the binary; a map
    /// in tests). Empty values count as unset.
    ///
    /// # Errors
    /// [`ConfigError::InvalidNumber`] for a limit that is not a number.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |setting: &str| lookup(env_name(setting)).filter(|value| !value.is_empty());
        let number = |setting: &'static str| -> Result<Option<u64>, ConfigError> {
            get(setting)
                .map(|value| {
                    value
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| ConfigError::InvalidNumber {
                            name: setting,
                            found: value.clone(),
                        })
                })
                .transpose()
        };
        Ok(Self {
            model: get("model").map(PathBuf::from),
            model_sha256: get("model_sha256"),
            listen: get("listen"),
            parent_listen: get("parent_listen"),
            attester: get("attester"),
            dev_pki: get("dev_pki").map(PathBuf::from),
            server_names: get("server_names").map(|names| {
                names
                    .split(',')
                    .map(|name| name.trim().to_owned())
                    .collect()
            }),
            max_request_bytes: number("max_request_bytes")?,
            max_concurrent_requests: number("max_concurrent_requests")?,
            max_queued_requests: number("max_queued_requests")?,
            max_tokens: number("max_tokens")?,
            header_timeout_ms: number("header_timeout_ms")?,
            max_connections: number("max_connections")?,
            attestations_per_second: number("attestations_per_second")?,
            attestations_per_minute_per_connection: number(
                "attestations_per_minute_per_connection",
            )?,
            onchain_relay: get("onchain_relay"),
        })
    }

    /// This layer with every setting `higher` gives replaced by `higher`'s.
    #[must_use]
    pub fn overlay(self, higher: Self) -> Self {
        Self {
            model: higher.model.or(self.model),
            model_sha256: higher.model_sha256.or(self.model_sha256),
            listen: higher.listen.or(self.listen),
            parent_listen: higher.parent_listen.or(self.parent_listen),
            attester: higher.attester.or(self.attester),
            dev_pki: higher.dev_pki.or(self.dev_pki),
            server_names: higher.server_names.or(self.server_names),
            max_request_bytes: higher.max_request_bytes.or(self.max_request_bytes),
            max_concurrent_requests: higher
                .max_concurrent_requests
                .or(self.max_concurrent_requests),
            max_queued_requests: higher.max_queued_requests.or(self.max_queued_requests),
            max_tokens: higher.max_tokens.or(self.max_tokens),
            header_timeout_ms: higher.header_timeout_ms.or(self.header_timeout_ms),
            max_connections: higher.max_connections.or(self.max_connections),
            attestations_per_second: higher
                .attestations_per_second
                .or(self.attestations_per_second),
            attestations_per_minute_per_connection: higher
                .attestations_per_minute_per_connection
                .or(self.attestations_per_minute_per_connection),
            onchain_relay: higher.onchain_relay.or(self.onchain_relay),
        }
    }

    /// Validates the merged settings.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn resolve(self) -> Result<EnclaveConfig, ConfigError> {
        let missing = |name: &'static str, flag: &'static str| ConfigError::Missing {
            name,
            flag,
            env: env_name(name),
        };
        let model = self.model.ok_or_else(|| missing("model", "model"))?;
        let hash_text = self
            .model_sha256
            .ok_or_else(|| missing("model_sha256", "model-sha256"))?;
        let model_sha256 = parse_sha256(&hash_text)?;
        let listen = self
            .listen
            .ok_or_else(|| missing("listen", "listen"))?
            .parse::<ListenAddress>()?;
        let parent_listen = self
            .parent_listen
            .map(|text| text.parse::<ListenAddress>())
            .transpose()?;
        let attester_text = self
            .attester
            .ok_or_else(|| missing("attester", "attester"))?;
        let attester = match (attester_text.as_str(), self.dev_pki) {
            ("dev", Some(pki_dir)) => AttesterChoice::Dev { pki_dir },
            ("dev", None) => return Err(ConfigError::DevPkiMissing),
            ("nsm", None) => AttesterChoice::Nsm,
            ("nsm", Some(_)) => return Err(ConfigError::DevPkiWithNsm),
            (other, _) => {
                return Err(ConfigError::InvalidAttester {
                    found: other.to_owned(),
                });
            }
        };
        let server_names = self
            .server_names
            .unwrap_or_else(|| vec!["localhost".to_owned()]);
        if server_names.iter().any(|name| name.trim().is_empty()) {
            return Err(ConfigError::EmptyServerName);
        }
        let defaults = Limits::default();
        let limits = Limits {
            max_request_bytes: in_range(
                "max_request_bytes",
                self.max_request_bytes,
                defaults.max_request_bytes,
                1,
                MAX_REQUEST_BYTES_CEILING,
            )?,
            max_concurrent_requests: in_range(
                "max_concurrent_requests",
                self.max_concurrent_requests,
                u64::from(defaults.max_concurrent_requests),
                1,
                256,
            )? as u32,
            max_queued_requests: in_range(
                "max_queued_requests",
                self.max_queued_requests,
                u64::from(defaults.max_queued_requests),
                0,
                65_536,
            )? as u32,
            max_tokens: in_range(
                "max_tokens",
                self.max_tokens,
                u64::from(defaults.max_tokens),
                1,
                1_000_000,
            )? as u32,
            header_timeout_ms: in_range(
                "header_timeout_ms",
                self.header_timeout_ms,
                u64::from(defaults.header_timeout_ms),
                100,
                600_000,
            )? as u32,
            max_connections: in_range(
                "max_connections",
                self.max_connections,
                u64::from(defaults.max_connections),
                1,
                65_536,
            )? as u32,
            attestations_per_second: in_range(
                "attestations_per_second",
                self.attestations_per_second,
                u64::from(defaults.attestations_per_second),
                1,
                10_000,
            )? as u32,
            attestations_per_minute_per_connection: in_range(
                "attestations_per_minute_per_connection",
                self.attestations_per_minute_per_connection,
                u64::from(defaults.attestations_per_minute_per_connection),
                1,
                60_000,
            )? as u32,
        };
        let onchain_relay = self
            .onchain_relay
            .map(|text| {
                text.parse::<OnchainRelay>()
                    .map_err(|reason| ConfigError::InvalidOnchainRelay { reason })
            })
            .transpose()?;
        Ok(EnclaveConfig {
            model,
            model_sha256,
            listen,
            parent_listen,
            attester,
            server_names,
            limits,
            onchain_relay,
        })
    }
}

fn in_range(
    name: &'static str,
    value: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let value = value.unwrap_or(default);
    if value < min || value > max {
        return Err(ConfigError::OutOfRange {
            name,
            found: value,
            min,
            max,
        });
    }
    Ok(value)
}

/// 64 hex characters (either case) as 32 bytes.
fn parse_sha256(text: &str) -> Result<[u8; 32], ConfigError> {
    let invalid = || ConfigError::InvalidModelHash {
        found: text.to_owned(),
    };
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return Err(invalid());
    }
    let mut out = [0u8; 32];
    for (index, pair) in bytes.chunks_exact(2).enumerate() {
        let digit = |byte: u8| (byte as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(high), Some(low)) => out[index] = (high * 16 + low) as u8,
            _ => return Err(invalid()),
        }
    }
    Ok(out)
}

/// The relay the enclave signs fulfilments for: `<chain_id>:<0x address>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnchainRelay {
    /// The chain id.
    pub chain_id: u64,
    /// The InferenceRelay contract's address.
    pub relay: [u8; 20],
}

impl OnchainRelay {
    /// The EIP-712 domain of this relay.
    pub fn domain(&self) -> ContractDomain {
        ContractDomain::relay(self.chain_id, self.relay)
    }
}

impl fmt::Display for OnchainRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:0x{}", self.chain_id, hex::encode(self.relay))
    }
}

impl std::str::FromStr for OnchainRelay {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (chain, address) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("expected <chain_id>:<0x relay address>, found {text:?}"))?;
        let chain_id = chain
            .parse::<u64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| format!("chain id must be a positive whole number, found {chain:?}"))?;
        let relay = crate::parse_0x_hex::<20>(address)
            .map_err(|reason| format!("relay address {address:?}: {reason}"))?;
        Ok(Self { chain_id, relay })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const HASH: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

    fn env(pairs: &[(&str, &str)]) -> ConfigLayer {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        ConfigLayer::from_env(|name| map.get(name).cloned()).expect("env layer")
    }

    fn minimal() -> ConfigLayer {
        ConfigLayer {
            model: Some(PathBuf::from("/models/m.gguf")),
            model_sha256: Some(HASH.to_owned()),
            listen: Some("vsock:5005".to_owned()),
            attester: Some("nsm".to_owned()),
            ..ConfigLayer::default()
        }
    }

    #[test]
    fn a_minimal_configuration_gets_defaults() {
        let config = minimal().resolve().expect("valid");
        assert_eq!(config.model_sha256[0], 0xb1);
        assert_eq!(config.model_sha256[31], 0x53);
        assert_eq!(config.listen, ListenAddress::Vsock { port: 5005 });
        assert_eq!(config.attester, AttesterChoice::Nsm);
        assert_eq!(config.server_names, ["localhost"]);
        assert_eq!(config.limits, Limits::default());
        let shown = config.to_string();
        assert!(shown.contains(&format!("model_sha256 = {HASH}")), "{shown}");
        assert!(shown.contains("listen = vsock:5005"), "{shown}");
        assert!(shown.contains("parent_listen = (none)"), "{shown}");
        assert!(shown.contains("max_connections = 256"), "{shown}");
    }

    #[test]
    fn the_parent_channel_and_the_connection_limits() {
        let config = ConfigLayer {
            parent_listen: Some("vsock:5006".to_owned()),
            max_connections: Some(32),
            attestations_per_second: Some(5),
            attestations_per_minute_per_connection: Some(2),
            ..minimal()
        }
        .resolve()
        .expect("valid");
        assert_eq!(
            config.parent_listen,
            Some(ListenAddress::Vsock { port: 5006 })
        );
        assert_eq!(config.limits.max_connections, 32);
        assert_eq!(config.limits.attestations_per_second, 5);
        assert_eq!(config.limits.attestations_per_minute_per_connection, 2);
        let layer = env(&[
            ("ENCLAVE_PARENT_LISTEN", "tcp:127.0.0.1:9"),
            ("ENCLAVE_ATTESTATIONS_PER_MINUTE_PER_CONNECTION", "3"),
        ]);
        assert_eq!(layer.parent_listen.as_deref(), Some("tcp:127.0.0.1:9"));
        assert_eq!(layer.attestations_per_minute_per_connection, Some(3));
        for (name, layer) in [
            (
                "max_connections",
                ConfigLayer {
                    max_connections: Some(0),
                    ..minimal()
                },
            ),
            (
                "attestations_per_second",
                ConfigLayer {
                    attestations_per_second: Some(0),
                    ..minimal()
                },
            ),
        ] {
            assert!(
                matches!(layer.resolve(), Err(ConfigError::OutOfRange { name: found, .. }) if found == name),
                "{name}"
            );
        }
        assert!(matches!(
            ConfigLayer {
                parent_listen: Some("udp:1".to_owned()),
                ..minimal()
            }
            .resolve(),
            Err(ConfigError::InvalidListen(_))
        ));
    }

    #[test]
    fn layers_apply_file_then_env_then_cli() {
        let file = ConfigLayer::from_toml(
            &format!(
                "model = \"/file/m.gguf\"\nmodel_sha256 = \"{HASH}\"\nlisten = \"tcp:127.0.0.1:1\"\n\
                 attester = \"dev\"\ndev_pki = \"/file/pki\"\nmax_tokens = 64\n\
                 server_names = [\"enclave.example\"]\n"
            ),
            Path::new("enclave.toml"),
        )
        .expect("toml");
        let environment = env(&[
            ("ENCLAVE_LISTEN", "tcp:127.0.0.1:2"),
            ("ENCLAVE_MAX_TOKENS", "128"),
            ("ENCLAVE_MODEL", ""),
        ]);
        let cli = ConfigLayer {
            listen: Some("tcp:127.0.0.1:3".to_owned()),
            ..ConfigLayer::default()
        };
        let config = file
            .overlay(environment)
            .overlay(cli)
            .resolve()
            .expect("valid");
        assert_eq!(
            config.model,
            PathBuf::from("/file/m.gguf"),
            "empty env is unset"
        );
        assert_eq!(config.listen.to_string(), "tcp:127.0.0.1:3");
        assert_eq!(config.limits.max_tokens, 128);
        assert_eq!(
            config.attester,
            AttesterChoice::Dev {
                pki_dir: PathBuf::from("/file/pki")
            }
        );
        assert_eq!(config.server_names, ["enclave.example"]);
    }

    #[test]
    fn environment_lists_and_numbers() {
        let layer = env(&[
            ("ENCLAVE_SERVER_NAMES", "a.example, b.example"),
            ("ENCLAVE_MAX_QUEUED_REQUESTS", "7"),
        ]);
        assert_eq!(
            layer.server_names,
            Some(vec!["a.example".to_owned(), "b.example".to_owned()])
        );
        assert_eq!(layer.max_queued_requests, Some(7));
        let map: HashMap<&str, &str> = [("ENCLAVE_MAX_TOKENS", "many")].into_iter().collect();
        assert_eq!(
            ConfigLayer::from_env(|name| map.get(name).map(|v| (*v).to_owned())),
            Err(ConfigError::InvalidNumber {
                name: "max_tokens",
                found: "many".to_owned()
            })
        );
    }

    #[test]
    fn invalid_settings_are_named() {
        let mut layer = minimal();
        layer.model = None;
        assert_eq!(
            layer.resolve(),
            Err(ConfigError::Missing {
                name: "model",
                flag: "model",
                env: "ENCLAVE_MODEL"
            })
        );
        for bad in ["", "b179", &HASH.replace('b', "g"), &format!("{HASH}00")] {
            let layer = ConfigLayer {
                model_sha256: Some(bad.to_owned()),
                ..minimal()
            };
            assert!(
                matches!(layer.resolve(), Err(ConfigError::InvalidModelHash { .. })),
                "{bad}"
            );
        }
        let upper = ConfigLayer {
            model_sha256: Some(HASH.to_uppercase()),
            ..minimal()
        };
        assert_eq!(
            upper.resolve().expect("upper case hex").model_sha256,
            minimal().resolve().expect("valid").model_sha256
        );
        let layer = ConfigLayer {
            listen: Some("vsock:0".to_owned()),
            ..minimal()
        };
        assert!(matches!(
            layer.resolve(),
            Err(ConfigError::InvalidListen(_))
        ));
        let layer = ConfigLayer {
            attester: Some("tpm".to_owned()),
            ..minimal()
        };
        assert_eq!(
            layer.resolve(),
            Err(ConfigError::InvalidAttester {
                found: "tpm".to_owned()
            })
        );
        let layer = ConfigLayer {
            attester: Some("dev".to_owned()),
            ..minimal()
        };
        assert_eq!(layer.resolve(), Err(ConfigError::DevPkiMissing));
        let layer = ConfigLayer {
            dev_pki: Some(PathBuf::from("/pki")),
            ..minimal()
        };
        assert_eq!(layer.resolve(), Err(ConfigError::DevPkiWithNsm));
        let layer = ConfigLayer {
            max_concurrent_requests: Some(0),
            ..minimal()
        };
        assert!(matches!(
            layer.resolve(),
            Err(ConfigError::OutOfRange {
                name: "max_concurrent_requests",
                ..
            })
        ));
        let layer = ConfigLayer {
            max_request_bytes: Some(MAX_REQUEST_BYTES_CEILING + 1),
            ..minimal()
        };
        assert!(matches!(
            layer.resolve(),
            Err(ConfigError::OutOfRange {
                name: "max_request_bytes",
                ..
            })
        ));
        let layer = ConfigLayer {
            server_names: Some(vec![" ".to_owned()]),
            ..minimal()
        };
        assert_eq!(layer.resolve(), Err(ConfigError::EmptyServerName));
        let layer = ConfigLayer {
            header_timeout_ms: Some(50),
            ..minimal()
        };
        assert!(matches!(
            layer.resolve(),
            Err(ConfigError::OutOfRange {
                name: "header_timeout_ms",
                min: 100,
                ..
            })
        ));
        let timeout = env(&[("ENCLAVE_HEADER_TIMEOUT_MS", "2500")]);
        assert_eq!(
            minimal()
                .overlay(timeout)
                .resolve()
                .expect("valid")
                .limits
                .header_timeout_ms,
            2500
        );
    }

    #[test]
    fn unknown_toml_keys_are_refused() {
        assert!(matches!(
            ConfigLayer::from_toml("modle = \"typo\"\n", Path::new("enclave.toml")),
            Err(ConfigError::FileInvalid { .. })
        ));
        assert!(matches!(
            ConfigLayer::from_toml_file(Path::new("/nonexistent/enclave.toml")),
            Err(ConfigError::FileUnreadable { .. })
        ));
    }
}
