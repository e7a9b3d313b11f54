"""Two ``automate worker`` processes share the debounce windows and batch buffers, and one killed
with SIGKILL while it holds a window or a buffer loses nothing and leaves nothing stuck: the run
still happens once, with every event."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from automate_core.ingest.ingestor import emit
from automate_core.models import EventGroup, ExecutionRun, GroupMember, OutboxJob
from automate_core.plugins import registry
from tests.conftest import database_url
from tests.grouping import probe
from tests.grouping.conftest import make_due
from tests.helpers import eventually
from tests.worker.test_faults import Workers
from tests.workflows.conftest import aload

pytestmark = pytest.mark.usefixtures("live_db")

FLAGS = ("--concurrency", "8", "--batch-size", "4", "--lease", "1.5", "--rescue-interval", "0.3")
JOIN = "WITH already AS"  # text only JOIN_GROUP has
CLOSE = "WITH closed AS"  # text only CLOSE_GROUP has


@pytest.fixture(autouse=True)
def gprobe() -> Iterator[None]:
    registry.connectors().override("gprobe", probe.Probe)
    yield
    registry.connectors().override("gprobe", None)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path, database_url())
    w.env["DJANGO_SETTINGS_MODULE"] = "tests.grouping.proc_settings"
    w.env["AUTOMATE_TEST_GROUP_LOG"] = str(tmp_path / "group.jsonl")
    w.env["AUTOMATE_TEST_DIE_MARKER"] = str(tmp_path / "died.pid")
    yield w
    w.stop_all()


def record(name: str, **params: str) -> dict[str, Any]:
    return {"name": name, "connector": "gprobe", "action": "record", "params": params}


IDS = {"ids": "{{ events | map(attribute='id') | list }}", "last": "{{ event.id }}"}


def done() -> bool:
    return not OutboxJob.objects.exclude(status="completed").exists()


def events_done() -> bool:
    """Every event job completed (flush jobs may still be parked)."""
    return not OutboxJob.objects.exclude(status="completed").exclude(payload__has_key="flush").exists()


async def send(n: int) -> list[int]:
    return [(await sync_to_async(emit)("shop", "order.created", {"i": i})).event_id for i in range(n)]


def calls(workers: Workers, action: str = "record") -> list[dict[str, Any]]:
    return [c for c in probe.read(workers.env["AUTOMATE_TEST_GROUP_LOG"]) if c["action"] == action]


async def start_two(workers: Workers) -> list[Any]:
    procs = [workers.start(*FLAGS), workers.start(*FLAGS)]
    await eventually(lambda: all("started" in workers.log(p) for p in procs), within=60)
    return procs


async def test_killed_while_holding_a_debounce_window(workers: Workers, tmp_path: Path) -> None:
    """SIGKILL inside the transaction in which an event joins the window (locks held, not
    committed): the event job is rescued and joins it on the other worker."""
    await aload(
        {
            "name": "d",
            "trigger": {"source": "shop"},
            "debounce": {"period": "1h"},
            "steps": [record("last", last="{{ event.id }}")],
        }
    )
    workers.env["AUTOMATE_TEST_KILL_ON"] = JOIN
    workers.env["AUTOMATE_TEST_KILL_MARKER"] = str(tmp_path / "killed.pid")
    procs = await start_two(workers)
    ids = await send(12)
    await eventually(events_done, within=40, message="an event job was lost or stuck")
    assert sorted([p.poll() for p in procs], key=str)[0] == -signal.SIGKILL  # one of them was killed
    [group] = [g async for g in EventGroup.objects.all()]
    assert (group.status, group.size, group.last_event_id) == ("open", 12, ids[-1])
    assert sorted([m.event_id async for m in GroupMember.objects.all()]) == ids
    await make_due()
    await eventually(lambda: ExecutionRun.objects.filter(status="succeeded").exists() and done(), within=30)
    [call] = calls(workers)
    assert int(call["params"]["last"]) == ids[-1]
    assert await ExecutionRun.objects.acount() == 1


async def test_killed_while_closing_a_full_batch(workers: Workers, tmp_path: Path) -> None:
    """SIGKILL inside the flush job's close (the group's row updated, not committed): the flush
    job is rescued and the other worker closes the batch and runs it, once, with every event."""
    await aload(
        {
            "name": "b",
            "trigger": {"source": "shop"},
            "batch": {"max_size": 5, "timeout": "1h"},
            "steps": [record("all", **IDS)],
        }
    )
    workers.env["AUTOMATE_TEST_KILL_ON"] = CLOSE
    workers.env["AUTOMATE_TEST_KILL_MARKER"] = str(tmp_path / "killed.pid")
    procs = await start_two(workers)
    ids = await send(10)
    await eventually(
        lambda: ExecutionRun.objects.filter(status="succeeded").count() == 2 and done(), within=40
    )
    assert any(p.poll() == -signal.SIGKILL for p in procs)
    batches = sorted(sorted(int(i) for i in c["params"]["ids"]) for c in calls(workers))
    assert len(batches) == 2 and sorted(e for b in batches for e in b) == ids  # each event once
    assert await ExecutionRun.objects.acount() == 2


async def test_killed_mid_flush_run(workers: Workers) -> None:
    """SIGKILL in the middle of the batch's run: the flush job's next claim resumes that run (the
    step that succeeded is reused, not repeated) with the same list of events."""
    await aload(
        {
            "name": "b",
            "trigger": {"source": "shop"},
            "batch": {"max_size": 6, "timeout": "1h"},
            "max_attempts": 3,
            "steps": [
                record("first", **IDS),
                {"name": "die", "connector": "gprobe", "action": "die_once"},
                record("second", **IDS),
            ],
        }
    )
    procs = await start_two(workers)
    ids = await send(6)
    await eventually(lambda: ExecutionRun.objects.filter(status="succeeded").exists() and done(), within=40)
    assert any(p.poll() == -signal.SIGKILL for p in procs)
    logged = calls(workers)
    assert [c["params"]["ids"] for c in logged] == [ids, ids]  # first once, then second, same batch
    runs = [r async for r in ExecutionRun.objects.order_by("id")]
    assert [r.status for r in runs] == ["failed", "succeeded"] and runs[0].error.startswith("abandoned")
    [group] = [g async for g in EventGroup.objects.all()]
    assert (group.status, group.size, group.run_id) == ("flushed", 6, runs[0].pk)
