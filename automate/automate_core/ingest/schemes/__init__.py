"""Verification schemes, one small module per provider behind one registry.

``build(name, options)`` gives the :class:`~automate_core.ingest.schemes.base.Scheme` a source
uses, validating its options (the model's ``clean()`` calls it too, so a bad source cannot be
saved). Add a scheme by writing a ``Scheme`` subclass and listing it in ``SCHEMES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automate_core.ingest.schemes.base import Scheme, SchemeConfigError, SignatureError
from automate_core.ingest.schemes.github import GitHub
from automate_core.ingest.schemes.hmac import AutomateHmacSha256, GenericHmac
from automate_core.ingest.schemes.none import Unverified
from automate_core.ingest.schemes.shopify import Shopify
from automate_core.ingest.schemes.slack import Slack
from automate_core.ingest.schemes.standard import StandardWebhooks
from automate_core.ingest.schemes.stripe import Stripe
from automate_core.ingest.schemes.token import Token

SCHEMES: dict[str, type[Scheme]] = {
    cls.name: cls
    for cls in (
        AutomateHmacSha256,
        StandardWebhooks,
        Stripe,
        GitHub,
        Slack,
        Shopify,
        GenericHmac,
        Token,
        Unverified,
    )
}

__all__ = ["SCHEMES", "Scheme", "SchemeConfigError", "SignatureError", "build", "choices"]


def build(name: str, options: Mapping[str, Any] | None = None, default_tolerance: float = 300.0) -> Scheme:
    """The scheme ``name`` configured with a source's ``options``; raises SchemeConfigError."""
    cls = SCHEMES.get(name)
    if cls is None:
        raise SchemeConfigError(f"Unknown scheme {name!r}; known: {', '.join(SCHEMES)}.")
    return cls(options or {}, default_tolerance)


def choices() -> list[tuple[str, str]]:
    return [(cls.name, cls.label) for cls in SCHEMES.values()]
