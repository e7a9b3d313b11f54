"""sleep: a run parks with nothing held, and its wake job resumes it once, on the same record."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async

from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, RunWait
from tests.flow.conftest import arecords, fast_forward, step
from tests.workflows.conftest import Probe, aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")


def waiting(event_id: int) -> bool:
    return ExecutionRun.objects.filter(event_id=event_id, status="waiting").exists()


async def test_a_sleeping_run_holds_nothing_and_wakes_once(probe: type[Probe]) -> None:
    await aload(workflow("remind", step("before"), {"name": "nap", "sleep": {"for": "3d"}}, step("after")))
    result = await sync_to_async(emit)("shop", "order.created", {"n": 1})
    await drain(lambda: waiting(result.event_id))
    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    wait = await RunWait.objects.aget(run_id=run.pk)
    assert wait.kind == "sleep" and wait.status == "open"
    assert wait.deadline is not None and wait.deadline > datetime.now(UTC) + timedelta(days=2, hours=23)
    # the event's job is done: the sleeping run holds no job, no lease, no slot
    assert not await OutboxJob.objects.filter(status="running").aexists()
    assert wait.job_id is not None
    wake = await OutboxJob.objects.aget(pk=wait.job_id)
    assert wake.status == "ready" and wake.available_at == wait.deadline and wake.payload == {"wake": wait.pk}
    assert [a for a, _p, _c in probe.calls] == ["echo"]
    assert await arecords(run.pk) == [("before", "succeeded"), ("nap", "waiting")]

    await fast_forward(run.pk)
    await drain(lambda: ExecutionRun.objects.filter(pk=run.pk, status="succeeded").exists())
    assert await arecords(run.pk) == [
        ("before", "succeeded"),
        ("nap", "waiting"),
        ("nap", "succeeded"),
        ("after", "succeeded"),
    ]
    assert [a for a, _p, _c in probe.calls] == ["echo", "echo"]  # nothing before the sleep ran again
    assert await ExecutionRun.objects.filter(event_id=result.event_id).acount() == 1  # one run record
    assert (await RunWait.objects.aget(pk=wait.pk)).status == "timed_out"


async def test_sleep_until_a_moment_and_a_moment_past_goes_on_at_once(probe: type[Probe]) -> None:
    await aload(workflow("w", {"name": "nap", "sleep": {"until": "{{ event.payload.due }}"}}, step("after")))
    past = await sync_to_async(emit)("shop", "order.created", {"due": "2020-01-01T00:00:00Z"})
    future = await sync_to_async(emit)("shop", "order.created", {"due": "2999-01-01T08:00:00+02:00"})
    await drain(lambda: waiting(future.event_id) and ExecutionRun.objects.filter(status="succeeded").exists())
    done = await ExecutionRun.objects.aget(event_id=past.event_id)
    assert done.status == "succeeded" and await arecords(done.pk) == [
        ("nap", "succeeded"),
        ("after", "succeeded"),
    ]
    parked = await ExecutionRun.objects.aget(event_id=future.event_id)
    wait = await RunWait.objects.aget(run_id=parked.pk)
    assert wait.deadline == datetime(2999, 1, 1, 6, 0, tzinfo=UTC)


async def test_a_bad_until_fails_the_step_with_what_it_rendered() -> None:
    await aload(workflow("w", {"name": "nap", "sleep": {"until": "{{ event.payload.due }}"}}, max_attempts=1))
    result = await sync_to_async(emit)("shop", "order.created", {"due": "next tuesday"})
    await drain(lambda: ExecutionRun.objects.filter(event_id=result.event_id, status="failed").exists())
    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    assert "'next tuesday'" in run.error and "ISO 8601" in run.error
    assert not await RunWait.objects.aexists()


async def test_two_workers_racing_for_one_wake_resume_the_run_once(probe: type[Probe]) -> None:
    """A second wake job for the same wait (as if two claims raced): the guarded waiting ->
    running transition lets exactly one resume the run; the other completes doing nothing."""
    await aload(workflow("w", {"name": "nap", "sleep": {"for": "1h"}}, step("after")))
    result = await sync_to_async(emit)("shop", "order.created", {})
    await drain(lambda: waiting(result.event_id))
    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    wait = await RunWait.objects.aget(run_id=run.pk)
    await OutboxJob.objects.acreate(event_id=result.event_id, kind="event", payload={"wake": wait.pk})
    await fast_forward(run.pk)
    pools = [drain(lambda: not OutboxJob.objects.exclude(status="completed").exists()) for _ in range(2)]
    await asyncio.gather(*pools)
    assert (await ExecutionRun.objects.aget(pk=run.pk)).status == "succeeded"
    assert [a for a, _p, _c in probe.calls] == ["echo"]
    assert await arecords(run.pk) == [("nap", "waiting"), ("nap", "succeeded"), ("after", "succeeded")]


async def test_a_retried_event_job_leaves_a_run_that_woke_to_its_wake_job(probe: type[Probe]) -> None:
    """The event job's worker died after the run parked and before the job's completion committed;
    the run woke meanwhile (its wake job carries it now). The event job's retry must not start the
    workflow again (the chaos suite's kill -9 cell found 15 of 200 runs doubled this way)."""
    await aload(workflow("remind", step("before"), {"name": "nap", "sleep": {"for": "1h"}}, step("after")))
    result = await sync_to_async(emit)("shop", "order.created", {"n": 1})
    await drain(lambda: waiting(result.event_id))
    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    await fast_forward(run.pk)
    await drain(lambda: ExecutionRun.objects.filter(pk=run.pk, status="succeeded").exists())
    # the lost completion: the event's job is claimable again, its first claim spent
    event_job = await OutboxJob.objects.aget(event_id=result.event_id, payload__isnull=True)
    await OutboxJob.objects.filter(pk=event_job.pk).aupdate(status="retry", completed_at=None, settled=False)
    await drain(lambda: OutboxJob.objects.filter(pk=event_job.pk, status="completed").exists())
    assert await ExecutionRun.objects.filter(event_id=result.event_id).acount() == 1
    assert [a for a, _p, _c in probe.calls] == ["echo", "echo"]  # before, after: nothing twice
