"""Replay modes, manual runs, cancellation and bulk replay: new runs linked to their parents,
carried out by the workers; the original runs and events are never changed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from automate_core.exceptions import WorkflowError
from automate_core.execution import replay
from automate_core.ingest.ingestor import emit
from automate_core.models import BulkReplay, Event, ExecutionRun, OutboxJob, RunMode, StepRun
from automate_core.worker.pool import WorkerPool
from tests.helpers import eventually
from tests.workflows.conftest import Probe, aload, drain, options, workflow

pytestmark = pytest.mark.usefixtures("live_db")


def probe_step(name: str, action: str = "echo", **params: Any) -> dict[str, Any]:
    return {"name": name, "connector": "probe", "action": action, "params": params}


async def first_run() -> ExecutionRun:
    run = await ExecutionRun.objects.select_related("version").order_by("id").afirst()
    assert run is not None
    return run


async def settle(count: int) -> None:
    """Run a worker until ``count`` runs have ended."""
    await drain(
        lambda: ExecutionRun.objects.filter(status__in=["succeeded", "failed", "cancelled"]).count() >= count
    )


async def test_replay_on_original_and_on_current_version(probe: type[Probe]) -> None:
    await aload(workflow("wf", probe_step("s", v=1, id="{{ event.payload.id }}")))
    await sync_to_async(emit)("shop", "order.created", {"id": 7})
    await settle(1)
    original = await first_run()
    await aload(workflow("wf", probe_step("s", v=2, id="{{ event.payload.id }}")))  # publishes v2
    on_original = await sync_to_async(replay.replay)(original.pk, RunMode.ORIGINAL)
    on_current = await sync_to_async(replay.replay)(original.pk, RunMode.CURRENT)
    assert on_original.status == "queued"
    await settle(3)
    assert sorted(p["v"] for _a, p, _c in probe.calls) == [1, 1, 2]
    runs = {r.pk: r async for r in ExecutionRun.objects.select_related("version")}
    numbers = {pk: run.version.number for pk, run in runs.items() if run.version is not None}
    assert (numbers[on_original.pk], numbers[on_current.pk], numbers[original.pk]) == (1, 2, 1)
    for new in (runs[on_original.pk], runs[on_current.pk]):
        assert new.parent_id == original.pk and new.event_id == original.event_id
        assert new.status == "succeeded"
    assert runs[original.pk].status == "succeeded"  # untouched


async def test_resume_reuses_outputs_before_the_failed_step(probe: type[Probe]) -> None:
    steps = [
        probe_step("charge", amount="{{ event.payload.amount }}"),
        probe_step("ship", "fatal", why="no address"),
        probe_step("mail", charged="{{ steps.charge.output.echo.amount }}"),
    ]
    await aload(workflow("wf", *steps))
    await sync_to_async(emit)("shop", "order.created", {"amount": 30})
    await settle(1)
    failed = await first_run()
    assert failed.status == "failed"
    steps[1] = probe_step("ship", to="fixed")  # the fix
    await aload(workflow("wf", *steps))
    resumed = await sync_to_async(replay.replay)(failed.pk, RunMode.RESUME)
    await settle(2)
    assert [a for a, p, _c in probe.calls if p.get("amount") == 30] == ["echo"]  # charged once
    records = [
        (s.name, s.status) async for s in StepRun.objects.filter(run_id=resumed.pk).order_by("position")
    ]
    assert records == [("charge", "reused"), ("ship", "succeeded"), ("mail", "succeeded")]
    mail = await StepRun.objects.aget(run_id=resumed.pk, name="mail")
    assert mail.input == {"charged": 30}
    assert (await ExecutionRun.objects.aget(pk=failed.pk)).status == "failed"  # the original stays


async def test_replay_with_an_edited_payload_keeps_the_original_event(probe: type[Probe]) -> None:
    await aload(workflow("wf", probe_step("s", id="{{ event.payload.id }}")))
    await sync_to_async(emit)("shop", "order.created", {"id": 1})
    await settle(1)
    original = await first_run()
    edited = await sync_to_async(replay.replay)(original.pk, RunMode.EDITED, payload={"id": 2})
    await settle(2)
    assert [p["id"] for _a, p, _c in probe.calls] == [1, 2]
    new_event = await Event.objects.aget(pk=edited.event_id)
    assert new_event.pk != original.event_id and new_event.payload == {"id": 2}
    assert (await Event.objects.aget(pk=original.event_id)).payload == {"id": 1}
    assert new_event.headers["x-automate-edited-from-event"] == str(original.event_id)


async def test_replays_that_cannot_be_done_are_refused_with_a_reason() -> None:
    await aload(workflow("wf", probe_step("s")))
    await sync_to_async(emit)("shop", "order.created", {})
    await settle(1)
    run = await first_run()
    with pytest.raises(WorkflowError, match="only a failed run can resume"):
        await sync_to_async(replay.replay)(run.pk, RunMode.RESUME)
    with pytest.raises(WorkflowError, match="needs the edited payload"):
        await sync_to_async(replay.replay)(run.pk, RunMode.EDITED)
    with pytest.raises(WorkflowError, match="No run"):
        await sync_to_async(replay.replay)(999999, RunMode.CURRENT)


async def test_manual_trigger_runs_only_that_workflow(probe: type[Probe]) -> None:
    await aload(
        workflow("target", probe_step("s", got="{{ event.payload.x }}")),
        workflow("catch_all", probe_step("s", got="catch-all"), trigger={"source": "*", "event_type": "*"}),
    )
    run = await sync_to_async(replay.trigger)("target", {"x": "hello"})
    await settle(1)
    assert [p for _a, p, _c in probe.calls] == [{"got": "hello"}]
    done = await ExecutionRun.objects.aget(pk=run.pk)
    assert (done.status, done.mode, done.attempt) == ("succeeded", "manual", 1)
    with pytest.raises(WorkflowError, match="No workflow named"):
        await sync_to_async(replay.trigger)("nope", {})


async def test_cancel_a_queued_run(probe: type[Probe]) -> None:
    await aload(workflow("wf", probe_step("s")))
    run = await sync_to_async(replay.trigger)("wf", {})
    assert await sync_to_async(replay.cancel)(run.pk) == "cancelled"
    await drain(lambda: OutboxJob.objects.filter(status="completed").exists())
    assert not probe.calls
    assert (await ExecutionRun.objects.aget(pk=run.pk)).status == "cancelled"
    with pytest.raises(WorkflowError, match="already ended"):
        await sync_to_async(replay.cancel)(run.pk)


async def cancel_while_slow_step_runs(probe: type[Probe]) -> int:
    """Emit one event and run a worker; cancel the run while its ``slow`` step waits for
    ``probe.release``, then release it and wait until the job has completed. The run's id."""
    await sync_to_async(emit)("shop", "order.created", {})
    pool = WorkerPool(options())
    task = asyncio.create_task(pool.run())
    try:
        await eventually(lambda: ExecutionRun.objects.filter(status="running").exists())
        run = await ExecutionRun.objects.aget()
        await sync_to_async(replay.cancel)(run.pk)
        assert probe.release is not None
        probe.release.set()
        await eventually(lambda: OutboxJob.objects.filter(status="completed").exists())
    finally:
        pool.stop()
        await task
    return run.pk


async def test_cancel_a_running_run_stops_before_its_next_step(probe: type[Probe]) -> None:
    probe.release = asyncio.Event()
    await aload(workflow("wf", probe_step("first", "slow"), probe_step("second")))
    await cancel_while_slow_step_runs(probe)
    assert [a for a, _p, _c in probe.calls] == ["slow"]  # the second step never ran
    assert (await ExecutionRun.objects.aget()).status == "cancelled"


async def test_a_run_cancelled_during_its_last_step_stays_cancelled_with_the_step_recorded(
    probe: type[Probe],
) -> None:
    """The last step's record and the run's end are one write: a cancel that lands while that
    step runs wins (the run is not ended succeeded), and the step's call is still on record."""
    probe.release = asyncio.Event()
    await aload(workflow("wf", probe_step("only", "slow")))
    run_id = await cancel_while_slow_step_runs(probe)
    assert [a for a, _p, _c in probe.calls] == ["slow"]
    assert (await ExecutionRun.objects.aget()).status == "cancelled"
    assert [s.status async for s in StepRun.objects.filter(run=run_id)] == ["succeeded"]


async def test_bulk_replay_runs_on_the_workers_with_preview_and_progress(
    probe: type[Probe], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay, "CHUNK", 2)  # several chunks for five runs
    await aload(workflow("wf", probe_step("s", "fatal")), workflow("other", probe_step("s", "fatal")))
    for i in range(5):
        await sync_to_async(emit)("shop", "order.created", {"i": i})
    await settle(10)
    with pytest.raises(WorkflowError, match="empty filter is refused"):
        await sync_to_async(replay.matching_runs)({})
    with pytest.raises(WorkflowError, match="empty filter is refused"):
        await sync_to_async(replay.start_bulk)({"workflow": ""}, RunMode.CURRENT)
    assert await sync_to_async(replay.matching_runs({"workflow": "wf", "status": "failed"}).count)() == 5
    bulk = await sync_to_async(replay.start_bulk)({"workflow": "wf", "since": "1h"}, RunMode.CURRENT)
    assert bulk.total == 5
    await drain(lambda: ExecutionRun.objects.filter(bulk_replay=bulk.pk, status="failed").count() == 5)
    bulk = await BulkReplay.objects.aget(pk=bulk.pk)
    progress = await sync_to_async(replay.progress)(bulk)
    assert (progress["status"], progress["queued"], progress["runs"]) == ("done", 5, {"failed": 5})
    replays = [r async for r in ExecutionRun.objects.filter(bulk_replay=bulk.pk)]
    assert {r.workflow_name for r in replays} == {"wf"} and all(r.parent_id for r in replays)
    assert len({r.parent_id for r in replays}) == 5  # each original replayed once, replays not replayed
