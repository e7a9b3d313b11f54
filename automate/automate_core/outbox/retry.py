"""Retry policy: exponential backoff with jitter, capped; dead after the last attempt.

Attempt ``n`` (1-based, counting spent attempts only) that failed waits a random time between half
and all of ``base * 2**(n-1)`` seconds, capped at ``max_seconds``: the jitter spreads a burst of
failures (a remote side that was down for everyone) so the retries do not arrive together, and
the lower half-bound keeps the wait growing. A sender's ``Retry-After`` is honoured (capped too).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Per workflow (``max_attempts``) or the platform default (``AUTOMATE_RETRY_*``)."""

    max_attempts: int = 5
    base_seconds: float = 2.0
    max_seconds: float = 3600.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed ``attempt`` (1-based). Honors a sender's ``retry_after``."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** min(max(0, attempt - 1), 60))
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_seconds))
        return delay

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts
