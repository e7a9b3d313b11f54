"""Context variables that follow one event through the platform (carried into plugin threads)."""

from __future__ import annotations

import logging
from contextvars import ContextVar

trace_id: ContextVar[str] = ContextVar("automate_trace_id", default="")


class TraceIdFilter(logging.Filter):
    """Adds ``record.trace_id`` (empty outside an event's processing)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "trace_id", ""):
            record.trace_id = trace_id.get()
        return True
