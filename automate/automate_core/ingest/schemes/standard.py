"""Standard Webhooks (standardwebhooks.com), also sent by Svix with ``svix-*`` header names.

``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``, several entries
separated by spaces during a key rotation; entries of other versions (``v1a`` is Ed25519) are
skipped. The key is the base64 part of a ``whsec_...`` secret. ``webhook-id`` is the idempotency
key (it stays the same on every retry) and the body's ``type`` is the event type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from automate_core.ingest.schemes.base import (
    Headers,
    Scheme,
    SchemeConfigError,
    any_match,
    b64decode,
    body_str,
    check_timestamp,
    mac,
    require_secrets,
    signature_error,
)

SECRET_PREFIX = "whsec_"


def _header(headers: Headers, name: str) -> str:
    return headers.get(f"webhook-{name}") or headers.get(f"svix-{name}") or ""


class StandardWebhooks(Scheme):
    name = "standard_webhooks"
    label = "Standard Webhooks / Svix (webhook-id, webhook-timestamp, webhook-signature)"

    def secret(self, value: str) -> bytes:
        text = value.strip()
        key = b64decode(text.removeprefix(SECRET_PREFIX))
        if not key:
            raise SchemeConfigError("A Standard Webhooks secret is 'whsec_' followed by base64.")
        return key

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[bytes], now: float) -> None:
        signature = _header(headers, "signature")
        if not signature:
            raise signature_error("missing_signature", "Missing webhook-signature header.")
        msg_id = _header(headers, "id")
        if not msg_id:
            raise signature_error("missing_webhook_id", "Missing webhook-id header.")
        timestamp = check_timestamp(_header(headers, "timestamp"), self.tolerance, now, "webhook-timestamp")
        presented = []
        for entry in signature.split():
            version, _, value = entry.partition(",")
            decoded = b64decode(value) if version == "v1" else None
            if decoded:
                presented.append(decoded)
        if not presented:
            raise signature_error("malformed_signature", "webhook-signature has no 'v1,<base64>' entry.")
        require_secrets(secrets)
        signed = f"{msg_id}.{timestamp}.".encode() + body
        if not any_match((mac(s, signed) for s in secrets), presented):
            raise signature_error("signature_mismatch", "No webhook-signature entry matches the body.")

    def idempotency_key(self, headers: Headers, payload: Any) -> str | None:
        return _header(headers, "id") or None

    def event_type(self, headers: Headers, payload: Any) -> str | None:
        return body_str(payload, "type")
