"""``none``: no verification. Only by explicit choice; the admin shows such a source as UNVERIFIED."""

from __future__ import annotations

from collections.abc import Sequence

from automate_core.ingest.schemes.base import Headers, Scheme


class Unverified(Scheme):
    name = "none"
    label = "None (UNVERIFIED: anyone who knows the URL can post)"
    needs_secret = False
    signs_body = False

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[bytes], now: float) -> None:
        """Accepts every request: the source opted out of verification."""
