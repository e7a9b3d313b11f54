"""Run records are fenced by the job's claim: a worker whose lease was taken over writes no final word.

The chaos suite's ``lease-expiry`` and ``pg-terminate-backends`` scenarios found the gap this
closes: a stale worker (frozen past its lease, or cut off from the database after it had written
its run) could leave a second ``succeeded`` run for one event. Each test here plays one
interleaving of two claims of the same job deterministically: worker A holds attempt 1, worker B
takes the job over, and the order of their writes is forced with a gate in the connector.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import psycopg
import pytest
from asgiref.sync import sync_to_async

from automate_connectors.adapters.base import ConnectorAdapter
from automate_core import db
from automate_core.execution.engine import ExecutionEngine
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, StepRun
from automate_core.outbox.store import ClaimedJob, OutboxStore
from automate_core.plugins import registry
from automate_core.worker.dispatch import Dispatcher
from tests.conftest import database_url

pytestmark = pytest.mark.usefixtures("live_db")

store = OutboxStore()


class Gated(ConnectorAdapter):
    """Each call records itself; the first claim's calls then wait until the test opens the gate."""

    code = "gated"
    name = "Gated"
    calls: ClassVar[list[dict[str, Any]]] = []
    gate: ClassVar[asyncio.Event]
    entered: ClassVar[asyncio.Event]

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        type(self).calls.append(context)
        if context["attempt"] == 1:
            type(self).entered.set()
            await type(self).gate.wait()
        return {"ok": True}


@pytest.fixture(autouse=True)
def gated() -> Iterator[type[Gated]]:
    Gated.calls, Gated.gate, Gated.entered = [], asyncio.Event(), asyncio.Event()
    registry.connectors().override("gated", Gated)
    yield Gated
    registry.connectors().override("gated", None)


@pytest.fixture
async def event(workflow: Callable[..., Any]) -> int:
    await workflow({"name": "call", "connector": "gated", "action": "go"})
    result = await sync_to_async(emit)("shop", "order.created", {"id": 1})
    return result.event_id


async def take_over(job: ClaimedJob, owner: str = "worker-b") -> ClaimedJob:
    """What happens when A's lease expires: the rescuer hands the job back, B claims it."""
    await OutboxJob.objects.filter(pk=job.id).aupdate(lease_expires_at="2000-01-01T00:00:00Z")
    assert [j for j, _ in await store.rescue_expired()] == [job.id]
    (again,) = await store.claim_batch(1, owner, 30)
    assert again.id == job.id and again.attempts == job.attempts + 1
    return again


async def runs_of(event_id: int) -> list[tuple[str, str]]:
    return [(r.status, r.error) async for r in ExecutionRun.objects.filter(event_id=event_id).order_by("id")]


async def test_a_worker_taken_over_before_its_run_starts_runs_nothing(event: int) -> None:
    engine = ExecutionEngine()
    (job_a,) = await store.claim_batch(1, "worker-a", 0.001)  # A claims, then freezes past its lease
    assert not job_a.fresh  # so its run's start is written first, fenced (execution.late_start)
    job_b = await take_over(job_a)
    Gated.gate.set()
    assert (await engine.handle_event(job_b)).succeeded
    outcome = await engine.handle_event(job_a)  # A wakes up and carries on with its old claim
    assert not outcome.succeeded and "taken over" in outcome.error
    assert len(Gated.calls) == 1  # A called nothing
    assert [s for s, _ in await runs_of(event)] == ["succeeded"]


async def test_a_stale_run_ending_after_the_takeover_is_superseded_not_succeeded(event: int) -> None:
    engine = ExecutionEngine()
    (job_a,) = await store.claim_batch(1, "worker-a", 30)
    a = asyncio.create_task(engine.handle_event(job_a))
    await Gated.entered.wait()  # A is inside its step when its lease is lost
    job_b = await take_over(job_a)
    Gated.gate.set()  # A's step finishes first, then A tries to end its run
    outcome_a = await a
    assert not outcome_a.succeeded
    (status, error), = await runs_of(event)  # fmt: skip
    assert status == "failed" and error.startswith("superseded")
    # B resumes A's run: the step A recorded as done is reused, not called again
    assert (await engine.handle_event(job_b)).succeeded
    assert [s for s, _ in await runs_of(event)] == ["failed", "succeeded"]
    assert len(Gated.calls) == 1
    steps = [s.status async for s in StepRun.objects.filter(run__event_id=event).order_by("id")]
    assert steps == ["succeeded", "reused"]


async def two_steps_started(
    workflow: Callable[..., Any],
) -> tuple[int, ExecutionEngine, ClaimedJob, asyncio.Task[Any]]:
    """A two-step workflow, its event, and worker A's claim of it running in a task."""
    await workflow(
        {"name": "first", "connector": "gated", "action": "go"},
        {"name": "second", "connector": "gated", "action": "go"},
    )
    event = (await sync_to_async(emit)("shop", "order.created", {"id": 2})).event_id
    engine = ExecutionEngine()
    (job_a,) = await store.claim_batch(1, "worker-a", 30)
    return event, engine, job_a, asyncio.create_task(engine.handle_event(job_a))


async def test_a_stale_worker_stops_at_its_next_step_once_the_new_claim_took_its_run(
    workflow: Callable[..., Any], settings: Any
) -> None:
    settings.AUTOMATE_RUN_START_DELAY = 0  # A's run is written running before its first step
    event, engine, job_a, a = await two_steps_started(workflow)
    await Gated.entered.wait()  # A is inside "first"
    job_b = await take_over(job_a)
    assert (await engine.handle_event(job_b)).succeeded  # B abandons A's run and does it all
    Gated.gate.set()
    assert not (await a).succeeded  # A's "first" returns, its record finds the run abandoned
    runs = await runs_of(event)
    assert [s for s, _ in runs] == ["failed", "succeeded"] and runs[0][1].startswith("abandoned")
    assert [c["step"] for c in Gated.calls] == ["first", "first", "second"]  # A never reached "second"


async def test_a_stale_worker_whose_run_was_not_written_yet_stops_at_its_first_record(
    workflow: Callable[..., Any],
) -> None:
    """A's run is short-lived and its start held (execution.late_start): B cannot see it and runs
    the workflow itself. A's first step record then meets the fence: A's run is written failed,
    superseded, with the step it did (its history is kept), and A stops before its next step."""
    event, engine, job_a, a = await two_steps_started(workflow)
    await Gated.entered.wait()  # A is inside "first", nothing of its run written
    assert await runs_of(event) == []
    job_b = await take_over(job_a)
    assert (await engine.handle_event(job_b)).succeeded
    Gated.gate.set()
    outcome = await a
    assert not outcome.succeeded and "taken over" in outcome.error
    runs = [r async for r in ExecutionRun.objects.filter(event_id=event).order_by("id")]
    assert [(r.status, r.job_id) for r in runs] == [("failed", job_a.id), ("succeeded", job_b.id)]
    assert runs[0].error.startswith("superseded") and runs[0].finished_at is not None
    assert [c["step"] for c in Gated.calls] == ["first", "first", "second"]  # A never reached "second"
    assert [c["run_id"] for c in Gated.calls] == [runs[0].id, runs[1].id, runs[1].id]
    a_steps = [(s.name, s.status) async for s in StepRun.objects.filter(run_id=runs[0].id)]
    assert a_steps == [("first", "succeeded")]


async def test_a_claim_handed_back_after_its_run_succeeded_does_not_run_it_again(event: int) -> None:
    """A worker cut off from the database right after its run's end was written hands the job back
    unspent (a database outage is not the job's fault); the next claim must see the run done."""
    engine = ExecutionEngine()
    Gated.gate.set()
    (job_a,) = await store.claim_batch(1, "worker-a", 30)
    assert (await engine.handle_event(job_a)).succeeded
    assert await store.release([job_a], "worker-a", [0.0]) == {job_a.id}  # instead of complete
    (job_b,) = await store.claim_batch(1, "worker-b", 30)
    assert (job_b.attempts, job_b.spent) == (2, 1)
    assert (await engine.handle_event(job_b)).succeeded
    assert len(Gated.calls) == 1
    assert [s for s, _ in await runs_of(event)] == ["succeeded"]


async def test_a_takeover_blocked_by_a_stuck_lock_is_handed_back_not_left_waiting(
    event: int, settings: Any
) -> None:
    """The run A left running is locked by a session that never ends its transaction (a worker
    frozen mid-transaction, as far as the database can tell): B's takeover does not wait on it
    forever, holding a pooled connection, but hands the job back to try later, attempt unspent."""
    settings.AUTOMATE_DB_TAKEOVER_LOCK_TIMEOUT = 0.3
    settings.AUTOMATE_RUN_START_DELAY = 0  # A's run is written running before its step
    engine = ExecutionEngine()
    (job_a,) = await store.claim_batch(1, "worker-a", 30)
    a = asyncio.create_task(engine.handle_event(job_a))
    await Gated.entered.wait()  # A's run is running
    job_b = await take_over(job_a)
    run = await ExecutionRun.objects.aget(event_id=event)
    async with await psycopg.AsyncConnection.connect(database_url()) as stuck:
        await stuck.execute("SELECT 1 FROM automate_run WHERE id = %s FOR UPDATE", (run.id,))
        async with asyncio.timeout(10):  # before the fix: forever
            settlement = await Dispatcher(engine).execute(job_b)
        assert (settlement.action, settlement.delay) == ("release", 0.3)
        stats = (await db.get_pool()).get_stats()
        assert stats.get("pool_size", 0) - stats.get("pool_available", 0) == 0  # nothing held
        await stuck.rollback()
    assert await store.release([job_b], "worker-b", [0.0]) == {job_b.id}
    (job_c,) = await store.claim_batch(1, "worker-c", 30)
    assert job_c.spent == job_b.spent  # handed back: the attempt was not spent
    Gated.gate.set()
    assert not (await a).succeeded  # A carries on, finds its claim taken over
    assert (await engine.handle_event(job_c)).succeeded  # the lock gone, the takeover goes through
    assert [s for s, _ in await runs_of(event)][-1] == "succeeded"
