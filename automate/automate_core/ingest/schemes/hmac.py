"""A configurable HMAC for senders without a scheme of their own, and the platform's own preset.

``hmac`` reads ``config["signature"]``::

    signature:
      header: X-Signature          # required
      prefix: "sha256="            # optional, stripped before decoding
      encoding: hex                # hex (default) or base64
      algorithm: sha256            # sha256 (default) or sha512
      timestamp_header: X-Timestamp  # optional; checked against the tolerance
      signed_content: "{timestamp}.{body}"  # default "{body}", or "{timestamp}.{body}" with a timestamp

``hmac_sha256`` is the platform's own preset: ``X-Automate-Signature: sha256=<hex>`` over the body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from automate_core.ingest.schemes.base import (
    DIGESTS,
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
        if self.prefix:
            if not value[: len(self.prefix)].lower() == self.prefix.lower():
                raise signature_error(
                    "malformed_signature", f"{self.header} must start with {self.prefix!r}."
                )
            value = value[len(self.prefix) :]
        decoded = hexdecode(value) if self.encoding == "hex" else b64decode(value)
        if not decoded:
            raise signature_error(
                "malformed_signature", f"{self.header} must be {self.prefix}<{self.encoding} digest>."
            )
        require_secrets(secrets)
        signed = (
            self.before.replace("{timestamp}", timestamp).encode()
            + body
            + self.after.replace("{timestamp}", timestamp).encode()
        )
        if not any_match((mac(s, signed, self.algorithm) for s in secrets), [decoded]):
            raise signature_error("signature_mismatch", f"{self.header} does not match the body.")


class AutomateHmacSha256(GenericHmac):
    name = "hmac_sha256"
    label = "HMAC-SHA256 of the body (X-Automate-Signature: sha256=<hex>)"

    @staticmethod
    def spec(options: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"header": "X-Automate-Signature", "prefix": "sha256=", "encoding": "hex"}


def sign_hmac_sha256(secret: bytes, body: bytes) -> str:
    """The header value a sender puts in ``X-Automate-Signature``."""
    return "sha256=" + mac(secret, body).hex()
