"""The generic HMAC-SHA256 verifier, on raw bytes, with a reason code for every refusal."""

from __future__ import annotations

import pytest

from automate_core.ingest.signatures import SignatureError, sign_hmac_sha256, verify_hmac_sha256

BODY = b'{"type":"x"}'


def test_valid_signature_passes() -> None:
    verify_hmac_sha256({"x-automate-signature": sign_hmac_sha256(b"k1", BODY)}, BODY, [b"k1"])


def test_any_active_secret_verifies_during_rotation() -> None:
    header = {"x-automate-signature": sign_hmac_sha256(b"new", BODY)}
    verify_hmac_sha256(header, BODY, [b"old", b"new"])


@pytest.mark.parametrize(
    ("headers", "secrets", "reason"),
    [
        ({}, [b"k"], "missing_signature"),
        ({"x-automate-signature": "md5=abc"}, [b"k"], "malformed_signature"),
        ({"x-automate-signature": "sha256="}, [b"k"], "malformed_signature"),
        ({"x-automate-signature": sign_hmac_sha256(b"other", BODY)}, [b"k"], "signature_mismatch"),
        ({"x-automate-signature": sign_hmac_sha256(b"k", BODY)}, [], "no_secret_configured"),
    ],
)
def test_refusals_have_reason_codes(headers: dict[str, str], secrets: list[bytes], reason: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify_hmac_sha256(headers, BODY, secrets)
    assert caught.value.reason == reason
    assert caught.value.status == 401


def test_a_changed_body_byte_fails() -> None:
    header = {"x-automate-signature": sign_hmac_sha256(b"k", BODY)}
    with pytest.raises(SignatureError):
        verify_hmac_sha256(header, BODY + b" ", [b"k"])


def test_error_never_contains_the_secret() -> None:
    secret = b"super-secret-value"
    with pytest.raises(SignatureError) as caught:
        verify_hmac_sha256({"x-automate-signature": "sha256=00"}, BODY, [secret])
    assert "super-secret-value" not in str(caught.value)
