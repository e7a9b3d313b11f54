"""switch picks one list of steps (which may wait), and call runs another workflow as a child."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, StepRun
from tests.flow.conftest import arecords, fast_forward, step
from tests.workflows.conftest import Probe, aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")


def route() -> dict[str, Any]:
    return {
        "name": "route",
        "switch": {
            "on": "{{ event.payload.provider }}",
            "cases": {
                "stripe": [step("refund_stripe", params={"via": "stripe"})],
                "paypal": [
                    {"name": "hold", "sleep": {"for": "1h"}},
                    step("refund_paypal", params={"via": "paypal"}),
                ],
            },
            "default": [step("alert", params={"via": "{{ event.payload.provider }}"})],
        },
    }


async def test_switch_runs_the_matching_case_or_the_default(probe: type[Probe]) -> None:
    await aload(workflow("pay", route(), step("done", params={"case": "{{ steps.route.output.case }}"})))
    stripe = await sync_to_async(emit)("shop", "order.created", {"provider": "stripe"})
    other = await sync_to_async(emit)("shop", "order.created", {"provider": "adyen"})
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").count() == 2)
    first = await ExecutionRun.objects.aget(event_id=stripe.event_id)
    assert await arecords(first.pk) == [
        ("route", "succeeded"),
        ("refund_stripe", "succeeded"),
        ("done", "succeeded"),
    ]
    second = await ExecutionRun.objects.aget(event_id=other.event_id)
    assert await arecords(second.pk) == [
        ("route", "succeeded"),
        ("alert", "succeeded"),
        ("done", "succeeded"),
    ]
    calls = sorted(str(p) for _a, p, _c in probe.calls)
    assert calls == sorted(
        str(x) for x in [{"via": "stripe"}, {"case": "stripe"}, {"via": "adyen"}, {"case": "default"}]
    )


async def test_a_case_that_sleeps_resumes_inside_the_case(probe: type[Probe]) -> None:
    await aload(workflow("pay", route(), step("done")))
    result = await sync_to_async(emit)("shop", "order.created", {"provider": "paypal"})
    await drain(lambda: ExecutionRun.objects.filter(status="waiting").exists())
    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    await fast_forward(run.pk)
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    assert await arecords(run.pk) == [
        ("route", "succeeded"),
        ("hold", "waiting"),
        ("hold", "succeeded"),
        ("refund_paypal", "succeeded"),
        ("done", "succeeded"),
    ]
    assert [p for _a, p, _c in probe.calls] == [{"via": "paypal"}, {}]


def notify_customer() -> dict[str, Any]:
    return workflow(
        "notify_customer",
        step("send", params={"to": "{{ input.customer }}", "text": "{{ input.text }}"}),
        trigger={"source": "never", "event_type": "never"},
    )


async def test_call_runs_the_child_with_its_input_and_returns_its_output(probe: type[Probe]) -> None:
    caller = workflow(
        "ship",
        {
            "name": "customer",
            "call": {
                "workflow": "notify_customer",
                "input": {"customer": "{{ event.payload.email }}", "text": "shipped"},
            },
        },
        step("after", params={"sent": "{{ steps.customer.output.output.echo.to }}"}),
    )
    await aload(notify_customer(), caller)
    result = await sync_to_async(emit)("shop", "order.created", {"email": "a@example.com"})
    await drain(lambda: ExecutionRun.objects.filter(workflow_name="ship", status="succeeded").exists())
    parent = await ExecutionRun.objects.aget(workflow_name="ship")
    child = await ExecutionRun.objects.aget(workflow_name="notify_customer")
    assert child.mode == "call" and child.parent_id == parent.pk and child.event_id == result.event_id
    assert child.status == "succeeded" and child.input == {"customer": "a@example.com", "text": "shipped"}
    assert [p for _a, p, _c in probe.calls] == [
        {"to": "a@example.com", "text": "shipped"},
        {"sent": "a@example.com"},
    ]
    output: Any = (
        await StepRun.objects.filter(run=parent, name="customer", status="succeeded").aget()
    ).output
    assert output["run_id"] == child.pk and output["status"] == "succeeded"


async def test_a_failed_child_fails_the_calling_step(probe: type[Probe]) -> None:
    broken = workflow("broken", step("s", "fatal"), max_attempts=1, trigger={"source": "never"})
    caller = workflow(
        "ship", {"name": "customer", "call": {"workflow": "broken"}}, step("after"), max_attempts=1
    )
    await aload(broken, caller)
    await sync_to_async(emit)("shop", "order.created", {})
    await drain(lambda: ExecutionRun.objects.filter(workflow_name="ship", status="failed").exists())
    parent = await ExecutionRun.objects.aget(workflow_name="ship")
    assert "the called workflow broken failed" in parent.error
    assert [a for a, _p, _c in probe.calls] == ["fatal"]
