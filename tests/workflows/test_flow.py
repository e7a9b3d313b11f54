"""Matching and flow: trigger conditions, step conditions, data between steps, step retries,
continue_on_error, output size, and job retries that resume instead of repeating."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, StepRun
from tests.workflows.conftest import Probe, aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")


def step(name: str, action: str = "echo", **extra: Any) -> dict[str, Any]:
    return {"name": name, "connector": "probe", "action": action, **extra}


async def steps_of(run: ExecutionRun) -> list[StepRun]:
    return [s async for s in StepRun.objects.filter(run=run).order_by("position", "id")]


async def test_trigger_globs_and_condition_select_workflows(probe: type[Probe]) -> None:
    await aload(
        workflow("big_orders", step("s", params={"w": "big"}),
                 trigger={"source": "shop", "event_type": "order.*",
                          "condition": "event.payload.amount > 100"}),
        workflow("all_orders", step("s", params={"w": "all"})),
        workflow("refunds", step("s", params={"w": "refund"}),
                 trigger={"source": "shop", "event_type": "refund.*"}),
    )  # fmt: skip
    await sync_to_async(emit)("shop", "order.created", {"amount": 500})
    await sync_to_async(emit)("shop", "order.created", {"amount": 5})
    await sync_to_async(emit)("shop", "order.created", {"no_amount": True})  # undefined: false
    await drain(lambda: OutboxJob.objects.filter(status="completed").count() == 3)
    ran = sorted(params["w"] for _a, params, _c in probe.calls)
    assert ran == ["all", "all", "all", "big"]
    assert not await ExecutionRun.objects.exclude(status="succeeded").aexists()


async def test_a_broken_trigger_condition_is_recorded_not_silent() -> None:
    await aload(workflow("wf", step("s"), trigger={"source": "shop", "condition": "event.payload.n + 'x'"}))
    await sync_to_async(emit)("shop", "order.created", {"n": 1})
    await drain(lambda: OutboxJob.objects.filter(status="dead").exists())
    run = await ExecutionRun.objects.aget()
    assert run.status == "failed" and "trigger condition" in run.error


async def test_steps_see_earlier_outputs_and_conditions_skip(probe: type[Probe]) -> None:
    await aload(
        workflow(
            "wf",
            step("lookup", params={"customer": "{{ event.payload.customer }}",
                                   "vip": "{{ event.payload.vip }}"}),
            step("vip_only", condition="steps.lookup.output.echo.vip", params={"x": 1}),
            step("notify", params={"who": "{{ steps.lookup.output.echo.customer }}",
                                   "vip_status": "{{ steps.vip_only.status }}"}),
        )
    )  # fmt: skip
    result = await sync_to_async(emit)("shop", "order.created", {"customer": "c-9", "vip": False})
    await drain(lambda: OutboxJob.objects.filter(status="completed").exists())
    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    steps = await steps_of(run)
    assert [(s.name, s.status) for s in steps] == [
        ("lookup", "succeeded"),
        ("vip_only", "skipped"),
        ("notify", "succeeded"),
    ]
    assert steps[1].error == "condition is false"
    assert steps[2].input == {"who": "c-9", "vip_status": "skipped"}
    assert [a for a, _p, _c in probe.calls] == ["echo", "echo"]  # the skipped step called nothing


async def test_step_retry_policy_retries_in_place_and_records_each_attempt(probe: type[Probe]) -> None:
    probe.failures = 2
    await aload(workflow("wf", step("s", "flaky", retry={"max_attempts": 3, "backoff_seconds": 0.01})))
    await sync_to_async(emit)("shop", "order.created", {})
    await drain(lambda: OutboxJob.objects.filter(status="completed").exists())
    run = await ExecutionRun.objects.aget()
    assert run.status == "succeeded" and run.attempt == 1  # no job retry was needed
    assert [(s.attempt, s.status) for s in await steps_of(run)] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]


async def test_continue_on_error_lets_the_run_go_on(probe: type[Probe]) -> None:
    await aload(
        workflow(
            "wf",
            step("optional", "fatal", continue_on_error=True, params={"why": "down"}),
            step("after", params={"prev": "{{ steps.optional.status }}"}),
        )
    )
    await sync_to_async(emit)("shop", "order.created", {})
    await drain(lambda: OutboxJob.objects.filter(status="completed").exists())
    run = await ExecutionRun.objects.aget()
    assert run.status == "succeeded"
    assert "continued past failed steps: optional" in run.error
    steps = await steps_of(run)
    assert [s.status for s in steps] == ["failed", "succeeded"]
    assert steps[1].input == {"prev": "failed"}


@override_settings(AUTOMATE_STEP_OUTPUT_MAX_BYTES=1000)
async def test_an_output_over_the_limit_is_refused_with_a_clear_error() -> None:
    await aload(workflow("wf", step("s", "big", params={"size": 5000}), max_attempts=3))
    await sync_to_async(emit)("shop", "order.created", {})
    await drain(lambda: OutboxJob.objects.filter(status="dead").exists())
    job = await OutboxJob.objects.aget()
    assert job.attempts == 1  # not retryable: the same step would return the same
    step_run = await StepRun.objects.aget()
    assert step_run.status == "failed" and step_run.output is None  # not stored
    assert "StepOutputTooLarge" in step_run.error and "AUTOMATE_STEP_OUTPUT_MAX_BYTES" in step_run.error


async def test_a_job_retry_resumes_from_the_failed_step(probe: type[Probe]) -> None:
    probe.failures = 1
    await aload(
        workflow(
            "wf",
            step("charge", params={"amount": "{{ event.payload.amount }}"}),
            step("ship", "flaky"),
            step("mail", params={"charged": "{{ steps.charge.output.echo.amount }}"}),
            max_attempts=3,
        )
    )
    await sync_to_async(emit)("shop", "order.created", {"amount": 42})
    await drain(lambda: OutboxJob.objects.filter(status="completed").exists())
    charges = [c for c in probe.calls if c[1].get("amount") == 42]
    assert len(charges) == 1, "the charge step's side effect must not repeat on the retry"
    first, second = [r async for r in ExecutionRun.objects.order_by("id")]
    assert (first.attempt, first.status, second.attempt, second.status) == (1, "failed", 2, "succeeded")
    assert [(s.name, s.status) for s in await steps_of(second)] == [
        ("charge", "reused"),
        ("ship", "succeeded"),
        ("mail", "succeeded"),
    ]
    assert (await steps_of(second))[2].input == {"charged": 42}  # the reused output flows on
    assert second.version_id == first.version_id


async def test_a_retry_does_not_rerun_workflows_that_succeeded(probe: type[Probe]) -> None:
    await aload(
        workflow("good", step("s", params={"w": "good"}), trigger={"source": "shop"}),
        workflow("bad", step("s", "fail"), trigger={"source": "shop"}, max_attempts=2),
    )
    await sync_to_async(emit)("shop", "order.created", {})
    await drain(lambda: OutboxJob.objects.filter(status="dead").exists())
    assert sum(1 for _a, p, _c in probe.calls if p.get("w") == "good") == 1


async def test_a_worker_killed_mid_run_is_resumed_by_the_next_attempt(probe: type[Probe]) -> None:
    """The worker dies during step 2: the rescued job's next attempt closes the abandoned run and
    resumes at step 2; step 1's side effect is not repeated (step 2, in flight, runs again)."""
    import asyncio

    from automate_core.execution.engine import ExecutionEngine
    from automate_core.outbox.store import OutboxStore

    probe.release, probe.entered = asyncio.Event(), asyncio.Event()
    await aload(workflow("wf", step("first", params={"n": 1}), step("second", "slow"), max_attempts=3))
    await sync_to_async(emit)("shop", "order.created", {})
    store = OutboxStore()
    [job] = await store.claim_batch(1, "doomed", lease=0.5)
    doomed = asyncio.create_task(ExecutionEngine().handle_event(job))
    await asyncio.wait_for(probe.entered.wait(), 10)
    doomed.cancel()  # the process is gone: nothing more is written for this attempt
    await asyncio.gather(doomed, return_exceptions=True)
    await asyncio.sleep(0.6)
    assert await store.rescue_expired() == [(job.id, "retry")]
    [retry] = await store.claim_batch(1, "heir", lease=30)
    assert retry.attempts == 2
    probe.release.set()
    outcome = await ExecutionEngine().handle_event(retry)
    assert outcome.succeeded
    first, second = [r async for r in ExecutionRun.objects.order_by("id")]
    assert first.status == "failed" and first.error.startswith("abandoned")
    assert [(s.name, s.status) for s in await steps_of(second)] == [
        ("first", "reused"),
        ("second", "succeeded"),
    ]
    assert [a for a, _p, _c in probe.calls] == ["echo", "slow", "slow"]
