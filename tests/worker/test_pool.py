"""The worker loop in process: events become runs, failures retry then die, leases are kept and
lost, slots bound the claims, NOTIFY wakes idle workers, and stopping hands unfinished jobs back."""

from __future__ import annotations

import asyncio
import itertools
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from asgiref.sync import sync_to_async

from automate_connectors.adapters.base import ConnectorAdapter, ConnectorError
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, StepRun
from automate_core.plugins import registry
from automate_core.worker.pool import WorkerPool
from tests.helpers import eventually
from tests.worker.conftest import drain, options, running

pytestmark = pytest.mark.usefixtures("live_db")


class Recorder(ConnectorAdapter):
    code = "recorder"
    name = "Records calls"
    actions: ClassVar[tuple[str, ...]] = ("record", "fail", "fatal", "slow", "nap")
    calls: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    cancelled: ClassVar[list[dict[str, Any]]] = []
    now_running: ClassVar[int] = 0
    most_running: ClassVar[int] = 0
    #: Set once a "slow" or "nap" call is under way (the tests wait on it, not on time).
    started: ClassVar[asyncio.Event]

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        cls = type(self)
        cls.calls.append((action, params))
        cls.now_running += 1
        cls.most_running = max(cls.most_running, cls.now_running)
        try:
            if action == "fail":
                raise ConnectorError("remote said no")
            if action == "fatal":
                raise ConnectorError("cannot ever work", retryable=False)
            if action in ("slow", "nap"):
                cls.started.set()
                await asyncio.sleep(float(params.get("seconds", 10)))
        except asyncio.CancelledError:
            cls.cancelled.append(context)
            raise
        finally:
            cls.now_running -= 1
        return {"seen": params}


class SyncRecorder(ConnectorAdapter):
    code = "sync_recorder"
    name = "Sync recorder"

    def execute(self, action: str, params: dict, context: dict) -> Any:
        if action == "hang":
            time.sleep(float(params.get("seconds", 3)))  # a sync call that ignores every timeout
        return {"thread": threading.current_thread().name, "params": params}


@pytest.fixture(autouse=True)
def recorder() -> Iterator[type[Recorder]]:
    Recorder.calls, Recorder.cancelled, Recorder.started = [], [], asyncio.Event()
    Recorder.now_running = Recorder.most_running = 0
    registry.connectors().override("recorder", Recorder)
    registry.connectors().override("sync_recorder", SyncRecorder)
    yield Recorder
    registry.connectors().override("recorder", None)
    registry.connectors().override("sync_recorder", None)


def completed() -> bool:
    return OutboxJob.objects.filter(status="completed").exists()


def dead() -> bool:
    return OutboxJob.objects.filter(status="dead").exists()


async def order(n: int = 1) -> None:
    for i in range(n):
        await sync_to_async(emit)("shop", "order.created", {"id": i})


async def test_event_runs_its_workflow(workflow: Callable[..., Any]) -> None:
    await workflow(
        {"name": "first", "connector": "recorder", "action": "record",
         "params": {"id": "{{ event.payload.id }}"}},
        {"name": "second", "connector": "sync_recorder", "action": "any",
         "params": {"prev": "{{ steps.first.output.seen.id }}"}},
    )  # fmt: skip
    result = await sync_to_async(emit)("shop", "order.created", {"id": 42})
    await drain(completed)
    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    assert run.status == "succeeded" and run.trace_id == result.trace_id
    steps = [s async for s in StepRun.objects.filter(run=run).order_by("position")]
    assert [s.status for s in steps] == ["succeeded", "succeeded"]
    assert steps[0].input == {"id": 42}  # a single expression keeps its type
    assert steps[1].output is not None
    assert steps[1].output["params"] == {"prev": 42}
    assert steps[1].output["thread"] != "MainThread"  # the sync connector ran off the event loop
    job = await OutboxJob.objects.aget()
    assert (job.attempts, job.lease_owner, job.lease_expires_at) == (1, "", None)


async def test_unmatched_events_complete_without_runs() -> None:
    await sync_to_async(emit)("elsewhere", "x", {})
    await drain(completed)
    assert await ExecutionRun.objects.acount() == 0


async def test_failing_connector_is_retried_with_backoff_then_dead(workflow: Callable[..., Any]) -> None:
    await workflow({"name": "s", "connector": "recorder", "action": "fail"}, max_attempts=3)
    await order()
    await drain(dead)
    job = await OutboxJob.objects.aget()
    assert (job.attempts, job.max_attempts) == (3, 3)  # the workflow's policy, not the default 5
    assert "remote said no" in job.last_error
    runs = [r async for r in ExecutionRun.objects.order_by("attempt")]
    assert [(r.attempt, r.status) for r in runs] == [(1, "failed"), (2, "failed"), (3, "failed")]
    gaps = [(b.started_at - a.started_at).total_seconds() for a, b in itertools.pairwise(runs)]
    # tests.settings: base 0.05 s, so attempt 1 waits 0.025-0.05 s and attempt 2 0.05-0.1 s
    assert gaps[0] >= 0.025 and gaps[1] >= 0.05


async def test_non_retryable_failure_is_dead_at_once(workflow: Callable[..., Any]) -> None:
    await workflow({"name": "s", "connector": "recorder", "action": "fatal"})
    await order()
    await drain(dead)
    assert (await OutboxJob.objects.aget()).attempts == 1


async def test_hanging_connector_times_out_and_the_job_is_retried(workflow: Callable[..., Any]) -> None:
    await workflow({"name": "s", "connector": "recorder", "action": "slow", "timeout": 0.2}, max_attempts=2)
    await order()
    await drain(dead)
    steps = [s async for s in StepRun.objects.order_by("id")]
    assert len(steps) == 2 and all("ConnectorTimeout" in s.error for s in steps)
    assert (await OutboxJob.objects.aget()).attempts == 2


async def test_hanging_sync_connector_times_out_without_blocking_the_worker(
    workflow: Callable[..., Any],
) -> None:
    """A sync call stuck in its thread: the step times out, other jobs keep running."""
    await sync_to_async(emit)("elsewhere", "x", {})  # a job that needs no connector
    await workflow(
        {"name": "s", "connector": "sync_recorder", "action": "hang", "params": {"seconds": 2},
         "timeout": 0.2}, max_attempts=1,
    )  # fmt: skip
    await order()
    await drain(lambda: dead() and completed())
    step = await StepRun.objects.aget()
    assert "ConnectorTimeout" in step.error


async def test_missing_connector_is_recorded_not_crashing(workflow: Callable[..., Any]) -> None:
    await workflow({"name": "s", "connector": "recorder", "action": "record"})
    registry.connectors().override("recorder", None)
    await order()
    await drain(dead)
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
    await order()
    await drain(dead)
    assert [c for c in Recorder.calls if c[0] == "record"] == [("record", {"w": "good"})]


async def test_a_new_workflow_applies_to_the_next_batch(workflow: Callable[..., Any]) -> None:
    """The worker reloads its rule index when the configuration generation moves."""
    async with running(WorkerPool(options())):
        await order()
        await eventually(completed)
        await workflow({"name": "s", "connector": "recorder", "action": "record"})
        await order()
        await eventually(lambda: ExecutionRun.objects.filter(status="succeeded").exists())


async def test_notify_wakes_an_idle_worker_long_before_its_poll() -> None:
    pool = WorkerPool(options(poll_interval=60))
    async with running(pool):
        await asyncio.wait_for(pool.listener.connected.wait(), 10)
        await asyncio.sleep(0.2)  # past the first claim; the worker now sleeps until its poll
        await sync_to_async(emit)("elsewhere", "x", {})
        await eventually(completed, within=5, message="the NOTIFY did not wake the worker")


async def test_claims_never_exceed_the_free_slots(workflow: Callable[..., Any]) -> None:
    await workflow({"name": "s", "connector": "recorder", "action": "nap", "params": {"seconds": 0.1}})
    await order(12)
    pool = WorkerPool(options(concurrency=3, batch_size=10))
    async with running(pool):
        for _ in range(10):
            # in the database a finished job stays 'running' until its settlement commits; the
            # pool lets at most `concurrency` such unsettled jobs hold claims (pool._free_slots)
            leased = await OutboxJob.objects.filter(status="running").acount()
            assert leased <= 2 * 3
            await asyncio.sleep(0.05)
        await eventually(lambda: OutboxJob.objects.filter(status="completed").count() == 12)
    assert Recorder.most_running == 3


async def test_finished_jobs_share_completion_commits(workflow: Callable[..., Any]) -> None:
    await order(20)  # unmatched by any workflow: each job finishes at once
    pool = WorkerPool(options(concurrency=20, batch_size=20, settle_linger=0.05))
    async with running(pool):
        await eventually(lambda: OutboxJob.objects.filter(status="completed").count() == 20)
    assert pool.settler.flushes <= 5  # 20 jobs, a handful of COMPLETE statements


async def test_heartbeat_keeps_the_lease_of_a_long_job(workflow: Callable[..., Any]) -> None:
    await workflow({"name": "s", "connector": "recorder", "action": "nap", "params": {"seconds": 1.5}})
    await order()
    await drain(completed, lease_seconds=0.6, rescue_interval=0.1)  # the rescuer runs all along
    job = await OutboxJob.objects.aget()
    assert job.attempts == 1  # never rescued
    assert len(Recorder.calls) == 1


async def test_a_job_whose_lease_was_taken_over_is_stopped(workflow: Callable[..., Any]) -> None:
    await workflow({"name": "s", "connector": "recorder", "action": "slow"})
    await order()
    pool = WorkerPool(options(lease_seconds=0.6, rescue_interval=60))
    async with running(pool):
        # the step is under way (its run started under this claim): a takeover before that point
        # would stop the job before its step, and there would be nothing to cancel
        async with asyncio.timeout(10):
            await Recorder.started.wait()
        # what a rescue and a new claim by another worker look like
        await OutboxJob.objects.aupdate(lease_owner="other-worker", attempts=2)
        await eventually(lambda: len(Recorder.cancelled) == 1, within=5, message="the job kept running")
    job = await OutboxJob.objects.aget()
    assert (job.status, job.lease_owner, job.attempts) == ("running", "other-worker", 2)  # untouched


async def test_stop_lets_running_jobs_finish(workflow: Callable[..., Any]) -> None:
    await workflow({"name": "s", "connector": "recorder", "action": "nap", "params": {"seconds": 0.3}})
    await order(3)
    pool = WorkerPool(options())
    task = asyncio.create_task(pool.run())
    await eventually(lambda: OutboxJob.objects.filter(status="running").count() == 3)
    pool.stop()
    await asyncio.wait_for(task, 10)
    assert [j.status async for j in OutboxJob.objects.all()] == ["completed"] * 3


async def test_stop_hands_unfinished_jobs_back_after_the_timeout(workflow: Callable[..., Any]) -> None:
    await workflow({"name": "s", "connector": "recorder", "action": "slow"})
    await order(2)
    pool = WorkerPool(options(shutdown_timeout=0.3))
    task = asyncio.create_task(pool.run())
    await eventually(lambda: OutboxJob.objects.filter(status="running").count() == 2)
    started = time.monotonic()
    pool.stop()
    await asyncio.wait_for(task, 10)
    assert time.monotonic() - started < 5
    jobs = [(j.status, j.attempts, j.releases, j.lease_owner) async for j in OutboxJob.objects.all()]
    assert jobs == [("ready", 1, 1, "")] * 2  # claimable by another worker at once, attempt not spent
    assert len(Recorder.cancelled) == 2


async def test_a_second_signal_stops_at_once_and_still_hands_jobs_back(
    workflow: Callable[..., Any],
) -> None:
    await workflow({"name": "s", "connector": "recorder", "action": "slow"})
    await order(2)
    pool = WorkerPool(options(shutdown_timeout=60))
    task = asyncio.create_task(pool.run())
    await eventually(lambda: OutboxJob.objects.filter(status="running").count() == 2)
    pool._on_signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    assert not task.done()  # the first signal waits for the jobs (up to 60 s)
    pool._on_signal(signal.SIGTERM)
    await asyncio.wait_for(task, 5)
    assert [j.status async for j in OutboxJob.objects.all()] == ["ready", "ready"]


async def test_a_settlement_the_database_refuses_does_not_stall_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One batch fails for a reason other than an outage: the settler writes the jobs one by one."""
    from automate_core.outbox.store import OutboxStore

    await order(6)  # unmatched: each finishes at once
    real = OutboxStore.complete
    refused: list[int] = []

    async def complete(self: OutboxStore, jobs: Any, owner: str, results: Any = None) -> set[int]:
        if len(jobs) > 1 or jobs[0].id == poison:
            refused.append(len(jobs))
            raise ValueError("refused")  # what a DataError from one row looks like to the batch
        return await real(self, jobs, owner, results)

    poison = (await OutboxJob.objects.order_by("id").afirst() or OutboxJob()).pk
    monkeypatch.setattr(OutboxStore, "complete", complete)
    pool = WorkerPool(options(concurrency=6, batch_size=6, settle_linger=0.05))
    async with running(pool):
        await eventually(lambda: OutboxJob.objects.filter(status="completed").count() == 5)
    assert refused and refused[0] > 1  # the batch was refused, then each job went alone
    statuses = {j.pk: (j.status, j.lease_owner) async for j in OutboxJob.objects.all()}
    # the one that cannot be written keeps its lease: when it expires, the rescuer returns it
    assert statuses.pop(poison) == ("running", pool.worker_id)
    assert {status for status, _owner in statuses.values()} == {"completed"}
