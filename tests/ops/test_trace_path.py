"""One trace from the sender to the receiver: a webhook with a W3C ``traceparent`` continues the
sender's trace through ingest, the outbox job, the run and its steps, and out of the ``http``
connector to the receiving server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from automate_core.models import Event, ExecutionRun
from automate_core.observability import tracing
from tests.conftest import post_webhook
from tests.plugins.servers import FakeServer
from tests.workflows.conftest import aload, drain

pytestmark = pytest.mark.usefixtures("live_db")

SENDER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SENDER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An SDK tracer provider for this test only: the deployment's choice, not a dependency."""
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


@pytest.fixture
def receiver() -> Iterator[FakeServer]:
    server = FakeServer().start()
    server.reply("POST", "/orders", 200, {"ok": True})
    yield server
    server.stop()


async def test_one_trace_spans_webhook_job_run_steps_and_the_outgoing_call(
    exporter: Any, receiver: FakeServer, demo_source: str, client: httpx.AsyncClient
) -> None:
    await aload(
        {
            "name": "forward",
            "trigger": {"source": "test"},
            "steps": [
                {"name": "note", "connector": "log", "action": "info", "params": {"message": "got it"}},
                {"name": "post", "connector": "http", "action": "post",
                 "params": {"url": f"{receiver.url}/orders", "json": {"id": "{{ event.id }}"}}},
            ],
        }
    )  # fmt: skip
    response = await post_webhook(
        client, demo_source, {"type": "order.created"},
        headers={"traceparent": f"00-{SENDER_TRACE}-{SENDER_SPAN}-01"},
    )  # fmt: skip
    assert response.status_code == 202
    assert response.json()["trace_id"] == SENDER_TRACE  # the sender's trace is continued
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    event = await Event.objects.aget()
    assert event.trace_id == SENDER_TRACE

    spans = {s.name: s for s in exporter.get_finished_spans()}
    webhook, job = spans["webhook"], spans["process event job"]
    run, note, post = spans["run forward"], spans["step note"], spans["step post"]
    assert {format(s.context.trace_id, "032x") for s in spans.values()} == {SENDER_TRACE}
    assert format(webhook.parent.span_id, "016x") == SENDER_SPAN  # a child of the sender's span
    assert run.parent.span_id == job.context.span_id
    assert note.parent.span_id == run.context.span_id and post.parent.span_id == run.context.span_id
    assert job.attributes["messaging.system"] == "django_automate"
    assert post.attributes["automate.connector"] == "http"
    assert run.attributes["automate.run.status"] == "succeeded"

    [sent] = receiver.requests
    parsed = tracing.parse_traceparent(sent.headers["traceparent"])
    assert parsed is not None and parsed[0] == SENDER_TRACE
    assert parsed[1] == format(post.context.span_id, "016x")  # the step's span is the caller


async def test_without_an_sdk_the_trace_id_still_travels(
    receiver: FakeServer, demo_source: str, client: httpx.AsyncClient
) -> None:
    await aload({"name": "forward", "trigger": {"source": "test"},
                 "steps": [{"name": "post", "connector": "http", "action": "post",
                            "params": {"url": f"{receiver.url}/orders", "json": {}}}]})  # fmt: skip
    response = await post_webhook(
        client, demo_source, {"type": "x"}, headers={"traceparent": f"00-{SENDER_TRACE}-{SENDER_SPAN}-01"}
    )
    assert response.json()["trace_id"] == SENDER_TRACE
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    [sent] = receiver.requests
    parsed = tracing.parse_traceparent(sent.headers["traceparent"])
    assert parsed is not None and parsed[0] == SENDER_TRACE


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff is invalid
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case is invalid
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # version 00 has no more
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short
    ],
)
def test_a_malformed_traceparent_is_ignored_and_a_new_trace_begins(header: str) -> None:
    assert tracing.parse_traceparent(header) is None
    with tracing.request_trace("webhook", header) as trace_id:
        assert trace_id != SENDER_TRACE.upper() and len(trace_id) == 32


def test_a_later_version_with_more_fields_is_read() -> None:
    parsed = tracing.parse_traceparent(f"01-{SENDER_TRACE}-{SENDER_SPAN}-01-what-comes-next")
    assert parsed == (SENDER_TRACE, SENDER_SPAN, 1)
