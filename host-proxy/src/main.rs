//! The `host-proxy` binary: parse the configuration, set up logging, run the proxy until
//! SIGTERM or Ctrl-C. The work happens in the `host_proxy` library.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use host_proxy::config::{DurationSetting, parse_duration};
use host_proxy::{BackendAddress, BoundProxy, ConfigLayer, LogFormat, ProxyConfig};

/// Relays client TCP connections, unread, to attested enclaves (vsock or TCP), with
/// least-connections balancing, health checks and failover.
#[derive(Debug, Parser)]
#[command(name = "host-proxy", version)]
struct Cli {
    /// TOML configuration file; the options below override its settings.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Where clients connect, e.g. 0.0.0.0:443 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// An enclave: vsock:<cid>:<port> or tcp:<addr:port>; repeat for several (replaces the
    /// file's list).
    #[arg(long = "backend", value_name = "ADDRESS")]
    backends: Vec<BackendAddress>,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    /// Client connections open at once; more are closed at once [default: 4096].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Time allowed for one backend connect before the next backend is tried [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    connect_timeout: Option<DurationSetting>,
    /// Close a connection when no byte moves either way for this long [default: 300s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    idle_timeout: Option<DurationSetting>,
    /// Time between health checks of each backend [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    health_interval: Option<DurationSetting>,
    /// Time allowed for one health check [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    health_timeout: Option<DurationSetting>,
    /// Passed checks in a row that bring a backend back [default: 1].
    #[arg(long, value_name = "N")]
    healthy_after: Option<u32>,
    /// Failed checks in a row that take a backend out [default: 1].
    #[arg(long, value_name = "N")]
    unhealthy_after: Option<u32>,
    /// Relay buffer per direction per connection, in bytes [default: 65536].
    #[arg(long, value_name = "BYTES")]
    buffer_bytes: Option<usize>,
    /// On SIGTERM or Ctrl-C, time open connections get to finish [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    drain_timeout: Option<DurationSetting>,
    /// Connections per backend and worker thread opened ahead of clients, so a client does
    /// not wait for a backend connect (0: none) [default: 0].
    #[arg(long, value_name = "N")]
    preconnect: Option<usize>,
    /// Close a pre-connected stream unused after this long; keep it well below the enclave's
    /// handshake timeout [default: 2s, at most 5s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    preconnect_max_age: Option<DurationSetting>,
    /// Log format on stderr [default: text].
    #[arg(long, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Most verbose log level: error, warn, info, debug (one line per connection), trace.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    log_level: tracing::Level,
    /// Worker threads, each with its own event loop and listening socket [default: the
    /// number of CPUs this process may use].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

fn duration(text: &str) -> Result<DurationSetting, String> {
    parse_duration(text)
        .map(DurationSetting)
        .map_err(|error| error.to_string())
}

impl Cli {
    fn layer(&self) -> ConfigLayer {
        ConfigLayer {
            listen: self.listen,
            backends: self.backends.clone(),
            metrics: self.metrics,
            max_connections: self.max_connections,
            connect_timeout: self.connect_timeout,
            idle_timeout: self.idle_timeout,
            health_interval: self.health_interval,
            health_timeout: self.health_timeout,
            healthy_after: self.healthy_after,
            unhealthy_after: self.unhealthy_after,
            buffer_bytes: self.buffer_bytes,
            drain_timeout: self.drain_timeout,
            log_format: self.log_format,
            preconnect: self.preconnect,
            preconnect_max_age: self.preconnect_max_age,
            threads: self.threads,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("host-proxy: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format, cli.log_level);
    // Worker 0 runs on this thread; the proxy starts the other workers' threads.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("host-proxy: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let proxy = match BoundProxy::bind(config).await {
            Ok(proxy) => proxy,
            Err(error) => {
                eprintln!("host-proxy: {error}");
                return ExitCode::FAILURE;
            }
        };
        // Machine-readable readiness on stdout (port 0 resolves here); logs go to stderr.
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on {}", proxy.listen_address());
        if let Some(address) = proxy.metrics_address() {
            let _ = writeln!(stdout, "metrics on {address}");
        }
        let _ = writeln!(stdout, "ready");
        let _ = stdout.flush();
        drop(stdout);
        match proxy.run(shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("host-proxy: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

fn load_config(cli: &Cli) -> Result<ProxyConfig, host_proxy::ConfigError> {
    let file = match &cli.config {
        Some(path) => ConfigLayer::from_file(path)?,
        None => ConfigLayer::default(),
    };
    file.overlaid_with(cli.layer()).resolve()
}

fn init_logging(format: LogFormat, level: tracing::Level) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        // Colours only on a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        _ => builder.init(),
    }
}

/// Completes on SIGTERM (systemd stop) or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the proxy");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
