//! The OpenAI request and response shapes of `/v1/chat/completions` and `/v1/completions`.
//!
//! Requests are checked field by field from the parsed JSON (not with a derived
//! deserializer) so that every error names its parameter: unknown keys are ignored (OpenAI
//! clients send fields this server has no use for), a known key with the wrong type or an
//! out-of-range value is a 400 naming it, and a feature the server does not implement
//! (tools, logprobs, n > 1, ...) is a 400 rather than being silently ignored.

use inference_engine::{ChatMessage, GenerationParams, Prompt, Role, SamplingParams};
use serde::Serialize;
use serde_json::{Map, Value};

use super::errors::ApiError;

/// Most stop sequences in one request (OpenAI's limit).
pub(crate) const MAX_STOP_SEQUENCES: usize = 4;
/// `max_tokens` of `/v1/completions` when the request gives none (OpenAI's default).
pub(crate) const COMPLETIONS_DEFAULT_MAX_TOKENS: u32 = 16;

/// Which completion endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/completions`.
    Completions,
}

impl Endpoint {
    /// The request field holding the prompt.
    pub(crate) fn prompt_param(self) -> &'static str {
        match self {
            Self::Chat => "messages",
            Self::Completions => "prompt",
        }
    }

    /// The prefix of response ids.
    pub(crate) fn id_prefix(self) -> &'static str {
        match self {
            Self::Chat => "chatcmpl-",
            Self::Completions => "cmpl-",
        }
    }
}

/// A validated completion request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CompletionRequest {
    pub(crate) endpoint: Endpoint,
    pub(crate) model: String,
    pub(crate) prompt: Prompt,
    pub(crate) params: GenerationParams,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
}

/// Parses and validates a request body. `random_seed` is used when sampling without a seed;
/// `max_tokens_limit` is the server's cap.
pub(crate) fn parse_request(
    endpoint: Endpoint,
    body: &[u8],
    max_tokens_limit: u32,
    random_seed: u64,
) -> Result<CompletionRequest, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(ApiError::invalid_json)?;
    let Value::Object(fields) = value else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    let fields = Fields(&fields);

    let model = fields
        .string("model")?
        .ok_or_else(|| ApiError::invalid_param("model", "missing required parameter `model`"))?
        .to_owned();
    let prompt = match endpoint {
        Endpoint::Chat => Prompt::Chat(parse_messages(fields.get("messages"))?),
        Endpoint::Completions => parse_prompt(fields.get("prompt"))?,
    };

    let max_tokens = match endpoint {
        // `max_completion_tokens` is the newer name; both are accepted, not together.
        Endpoint::Chat => match (
            fields.positive_int("max_tokens")?,
            fields.positive_int("max_completion_tokens")?,
        ) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_param(
                    "max_completion_tokens",
                    "give either `max_tokens` or `max_completion_tokens`, not both",
                ));
            }
            (Some(value), None) => Some(("max_tokens", value)),
            (None, Some(value)) => Some(("max_completion_tokens", value)),
            (None, None) => None,
        },
        Endpoint::Completions => fields
            .positive_int("max_tokens")?
            .map(|value| ("max_tokens", value)),
    };
    let max_tokens = match max_tokens {
        Some((name, value)) if value > u64::from(max_tokens_limit) => {
            return Err(ApiError::invalid_param(
                name,
                format!(
                    "`{name}` is {value}; this server generates at most {max_tokens_limit} tokens per request"
                ),
            ));
        }
        Some((_, value)) => value as u32,
        None => match endpoint {
            Endpoint::Chat => max_tokens_limit,
            Endpoint::Completions => COMPLETIONS_DEFAULT_MAX_TOKENS.min(max_tokens_limit),
        },
    };

    let temperature = fields
        .number_in("temperature", 0.0, 2.0, true)?
        .unwrap_or(1.0);
    let top_p = fields.number_in("top_p", 0.0, 1.0, false)?.unwrap_or(1.0);
    let seed = fields.seed()?.unwrap_or(random_seed);
    // Extensions (as in vLLM): top_k, repetition_penalty, ignore_eos.
    let top_k = fields.non_negative_int("top_k")?.unwrap_or(0);
    let repetition_penalty = match fields.get("repetition_penalty") {
        None => 1.0,
        Some(value) => {
            let penalty = as_number("repetition_penalty", value)?;
            if !(penalty > 0.0 && penalty <= 10.0) {
                return Err(ApiError::invalid_param(
                    "repetition_penalty",
                    format!("`repetition_penalty` must be in (0, 10], found {penalty}"),
                ));
            }
            penalty
        }
    };
    let ignore_eos = fields.boolean("ignore_eos")?.unwrap_or(false);
    let stop = parse_stop(fields.get("stop"))?;

    let stream = fields.boolean("stream")?.unwrap_or(false);
    let include_usage = match fields.get("stream_options") {
        None => false,
        Some(Value::Object(options)) => {
            if !stream {
                return Err(ApiError::invalid_param(
                    "stream_options",
                    "`stream_options` is only allowed when `stream` is true",
                ));
            }
            Fields(options)
                .boolean("include_usage")
                .map_err(|_| {
                    ApiError::invalid_param(
                        "stream_options.include_usage",
                        "`stream_options.include_usage` must be a boolean",
                    )
                })?
                .unwrap_or(false)
        }
        Some(_) => {
            return Err(ApiError::invalid_param(
                "stream_options",
                "`stream_options` must be an object",
            ));
        }
    };

    check_unsupported(endpoint, &fields)?;

    Ok(CompletionRequest {
        endpoint,
        model,
        prompt,
        params: GenerationParams {
            max_tokens: max_tokens as usize,
            sampling: SamplingParams {
                temperature: temperature as f32,
                top_p: top_p as f32,
                top_k: top_k as usize,
                repetition_penalty: repetition_penalty as f32,
                seed,
                ..SamplingParams::greedy()
            },
            stop,
            ignore_eos,
        },
        stream,
        include_usage,
    })
}

/// Parameters the server does not implement: accepted with their neutral value, refused
/// otherwise (never silently ignored). Informational ones (`user`, `metadata`, `store`)
/// are type-checked and ignored.
fn check_unsupported(endpoint: Endpoint, fields: &Fields<'_>) -> Result<(), ApiError> {
    if let Some(n) = fields.positive_int("n")?
        && n != 1
    {
        return Err(ApiError::unsupported_param(
            "n",
            "only `n` = 1 is supported",
        ));
    }
    for name in ["presence_penalty", "frequency_penalty"] {
        if let Some(value) = fields.number_in(name, -2.0, 2.0, true)?
            && value != 0.0
        {
            return Err(ApiError::unsupported_param(
                name,
                format!("`{name}` is not supported (only 0); `repetition_penalty` is"),
            ));
        }
    }
    match endpoint {
        Endpoint::Chat => {
            if fields.boolean("logprobs")? == Some(true) {
                return Err(ApiError::unsupported_param(
                    "logprobs",
                    "`logprobs` is not supported",
                ));
            }
            if fields.get("top_logprobs").is_some() {
                return Err(ApiError::unsupported_param(
                    "top_logprobs",
                    "`top_logprobs` is not supported",
                ));
            }
            for name in ["tools", "functions"] {
                match fields.get(name) {
                    None => {}
                    Some(Value::Array(items)) if items.is_empty() => {}
                    Some(Value::Array(_)) => {
                        return Err(ApiError::unsupported_param(
                            name,
                            format!("`{name}` (function calling) is not supported"),
                        ));
                    }
                    Some(_) => {
                        return Err(ApiError::invalid_param(
                            name,
                            format!("`{name}` must be an array"),
                        ));
                    }
                }
            }
            for name in ["tool_choice", "function_call"] {
                match fields.get(name) {
                    None => {}
                    Some(Value::String(choice)) if choice == "none" => {}
                    Some(_) => {
                        return Err(ApiError::unsupported_param(
                            name,
                            format!("`{name}` is not supported (only \"none\")"),
                        ));
                    }
                }
            }
            match fields.get("response_format") {
                None => {}
                Some(Value::Object(format))
                    if format.get("type").and_then(Value::as_str) == Some("text") => {}
                Some(Value::Object(_)) => {
                    return Err(ApiError::unsupported_param(
                        "response_format",
                        "only `response_format` {\"type\": \"text\"} is supported",
                    ));
                }
                Some(_) => {
                    return Err(ApiError::invalid_param(
                        "response_format",
                        "`response_format` must be an object",
                    ));
                }
            }
        }
        Endpoint::Completions => {
            if fields.get("logprobs").is_some() {
                return Err(ApiError::unsupported_param(
                    "logprobs",
                    "`logprobs` is not supported",
                ));
            }
            if fields.boolean("echo")? == Some(true) {
                return Err(ApiError::unsupported_param(
                    "echo",
                    "`echo` is not supported",
                ));
            }
            match fields.get("suffix") {
                None => {}
                Some(Value::String(suffix)) if suffix.is_empty() => {}
                Some(_) => {
                    return Err(ApiError::unsupported_param(
                        "suffix",
                        "`suffix` is not supported",
                    ));
                }
            }
            if let Some(best_of) = fields.positive_int("best_of")?
                && best_of != 1
            {
                return Err(ApiError::unsupported_param(
                    "best_of",
                    "only `best_of` = 1 is supported",
                ));
            }
        }
    }
    match fields.get("logit_bias") {
        None => {}
        Some(Value::Object(bias)) if bias.is_empty() => {}
        Some(Value::Object(_)) => {
            return Err(ApiError::unsupported_param(
                "logit_bias",
                "`logit_bias` is not supported",
            ));
        }
        Some(_) => {
            return Err(ApiError::invalid_param(
                "logit_bias",
                "`logit_bias` must be an object",
            ));
        }
    }
    fields.string("user")?;
    fields.boolean("store")?;
    if let Some(metadata) = fields.get("metadata")
        && !metadata.is_object()
    {
        return Err(ApiError::invalid_param(
            "metadata",
            "`metadata` must be an object",
        ));
    }
    Ok(())
}

/// The request's fields; `null` counts as absent (OpenAI clients send it for "not given").
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|value| !value.is_null())
    }

    fn string(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(wrong_type(name, "a string", other)),
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(other) => Err(wrong_type(name, "a boolean", other)),
        }
    }

    fn non_negative_int(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => match value.as_u64() {
                Some(number) => Ok(Some(number)),
                None => Err(wrong_type(name, "a non-negative integer", value)),
            },
        }
    }

    fn positive_int(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.non_negative_int(name)? {
            Some(0) => Err(ApiError::invalid_param(
                name,
                format!("`{name}` must be at least 1"),
            )),
            other => Ok(other),
        }
    }

    /// A number in `[min, max]` (`(min, max]` when `min_inclusive` is false).
    fn number_in(
        &self,
        name: &str,
        min: f64,
        max: f64,
        min_inclusive: bool,
    ) -> Result<Option<f64>, ApiError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let number = as_number(name, value)?;
        let above_min = if min_inclusive {
            number >= min
        } else {
            number > min
        };
        if !(above_min && number <= max) {
            let open = if min_inclusive { '[' } else { '(' };
            return Err(ApiError::invalid_param(
                name,
                format!("`{name}` must be in {open}{min}, {max}], found {number}"),
            ));
        }
        Ok(Some(number))
    }

    /// `seed`: any 64-bit integer (negative seeds are taken as their two's complement).
    fn seed(&self) -> Result<Option<u64>, ApiError> {
        match self.get("seed") {
            None => Ok(None),
            Some(value) => value
                .as_u64()
                .or_else(|| value.as_i64().map(|signed| signed as u64))
                .map(Some)
                .ok_or_else(|| wrong_type("seed", "an integer", value)),
        }
    }
}

fn as_number(name: &str, value: &Value) -> Result<f64, ApiError> {
    value
        .as_f64()
        .ok_or_else(|| wrong_type(name, "a number", value))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(name: &str, expected: &str, found: &Value) -> ApiError {
    ApiError::invalid_param(
        name,
        format!("`{name}` must be {expected}, found {}", type_name(found)),
    )
}

fn parse_messages(value: Option<&Value>) -> Result<Vec<ChatMessage>, ApiError> {
    let items = match value {
        None => {
            return Err(ApiError::invalid_param(
                "messages",
                "missing required parameter `messages`",
            ));
        }
        Some(Value::Array(items)) => items,
        Some(other) => return Err(wrong_type("messages", "an array", other)),
    };
    if items.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "`messages` must contain at least one message",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_message(index, item))
        .collect()
}

fn parse_message(index: usize, item: &Value) -> Result<ChatMessage, ApiError> {
    let at = |field: &str| format!("messages[{index}].{field}");
    let Value::Object(message) = item else {
        return Err(ApiError::invalid_param(
            format!("messages[{index}]"),
            format!("`messages[{index}]` must be an object"),
        ));
    };
    let role = match message.get("role") {
        Some(Value::String(role)) => match role.as_str() {
            // `developer` is the newer name of `system`.
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" | "function" => {
                return Err(ApiError::unsupported_param(
                    at("role"),
                    format!("role `{role}` (function calling) is not supported"),
                ));
            }
            other => {
                return Err(ApiError::invalid_param(
                    at("role"),
                    format!(
                        "unknown role `{other}` (expected system, developer, user or assistant)"
                    ),
                ));
            }
        },
        None | Some(Value::Null) => {
            return Err(ApiError::invalid_param(
                at("role"),
                format!("missing required parameter `{}`", at("role")),
            ));
        }
        Some(other) => return Err(wrong_type(&at("role"), "a string", other)),
    };
    let content = match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (part_index, part) in parts.iter().enumerate() {
                let param = format!("messages[{index}].content[{part_index}]");
                let part_text = part
                    .as_object()
                    .filter(|object| object.get("type").and_then(Value::as_str) == Some("text"))
                    .and_then(|object| object.get("text"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ApiError::unsupported_param(
                            param.clone(),
                            format!(
                                "`{param}` must be a text part {{\"type\": \"text\", \"text\": ...}}"
                            ),
                        )
                    })?;
                text.push_str(part_text);
            }
            text
        }
        None | Some(Value::Null) => {
            return Err(ApiError::invalid_param(
                at("content"),
                format!("missing required parameter `{}`", at("content")),
            ));
        }
        Some(other) => return Err(wrong_type(&at("content"), "a string or an array", other)),
    };
    if let Some(name) = message.get("name")
        && !(name.is_string() || name.is_null())
    {
        return Err(wrong_type(&at("name"), "a string", name));
    }
    if let Some(calls) = message.get("tool_calls")
        && !calls.as_array().is_none_or(Vec::is_empty)
        && !calls.is_null()
    {
        return Err(ApiError::unsupported_param(
            at("tool_calls"),
            "`tool_calls` (function calling) is not supported",
        ));
    }
    Ok(ChatMessage::new(role, content))
}

fn parse_prompt(value: Option<&Value>) -> Result<Prompt, ApiError> {
    let one_only = || {
        ApiError::unsupported_param(
            "prompt",
            "only one prompt per request is supported (a string, or one array of token ids)",
        )
    };
    match value {
        None => Err(ApiError::invalid_param(
            "prompt",
            "missing required parameter `prompt`",
        )),
        Some(Value::String(text)) => Ok(Prompt::Text(text.clone())),
        Some(Value::Array(items)) => match items.as_slice() {
            [] => Err(ApiError::invalid_param("prompt", "`prompt` is empty")),
            [Value::String(text)] => Ok(Prompt::Text(text.clone())),
            [Value::Array(tokens)] => token_ids(tokens),
            [Value::Number(_), ..] => token_ids(items),
            [Value::String(_), ..] | [Value::Array(_), ..] => Err(one_only()),
            _ => Err(ApiError::invalid_param(
                "prompt",
                "`prompt` must be a string, an array of strings, or an array of token ids",
            )),
        },
        Some(other) => Err(wrong_type("prompt", "a string or an array", other)),
    }
}

fn token_ids(items: &[Value]) -> Result<Prompt, ApiError> {
    if items.is_empty() {
        return Err(ApiError::invalid_param("prompt", "`prompt` is empty"));
    }
    items
        .iter()
        .map(|item| {
            item.as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| {
                    ApiError::invalid_param(
                        "prompt",
                        "token ids in `prompt` must be non-negative 32-bit integers",
                    )
                })
        })
        .collect::<Result<Vec<u32>, ApiError>>()
        .map(Prompt::Tokens)
}

fn parse_stop(value: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let stops = match value {
        None => return Ok(Vec::new()),
        Some(Value::String(stop)) => vec![stop.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    ApiError::invalid_param(
                        "stop",
                        "`stop` must be a string or an array of strings",
                    )
                })
            })
            .collect::<Result<Vec<String>, ApiError>>()?,
        Some(other) => return Err(wrong_type("stop", "a string or an array of strings", other)),
    };
    if stops.len() > MAX_STOP_SEQUENCES {
        return Err(ApiError::invalid_param(
            "stop",
            format!("at most {MAX_STOP_SEQUENCES} stop sequences are allowed"),
        ));
    }
    if stops.iter().any(String::is_empty) {
        return Err(ApiError::invalid_param(
            "stop",
            "stop sequences must not be empty",
        ));
    }
    Ok(stops)
}

/// Token counts of a completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: usize,
    pub(crate) completion_tokens: usize,
    pub(crate) total_tokens: usize,
}

impl Usage {
    pub(crate) fn new(prompt_tokens: usize, completion_tokens: usize) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// Fields every response object shares.
#[derive(Debug, Clone)]
pub(crate) struct ResponseMeta {
    pub(crate) id: String,
    pub(crate) created: u64,
    pub(crate) model: String,
    pub(crate) system_fingerprint: String,
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'a str,
    choices: [ChatChoice<'a>; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'a str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: &'a str,
    refusal: Option<()>,
}

#[derive(Serialize)]
struct TextCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'a str,
    choices: [TextChoice<'a>; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    text: &'a str,
    index: u32,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

/// The body of a non-streamed answer.
pub(crate) fn completion_body(
    endpoint: Endpoint,
    meta: &ResponseMeta,
    text: &str,
    finish_reason: &str,
    usage: Usage,
) -> Vec<u8> {
    let serialized = match endpoint {
        Endpoint::Chat => serde_json::to_vec(&ChatCompletion {
            id: &meta.id,
            object: "chat.completion",
            created: meta.created,
            model: &meta.model,
            system_fingerprint: &meta.system_fingerprint,
            choices: [ChatChoice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content: text,
                    refusal: None,
                },
                logprobs: None,
                finish_reason,
            }],
            usage,
        }),
        Endpoint::Completions => serde_json::to_vec(&TextCompletion {
            id: &meta.id,
            object: "text_completion",
            created: meta.created,
            model: &meta.model,
            system_fingerprint: &meta.system_fingerprint,
            choices: [TextChoice {
                text,
                index: 0,
                logprobs: None,
                finish_reason: Some(finish_reason),
            }],
            usage,
        }),
    };
    // Plain strings and numbers always serialise.
    serialized.unwrap_or_default()
}

#[derive(Serialize)]
struct ChatChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'a str,
    choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

#[derive(Serialize)]
struct TextChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'a str,
    choices: Vec<TextChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

/// What one stream event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkContent<'a> {
    /// The first event of a chat stream: the assistant role, no text.
    Start,
    /// Generated text.
    Text(&'a str),
    /// The end, with its reason.
    Finish(&'a str),
    /// The token counts (`stream_options.include_usage`): no choices.
    Usage(Usage),
}

/// One single-line JSON stream chunk.
pub(crate) fn chunk_json(
    endpoint: Endpoint,
    meta: &ResponseMeta,
    content: ChunkContent<'_>,
) -> Vec<u8> {
    let usage = match content {
        ChunkContent::Usage(usage) => Some(usage),
        _ => None,
    };
    let serialized = match endpoint {
        Endpoint::Chat => {
            let choice = |delta: Delta<'static>, finish_reason| ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            };
            let choices = match content {
                ChunkContent::Start => vec![choice(
                    Delta {
                        role: Some("assistant"),
                        content: Some(""),
                    },
                    None,
                )],
                ChunkContent::Text(text) => vec![ChunkChoice {
                    index: 0,
                    delta: Delta {
                        role: None,
                        content: Some(text),
                    },
                    logprobs: None,
                    finish_reason: None,
                }],
                ChunkContent::Finish(reason) => vec![choice(
                    Delta {
                        role: None,
                        content: None,
                    },
                    Some(reason),
                )],
                ChunkContent::Usage(_) => Vec::new(),
            };
            serde_json::to_vec(&ChatChunk {
                id: &meta.id,
                object: "chat.completion.chunk",
                created: meta.created,
                model: &meta.model,
                system_fingerprint: &meta.system_fingerprint,
                choices,
                usage,
            })
        }
        Endpoint::Completions => {
            let choices = match content {
                ChunkContent::Start => vec![TextChoice {
                    text: "",
                    index: 0,
                    logprobs: None,
                    finish_reason: None,
                }],
                ChunkContent::Text(text) => vec![TextChoice {
                    text,
                    index: 0,
                    logprobs: None,
                    finish_reason: None,
                }],
                ChunkContent::Finish(reason) => vec![TextChoice {
                    text: "",
                    index: 0,
                    logprobs: None,
                    finish_reason: Some(reason),
                }],
                ChunkContent::Usage(_) => Vec::new(),
            };
            serde_json::to_vec(&TextChunk {
                id: &meta.id,
                object: "text_completion",
                created: meta.created,
                model: &meta.model,
                system_fingerprint: &meta.system_fingerprint,
                choices,
                usage,
            })
        }
    };
    serialized.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Result<CompletionRequest, ApiError> {
        parse_request(Endpoint::Chat, body.as_bytes(), 512, 7)
    }

    fn param_of(result: Result<CompletionRequest, ApiError>) -> String {
        let error = result.expect_err("must be refused");
        assert_eq!(error.status, hyper::StatusCode::BAD_REQUEST, "{error:?}");
        error.param.unwrap_or_default()
    }

    #[test]
    fn a_typical_chat_request_parses() {
        let request = chat(
            r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},
                {"role":"user","content":[{"type":"text","text":"Hi"}]}],
                "max_tokens":8,"temperature":0,"seed":-1,"stop":"\n","stream":true,
                "stream_options":{"include_usage":true},"user":"u","n":1,"unknown_key":{"x":1}}"#,
        )
        .expect("valid");
        assert_eq!(request.model, "m");
        assert_eq!(
            request.prompt,
            Prompt::Chat(vec![
                ChatMessage::new(Role::System, "Be brief."),
                ChatMessage::new(Role::User, "Hi"),
            ])
        );
        assert_eq!(request.params.max_tokens, 8);
        assert_eq!(request.params.sampling.temperature, 0.0);
        assert_eq!(request.params.sampling.seed, u64::MAX);
        assert_eq!(request.params.stop, ["\n"]);
        assert!(request.stream && request.include_usage);
    }

    #[test]
    fn defaults_follow_openai() {
        let request =
            chat(r#"{"model":"m","messages":[{"role":"user","content":"Hi"}]}"#).expect("valid");
        assert_eq!(request.params.max_tokens, 512);
        assert_eq!(request.params.sampling.temperature, 1.0);
        assert_eq!(request.params.sampling.top_p, 1.0);
        assert_eq!(request.params.sampling.seed, 7);
        assert!(!request.stream);
        let completion = parse_request(
            Endpoint::Completions,
            br#"{"model":"m","prompt":"Once"}"#,
            512,
            7,
        )
        .expect("valid");
        assert_eq!(completion.params.max_tokens, 16);
        assert_eq!(completion.prompt, Prompt::Text("Once".to_owned()));
        let tokens = parse_request(
            Endpoint::Completions,
            br#"{"model":"m","prompt":[1,2,3]}"#,
            512,
            7,
        )
        .expect("valid");
        assert_eq!(tokens.prompt, Prompt::Tokens(vec![1, 2, 3]));
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = r#""model":"m","messages":[{"role":"user","content":"Hi"}]"#;
        let cases = [
            (
                r#"{"messages":[{"role":"user","content":"Hi"}]}"#.to_owned(),
                "model",
            ),
            (r#"{"model":5,"messages":[]}"#.to_owned(), "model"),
            (r#"{"model":"m"}"#.to_owned(), "messages"),
            (r#"{"model":"m","messages":[]}"#.to_owned(), "messages"),
            (r#"{"model":"m","messages":"hi"}"#.to_owned(), "messages"),
            (
                r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#.to_owned(),
                "messages[0].role",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}]}"#.to_owned(),
                "messages[0].content",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#
                    .to_owned(),
                "messages[0].content[0]",
            ),
            (format!(r#"{{{base},"temperature":"hot"}}"#), "temperature"),
            (format!(r#"{{{base},"temperature":2.5}}"#), "temperature"),
            (format!(r#"{{{base},"top_p":0}}"#), "top_p"),
            (format!(r#"{{{base},"top_p":1.5}}"#), "top_p"),
            (format!(r#"{{{base},"max_tokens":0}}"#), "max_tokens"),
            (format!(r#"{{{base},"max_tokens":-3}}"#), "max_tokens"),
            (format!(r#"{{{base},"max_tokens":513}}"#), "max_tokens"),
            (format!(r#"{{{base},"max_tokens":1.5}}"#), "max_tokens"),
            (format!(r#"{{{base},"seed":"x"}}"#), "seed"),
            (format!(r#"{{{base},"stop":5}}"#), "stop"),
            (
                format!(r#"{{{base},"stop":["a","b","c","d","e"]}}"#),
                "stop",
            ),
            (format!(r#"{{{base},"stop":[""]}}"#), "stop"),
            (format!(r#"{{{base},"stream":"yes"}}"#), "stream"),
            (
                format!(r#"{{{base},"stream_options":{{"include_usage":true}}}}"#),
                "stream_options",
            ),
            (format!(r#"{{{base},"n":2}}"#), "n"),
            (
                format!(r#"{{{base},"presence_penalty":0.5}}"#),
                "presence_penalty",
            ),
            (format!(r#"{{{base},"logprobs":true}}"#), "logprobs"),
            (
                format!(r#"{{{base},"tools":[{{"type":"function"}}]}}"#),
                "tools",
            ),
            (
                format!(r#"{{{base},"response_format":{{"type":"json_object"}}}}"#),
                "response_format",
            ),
            (
                format!(r#"{{{base},"logit_bias":{{"1":5}}}}"#),
                "logit_bias",
            ),
            (format!(r#"{{{base},"user":7}}"#), "user"),
            (format!(r#"{{{base},"top_k":-1}}"#), "top_k"),
            (
                format!(r#"{{{base},"repetition_penalty":0}}"#),
                "repetition_penalty",
            ),
        ];
        for (body, param) in cases {
            assert_eq!(param_of(chat(&body)), param, "{body}");
        }
        let completions = [
            (r#"{"model":"m"}"#, "prompt"),
            (r#"{"model":"m","prompt":["a","b"]}"#, "prompt"),
            (r#"{"model":"m","prompt":[-1]}"#, "prompt"),
            (r#"{"model":"m","prompt":{}}"#, "prompt"),
            (r#"{"model":"m","prompt":"x","echo":true}"#, "echo"),
            (r#"{"model":"m","prompt":"x","best_of":3}"#, "best_of"),
            (r#"{"model":"m","prompt":"x","logprobs":2}"#, "logprobs"),
        ];
        for (body, param) in completions {
            let result = parse_request(Endpoint::Completions, body.as_bytes(), 512, 0);
            assert_eq!(param_of(result), param, "{body}");
        }
    }

    #[test]
    fn malformed_json_and_non_objects_are_400() {
        for body in ["{", "", "[1,2]", "\"text\"", "{\"model\":\"m\",}"] {
            let error = chat(body).expect_err(body);
            assert_eq!(error.status, hyper::StatusCode::BAD_REQUEST, "{body}");
        }
        assert_eq!(chat("{").expect_err("bad").code, Some("invalid_json"));
    }

    #[test]
    fn chunks_are_single_line_json() {
        let meta = ResponseMeta {
            id: "chatcmpl-1".to_owned(),
            created: 1,
            model: "m".to_owned(),
            system_fingerprint: "fp".to_owned(),
        };
        let chunk = chunk_json(Endpoint::Chat, &meta, ChunkContent::Text("a\nb"));
        assert!(!chunk.contains(&b'\n'));
        let value: Value = serde_json::from_slice(&chunk).expect("json");
        assert_eq!(value["choices"][0]["delta"]["content"], "a\nb");
        assert_eq!(value["object"], "chat.completion.chunk");
        let usage = chunk_json(
            Endpoint::Completions,
            &meta,
            ChunkContent::Usage(Usage::new(3, 4)),
        );
        let value: Value = serde_json::from_slice(&usage).expect("json");
        assert_eq!(value["usage"]["total_tokens"], 7);
        assert_eq!(value["choices"], serde_json::json!([]));
    }
}
