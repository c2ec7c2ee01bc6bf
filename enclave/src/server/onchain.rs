//! `POST /v1/onchain/fulfillments` (docs/protocol.md §5): the enclave answers an on-chain
//! request and signs the relay's EIP-712 `Fulfillment` itself, so the relayer that carries the
//! answer to the chain cannot change it. The enclave signs only for the one relay (chain id and
//! address) it was started with, and only for the operator its parent bound
//! (`super::parent`): a signature is never produced for another chain, contract or operator,
//! so another staker that claimed a request gains nothing from asking this enclave.

use attestation_verifier::onchain::Fulfillment;
use inference_engine::{ChatMessage, GenerationParams, GenerationRequest, Prompt, Role};
use serde_json::{Map, Value};

use super::errors::ApiError;

/// `max_tokens` when `params` does not say.
const DEFAULT_MAX_TOKENS: u32 = 64;

pub use crate::config::OnchainRelay;

/// A parsed fulfilment request: what to generate, and what the signature must bind.
#[derive(Debug)]
pub(crate) struct FulfillmentJob {
    pub(crate) request_id: [u8; 32],
    pub(crate) operator: [u8; 20],
    pub(crate) model_hash: [u8; 32],
    pub(crate) input: Vec<u8>,
    pub(crate) params: Vec<u8>,
    pub(crate) generation: GenerationRequest,
}

impl FulfillmentJob {
    /// The statement the enclave signs for `output`.
    pub(crate) fn statement(&self, output: &[u8]) -> Fulfillment {
        Fulfillment::for_exchange(
            self.request_id,
            self.operator,
            self.model_hash,
            &self.input,
            &self.params,
            output,
        )
    }
}

fn forbidden(code: &'static str, message: String) -> ApiError {
    ApiError::forbidden(code, message)
}

/// Parses a request body against the enclave's relay, operator and model (see the module
/// docs).
pub(crate) fn parse_fulfillment(
    body: &[u8],
    relay: Option<&OnchainRelay>,
    operator: Option<[u8; 20]>,
    model_sha256: &[u8; 32],
    max_tokens_limit: u32,
) -> Result<FulfillmentJob, ApiError> {
    let Some(relay) = relay else {
        return Err(forbidden(
            "onchain_disabled",
            "this enclave was started without --onchain-relay; it signs no on-chain fulfilments"
                .to_owned(),
        ));
    };
    let value: Value = serde_json::from_slice(body).map_err(ApiError::invalid_json)?;
    let Value::Object(fields) = value else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    for key in fields.keys() {
        if !matches!(
            key.as_str(),
            "chain_id" | "relay" | "operator" | "request_id" | "model_hash" | "input" | "params"
        ) {
            return Err(ApiError::invalid_param(
                key.as_str(),
                format!("unknown field `{key}`"),
            ));
        }
    }
    let chain_id = fields
        .get("chain_id")
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::invalid_param("chain_id", "`chain_id` must be a whole number"))?;
    let relay_address = hex_field::<20>(&fields, "relay")?;
    if chain_id != relay.chain_id || relay_address != relay.relay {
        return Err(forbidden(
            "relay_not_allowed",
            format!(
                "this enclave signs fulfilments only for relay {relay}, not {chain_id}:0x{}",
                hex::encode(relay_address)
            ),
        ));
    }
    let Some(operator) = operator else {
        return Err(forbidden(
            "operator_not_bound",
            "no operator is bound to this enclave (its parent instance binds one on the parent \
             channel); it signs no on-chain fulfilments"
                .to_owned(),
        ));
    };
    let requested_operator = hex_field::<20>(&fields, "operator")?;
    if requested_operator != operator {
        return Err(forbidden(
            "operator_not_served",
            format!(
                "this enclave signs fulfilments only for its operator 0x{}, not 0x{}",
                hex::encode(operator),
                hex::encode(requested_operator)
            ),
        ));
    }
    let request_id = hex_field::<32>(&fields, "request_id")?;
    let model_hash = hex_field::<32>(&fields, "model_hash")?;
    if model_hash != *model_sha256 {
        return Err(ApiError::invalid_param(
            "model_hash",
            format!(
                "this enclave serves model {}, not {}",
                hex::encode(model_sha256),
                hex::encode(model_hash)
            ),
        )
        .with_code("model_mismatch"));
    }
    let input = hex_bytes(&fields, "input")?;
    let params = hex_bytes(&fields, "params")?;
    let prompt = String::from_utf8(input.clone())
        .map_err(|_| ApiError::invalid_param("input", "`input` must be UTF-8 text"))?;
    if prompt.trim().is_empty() {
        return Err(ApiError::invalid_param("input", "`input` is empty"));
    }
    let (generation_params, system) = parse_params(&params, max_tokens_limit)?;
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(ChatMessage::new(Role::System, system));
    }
    messages.push(ChatMessage::new(Role::User, prompt));
    Ok(FulfillmentJob {
        request_id,
        operator,
        model_hash,
        input,
        params,
        generation: GenerationRequest {
            prompt: Prompt::Chat(messages),
            params: generation_params,
        },
    })
}

/// `params`: empty, or a JSON object with `max_tokens`, `temperature`, `top_p`, `seed`, `stop`
/// and `system`. Greedy unless a temperature is given, so anyone can re-run the request.
fn parse_params(
    params: &[u8],
    max_tokens_limit: u32,
) -> Result<(GenerationParams, Option<String>), ApiError> {
    let invalid =
        |message: String| ApiError::invalid_param("params", message).with_code("invalid_params");
    let mut generation = GenerationParams {
        max_tokens: DEFAULT_MAX_TOKENS.min(max_tokens_limit) as usize,
        ..GenerationParams::default()
    };
    if params.is_empty() {
        return Ok((generation, None));
    }
    let value: Value = serde_json::from_slice(params)
        .map_err(|error| invalid(format!("`params` is not JSON: {error}")))?;
    let Value::Object(fields) = value else {
        return Err(invalid("`params` must be a JSON object".to_owned()));
    };
    let mut system = None;
    for (key, value) in &fields {
        match key.as_str() {
            "max_tokens" => {
                let max = value
                    .as_u64()
                    .filter(|max| (1..=u64::from(max_tokens_limit)).contains(max))
                    .ok_or_else(|| {
                        invalid(format!(
                            "`max_tokens` must be 1..={max_tokens_limit}, found {value}"
                        ))
                    })?;
                generation.max_tokens = max as usize;
            }
            "temperature" => {
                generation.sampling.temperature = value
                    .as_f64()
                    .filter(|t| (0.0..=2.0).contains(t))
                    .ok_or_else(|| invalid(format!("`temperature` must be 0..=2, found {value}")))?
                    as f32;
            }
            "top_p" => {
                generation.sampling.top_p = value
                    .as_f64()
                    .filter(|p| *p > 0.0 && *p <= 1.0)
                    .ok_or_else(|| invalid(format!("`top_p` must be in (0, 1], found {value}")))?
                    as f32;
            }
            "seed" => {
                generation.sampling.seed = value.as_u64().ok_or_else(|| {
                    invalid(format!("`seed` must be a whole number, found {value}"))
                })?;
            }
            "stop" => {
                generation.stop = match value {
                    Value::String(stop) => vec![stop.clone()],
                    Value::Array(stops) => stops
                        .iter()
                        .map(|stop| stop.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| invalid("`stop` must be strings".to_owned()))?,
                    _ => return Err(invalid("`stop` must be a string or strings".to_owned())),
                };
                if generation.stop.len() > 4 || generation.stop.iter().any(String::is_empty) {
                    return Err(invalid("`stop` takes 1 to 4 non-empty strings".to_owned()));
                }
            }
            "system" => {
                system = Some(
                    value
                        .as_str()
                        .ok_or_else(|| invalid("`system` must be a string".to_owned()))?
                        .to_owned(),
                );
            }
            other => return Err(invalid(format!("unknown key `{other}` in `params`"))),
        }
    }
    Ok((generation, system))
}

fn hex_text<'a>(fields: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, ApiError> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_param(name, format!("`{name}` must be a 0x-hex string")))
}

fn hex_bytes(fields: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, ApiError> {
    crate::parse_0x_hex_bytes(hex_text(fields, name)?)
        .map_err(|reason| ApiError::invalid_param(name, reason))
}

fn hex_field<const N: usize>(
    fields: &Map<String, Value>,
    name: &'static str,
) -> Result<[u8; N], ApiError> {
    crate::parse_0x_hex::<N>(hex_text(fields, name)?)
        .map_err(|reason| ApiError::invalid_param(name, format!("`{name}`: {reason}")))
}

/// The answer body: output bytes and text, signature, digest, enclave, usage.
pub(crate) fn answer_body(
    output: &[u8],
    text: &str,
    signature: &[u8; 65],
    digest: &[u8; 32],
    enclave_address: &str,
    prompt_tokens: usize,
    completion_tokens: usize,
) -> Vec<u8> {
    let body = serde_json::json!({
        "output": format!("0x{}", hex::encode(output)),
        "output_text": text,
        "signature": format!("0x{}", hex::encode(signature)),
        "digest": format!("0x{}", hex::encode(digest)),
        "enclave": enclave_address,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use hyper::StatusCode;

    use super::*;

    fn status_of(result: Result<FulfillmentJob, ApiError>) -> (StatusCode, Option<String>) {
        match result {
            Ok(_) => (StatusCode::OK, None),
            Err(error) => (error.status, error.code.map(str::to_owned)),
        }
    }

    const MODEL: [u8; 32] = [0xb1; 32];
    const OPERATOR: [u8; 20] = [0x0f; 20];

    fn relay() -> OnchainRelay {
        "31337:0xC2bE970268c5F0924B50eCb8842b4b8fFD4E57A8"
            .parse()
            .expect("relay")
    }

    fn body(overrides: &[(&str, Value)]) -> Vec<u8> {
        let mut fields = serde_json::json!({
            "chain_id": 31337,
            "relay": "0xc2be970268c5f0924b50ecb8842b4b8ffd4e57a8",
            "operator": format!("0x{}", "0f".repeat(20)),
            "request_id": format!("0x{}", "00".repeat(31) + "01"),
            "model_hash": format!("0x{}", "b1".repeat(32)),
            "input": format!("0x{}", hex::encode(b"What is the capital of France?")),
            "params": format!("0x{}", hex::encode(br#"{"max_tokens":16,"temperature":0}"#)),
        });
        for (key, value) in overrides {
            fields[*key] = value.clone();
        }
        serde_json::to_vec(&fields).expect("json")
    }

    #[test]
    fn parses_a_request_for_the_configured_relay() {
        let job = parse_fulfillment(&body(&[]), Some(&relay()), Some(OPERATOR), &MODEL, 512)
            .expect("parsed");
        assert_eq!(job.request_id[31], 1);
        assert_eq!(job.generation.params.max_tokens, 16);
        assert_eq!(job.generation.params.sampling.temperature, 0.0);
        assert_eq!(job.input, b"What is the capital of France?");
        assert_eq!(job.operator, OPERATOR);
        // The statement binds exactly the bytes given.
        let statement = job.statement(b"Paris.");
        assert_eq!(
            statement.params_hash,
            attestation_verifier::receipt::keccak256(br#"{"max_tokens":16,"temperature":0}"#)
        );
    }

    #[test]
    fn refuses_other_relays_chains_models_and_bad_params() {
        let forbidden = |code: &str| (StatusCode::FORBIDDEN, Some(code.to_owned()));
        assert_eq!(
            status_of(parse_fulfillment(
                &body(&[]),
                None,
                Some(OPERATOR),
                &MODEL,
                512
            )),
            forbidden("onchain_disabled")
        );
        assert_eq!(
            status_of(parse_fulfillment(
                &body(&[("chain_id", 1.into())]),
                Some(&relay()),
                Some(OPERATOR),
                &MODEL,
                512
            )),
            forbidden("relay_not_allowed")
        );
        let other_relay = ("relay", Value::from(format!("0x{}", "11".repeat(20))));
        assert_eq!(
            status_of(parse_fulfillment(
                &body(&[other_relay]),
                Some(&relay()),
                Some(OPERATOR),
                &MODEL,
                512
            )),
            forbidden("relay_not_allowed")
        );
        // No operator bound, or another operator asked for: refused (the harvesting attack).
        assert_eq!(
            status_of(parse_fulfillment(
                &body(&[]),
                Some(&relay()),
                None,
                &MODEL,
                512
            )),
            forbidden("operator_not_bound")
        );
        let harvester = ("operator", Value::from(format!("0x{}", "ba".repeat(20))));
        assert_eq!(
            status_of(parse_fulfillment(
                &body(&[harvester]),
                Some(&relay()),
                Some(OPERATOR),
                &MODEL,
                512
            )),
            forbidden("operator_not_served")
        );
        let bad = |overrides: &[(&str, Value)]| {
            status_of(parse_fulfillment(
                &body(overrides),
                Some(&relay()),
                Some(OPERATOR),
                &MODEL,
                512,
            ))
        };
        let other_model = ("model_hash", Value::from(format!("0x{}", "22".repeat(32))));
        assert_eq!(
            bad(&[other_model]),
            (StatusCode::BAD_REQUEST, Some("model_mismatch".into()))
        );
        for params in [
            r#"{"max_tokens":100000}"#,
            r#"{"temperature":"hot"}"#,
            r#"{"unknown":1}"#,
            "[1,2]",
            "not json",
        ] {
            let value = Value::from(format!("0x{}", hex::encode(params.as_bytes())));
            assert_eq!(
                bad(&[("params", value)]),
                (StatusCode::BAD_REQUEST, Some("invalid_params".into())),
                "{params}"
            );
        }
        let not_utf8 = ("input", Value::from("0xff".to_owned()));
        assert_eq!(bad(&[not_utf8]).0, StatusCode::BAD_REQUEST);
        assert_eq!(
            bad(&[("request_id", Value::from("0x01"))]).0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(bad(&[("extra", Value::from(1))]).0, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn empty_params_mean_greedy_defaults() {
        let empty = ("params", Value::from("0x".to_owned()));
        let job = parse_fulfillment(&body(&[empty]), Some(&relay()), Some(OPERATOR), &MODEL, 512)
            .expect("parsed");
        assert_eq!(job.generation.params.max_tokens, 64);
        assert_eq!(job.generation.params.sampling.temperature, 0.0);
        assert!(job.params.is_empty());
    }

    #[test]
    fn relay_setting_parses_and_prints() {
        let relay = relay();
        assert_eq!(relay.chain_id, 31337);
        assert_eq!(
            relay.to_string(),
            "31337:0xc2be970268c5f0924b50ecb8842b4b8ffd4e57a8"
        );
        for bad in [
            "",
            "31337",
            "0:0x00",
            "x:0xc2be970268c5f0924b50ecb8842b4b8ffd4e57a8",
            "1:0x12",
        ] {
            assert!(bad.parse::<OnchainRelay>().is_err(), "{bad}");
        }
    }
}
