//! The shipped deployment files (`deploy/`) parse, agree with each other, and name only
//! binaries, flags and settings that exist; `run-enclave.sh` runs against a stand-in nitro-cli.
//!
//! The flag and key lists below mirror `enclave serve --help` and `host-proxy --help` (issues 4
//! and 6; `enclave/src/config.rs`, `host-proxy/src/main.rs`, `host-proxy/src/config.rs`) as of
//! this writing, kept here so this test does not build those crates; a renamed flag there must
//! be renamed here and in `deploy/`.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eif_build::image::{DEFAULT_VSOCK_PORT, enclave_cmd, enclave_config, parent_vsock_port};
use serde::Deserialize as _;

const HOST_PROXY_BIN: &str = "/usr/local/bin/host-proxy";
const HOST_PROXY_FLAGS: &[&str] = &[
    "--config",
    "--listen",
    "--backend",
    "--metrics",
    "--max-connections",
    "--connect-timeout",
    "--idle-timeout",
    "--health-interval",
    "--health-timeout",
    "--healthy-after",
    "--unhealthy-after",
    "--buffer-bytes",
    "--drain-timeout",
    "--log-format",
    "--log-level",
    "--threads",
];
const HOST_PROXY_KEYS: &[&str] = &[
    "listen",
    "backends",
    "metrics",
    "max_connections",
    "connect_timeout",
    "idle_timeout",
    "health_interval",
    "health_timeout",
    "healthy_after",
    "unhealthy_after",
    "buffer_bytes",
    "drain_timeout",
    "log_format",
    "preconnect",
    "preconnect_max_age",
];
const ENCLAVE_SERVE_FLAGS: &[&str] = &[
    "--config",
    "--model",
    "--model-sha256",
    "--listen",
    "--attester",
    "--dev-pki",
    "--server-names",
    "--max-request-bytes",
    "--max-concurrent-requests",
    "--max-queued-requests",
    "--max-tokens",
    "--header-timeout-ms",
    "--parent-listen",
    "--max-connections",
    "--attestations-per-second",
    "--attestations-per-minute-per-connection",
    "--onchain-relay",
];
const ENCLAVE_CONFIG_KEYS: &[&str] = &[
    "model",
    "model_sha256",
    "listen",
    "attester",
    "dev_pki",
    "server_names",
    "max_request_bytes",
    "max_concurrent_requests",
    "max_queued_requests",
    "max_tokens",
    "header_timeout_ms",
    "parent_listen",
    "max_connections",
    "attestations_per_second",
    "attestations_per_minute_per_connection",
    "onchain_relay",
];
/// `nitro-cli run-enclave` flags a production enclave may use (`--debug-mode` and
/// `--attach-console` are absent on purpose: a debug enclave attests with zero PCRs).
const RUN_ENCLAVE_FLAGS: &[&str] = &[
    "--eif-path",
    "--enclave-name",
    "--enclave-cid",
    "--cpu-count",
    "--memory",
    "--cpu-ids",
];
const SCRIPT_SETTINGS: &[&str] = &[
    "EIF_PATH",
    "ENCLAVE_NAME",
    "ENCLAVE_CID",
    "ENCLAVE_CPUS",
    "ENCLAVE_MEMORY_MIB",
];

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

fn text(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

/// A systemd unit: section -> key -> values (keys may repeat).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// Parses systemd's INI dialect: `[Section]`, `Key=Value`, `#`/`;` comments, `\` continuations.
fn parse_unit(source: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section = None::<String>;
    let mut pending = String::new();
    for (number, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
        {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            pending.push(' ');
            continue;
        }
        let full = format!("{pending}{line}");
        pending.clear();
        if let Some(name) = full.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_string());
            unit.entry(name.to_string()).or_default();
            continue;
        }
        let (key, value) = full
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: not Key=Value: {raw:?}", number + 1));
        let section = section
            .clone()
            .unwrap_or_else(|| panic!("line {}: key outside a section", number + 1));
        unit.entry(section)
            .or_default()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    assert!(pending.is_empty(), "dangling continuation");
    unit
}

fn one<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a str {
    let values = &unit[section][key];
    assert_eq!(
        values.len(),
        1,
        "[{section}] {key} appears {} times",
        values.len()
    );
    &values[0]
}

/// `KEY=VALUE` lines (systemd `Environment=` values and environment files).
fn parse_env_lines<'a>(lines: impl Iterator<Item = &'a str>) -> BTreeMap<String, String> {
    lines
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The `--flag`s of a command line, checked against `known`.
fn assert_flags_known(args: &[String], known: &[&str], what: &str) {
    for arg in args.iter().filter(|a| a.starts_with("--")) {
        let flag = arg.split('=').next().unwrap_or(arg);
        assert!(known.contains(&flag), "{what}: unknown flag {flag}");
    }
}

/// Checks a host-proxy TOML configuration; returns its `listen` port.
fn check_host_proxy_toml(source: &str, cid: u32) -> u16 {
    let table: toml::Table = toml::from_str(source).expect("host-proxy TOML parses");
    for key in table.keys() {
        assert!(
            HOST_PROXY_KEYS.contains(&key.as_str()),
            "unknown host-proxy key {key}"
        );
    }
    let backends = table["backends"].as_array().expect("backends is a list");
    assert!(!backends.is_empty());
    for backend in backends {
        let backend = backend.as_str().unwrap();
        let parts: Vec<&str> = backend.split(':').collect();
        assert_eq!(parts.len(), 3, "{backend}: vsock:<cid>:<port>");
        assert_eq!(parts[0], "vsock");
        assert_eq!(
            parts[1].parse::<u32>().unwrap(),
            cid,
            "{backend}: the enclave's CID"
        );
        assert_eq!(
            parts[2].parse::<u32>().unwrap(),
            DEFAULT_VSOCK_PORT,
            "{backend}: the image's port"
        );
    }
    for key in [
        "connect_timeout",
        "idle_timeout",
        "health_interval",
        "health_timeout",
        "drain_timeout",
        "preconnect_max_age",
    ] {
        if let Some(value) = table.get(key) {
            let value = value.as_str().unwrap();
            assert!(
                ["ms", "s", "m"].iter().any(|unit| value
                    .strip_suffix(unit)
                    .is_some_and(|n| n.parse::<u64>().is_ok())),
                "{key} = {value:?} is not a duration"
            );
        }
    }
    assert!(["text", "json"].contains(&table["log_format"].as_str().unwrap()));
    let metrics: std::net::SocketAddr = table["metrics"].as_str().unwrap().parse().unwrap();
    assert_ne!(metrics.port(), 0);
    let listen: std::net::SocketAddr = table["listen"].as_str().unwrap().parse().unwrap();
    listen.port()
}

#[test]
fn systemd_units_run_the_right_binaries_with_known_flags() {
    let enclave = parse_unit(&text("systemd/attested-enclave.service"));
    assert_eq!(
        one(&enclave, "Service", "ExecStart"),
        "/opt/attested-inference/bin/run-enclave.sh"
    );
    let stop: Vec<&str> = one(&enclave, "Service", "ExecStop")
        .split_whitespace()
        .collect();
    assert_eq!(
        stop,
        [
            "/usr/bin/nitro-cli",
            "terminate-enclave",
            "--enclave-name",
            "${ENCLAVE_NAME}"
        ]
    );
    assert_eq!(one(&enclave, "Service", "Restart"), "on-failure");
    assert_eq!(
        one(&enclave, "Unit", "Requires"),
        "nitro-enclaves-allocator.service"
    );
    let defaults = parse_env_lines(enclave["Service"]["Environment"].iter().map(String::as_str));
    let mut keys: Vec<&str> = defaults.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = SCRIPT_SETTINGS.to_vec();
    expected.sort_unstable();
    assert_eq!(
        keys, expected,
        "the unit sets exactly the script's settings"
    );
    assert_eq!(
        one(&enclave, "Service", "EnvironmentFile"),
        "-/etc/attested-inference/enclave.env"
    );
    let env_file = parse_env_lines(text("systemd/attested-enclave.env").lines());
    assert_eq!(
        env_file, defaults,
        "the example environment file matches the defaults"
    );

    let proxy = parse_unit(&text("systemd/host-proxy.service"));
    let exec: Vec<String> = one(&proxy, "Service", "ExecStart")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(exec[0], HOST_PROXY_BIN);
    assert_flags_known(&exec[1..], HOST_PROXY_FLAGS, "host-proxy.service");
    let config_at = exec.iter().position(|a| a == "--config").expect("--config");
    assert_eq!(
        exec[config_at + 1],
        "/etc/attested-inference/host-proxy.toml"
    );
    assert!(text("host-proxy/host-proxy.toml").contains("/etc/attested-inference/host-proxy.toml"));
    assert_eq!(
        one(&proxy, "Service", "DynamicUser"),
        "yes",
        "the proxy must not run as root"
    );
    assert!(one(&proxy, "Service", "RestrictAddressFamilies").contains("AF_VSOCK"));
    assert_eq!(
        one(&proxy, "Service", "AmbientCapabilities"),
        "CAP_NET_BIND_SERVICE"
    );
    assert!(one(&proxy, "Unit", "After").contains("attested-enclave.service"));
    for unit in [&enclave, &proxy] {
        assert_eq!(one(unit, "Install", "WantedBy"), "multi-user.target");
    }
}

#[test]
fn host_proxy_and_allocator_configs_match_the_enclave_settings() {
    let env_file = parse_env_lines(text("systemd/attested-enclave.env").lines());
    let cid: u32 = env_file["ENCLAVE_CID"].parse().unwrap();
    let memory: u64 = env_file["ENCLAVE_MEMORY_MIB"].parse().unwrap();
    let cpus: u64 = env_file["ENCLAVE_CPUS"].parse().unwrap();
    assert!(cid >= 4, "CIDs 0-3 are reserved");
    assert_eq!(
        check_host_proxy_toml(&text("host-proxy/host-proxy.toml"), cid),
        443
    );

    let allocator: serde_yaml::Mapping =
        serde_yaml::from_str(&text("nitro/allocator.yaml")).unwrap();
    for key in allocator.keys() {
        let key = key.as_str().unwrap();
        assert!(
            ["memory_mib", "cpu_count", "cpu_pool"].contains(&key),
            "unknown allocator key {key}"
        );
    }
    assert!(allocator["memory_mib"].as_u64().unwrap() >= memory);
    let allocated_cpus = allocator["cpu_count"].as_u64().unwrap();
    assert!(allocated_cpus >= cpus && allocated_cpus.is_multiple_of(2));
}

/// relayer.env against the others: the relayer reaches the enclave through host-proxy's port,
/// and its parent channel straight over vsock at the CID attested-enclave.env gives it and the
/// port the image listens on; host-proxy never forwards the parent channel.
#[test]
fn the_relayer_reaches_the_enclave_where_the_proxy_and_the_image_put_it() {
    let relayer = parse_env_lines(text("relayer/relayer.env").lines());
    let enclave = parse_env_lines(text("systemd/attested-enclave.env").lines());
    let proxy: toml::Table = toml::from_str(&text("host-proxy/host-proxy.toml")).unwrap();
    let listen: std::net::SocketAddr = proxy["listen"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        relayer["RELAYER_ENCLAVE_URL"],
        format!("https://127.0.0.1:{}", listen.port()),
        "the relayer talks to the enclave through host-proxy's listen port"
    );
    let parent_port = parent_vsock_port(DEFAULT_VSOCK_PORT);
    assert_eq!(
        relayer["RELAYER_ENCLAVE_PARENT"],
        format!("vsock:{}:{parent_port}", enclave["ENCLAVE_CID"]),
        "the parent channel: the enclave's CID, the image's parent port"
    );
    let image: toml::Table = toml::from_str(&enclave_config(&[7; 32], DEFAULT_VSOCK_PORT)).unwrap();
    assert_eq!(
        image["parent_listen"].as_str(),
        Some(format!("vsock:{parent_port}").as_str())
    );
    for backend in proxy["backends"].as_array().unwrap() {
        assert!(
            !backend
                .as_str()
                .unwrap()
                .ends_with(&format!(":{parent_port}")),
            "host-proxy must not forward the parent channel: {backend:?}"
        );
    }
    let relayer_unit = parse_unit(&text("systemd/attested-relayer.service"));
    assert!(
        one(&relayer_unit, "Service", "RestrictAddressFamilies").contains("AF_VSOCK"),
        "the relayer needs vsock for the parent channel"
    );
    // Every relayer setting the file names is one the relayer reads.
    for key in relayer.keys() {
        assert!(
            [
                "RELAYER_RPC_URL",
                "RELAYER_RELAY",
                "RELAYER_REGISTRY",
                "RELAYER_NITRO_REGISTRAR",
                "RELAYER_ENCLAVE_URL",
                "RELAYER_ENCLAVE_PARENT",
                "RELAYER_OPERATOR_KEY",
                "RELAYER_VERIFIER_KEY",
                "PCR0",
                "PCR1",
                "PCR2",
                "MODEL_SHA256",
            ]
            .contains(&key.as_str()),
            "relayer.env sets {key}, which nothing reads"
        );
    }
}

#[test]
fn the_image_starts_enclave_serve_with_known_settings() {
    let cmd = enclave_cmd();
    let args: Vec<String> = cmd.lines().map(str::to_string).collect();
    assert_eq!(args[0], "/usr/bin/enclave");
    assert_eq!(args[1], "serve");
    assert_flags_known(&args[2..], ENCLAVE_SERVE_FLAGS, "the image's /cmd");
    let config: toml::Table =
        toml::from_str(&enclave_config(&[7; 32], DEFAULT_VSOCK_PORT)).unwrap();
    for key in config.keys() {
        assert!(
            ENCLAVE_CONFIG_KEYS.contains(&key.as_str()),
            "unknown enclave setting {key}"
        );
    }
    assert_eq!(
        config["attester"].as_str(),
        Some("nsm"),
        "production images attest with the NSM"
    );
}

#[test]
fn kubernetes_manifest_requests_the_device_and_hugepages_and_passes_tls_through() {
    let source = text("kubernetes/attested-inference.yaml");
    let documents: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&source)
        .map(|doc| serde_yaml::Value::deserialize(doc).expect("each document parses"))
        .collect();
    let find = |kind: &str| {
        documents
            .iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    assert_eq!(documents.len(), 4);
    let namespace = find("Namespace")["metadata"]["name"].as_str().unwrap();
    for doc in &documents[1..] {
        assert_eq!(doc["metadata"]["namespace"].as_str(), Some(namespace));
    }

    let deployment = find("Deployment");
    assert_eq!(deployment["apiVersion"], "apps/v1");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["aws-nitro-enclaves-k8s-dp"], "enabled");
    let containers = pod["containers"].as_sequence().unwrap();
    let container = |name: &str| {
        containers
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    };

    let launcher = container("enclave-launcher");
    assert_eq!(
        launcher["command"][0],
        "/opt/attested-inference/bin/run-enclave.sh"
    );
    let env: BTreeMap<String, String> = launcher["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut names: Vec<&str> = env.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = SCRIPT_SETTINGS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected);
    for side in ["limits", "requests"] {
        let resources = &launcher["resources"][side];
        assert_eq!(resources["aws.ec2.nitro/nitro_enclaves"], "1", "{side}");
        assert_eq!(
            resources["hugepages-2Mi"].as_str(),
            Some(format!("{}Mi", env["ENCLAVE_MEMORY_MIB"]).as_str()),
            "{side}: hugepages = the enclave's memory"
        );
    }
    let hugepages_mount = &launcher["volumeMounts"][0];
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == hugepages_mount["name"])
        .unwrap();
    assert_eq!(volume["emptyDir"]["medium"], "HugePages-2Mi");

    let proxy = container("host-proxy");
    let command: Vec<String> = proxy["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(command[0], HOST_PROXY_BIN);
    assert_flags_known(&command[1..], HOST_PROXY_FLAGS, "host-proxy container");
    let config_dir = proxy["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(command[2], format!("{config_dir}/host-proxy.toml"));
    assert_eq!(proxy["securityContext"]["runAsNonRoot"], true);
    let config_map = find("ConfigMap");
    let listen_port = check_host_proxy_toml(
        config_map["data"]["host-proxy.toml"].as_str().unwrap(),
        env["ENCLAVE_CID"].parse().unwrap(),
    );
    let tls_port = proxy["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tls")
        .unwrap();
    assert_eq!(
        tls_port["containerPort"].as_u64(),
        Some(u64::from(listen_port))
    );

    let service = find("Service");
    let annotations = &service["metadata"]["annotations"];
    assert_eq!(
        annotations["service.beta.kubernetes.io/aws-load-balancer-type"],
        "external"
    );
    assert_eq!(
        annotations["service.beta.kubernetes.io/aws-load-balancer-backend-protocol"],
        "tcp"
    );
    assert_eq!(service["spec"]["type"], "LoadBalancer");
    let port = &service["spec"]["ports"][0];
    assert_eq!(port["protocol"], "TCP");
    assert_eq!(port["port"].as_u64(), Some(443));
    assert_eq!(port["targetPort"], "tls");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert!(!source.contains("--debug-mode"));
}

/// The stand-in nitro-cli (`tests/data/fake-nitro-cli`), keeping its state in `dir` and
/// reporting the enclave as running for `polls` checks after `run-enclave`.
fn fake_nitro_cli(command: &mut Command, dir: &Path, polls: u32) {
    command
        .env(
            "NITRO_CLI",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fake-nitro-cli"),
        )
        .env("FAKE_NITRO_DIR", dir)
        .env("FAKE_NITRO_POLLS", polls.to_string());
}

fn run_enclave_script(dir: &Path, polls: u32) -> std::process::Child {
    let eif = dir.join("enclave.eif");
    std::fs::write(&eif, b"image").unwrap();
    let mut command = Command::new(deploy("bin/run-enclave.sh"));
    fake_nitro_cli(&mut command, dir, polls);
    command
        .env("EIF_PATH", &eif)
        .env("ENCLAVE_MEMORY_MIB", "2048")
        .env("POLL_SECONDS", "0.05")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run deploy/bin/run-enclave.sh")
}

fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("run-enclave.sh did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_enclave_script_starts_without_debug_mode_and_fails_when_the_enclave_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = run_enclave_script(dir.path(), 3);
    let status = wait_bounded(&mut child, Duration::from_secs(20));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "a stopped enclave is a failure for the supervisor"
    );
    assert!(stderr.contains("is no longer running"), "{stderr}");
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines[0], "describe-enclaves", "checks for a leftover first");
    let run: Vec<String> = lines[1].split_whitespace().map(str::to_string).collect();
    assert_eq!(run[0], "run-enclave");
    assert_flags_known(&run[1..], RUN_ENCLAVE_FLAGS, "run-enclave.sh");
    assert_eq!(
        lines[1],
        format!(
            "run-enclave --eif-path {} --enclave-name attested-inference --enclave-cid 16 --cpu-count 2 --memory 2048",
            dir.path().join("enclave.eif").display()
        )
    );
    assert_eq!(
        lines.iter().filter(|l| **l == "describe-enclaves").count(),
        1 + 4
    );
}

#[test]
fn run_enclave_script_terminates_the_enclave_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = run_enclave_script(dir.path(), u32::MAX);
    let calls = dir.path().join("calls");
    let start = Instant::now();
    while !std::fs::read_to_string(&calls)
        .unwrap_or_default()
        .contains("run-enclave")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the enclave never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let calls = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(
        calls.lines().last(),
        Some("terminate-enclave --enclave-name attested-inference")
    );
}

#[test]
fn run_enclave_script_treats_a_failing_nitro_cli_as_unknown_then_gone() {
    let dir = tempfile::tempdir().unwrap();
    let eif = dir.path().join("enclave.eif");
    std::fs::write(&eif, b"image").unwrap();
    let mut command = Command::new(deploy("bin/run-enclave.sh"));
    fake_nitro_cli(&mut command, dir.path(), u32::MAX);
    let output = command
        .env("FAKE_NITRO_DESCRIBE_FAILS", "1")
        .env("EIF_PATH", &eif)
        .env("POLL_SECONDS", "0.05")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    let verbs: Vec<&str> = calls
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    // Unknown at start: terminate a possible leftover; then three failed checks in a row.
    assert_eq!(
        verbs,
        [
            "describe-enclaves",
            "terminate-enclave",
            "run-enclave",
            "describe-enclaves",
            "describe-enclaves",
            "describe-enclaves"
        ]
    );
}

#[test]
fn run_enclave_script_refuses_a_missing_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(deploy("bin/run-enclave.sh"));
    fake_nitro_cli(&mut command, dir.path(), 1);
    let output = command
        .env("EIF_PATH", dir.path().join("missing.eif"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no image at"));
    assert!(!dir.path().join("calls").exists(), "nitro-cli must not run");
}
