"""The ingest settings, read once: the hot path must not pay for Django's lazy settings per request.

Reading ``automate_core.conf.settings.X`` goes through Django's ``LazySettings`` each time (about
2 µs); a webhook needs several, which a profile of the benchmark showed as ~10 % of the lane's CPU.
:func:`current` snapshots them and is refreshed when Django signals a settings change (tests).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed

from automate_core.conf import settings


@dataclass(frozen=True, slots=True)
class IngestSettings:
    max_in_flight: int
    max_unverified: int
    retry_after: str
    retry_after_busy: str
    db_timeout: float
    group_commit: bool
    batch_size: int
    flushers: int
    max_attempts: int


@functools.cache
def current() -> IngestSettings:
    return IngestSettings(
        max_in_flight=int(settings.INGEST_MAX_IN_FLIGHT),
        max_unverified=int(settings.INGEST_MAX_UNVERIFIED),
        retry_after=str(int(settings.INGEST_RETRY_AFTER)),
        retry_after_busy=str(int(settings.INGEST_RETRY_AFTER_BUSY)),
        db_timeout=float(settings.INGEST_DB_TIMEOUT),
        group_commit=bool(settings.INGEST_GROUP_COMMIT),
        batch_size=int(settings.INGEST_BATCH_SIZE),
        flushers=int(settings.INGEST_FLUSHERS),
        max_attempts=int(settings.MAX_ATTEMPTS),
    )


def _changed(**kwargs: Any) -> None:
    current.cache_clear()


setting_changed.connect(_changed, dispatch_uid="automate_ingest_tuning")
