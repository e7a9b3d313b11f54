"""The races of a group, played deterministically: an event that arrives while the flush job is
already claimed is never lost, and never makes a second run."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from automate_core.execution.engine import ExecutionEngine
from automate_core.ingest.ingestor import emit
from automate_core.models import EventGroup, ExecutionRun, OutboxJob
from automate_core.outbox.store import OutboxStore
from tests.grouping.conftest import LAST, RECORD, agroups, make_due
from tests.workflows.conftest import Probe, aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")


async def send(n: int) -> list[int]:
    return [(await sync_to_async(emit)("shop", "order.created", {"i": i})).event_id for i in range(n)]


def completed(n: int) -> bool:
    return OutboxJob.objects.filter(status="completed").count() == n


async def absorb_one(store: OutboxStore, engine: ExecutionEngine) -> int:
    """A new event, its job claimed and run here: it joins the group."""
    [event_id] = await send(1)
    [job] = await store.claim_batch(1, "w2", lease=30)
    assert job.event is not None and job.event.id == event_id
    assert (await engine.handle_event(job)).succeeded
    return event_id


async def test_an_event_after_the_flush_job_was_claimed_pushes_the_debounce(probe: type[Probe]) -> None:
    await aload(workflow("wf", LAST, debounce={"period": "1h"}))
    await send(2)
    await drain(lambda: completed(2))
    await make_due()
    store, engine = OutboxStore(), ExecutionEngine()
    [flush] = await store.claim_batch(1, "w1", lease=30)  # due: a worker has it, not yet closed
    assert flush.payload == {"flush": (await EventGroup.objects.aget()).pk}
    newest = await absorb_one(store, engine)  # joins the still-open window, pushing it an hour
    outcome = await engine.handle_event(flush)
    assert not outcome.succeeded and outcome.snooze is not None and outcome.snooze > 3500  # comes back then
    assert [(s, n) for _k, _key, s, n, _r in await agroups()] == [("open", 3)] and probe.calls == []
    await store.release([flush], "w1", [outcome.snooze])
    await make_due()
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    assert [int(p["last"]) for _a, p, _c in probe.calls] == [newest]  # one run, on the newest event


async def test_an_event_after_the_flush_job_was_claimed_joins_the_batch(probe: type[Probe]) -> None:
    await aload(workflow("wf", RECORD, batch={"max_size": 10, "timeout": "1h"}))
    ids = await send(2)
    await drain(lambda: completed(2))
    await make_due()
    store, engine = OutboxStore(), ExecutionEngine()
    [flush] = await store.claim_batch(1, "w1", lease=30)
    newest = await absorb_one(store, engine)  # before the close: it is in this batch
    assert (await engine.handle_event(flush)).succeeded
    [(_a, params, _c)] = probe.calls
    assert [int(i) for i in params["ids"]] == [*ids, newest] and int(params["last"]) == newest
    assert [(s, n) for _k, _key, s, n, _r in await agroups()] == [("flushed", 3)]
    after = await absorb_one(store, engine)  # after the close: the next batch
    assert [(s, n) for _k, _key, s, n, _r in await agroups()] == [("flushed", 3), ("open", 1)]
    assert after not in [int(i) for i in params["ids"]]
