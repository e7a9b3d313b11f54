"""Log lines carry the ids of the work at hand as fields (event_id, job_id, run_id, workflow, step),
not only inside their message: a connector's own line, and the worker's line about a dead job."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from automate_core import context
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob
from automate_core.observability import logs
from tests.workflows.conftest import aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The root logger's records through the handler LOGGING configures (its filters and format)."""
    config = logs.logging_config("INFO", "json")
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": config["filters"],
            "formatters": config["formatters"],
            "handlers": {"buffer": {**config["handlers"]["console"], "stream": (stream := io.StringIO())}},
        }
    )
    root = logging.getLogger()
    handler = logging.getHandlerByName("buffer")
    assert handler is not None
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_steps_log_line_and_a_dead_jobs_line_carry_their_ids(json_lines: io.StringIO) -> None:
    await aload(
        workflow(
            "greet",
            {"name": "hello", "connector": "log", "action": "info",
             "params": {"message": "hello {{ event.payload.who }}"}},
            {"name": "broken", "connector": "log", "action": "info", "params": {"message": "{{ 1 // 0 }}"}},
            max_attempts=1,
        )
    )  # fmt: skip
    event = await sync_to_async(emit)("shop", "order.created", {"who": "Ada"})
    await drain(lambda: OutboxJob.objects.filter(status="dead").exists())
    run = await ExecutionRun.objects.aget()
    job = await OutboxJob.objects.aget()
    lines = parsed(json_lines)
    (hello,) = [line for line in lines if line["message"] == "hello Ada"]
    expected = {
        "event_id": event.event_id,
        "job_id": job.id,
        "run_id": run.id,
        "workflow": "greet",
        "step": "hello",
    }
    assert {k: hello.get(k) for k in expected} == expected
    (dead,) = [line for line in lines if "is dead after attempt" in line["message"]]
    assert (dead["job_id"], dead["event_id"]) == (job.id, event.event_id)
    assert "run_id" not in dead and "step" not in dead  # the run ended: its ids are not the job's


def test_extra_wins_over_bound_ids_and_plain_lines_show_them() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "m", None, None)
    record.run_id = 99
    with context.bind(run_id=1, workflow="wf", step=None):
        context.TraceIdFilter().filter(record)
    fields = vars(record)
    assert (fields["run_id"], fields["workflow"], fields.get("step")) == (99, "wf", None)
    assert fields["ids"] == " run_id=99 workflow=wf"
    formatted = logging.Formatter(logs.PLAIN_FORMAT).format(record)
    assert formatted.endswith("m run_id=99 workflow=wf")
    outside = logging.LogRecord("t", logging.INFO, __file__, 1, "m", None, None)
    context.TraceIdFilter().filter(outside)
    assert vars(outside)["ids"] == "" and "run_id" not in vars(outside)
