//! OpenAI-style error answers: `{"error":{"message","type","param","code"}}` with the matching
//! HTTP status (docs/protocol.md §4a).

use hyper::StatusCode;
use inference_engine::EngineError;
use serde::Serialize;

/// Seconds a client is told to wait after a 429 (a 64-token answer takes about this long).
pub(crate) const RETRY_AFTER_SECONDS: u32 = 1;

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    pub(crate) param: Option<String>,
    pub(crate) code: Option<&'static str>,
    /// `Retry-After` seconds (429 only).
    pub(crate) retry_after: Option<u32>,
    /// `Allow` (405 only).
    pub(crate) allow: Option<&'static str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
            allow: None,
        }
    }

    fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// 400: a parameter is missing, of the wrong type or out of range.
    pub(crate) fn invalid_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
            .with_param(param)
            .with_code("invalid_value")
    }

    /// 400: a parameter the server does not implement was set to a value other than its
    /// neutral one.
    pub(crate) fn unsupported_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
            .with_param(param)
            .with_code("unsupported_parameter")
    }

    /// 400: the body is not JSON.
    pub(crate) fn invalid_json(reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("the request body is not valid JSON: {reason}"),
        )
        .with_code("invalid_json")
    }

    /// 400: a generic invalid request (no single parameter at fault).
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 404: no such model.
    pub(crate) fn model_not_found(requested: &str, served: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("the model `{requested}` does not exist; this enclave serves `{served}`"),
        )
        .with_param("model")
        .with_code("model_not_found")
    }

    /// 404: no such path.
    pub(crate) fn unknown_path(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("invalid URL ({method} {path})"),
        )
        .with_code("unknown_url")
    }

    /// 405, with the methods the path accepts.
    pub(crate) fn method_not_allowed(method: &str, path: &str, allow: &'static str) -> Self {
        let mut error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            format!("{method} is not allowed on {path} (allowed: {allow})"),
        )
        .with_code("method_not_allowed");
        error.allow = Some(allow);
        error
    }

    /// 413: the body is larger than the configured limit.
    pub(crate) fn body_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
        .with_code("request_too_large")
    }

    /// 408: the client was too slow to send its request.
    pub(crate) fn request_timeout(what: &str, timeout_ms: u32) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            format!("the request {what} did not arrive within {timeout_ms} ms"),
        )
        .with_code("request_timeout")
    }

    /// 429: the generation queue is full.
    pub(crate) fn queue_full(waiting: usize, limit: usize) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            format!(
                "the server is at capacity ({waiting} requests accepted, limit {limit}); retry later"
            ),
        )
        .with_code("queue_full");
        error.retry_after = Some(RETRY_AFTER_SECONDS);
        error
    }

    /// 429: a rate limit (`scope`: this connection's or the whole enclave's) is spent.
    pub(crate) fn rate_limited(what: &str, scope: &str, retry_after: u32) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            format!("too many {what} for this {scope}; retry in {retry_after} s"),
        )
        .with_code("rate_limited");
        error.retry_after = Some(retry_after);
        error
    }

    /// 409: the request conflicts with the server's state (e.g. another operator is bound).
    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "invalid_request_error", message).with_code(code)
    }

    /// 500: something failed inside the server.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
            .with_code("internal_error")
    }

    /// 403: the server will not do this for anyone (e.g. sign for a relay it was not started
    /// with).
    pub(crate) fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_error", message).with_code(code)
    }

    /// 503: the server cannot take requests (its scheduler stopped).
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message).with_code("unavailable")
    }

    /// The error the engine gave when a request was submitted. `prompt_param` names the
    /// request field that holds the prompt (`messages` or `prompt`).
    pub(crate) fn from_engine(error: &EngineError, prompt_param: &str) -> Self {
        match error {
            EngineError::PromptTooLong { .. } => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                error.to_string(),
            )
            .with_param(prompt_param)
            .with_code("context_length_exceeded"),
            EngineError::EmptyPrompt | EngineError::ChatTemplate(_) => {
                Self::invalid_param(prompt_param, error.to_string())
            }
            EngineError::TokenOutOfRange { .. } => {
                Self::invalid_param(prompt_param, error.to_string())
            }
            EngineError::InvalidParameter { name, .. } => {
                Self::invalid_param(*name, error.to_string())
            }
            EngineError::QueueFull { waiting, limit } => Self::queue_full(*waiting, *limit),
            EngineError::SchedulerStopped => Self::unavailable(error.to_string()),
            other => Self::internal(other.to_string()),
        }
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> Vec<u8> {
        let body = ErrorBody {
            error: ErrorObject {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code,
            },
        };
        // Serialising plain strings cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_the_openai_shape() {
        let error = ApiError::invalid_param("temperature", "too hot");
        let value: serde_json::Value = serde_json::from_slice(&error.body()).expect("json");
        assert_eq!(
            value,
            serde_json::json!({"error": {"message": "too hot", "type": "invalid_request_error",
                "param": "temperature", "code": "invalid_value"}})
        );
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn engine_errors_map_to_statuses() {
        let too_long = EngineError::PromptTooLong {
            prompt_tokens: 9000,
            context_length: 8192,
            max_prompt_tokens: 8191,
        };
        let error = ApiError::from_engine(&too_long, "messages");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.code, Some("context_length_exceeded"));
        assert_eq!(error.param.as_deref(), Some("messages"));
        let full = ApiError::from_engine(
            &EngineError::QueueFull {
                waiting: 3,
                limit: 3,
            },
            "prompt",
        );
        assert_eq!(full.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(full.retry_after, Some(RETRY_AFTER_SECONDS));
        assert_eq!(
            ApiError::from_engine(&EngineError::SchedulerStopped, "prompt").status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            ApiError::from_engine(&EngineError::BatchFailed("x".to_owned()), "prompt").status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
