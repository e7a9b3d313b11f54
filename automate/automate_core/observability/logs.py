"""Logging, configured once: one JSON object per line, with the ``trace_id`` of the event at hand.

``LOGGING = logging_config()`` in the Django settings is the only configuration; ``automate
serve`` hands the same dictionary to uvicorn, so uvicorn's own lines (startup, errors, the
optional access log) come out in the same format from every process.

Why python-json-logger: the platform logs through the standard library everywhere
(``logging.getLogger(__name__)``, ``%``-style arguments, ``logger.exception``), plugins do too,
and the secret masking is a standard ``logging.Filter`` on the handlers. A JSON *formatter* slots
into that without touching a single call site, where structlog would add a second logging API and
a processor chain beside the one we have.

Every line carries ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``pid``, and
``trace_id`` when an event is being handled (the ingest lane sets it per request, the worker per
job; see :mod:`automate_core.context`), plus ``span_id`` when OpenTelemetry is tracing. So
``grep <trace_id>`` follows one event through web and worker logs alike. Lines logged while the
worker handles a job carry its ids as fields: ``event_id``, ``job_id``, and within a run
``run_id``, ``workflow`` and ``step`` (a connector's own lines too). Values passed with
``extra=`` appear as fields; they are masked like the message.

``LOG_FORMAT=plain`` gives one readable line per record instead. Without ``LOG_FORMAT``, the format
is ``plain`` when stderr is a terminal (a developer's ``automate up``) and ``json`` otherwise
(systemd's journal, a container's log, a file).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from automate_core.masking import masker

FORMATS = ("json", "plain")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(trace_id)s] %(message)s%(ids)s"


class JsonFormatter(_JsonFormatter):
    """Our JSON line: fixed field names, secrets masked in every field, span id when tracing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", ["levelname", "name", "message", "process"])
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "process": "pid"})
        kwargs.setdefault("timestamp", True)
        super().__init__(*args, **kwargs)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        from automate_core.observability import tracing

        if not log_data.get("trace_id"):
            log_data.pop("trace_id", None)
        log_data.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
        log_data.pop("ids", None)  # the plain format's copy of the id fields
        span_id = tracing.current_span_id()
        if span_id:
            log_data["span_id"] = span_id
        # The masking filter already cleaned the message and the traceback; ``extra`` fields
        # are ours to clean (a plugin may log a rendered URL or header).
        return masker.mask_data(log_data)  # type: ignore[no-any-return]


def default_format() -> str:
    """``LOG_FORMAT`` if set, else ``plain`` on a terminal and ``json`` everywhere else."""
    return os.environ.get("LOG_FORMAT") or ("plain" if sys.stderr.isatty() else "json")


def logging_config(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """The ``LOGGING`` dictionary: one stream handler, trace ids added, secrets masked."""
    if fmt not in FORMATS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(FORMATS)}; got {fmt!r}.")
    formatter: dict[str, Any]
    if fmt == "json":
        formatter = {"()": "automate_core.observability.logs.JsonFormatter"}
    else:
        formatter = {"format": PLAIN_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "trace_id": {"()": "automate_core.context.TraceIdFilter"},
            "mask_secrets": {"()": "automate_core.masking.SecretMaskingFilter"},
        },
        "formatters": {"default": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["trace_id", "mask_secrets"],
            }
        },
        "root": {"handlers": ["console"], "level": level.upper()},
        "loggers": {
            "django": {"level": "WARNING"},
            # uvicorn's loggers get handlers of their own unless told otherwise: route them here.
            # Their levels stay uvicorn's (``--log-level``; the access log needs ``info``).
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
        },
    }
