"""Trace ids for one event, and optional OpenTelemetry spans that carry the same ids.

The platform's ``trace_id`` (32 hex digits, stored on the event and on every run) is set in
:data:`automate_core.context.trace_id` for the span of one webhook request by the ingest lane
(:func:`request_trace`) and for one job by the worker. Log lines carry it (see
:mod:`automate_core.observability.logs`).

When the OpenTelemetry SDK is installed and the process has a tracer provider
(``opentelemetry-instrument``, or your own ``trace.set_tracer_provider(...)``), :func:`span` also
opens a span whose **OpenTelemetry trace id is the platform's trace id**: the first span of an
event is started under a remote parent made from that id. A trace in Jaeger or Tempo and the log
lines and run records of the event are then found by the same id. Without the SDK (it is not a
dependency) every function here is a cheap no-op apart from the context variable.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

from automate_core import context


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


# the API is a dependency; the SDK (what records and exports spans) is the deployment's choice.
# Any, and looked up once: tests swap them for None to play a process without OpenTelemetry
otel_trace: Any = _optional("opentelemetry.trace")
otel_context: Any = _optional("opentelemetry.context")

TRACER_NAME = "django-automate"


def new_trace_id() -> str:
    """A fresh trace id: 32 lowercase hex digits, as stored on events and runs."""
    return uuid.uuid4().hex


def enabled() -> bool:
    """Whether spans are recorded: the SDK is importable and a real tracer provider is set."""
    if otel_trace is None:
        return False
    provider = otel_trace.get_tracer_provider()
    return not isinstance(provider, (otel_trace.ProxyTracerProvider, otel_trace.NoOpTracerProvider))


def current_span_id() -> str:
    """The hex id of the span being recorded, or ``""``."""
    if otel_trace is None:
        return ""
    span_context = otel_trace.get_current_span().get_span_context()
    return format(span_context.span_id, "016x") if span_context.is_valid else ""


_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$")


def parse_traceparent(value: str | bytes | None) -> tuple[str, str, int] | None:
    """(trace id, parent span id, flags) of a W3C ``traceparent`` header, or None when it is
    absent or malformed (version ``ff``, all-zero ids, wrong lengths or case: ignored, as the
    W3C Trace Context recommendation says)."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    match = _TRACEPARENT.match(text.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or (version == "00" and len(text.strip()) != 55):
        return None
    if int(trace_id, 16) == 0 or int(span_id, 16) == 0:
        return None
    return trace_id, span_id, int(flags, 16)


def traceparent() -> str:
    """The ``traceparent`` to send on an outgoing call: the current span when one is recorded,
    else the platform's trace id (``context.trace_id``) with a fresh span id; ``""`` without one."""
    if otel_trace is not None:
        current = otel_trace.get_current_span().get_span_context()
        if current.is_valid:
            return f"00-{current.trace_id:032x}-{current.span_id:016x}-{int(current.trace_flags):02x}"
    trace_id = context.trace_id.get()
    if not _is_trace_id(trace_id):
        return ""
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def outgoing_headers() -> dict[str, str]:
    """W3C trace context for an outgoing HTTP call (connectors, LLM providers, webhooks)."""
    value = traceparent()
    return {"traceparent": value} if value else {}


#: What ``span`` gives when not tracing: one shared context manager that yields None (the engine
#: opens three spans per job; not tracing, they cost nothing).
_NOT_TRACING: contextlib.nullcontext[None] = contextlib.nullcontext()


def span(
    name: str, *, span_kind: str = "INTERNAL", **attributes: Any
) -> contextlib.AbstractContextManager[Any]:
    """An OpenTelemetry span named ``name`` in the current trace; yields it (None when not tracing).

    Inside a span it is a child span; otherwise its trace id is ``context.trace_id`` (when set),
    so the spans of one event share the platform's id across processes.
    """
    if not enabled():
        return _NOT_TRACING
    return _span(name, span_kind, attributes)


@contextlib.contextmanager
def _span(name: str, span_kind: str, attributes: dict[str, Any]) -> Iterator[Any]:
    assert otel_trace is not None
    parent = None
    current = otel_trace.get_current_span().get_span_context()
    trace_id = context.trace_id.get()
    if not current.is_valid and _is_trace_id(trace_id):
        remote = otel_trace.SpanContext(
            trace_id=int(trace_id, 16),
            span_id=int.from_bytes(secrets.token_bytes(8), "big") or 1,
            is_remote=True,
            trace_flags=otel_trace.TraceFlags(otel_trace.TraceFlags.SAMPLED),
        )
        parent = otel_trace.set_span_in_context(otel_trace.NonRecordingSpan(remote))
    tracer = otel_trace.get_tracer(TRACER_NAME)
    attrs = {"automate.trace_id": trace_id, **attributes} if trace_id else attributes
    kind = getattr(otel_trace.SpanKind, span_kind)
    with tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attrs) as current:
        yield current


@contextlib.contextmanager
def request_trace(name: str, incoming: str | bytes | None = None, **attributes: Any) -> Iterator[str]:
    """Give one request a trace id for everything it logs and stores, and yield it.

    An ``incoming`` W3C ``traceparent`` (the sender's trace) is continued: its trace id becomes
    the platform's, and when tracing the request's span is a child of the sender's span. Without
    one, the request's span is a new root (its trace id becomes the platform's); without tracing
    the id is :func:`new_trace_id`.
    """
    parent_ids = parse_traceparent(incoming)
    if not enabled():
        token = context.trace_id.set(parent_ids[0] if parent_ids else new_trace_id())
        try:
            yield context.trace_id.get()
        finally:
            context.trace_id.reset(token)
        return
    assert otel_trace is not None
    tracer = otel_trace.get_tracer(TRACER_NAME)
    parent = otel_context.Context()
    if parent_ids is not None:
        remote = otel_trace.SpanContext(
            trace_id=int(parent_ids[0], 16), span_id=int(parent_ids[1], 16), is_remote=True,
            trace_flags=otel_trace.TraceFlags(parent_ids[2] & 1),
        )  # fmt: skip
        parent = otel_trace.set_span_in_context(otel_trace.NonRecordingSpan(remote))
    kind = otel_trace.SpanKind.SERVER
    with tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as root:
        trace_id = format(root.get_span_context().trace_id, "032x")
        root.set_attribute("automate.trace_id", trace_id)
        token = context.trace_id.set(trace_id)
        try:
            yield trace_id
        finally:
            context.trace_id.reset(token)


def _is_trace_id(value: str) -> bool:
    if len(value) != 32:
        return False
    try:
        return int(value, 16) != 0
    except ValueError:
        return False
