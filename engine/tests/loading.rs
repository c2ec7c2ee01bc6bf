//! Loading: the hash covers exactly the parsed bytes, a mismatch is refused with both
//! hashes in the error, and the tokenizer and template come from the metadata.

mod common;

use inference_engine::{
    ChatMessage, Engine, EngineConfig, EngineError, ModelFile, ModelHash, NoProgress, Role,
};

#[test]
fn the_loaded_model_reports_the_hash_of_its_bytes() {
    let engine = common::engine();
    assert_eq!(engine.model_sha256().to_hex(), common::MODEL_SHA256);
    let config = engine.model().config();
    assert_eq!(config.layers, 30);
    assert_eq!(config.vocab_size, 49152);
}

#[test]
fn a_wrong_expected_hash_is_refused_and_both_hashes_are_shown() {
    let mut wrong = ModelHash::from_hex(common::MODEL_SHA256).expect("valid hex");
    wrong.0[0] ^= 0xFF;
    let config = EngineConfig {
        expected_sha256: Some(wrong),
        threads: Some(1),
        ..EngineConfig::new(common::model_path())
    };
    match Engine::load(&config, &mut NoProgress) {
        Err(EngineError::ModelHashMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, wrong.to_hex());
            assert_eq!(actual, common::MODEL_SHA256);
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
}

#[test]
fn malformed_hashes_and_missing_files_are_clear_errors() {
    assert!(matches!(
        ModelHash::from_hex("abc"),
        Err(EngineError::InvalidExpectedHash { .. })
    ));
    assert!(matches!(
        ModelHash::from_hex(&"zz".repeat(32)),
        Err(EngineError::InvalidExpectedHash { .. })
    ));
    let missing = EngineConfig::new("/nonexistent/model.gguf");
    assert!(matches!(
        Engine::load(&missing, &mut NoProgress),
        Err(EngineError::ModelRead { .. })
    ));
}

#[test]
fn bytes_that_are_not_gguf_are_refused() {
    let result = ModelFile::from_bytes("garbage.gguf".into(), b"not a gguf file".to_vec(), None);
    assert!(
        matches!(result, Err(EngineError::GgufParse(_))),
        "{result:?}"
    );
}

#[test]
fn a_truncated_model_is_refused() {
    let bytes = std::fs::read(common::model_path()).expect("readable model");
    let truncated = bytes[..bytes.len() / 2].to_vec();
    let file = ModelFile::from_bytes("truncated.gguf".into(), truncated, None)
        .expect("the header is intact");
    // The header parses, but tensors beyond the cut are refused when loaded.
    assert!(file.tensor("output_norm.weight").is_err());
    assert!(file.tensor_bytes("output_norm.weight").is_none());
}

#[test]
fn control_tokens_digits_and_bos_follow_the_metadata() {
    let tokenizer = common::engine().tokenizer();
    // The vocabulary's own entries: id 1 is `<|im_start|>`, id 2 `<|im_end|>` (the EOS).
    assert_eq!(tokenizer.token_text(1), Some("<|im_start|>"));
    assert_eq!(
        tokenizer
            .encode("<|im_start|>", true, true)
            .expect("encodes"),
        [1]
    );
    assert!(
        tokenizer
            .encode("<|im_start|>", true, false)
            .expect("encodes")
            .len()
            > 1
    );
    assert_eq!(tokenizer.eos_id(), Some(2));
    assert!(tokenizer.is_end_of_generation(2));
    // `tokenizer.ggml.add_bos_token` is false for this model.
    assert!(!tokenizer.adds_bos());
    // The smollm pre-tokenizer splits digits one by one.
    let digits = tokenizer.encode("12345", true, true).expect("encodes");
    assert_eq!(digits.len(), 5);
    for (id, digit) in digits.iter().zip(["1", "2", "3", "4", "5"]) {
        assert_eq!(tokenizer.token_text(*id), Some(digit));
    }
}

#[test]
fn decoding_inverts_encoding_for_unicode_and_code() {
    let tokenizer = common::engine().tokenizer();
    for text in [
        "Hello, world!",
        "Ünïcödé — 日本語 🎉",
        "fn main() {\n    println!(\"{}\", 42);\n}\n",
        "  leading and trailing spaces  ",
    ] {
        let ids = tokenizer.encode(text, false, false).expect("encodes");
        assert_eq!(tokenizer.decode(&ids).expect("decodes"), text);
    }
}

#[test]
fn the_chat_template_comes_from_the_model_and_adds_its_default_system_prompt() {
    let engine = common::engine();
    let user_only = engine
        .render_chat(&[ChatMessage::new(Role::User, "Hi")])
        .expect("renders");
    assert!(
        user_only.starts_with("<|im_start|>system\n"),
        "{user_only:?}"
    );
    assert!(user_only.contains("SmolLM"), "{user_only:?}");
    assert!(user_only.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));

    let with_system = engine
        .render_chat(&[
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, "Hi"),
            ChatMessage::new(Role::Assistant, "Hello."),
            ChatMessage::new(Role::User, "Bye"),
        ])
        .expect("renders");
    assert_eq!(
        with_system,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
         <|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n\
         <|im_start|>assistant\n"
    );
}
