//! Prompt and decode speed of the engine alone on the real model (no peer): a quick loop for
//! kernel work. The side-by-side comparison with llama.cpp is `engine/bench/compare_llamacpp.py`.
//!
//! `cargo bench -p inference-engine --bench decode -- [threads] [rounds]` (defaults 2 and 3);
//! the model is `ATTESTED_MODEL_PATH` or `.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf`, the
//! prompt `engine/bench/prompt_128.txt`, 64 greedy tokens with end-of-generation ignored.

use std::path::PathBuf;

use inference_engine::{
    Engine, EngineConfig, GenerationParams, GenerationRequest, NoProgress, Prompt,
};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let threads: usize = args
        .next()
        .map_or(2, |a| a.parse().expect("threads: a number"));
    let rounds: usize = args
        .next()
        .map_or(3, |a| a.parse().expect("rounds: a number"));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = std::env::var_os("ATTESTED_MODEL_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    let prompt = std::fs::read_to_string(root.join("bench/prompt_128.txt")).expect("prompt file");
    let config = EngineConfig {
        threads: Some(threads),
        context_length: Some(4096),
        ..EngineConfig::new(model)
    };
    let engine = Engine::load(&config, &mut NoProgress).expect("model loads");
    let mut prompt_rates = Vec::new();
    let mut decode_rates = Vec::new();
    for round in 0..rounds {
        let request = GenerationRequest {
            prompt: Prompt::Text(prompt.clone()),
            params: GenerationParams {
                max_tokens: 64,
                ignore_eos: true,
                ..GenerationParams::default()
            },
        };
        let output = engine.generate(request, |_| true).expect("generation");
        let t = output.timings;
        println!(
            "round {}: {} prompt tokens at {:.1} tok/s, {} generated, decode {:.1} tok/s",
            round + 1,
            output.prompt_tokens,
            t.prompt_tokens_per_s,
            output.completion_tokens,
            t.decode_tokens_per_s
        );
        prompt_rates.push(t.prompt_tokens_per_s);
        decode_rates.push(t.decode_tokens_per_s);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "threads {threads}: median prompt {:.1} tok/s, decode {:.1} tok/s",
        median(&mut prompt_rates),
        median(&mut decode_rates)
    );
}
