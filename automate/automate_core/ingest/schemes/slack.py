"""Slack: ``X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:{timestamp}:{body}")>``.

``X-Slack-Request-Timestamp`` must be within the tolerance. Slack posts the Events API as JSON and
interactivity and slash commands as ``application/x-www-form-urlencoded`` (interactivity puts its
JSON in a ``payload`` field); the signature is over the raw body in every case. The idempotency key
is the Events API ``event_id`` (the same on Slack's retries); the event type is ``event.type``,
else the body's ``type`` (``block_actions``, ...), else ``slash_command``.
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


class Slack(Scheme):
    name = "slack"
    label = "Slack (X-Slack-Signature, X-Slack-Request-Timestamp)"
    form_encoded = True

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[bytes], now: float) -> None:
        header = headers.get("x-slack-signature", "")
        if not header:
            raise signature_error("missing_signature", "Missing X-Slack-Signature header.")
        timestamp = check_timestamp(
            headers.get("x-slack-request-timestamp"), self.tolerance, now, "X-Slack-Request-Timestamp"
        )
        version, _, value = header.partition("=")
        decoded = hexdecode(value) if version.strip() == "v0" else None
        if not decoded:
            raise signature_error("malformed_signature", "X-Slack-Signature must look like 'v0=<hex>'.")
        require_secrets(secrets)
        signed = f"v0:{timestamp}:".encode() + body
        if not any_match((mac(s, signed) for s in secrets), [decoded]):
            raise signature_error("signature_mismatch", "X-Slack-Signature does not match the body.")

    def idempotency_key(self, headers: Headers, payload: Any) -> str | None:
        return body_str(payload, "event_id")

    def event_type(self, headers: Headers, payload: Any) -> str | None:
        if isinstance(payload, dict):
            inner = body_str(payload.get("event"), "type")
            if inner:
                return inner
            if body_str(payload, "type"):
                return body_str(payload, "type")
            if body_str(payload, "command"):
                return "slash_command"
        return None


def url_verification_challenge(payload: Any) -> str | None:
    """The ``challenge`` of Slack's one-time ``url_verification`` request, to be echoed back."""
    if body_str(payload, "type") == "url_verification":
        return body_str(payload, "challenge")
    return None
