//! The enclave's parent channel (docs/protocol.md §5a), as the operator's relayer uses it: bind
//! the operator the enclave serves, once per enclave boot. The channel listens on a vsock port
//! only the parent instance reaches (`vsock:<cid>:5006` in production; `tcp:` in development),
//! so reaching it is what makes the relayer the operator's; what it binds comes back attested
//! in every document, which [`crate::enclave::EnclaveAnswers::connect`] checks.

use std::time::Duration;

use alloy::primitives::Address;
use attestation_verifier::protocol::PARENT_OPERATOR_PATH;
use host_proxy::BackendAddress;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::error::RelayerError;

/// Longest wait for one parent-channel exchange (the enclave renews its boot document while
/// it answers a binding).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;
/// Tries of a binding the enclave answered 503 (its document renewal failed).
const BIND_ATTEMPTS: u32 = 3;

/// Binds `operator` on the enclave whose parent channel is at `address`. Binding the operator
/// already bound succeeds (the enclave changes nothing).
///
/// # Errors
/// [`RelayerError::OperatorBinding`] when the enclave cannot be reached, refuses (another
/// operator is bound: 409), or keeps failing to renew its document (503).
pub async fn bind_operator(address: BackendAddress, operator: Address) -> Result<(), RelayerError> {
    let body = serde_json::json!({ "operator": operator }).to_string();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (status, answer) = exchange(address, "PUT", PARENT_OPERATOR_PATH, &body).await?;
        match status {
            200 => {
                tracing::info!(%operator, parent = %address, "operator bound on the enclave");
                return Ok(());
            }
            503 if attempt < BIND_ATTEMPTS => {
                tracing::warn!(parent = %address, attempt, answer, "binding not finished; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            _ => {
                return Err(RelayerError::OperatorBinding {
                    parent: address.to_string(),
                    reason: format!("HTTP {status}: {}", answer.trim()),
                });
            }
        }
    }
}

/// One HTTP/1.1 exchange with `Connection: close`: the status and the body.
async fn exchange(
    address: BackendAddress,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), RelayerError> {
    let failed = |reason: String| RelayerError::OperatorBinding {
        parent: address.to_string(),
        reason,
    };
    let work = async {
        let mut stream = address
            .connect()
            .await
            .map_err(|error| failed(format!("connect: {error}")))?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: enclave\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|error| failed(format!("write: {error}")))?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER_BYTES)
            .read_to_end(&mut answer)
            .await
            .map_err(|error| failed(format!("read: {error}")))?;
        parse_answer(&answer).ok_or_else(|| {
            failed(format!(
                "not an HTTP answer: {:?}",
                String::from_utf8_lossy(&answer[..answer.len().min(200)])
            ))
        })
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, work)
        .await
        .map_err(|_| failed(format!("no answer within {EXCHANGE_TIMEOUT:?}")))?
}

/// `HTTP/1.1 <status> ...\r\n...\r\n\r\n<body>` (the enclave answers with a length, never
/// chunked, on this channel).
fn parse_answer(answer: &[u8]) -> Option<(u16, String)> {
    let text = std::str::from_utf8(answer).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status_line = head.lines().next()?;
    let mut words = status_line.split(' ');
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = words.next()?.parse().ok()?;
    Some((status, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_and_garbage_does_not() {
        assert_eq!(
            parse_answer(b"HTTP/1.1 409 Conflict\r\ncontent-length: 2\r\n\r\n{}"),
            Some((409, "{}".to_owned()))
        );
        assert_eq!(parse_answer(b"SSH-2.0-OpenSSH\r\n\r\n"), None);
        assert_eq!(parse_answer(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(parse_answer(b"HTTP/1.1 abc OK\r\n\r\n"), None);
    }
}
