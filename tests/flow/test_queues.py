"""A run that parks stays on its queue: its wake job goes on the queue of the job that parked it
(with its priority and fair key), and a called child's run job on the child workflow's queue, else
the caller's. So workers started with --queue carry their own runs to the end."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, RunWait
from tests.flow.conftest import fast_forward, step
from tests.workflows.conftest import Probe, aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")


async def test_a_parked_run_wakes_on_its_own_queue(probe: type[Probe]) -> None:
    await aload(workflow("remind", step("before"), {"name": "nap", "sleep": {"for": "1h"}}, step("after")))
    result = await sync_to_async(emit)(
        "shop", "order.created", {}, queue="billing", priority=7, fair_key="t1"
    )
    await drain(
        lambda: ExecutionRun.objects.filter(event_id=result.event_id, status="waiting").exists(),
        queues=("billing",),
    )
    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    wait = await RunWait.objects.aget(run_id=run.pk)
    assert wait.job_id is not None
    wake = await OutboxJob.objects.aget(pk=wait.job_id)
    assert (wake.queue, wake.priority, wake.fair_key) == ("billing", 7, "t1")

    await fast_forward(run.pk)
    other = await sync_to_async(emit)("shop", "order.created", {})  # on the default queue
    await drain(  # a worker of another queue does its own work and leaves the due wake alone ...
        lambda: ExecutionRun.objects.filter(event_id=other.event_id, status="waiting").exists(),
        queues=("default",),
    )
    assert (await ExecutionRun.objects.aget(pk=run.pk)).status == "waiting"
    assert (await OutboxJob.objects.aget(pk=wake.pk)).attempts == 0
    await drain(  # ... a worker of its queue carries it on
        lambda: ExecutionRun.objects.filter(pk=run.pk, status="succeeded").exists(), queues=("billing",)
    )


async def test_a_called_run_goes_to_the_called_workflows_queue_else_the_callers(probe: type[Probe]) -> None:
    await aload(
        workflow("own_queue", step("x"), trigger={"source": "none", "event_type": "none"}, queue="mail"),
        workflow("no_queue", step("y"), trigger={"source": "none", "event_type": "none"}),
        workflow(
            "caller",
            {"name": "a", "call": {"workflow": "own_queue"}},
            {"name": "b", "call": {"workflow": "no_queue"}},
        ),
    )
    await sync_to_async(emit)("shop", "order.created", {}, queue="billing")
    await drain(lambda: ExecutionRun.objects.filter(workflow_name="own_queue").exists(), queues=("billing",))
    child = await ExecutionRun.objects.aget(workflow_name="own_queue")
    assert child.job_id is not None
    assert (await OutboxJob.objects.aget(pk=child.job_id)).queue == "mail"
    await drain(
        lambda: ExecutionRun.objects.filter(workflow_name="caller", status="succeeded").exists(),
        queues=("billing", "mail"),
    )
    other = await ExecutionRun.objects.aget(workflow_name="no_queue")
    assert other.job_id is not None
    assert (await OutboxJob.objects.aget(pk=other.job_id)).queue == "billing"
