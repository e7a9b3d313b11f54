"""Every flow example in docs/workflows.md loads, runs, waits, wakes and finishes as documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from asgiref.sync import sync_to_async
from django.utils import timezone

from automate_core.execution import approvals
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, RunWait
from tests.flow.conftest import fast_forward
from tests.workflows.conftest import aload, drain

pytestmark = pytest.mark.usefixtures("live_db")

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"
SECTION = (
    DOC.read_text(encoding="utf-8").split("## Flow: waits, fan-out and branches", 1)[1].split("\n## ", 1)[0]
)
EXAMPLES = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", SECTION, re.S)]
PAYLOAD = {"invoice": "INV-1", "amount": 900, "order": 1, "customer": "c-1", "email": "c@example.com",
           "provider": "stripe", "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]}  # fmt: skip


def idle() -> bool:
    due = OutboxJob.objects.filter(status__in=["ready", "retry"], available_at__lte=timezone.now())
    return not due.exists() and not OutboxJob.objects.filter(status="running").exists()


def test_the_section_has_the_seven_examples_of_the_issue() -> None:
    names = [w["name"] for example in EXAMPLES for w in example["workflows"]]
    assert len(EXAMPLES) == 7 and "notify_customer" in names and "big_refund" in names


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["workflows"][-1]["name"] for e in EXAMPLES])
async def test_a_documented_example_runs_to_the_end(example: dict[str, Any]) -> None:
    await aload(*example["workflows"])
    trigger = example["workflows"][-1]["trigger"]
    await sync_to_async(emit)(trigger["source"], trigger["event_type"], PAYLOAD)
    for _ in range(6):  # each round: run what is due, then end every wait the way a user would
        await drain(idle)
        open_waits = [w async for w in RunWait.objects.filter(status="open")]
        if not open_waits:
            break
        for wait in open_waits:
            if wait.kind == "approval":
                await sync_to_async(approvals.answer)(wait.run_id, wait.step_name, True, by="test")
            else:
                await fast_forward(wait.run_id)
    runs = [(r.workflow_name, r.status, r.error) async for r in ExecutionRun.objects.all()]
    assert runs and all(status == "succeeded" for _n, status, _e in runs), runs
