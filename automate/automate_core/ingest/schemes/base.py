"""What every verification scheme shares: the :class:`Scheme` contract, its errors and helpers.

A scheme verifies one request on the raw body bytes against the source's active secrets (several
during a key rotation; any one verifies), and knows where the sender puts the idempotency key and
the event type. Comparisons are constant time over every (expected, presented) pair, so timing
tells nothing about which secret or which signature entry matched. Errors carry a reason code and
a message that says what is wrong with the *request*; nothing about a secret goes into them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from automate_core.exceptions import IngestError

Headers = Mapping[str, str]  # lower-cased names

DIGESTS: dict[str, Callable[[], Any]] = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}

#: Shortest signing secret (in bytes, surrounding whitespace not counted) the schemes whose secret
#: the operator chooses (``hmac_sha256``, ``hmac``, ``github``) accept: 128 bits. Secrets a provider
#: generates (Stripe, Slack, Shopify, Standard Webhooks) are long already.
MIN_SECRET_BYTES = 16


class SignatureError(IngestError):
    """The request's signature could not be verified."""

    status = 401
    reason = "signature_mismatch"


class SchemeConfigError(ValueError):
    """A source's scheme options are invalid (raised when the source is saved or loaded)."""


def signature_error(reason: str, message: str) -> SignatureError:
    return SignatureError(message, reason=reason)


class Scheme:
    """One way of proving who sent a request. Subclasses are small; see ``schemes/<provider>.py``.

    ``options`` is the source's ``config`` (a dict); a scheme reads the keys it knows and raises
    :class:`SchemeConfigError` for invalid values, so a bad source cannot be saved.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    #: False only for ``none`` (and ``token``, which checks a hash instead of a secret).
    needs_secret: ClassVar[bool] = True
    #: Also accepts ``application/x-www-form-urlencoded`` bodies (Slack).
    form_encoded: ClassVar[bool] = False
    #: Shortest secret accepted, in bytes (:data:`MIN_SECRET_BYTES` where the operator picks it).
    min_secret_bytes: ClassVar[int] = 1
    #: The signature covers the body (and whatever the scheme adds): values the body states (its
    #: ``type``, its ``idempotency_key``) win over unsigned headers. False for ``token``/``none``.
    signs_body: ClassVar[bool] = True

    def __init__(self, options: Mapping[str, Any], default_tolerance: float = 300.0) -> None:
        tolerance = options.get("tolerance_seconds", default_tolerance)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance <= 0:
            raise SchemeConfigError("tolerance_seconds must be a positive number of seconds.")
        self.tolerance = float(tolerance)

    def secret(self, value: str) -> bytes:
        """The signing key for a secret as stored in the secrets backend.

        Raises :class:`SchemeConfigError` (with the length, never the value) for a secret shorter
        than :attr:`min_secret_bytes`: a one-character or blank secret proves nothing.
        """
        return check_secret_length(value.encode(), self.min_secret_bytes, self.name)

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[bytes], now: float) -> None:
        raise NotImplementedError

    def idempotency_key(self, headers: Headers, payload: Any) -> str | None:
        return None

    def derived_key(self, headers: Headers) -> str | None:
        """An idempotency key taken from the verified signature, when nothing else names one."""
        return None

    def trusts_idempotency_header(self, headers: Headers) -> bool:
        """May the unsigned ``Idempotency-Key`` header name the event (when nothing signed does)?"""
        return True

    def trusts_event_header(self, headers: Headers) -> bool:
        """May the unsigned ``X-Automate-Event`` header name the type? Not when the body is signed."""
        return not self.signs_body

    def event_type(self, headers: Headers, payload: Any) -> str | None:
        return None


# --- helpers the schemes share ------------------------------------------------------------------


def check_secret_length(key: bytes, minimum: int, scheme: str) -> bytes:
    """``key`` if it has at least ``minimum`` bytes once stripped; else a clear SchemeConfigError."""
    length = len(key.strip())
    if length < minimum:
        raise SchemeConfigError(
            f"The signing secret is {length} byte(s) long (not counting surrounding whitespace); "
            f"scheme {scheme} needs at least {minimum}. Generate one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'."
        )
    return key


def require_secrets(secrets: Sequence[bytes]) -> None:
    if not secrets:
        raise signature_error(
            "no_secret_configured",
            "The source has no usable signing secret; nothing can be verified. Its operator finds "
            "the missing secret's name in the platform's log and sets it with `automate secrets set "
            "NAME` or AUTOMATE_SECRET_NAME (in .env under `automate up`: no restart needed).",
        )


def any_match(expected: Iterable[bytes], presented: Sequence[bytes]) -> bool:
    """True if any expected digest equals any presented one; compares every pair in constant time."""
    matched = False
    for want in expected:
        for got in presented:
            matched |= hmac.compare_digest(want, got)
    return matched


def mac(secret: bytes, message: bytes, digest: str = "sha256") -> bytes:
    return hmac.new(secret, message, DIGESTS[digest]).digest()


def check_timestamp(value: str | None, tolerance: float, now: float, header: str) -> str:
    """Parse a Unix timestamp in seconds and refuse it if further than ``tolerance`` from ``now``.

    Both directions: a timestamp from the future is as suspicious as an old one (a captured
    request replayed later, or a clock that cannot be trusted). Returns the value as sent.
    """
    if not value:
        raise signature_error("missing_timestamp", f"Missing {header} header.")
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise signature_error("malformed_timestamp", f"{header} must be a Unix timestamp in whole seconds.")
    if abs(now - int(text)) > tolerance:
        raise signature_error(
            "timestamp_out_of_tolerance",
            f"{header} is more than {tolerance:g} seconds away from the receiver's clock; "
            "a request cannot be replayed later. Check the sender's clock, or resend.",
        )
    return text


def b64decode(value: str) -> bytes | None:
    """Strict base64 (standard alphabet, padding optional); None when it is not base64."""
    text = value.strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def hexdecode(value: str) -> bytes | None:
    try:
        return bytes.fromhex(value.strip())
    except ValueError:
        return None


def json_path(payload: Any, path: str) -> str | None:
    """A dotted path into the JSON payload (``data.object.id``); the value as text, or None."""
    node = payload
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    if isinstance(node, bool) or node is None or isinstance(node, dict | list):
        return None
    return str(node) if str(node) else None


def body_str(payload: Any, key: str) -> str | None:
    if isinstance(payload, dict):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    return None
