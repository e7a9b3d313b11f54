"""GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``.

No timestamp: replays are caught by ``X-GitHub-Delivery``, which stays the same when a delivery is
redelivered, so it is the idempotency key. ``X-GitHub-Event`` is the event type. GitHub can also
post ``application/x-www-form-urlencoded`` with the JSON in a ``payload`` field; the signature is
over the raw form body either way. The legacy SHA-1 ``X-Hub-Signature`` is not accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from automate_core.ingest.schemes.base import (
    MIN_SECRET_BYTES,
    Headers,
    Scheme,
    any_match,
    hexdecode,
    mac,
    require_secrets,
    signature_error,
)


class GitHub(Scheme):
    name = "github"
    label = "GitHub (X-Hub-Signature-256)"
    form_encoded = True
    min_secret_bytes = MIN_SECRET_BYTES  # the operator types GitHub's secret

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[bytes], now: float) -> None:
        header = headers.get("x-hub-signature-256", "")
        if not header:
            raise signature_error("missing_signature", "Missing X-Hub-Signature-256 header.")
        prefix, _, value = header.partition("=")
        decoded = hexdecode(value) if prefix.strip() == "sha256" else None
        if not decoded:
            raise signature_error(
                "malformed_signature", "X-Hub-Signature-256 must look like 'sha256=<hex digest>'."
            )
        require_secrets(secrets)
        if not any_match((mac(s, body) for s in secrets), [decoded]):
            raise signature_error("signature_mismatch", "X-Hub-Signature-256 does not match the body.")

    def idempotency_key(self, headers: Headers, payload: Any) -> str | None:
        return headers.get("x-github-delivery") or None

    def event_type(self, headers: Headers, payload: Any) -> str | None:
        return headers.get("x-github-event") or None
