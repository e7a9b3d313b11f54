"""Waiting runs keep every guarantee: cancel closes their waits, they stay on their version,
test mode says what would wait, a replay waits again, and operators see them."""

from __future__ import annotations

import io
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from automate_core.exceptions import WorkflowError
from automate_core.execution import replay, testmode
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, RunWait
from tests.flow.conftest import arecords, fast_forward, step
from tests.workflows.conftest import Probe, aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")

NAP: dict[str, Any] = {"name": "nap", "sleep": {"for": "3d"}}


async def parked(*steps: dict[str, Any]) -> ExecutionRun:
    await aload(workflow("w", *steps))
    result = await sync_to_async(emit)("shop", "order.created", {"n": 1})
    await drain(lambda: ExecutionRun.objects.filter(status="waiting").exists())
    return await ExecutionRun.objects.aget(event_id=result.event_id)


async def test_cancelling_a_waiting_run_closes_its_wait_and_its_wake_does_nothing(probe: type[Probe]) -> None:
    run = await parked(NAP, step("after"))
    assert await sync_to_async(replay.cancel)(run.pk) == "cancelled"
    wait = await RunWait.objects.aget(run_id=run.pk)
    assert wait.status == "cancelled" and wait.resolved_by == "cancel"
    await drain(lambda: not OutboxJob.objects.exclude(status="completed").exists())  # the wake came due
    assert (await ExecutionRun.objects.aget(pk=run.pk)).status == "cancelled"
    assert probe.calls == []
    with pytest.raises(WorkflowError, match="already ended"):
        await sync_to_async(replay.cancel)(run.pk)


async def test_a_sleeping_run_stays_on_its_version_when_the_workflow_is_edited(probe: type[Probe]) -> None:
    run = await parked(NAP, step("after", params={"v": 1}))
    await aload(workflow("w", NAP, step("after", params={"v": 2}), step("added")))  # v2 published
    await fast_forward(run.pk)
    await drain(lambda: ExecutionRun.objects.filter(pk=run.pk, status="succeeded").exists())
    assert [p for _a, p, _c in probe.calls] == [{"v": 1}]
    assert await arecords(run.pk) == [("nap", "waiting"), ("nap", "succeeded"), ("after", "succeeded")]


async def test_test_mode_reports_what_would_wait_without_waiting() -> None:
    await aload(workflow("w", NAP, {"name": "ok", "approval": {"prompt": "go?"}}, step("after")))
    result = await sync_to_async(emit)("other", "x", {})
    memory = await testmode.dry_run("w", event_id=result.event_id)
    assert [(s.name, s.status) for s in memory.steps] == [
        ("nap", "skipped"),
        ("ok", "skipped"),
        ("after", "succeeded"),
    ]
    assert "test mode: sleep until" in memory.steps[0].error
    assert "approval: 'go?'" in memory.steps[1].error
    assert not await RunWait.objects.aexists()


async def test_a_replay_waits_again_and_a_waiting_run_cannot_be_replayed(probe: type[Probe]) -> None:
    run = await parked(NAP, step("after"))
    with pytest.raises(WorkflowError):
        await sync_to_async(replay.replay)(run.pk, "original")
    await fast_forward(run.pk)
    await drain(lambda: ExecutionRun.objects.filter(pk=run.pk, status="succeeded").exists())
    again = await sync_to_async(replay.replay)(run.pk, "original")
    await drain(lambda: ExecutionRun.objects.filter(pk=again.pk, status="waiting").exists())
    assert await RunWait.objects.filter(run_id=again.pk, status="open").aexists()


async def test_operators_see_waiting_runs_in_the_cli_and_the_metrics() -> None:
    from automate_core.observability.exposition import DatabaseGauges

    run = await parked(NAP)
    out = io.StringIO()
    await sync_to_async(call_command)("automate", "waits", stdout=out)
    assert f"#{run.pk}" in out.getvalue() and "nap" in out.getvalue() and "sleep" in out.getvalue()
    out = io.StringIO()
    await sync_to_async(call_command)("automate", "runs", stdout=out)
    assert "waiting at nap: sleep (until" in out.getvalue()
    families = {f.name: f for f in await DatabaseGauges()._read()}
    samples = {s.labels.get("kind"): s.value for s in families["automate_waiting_runs"].samples}
    assert samples["sleep"] == 1 and samples["event"] == 0
    assert families["automate_oldest_wait_age_seconds"].samples[0].value >= 0
