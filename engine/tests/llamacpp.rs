//! Agreement with llama.cpp, the reference peer, on the outputs it recorded in
//! `tests/data/llamacpp/` (see the README there for how they were produced).

mod common;

use inference_engine::{GenerationParams, GenerationRequest, Prompt, argmax};
use serde_json::Value;

/// Steps where either engine's top-2 logit margin is at or below this are near-ties, whose
/// order legitimately differs between implementations.
const NEAR_TIE: f32 = 0.25;

/// Logits are compared after removing each vector's mean: a constant shift of every logit
/// changes no probability, and llama.cpp's f16 flash-attention path shifts them by up to
/// ~0.4 against an f32 computation. Bounds on the centered difference, for logits spanning
/// roughly [-23, 26]; llama.cpp's own attention variants differ by up to max 1.1 / rms 0.4
/// (uncentered, see the README of the reference data).
const FIRST_LOGITS_MAX_ABS_DIFF: f32 = 1.0;
/// Allowed root-mean-square of the centered difference over the whole vocabulary.
const FIRST_LOGITS_RMS_DIFF: f32 = 0.25;

fn reference() -> Value {
    let path = common::reference_dir().join("reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "llama.cpp reference data missing at {} ({error}): it is recorded by the script \
             described in tests/data/llamacpp/README.md",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("reference.json is valid JSON")
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("an array of ids")
        .iter()
        .map(|v| v.as_u64().expect("an id") as u32)
        .collect()
}

fn top_two(logits: &[f32]) -> (usize, f32) {
    let best = argmax(logits);
    let second = logits
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != best)
        .map(|(_, &l)| l)
        .fold(f32::NEG_INFINITY, f32::max);
    (best, logits[best] - second)
}

#[test]
fn prompt_token_ids_equal_llama_cpp() {
    let reference = reference();
    let cases = reference["tokenization"]
        .as_array()
        .expect("tokenization cases");
    assert!(!cases.is_empty());
    let tokenizer = common::engine().tokenizer();
    let mut failures = Vec::new();
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let add_special = case["add_special"].as_bool().unwrap_or(true);
        let parse_special = case["parse_special"].as_bool().unwrap_or(true);
        let expected = ids(&case["ids"]);
        let got = tokenizer
            .encode(text, add_special, parse_special)
            .expect("encodes");
        if got != expected {
            failures.push(format!(
                "{}: {text:?}\n  llama.cpp {expected:?}\n  engine    {got:?}",
                case["name"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn greedy_prompts_tokenize_like_llama_cpp() {
    let engine = common::engine();
    for case in reference()["greedy"].as_array().expect("greedy cases") {
        let Some(text) = case["prompt_text"].as_str() else {
            continue;
        };
        let got = engine
            .tokenizer()
            .encode(text, true, true)
            .expect("encodes");
        assert_eq!(got, ids(&case["prompt_ids"]), "{}", case["name"]);
    }
}

#[test]
fn teacher_forced_top_tokens_equal_llama_cpp_away_from_near_ties() {
    let engine = common::engine();
    let vocab = engine.tokenizer().vocab_size();
    let mut compared = 0;
    for case in reference()["greedy"].as_array().expect("greedy cases") {
        let prompt = ids(&case["prompt_ids"]);
        let steps = case["tokens"].as_array().expect("tokens");
        let forced: Vec<u32> = steps
            .iter()
            .map(|s| s["id"].as_u64().expect("id") as u32)
            .collect();
        let mut sequence = prompt.clone();
        sequence.extend(&forced);
        // The last forced token's own logits are not needed.
        sequence.pop();
        let logits = engine.logits_for_all_positions(&sequence).expect("forward");
        for (i, step) in steps.iter().enumerate() {
            let position = prompt.len() - 1 + i;
            let row = &logits[position * vocab..(position + 1) * vocab];
            let (ours, our_margin) = top_two(row);
            let their_margin = (step["logit"].as_f64().expect("logit")
                - step["second_logit"].as_f64().expect("second_logit"))
                as f32;
            if our_margin > NEAR_TIE && their_margin > NEAR_TIE {
                assert_eq!(
                    ours as u32, forced[i],
                    "{} step {i}: engine top {ours} (margin {our_margin}), llama.cpp {} (margin {their_margin})",
                    case["name"], forced[i]
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 0, "no step was compared");
}

#[test]
fn free_running_greedy_output_equals_llama_cpp_up_to_its_first_near_tie() {
    let engine = common::engine();
    for case in reference()["greedy"].as_array().expect("greedy cases") {
        let prompt = ids(&case["prompt_ids"]);
        let steps = case["tokens"].as_array().expect("tokens");
        let expected: Vec<u32> = steps
            .iter()
            .map(|s| s["id"].as_u64().expect("id") as u32)
            .collect();
        let agree_until = steps
            .iter()
            .position(|s| {
                let margin =
                    s["logit"].as_f64().unwrap_or(0.0) - s["second_logit"].as_f64().unwrap_or(0.0);
                margin as f32 <= NEAR_TIE
            })
            .unwrap_or(steps.len());
        let output = engine
            .generate(
                GenerationRequest {
                    prompt: Prompt::Tokens(prompt),
                    params: GenerationParams {
                        max_tokens: agree_until,
                        ignore_eos: true,
                        ..GenerationParams::default()
                    },
                },
                |_| true,
            )
            .expect("generates");
        assert_eq!(
            output.output_ids[..agree_until],
            expected[..agree_until],
            "{}: first {agree_until} tokens differ",
            case["name"]
        );
    }
}

#[test]
fn first_position_logits_agree_with_llama_cpp() {
    let engine = common::engine();
    let vocab = engine.tokenizer().vocab_size();
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in reference()["greedy"].as_array().expect("greedy cases") {
        let name = case["name"].as_str().expect("name");
        let path = common::reference_dir().join(format!("first_logits_{name}.f32"));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        assert_eq!(bytes.len(), vocab * 4, "{}", path.display());
        let theirs: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let prompt = ids(&case["prompt_ids"]);
        let logits = engine.logits_for_all_positions(&prompt).expect("forward");
        let ours = &logits[(prompt.len() - 1) * vocab..];
        let mean_shift = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| f64::from(a - b))
            .sum::<f64>()
            / vocab as f64;
        let mut max_diff = 0.0f32;
        let mut square_sum = 0.0f64;
        for (a, b) in ours.iter().zip(&theirs) {
            let diff = (a - b - mean_shift as f32).abs();
            max_diff = max_diff.max(diff);
            square_sum += f64::from(diff) * f64::from(diff);
        }
        let rms = (square_sum / vocab as f64).sqrt() as f32;
        let report = format!(
            "{name}: centered max |diff| {max_diff}, rms {rms}, mean shift {mean_shift:.3}"
        );
        eprintln!("{report}");
        if max_diff > FIRST_LOGITS_MAX_ABS_DIFF || rms > FIRST_LOGITS_RMS_DIFF {
            failures.push(report);
        }
        checked += 1;
    }
    assert!(checked > 0, "no first_logits_<name>.f32 file was found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
