"""A configurable HMAC for senders without a scheme of their own, and the platform's own preset.

``hmac`` reads ``config["signature"]``::

    signature:
      header: X-Signature          # required
      prefix: "sha256="            # optional, stripped before decoding
      encoding: hex                # hex (default) or base64
      algorithm: sha256            # sha256 (default) or sha512
      timestamp_header: X-Timestamp  # optional; checked against the tolerance
      signed_content: "{timestamp}.{body}"  # default "{body}", or "{timestamp}.{body}" with a timestamp

``hmac_sha256`` is the platform's own preset, in two forms:

* timestamped (recommended): ``X-Automate-Timestamp: <unix seconds>`` and
  ``X-Automate-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>``; the timestamp
  must be within the tolerance, so a captured request cannot be replayed later;
* body only (the original form): ``X-Automate-Signature: sha256=<hex HMAC-SHA256(secret, body)>``.
  It proves who wrote the body but not when: ``config.signature.require_timestamp: true`` refuses it.

What decides what is stored comes from signed material: the event type from the body (``type``,
``event_type`` or ``event``), never from ``X-Automate-Event``; the idempotency key from the body's
``idempotency_key``, else, for a timestamped request, from its signature (a replay within the
tolerance is the same event, whatever ``Idempotency-Key`` it carries). Only the body-only form
still honours ``Idempotency-Key``: nothing in it can be protected from a replay anyway.

Secrets of both schemes are at least :data:`~automate_core.ingest.schemes.base.MIN_SECRET_BYTES`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from automate_core.ingest.schemes.base import (
    DIGESTS,
    MIN_SECRET_BYTES,
    Headers,
    Scheme,
    SchemeConfigError,
    any_match,
    b64decode,
    check_timestamp,
    hexdecode,
    mac,
    require_secrets,
    signature_error,
)

_OPTIONS = {"header", "prefix", "encoding", "algorithm", "timestamp_header", "signed_content"}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class GenericHmac(Scheme):
    name = "hmac"
    label = "HMAC, configurable (header, prefix, hex/base64, SHA-256/512, optional timestamp)"
    min_secret_bytes = MIN_SECRET_BYTES

    def __init__(self, options: Mapping[str, Any], default_tolerance: float = 300.0) -> None:
        super().__init__(options, default_tolerance)
        spec = self.spec(options)
        unknown = set(spec) - _OPTIONS
        if unknown:
            raise SchemeConfigError(
                f"signature: unknown keys {sorted(unknown)}; allowed: {sorted(_OPTIONS)}."
            )
        header = spec.get("header")
        if not isinstance(header, str) or not header.strip():
            raise SchemeConfigError("signature.header (the header that carries the signature) is required.")
        self.header = header.strip().lower()
        self.prefix = str(spec.get("prefix") or "")
        self.encoding = spec.get("encoding", "hex")
        if self.encoding not in {"hex", "base64"}:
            raise SchemeConfigError("signature.encoding must be 'hex' or 'base64'.")
        self.algorithm = spec.get("algorithm", "sha256")
        if self.algorithm not in DIGESTS:
            raise SchemeConfigError(f"signature.algorithm must be one of {sorted(DIGESTS)}.")
        ts_header = spec.get("timestamp_header") or ""
        self.timestamp_header = str(ts_header).strip().lower()
        default = "{timestamp}.{body}" if self.timestamp_header else "{body}"
        content = spec.get("signed_content") or default
        names = _PLACEHOLDER.findall(str(content))
        if names.count("body") != 1 or set(names) - {"body", "timestamp"}:
            raise SchemeConfigError(
                "signature.signed_content must contain {body} once and no placeholder but {timestamp}."
            )
        if "timestamp" in names and not self.timestamp_header:
            raise SchemeConfigError(
                "signature.signed_content uses {timestamp}: set signature.timestamp_header."
            )
        self.before, _, self.after = str(content).partition("{body}")

    @staticmethod
    def spec(options: Mapping[str, Any]) -> Mapping[str, Any]:
        spec = options.get("signature") or {}
        if not isinstance(spec, Mapping):
            raise SchemeConfigError("signature must be a mapping (header, prefix, encoding, ...).")
        return spec

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[bytes], now: float) -> None:
        value = headers.get(self.header, "")
        if not value:
            raise signature_error("missing_signature", f"Missing {self.header} header.")
        timestamp = ""
        if self.timestamp_header:
            timestamp = check_timestamp(
                headers.get(self.timestamp_header), self.tolerance, now, self.timestamp_header
            )
        self._check(value, self.before, self.after, timestamp, body, secrets)

    def _decoded(self, value: str) -> bytes | None:
        if self.prefix:
            if value[: len(self.prefix)].lower() != self.prefix.lower():
                return None
            value = value[len(self.prefix) :]
        return hexdecode(value) if self.encoding == "hex" else b64decode(value)

    def _check(
        self, value: str, before: str, after: str, timestamp: str, body: bytes, secrets: Sequence[bytes]
    ) -> None:
        decoded = self._decoded(value)
        if not decoded:
            raise signature_error(
                "malformed_signature", f"{self.header} must be {self.prefix}<{self.encoding} digest>."
            )
        require_secrets(secrets)
        signed = (
            before.replace("{timestamp}", timestamp).encode()
            + body
            + after.replace("{timestamp}", timestamp).encode()
        )
        if not any_match((mac(s, signed, self.algorithm) for s in secrets), [decoded]):
            raise signature_error("signature_mismatch", f"{self.header} does not match the body.")

    def trusts_idempotency_header(self, headers: Headers) -> bool:
        """``Idempotency-Key`` is read only when no timestamp is signed (see the module docstring)."""
        return not self.timestamp_header

    def derived_key(self, headers: Headers) -> str | None:
        """A timestamped request's key when its body names none: a digest of its signature."""
        if not self.timestamp_header or not headers.get(self.timestamp_header):
            return None
        decoded = self._decoded(headers.get(self.header, ""))
        return "sig:" + hashlib.sha256(decoded).hexdigest() if decoded else None


TIMESTAMP_HEADER = "x-automate-timestamp"


class AutomateHmacSha256(GenericHmac):
    name = "hmac_sha256"
    label = "HMAC-SHA256 of the body (X-Automate-Signature: sha256=<hex>)"

    def __init__(self, options: Mapping[str, Any], default_tolerance: float = 300.0) -> None:
        given = options.get("signature") or {}
        if not isinstance(given, Mapping) or set(given) - {"require_timestamp"}:
            raise SchemeConfigError(
                "signature: scheme hmac_sha256 takes only require_timestamp (true refuses requests "
                "without X-Automate-Timestamp); for other headers use scheme 'hmac'."
            )
        if not isinstance(given.get("require_timestamp", False), bool):
            raise SchemeConfigError("signature.require_timestamp must be true or false.")
        self.require_timestamp = bool(given.get("require_timestamp", False))
        super().__init__(options, default_tolerance)

    @staticmethod
    def spec(options: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"header": "X-Automate-Signature", "prefix": "sha256=", "encoding": "hex"}

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[bytes], now: float) -> None:
        value = headers.get(self.header, "")
        if not value:
            raise signature_error("missing_signature", f"Missing {self.header} header.")
        if TIMESTAMP_HEADER in headers:
            timestamp = check_timestamp(
                headers[TIMESTAMP_HEADER], self.tolerance, now, "X-Automate-Timestamp"
            )
            self._check(value, "{timestamp}.", "", timestamp, body, secrets)
        elif self.require_timestamp:
            raise signature_error(
                "missing_timestamp",
                "Missing X-Automate-Timestamp header: this source accepts only timestamped "
                'signatures, sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>.',
            )
        else:
            self._check(value, "", "", "", body, secrets)

    def trusts_idempotency_header(self, headers: Headers) -> bool:
        return TIMESTAMP_HEADER not in headers

    def derived_key(self, headers: Headers) -> str | None:
        if TIMESTAMP_HEADER not in headers:
            return None
        decoded = self._decoded(headers.get(self.header, ""))
        return "sig:" + hashlib.sha256(decoded).hexdigest() if decoded else None


def sign_hmac_sha256(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The header value a sender puts in ``X-Automate-Signature``.

    With ``timestamp`` (Unix seconds, sent as ``X-Automate-Timestamp``), the signature covers
    ``"{timestamp}.{body}"``: the timestamped form.
    """
    signed = body if timestamp is None else f"{timestamp}.".encode() + body
    return "sha256=" + mac(secret, signed).hex()


def hmac_sha256_headers(secret: bytes, body: bytes, timestamp: int) -> dict[str, str]:
    """Both headers of a timestamped ``hmac_sha256`` request."""
    return {
        "X-Automate-Timestamp": str(timestamp),
        "X-Automate-Signature": sign_hmac_sha256(secret, body, timestamp),
    }
