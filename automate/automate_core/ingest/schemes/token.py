"""``token``: the authenticated JSON endpoint for systems that cannot sign a body.

The caller sends ``Authorization: Bearer <token>`` (or ``X-Automate-Token: <token>``). The source
stores only SHA-256 hashes of its tokens (``WebhookSource.token_hash``, several during a rotation);
a token is 256 random bits, so a fast unsalted hash is enough, and the comparison of hashes is
constant time. The event type comes from ``X-Automate-Event`` or the body's ``type``, the
idempotency key from ``Idempotency-Key`` (the generic fallbacks of the service).
"""

from __future__ import annotations

import hashlib
import secrets as random
from collections.abc import Sequence

from automate_core.ingest.schemes.base import Headers, Scheme, any_match, signature_error


def new_token() -> str:
    """A fresh token to hand to the caller once; store :func:`hash_token` of it."""
    return "atk_" + random.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Token(Scheme):
    name = "token"
    label = "Bearer token (for callers that cannot sign; stored hashed)"
    needs_secret = False
    signs_body = False

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[bytes], now: float) -> None:
        """``secrets`` are the source's token hashes (raw SHA-256 digests), not signing keys."""
        token = headers.get("x-automate-token", "")
        if not token:
            scheme, _, value = headers.get("authorization", "").partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else ""
        if not token:
            raise signature_error(
                "missing_token", "Send the source's token as 'Authorization: Bearer <token>'."
            )
        if not secrets:
            raise signature_error("no_token_configured", "The source has no token; issue one in the admin.")
        if not any_match(secrets, [hashlib.sha256(token.encode()).digest()]):
            raise signature_error("token_mismatch", "The token is not valid for this source.")
