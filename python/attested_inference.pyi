"""Verify AWS Nitro attestation documents, receipts and evidence bundles of attested LLM
inference. The checks are the project's Rust verifier (the same code as the `attest` CLI)."""

import os
from typing import Mapping, Optional, Union

BytesOrHex = Union[bytes, str]
Root = Union[str, bytes, os.PathLike]

AWS_NITRO_ROOT_G1_SHA256: str
EVIDENCE_FORMAT: str

class VerificationError(Exception):
    """A check failed; ``check`` names it, e.g. ``"Attestation.PcrMismatch"``."""
    check: str

class Attestation:
    module_id: str
    timestamp_ms: int
    verified_at_ms: int
    pcrs: dict[int, bytes]
    public_key: Optional[bytes]
    user_data: Optional[bytes]
    nonce: Optional[bytes]
    debug_mode: bool
    root_sha256: str
    root_is_aws: bool
    enclave_address: Optional[str]
    chain: list[dict[str, str]]

class Receipt:
    signer: str
    digest: str
    model_sha256: str
    request_sha256: str
    response_sha256: str
    timestamp_ms: int

class Evidence:
    attestation: Attestation
    receipt: Receipt
    response_document: Optional[Attestation]
    streamed: bool
    stream_events: Optional[int]
    answer: str
    endpoint: str
    model_sha256: str

def verify_document(
    document: bytes,
    *,
    root: Optional[Root] = None,
    at: Union[int, str, None] = None,
    pcrs: Optional[Mapping[int, BytesOrHex]] = None,
    nonce: Optional[BytesOrHex] = None,
    user_data: Optional[BytesOrHex] = None,
    max_age_s: Optional[float] = None,
    allow_debug: bool = False,
) -> Attestation:
    """Verify a document under ``root`` (default: the AWS Nitro root; else PEM bytes or a PEM
    file) at ``at`` ("now", "document" for its own timestamp, or Unix milliseconds)."""

def verify_receipt(
    document: bytes,
    request_body: bytes,
    response_body: bytes,
    signature: BytesOrHex,
    timestamp_ms: int,
    *,
    root: Optional[Root] = None,
    at: Union[int, str, None] = None,
    pcrs: Optional[Mapping[int, BytesOrHex]] = None,
    model_sha256: Optional[BytesOrHex] = None,
    insecure_accept_any_image: bool = False,
    max_age_s: Optional[float] = None,
) -> Receipt:
    """Verify a receipt signed by the key the boot document attests, over the exact bodies."""

def verify_response(
    headers: Mapping[str, str],
    request_body: bytes,
    response_body: bytes,
    *,
    root: Optional[Root] = None,
    at: str = "now",
    pcrs: Optional[Mapping[int, BytesOrHex]] = None,
    model_sha256: Optional[BytesOrHex] = None,
    insecure_accept_any_image: bool = False,
    max_age_s: Optional[float] = None,
    response_nonce: Optional[BytesOrHex] = None,
) -> Receipt:
    """Verify a non-streamed answer from its ``x-attested-*`` headers and exact bodies."""

def verify_evidence(
    bundle: Union[bytes, str, os.PathLike],
    *,
    root: Optional[Root] = None,
    pcrs: Optional[Mapping[int, BytesOrHex]] = None,
    model_sha256: Optional[BytesOrHex] = None,
    insecure_accept_any_image: bool = False,
    policy_file: Optional[Union[str, os.PathLike]] = None,
) -> Evidence:
    """Verify an evidence bundle (JSON bytes or a file path) offline, each document at its own
    timestamp."""
