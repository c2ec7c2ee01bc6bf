//! `enclave serve` as a process: it prints its effective configuration and a line once it
//! listens (with the address actually bound), answers over TLS, and stops on SIGTERM; a model
//! whose hash does not match stops it before it listens (and before any key or CA exists).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::https::hex;
use common::{SMOLLM2_SHA256, TempDir, model_path};

fn enclave() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_enclave"));
    // Only the command line configures these runs.
    for (_, variable) in enclave::config::ENV_VARS {
        command.env_remove(variable);
    }
    command
}

#[test]
fn a_wrong_model_hash_stops_the_server_before_it_listens() {
    let directory = TempDir::new();
    let pki = directory.path().join("pki");
    let mut wrong = SMOLLM2_SHA256;
    wrong[31] ^= 0x01;
    let output = enclave()
        .args(["serve", "--model"])
        .arg(model_path())
        .args([
            "--model-sha256",
            &hex(&wrong),
            "--listen",
            "tcp:127.0.0.1:0",
        ])
        .args(["--attester", "dev", "--dev-pki"])
        .arg(&pki)
        .stdin(Stdio::null())
        .output()
        .expect("run enclave");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("hash mismatch"), "{stderr}");
    assert!(stdout.contains("effective configuration"), "{stdout}");
    assert!(!stdout.contains("listening on"), "{stdout}");
    assert!(!pki.exists(), "no CA is created before the model check");
}

#[test]
fn serve_prints_its_configuration_listens_and_stops_on_sigterm() {
    let directory = TempDir::new();
    let pki = directory.path().join("pki");
    let config = directory.path().join("enclave.toml");
    std::fs::write(
        &config,
        format!(
            "model = \"{}\"\nmodel_sha256 = \"{}\"\nlisten = \"tcp:127.0.0.1:1\"\nmax_tokens = 64\n",
            model_path().display(),
            hex(&SMOLLM2_SHA256)
        ),
    )
    .expect("write config");
    let mut child = enclave()
        .args(["serve", "--config"])
        .arg(&config)
        // The command line wins over the file.
        .args([
            "--listen",
            "tcp:127.0.0.1:0",
            "--attester",
            "dev",
            "--dev-pki",
        ])
        .arg(&pki)
        .env("ENCLAVE_MAX_QUEUED_REQUESTS", "5")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn enclave");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let listening = loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).expect("read") == 0 {
            let mut stderr = String::new();
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut stderr);
            panic!("exited before listening:\n{printed}\n{stderr}");
        }
        printed.push_str(&line);
        if line.starts_with("listening on ") {
            break line;
        }
        assert!(Instant::now() < deadline, "no listening line:\n{printed}");
    };
    assert!(printed.contains("max_tokens = 64"), "{printed}");
    assert!(printed.contains("max_queued_requests = 5"), "{printed}");
    assert!(
        printed.contains(&format!("model_sha256 = {}", hex(&SMOLLM2_SHA256))),
        "{printed}"
    );
    let root = pki.join("root.pem");
    assert!(
        listening.contains(&root.display().to_string()),
        "{listening}"
    );
    assert!(root.is_file());
    let address: std::net::SocketAddr = listening
        .trim_start_matches("listening on tcp:")
        .split_whitespace()
        .next()
        .expect("address")
        .parse()
        .expect("socket address");
    assert_ne!(address.port(), 0, "the real port is printed");
    // Something accepts there.
    std::net::TcpStream::connect(address).expect("the server accepts connections");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{status:?}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
