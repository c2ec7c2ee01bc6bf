//! The `enclave generate` command as a user (and the llama.cpp bench script) runs it: the real
//! binary on the real model.

mod common;

use std::process::{Command, Output};

use common::model_path;

const MODEL_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

fn enclave(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_enclave"))
        .args(args)
        .output()
        .expect("run the enclave binary")
}

fn expect_success(output: &Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn json_output_carries_ids_text_counts_and_timings() {
    let model = model_path();
    let output = enclave(&[
        "generate",
        "--model",
        model.to_str().expect("utf-8 path"),
        "--model-sha256",
        MODEL_SHA256,
        "--threads",
        "1",
        "--max-tokens",
        "6",
        "--ignore-eos",
        "--json",
        "The capital of France is",
    ]);
    expect_success(&output);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    let prompt_ids = json["prompt_ids"].as_array().expect("prompt_ids");
    let output_ids = json["output_ids"].as_array().expect("output_ids");
    assert_eq!(
        json["prompt_tokens"].as_u64(),
        Some(prompt_ids.len() as u64)
    );
    assert_eq!(json["completion_tokens"].as_u64(), Some(6));
    assert_eq!(output_ids.len(), 6);
    assert_eq!(json["finish_reason"], "length");
    assert_eq!(json["model_sha256"], MODEL_SHA256);
    assert!(!json["text"].as_str().expect("text").is_empty());
    for timing in [
        "load_ms",
        "prompt_ms",
        "decode_ms",
        "prompt_tokens_per_s",
        "decode_tokens_per_s",
    ] {
        let value = json["timings"][timing].as_f64();
        assert!(
            value.is_some_and(|v| v > 0.0),
            "timings.{timing}: {value:?}"
        );
    }
}

#[test]
fn chat_answers_in_plain_text() {
    let model = model_path();
    let output = enclave(&[
        "generate",
        "--model",
        model.to_str().expect("utf-8 path"),
        "--chat",
        "--max-tokens",
        "12",
        "What is the capital of France? Answer in one sentence.",
    ]);
    expect_success(&output);
    let answer = String::from_utf8(output.stdout).expect("utf-8 answer");
    assert!(answer.contains("Paris"), "answer: {answer}");
}

#[test]
fn a_wrong_model_hash_fails_with_both_hashes_and_a_non_zero_exit() {
    let model = model_path();
    let wrong = "00".repeat(32);
    let output = enclave(&[
        "generate",
        "--model",
        model.to_str().expect("utf-8 path"),
        "--model-sha256",
        &wrong,
        "hello",
    ]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no answer on a refused model");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&wrong), "{stderr}");
    assert!(stderr.contains(MODEL_SHA256), "{stderr}");
}

#[test]
fn usage_errors_exit_with_a_message() {
    let missing_model = enclave(&["generate", "--model", "/nonexistent/model.gguf", "hello"]);
    assert!(!missing_model.status.success());
    assert!(String::from_utf8_lossy(&missing_model.stderr).contains("/nonexistent/model.gguf"));

    let no_prompt = enclave(&["generate", "--model", "/nonexistent/model.gguf"]);
    assert!(!no_prompt.status.success());
    assert!(!no_prompt.stderr.is_empty());
}
