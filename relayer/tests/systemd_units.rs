//! The shipped systemd units (`deploy/systemd/attested-relayer.service`,
//! `attested-register.service`) run this binary with arguments it accepts: each `ExecStart` is
//! expanded with the example `deploy/relayer/relayer.env` the way systemd does (`${VAR}`) and
//! run against an enclave address where nothing listens. Parsing must succeed (clap exits 2 on a
//! bad argument); the run must then fail on the connection, with no key on the command line.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

fn deploy_file(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn environment_file() -> BTreeMap<String, String> {
    deploy_file("relayer/relayer.env")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line.split_once('=').expect("KEY=VALUE");
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

/// The unit's `ExecStart` words, `${VAR}` replaced from `environment`.
fn exec_start(unit: &str, environment: &BTreeMap<String, String>) -> Vec<String> {
    let text = deploy_file(unit);
    assert!(
        text.contains("EnvironmentFile=/etc/attested-inference/relayer.env"),
        "{unit} reads relayer.env"
    );
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("{unit} has no ExecStart"));
    line.split_whitespace()
        .map(|word| {
            let mut word = word.to_owned();
            while let Some(start) = word.find("${") {
                let end = start + word[start..].find('}').expect("closing brace");
                let name = &word[start + 2..end];
                let value = environment
                    .get(name)
                    .unwrap_or_else(|| panic!("{unit} uses ${{{name}}}, which relayer.env lacks"));
                word.replace_range(start..=end, value);
            }
            word
        })
        .collect()
}

fn closed_port() -> u16 {
    // Bound and dropped: nothing listens there afterwards.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("bind")
}

fn run_unit(unit: &str, subcommand: &str) {
    run_unit_with(unit, subcommand, &[]);
}

/// [`run_unit`] with `overrides` of the test keys (an empty value: the key as shipped, unset).
fn run_unit_with(unit: &str, subcommand: &str, overrides: &[(&str, &str)]) {
    let mut environment = environment_file();
    let words = exec_start(unit, &environment);
    assert_eq!(
        words[0], "/usr/local/bin/relayer",
        "{unit} runs the relayer binary"
    );
    assert_eq!(words[1], subcommand, "{unit}");
    assert!(
        !words.iter().any(|word| word.contains("KEY")),
        "{unit}: keys never go on the command line"
    );
    let test_key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    environment.insert("RELAYER_OPERATOR_KEY".into(), test_key.into());
    environment.insert("RELAYER_VERIFIER_KEY".into(), test_key.into());
    for (key, value) in overrides {
        environment.insert((*key).into(), (*value).into());
    }
    environment.insert(
        "RELAYER_ENCLAVE_URL".into(),
        format!("https://127.0.0.1:{}", closed_port()),
    );
    environment.insert(
        "RELAYER_ENCLAVE_PARENT".into(),
        format!("tcp:127.0.0.1:{}", closed_port()),
    );
    let state = std::env::temp_dir().join(format!("relayer-unit-{}", std::process::id()));
    let arguments: Vec<String> = words[1..]
        .iter()
        .map(|word| {
            word.replace(
                "/var/lib/attested-relayer/state.json",
                &state.display().to_string(),
            )
        })
        .collect();
    let output = Command::new(env!("CARGO_BIN_EXE_relayer"))
        .args(&arguments)
        .env_clear()
        .envs(&environment)
        .output()
        .expect("run the relayer");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{unit}: the arguments parse and the run fails on the unreachable enclave: {stderr}"
    );
    assert!(stderr.contains("enclave"), "{unit}: {stderr}");
    assert!(
        !state.exists(),
        "no state file before the enclave is attested"
    );
}

#[test]
fn the_relayer_unit_runs_relayer_run_with_accepted_arguments() {
    run_unit("systemd/attested-relayer.service", "run");
}

#[test]
fn the_registration_unit_runs_relayer_register_with_accepted_arguments() {
    run_unit("systemd/attested-register.service", "register");
    let timer = deploy_file("systemd/attested-register.timer");
    assert!(timer.contains("OnUnitActiveSec=12h"));
    // Renewed well before the registration (two days) expires.
    let unit = deploy_file("systemd/attested-register.service");
    assert!(unit.contains("--validity-secs 172800"));
}

/// On the verifier's machine `relayer.env` leaves `RELAYER_OPERATOR_KEY=` empty: the
/// registration unit must then pay with the verifier key, not refuse the empty operator key.
#[test]
fn the_registration_unit_runs_with_the_operator_key_left_empty_as_shipped() {
    run_unit_with(
        "systemd/attested-register.service",
        "register",
        &[("RELAYER_OPERATOR_KEY", "")],
    );
}
