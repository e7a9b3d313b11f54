"""A plain run's start is held until a record needs it (``execution.late_start``).

A short run is written once, whole, at its end; a run of several steps with its first step
record; a slow one as ``running`` once ``AUTOMATE_RUN_START_DELAY`` has passed. Each test checks
what a user sees in the run records: the ids the steps were given, the statuses, and that nothing
recorded is repeated when the job runs again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from asgiref.sync import sync_to_async

from automate_connectors.adapters.base import ConnectorAdapter
from automate_core.exceptions import ConnectorError
from automate_core.execution import replay
from automate_core.execution.engine import ExecutionEngine
from automate_core.execution.grouped import GroupedJournalWrites
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, StepRun
from automate_core.outbox.store import Failure, OutboxStore
from automate_core.plugins import registry
from tests.helpers import eventually
from tests.worker.test_fencing import take_over

pytestmark = pytest.mark.usefixtures("live_db")

store = OutboxStore()


class Held(ConnectorAdapter):
    """Records each call; an action ``wait`` waits for the gate, ``fail_once`` fails its first call."""

    code = "held"
    name = "Held"
    calls: ClassVar[list[dict[str, Any]]] = []
    gate: ClassVar[asyncio.Event]
    entered: ClassVar[asyncio.Event]

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        type(self).calls.append({**context, "params": params})
        if action == "wait":
            type(self).entered.set()
            await type(self).gate.wait()
        if action == "fail_once" and len([c for c in type(self).calls if c["step"] == context["step"]]) == 1:
            raise ConnectorError("the first call fails", retryable=True)
        return {"run": context["run_id"]}


@pytest.fixture(autouse=True)
def held() -> Iterator[type[Held]]:
    Held.calls, Held.gate, Held.entered = [], asyncio.Event(), asyncio.Event()
    registry.connectors().override("held", Held)
    yield Held
    registry.connectors().override("held", None)


@pytest.fixture
def kinds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds of the run journal's writes, in order."""
    writes = GroupedJournalWrites(flushers=1)
    seen: list[str] = []
    original = writes.write

    async def write(kind: Any, record: dict[str, Any], step: dict[str, Any] | None = None) -> Any:
        seen.append(kind)
        return await original(kind, record, step)

    monkeypatch.setattr(writes, "write", write)
    monkeypatch.setattr("automate_core.execution.journal.writer", lambda: writes)
    return seen


def step(name: str, action: str = "go", **params: Any) -> dict[str, Any]:
    return {"name": name, "connector": "held", "action": action, "params": params}


async def one_event() -> int:
    return (await sync_to_async(emit)("shop", "order.created", {"id": 1})).event_id


async def test_a_short_run_is_written_once_whole_under_the_id_its_steps_were_given(
    workflow: Callable[..., Any], kinds: list[str]
) -> None:
    await workflow(step("only", run="{{ run.id }}"))
    event = await one_event()
    (job,) = await store.claim_batch(1, "worker-a", 30)
    assert job.run_id is not None and job.fresh
    assert (await ExecutionEngine().handle_event(job)).succeeded
    assert kinds == ["whole"]  # no start, no end: one insert of the run, with its step
    run = await ExecutionRun.objects.aget(event_id=event)
    (call,) = Held.calls
    assert run.id == job.run_id == call["run_id"] == int(call["params"]["run"])
    assert (run.status, run.job_id, run.attempt) == ("succeeded", job.id, 1)
    recorded = await StepRun.objects.aget(run=run)
    assert (recorded.status, recorded.output) == ("succeeded", {"run": run.id})
    assert run.finished_at is not None
    assert run.started_at <= recorded.started_at and recorded.finished_at <= run.finished_at


async def test_a_run_of_several_steps_is_written_with_its_first_step_and_resumed_after_it(
    workflow: Callable[..., Any], kinds: list[str]
) -> None:
    """The first step record brings its run along, in one transaction: a step is never recorded
    without its run, so a worker that dies in the second step leaves a run the retry resumes."""
    await workflow(step("first"), step("second", "wait"))
    event = await one_event()
    (job_a,) = await store.claim_batch(1, "worker-a", 30)
    a = asyncio.create_task(ExecutionEngine().handle_event(job_a))
    await Held.entered.wait()  # "first" is recorded, "second" runs
    assert kinds == ["whole"]
    (run,) = [r async for r in ExecutionRun.objects.filter(event_id=event)]
    assert (run.id, run.status, run.finished_at) == (job_a.run_id, "running", None)
    assert [s.name async for s in StepRun.objects.filter(run=run)] == ["first"]
    a.cancel()  # the worker dies in "second"
    with pytest.raises(asyncio.CancelledError):
        await a
    job_b = await take_over(job_a)
    Held.gate.set()
    assert (await ExecutionEngine().handle_event(job_b)).succeeded
    assert [c["step"] for c in Held.calls] == ["first", "second", "second"]  # "first" not repeated
    runs = [(r.id, r.status) async for r in ExecutionRun.objects.filter(event_id=event).order_by("id")]
    assert [s for _, s in runs] == ["failed", "succeeded"]  # abandoned, then resumed
    assert job_a.run_id is not None and job_b.run_id is not None
    assert runs[1][0] == job_b.run_id > job_a.run_id  # the retry's run is the latest
    resumed = [(s.name, s.status) async for s in StepRun.objects.filter(run_id=runs[1][0]).order_by("id")]
    assert resumed == [("first", "reused"), ("second", "succeeded")]


async def test_a_slow_run_is_seen_running_after_the_delay_and_can_be_cancelled(
    workflow: Callable[..., Any], settings: Any
) -> None:
    settings.AUTOMATE_RUN_START_DELAY = 0.05
    await workflow(step("slow", "wait"), step("after"))
    event = await one_event()
    (job,) = await store.claim_batch(1, "worker-a", 30)
    task = asyncio.create_task(ExecutionEngine().handle_event(job))
    await Held.entered.wait()
    await eventually(lambda: ExecutionRun.objects.filter(event_id=event, status="running").exists())
    run = await ExecutionRun.objects.aget(event_id=event)
    assert run.id == job.run_id and not await StepRun.objects.filter(run=run).aexists()
    assert await sync_to_async(replay.cancel)(run.id) == "cancelled"
    Held.gate.set()
    assert (await task).succeeded  # a cancelled run is not the job's failure
    run = await ExecutionRun.objects.aget(event_id=event)
    assert run.status == "cancelled"
    assert [c["step"] for c in Held.calls] == ["slow"]  # stopped before "after"
    assert [s.name async for s in StepRun.objects.filter(run=run)] == ["slow"]  # what it did is kept


async def test_a_short_run_that_fails_is_written_whole_and_its_retry_is_a_later_run(
    workflow: Callable[..., Any], kinds: list[str]
) -> None:
    await workflow(step("flaky", "fail_once"), max_attempts=2)
    event = await one_event()
    engine = ExecutionEngine()
    (first,) = await store.claim_batch(1, "worker-a", 30)
    outcome = await engine.handle_event(first)
    assert not outcome.succeeded and outcome.retryable and "the first call fails" in outcome.error
    failed = await ExecutionRun.objects.aget(event_id=event)
    assert (failed.id, failed.status) == (first.run_id, "failed")
    assert await store.fail([Failure(first, outcome.error, dead=False)], "worker-a") == {first.id}
    (second,) = await store.claim_batch(1, "worker-b", 30)
    assert (await engine.handle_event(second)).succeeded
    assert kinds == ["whole", "whole"]
    runs = [(r.id, r.status) async for r in ExecutionRun.objects.filter(event_id=event).order_by("id")]
    assert runs == [(first.run_id, "failed"), (second.run_id, "succeeded")]
    steps = [(s.run_id, s.status) async for s in StepRun.objects.order_by("id")]
    assert steps == [(first.run_id, "failed"), (second.run_id, "succeeded")]


async def test_with_the_delay_at_zero_every_start_is_written_before_the_first_step(
    workflow: Callable[..., Any], kinds: list[str], settings: Any
) -> None:
    settings.AUTOMATE_RUN_START_DELAY = 0
    await workflow(step("only"))
    event = await one_event()
    (job,) = await store.claim_batch(1, "worker-a", 30)
    assert (await ExecutionEngine().handle_event(job)).succeeded
    assert kinds == ["start", "close"]
    assert [r.status async for r in ExecutionRun.objects.filter(event_id=event)] == ["succeeded"]


async def test_every_slow_run_is_shown_running_however_many_are_held(
    workflow: Callable[..., Any], settings: Any
) -> None:
    """One sweep per journal writes the held starts as they fall due, the later ones after the
    earlier: none is forgotten when several runs are slow at once."""
    settings.AUTOMATE_RUN_START_DELAY = 0.05
    await workflow(step("slow", "wait"))
    engine = ExecutionEngine()
    tasks = []
    for i in range(3):
        await sync_to_async(emit)("shop", "order.created", {"id": i})
        (job,) = await store.claim_batch(1, f"worker-{i}", 30)
        Held.entered.clear()
        tasks.append(asyncio.create_task(engine.handle_event(job)))
        await Held.entered.wait()  # this one is inside its step
    await eventually(lambda: ExecutionRun.objects.filter(status="running").count() == 3)
    held = engine.journal.late.values()
    assert len(held) == 3 and all(late.task is not None for late in held)  # each went out on its own
    Held.gate.set()
    assert all(outcome.succeeded for outcome in await asyncio.gather(*tasks))
    assert [r.status async for r in ExecutionRun.objects.all()] == ["succeeded"] * 3
    assert await StepRun.objects.acount() == 3
