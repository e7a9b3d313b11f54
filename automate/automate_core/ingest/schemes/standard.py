"""Standard Webhooks (standardwebhooks.com), also sent by Svix with ``svix-*`` header names.

``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` (symmetric), or
``v1a,<base64 Ed25519 signature of "{id}.{timestamp}.{body}">`` (asymmetric), several entries
separated by spaces during a key rotation; entries of other versions are skipped. A source's
secret is either a ``whsec_<base64 key>`` (verifies ``v1``) or the sender's public key
``whpk_<base64 of the 32-byte Ed25519 public key>`` (verifies ``v1a``); a rotation may mix both.
``webhook-id`` is the idempotency key (it stays the same on every retry) and the body's ``type``
is the event type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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
PUBLIC_KEY_PREFIX = "whpk_"


class PublicKey(bytes):
    """The raw 32 bytes of a sender's Ed25519 public key (``whpk_...``): verifies ``v1a`` entries."""


def _header(headers: Headers, name: str) -> str:
    return headers.get(f"webhook-{name}") or headers.get(f"svix-{name}") or ""


class StandardWebhooks(Scheme):
    name = "standard_webhooks"
    label = "Standard Webhooks / Svix (webhook-id, webhook-timestamp, webhook-signature)"

    def secret(self, value: str) -> bytes:
        text = value.strip()
        if text.startswith(PUBLIC_KEY_PREFIX):
            raw = b64decode(text.removeprefix(PUBLIC_KEY_PREFIX))
            if raw is None or len(raw) != 32:
                raise SchemeConfigError(
                    "A Standard Webhooks public key is 'whpk_' followed by the base64 of the "
                    "32-byte Ed25519 public key."
                )
            return PublicKey(raw)
        key = b64decode(text.removeprefix(SECRET_PREFIX))
        if not key:
            raise SchemeConfigError(
                "A Standard Webhooks secret is 'whsec_' followed by base64 (or, for v1a, a public "
                "key 'whpk_' followed by base64)."
            )
        return key

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[bytes], now: float) -> None:
        signature = _header(headers, "signature")
        if not signature:
            raise signature_error("missing_signature", "Missing webhook-signature header.")
        msg_id = _header(headers, "id")
        if not msg_id:
            raise signature_error("missing_webhook_id", "Missing webhook-id header.")
        timestamp = check_timestamp(_header(headers, "timestamp"), self.tolerance, now, "webhook-timestamp")
        symmetric: list[bytes] = []
        asymmetric: list[bytes] = []
        for entry in signature.split():
            version, _, value = entry.partition(",")
            decoded = b64decode(value) if version in ("v1", "v1a") else None
            if decoded and version == "v1":
                symmetric.append(decoded)
            elif decoded and len(decoded) == 64:  # an Ed25519 signature is 64 bytes
                asymmetric.append(decoded)
        if not symmetric and not asymmetric:
            raise signature_error(
                "malformed_signature", "webhook-signature has no 'v1,<base64>' or 'v1a,<base64>' entry."
            )
        require_secrets(secrets)
        signed = f"{msg_id}.{timestamp}.".encode() + body
        keys = [s for s in secrets if not isinstance(s, PublicKey)]
        public = [s for s in secrets if isinstance(s, PublicKey)]
        matched = any_match((mac(s, signed) for s in keys), symmetric) if keys else False
        if not matched and public and asymmetric:
            matched = any(_ed25519_valid(k, sig, signed) for k in public for sig in asymmetric)
        if not matched:
            raise signature_error("signature_mismatch", "No webhook-signature entry matches the body.")

    def idempotency_key(self, headers: Headers, payload: Any) -> str | None:
        return _header(headers, "id") or None

    def event_type(self, headers: Headers, payload: Any) -> str | None:
        return body_str(payload, "type")


def _ed25519_valid(key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except InvalidSignature:
        return False
    return True
