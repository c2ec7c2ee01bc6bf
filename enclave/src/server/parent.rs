//! The parent channel (docs/protocol.md §5a): plain HTTP/1.1 on a listener of its own
//! (`parent_listen`, a vsock port inside an enclave, which only the parent instance can reach;
//! host-proxy forwards the public port only). Two jobs, both the operator's:
//!
//! - `PUT /v1/operator` `{"operator": "0x…"}` binds the operator the enclave serves, once per
//!   boot: from then on every boot document's `user_data` names it, and the enclave signs
//!   on-chain fulfilments for it alone. The parent instance is the operator's, so whoever can
//!   reach this channel is the operator; nobody on the public port can.
//! - `GET /metrics` (Prometheus), kept off the public port.
//!
//! No TLS: nothing secret crosses it, and what it sets is attested back in every document.

use std::sync::Arc;

use attestation_verifier::protocol::{PARENT_METRICS_PATH, PARENT_OPERATOR_PATH};
use attestation_verifier::receipt::address_hex;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use super::api::{AppState, ResponseBody, error_response, json_response, metrics_response};
use super::errors::ApiError;
use crate::boot::{OperatorError, refresh_once};

/// Largest body the parent channel reads.
const MAX_BODY_BYTES: usize = 4096;

/// Routes one parent-channel request.
pub(crate) async fn handle(
    state: Arc<AppState>,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    match (path.as_str(), &method) {
        (PARENT_METRICS_PATH, &Method::GET) => metrics_response(&state),
        (PARENT_METRICS_PATH, _) => {
            error_response(&ApiError::method_not_allowed(method.as_str(), &path, "GET"))
        }
        (PARENT_OPERATOR_PATH, &Method::GET) => operator_state(&state),
        (PARENT_OPERATOR_PATH, &Method::PUT) => bind_operator(&state, request.into_body()).await,
        (PARENT_OPERATOR_PATH, _) => error_response(&ApiError::method_not_allowed(
            method.as_str(),
            &path,
            "GET, PUT",
        )),
        _ => error_response(&ApiError::unknown_path(method.as_str(), &path)),
    }
}

fn operator_state(state: &AppState) -> Response<ResponseBody> {
    let operator = state.claims.operator().get();
    let body = serde_json::json!({
        "operator": operator.map(|operator| address_hex(&operator)),
        "enclave": state.enclave_address,
        "boot_document_binds_operator":
            operator.is_some() && state.documents.current().operator == operator,
    });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

async fn bind_operator(state: &Arc<AppState>, body: Incoming) -> Response<ResponseBody> {
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return error_response(&ApiError::body_too_large(MAX_BODY_BYTES as u64)),
    };
    let operator = match parse_operator(&body) {
        Ok(operator) => operator,
        Err(error) => return error_response(&error),
    };
    match state.claims.operator().bind(operator) {
        Ok(()) => {}
        Err(error @ OperatorError::AlreadyBound { .. }) => {
            return error_response(&ApiError::conflict(
                "operator_already_bound",
                error.to_string(),
            ));
        }
        Err(error) => {
            return error_response(&ApiError::invalid_param("operator", error.to_string()));
        }
    }
    // Fresh documents (`/v1/attestation?nonce=`) name the operator from now on; the cached
    // boot document sent with every answer is replaced now rather than at its next refresh.
    if state.documents.current().operator != Some(operator) {
        let (attester, request, documents) = (
            Arc::clone(&state.signer.attester),
            state.claims.request(None),
            state.documents.clone(),
        );
        let refreshed = tokio::task::spawn_blocking(move || {
            refresh_once(attester.as_ref(), &request, &documents)
        })
        .await;
        match refreshed {
            Ok(Ok(_)) => state.metrics.count_refresh(true),
            Ok(Err(error)) => {
                state.metrics.count_refresh(false);
                tracing::error!(%error, "boot document refresh after binding the operator failed");
                return error_response(&ApiError::unavailable(format!(
                    "the operator is bound, but the boot document could not be renewed ({error}); \
                     repeat the request"
                )));
            }
            Err(error) => {
                return error_response(&ApiError::internal(format!(
                    "the boot document refresh task failed: {error}"
                )));
            }
        }
    }
    tracing::info!(operator = %address_hex(&operator), "operator bound");
    operator_state(state)
}

/// `{"operator": "0x" + 40 hex digits}`, nothing else.
fn parse_operator(body: &Bytes) -> Result<[u8; 20], ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(ApiError::invalid_json)?;
    let Value::Object(fields) = value else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    if let Some(key) = fields.keys().find(|key| key.as_str() != "operator") {
        return Err(ApiError::invalid_param(
            key.as_str(),
            format!("unknown field `{key}`"),
        ));
    }
    let text = fields
        .get("operator")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::invalid_param("operator", "`operator` must be a 0x-hex address")
        })?;
    crate::parse_0x_hex::<20>(text)
        .map_err(|reason| ApiError::invalid_param("operator", format!("`operator`: {reason}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_body_is_strict() {
        let ok = Bytes::from(format!(r#"{{"operator":"0x{}"}}"#, "0f".repeat(20)));
        assert_eq!(parse_operator(&ok).expect("valid"), [0x0f; 20]);
        for bad in [
            "",
            "[]",
            r#"{"operator":1}"#,
            r#"{"operator":"0x12"}"#,
            &format!(r#"{{"operator":"{}"}}"#, "0f".repeat(20)),
            &format!(r#"{{"operator":"0x{}"}}"#, "zz".repeat(20)),
            &format!(r#"{{"operator":"0x{}","extra":1}}"#, "0f".repeat(20)),
        ] {
            assert!(
                parse_operator(&Bytes::from(bad.to_owned())).is_err(),
                "{bad}"
            );
        }
    }
}
