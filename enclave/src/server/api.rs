//! The HTTP API (docs/protocol.md §4a): routing, completions through the scheduler with
//! their receipts, models, attestation (rate-limited) and health. Metrics are served on the
//! parent channel (`super::parent`), not here.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use inference_engine::{GenerationEvent, GenerationRequest, RequestHandle, Scheduler};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use attestation_verifier::protocol::{
    ATTESTATION_PATH, CHAT_COMPLETIONS_PATH, COMPLETIONS_PATH, FULFILLMENTS_PATH, HEALTH_PATH,
    MODELS_PATH, headers,
};

use super::errors::ApiError;
use super::limits::{ConnectionLimits, TokenBucket, admit_attestation};
use super::metrics::Metrics;
use super::onchain::{self, OnchainRelay};
use super::openai::{
    ChunkContent, CompletionRequest, Endpoint, ResponseMeta, Usage, chunk_json, completion_body,
    parse_request,
};
use super::receipts::{ReceiptSigner, StreamSigner, base64, parse_nonce};
use crate::boot::{BootClaims, DocumentCache};
use crate::config::Limits;

/// How often a waiting generation checks whether its client is still there.
const CLIENT_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Stream events buffered between the generation and the connection.
const STREAM_BUFFER_EVENTS: usize = 64;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) scheduler: Scheduler,
    /// Completions admitted (tokenising, waiting or generating) and not yet answered.
    pub(crate) admitted: AtomicUsize,
    pub(crate) queue_capacity: usize,
    pub(crate) signer: ReceiptSigner,
    /// What boot documents bind (signing key, boot binding, the operator once bound); the
    /// nonce is added per call.
    pub(crate) claims: BootClaims,
    pub(crate) documents: DocumentCache,
    pub(crate) model_id: String,
    pub(crate) model_sha256_hex: String,
    pub(crate) system_fingerprint: String,
    pub(crate) enclave_address: String,
    pub(crate) attester_kind: String,
    pub(crate) limits: Limits,
    /// The relay the enclave signs on-chain fulfilments for (none: it signs none).
    pub(crate) onchain_relay: Option<OnchainRelay>,
    pub(crate) metrics: Metrics,
    /// Fresh attestation documents, all connections together.
    pub(crate) attestations: Mutex<TokenBucket>,
    /// Boot time, Unix seconds (the model's `created`).
    pub(crate) created: u64,
}

/// A response body: all at once, or a stream of server-sent events.
#[derive(Debug)]
pub(crate) enum ResponseBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
            Self::Stream(receiver) => receiver
                .poll_recv(cx)
                .map(|event| event.map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Stream(_) => SizeHint::default(),
        }
    }
}

type ApiResponse = Response<ResponseBody>;

/// A place in the bounded queue, given back when dropped. The server bounds admission itself,
/// atomically: the scheduler's own check happens before its count is raised, so requests
/// arriving together could all pass it.
#[derive(Debug)]
struct Admission {
    state: Arc<AppState>,
}

impl Admission {
    fn try_acquire(state: &Arc<AppState>) -> Result<Self, ApiError> {
        state
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |admitted| {
                (admitted < state.queue_capacity).then_some(admitted + 1)
            })
            .map_err(|admitted| ApiError::queue_full(admitted, state.queue_capacity))?;
        Ok(Self {
            state: Arc::clone(state),
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.state.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> ApiResponse {
    let mut response = Response::new(ResponseBody::Full(Some(Bytes::from(body))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> ApiResponse {
    response(status, "application/json", body)
}

/// The Prometheus exposition, with the gauges read now.
pub(crate) fn metrics_response(state: &AppState) -> ApiResponse {
    response(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        state
            .metrics
            .render(state.admitted.load(Ordering::Acquire), state.queue_capacity)
            .into_bytes(),
    )
}

pub(crate) fn error_response(error: &ApiError) -> ApiResponse {
    let mut response = json_response(error.status, error.body());
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(allow) = error.allow {
        response
            .headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

fn header(response: &mut ApiResponse, name: &'static str, value: String) {
    // Hex, decimal and base64 are always valid header values.
    if let Ok(value) = HeaderValue::try_from(value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}

fn random_hex(bytes: usize) -> String {
    let mut random = vec![0u8; bytes];
    // The system generator failing leaves zeros: ids only need to be unlikely to repeat.
    let _ = aws_lc_rs::rand::fill(&mut random);
    hex::encode(&random)
}

fn random_seed() -> u64 {
    let mut random = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut random);
    u64::from_le_bytes(random)
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Routes one request of `connection` and counts its answer.
pub(crate) async fn handle(
    state: Arc<AppState>,
    connection: &ConnectionLimits,
    request: Request<Incoming>,
) -> ApiResponse {
    let started = Instant::now();
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let only = |allowed: Method, allow: &'static str| {
        (method != allowed)
            .then(|| error_response(&ApiError::method_not_allowed(method.as_str(), &path, allow)))
    };
    let (label, response) = match path.as_str() {
        CHAT_COMPLETIONS_PATH => (
            CHAT_COMPLETIONS_PATH,
            match only(Method::POST, "POST") {
                Some(refused) => refused,
                None => completion(&state, Endpoint::Chat, request, started).await,
            },
        ),
        COMPLETIONS_PATH => (
            COMPLETIONS_PATH,
            match only(Method::POST, "POST") {
                Some(refused) => refused,
                None => completion(&state, Endpoint::Completions, request, started).await,
            },
        ),
        FULFILLMENTS_PATH => (
            FULFILLMENTS_PATH,
            match only(Method::POST, "POST") {
                Some(refused) => refused,
                None => fulfillment(&state, request).await,
            },
        ),
        MODELS_PATH => (
            MODELS_PATH,
            only(Method::GET, "GET").unwrap_or_else(|| models(&state, None)),
        ),
        model_path
            if let Some(id) = model_path
                .strip_prefix(MODELS_PATH)
                .and_then(|rest| rest.strip_prefix('/')) =>
        {
            (
                "/v1/models/{id}",
                only(Method::GET, "GET").unwrap_or_else(|| models(&state, Some(id))),
            )
        }
        ATTESTATION_PATH => (
            ATTESTATION_PATH,
            match only(Method::GET, "GET") {
                Some(refused) => refused,
                None => attestation(&state, connection, request.uri().query()).await,
            },
        ),
        HEALTH_PATH => (
            HEALTH_PATH,
            only(Method::GET, "GET").unwrap_or_else(|| health(&state)),
        ),
        _ => (
            "other",
            error_response(&ApiError::unknown_path(method.as_str(), &path)),
        ),
    };
    state
        .metrics
        .count_request(label, response.status().as_u16());
    response
}

fn models(state: &AppState, id: Option<&str>) -> ApiResponse {
    let model = serde_json::json!({
        "id": state.model_id,
        "object": "model",
        "created": state.created,
        "owned_by": "attested-enclave",
        "sha256": state.model_sha256_hex,
    });
    let body = match id {
        None => serde_json::json!({"object": "list", "data": [model]}),
        Some(id) if id == state.model_id => model,
        Some(id) => return error_response(&ApiError::model_not_found(id, &state.model_id)),
    };
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

fn health(state: &AppState) -> ApiResponse {
    let body = serde_json::json!({
        "status": "ok",
        "model": state.model_id,
        "model_sha256": state.model_sha256_hex,
        "enclave_address": state.enclave_address,
        "attester": state.attester_kind,
        "queue_depth": state.admitted.load(Ordering::Acquire),
        "queue_capacity": state.queue_capacity,
    });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

async fn attestation(
    state: &Arc<AppState>,
    connection: &ConnectionLimits,
    query: Option<&str>,
) -> ApiResponse {
    let mut nonce = None;
    for pair in query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "nonce" {
            if nonce.is_some() {
                return error_response(&ApiError::invalid_param(
                    "nonce",
                    "give `nonce` at most once",
                ));
            }
            match parse_nonce(value) {
                Ok(bytes) => nonce = Some(bytes),
                Err(reason) => return error_response(&ApiError::invalid_param("nonce", reason)),
            }
        }
    }
    let document = match nonce {
        None => state.documents.current().bytes.to_vec(),
        Some(nonce) => {
            // Each fresh document costs the attester a signature: bounded per connection and
            // for the whole enclave, so no client can keep the NSM busy.
            if let Err((retry_after, scope)) = admit_attestation(connection, &state.attestations) {
                state.metrics.count_attestation_refused(scope);
                return error_response(&ApiError::rate_limited(
                    "fresh attestation documents",
                    scope,
                    retry_after,
                ));
            }
            let request = state.claims.request(Some(nonce));
            let attester = Arc::clone(&state.signer.attester);
            match tokio::task::spawn_blocking(move || attester.attest(&request)).await {
                Ok(Ok(document)) => {
                    state.metrics.count_fresh_document();
                    document
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "fresh attestation document failed");
                    return error_response(&ApiError::internal(format!(
                        "the attester failed: {error}"
                    )));
                }
                Err(error) => {
                    return error_response(&ApiError::internal(format!(
                        "the attester task failed: {error}"
                    )));
                }
            }
        }
    };
    let mut answer = response(StatusCode::OK, "application/cbor", document);
    answer
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}

/// Reads the body within the size and time limits.
async fn read_body(state: &AppState, body: Incoming) -> Result<Bytes, ApiError> {
    let limit = state.limits.max_request_bytes;
    let timeout_ms = state.limits.header_timeout_ms;
    let collect = Limited::new(body, limit as usize).collect();
    match tokio::time::timeout(Duration::from_millis(u64::from(timeout_ms)), collect).await {
        Err(_) => Err(ApiError::request_timeout("body", timeout_ms)),
        Ok(Err(error)) => {
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::body_too_large(limit))
            } else {
                Err(ApiError::bad_request(format!(
                    "the request body could not be read: {error}"
                )))
            }
        }
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// Receipt headers of a non-streamed answer (and, with a nonce, its per-response document).
/// Blocking when `nonce` is given (the attester).
fn attach_receipt(
    state: &AppState,
    response: &mut ApiResponse,
    request_hash: [u8; 32],
    body: &[u8],
    nonce: Option<&[u8]>,
) -> Result<(), ApiError> {
    let response_hash: [u8; 32] = Sha256::digest(body).into();
    let timestamp_ms = attestation_verifier::UnixMillis::now().as_millis();
    let receipt = state
        .signer
        .sign(request_hash, response_hash, timestamp_ms)
        .map_err(|error| ApiError::internal(error.to_string()))?;
    let document = nonce
        .map(|nonce| state.signer.response_document(&receipt, nonce))
        .transpose()
        .map_err(|error| ApiError::internal(error.to_string()))?;
    header(
        response,
        headers::MODEL_SHA256,
        state.model_sha256_hex.clone(),
    );
    header(response, headers::REQUEST_SHA256, hex::encode(request_hash));
    header(
        response,
        headers::RESPONSE_SHA256,
        hex::encode(response_hash),
    );
    header(response, headers::TIMESTAMP_MS, timestamp_ms.to_string());
    header(response, headers::SIGNATURE, receipt.signature_hex());
    header(
        response,
        headers::DOCUMENT,
        base64(&state.documents.current().bytes),
    );
    if let Some(document) = document {
        state.metrics.count_response_document();
        header(response, headers::RESPONSE_DOCUMENT, base64(&document));
    }
    Ok(())
}

/// An error answer to a request whose body was read: signed like any answer.
fn signed_error(state: &AppState, request_hash: [u8; 32], error: &ApiError) -> ApiResponse {
    let mut response = error_response(error);
    let body = error.body();
    if let Err(failure) = attach_receipt(state, &mut response, request_hash, &body, None) {
        tracing::error!(message = %failure.message, "signing an error answer failed");
    }
    response
}

async fn completion(
    state: &Arc<AppState>,
    endpoint: Endpoint,
    request: Request<Incoming>,
    started: Instant,
) -> ApiResponse {
    let nonce = match request.headers().get(headers::NONCE) {
        None => None,
        Some(value) => match value
            .to_str()
            .map_err(|_| "not ASCII".to_owned())
            .and_then(parse_nonce)
        {
            Ok(nonce) => Some(nonce),
            Err(reason) => {
                return error_response(&ApiError::invalid_param(headers::NONCE, reason));
            }
        },
    };
    // Refuse an announced oversized body before reading any of it.
    if let Some(length) = request.headers().get(CONTENT_LENGTH)
        && let Some(length) = length
            .to_str()
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
        && length > state.limits.max_request_bytes
    {
        return error_response(&ApiError::body_too_large(state.limits.max_request_bytes));
    }
    let body = match read_body(state, request.into_body()).await {
        Ok(body) => body,
        Err(error) => return error_response(&error),
    };
    let request_hash: [u8; 32] = Sha256::digest(&body).into();
    let parsed = match parse_request(endpoint, &body, state.limits.max_tokens, random_seed()) {
        Ok(parsed) => parsed,
        Err(error) => return signed_error(state, request_hash, &error),
    };
    if parsed.model != state.model_id {
        let error = ApiError::model_not_found(&parsed.model, &state.model_id);
        return signed_error(state, request_hash, &error);
    }
    let generation = GenerationRequest {
        prompt: parsed.prompt.clone(),
        params: parsed.params.clone(),
    };
    let admission = match Admission::try_acquire(state) {
        Ok(admission) => admission,
        Err(error) => return signed_error(state, request_hash, &error),
    };
    // Tokenising the prompt is CPU work: off the async threads.
    let submit_state = Arc::clone(state);
    let handle = match tokio::task::spawn_blocking(move || {
        submit_state.scheduler.submit(generation)
    })
    .await
    {
        Ok(Ok(handle)) => handle,
        Ok(Err(error)) => {
            let error = ApiError::from_engine(&error, endpoint.prompt_param());
            return signed_error(state, request_hash, &error);
        }
        Err(error) => {
            let error = ApiError::internal(format!("submitting the request failed: {error}"));
            return signed_error(state, request_hash, &error);
        }
    };
    let meta = ResponseMeta {
        id: format!("{}{}", endpoint.id_prefix(), random_hex(12)),
        created: unix_seconds(),
        model: state.model_id.clone(),
        system_fingerprint: state.system_fingerprint.clone(),
    };
    let job = Generation {
        state: Arc::clone(state),
        _admission: admission,
        handle,
        request: parsed,
        meta,
        request_hash,
        nonce,
        started,
    };
    if job.request.stream {
        stream_completion(job)
    } else {
        full_completion(job).await
    }
}

/// One accepted generation and what its answer needs.
struct Generation {
    state: Arc<AppState>,
    /// Held until the answer is complete (or the client left).
    _admission: Admission,
    handle: RequestHandle,
    request: CompletionRequest,
    meta: ResponseMeta,
    request_hash: [u8; 32],
    nonce: Option<Vec<u8>>,
    started: Instant,
}

/// What a waiting generation hears from the engine.
enum Heard {
    Event(GenerationEvent),
    /// No event within the check interval.
    Quiet,
    /// The scheduler went away.
    Gone,
}

impl Generation {
    fn next(&self) -> Heard {
        match self.handle.events().recv_timeout(CLIENT_CHECK_INTERVAL) {
            Ok(event) => Heard::Event(event),
            Err(RecvTimeoutError::Timeout) => Heard::Quiet,
            Err(RecvTimeoutError::Disconnected) => Heard::Gone,
        }
    }

    fn first_token(&self, seen: &mut bool) {
        if !*seen {
            *seen = true;
            self.state
                .metrics
                .observe_first_token(self.started.elapsed());
        }
    }

    fn finished(&self, prompt_tokens: usize, completion_tokens: usize) {
        let metrics = &self.state.metrics;
        metrics.count_tokens(prompt_tokens, completion_tokens);
        metrics.observe_latency(
            self.request.endpoint == Endpoint::Chat,
            self.started.elapsed(),
        );
    }

    /// Runs on a blocking thread: waits for the end (or for the client to leave, seen as
    /// `answer` closing), then builds the signed answer.
    fn run_full(self, answer: &oneshot::Sender<ApiResponse>) -> Option<ApiResponse> {
        let mut seen_token = false;
        let output = loop {
            match self.next() {
                Heard::Event(GenerationEvent::Delta(_)) => self.first_token(&mut seen_token),
                Heard::Event(GenerationEvent::Finished(output)) => break output,
                Heard::Event(GenerationEvent::Failed(error)) => {
                    let error = ApiError::internal(format!("generation failed: {error}"));
                    return Some(signed_error(&self.state, self.request_hash, &error));
                }
                Heard::Event(_) => {}
                Heard::Quiet => {
                    if answer.is_closed() {
                        // Dropping the handle (on return) cancels the generation.
                        self.state.metrics.count_cancelled();
                        return None;
                    }
                }
                Heard::Gone => {
                    let error = ApiError::unavailable("the generation scheduler stopped");
                    return Some(signed_error(&self.state, self.request_hash, &error));
                }
            }
        };
        self.finished(output.prompt_tokens, output.completion_tokens);
        let body = completion_body(
            self.request.endpoint,
            &self.meta,
            &output.text,
            output.finish_reason.as_str(),
            Usage::new(output.prompt_tokens, output.completion_tokens),
        );
        let mut response = json_response(StatusCode::OK, body.clone());
        if let Err(error) = attach_receipt(
            &self.state,
            &mut response,
            self.request_hash,
            &body,
            self.nonce.as_deref(),
        ) {
            tracing::error!(message = %error.message, "receipt failed; answer withheld");
            return Some(error_response(&error));
        }
        Some(response)
    }

    /// Runs on a blocking thread: turns engine events into signed SSE events until the end,
    /// or until the client leaves (the body channel closes).
    fn run_stream(self, events: &mpsc::Sender<Bytes>) {
        let endpoint = self.request.endpoint;
        let mut signer = StreamSigner::new(self.state.signer.clone(), self.request_hash);
        let send = |signer: &mut StreamSigner, data: &[u8], nonce: Option<&[u8]>| -> bool {
            match signer.event(data, nonce) {
                Ok((event, _)) => events.blocking_send(Bytes::from(event)).is_ok(),
                Err(error) => {
                    // Fail closed: end the stream without `[DONE]` (the client sees it cut).
                    tracing::error!(%error, "signing a stream event failed");
                    false
                }
            }
        };
        let chunk = |content: ChunkContent<'_>| chunk_json(endpoint, &self.meta, content);
        if endpoint == Endpoint::Chat && !send(&mut signer, &chunk(ChunkContent::Start), None) {
            self.state.metrics.count_cancelled();
            return;
        }
        let mut seen_token = false;
        loop {
            match self.next() {
                Heard::Event(GenerationEvent::Delta(text)) => {
                    self.first_token(&mut seen_token);
                    if !text.is_empty()
                        && !send(&mut signer, &chunk(ChunkContent::Text(&text)), None)
                    {
                        self.state.metrics.count_cancelled();
                        return;
                    }
                }
                Heard::Event(GenerationEvent::Finished(output)) => {
                    self.finished(output.prompt_tokens, output.completion_tokens);
                    let reason = output.finish_reason.as_str();
                    if !send(&mut signer, &chunk(ChunkContent::Finish(reason)), None) {
                        return;
                    }
                    if self.request.include_usage {
                        let usage = Usage::new(output.prompt_tokens, output.completion_tokens);
                        if !send(&mut signer, &chunk(ChunkContent::Usage(usage)), None) {
                            return;
                        }
                    }
                    if send(&mut signer, b"[DONE]", self.nonce.as_deref()) && self.nonce.is_some() {
                        self.state.metrics.count_response_document();
                    }
                    return;
                }
                Heard::Event(GenerationEvent::Failed(error)) => {
                    let error = ApiError::internal(format!("generation failed: {error}"));
                    // A signed error event, and no `[DONE]`: the stream is incomplete.
                    send(&mut signer, &error.body(), None);
                    return;
                }
                Heard::Event(_) => {}
                Heard::Quiet => {
                    if events.is_closed() {
                        self.state.metrics.count_cancelled();
                        return;
                    }
                }
                Heard::Gone => {
                    let error = ApiError::unavailable("the generation scheduler stopped");
                    send(&mut signer, &error.body(), None);
                    return;
                }
            }
        }
    }
}

async fn full_completion(job: Generation) -> ApiResponse {
    let (answer, receiver) = oneshot::channel();
    tokio::task::spawn_blocking(move || {
        if let Some(response) = job.run_full(&answer) {
            // The client may have left meanwhile; nothing to do then.
            let _ = answer.send(response);
        }
    });
    match receiver.await {
        Ok(response) => response,
        Err(_) => error_response(&ApiError::internal(
            "the generation ended without an answer",
        )),
    }
}

fn stream_completion(job: Generation) -> ApiResponse {
    let (events, receiver) = mpsc::channel(STREAM_BUFFER_EVENTS);
    let state = Arc::clone(&job.state);
    let request_hash = job.request_hash;
    tokio::task::spawn_blocking(move || job.run_stream(&events));
    let mut response = Response::new(ResponseBody::Stream(receiver));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    header(
        &mut response,
        headers::MODEL_SHA256,
        state.model_sha256_hex.clone(),
    );
    header(
        &mut response,
        headers::REQUEST_SHA256,
        hex::encode(request_hash),
    );
    header(
        &mut response,
        headers::DOCUMENT,
        base64(&state.documents.current().bytes),
    );
    response
}

/// `POST /v1/onchain/fulfillments`: runs the request's input through the model and signs the
/// relay's `Fulfillment` for the answer; the HTTP answer carries the usual receipt too.
async fn fulfillment(state: &Arc<AppState>, request: Request<Incoming>) -> ApiResponse {
    if let Some(length) = request.headers().get(CONTENT_LENGTH)
        && let Some(length) = length
            .to_str()
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
        && length > state.limits.max_request_bytes
    {
        return error_response(&ApiError::body_too_large(state.limits.max_request_bytes));
    }
    let body = match read_body(state, request.into_body()).await {
        Ok(body) => body,
        Err(error) => return error_response(&error),
    };
    let request_hash: [u8; 32] = Sha256::digest(&body).into();
    let job = match onchain::parse_fulfillment(
        &body,
        state.onchain_relay.as_ref(),
        state.claims.operator().get(),
        &state.signer.model_sha256,
        state.limits.max_tokens,
    ) {
        Ok(job) => job,
        Err(error) => return signed_error(state, request_hash, &error),
    };
    let admission = match Admission::try_acquire(state) {
        Ok(admission) => admission,
        Err(error) => return signed_error(state, request_hash, &error),
    };
    let (answer, receiver) = oneshot::channel();
    let worker_state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let _admission = admission;
        if let Some(response) = run_fulfillment(&worker_state, job, request_hash, &answer) {
            let _ = answer.send(response);
        }
    });
    match receiver.await {
        Ok(response) => response,
        Err(_) => error_response(&ApiError::internal(
            "the generation ended without an answer",
        )),
    }
}

/// Blocking: generates, signs the fulfilment and the receipt. `None` when the client left
/// (its generation is cancelled by dropping the handle).
fn run_fulfillment(
    state: &Arc<AppState>,
    job: onchain::FulfillmentJob,
    request_hash: [u8; 32],
    answer: &oneshot::Sender<ApiResponse>,
) -> Option<ApiResponse> {
    let started = Instant::now();
    let handle = match state.scheduler.submit(job.generation.clone()) {
        Ok(handle) => handle,
        Err(error) => {
            let error = ApiError::from_engine(&error, "input");
            return Some(signed_error(state, request_hash, &error));
        }
    };
    let output = loop {
        match handle.events().recv_timeout(CLIENT_CHECK_INTERVAL) {
            Ok(GenerationEvent::Finished(output)) => break output,
            Ok(GenerationEvent::Failed(error)) => {
                let error = ApiError::internal(format!("generation failed: {error}"));
                return Some(signed_error(state, request_hash, &error));
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                if answer.is_closed() {
                    state.metrics.count_cancelled();
                    return None;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                let error = ApiError::unavailable("the generation scheduler stopped");
                return Some(signed_error(state, request_hash, &error));
            }
        }
    };
    state
        .metrics
        .count_tokens(output.prompt_tokens, output.completion_tokens);
    state.metrics.observe_latency(true, started.elapsed());
    let Some(relay) = state.onchain_relay else {
        return Some(error_response(&ApiError::internal("no relay configured")));
    };
    let output_bytes = output.text.as_bytes();
    let digest = job.statement(output_bytes).digest(&relay.domain());
    let signature = match state.signer.key.sign_digest(&digest) {
        Ok(signature) => signature,
        Err(error) => {
            return Some(error_response(&ApiError::internal(format!(
                "signing the fulfilment failed: {error}"
            ))));
        }
    };
    let body = onchain::answer_body(
        output_bytes,
        &output.text,
        &signature,
        &digest,
        &state.enclave_address,
        output.prompt_tokens,
        output.completion_tokens,
    );
    let mut response = json_response(StatusCode::OK, body.clone());
    if let Err(error) = attach_receipt(state, &mut response, request_hash, &body, None) {
        tracing::error!(message = %error.message, "receipt failed; answer withheld");
        return Some(error_response(&error));
    }
    Some(response)
}
