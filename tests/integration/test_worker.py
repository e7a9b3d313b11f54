"""The worker loop in process: an event becomes a succeeded run; failures retry, then go dead."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from asgiref.sync import sync_to_async

from automate_connectors.adapters.base import ConnectorAdapter, ConnectorError
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, StepRun
from automate_core.plugins import registry
from automate_core.worker.pool import WorkerOptions, WorkerPool
from tests.helpers import eventually

pytestmark = pytest.mark.usefixtures("live_db")


class Recorder(ConnectorAdapter):
    code = "recorder"
    name = "Records calls"
    actions: ClassVar[tuple[str, ...]] = ("record", "fail", "fatal", "slow")
    calls: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        self.calls.append((action, params))
        if action == "fail":
            raise ConnectorError("remote said no")
        if action == "fatal":
            raise ConnectorError("cannot ever work", retryable=False)
        if action == "slow":
            await asyncio.sleep(10)
        return {"seen": params}


class SyncRecorder(ConnectorAdapter):
    code = "sync_recorder"
    name = "Sync recorder"

    def execute(self, action: str, params: dict, context: dict) -> Any:
        import threading

        return {"thread": threading.current_thread().name, "params": params}


@pytest.fixture(autouse=True)
def recorder() -> Iterator[type[Recorder]]:
    Recorder.calls = []
    registry.connectors().override("recorder", Recorder)
    registry.connectors().override("sync_recorder", SyncRecorder)
    yield Recorder
    registry.connectors().override("recorder", None)
    registry.connectors().override("sync_recorder", None)


def workflow(load: Callable[[dict[str, Any]], Any], *steps: dict[str, Any], **extra: Any) -> None:
    load({"workflows": [{"name": "wf", "trigger": {"source": "shop", "event_type": "order.*"},
                         "steps": list(steps), **extra}]})  # fmt: skip


async def drain(until: Callable[[], Any], within: float = 10.0) -> WorkerPool:
    """Run a worker until ``until()`` is true (polled through the ORM), then stop it gracefully."""
    pool = WorkerPool(WorkerOptions(concurrency=8, batch_size=4, poll_interval=0.1, lease_seconds=5))
    task = asyncio.create_task(pool.run())
    try:
        await eventually(until, within)
    finally:
        pool.stop()
        await task
    return pool


async def test_event_runs_its_workflow(load: Callable[..., Any]) -> None:
    await sync_to_async(workflow)(
        load,
        {"name": "first", "connector": "recorder", "action": "record",
         "params": {"id": "{{ event.payload.id }}"}},
        {"name": "second", "connector": "sync_recorder", "action": "any",
         "params": {"prev": "{{ steps.first.output.seen.id }}"}},
    )  # fmt: skip
    result = await sync_to_async(emit)("shop", "order.created", {"id": 42})
    await drain(lambda: OutboxJob.objects.filter(status="completed").exists())
    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    assert run.status == "succeeded" and run.trace_id == result.trace_id
    steps = [s async for s in StepRun.objects.filter(run=run).order_by("position")]
    assert [s.status for s in steps] == ["succeeded", "succeeded"]
    assert steps[0].input == {"id": 42}  # a single expression keeps its type
    assert steps[1].output is not None
    assert steps[1].output["params"] == {"prev": 42}
    assert steps[1].output["thread"] != "MainThread"  # the sync connector ran off the event loop


async def test_unmatched_events_complete_without_runs() -> None:
    await sync_to_async(emit)("elsewhere", "x", {})
    await drain(lambda: OutboxJob.objects.filter(status="completed").exists())
    assert await ExecutionRun.objects.acount() == 0


async def test_failing_connector_is_retried_then_dead(load: Callable[..., Any]) -> None:
    await sync_to_async(workflow)(
        load, {"name": "s", "connector": "recorder", "action": "fail"}, max_attempts=3
    )
    await sync_to_async(emit)("shop", "order.created", {})
    await drain(lambda: OutboxJob.objects.filter(status="dead").exists())
    job = await OutboxJob.objects.aget()
    assert job.attempts == 3
    assert "remote said no" in job.last_error
    runs = [r async for r in ExecutionRun.objects.order_by("attempt")]
    assert [(r.attempt, r.status) for r in runs] == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert "remote said no" in runs[-1].error


async def test_non_retryable_failure_is_dead_at_once(load: Callable[..., Any]) -> None:
    await sync_to_async(workflow)(load, {"name": "s", "connector": "recorder", "action": "fatal"})
    await sync_to_async(emit)("shop", "order.created", {})
    await drain(lambda: OutboxJob.objects.filter(status="dead").exists())
    assert (await OutboxJob.objects.aget()).attempts == 1


async def test_step_timeout_fails_the_run_and_retries(load: Callable[..., Any]) -> None:
    await sync_to_async(workflow)(
        load,
        {"name": "s", "connector": "recorder", "action": "slow", "timeout": 0.2},
        max_attempts=2,
    )
    await sync_to_async(emit)("shop", "order.created", {})
    await drain(lambda: OutboxJob.objects.filter(status="dead").exists())
    step = await StepRun.objects.order_by("-id").afirst()
    assert step is not None and "ConnectorTimeout" in step.error


async def test_missing_connector_is_recorded_not_crashing(load: Callable[..., Any]) -> None:
    await sync_to_async(workflow)(load, {"name": "s", "connector": "recorder", "action": "record"})
    registry.connectors().override("recorder", None)
    await sync_to_async(emit)("shop", "order.created", {})
    await drain(lambda: OutboxJob.objects.filter(status="dead").exists())
    run = await ExecutionRun.objects.aget()
    assert "UnknownPluginError" in run.error


async def test_retry_does_not_rerun_workflows_that_succeeded(load: Callable[..., Any]) -> None:
    def setup() -> None:
        load({"workflows": [
            {"name": "good", "trigger": {"source": "shop"}, "steps": [
                {"name": "s", "connector": "recorder", "action": "record", "params": {"w": "good"}}]},
            {"name": "bad", "trigger": {"source": "shop"}, "max_attempts": 2, "steps": [
                {"name": "s", "connector": "recorder", "action": "fail"}]},
        ]})  # fmt: skip

    await sync_to_async(setup)()
    await sync_to_async(emit)("shop", "order.created", {})
    await drain(lambda: OutboxJob.objects.filter(status="dead").exists())
    assert [c for c in Recorder.calls if c[0] == "record"] == [("record", {"w": "good"})]


async def test_a_new_workflow_applies_to_the_next_batch(load: Callable[..., Any]) -> None:
    """The worker reloads its rule index when the configuration generation moves."""
    pool = WorkerPool(WorkerOptions(concurrency=4, batch_size=4, poll_interval=0.1, lease_seconds=5))
    pool_task = asyncio.create_task(pool.run())
    try:
        await sync_to_async(emit)("shop", "order.created", {})
        await eventually(lambda: OutboxJob.objects.filter(status="completed").exists())
        await sync_to_async(workflow)(load, {"name": "s", "connector": "recorder", "action": "record"})
        await sync_to_async(emit)("shop", "order.created", {})
        await eventually(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    finally:
        pool.stop()
        await pool_task
