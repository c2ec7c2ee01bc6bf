"""Evidence bundles saved by the Rust `attest chat --save-evidence` against a real enclave
(development attester, real model), verified offline in Python; and a raw answer verified
from its receipt headers."""

import base64
import http.client
import json
import ssl

import pytest

import attested_inference as ai
from conftest import MODEL_SHA256


@pytest.mark.parametrize("kind", ["plain", "stream"])
def test_bundles_saved_by_the_cli_verify(enclave, saved_bundles, kind):
    bundle = saved_bundles[kind]
    evidence = ai.verify_evidence(bundle["path"], root=enclave.root_pem, model_sha256=MODEL_SHA256)
    assert evidence.model_sha256 == MODEL_SHA256
    assert evidence.answer.strip() == bundle["stdout"].strip()
    assert evidence.answer
    assert evidence.endpoint == "/v1/chat/completions"
    assert evidence.streamed == (kind == "stream")
    assert evidence.receipt.signer == evidence.attestation.enclave_address
    assert evidence.response_document is not None
    assert not evidence.attestation.root_is_aws
    # The same bundle as bytes.
    again = ai.verify_evidence(bundle["path"].read_bytes(), root=enclave.root_pem)
    assert again.receipt.digest == evidence.receipt.digest


def tampered(bundle, change):
    data = json.loads(json.dumps(bundle["json"]))
    change(data)
    return json.dumps(data).encode()


def flip_base64(value):
    raw = bytearray(base64.b64decode(value))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_tampered_bundles_are_refused(enclave, saved_bundles):
    plain, stream = saved_bundles["plain"], saved_bundles["stream"]
    cases = [
        (plain, lambda d: d.update(response_body=flip_base64(d["response_body"])), "Exchange.Receipt.ResponseHashMismatch"),
        (plain, lambda d: d.update(request_body=flip_base64(d["request_body"])), "Exchange.Receipt.RequestHashMismatch"),
        (plain, lambda d: d["receipt"].update(response_sha256="00" * 32), "Exchange.Receipt.SignerMismatch"),
        (plain, lambda d: d["receipt"].update(timestamp_ms=d["receipt"]["timestamp_ms"] + 1), "Exchange.Receipt.SignerMismatch"),
        (plain, lambda d: d.update(attestation_document=flip_base64(d["attestation_document"])), "Document.Attestation"),
        (plain, lambda d: d.update(attestation_nonce="00" * 32), "Document.Attestation.NonceMismatch"),
        (plain, lambda d: d.update(response_document=None, response_nonce=None) or d.update(response_nonce="11" * 32), "Exchange.ResponseDocumentMissing"),
        (stream, lambda d: d["stream_events"].pop(1), "Exchange.Receipt.SignerMismatch"),
        (stream, lambda d: d["stream_events"].pop(), "Exchange.StreamIncomplete"),
        (stream, lambda d: d["stream_events"][0].update(data=flip_base64(d["stream_events"][0]["data"])), "Exchange.Receipt.SignerMismatch"),
        (plain, lambda d: d.update(format="attested-inference-evidence/0"), "UnsupportedFormat"),
    ]
    for bundle, change, check in cases:
        with pytest.raises(ai.VerificationError) as refused:
            ai.verify_evidence(tampered(bundle, change), root=enclave.root_pem)
        assert refused.value.check.startswith(check), (check, refused.value.check, str(refused.value))


def test_policy_mismatches_are_refused(enclave, saved_bundles):
    path = saved_bundles["plain"]["path"]
    with pytest.raises(ai.VerificationError) as refused:
        ai.verify_evidence(path, root=enclave.root_pem, model_sha256="00" * 32)
    assert refused.value.check == "Document.Binding.ModelMismatch"
    with pytest.raises(ai.VerificationError) as refused:
        ai.verify_evidence(path, root=enclave.root_pem, pcrs={0: "00" * 48})
    assert refused.value.check == "Document.Attestation.PcrMismatch"
    # The AWS root needs a pinned image, and a development document never chains to it.
    with pytest.raises(ValueError):
        ai.verify_evidence(path)
    with pytest.raises(ai.VerificationError) as refused:
        ai.verify_evidence(path, insecure_accept_any_image=True)
    assert refused.value.check == "Document.Attestation.UntrustedRoot"


def test_the_cli_verifies_the_same_bundle(enclave, saved_bundles):
    import subprocess

    path = saved_bundles["stream"]["path"]
    ok = subprocess.run(
        [str(enclave.attest), "verify-evidence", str(path), "--root", str(enclave.root_pem)],
        capture_output=True, text=True, timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "VALID evidence" in ok.stderr
    bad = path.with_name("bad.json")
    bad.write_bytes(tampered(saved_bundles["stream"], lambda d: d["stream_events"].pop()))
    refused = subprocess.run(
        [str(enclave.attest), "verify-evidence", str(bad), "--root", str(enclave.root_pem)],
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 1
    assert "REFUSED" in refused.stderr and "[DONE]" in refused.stderr


def test_raw_answer_verified_from_its_headers(enclave):
    """A Python client without the Rust connection: plain TLS (the TLS key is then not
    checked), then the receipt headers and per-response document verified."""
    host, port = enclave.url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=120)
    connection.request("GET", "/v1/models")
    model = json.loads(connection.getresponse().read())["data"][0]["id"]
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 4}
    ).encode()
    nonce = "ab" * 32
    connection.request(
        "POST", "/v1/chat/completions", body=body,
        headers={"content-type": "application/json", "x-attested-nonce": nonce},
    )
    response = connection.getresponse()
    answer = response.read()
    assert response.status == 200, answer
    headers = dict(response.getheaders())
    receipt = ai.verify_response(
        headers, body, answer, root=enclave.root_pem, model_sha256=MODEL_SHA256, response_nonce=nonce
    )
    assert receipt.model_sha256 == MODEL_SHA256
    document = base64.b64decode(headers["x-attested-document"])
    direct = ai.verify_receipt(
        document, body, answer, headers["x-attested-signature"],
        int(headers["x-attested-timestamp-ms"]), root=enclave.root_pem,
    )
    assert direct.digest == receipt.digest
    with pytest.raises(ai.VerificationError) as refused:
        ai.verify_response(headers, body, answer + b" ", root=enclave.root_pem, response_nonce=nonce)
    assert refused.value.check == "Receipt.ResponseHashMismatch"
    with pytest.raises(ai.VerificationError) as refused:
        ai.verify_response(headers, body, answer, root=enclave.root_pem)
    assert refused.value.check == "ResponseDocumentUnexpected"
    connection.close()
