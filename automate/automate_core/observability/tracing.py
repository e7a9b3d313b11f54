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


# optional: pip install opentelemetry-sdk (or django-automate[otel]); Any, because it may be absent
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


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    """An OpenTelemetry span named ``name`` in the current trace (a no-op without the SDK).

    Inside a span it is a child span; otherwise its trace id is ``context.trace_id`` (when set),
    so the spans of one event share the platform's id across processes.
    """
    if not enabled():
        yield
        return
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
    with tracer.start_as_current_span(name, context=parent, attributes=attrs):
        yield


@contextlib.contextmanager
def request_trace(name: str, **attributes: Any) -> Iterator[str]:
    """Give one request a trace id for everything it logs and stores, and yield it.

    When tracing, the request's span is a new root and its trace id becomes the platform's;
    otherwise the id is :func:`new_trace_id`.
    """
    if not enabled():
        token = context.trace_id.set(new_trace_id())
        try:
            yield context.trace_id.get()
        finally:
            context.trace_id.reset(token)
        return
    assert otel_trace is not None
    tracer = otel_trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(name, context=otel_context.Context(), attributes=attributes) as root:
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
