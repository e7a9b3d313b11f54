"""Kept for imports from before the scheme registry: see :mod:`automate_core.ingest.schemes`."""

from __future__ import annotations

from automate_core.ingest.schemes.base import SignatureError
from automate_core.ingest.schemes.hmac import sign_hmac_sha256

__all__ = ["SignatureError", "sign_hmac_sha256"]
