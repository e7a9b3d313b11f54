"""Context variables that follow one event through the platform (carried into plugin threads).

``trace_id`` is the event's trace. ``log_fields`` holds the ids of the work at hand (``event_id``,
``job_id``, ``run_id``, ``workflow``, ``step``): the worker, the runner and the engine bind them
with :func:`bind` / :func:`add`, and :class:`TraceIdFilter` puts them on every log record as
fields, so a JSON log line says ``"run_id": 12`` and not only "run 12" inside its message. Values
passed with ``extra=`` win over the bound ones.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

trace_id: ContextVar[str] = ContextVar("automate_trace_id", default="")
log_fields: ContextVar[Mapping[str, Any]] = ContextVar("automate_log_fields", default=MappingProxyType({}))

#: the ids a log record may carry as fields, in the order the plain format shows them
LOG_FIELDS = ("event_id", "job_id", "run_id", "workflow", "step")


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (``None`` values left out) to the log fields for the block's duration."""
    token = log_fields.set({**log_fields.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        log_fields.reset(token)


def add(**fields: Any) -> None:
    """Add ``fields`` until the enclosing :func:`bind` block ends (a run's id once it is known)."""
    log_fields.set({**log_fields.get(), **{k: v for k, v in fields.items() if v is not None}})


class TraceIdFilter(logging.Filter):
    """Adds ``record.trace_id`` (empty outside an event's processing), the bound ids as fields,
    and ``record.ids`` (`` run_id=12 step=charge``) for the plain format."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "trace_id", ""):
            record.trace_id = trace_id.get()
        for name, value in log_fields.get().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        if not hasattr(record, "ids"):
            shown = [(n, getattr(record, n, None)) for n in LOG_FIELDS]
            record.ids = "".join(f" {n}={v}" for n, v in shown if v is not None)
        return True
