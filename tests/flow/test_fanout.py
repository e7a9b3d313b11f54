"""for_each and parallel: each item and branch a record of its own, results in order, a cap on
concurrency, a failed item failing the step, and a resume that runs only what did not succeed."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, StepRun
from tests.flow.conftest import arecords, step
from tests.workflows.conftest import Probe, aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")


def reserve(inner: dict[str, Any], concurrency: int = 5, **extra: object) -> dict[str, Any]:
    return {
        "name": "reserve",
        "for_each": "{{ event.payload['items'] }}",
        "concurrency": concurrency,
        "step": inner,
        **extra,
    }


async def output_of(run: ExecutionRun, name: str) -> Any:
    record = await StepRun.objects.filter(run=run, name=name).order_by("-id").afirst()
    assert record is not None
    return record.output


async def test_for_each_runs_each_item_in_order_under_its_cap(probe: type[Probe]) -> None:
    inner = {
        "connector": "probe",
        "action": "hold",
        "params": {"key": "k", "seconds": 0.05, "sku": "{{ item.sku }}", "i": "{{ item_index }}"},
    }
    await aload(
        workflow(
            "w",
            reserve(inner, concurrency=2),
            step("after", params={"n": "{{ steps.reserve.output | length }}"}),
        )
    )
    items = [{"sku": f"s{i}"} for i in range(5)]
    result = await sync_to_async(emit)("shop", "order.created", {"items": items})
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    names = await arecords(run.pk)
    assert sorted(n for n, _s in names if n.startswith("reserve[")) == [f"reserve[{i}]" for i in range(5)]
    assert ("reserve", "succeeded") in names and names[-1] == ("after", "succeeded")
    outputs = await output_of(run, "reserve")
    assert [o["echo"]["sku"] for o in outputs] == ["s0", "s1", "s2", "s3", "s4"]
    assert probe.peak["k"] == 2  # at most two at once
    assert probe.calls[-1][1] == {"n": 5}
    assert sorted(c["item"] for a, _p, c in probe.calls if a == "hold") == [0, 1, 2, 3, 4]


async def test_a_failed_item_fails_the_step_and_the_retry_runs_only_the_missing_items(
    probe: type[Probe],
) -> None:
    probe.failures = 1  # the first 'flaky' call fails (retryable), later ones succeed
    inner = {"connector": "probe", "action": "flaky", "params": {"sku": "{{ item }}"}}
    await aload(workflow("w", reserve(inner, concurrency=1), max_attempts=3))
    result = await sync_to_async(emit)("shop", "order.created", {"items": ["a", "b", "c"]})
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    first, second = [r async for r in ExecutionRun.objects.filter(event_id=result.event_id).order_by("id")]
    assert first.status == "failed" and "1 of 3 failed (reserve[0])" in first.error
    assert second.status == "succeeded"
    rerun = [n for n, s in await arecords(second.pk) if s == "succeeded" and n.startswith("reserve[")]
    assert rerun == ["reserve[0]"]  # b and c were reused, not called again
    assert [p["sku"] for _a, p, _c in probe.calls] == ["a", "b", "c", "a"]


async def test_a_tolerant_item_step_gives_null_for_its_failures(probe: type[Probe]) -> None:
    inner = {
        "connector": "probe",
        "action": "fatal",
        "continue_on_error": True,
        "params": {"x": "{{ item }}"},
    }
    await aload(workflow("w", reserve(inner)))
    result = await sync_to_async(emit)("shop", "order.created", {"items": [1, 2]})
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    run = await ExecutionRun.objects.aget(event_id=result.event_id)
    assert await output_of(run, "reserve") == [None, None]


async def test_for_each_limits_and_bad_lists_fail_with_a_clear_error() -> None:
    inner = {"connector": "probe", "action": "echo"}
    await aload(workflow("w", reserve(inner), max_attempts=1))
    with override_settings(AUTOMATE_FLOW_MAX_ITEMS=3):
        big = await sync_to_async(emit)("shop", "order.created", {"items": list(range(4))})
        await drain(lambda: OutboxJob.objects.filter(status="dead").exists())
    bad = await sync_to_async(emit)("shop", "order.created", {"items": "not a list"})
    await drain(lambda: OutboxJob.objects.filter(status="dead").count() == 2)
    assert "AUTOMATE_FLOW_MAX_ITEMS" in (await ExecutionRun.objects.aget(event_id=big.event_id)).error
    assert "not a list" in (await ExecutionRun.objects.aget(event_id=bad.event_id)).error


async def test_parallel_branches_join_in_order_and_a_failed_branch_fails_the_step(probe: type[Probe]) -> None:
    branches = [
        {"connector": "probe", "action": "echo", "params": {"to": "slack"}},
        {"connector": "probe", "action": "echo", "params": {"to": "email"}},
    ]
    await aload(
        workflow(
            "ok",
            {"name": "notify", "parallel": branches},
            step(
                "record",
                params={
                    "both": "{{ steps.notify.output | map(attribute='echo') | map(attribute='to') "
                    "| join(',') }}"
                },
            ),
        ),
        workflow(
            "bad",
            {"name": "notify", "parallel": [branches[0], {"connector": "probe", "action": "fatal"}]},
            max_attempts=1,
            trigger={"source": "shop", "event_type": "refund.*"},
        ),
    )
    ok = await sync_to_async(emit)("shop", "order.created", {})
    bad = await sync_to_async(emit)("shop", "refund.created", {})
    await drain(lambda: ExecutionRun.objects.exclude(status__in=["running", "queued"]).count() == 2)
    good = await ExecutionRun.objects.aget(event_id=ok.event_id)
    assert good.status == "succeeded"
    # the timeline lists the construct above its branches (steps are numbered in pre-order)
    assert await arecords(good.pk) == [
        ("notify", "succeeded"),
        ("notify[0]", "succeeded"),
        ("notify[1]", "succeeded"),
        ("record", "succeeded"),
    ]
    assert {"both": "slack,email"} in [p for _a, p, _c in probe.calls]
    failed = await ExecutionRun.objects.aget(event_id=bad.event_id)
    assert failed.status == "failed" and "1 of 2 failed (notify[1])" in failed.error
