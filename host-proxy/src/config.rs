//! The proxy's configuration, from two layers (later wins): a TOML file (`--config`) and the
//! command line. Each layer is a [`ConfigLayer`] of optional settings; [`ConfigLayer::resolve`]
//! validates the merged result into a [`ProxyConfig`]. No setting is secret, so the effective
//! configuration is logged at start.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::address::BackendAddress;

/// Smallest relay buffer (per direction, per connection).
pub const MIN_BUFFER_BYTES: usize = 1024;
/// Largest relay buffer (per direction, per connection).
pub const MAX_BUFFER_BYTES: usize = 16 * 1024 * 1024;
/// Largest connection limit (far above what one instance's file descriptors allow).
pub const MAX_CONNECTIONS_CEILING: usize = 1_000_000;
/// Most pre-connected streams per backend and worker thread (each holds an enclave
/// connection while unused).
pub const MAX_PRECONNECT: usize = 64;
/// Most worker threads.
pub const MAX_THREADS: usize = 1024;
/// Longest a pre-connected stream may wait: the enclave closes a silent connection after its
/// handshake timeout (10 s by default), and the client needs that time for its handshake.
pub const MAX_PRECONNECT_AGE: Duration = Duration::from_secs(5);

/// How logs are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines with `key=value` fields.
    #[default]
    Text,
    /// One JSON object per line (for journald forwarding and log shippers).
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Where clients connect (TCP).
    pub listen: SocketAddr,
    /// The enclaves, in order of preference for ties.
    pub backends: Vec<BackendAddress>,
    /// Where the Prometheus metrics are served (`GET /metrics`), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Client connections open at once; more are accepted and closed at once (and counted).
    pub max_connections: usize,
    /// How long one backend connect may take before the next backend is tried.
    pub connect_timeout: Duration,
    /// A connection with no bytes moving in either direction for this long is closed.
    pub idle_timeout: Duration,
    /// Time between two active health checks of a backend.
    pub health_interval: Duration,
    /// How long one health check may take.
    pub health_timeout: Duration,
    /// Consecutive successful checks that bring a down backend back into the pool.
    pub healthy_after: u32,
    /// Consecutive failed checks that take a backend out of the pool.
    pub unhealthy_after: u32,
    /// Relay buffer per direction per connection, in bytes (bounds memory under backpressure).
    pub buffer_bytes: usize,
    /// On SIGTERM or Ctrl-C: how long open connections may finish before the proxy exits.
    pub drain_timeout: Duration,
    /// Connections per backend and worker thread opened ahead of clients (0: none), so that a
    /// client is relayed without waiting for a backend connect.
    pub preconnect: usize,
    /// A pre-connected stream older than this is closed unused; keep it well below the
    /// enclave's handshake timeout (10 s by default), which counts from the backend's accept.
    pub preconnect_max_age: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// Worker threads, each with its own event loop and its own listening socket on `listen`
    /// (`SO_REUSEPORT` when more than one), so that a connection is accepted, relayed and
    /// closed on one thread without waking another.
    pub threads: usize,
}

impl fmt::Display for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backends: Vec<String> = self.backends.iter().map(ToString::to_string).collect();
        write!(
            f,
            "listen={} backends=[{}] metrics={} max_connections={} connect_timeout={:?} \
             idle_timeout={:?} health_interval={:?} health_timeout={:?} healthy_after={} \
             unhealthy_after={} buffer_bytes={} drain_timeout={:?} preconnect={} \
             preconnect_max_age={:?} threads={}",
            self.listen,
            backends.join(","),
            self.metrics
                .map_or_else(|| "off".to_owned(), |address| address.to_string()),
            self.max_connections,
            self.connect_timeout,
            self.idle_timeout,
            self.health_interval,
            self.health_timeout,
            self.healthy_after,
            self.unhealthy_after,
            self.buffer_bytes,
            self.drain_timeout,
            self.preconnect,
            self.preconnect_max_age,
            self.threads,
        )
    }
}

/// One layer of optional settings (the TOML file's keys are the field names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    /// See [`ProxyConfig::listen`].
    pub listen: Option<SocketAddr>,
    /// See [`ProxyConfig::backends`]; a non-empty list replaces the lower layer's list.
    #[serde(default)]
    pub backends: Vec<BackendAddress>,
    /// See [`ProxyConfig::metrics`].
    pub metrics: Option<SocketAddr>,
    /// See [`ProxyConfig::max_connections`].
    pub max_connections: Option<usize>,
    /// See [`ProxyConfig::connect_timeout`] (`"2s"`, `"500ms"`, `"1m"`).
    pub connect_timeout: Option<DurationSetting>,
    /// See [`ProxyConfig::idle_timeout`].
    pub idle_timeout: Option<DurationSetting>,
    /// See [`ProxyConfig::health_interval`].
    pub health_interval: Option<DurationSetting>,
    /// See [`ProxyConfig::health_timeout`].
    pub health_timeout: Option<DurationSetting>,
    /// See [`ProxyConfig::healthy_after`].
    pub healthy_after: Option<u32>,
    /// See [`ProxyConfig::unhealthy_after`].
    pub unhealthy_after: Option<u32>,
    /// See [`ProxyConfig::buffer_bytes`].
    pub buffer_bytes: Option<usize>,
    /// See [`ProxyConfig::drain_timeout`].
    pub drain_timeout: Option<DurationSetting>,
    /// See [`ProxyConfig::log_format`].
    pub log_format: Option<LogFormat>,
    /// See [`ProxyConfig::preconnect`].
    pub preconnect: Option<usize>,
    /// See [`ProxyConfig::preconnect_max_age`].
    pub preconnect_max_age: Option<DurationSetting>,
    /// See [`ProxyConfig::threads`]; the default is the number of CPUs this process may use.
    pub threads: Option<usize>,
}

/// A duration written as a number and a unit: `250ms`, `2s`, `5m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct DurationSetting(pub Duration);

impl TryFrom<String> for DurationSetting {
    type Error = DurationError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        parse_duration(&input).map(Self)
    }
}

/// Why a duration does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("duration {input:?} must be a whole number followed by ms, s, m or h (e.g. 250ms, 30s)")]
pub struct DurationError {
    /// The input.
    pub input: String,
}

/// Parses `250ms`, `2s`, `5m`, `1h` (a whole number and a unit, nothing else).
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let error = || DurationError {
        input: input.to_owned(),
    };
    let digits_end = input
        .bytes()
        .position(|byte| !byte.is_ascii_digit())
        .ok_or_else(error)?;
    let (number, unit) = input.split_at(digits_end);
    if number.is_empty() {
        return Err(error());
    }
    let value: u64 = number.parse().map_err(|_| error())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(error()),
    };
    value
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(error)
}

/// Why the configuration is not usable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for this proxy.
    #[error("configuration file {path} is invalid: {source}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's error (names the key and line).
        source: Box<toml::de::Error>,
    },
    /// No listen address in any layer.
    #[error("no listen address: give --listen <addr:port> or `listen` in the configuration file")]
    MissingListen,
    /// No backend in any layer.
    #[error(
        "no backend: give at least one --backend tcp:<addr:port> or vsock:<cid>:<port>, or `backends` in the configuration file"
    )]
    NoBackends,
    /// The same backend is listed twice (it would get twice the share of connections).
    #[error("backend {backend} is listed more than once")]
    DuplicateBackend {
        /// The backend.
        backend: BackendAddress,
    },
    /// A setting that must be positive is zero.
    #[error("{setting} must be greater than zero")]
    Zero {
        /// The setting's name.
        setting: &'static str,
    },
    /// The connection limit is above [`MAX_CONNECTIONS_CEILING`].
    #[error("max_connections {value} must be at most {MAX_CONNECTIONS_CEILING}")]
    TooManyConnections {
        /// The value given.
        value: usize,
    },
    /// More worker threads than [`MAX_THREADS`].
    #[error("threads {value} must be at most {MAX_THREADS}")]
    TooManyThreads {
        /// The value given.
        value: usize,
    },
    /// More pre-connected streams per backend than [`MAX_PRECONNECT`].
    #[error("preconnect {value} must be at most {MAX_PRECONNECT}")]
    TooManyPreconnected {
        /// The value given.
        value: usize,
    },
    /// A pre-connected stream would be kept longer than [`MAX_PRECONNECT_AGE`].
    #[error("preconnect_max_age {value:?} must be at most {MAX_PRECONNECT_AGE:?}")]
    PreconnectTooOld {
        /// The value given.
        value: Duration,
    },
    /// The relay buffer size is outside the accepted range.
    #[error("buffer_bytes {value} must be from {MIN_BUFFER_BYTES} to {MAX_BUFFER_BYTES}")]
    BufferSize {
        /// The value given.
        value: usize,
    },
    /// The metrics listener would share the proxy's own address.
    #[error("metrics address {address} is the same as the listen address")]
    MetricsOnListenAddress {
        /// The address.
        address: SocketAddr,
    },
}

impl ConfigLayer {
    /// Reads a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| ConfigError::ParseFile {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// This layer with `over`'s settings on top (a setting `over` has wins).
    #[must_use]
    pub fn overlaid_with(self, over: Self) -> Self {
        Self {
            listen: over.listen.or(self.listen),
            backends: if over.backends.is_empty() {
                self.backends
            } else {
                over.backends
            },
            metrics: over.metrics.or(self.metrics),
            max_connections: over.max_connections.or(self.max_connections),
            connect_timeout: over.connect_timeout.or(self.connect_timeout),
            idle_timeout: over.idle_timeout.or(self.idle_timeout),
            health_interval: over.health_interval.or(self.health_interval),
            health_timeout: over.health_timeout.or(self.health_timeout),
            healthy_after: over.healthy_after.or(self.healthy_after),
            unhealthy_after: over.unhealthy_after.or(self.unhealthy_after),
            buffer_bytes: over.buffer_bytes.or(self.buffer_bytes),
            drain_timeout: over.drain_timeout.or(self.drain_timeout),
            log_format: over.log_format.or(self.log_format),
            preconnect: over.preconnect.or(self.preconnect),
            preconnect_max_age: over.preconnect_max_age.or(self.preconnect_max_age),
            threads: over.threads.or(self.threads),
        }
    }

    /// Validates the merged settings, filling defaults.
    pub fn resolve(self) -> Result<ProxyConfig, ConfigError> {
        let listen = self.listen.ok_or(ConfigError::MissingListen)?;
        if self.backends.is_empty() {
            return Err(ConfigError::NoBackends);
        }
        for (index, backend) in self.backends.iter().enumerate() {
            if self.backends[..index].contains(backend) {
                return Err(ConfigError::DuplicateBackend { backend: *backend });
            }
        }
        if let Some(address) = self.metrics
            && address == listen
            && address.port() != 0
        {
            return Err(ConfigError::MetricsOnListenAddress { address });
        }
        let duration = |value: Option<DurationSetting>,
                        default: Duration,
                        setting: &'static str|
         -> Result<Duration, ConfigError> {
            let value = value.map_or(default, |DurationSetting(value)| value);
            if value.is_zero() {
                return Err(ConfigError::Zero { setting });
            }
            Ok(value)
        };
        let positive = |value: Option<u32>, default: u32, setting: &'static str| {
            let value = value.unwrap_or(default);
            if value == 0 {
                return Err(ConfigError::Zero { setting });
            }
            Ok(value)
        };
        let max_connections = self.max_connections.unwrap_or(4096);
        if max_connections == 0 {
            return Err(ConfigError::Zero {
                setting: "max_connections",
            });
        }
        if max_connections > MAX_CONNECTIONS_CEILING {
            return Err(ConfigError::TooManyConnections {
                value: max_connections,
            });
        }
        let preconnect = self.preconnect.unwrap_or(0);
        if preconnect > MAX_PRECONNECT {
            return Err(ConfigError::TooManyPreconnected { value: preconnect });
        }
        let preconnect_max_age = duration(
            self.preconnect_max_age,
            Duration::from_secs(2),
            "preconnect_max_age",
        )?;
        if preconnect_max_age > MAX_PRECONNECT_AGE {
            return Err(ConfigError::PreconnectTooOld {
                value: preconnect_max_age,
            });
        }
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        if threads == 0 {
            return Err(ConfigError::Zero { setting: "threads" });
        }
        if threads > MAX_THREADS {
            return Err(ConfigError::TooManyThreads { value: threads });
        }
        let buffer_bytes = self.buffer_bytes.unwrap_or(64 * 1024);
        if !(MIN_BUFFER_BYTES..=MAX_BUFFER_BYTES).contains(&buffer_bytes) {
            return Err(ConfigError::BufferSize {
                value: buffer_bytes,
            });
        }
        Ok(ProxyConfig {
            listen,
            backends: self.backends,
            metrics: self.metrics,
            max_connections,
            connect_timeout: duration(
                self.connect_timeout,
                Duration::from_secs(2),
                "connect_timeout",
            )?,
            idle_timeout: duration(self.idle_timeout, Duration::from_secs(300), "idle_timeout")?,
            health_interval: duration(
                self.health_interval,
                Duration::from_secs(2),
                "health_interval",
            )?,
            health_timeout: duration(
                self.health_timeout,
                Duration::from_secs(1),
                "health_timeout",
            )?,
            healthy_after: positive(self.healthy_after, 1, "healthy_after")?,
            unhealthy_after: positive(self.unhealthy_after, 1, "unhealthy_after")?,
            buffer_bytes,
            drain_timeout: duration(self.drain_timeout, Duration::from_secs(30), "drain_timeout")?,
            log_format: self.log_format.unwrap_or_default(),
            preconnect,
            preconnect_max_age,
            threads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(text: &str) -> BackendAddress {
        text.parse().expect("backend")
    }

    #[test]
    fn durations_parse_with_units_only() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in [
            "", "5", "s", "ms", "-1s", "+1s", "1.5s", "1 s", "1sec", "1S", " 1s", "1s ",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must not parse");
        }
        assert!(parse_duration("99999999999999999999s").is_err());
        assert!(parse_duration("18446744073709551615h").is_err(), "overflow");
    }

    #[test]
    fn the_example_configuration_file_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/host-proxy.example.toml");
        let config = ConfigLayer::from_file(Path::new(path))
            .expect("example parses")
            .resolve()
            .expect("example is valid");
        assert_eq!(config.backends.len(), 2);
        assert_eq!(
            config.metrics,
            Some("127.0.0.1:9100".parse().expect("addr"))
        );
    }

    #[test]
    fn toml_file_resolves_with_defaults() {
        let layer = ConfigLayer::from_toml(
            r#"
            listen = "127.0.0.1:8443"
            backends = ["vsock:16:5005", "tcp:127.0.0.1:9000"]
            metrics = "127.0.0.1:9100"
            idle_timeout = "90s"
            log_format = "json"
            "#,
        )
        .expect("toml");
        let config = layer.resolve().expect("valid");
        assert_eq!(config.listen, "127.0.0.1:8443".parse().expect("addr"));
        assert_eq!(
            config.backends,
            vec![backend("vsock:16:5005"), backend("tcp:127.0.0.1:9000")]
        );
        assert_eq!(
            config.metrics,
            Some("127.0.0.1:9100".parse().expect("addr"))
        );
        assert_eq!(config.idle_timeout, Duration::from_secs(90));
        assert_eq!(config.connect_timeout, Duration::from_secs(2));
        assert_eq!(config.max_connections, 4096);
        assert_eq!(config.buffer_bytes, 64 * 1024);
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(config.to_string().contains("vsock:16:5005"));
    }

    #[test]
    fn toml_errors_name_the_problem() {
        let unknown = ConfigLayer::from_toml("listen = \"127.0.0.1:1\"\nbackend = []\n")
            .expect_err("unknown key");
        assert!(unknown.to_string().contains("backend"), "{unknown}");
        let bad_backend =
            ConfigLayer::from_toml("backends = [\"vsock:2:5005\"]\n").expect_err("host cid");
        assert!(bad_backend.to_string().contains("cid"), "{bad_backend}");
        let bad_duration = ConfigLayer::from_toml("idle_timeout = \"10\"\n").expect_err("no unit");
        assert!(
            bad_duration.to_string().contains("ms, s, m or h"),
            "{bad_duration}"
        );
    }

    #[test]
    fn command_line_layer_wins_and_replaces_backends() {
        let file = ConfigLayer {
            listen: Some("127.0.0.1:1".parse().expect("addr")),
            backends: vec![backend("tcp:127.0.0.1:2"), backend("tcp:127.0.0.1:3")],
            max_connections: Some(10),
            ..ConfigLayer::default()
        };
        let cli = ConfigLayer {
            backends: vec![backend("tcp:127.0.0.1:4")],
            max_connections: Some(20),
            ..ConfigLayer::default()
        };
        let config = file.clone().overlaid_with(cli).resolve().expect("valid");
        assert_eq!(config.listen, "127.0.0.1:1".parse().expect("addr"));
        assert_eq!(config.backends, vec![backend("tcp:127.0.0.1:4")]);
        assert_eq!(config.max_connections, 20);
        let kept = file
            .overlaid_with(ConfigLayer::default())
            .resolve()
            .expect("valid");
        assert_eq!(kept.backends.len(), 2);
    }

    #[test]
    fn invalid_settings_are_refused() {
        let base = ConfigLayer {
            listen: Some("127.0.0.1:1".parse().expect("addr")),
            backends: vec![backend("tcp:127.0.0.1:2")],
            ..ConfigLayer::default()
        };
        assert!(matches!(
            ConfigLayer {
                listen: None,
                ..base.clone()
            }
            .resolve(),
            Err(ConfigError::MissingListen)
        ));
        assert!(matches!(
            ConfigLayer {
                backends: vec![],
                ..base.clone()
            }
            .resolve(),
            Err(ConfigError::NoBackends)
        ));
        assert!(matches!(
            ConfigLayer {
                backends: vec![backend("tcp:127.0.0.1:2"), backend("tcp:127.0.0.1:2")],
                ..base.clone()
            }
            .resolve(),
            Err(ConfigError::DuplicateBackend { .. })
        ));
        assert!(matches!(
            ConfigLayer {
                max_connections: Some(0),
                ..base.clone()
            }
            .resolve(),
            Err(ConfigError::Zero {
                setting: "max_connections"
            })
        ));
        assert!(matches!(
            ConfigLayer {
                max_connections: Some(MAX_CONNECTIONS_CEILING + 1),
                ..base.clone()
            }
            .resolve(),
            Err(ConfigError::TooManyConnections { .. })
        ));
        assert!(matches!(
            ConfigLayer {
                preconnect: Some(MAX_PRECONNECT + 1),
                ..base.clone()
            }
            .resolve(),
            Err(ConfigError::TooManyPreconnected { .. })
        ));
        assert!(matches!(
            ConfigLayer {
                preconnect_max_age: Some(DurationSetting(
                    MAX_PRECONNECT_AGE + Duration::from_millis(1)
                )),
                ..base.clone()
            }
            .resolve(),
            Err(ConfigError::PreconnectTooOld { .. })
        ));
        assert!(matches!(
            ConfigLayer {
                preconnect_max_age: Some(DurationSetting(Duration::ZERO)),
                ..base.clone()
            }
            .resolve(),
            Err(ConfigError::Zero { .. })
        ));
        let resolved = base.clone().resolve().expect("defaults");
        assert_eq!(
            (resolved.preconnect, resolved.preconnect_max_age),
            (0, Duration::from_secs(2))
        );
        assert_eq!(
            resolved.threads,
            std::thread::available_parallelism().map_or(1, usize::from)
        );
        assert!(matches!(
            ConfigLayer {
                threads: Some(0),
                ..base.clone()
            }
            .resolve(),
            Err(ConfigError::Zero { setting: "threads" })
        ));
        assert!(matches!(
            ConfigLayer {
                threads: Some(MAX_THREADS + 1),
                ..base.clone()
            }
            .resolve(),
            Err(ConfigError::TooManyThreads { .. })
        ));
        assert!(matches!(
            ConfigLayer {
                idle_timeout: Some(DurationSetting(Duration::ZERO)),
                ..base.clone()
            }
            .resolve(),
            Err(ConfigError::Zero {
                setting: "idle_timeout"
            })
        ));
        assert!(matches!(
            ConfigLayer {
                healthy_after: Some(0),
                ..base.clone()
            }
            .resolve(),
            Err(ConfigError::Zero {
                setting: "healthy_after"
            })
        ));
        assert!(matches!(
            ConfigLayer {
                buffer_bytes: Some(100),
                ..base.clone()
            }
            .resolve(),
            Err(ConfigError::BufferSize { value: 100 })
        ));
        assert!(matches!(
            ConfigLayer {
                metrics: Some("127.0.0.1:1".parse().expect("addr")),
                ..base
            }
            .resolve(),
            Err(ConfigError::MetricsOnListenAddress { .. })
        ));
    }
}
