"""Retry policy: exponential backoff with full jitter, capped; dead after the last attempt."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 2.0
    max_seconds: float = 3600.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed ``attempt`` (1-based). Honors a sender's ``retry_after``."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_seconds))
        return delay

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts
