"""JSON log lines: fields, the event's trace id, masked secrets; and tracing with the same ids."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from automate_core import context
from automate_core.masking import masker
from automate_core.observability import logs, tracing

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger wired exactly as LOGGING wires the root logger, writing to a buffer."""
    config = logs.logging_config("DEBUG", "json")
    stream = io.StringIO()
    handler_config = {**config["handlers"]["console"], "stream": stream}
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": config["filters"],
            "formatters": config["formatters"],
            "handlers": {"buffer": handler_config},
            "loggers": {"ops-test": {"handlers": ["buffer"], "level": "DEBUG", "propagate": False}},
        }
    )
    yield logging.getLogger("ops-test"), stream
    logging.getLogger("ops-test").handlers.clear()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_the_fields_an_operator_greps(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    logger.info("job %s done", 7)
    (line,) = lines(stream)
    assert line["message"] == "job 7 done"
    assert line["level"] == "INFO"
    assert line["logger"] == "ops-test"
    assert isinstance(line["pid"], int)
    assert line["timestamp"].endswith("+00:00")
    assert "trace_id" not in line  # outside an event


def test_the_trace_id_of_the_event_at_hand(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    token = context.trace_id.set("0af7651916cd43dd8448eb211c80319c")
    try:
        logger.warning("retrying", extra={"job_id": 12})
    finally:
        context.trace_id.reset(token)
    (line,) = lines(stream)
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert line["job_id"] == 12


def test_secrets_are_masked_in_message_extra_fields_and_tracebacks(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    masker.register(SECRET)
    logger.info("calling with %s", SECRET, extra={"url": f"https://api.example/?key={SECRET}"})
    try:
        raise ValueError(f"rejected key {SECRET}")
    except ValueError:
        logger.exception("connector failed")
    text = stream.getvalue()
    assert SECRET not in text
    first, second = lines(stream)
    assert first["message"] == "calling with ***"
    assert first["url"] == "https://api.example/?key=***"
    assert "rejected key ***" in second["exc_info"]


def test_plain_format_for_a_terminal() -> None:
    config = logs.logging_config("INFO", "plain")
    assert "%(trace_id)s" in config["formatters"]["default"]["format"]
    assert config["handlers"]["console"]["filters"] == ["trace_id", "mask_secrets"]


def test_json_unless_told_otherwise_or_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal: a journal, a container log
    assert logs.default_format() == "json"
    monkeypatch.setenv("LOG_FORMAT", "plain")
    assert logs.default_format() == "plain"


def test_an_unknown_format_is_refused_with_the_choices() -> None:
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT must be one of json, plain; got 'xml'"):
        logs.logging_config("INFO", "xml")


def test_the_project_settings_use_this_configuration() -> None:
    from django.conf import settings

    handler = settings.LOGGING["handlers"]["console"]
    assert "mask_secrets" in handler["filters"]  # masking stays on the handler
    assert settings.LOGGING["filters"]["mask_secrets"]["()"] == "automate_core.masking.SecretMaskingFilter"


# --- tracing ------------------------------------------------------------------------------------


def test_without_the_sdk_request_trace_only_sets_the_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "otel_trace", None)
    assert not tracing.enabled()
    with tracing.request_trace("webhook") as trace_id:
        assert context.trace_id.get() == trace_id
        assert len(trace_id) == 32
        assert tracing.current_span_id() == ""
        with tracing.span("step"):  # a no-op
            pass
    assert context.trace_id.get() == ""


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An SDK tracer provider for this test only (the global one is set once per process)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    monkeypatch.setattr(trace, "get_tracer", lambda name, *a, **k: provider.get_tracer(name))
    return memory


def test_with_the_sdk_spans_carry_the_platform_trace_id(
    exporter: Any, capture: tuple[logging.Logger, io.StringIO]
) -> None:
    logger, stream = capture
    assert tracing.enabled()
    with tracing.request_trace("webhook", source="shop") as trace_id:
        logger.info("accepted")
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.attributes["automate.trace_id"] == trace_id
    (line,) = lines(stream)
    assert line["trace_id"] == trace_id
    assert line["span_id"] == format(span.context.span_id, "016x")


def test_a_worker_span_joins_the_trace_of_its_event(exporter: Any) -> None:
    """The worker knows only the stored trace id: its span must land in the same trace."""
    stored = "4bf92f3577b34da6a3ce929d0e0e4736"
    token = context.trace_id.set(stored)
    try:
        with tracing.span("job", job_id=5), tracing.span("step"):
            pass
    finally:
        context.trace_id.reset(token)
    step, job = exporter.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in (step, job)} == {stored}
    assert step.parent.span_id == job.context.span_id
    assert job.attributes["job_id"] == 5
