//! Python bindings (`attested_inference`): the attestation verifier and the client's offline
//! checks (receipts, receipt headers, evidence bundles), the same Rust code the `attest` CLI
//! runs. Every failed check raises `VerificationError` whose `check` names it; bad arguments
//! raise `ValueError` (or `OSError` for unreadable files).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use attest::exchange::{CompletionExchange, VerifyTime, verify_completion};
use attest::headers::CompletionHeaders;
use attest::policy::{ClientPolicy, TrustedEnclave, parse_hex};
use attest::{EvidenceBundle, VerifiedEvidence};
use attestation_verifier::receipt::{
    Receipt as ReceiptParts, ReceiptClaims, VerifiedReceipt, address_hex, ethereum_address,
    verify_receipt as verify_receipt_parts,
};
use attestation_verifier::{
    AWS_NITRO_ROOT_G1_SHA256, Policy, TrustAnchor, UnixMillis, VerifiedAttestation, Verifier,
    parse_document,
};
use pyo3::exceptions::{PyException, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

pyo3::create_exception!(
    attested_inference,
    VerificationError,
    PyException,
    "A document, receipt or evidence bundle failed a check; `check` names the check \
     (e.g. \"Attestation.PcrMismatch\"), the message says what differed."
);

/// The failed check's name from an error's `Debug` form: the nested variant names, e.g.
/// `Exchange(Receipt(SignerMismatch { .. }))` → `Exchange.Receipt.SignerMismatch`.
fn check_name(debug: &str) -> String {
    let mut names = Vec::new();
    let mut rest = debug;
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        names.push(&rest[..end]);
        let after = &rest[end..];
        match after.strip_prefix('(') {
            Some(inner) if inner.starts_with(|c: char| c.is_ascii_uppercase()) => rest = inner,
            _ => break,
        }
    }
    names.join(".")
}

fn verification_error(py: Python<'_>, error: &(impl std::fmt::Debug + std::fmt::Display)) -> PyErr {
    let exception = VerificationError::new_err(error.to_string());
    // Setting an attribute on a fresh exception instance cannot fail in practice; if it did,
    // the exception is still raised, only without `check`.
    let _ = exception
        .value(py)
        .setattr("check", check_name(&format!("{error:?}")));
    exception
}

fn value_error(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}

/// bytes as they are, or a str of hex (optionally 0x-prefixed).
fn bytes_or_hex(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    if value.is_instance_of::<PyBytes>() {
        return value.extract::<Vec<u8>>();
    }
    let text: String = value
        .extract()
        .map_err(|_| value_error(format!("{what} must be bytes or a hex str")))?;
    parse_hex(&text).map_err(|reason| value_error(format!("{what}: {reason}")))
}

fn anchor_from(root: &Bound<'_, PyAny>) -> PyResult<TrustAnchor> {
    let pem = if root.is_instance_of::<PyBytes>() {
        root.extract::<Vec<u8>>()?
    } else {
        let path: PathBuf = root.extract().map_err(|_| {
            value_error("root must be \"aws\", PEM bytes, or the path of a PEM file")
        })?;
        if path.as_os_str() == "aws" {
            return Ok(TrustAnchor::aws_nitro_root_g1());
        }
        std::fs::read(&path).map_err(|error| {
            PyOSError::new_err(format!("cannot read root {}: {error}", path.display()))
        })?
    };
    TrustAnchor::from_pem_explicit(&pem).map_err(|error| value_error(format!("root: {error}")))
}

fn pcrs_from(pcrs: Option<&Bound<'_, PyDict>>) -> PyResult<BTreeMap<u8, Vec<u8>>> {
    let mut out = BTreeMap::new();
    if let Some(pcrs) = pcrs {
        for (index, value) in pcrs.iter() {
            let index: u8 = index
                .extract()
                .ok()
                .filter(|index| *index <= 31)
                .ok_or_else(|| value_error("PCR indices must be ints 0..=31"))?;
            let value = bytes_or_hex(&value, &format!("PCR{index}"))?;
            if !matches!(value.len(), 32 | 48 | 64) {
                return Err(value_error(format!(
                    "PCR{index} must be 32, 48 or 64 bytes, got {}",
                    value.len()
                )));
            }
            out.insert(index, value);
        }
    }
    Ok(out)
}

fn sha256_from(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<[u8; 32]>> {
    value
        .map(|value| {
            bytes_or_hex(value, "model_sha256")?
                .try_into()
                .map_err(|_| value_error("model_sha256 must be 32 bytes (64 hex digits)"))
        })
        .transpose()
}

fn max_age_from(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    seconds
        .map(|seconds| {
            Duration::try_from_secs_f64(seconds)
                .map_err(|_| value_error("max_age_s must be a non-negative number of seconds"))
        })
        .transpose()
}

/// When to verify: `"now"`, `"document"` (the document's own timestamp) or Unix milliseconds.
#[derive(Debug, Clone, Copy)]
enum At {
    Now,
    Document,
    Millis(u64),
}

fn at_from(at: &Bound<'_, PyAny>) -> PyResult<At> {
    if let Ok(millis) = at.extract::<u64>() {
        return Ok(At::Millis(millis));
    }
    match at.extract::<String>().as_deref() {
        Ok("now") => Ok(At::Now),
        Ok("document") => Ok(At::Document),
        _ => Err(value_error(
            "at must be \"now\", \"document\" or milliseconds since the Unix epoch",
        )),
    }
}

fn resolve_at(py: Python<'_>, at: At, document: &[u8]) -> PyResult<UnixMillis> {
    Ok(match at {
        At::Now => UnixMillis::now(),
        At::Millis(millis) => UnixMillis(millis),
        At::Document => parse_document(document)
            .map_err(|error| {
                verification_error(py, &attestation_verifier::VerifyError::from(error))
            })?
            .timestamp(),
    })
}

/// Arguments shared by the functions that apply a client policy.
struct PolicyArgs<'a, 'py> {
    root: &'a Bound<'py, PyAny>,
    pcrs: Option<&'a Bound<'py, PyDict>>,
    model_sha256: Option<&'a Bound<'py, PyAny>>,
    insecure_accept_any_image: bool,
    policy_file: Option<PathBuf>,
    max_age_s: Option<f64>,
}

impl PolicyArgs<'_, '_> {
    fn build(&self) -> PyResult<ClientPolicy> {
        let mut policy = ClientPolicy::new(anchor_from(self.root)?);
        for (index, value) in pcrs_from(self.pcrs)? {
            policy = policy.expect_pcr(index, value);
        }
        if let Some(path) = &self.policy_file {
            policy = policy
                .with_policy_file(path)
                .map_err(|error| value_error(error.to_string()))?;
        }
        if let Some(model) = sha256_from(self.model_sha256)? {
            policy = policy.expect_model_sha256(model);
        }
        if self.insecure_accept_any_image {
            policy = policy.insecure_accept_any_image();
        }
        if let Some(max_age) = max_age_from(self.max_age_s)? {
            policy = policy.max_age(max_age);
        }
        // A missing image pin is the caller's mistake, not a document's failure.
        policy
            .check_image_pinned()
            .map_err(|error| value_error(error.to_string()))?;
        Ok(policy)
    }
}

/// A verified attestation document.
#[pyclass(frozen, module = "attested_inference")]
#[derive(Debug)]
struct Attestation {
    inner: VerifiedAttestation,
    root_sha256: String,
    root_is_aws: bool,
}

impl Attestation {
    fn new(inner: VerifiedAttestation, anchor: &TrustAnchor) -> Self {
        Self {
            inner,
            root_sha256: anchor.sha256_hex(),
            root_is_aws: anchor.is_aws_nitro_root_g1(),
        }
    }
}

fn optional_bytes<'py>(py: Python<'py>, value: Option<&[u8]>) -> Option<Bound<'py, PyBytes>> {
    value.map(|value| PyBytes::new(py, value))
}

#[pymethods]
impl Attestation {
    /// The enclave's module id.
    #[getter]
    fn module_id(&self) -> &str {
        self.inner.module_id()
    }
    /// The document's timestamp, ms since the Unix epoch.
    #[getter]
    fn timestamp_ms(&self) -> u64 {
        self.inner.timestamp().as_millis()
    }
    /// The time it was verified at, ms since the Unix epoch.
    #[getter]
    fn verified_at_ms(&self) -> u64 {
        self.inner.verified_at().as_millis()
    }
    /// PCR index → value.
    #[getter]
    fn pcrs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (index, value) in self.inner.pcrs() {
            dict.set_item(*index, PyBytes::new(py, value))?;
        }
        Ok(dict)
    }
    /// The `public_key` field (the enclave's secp256k1 key for our enclaves).
    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        optional_bytes(py, self.inner.public_key())
    }
    /// The `user_data` field.
    #[getter]
    fn user_data<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        optional_bytes(py, self.inner.user_data())
    }
    /// The `nonce` field.
    #[getter]
    fn nonce<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        optional_bytes(py, self.inner.nonce())
    }
    /// Whether PCR0-2 are all zero (only with `allow_debug=True`).
    #[getter]
    fn debug_mode(&self) -> bool {
        self.inner.is_debug_mode()
    }
    /// SHA-256 of the trust anchor (hex).
    #[getter]
    fn root_sha256(&self) -> &str {
        &self.root_sha256
    }
    /// Whether the anchor is the AWS Nitro Enclaves Root G1.
    #[getter]
    fn root_is_aws(&self) -> bool {
        self.root_is_aws
    }
    /// The Ethereum address of `public_key` when it is a secp256k1 point, else None.
    #[getter]
    fn enclave_address(&self) -> Option<String> {
        self.inner
            .public_key()
            .and_then(|key| ethereum_address(key).ok())
            .map(|address| address_hex(&address))
    }
    /// The certificate chain, root first: dicts with position, subject, not_before,
    /// not_after, sha256.
    #[getter]
    fn chain<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .chain()
            .iter()
            .map(|certificate| {
                let dict = PyDict::new(py);
                dict.set_item("position", certificate.position.to_string())?;
                dict.set_item("subject", &certificate.subject)?;
                dict.set_item("not_before", certificate.not_before.to_string())?;
                dict.set_item("not_after", certificate.not_after.to_string())?;
                dict.set_item("sha256", hex::encode(certificate.sha256))?;
                Ok(dict)
            })
            .collect()
    }
    fn __repr__(&self) -> String {
        format!(
            "Attestation(module_id={:?}, timestamp_ms={}, root_is_aws={})",
            self.inner.module_id(),
            self.inner.timestamp().as_millis(),
            self.root_is_aws
        )
    }
}

/// A verified receipt.
#[pyclass(frozen, module = "attested_inference")]
#[derive(Debug)]
struct Receipt {
    inner: VerifiedReceipt,
}

#[pymethods]
impl Receipt {
    /// The enclave address that signed (0x-hex), the attested one.
    #[getter]
    fn signer(&self) -> String {
        address_hex(&self.inner.signer())
    }
    /// The EIP-712 digest that was signed (hex).
    #[getter]
    fn digest(&self) -> String {
        hex::encode(self.inner.digest())
    }
    /// The model hash (hex).
    #[getter]
    fn model_sha256(&self) -> String {
        hex::encode(self.inner.claims().model_hash)
    }
    /// SHA-256 of the request body (hex).
    #[getter]
    fn request_sha256(&self) -> String {
        hex::encode(self.inner.claims().request_hash)
    }
    /// SHA-256 of the response body, or a stream's final chain value (hex).
    #[getter]
    fn response_sha256(&self) -> String {
        hex::encode(self.inner.claims().response_hash)
    }
    /// The enclave's clock when it signed, ms since the Unix epoch.
    #[getter]
    fn timestamp_ms(&self) -> u64 {
        self.inner.claims().timestamp_ms
    }
    fn __repr__(&self) -> String {
        format!(
            "Receipt(signer={}, model_sha256={}, timestamp_ms={})",
            self.signer(),
            self.model_sha256(),
            self.timestamp_ms()
        )
    }
}

/// A verified evidence bundle.
#[pyclass(frozen, module = "attested_inference")]
#[derive(Debug)]
struct Evidence {
    attestation: Py<Attestation>,
    receipt: Py<Receipt>,
    response_document: Option<Py<Attestation>>,
    stream_events: Option<usize>,
    answer: String,
    endpoint: String,
    model_sha256: String,
}

#[pymethods]
impl Evidence {
    /// The boot document that vouches for the key, verified at its own time.
    #[getter]
    fn attestation(&self, py: Python<'_>) -> Py<Attestation> {
        self.attestation.clone_ref(py)
    }
    /// The receipt of the whole answer.
    #[getter]
    fn receipt(&self, py: Python<'_>) -> Py<Receipt> {
        self.receipt.clone_ref(py)
    }
    /// The per-response document, verified, if the bundle has one.
    #[getter]
    fn response_document(&self, py: Python<'_>) -> Option<Py<Attestation>> {
        self.response_document
            .as_ref()
            .map(|document| document.clone_ref(py))
    }
    /// Whether the answer was streamed.
    #[getter]
    fn streamed(&self) -> bool {
        self.stream_events.is_some()
    }
    /// How many signed events the stream had (None when not streamed).
    #[getter]
    fn stream_events(&self) -> Option<usize> {
        self.stream_events
    }
    /// The answer text.
    #[getter]
    fn answer(&self) -> &str {
        &self.answer
    }
    /// The request path the answer came from.
    #[getter]
    fn endpoint(&self) -> &str {
        &self.endpoint
    }
    /// The attested model hash (hex).
    #[getter]
    fn model_sha256(&self) -> &str {
        &self.model_sha256
    }
    fn __repr__(&self) -> String {
        format!(
            "Evidence(endpoint={:?}, signer={}, streamed={}, answer={:?})",
            self.endpoint,
            self.receipt.get().signer(),
            self.streamed(),
            self.answer.chars().take(40).collect::<String>()
        )
    }
}

/// Verifies an attestation document: the chain to the root, the ES384 signature, and the
/// given PCRs / nonce / user_data / age. Returns the verified `Attestation`.
#[pyfunction]
#[pyo3(signature = (document, *, root = None, at = None, pcrs = None, nonce = None, user_data = None, max_age_s = None, allow_debug = false))]
#[allow(clippy::too_many_arguments)]
fn verify_document(
    py: Python<'_>,
    document: &[u8],
    root: Option<&Bound<'_, PyAny>>,
    at: Option<&Bound<'_, PyAny>>,
    pcrs: Option<&Bound<'_, PyDict>>,
    nonce: Option<&Bound<'_, PyAny>>,
    user_data: Option<&Bound<'_, PyAny>>,
    max_age_s: Option<f64>,
    allow_debug: bool,
) -> PyResult<Attestation> {
    let anchor = match root {
        Some(root) => anchor_from(root)?,
        None => TrustAnchor::aws_nitro_root_g1(),
    };
    let at = at.map(at_from).transpose()?.unwrap_or(At::Now);
    let mut policy = Policy::new();
    for (index, value) in pcrs_from(pcrs)? {
        policy = policy.expect_pcr(index, value);
    }
    if let Some(nonce) = nonce {
        policy = policy.expect_nonce(bytes_or_hex(nonce, "nonce")?);
    }
    if let Some(user_data) = user_data {
        policy = policy.expect_user_data(bytes_or_hex(user_data, "user_data")?);
    }
    if let Some(max_age) = max_age_from(max_age_s)? {
        policy = policy.max_age(max_age);
    }
    if allow_debug {
        policy = policy.allow_debug_mode();
    }
    let at = resolve_at(py, at, document)?;
    let verifier = Verifier::new(anchor);
    let verified = py
        .detach(|| verifier.verify(document, &policy, at))
        .map_err(|error| verification_error(py, &error))?;
    Ok(Attestation::new(verified, verifier.anchor()))
}

fn trusted_enclave(
    py: Python<'_>,
    policy: &ClientPolicy,
    document: &[u8],
    at: At,
    live: bool,
) -> PyResult<TrustedEnclave> {
    let at = resolve_at(py, at, document)?;
    py.detach(|| policy.verify_boot_document(document, None, at, live))
        .map_err(|error| verification_error(py, &error))
}

/// Verifies a receipt: the boot document under the policy, then the signature over
/// (attested model, sha256(request_body), sha256(response_body), timestamp_ms) recovering to
/// the attested key. Returns the verified `Receipt`.
#[pyfunction]
#[pyo3(signature = (document, request_body, response_body, signature, timestamp_ms, *, root = None, at = None, pcrs = None, model_sha256 = None, insecure_accept_any_image = false, max_age_s = None))]
#[allow(clippy::too_many_arguments)]
fn verify_receipt(
    py: Python<'_>,
    document: &[u8],
    request_body: &[u8],
    response_body: &[u8],
    signature: &Bound<'_, PyAny>,
    timestamp_ms: u64,
    root: Option<&Bound<'_, PyAny>>,
    at: Option<&Bound<'_, PyAny>>,
    pcrs: Option<&Bound<'_, PyDict>>,
    model_sha256: Option<&Bound<'_, PyAny>>,
    insecure_accept_any_image: bool,
    max_age_s: Option<f64>,
) -> PyResult<Receipt> {
    let aws_root = pyo3::types::PyString::new(py, "aws").into_any();
    let policy = PolicyArgs {
        root: root.unwrap_or(&aws_root),
        pcrs,
        model_sha256,
        insecure_accept_any_image,
        policy_file: None,
        max_age_s,
    }
    .build()?;
    let at = at.map(at_from).transpose()?.unwrap_or(At::Now);
    let enclave = trusted_enclave(py, &policy, document, at, max_age_s.is_some())?;
    let receipt = ReceiptParts {
        claims: ReceiptClaims::for_bodies(
            enclave.binding.model_sha256,
            request_body,
            response_body,
            timestamp_ms,
        ),
        signature: bytes_or_hex(signature, "signature")?,
    };
    let verified =
        verify_receipt_parts(&receipt, &enclave.attestation, request_body, response_body)
            .map_err(|error| verification_error(py, &error))?;
    Ok(Receipt { inner: verified })
}

/// Verifies a non-streamed HTTP answer from its `x-attested-*` headers (any mapping of header
/// name to value; names are matched case-insensitively) and the exact bodies: the boot
/// document from the headers under the policy, the receipt, and the per-response document
/// when `response_nonce` was sent. Returns the verified `Receipt`.
#[pyfunction]
#[pyo3(signature = (headers, request_body, response_body, *, root = None, at = "now", pcrs = None, model_sha256 = None, insecure_accept_any_image = false, max_age_s = None, response_nonce = None))]
#[allow(clippy::too_many_arguments)]
fn verify_response(
    py: Python<'_>,
    headers: &Bound<'_, PyAny>,
    request_body: &[u8],
    response_body: &[u8],
    root: Option<&Bound<'_, PyAny>>,
    at: &str,
    pcrs: Option<&Bound<'_, PyDict>>,
    model_sha256: Option<&Bound<'_, PyAny>>,
    insecure_accept_any_image: bool,
    max_age_s: Option<f64>,
    response_nonce: Option<&Bound<'_, PyAny>>,
) -> PyResult<Receipt> {
    let aws_root = pyo3::types::PyString::new(py, "aws").into_any();
    let policy = PolicyArgs {
        root: root.unwrap_or(&aws_root),
        pcrs,
        model_sha256,
        insecure_accept_any_image,
        policy_file: None,
        max_age_s,
    }
    .build()?;
    let (time, at) = match at {
        "now" => (VerifyTime::Now, At::Now),
        "document" => (VerifyTime::DocumentTime, At::Document),
        _ => return Err(value_error("at must be \"now\" or \"document\"")),
    };
    let mut lowered = BTreeMap::new();
    for item in headers.call_method0("items")?.try_iter()? {
        let (name, value): (String, String) = item?.extract()?;
        lowered.insert(name.to_ascii_lowercase(), value);
    }
    let parsed = CompletionHeaders::parse(|name| lowered.get(name).map(String::as_str))
        .map_err(|error| verification_error(py, &error))?;
    let response_nonce = response_nonce
        .map(|nonce| bytes_or_hex(nonce, "response_nonce"))
        .transpose()?;
    let enclave = trusted_enclave(py, &policy, &parsed.document, at, time == VerifyTime::Now)?;
    let exchange = CompletionExchange {
        request_body,
        response_body,
        receipt: &parsed.receipt,
        response_document: parsed.response_document.as_deref(),
        response_nonce: response_nonce.as_deref(),
    };
    let verified = verify_completion(&policy, &enclave, &exchange, time)
        .map_err(|error| verification_error(py, &error))?;
    Ok(Receipt {
        inner: verified.receipt,
    })
}

/// Verifies an evidence bundle offline (each document at its own timestamp): `bundle` is the
/// JSON as bytes, or the path of the file (str or os.PathLike). Returns the verified
/// `Evidence`.
#[pyfunction]
#[pyo3(signature = (bundle, *, root = None, pcrs = None, model_sha256 = None, insecure_accept_any_image = false, policy_file = None))]
fn verify_evidence(
    py: Python<'_>,
    bundle: &Bound<'_, PyAny>,
    root: Option<&Bound<'_, PyAny>>,
    pcrs: Option<&Bound<'_, PyDict>>,
    model_sha256: Option<&Bound<'_, PyAny>>,
    insecure_accept_any_image: bool,
    policy_file: Option<PathBuf>,
) -> PyResult<Evidence> {
    let aws_root = pyo3::types::PyString::new(py, "aws").into_any();
    let policy = PolicyArgs {
        root: root.unwrap_or(&aws_root),
        pcrs,
        model_sha256,
        insecure_accept_any_image,
        policy_file,
        max_age_s: None,
    }
    .build()?;
    let parsed = if bundle.is_instance_of::<PyBytes>() {
        EvidenceBundle::from_json(&bundle.extract::<Vec<u8>>()?)
    } else {
        let path: PathBuf = bundle
            .extract()
            .map_err(|_| value_error("bundle must be JSON bytes or a path"))?;
        EvidenceBundle::load(&path)
    }
    .map_err(|error| verification_error(py, &error))?;
    let verified: VerifiedEvidence = py
        .detach(|| parsed.verify(&policy))
        .map_err(|error| verification_error(py, &error))?;
    let model_sha256 = hex::encode(verified.enclave.binding.model_sha256);
    Ok(Evidence {
        attestation: Py::new(
            py,
            Attestation::new(verified.enclave.attestation, policy.anchor()),
        )?,
        receipt: Py::new(
            py,
            Receipt {
                inner: verified.receipt,
            },
        )?,
        response_document: verified
            .response_document
            .map(|document| Py::new(py, Attestation::new(document, policy.anchor())))
            .transpose()?,
        stream_events: verified.stream_events,
        answer: verified.answer,
        endpoint: verified.endpoint,
        model_sha256,
    })
}

/// Verify AWS Nitro attestation documents, receipts and evidence bundles of attested LLM
/// inference (the same Rust verifier as the `attest` CLI).
#[pymodule]
fn attested_inference(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("VerificationError", py.get_type::<VerificationError>())?;
    module.add(
        "AWS_NITRO_ROOT_G1_SHA256",
        hex::encode(AWS_NITRO_ROOT_G1_SHA256),
    )?;
    module.add("EVIDENCE_FORMAT", attest::evidence::EVIDENCE_FORMAT)?;
    module.add_class::<Attestation>()?;
    module.add_class::<Receipt>()?;
    module.add_class::<Evidence>()?;
    module.add_function(wrap_pyfunction!(verify_document, module)?)?;
    module.add_function(wrap_pyfunction!(verify_receipt, module)?)?;
    module.add_function(wrap_pyfunction!(verify_response, module)?)?;
    module.add_function(wrap_pyfunction!(verify_evidence, module)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names_nested_checks() {
        assert_eq!(
            check_name("Exchange(Receipt(SignerMismatch { expected: \"0x\" }))"),
            "Exchange.Receipt.SignerMismatch"
        );
        assert_eq!(check_name("ImageNotPinned"), "ImageNotPinned");
        assert_eq!(check_name("Json { reason: \"A(B)\" }"), "Json");
        assert_eq!(
            check_name("Attestation(Document(Truncated { offset: 3 }))"),
            "Attestation.Document.Truncated"
        );
    }
}
