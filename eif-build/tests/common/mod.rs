//! Shared helpers: synthetic inputs and running the real `eif-build` binary.

#![allow(dead_code, unreachable_pub)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The `eif-build` binary under test.
pub fn eif_build() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eif-build"))
}

/// Runs a command and returns its output (stdout and stderr as text).
pub fn run(command: &mut Command) -> (Output, String, String) {
    let output = command.output().expect("run eif-build");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

/// Deterministic filler bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 131 + usize::from(seed) * 29 + 3) % 253) as u8)
        .collect()
}

/// A minimal statically linked x86_64 ELF executable: header, one `PT_LOAD`, `payload`.
pub fn static_elf(payload: &[u8]) -> Vec<u8> {
    let mut elf = Vec::new();
    elf.extend_from_slice(b"\x7fELF");
    elf.extend_from_slice(&[2, 1, 1, 0]); // 64-bit, little-endian, version 1, System V
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&62u16.to_le_bytes()); // x86_64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&0x40_0078u64.to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers right after this header
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes());
    elf.extend_from_slice(&64u16.to_le_bytes());
    elf.extend_from_slice(&56u16.to_le_bytes());
    elf.extend_from_slice(&1u16.to_le_bytes());
    elf.extend_from_slice(&[0; 6]);
    let total = (64 + 56 + payload.len()) as u64;
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R+X
    elf.extend_from_slice(&0u64.to_le_bytes());
    elf.extend_from_slice(&0x40_0000u64.to_le_bytes());
    elf.extend_from_slice(&0x40_0000u64.to_le_bytes());
    elf.extend_from_slice(&total.to_le_bytes());
    elf.extend_from_slice(&total.to_le_bytes());
    elf.extend_from_slice(&0x1000u64.to_le_bytes());
    elf.extend_from_slice(payload);
    elf
}

/// A set of synthetic build inputs in a temporary directory.
#[derive(Debug)]
pub struct Inputs {
    pub dir: TempDir,
    pub kernel: PathBuf,
    pub init: PathBuf,
    pub nsm: PathBuf,
    pub binary: PathBuf,
    pub model: PathBuf,
    pub model_sha256: String,
}

impl Inputs {
    /// Synthetic kernel, init, driver and binary; a model of `model_len` bytes.
    pub fn new(model_len: usize) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write an input");
            path
        };
        let kernel = write("bzImage", &pattern(70_001, 1));
        let init = write("init", &pattern(9_003, 2));
        let nsm = write("nsm.ko", &pattern(5_005, 3));
        let binary = write("enclave", &static_elf(&pattern(40_000, 4)));
        let model_bytes = pattern(model_len, 5);
        let model = write("model.gguf", &model_bytes);
        let model_sha256 = hex::encode(Sha256::digest(&model_bytes));
        Self {
            dir,
            kernel,
            init,
            nsm,
            binary,
            model,
            model_sha256,
        }
    }

    /// Replaces the model with `bytes` (and its hash).
    pub fn set_model(&mut self, bytes: &[u8]) {
        std::fs::write(&self.model, bytes).expect("write the model");
        self.model_sha256 = hex::encode(Sha256::digest(bytes));
    }

    /// The `eif-build build` command for these inputs, writing to `out`.
    pub fn build_command(&self, out: &Path) -> Command {
        let mut command = eif_build();
        command
            .arg("build")
            .arg("--kernel")
            .arg(&self.kernel)
            .arg("--init")
            .arg(&self.init)
            .arg("--nsm-module")
            .arg(&self.nsm)
            .arg("--enclave-bin")
            .arg(&self.binary)
            .arg("--model")
            .arg(&self.model)
            .arg("--model-sha256")
            .arg(&self.model_sha256)
            .arg("--out")
            .arg(out);
        command
    }

    /// Builds into `out` and returns the printed JSON; panics with stderr on failure.
    pub fn build(&self, out: &Path) -> serde_json::Value {
        build_ok(&mut self.build_command(out))
    }
}

/// Runs a build command that must succeed and returns its JSON.
pub fn build_ok(command: &mut Command) -> serde_json::Value {
    let (output, stdout, stderr) = run(command);
    assert!(output.status.success(), "eif-build build failed: {stderr}");
    serde_json::from_str(&stdout).expect("build prints JSON")
}

/// `eif-build measure <image>`'s JSON; panics with stderr on failure.
pub fn measure(image: &Path) -> serde_json::Value {
    let (output, stdout, stderr) = run(eif_build().arg("measure").arg(image));
    assert!(
        output.status.success(),
        "eif-build measure failed: {stderr}"
    );
    serde_json::from_str(&stdout).expect("measure prints JSON")
}

/// One PCR (`"PCR0"`, ...) of printed JSON.
pub fn pcr(json: &serde_json::Value, name: &str) -> String {
    json["Measurements"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {json}"))
        .to_string()
}
