//! host-proxy: the untrusted process on the parent EC2 instance. It accepts TCP connections
//! from clients and relays their bytes, unread, to one of several enclaves (vsock in
//! production, TCP in development): TLS runs end to end between the client and the enclave, so
//! the proxy only ever sees ciphertext. It balances by least connections, checks backends
//! actively, fails over when a connect fails, and exports Prometheus metrics.
//!
//! Run it as `host-proxy --listen <addr:port> --backend vsock:<cid>:<port> ... [--config <toml>]`;
//! `host-proxy.example.toml` in this crate lists every setting.
//!
//! The chain relayer, which submits the enclave's own fulfilment signatures to the
//! `InferenceRelay` contract, is a separate crate (`relayer/`).
#![forbid(unsafe_code)]

pub mod address;
pub mod config;
pub mod metrics;
pub mod pool;
pub mod proxy;
pub mod relay;

pub use address::{BackendAddress, BackendAddressError, BackendStream};
pub use config::{ConfigError, ConfigLayer, LogFormat, ProxyConfig};
pub use pool::{ConnectCheck, HealthCheck, HealthCheckError, Pool};
pub use proxy::{BoundProxy, ProxyError};
