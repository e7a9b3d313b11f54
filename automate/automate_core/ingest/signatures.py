"""Verifying webhook senders on the raw body bytes, with constant-time comparison.

A verifier gets the request headers (lower-cased names), the raw body and the source's active
secrets (several during a key rotation) and raises :class:`SignatureError` with a reason code, or
returns normally. Nothing about the secret goes into the error.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Protocol

from automate_core.exceptions import IngestError


class SignatureError(IngestError):
    """The request's signature could not be verified."""

    status = 401
    reason = "signature_mismatch"


class Verifier(Protocol):
    def __call__(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[bytes]) -> None: ...


def _first_match(expected: Sequence[bytes], candidates: Sequence[bytes]) -> bool:
    # compare_digest on every pair, so timing does not reveal which secret or entry matched
    matched = False
    for want in expected:
        for got in candidates:
            matched |= hmac.compare_digest(want, got)
    return matched


def verify_hmac_sha256(headers: Mapping[str, str], body: bytes, secrets: Sequence[bytes]) -> None:
    """``X-Automate-Signature: sha256=<hex of HMAC-SHA256(secret, body)>``."""
    header = headers.get("x-automate-signature", "")
    if not header:
        raise SignatureError("Missing X-Automate-Signature header.", reason="missing_signature")
    prefix, _, value = header.partition("=")
    if prefix.strip().lower() != "sha256" or not value:
        raise SignatureError(
            "X-Automate-Signature must look like 'sha256=<hex digest>'.",
            reason="malformed_signature",
        )
    if not secrets:
        raise SignatureError("The source has no signing secret configured.", reason="no_secret_configured")
    expected = [hmac.new(s, body, hashlib.sha256).hexdigest().encode() for s in secrets]
    if not _first_match(expected, [value.strip().lower().encode()]):
        raise SignatureError("The signature does not match the body.")


def verify_none(headers: Mapping[str, str], body: bytes, secrets: Sequence[bytes]) -> None:
    """Explicit opt-out: the source accepts unsigned requests."""


VERIFIERS: dict[str, Verifier] = {
    "hmac_sha256": verify_hmac_sha256,
    "none": verify_none,
}


def sign_hmac_sha256(secret: bytes, body: bytes) -> str:
    """The header value a sender puts in ``X-Automate-Signature``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
