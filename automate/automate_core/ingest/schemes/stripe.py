"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]``.

The signature is HMAC-SHA256 over ``"{t}.{body}"`` keyed with the endpoint secret as written
(``whsec_...``, used as text, not decoded). During a secret roll Stripe sends one ``v1`` per active
secret; ``v0`` entries (test-mode legacy) are ignored. The event ``id`` and ``type`` come from the
body; the id is the idempotency key (Stripe retries for up to three days with the same id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from automate_core.ingest.schemes.base import (
    Headers,
    Scheme,
    any_match,
    body_str,
    check_timestamp,
    hexdecode,
    mac,
    require_secrets,
    signature_error,
)


class Stripe(Scheme):
    name = "stripe"
    label = "Stripe (Stripe-Signature: t=...,v1=...)"

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[bytes], now: float) -> None:
        header = headers.get("stripe-signature", "")
        if not header:
            raise signature_error("missing_signature", "Missing Stripe-Signature header.")
        timestamp = None
        presented = []
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            if key == "t":
                timestamp = value
            elif key == "v1":
                decoded = hexdecode(value)
                if decoded:
                    presented.append(decoded)
        if timestamp is None:
            raise signature_error("missing_timestamp", "Stripe-Signature has no t= timestamp.")
        timestamp = check_timestamp(timestamp, self.tolerance, now, "Stripe-Signature t=")
        if not presented:
            raise signature_error("malformed_signature", "Stripe-Signature has no v1=<hex> signature.")
        require_secrets(secrets)
        signed = timestamp.encode() + b"." + body
        if not any_match((mac(s, signed) for s in secrets), presented):
            raise signature_error("signature_mismatch", "No v1 signature matches the body.")

    def idempotency_key(self, headers: Headers, payload: Any) -> str | None:
        return body_str(payload, "id")

    def event_type(self, headers: Headers, payload: Any) -> str | None:
        return body_str(payload, "type")
