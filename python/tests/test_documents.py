"""attested_inference.verify_document on the real AWS Nitro attestation documents."""

import json

import pytest

import attested_inference as ai

NON_DEBUG = [
    "evervault_beta_valid_2022-10-13",
    "evervault_tls_nondebug_2023-01-18",
    "marlin_aws_2024-12-13",
    "marlin_aws_pcr16_2025-04-29",
    "marlin_verifier_2024-08-07",
]
DEBUG = [
    "evervault_beta_debug_2022-10-12",
    "evervault_ga_2023-09-18",
    "evervault_tls_debug_2023-01-18",
]


def load(vectors_dir, name):
    return (vectors_dir / f"{name}.cbor").read_bytes()


def provenance(vectors_dir, name):
    return json.loads((vectors_dir / f"{name}.json").read_text())


@pytest.mark.parametrize("name", NON_DEBUG)
def test_real_documents_verify_at_their_own_time(vectors_dir, name):
    verified = ai.verify_document(load(vectors_dir, name), at="document")
    assert verified.root_is_aws
    assert verified.root_sha256 == ai.AWS_NITRO_ROOT_G1_SHA256
    assert not verified.debug_mode
    assert verified.timestamp_ms == verified.verified_at_ms
    assert verified.module_id.startswith("i-")
    assert verified.chain[0]["position"] == "root"
    assert len(verified.pcrs) in (16, 17)
    assert all(len(value) == 48 for value in verified.pcrs.values())


def test_fields_match_the_recorded_provenance(vectors_dir):
    name = "marlin_aws_2024-12-13"
    verified = ai.verify_document(load(vectors_dir, name), at="document")
    text = json.dumps(provenance(vectors_dir, name))
    assert str(verified.timestamp_ms) in text
    assert verified.module_id in text
    assert verified.pcrs[0].hex() in text


@pytest.mark.parametrize("name", DEBUG)
def test_debug_documents_need_an_explicit_opt_in(vectors_dir, name):
    document = load(vectors_dir, name)
    with pytest.raises(ai.VerificationError) as refused:
        ai.verify_document(document, at="document")
    assert refused.value.check == "DebugModeRejected"
    assert ai.verify_document(document, at="document", allow_debug=True).debug_mode


def test_expired_documents_are_refused_now(vectors_dir):
    with pytest.raises(ai.VerificationError) as refused:
        ai.verify_document(load(vectors_dir, "marlin_aws_2024-12-13"))
    assert refused.value.check == "CertificateExpired"
    assert "expired" in str(refused.value)


def test_pcr_policy(vectors_dir):
    document = load(vectors_dir, "marlin_aws_2024-12-13")
    pcr0 = ai.verify_document(document, at="document").pcrs[0]
    assert ai.verify_document(document, at="document", pcrs={0: pcr0})
    assert ai.verify_document(document, at="document", pcrs={0: pcr0.hex()})
    wrong = bytes([pcr0[0] ^ 1]) + pcr0[1:]
    with pytest.raises(ai.VerificationError) as refused:
        ai.verify_document(document, at="document", pcrs={0: wrong})
    assert refused.value.check == "PcrMismatch"
    with pytest.raises(ValueError):
        ai.verify_document(document, at="document", pcrs={0: b"short"})


def test_nonce_user_data_and_age(vectors_dir):
    document = load(vectors_dir, "marlin_aws_2024-12-13")
    with pytest.raises(ai.VerificationError) as refused:
        ai.verify_document(document, at="document", nonce=b"\x01" * 32)
    assert refused.value.check in ("NonceMissing", "NonceMismatch")
    verified = ai.verify_document(document, at="document")
    later = verified.timestamp_ms + 10 * 60 * 1000
    with pytest.raises(ai.VerificationError) as refused:
        ai.verify_document(document, at=later, max_age_s=60)
    assert refused.value.check == "TooOld"


def test_tampered_documents_are_refused(vectors_dir):
    document = bytearray(load(vectors_dir, "marlin_aws_2024-12-13"))
    document[len(document) // 2] ^= 0x01
    with pytest.raises(ai.VerificationError):
        ai.verify_document(bytes(document), at="document")
    with pytest.raises(ai.VerificationError) as refused:
        ai.verify_document(b"", at=1)
    assert refused.value.check.startswith("Document.")


def test_explicit_root(vectors_dir, tmp_path):
    document = load(vectors_dir, "marlin_aws_2024-12-13")
    aws_pem = vectors_dir / "aws_nitro_root_g1.pem"
    assert ai.verify_document(document, at="document", root=aws_pem).root_is_aws
    assert ai.verify_document(document, at="document", root=aws_pem.read_bytes()).root_is_aws
    with pytest.raises(ValueError):
        ai.verify_document(document, at="document", root=b"not a pem")
    with pytest.raises(OSError):
        ai.verify_document(document, at="document", root=str(tmp_path / "missing.pem"))
