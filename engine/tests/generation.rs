//! Generation on the real model: greedy and sampled decoding, limits, stop sequences,
//! streaming, context errors, and batched decoding equal to one-at-a-time decoding.

mod common;

use std::sync::{Arc, Mutex};

use inference_engine::{
    ChatMessage, EngineError, FinishReason, GenerationEvent, GenerationParams, GenerationRequest,
    LogitsWanted, Prompt, Role, SamplingParams, Scheduler, SchedulerConfig, SequenceChunk, argmax,
};

fn chat(text: &str) -> Prompt {
    Prompt::Chat(vec![ChatMessage::new(Role::User, text)])
}

fn request(prompt: Prompt, max_tokens: usize) -> GenerationRequest {
    GenerationRequest {
        prompt,
        params: GenerationParams {
            max_tokens,
            ..GenerationParams::default()
        },
    }
}

#[test]
fn greedy_generation_is_deterministic_and_streams_the_same_text() {
    let engine = common::engine();
    let deltas = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&deltas);
    let first = engine
        .generate(
            request(chat("What is the capital of France?"), 12),
            move |d| {
                sink.lock().expect("not poisoned").push(d.to_owned());
                true
            },
        )
        .expect("generates");
    let second = engine
        .generate(request(chat("What is the capital of France?"), 12), |_| {
            true
        })
        .expect("generates");
    assert_eq!(first.output_ids, second.output_ids);
    assert_eq!(first.text, deltas.lock().expect("not poisoned").concat());
    assert_eq!(first.prompt_tokens, first.prompt_ids.len());
    assert_eq!(first.completion_tokens, first.output_ids.len());
    assert!(first.completion_tokens <= 12);
}

#[test]
fn max_tokens_and_ignore_eos_give_an_exact_length() {
    let engine = common::engine();
    let mut params = GenerationParams {
        max_tokens: 5,
        ignore_eos: true,
        ..GenerationParams::default()
    };
    let output = engine
        .generate(
            GenerationRequest {
                prompt: Prompt::Text("The quick brown fox".to_owned()),
                params: params.clone(),
            },
            |_| true,
        )
        .expect("generates");
    assert_eq!(output.completion_tokens, 5);
    assert_eq!(output.finish_reason, FinishReason::Length);

    params.max_tokens = 0;
    let none = engine
        .generate(
            GenerationRequest {
                prompt: Prompt::Text("The quick brown fox".to_owned()),
                params,
            },
            |_| true,
        )
        .expect("generates");
    assert_eq!(none.completion_tokens, 0);
    assert_eq!(none.text, "");
}

#[test]
fn generation_ends_at_the_end_of_turn_token() {
    let engine = common::engine();
    let output = engine
        .generate(request(chat("Say just the word yes."), 64), |_| true)
        .expect("generates");
    assert_eq!(output.finish_reason, FinishReason::Stop);
    let last = *output.output_ids.last().expect("some output");
    assert!(engine.tokenizer().is_end_of_generation(last));
    assert!(!output.text.contains("<|im_end|>"));
}

#[test]
fn stop_sequences_end_generation_and_are_not_returned() {
    let engine = common::engine();
    let free = engine
        .generate(
            request(chat("Count from 1 to 10, separated by commas."), 30),
            |_| true,
        )
        .expect("generates");
    // Stop at the text the model produced anyway, wherever token boundaries fall.
    let position = free.text.find('5').expect("the count reaches 5");
    let mut stopped_request = request(chat("Count from 1 to 10, separated by commas."), 30);
    stopped_request.params.stop = vec!["5".to_owned()];
    let stopped = engine
        .generate(stopped_request, |_| true)
        .expect("generates");
    assert_eq!(stopped.finish_reason, FinishReason::Stop);
    assert_eq!(stopped.text, free.text[..position]);
}

#[test]
fn a_prompt_longer_than_the_context_is_a_clear_error() {
    let engine = common::engine();
    let too_long = vec![17u32; engine.context_length()];
    match engine.generate(request(Prompt::Tokens(too_long), 1), |_| true) {
        Err(EngineError::PromptTooLong {
            prompt_tokens,
            context_length,
            max_prompt_tokens,
        }) => {
            assert_eq!(prompt_tokens, context_length);
            assert_eq!(max_prompt_tokens, context_length - 1);
        }
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
    assert!(matches!(
        engine.generate(request(Prompt::Text(String::new()), 1), |_| true),
        Err(EngineError::EmptyPrompt)
    ));
    assert!(matches!(
        engine.generate(request(Prompt::Tokens(vec![1_000_000]), 1), |_| true),
        Err(EngineError::TokenOutOfRange { .. })
    ));
}

#[test]
fn sampling_is_reproducible_with_a_seed() {
    let engine = common::engine();
    let sampled = |seed| {
        let mut r = request(chat("Write a short poem about the sea."), 16);
        r.params.sampling = SamplingParams {
            temperature: 1.0,
            top_p: 0.95,
            top_k: 50,
            repetition_penalty: 1.1,
            seed,
            ..SamplingParams::greedy()
        };
        engine.generate(r, |_| true).expect("generates").output_ids
    };
    assert_eq!(sampled(42), sampled(42));
    let others: Vec<_> = (43..46).map(sampled).collect();
    assert!(
        others.iter().any(|o| *o != sampled(42)),
        "different seeds never changed the output"
    );
}

#[test]
fn a_sink_returning_false_cancels() {
    let engine = common::engine();
    let output = engine
        .generate(request(chat("Tell me a long story."), 50), |_| false)
        .expect("generates");
    assert_eq!(output.finish_reason, FinishReason::Cancelled);
    assert!(output.completion_tokens < 50);
}

#[test]
fn incremental_decoding_matches_a_full_forward_pass() {
    let engine = common::engine();
    let tokens = engine
        .tokenizer()
        .encode(
            "The capital of France is Paris, and the capital of",
            false,
            true,
        )
        .expect("encodes");
    let vocab = engine.tokenizer().vocab_size();
    let all = engine.logits_for_all_positions(&tokens).expect("forward");
    let mut cache = engine.new_cache();
    let split = tokens.len() / 2;
    let mut chunks = [SequenceChunk {
        tokens: &tokens[..split],
        cache: &mut cache,
        logits: LogitsWanted::None,
    }];
    engine.forward(&mut chunks).expect("forward");
    for (i, token) in tokens[split..].iter().enumerate() {
        let mut chunks = [SequenceChunk {
            tokens: std::slice::from_ref(token),
            cache: &mut cache,
            logits: LogitsWanted::Last,
        }];
        let logits = engine.forward(&mut chunks).expect("forward").remove(0);
        let position = split + i;
        let expected = &all[position * vocab..(position + 1) * vocab];
        let worst = logits
            .iter()
            .zip(expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-3,
            "position {position}: max logit difference {worst}"
        );
        assert_eq!(argmax(&logits), argmax(expected));
    }
}

#[test]
fn batched_requests_give_the_same_greedy_output_as_single_ones() {
    let engine = common::engine();
    let prompts = [
        chat("What is 2 + 2?"),
        Prompt::Text("Once upon a time".to_owned()),
        chat("Name a color."),
    ];
    let single: Vec<_> = prompts
        .iter()
        .map(|p| {
            engine
                .generate(request(p.clone(), 10), |_| true)
                .expect("generates")
        })
        .collect();

    // The scheduler owns an Arc; load a second engine for it (the shared one is 'static).
    let config = inference_engine::EngineConfig {
        threads: Some(common::TEST_THREADS),
        ..inference_engine::EngineConfig::new(common::model_path())
    };
    let shared = Arc::new(
        inference_engine::Engine::load(&config, &mut inference_engine::NoProgress).expect("loads"),
    );
    let scheduler = Scheduler::start(shared, SchedulerConfig::default()).expect("starts");
    let handles: Vec<_> = prompts
        .iter()
        .map(|p| scheduler.submit(request(p.clone(), 10)).expect("accepted"))
        .collect();
    for (handle, expected) in handles.into_iter().zip(&single) {
        let mut streamed = String::new();
        let finished = loop {
            match handle.recv().expect("scheduler alive") {
                GenerationEvent::Delta(text) => streamed.push_str(&text),
                GenerationEvent::Finished(output) => break output,
                other => panic!("unexpected event {other:?}"),
            }
        };
        assert_eq!(finished.output_ids, expected.output_ids);
        assert_eq!(finished.text, expected.text);
        assert_eq!(streamed, expected.text);
    }
}

#[test]
fn scheduler_cancels_dropped_requests_and_reports_bad_ones_at_submission() {
    let config = inference_engine::EngineConfig {
        threads: Some(common::TEST_THREADS),
        context_length: Some(64),
        ..inference_engine::EngineConfig::new(common::model_path())
    };
    let engine = Arc::new(
        inference_engine::Engine::load(&config, &mut inference_engine::NoProgress).expect("loads"),
    );
    let scheduler =
        Scheduler::start(Arc::clone(&engine), SchedulerConfig::default()).expect("starts");
    assert!(matches!(
        scheduler.submit(request(Prompt::Tokens(vec![17; 64]), 4)),
        Err(EngineError::PromptTooLong { .. })
    ));
    let mut bad = request(chat("hi"), 4);
    bad.params.sampling.top_p = 2.0;
    assert!(matches!(
        scheduler.submit(bad),
        Err(EngineError::InvalidParameter { name: "top_p", .. })
    ));

    let cancelled = scheduler
        .submit(request(chat("Tell me a long story."), 40))
        .expect("accepted");
    cancelled.cancel();
    let output = cancelled.wait().expect("finishes");
    assert_eq!(output.finish_reason, FinishReason::Cancelled);

    // The context window (64) ends a long generation with `length`.
    let long = scheduler
        .submit(GenerationRequest {
            prompt: Prompt::Text("One, two, three,".to_owned()),
            params: GenerationParams {
                max_tokens: 1000,
                ignore_eos: true,
                ..GenerationParams::default()
            },
        })
        .expect("accepted");
    let output = long.wait().expect("finishes");
    assert_eq!(output.finish_reason, FinishReason::Length);
    assert_eq!(output.prompt_tokens + output.completion_tokens, 64);
    assert_eq!(scheduler.pending(), 0);
}

#[test]
fn scheduler_bound_holds_under_simultaneous_submits() {
    let config = inference_engine::EngineConfig {
        threads: Some(common::TEST_THREADS),
        ..inference_engine::EngineConfig::new(common::model_path())
    };
    let engine = Arc::new(
        inference_engine::Engine::load(&config, &mut inference_engine::NoProgress).expect("loads"),
    );
    let limit = 3;
    let scheduler = Scheduler::start(
        engine,
        SchedulerConfig {
            max_batch: 1,
            max_pending: limit,
        },
    )
    .expect("starts");
    // Sixteen threads submit at once, each with a prompt long enough that tokenising it takes
    // a while: the slot must be taken before that work, or several would pass the bound.
    let prompt = "Count the words in this sentence, please. ".repeat(40);
    let barrier = std::sync::Barrier::new(16);
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    scheduler.submit(request(Prompt::Text(prompt.clone()), 64))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("no panic"))
            .collect()
    });
    let accepted = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let refused = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(EngineError::QueueFull { .. })))
        .count();
    assert!(
        (1..=limit).contains(&accepted),
        "accepted {accepted} of 16 with a bound of {limit}"
    );
    assert_eq!(accepted + refused, 16);
    assert!(scheduler.pending() <= limit);
    // Handles dropped here cancel the accepted requests.
}
