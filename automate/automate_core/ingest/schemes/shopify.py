"""Shopify: ``X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(secret, body)>``.

No timestamp; ``X-Shopify-Webhook-Id`` (the same on retries) is the idempotency key and
``X-Shopify-Topic`` (``orders/create``) the event type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from automate_core.ingest.schemes.base import (
    Headers,
    Scheme,
    any_match,
    b64decode,
    mac,
    require_secrets,
    signature_error,
)


class Shopify(Scheme):
    name = "shopify"
    label = "Shopify (X-Shopify-Hmac-Sha256)"

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[bytes], now: float) -> None:
        header = headers.get("x-shopify-hmac-sha256", "")
        if not header:
            raise signature_error("missing_signature", "Missing X-Shopify-Hmac-Sha256 header.")
        decoded = b64decode(header)
        if not decoded:
            raise signature_error("malformed_signature", "X-Shopify-Hmac-Sha256 must be base64.")
        require_secrets(secrets)
        if not any_match((mac(s, body) for s in secrets), [decoded]):
            raise signature_error("signature_mismatch", "X-Shopify-Hmac-Sha256 does not match the body.")

    def idempotency_key(self, headers: Headers, payload: Any) -> str | None:
        return headers.get("x-shopify-webhook-id") or None

    def event_type(self, headers: Headers, payload: Any) -> str | None:
        return headers.get("x-shopify-topic") or None
