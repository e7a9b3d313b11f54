"""Test mode: a workflow or one step against a stored event, connectors in dry run.
Nothing is sent, nothing is written, no secret is read; the rendered inputs are shown."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from automate_core.execution import testmode
from automate_core.ingest.ingestor import emit
from automate_core.models import Event, ExecutionRun, OutboxJob, StepRun
from tests.workflows.conftest import Blind, Probe, aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def three_steps(url: str) -> dict[str, Any]:
    return workflow(
        "wf",
        {"name": "lookup", "connector": "probe", "action": "echo",
         "params": {"id": "{{ event.payload.id }}"}},
        {"name": "notify", "connector": "http", "action": "post",
         "params": {"url": url + "/hook",
                    "headers": {"Authorization": 'Bearer {{ secret("NEVER_SET") }}'},
                    "json": {"order": "{{ steps.lookup.output.echo.id }}"}}},
        {"name": "archive", "connector": "blind", "action": "send",
         "params": {"id": "{{ event.payload.id }}"}},
        secrets=["NEVER_SET"],
    )  # fmt: skip


async def test_dry_run_sends_nothing_writes_nothing_and_shows_inputs(
    server: tuple[str, list[str]], probe: type[Probe]
) -> None:
    url, hits = server
    await aload(three_steps(url))
    event = await Event.objects.acreate(
        source="shop", event_type="order.created", payload={"id": 5}, trace_id="t"
    )
    result = await testmode.dry_run("wf", event_id=event.pk)
    assert result.status == "succeeded"
    lookup, notify, archive = result.steps
    assert lookup.input == {"id": 5} and probe.calls[0][2]["dry_run"] is True
    assert notify.input["headers"] == {"Authorization": "Bearer <secret NEVER_SET>"}  # no backend asked
    assert notify.output == {"dry_run": True, "method": "POST", "url": url + "/hook", "json": {"order": 5}}
    assert (archive.status, archive.input) == ("skipped", {"id": 5})
    assert "does not declare supports_dry_run" in archive.error
    assert hits == [] and Blind.calls == []  # nothing left the process
    assert await ExecutionRun.objects.acount() == 0 and await StepRun.objects.acount() == 0


async def test_one_step_with_the_inputs_of_a_past_run(
    server: tuple[str, list[str]], probe: type[Probe]
) -> None:
    url, hits = server
    await aload(three_steps(url))
    await sync_to_async(emit)("shop", "order.created", {"id": 9})
    await drain(lambda: OutboxJob.objects.filter(status__in=["completed", "dead", "retry"]).exists())
    run = await ExecutionRun.objects.aget()
    hits.clear()
    probe.calls.clear()
    result = await testmode.dry_run("wf", step="notify", run_id=run.pk)
    assert [(s.name, s.status) for s in result.steps] == [("lookup", "reused"), ("notify", "succeeded")]
    assert result.steps[1].output["json"] == {"order": 9}  # the recorded output of lookup, reused
    assert probe.calls == [] and hits == []


async def test_the_cli_shows_rendered_inputs_and_refuses_unknown_steps(server: tuple[str, list[str]]) -> None:
    url, _hits = server
    await aload(three_steps(url))
    event = await Event.objects.acreate(
        source="shop", event_type="order.created", payload={"id": 3}, trace_id="t"
    )
    out = io.StringIO()
    await sync_to_async(call_command)("automate", "test-step", "wf", "--event", str(event.pk), stdout=out)
    text = out.getvalue()
    assert "test mode (dry run) of wf: succeeded" in text
    assert (
        '"Authorization": "Bearer <secret NEVER_SET>"' in text and "does not declare supports_dry_run" in text
    )
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="has no step 'nope'; its steps: lookup, notify, archive"):
        await sync_to_async(call_command)("automate", "test-step", "wf", "--step", "nope", "--event", "1")
