"""The debounce and batching examples of docs/workflows.md load and run as documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from asgiref.sync import sync_to_async

from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, StepRun
from tests.grouping.conftest import make_due
from tests.workflows.conftest import aload, drain

pytestmark = pytest.mark.usefixtures("live_db")

DOC = (Path(__file__).resolve().parents[2] / "docs" / "workflows.md").read_text(encoding="utf-8")


def example(section: str) -> dict[str, Any]:
    text = DOC.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```yaml\n(.*?)```", text, re.S)[:1]
    data: dict[str, Any] = yaml.safe_load(block)
    return data


def events_done() -> bool:
    return not OutboxJob.objects.exclude(status="completed").exclude(payload__has_key="flush").exists()


@pytest.mark.parametrize("section", ["Debounce", "Batching"])
async def test_the_example_runs_once_for_many_events(section: str) -> None:
    [item] = example(section)["workflows"]
    await aload(item)
    source, event_type = item["trigger"]["source"], item["trigger"]["event_type"].replace("*", "updated")
    ids = [
        (
            await sync_to_async(emit)(source, event_type, {"user_id": "u-1", "shop": "s", "sku": f"k{i}"})
        ).event_id
        for i in range(3)
    ]
    await drain(events_done)
    assert await make_due() == 1
    await drain(lambda: ExecutionRun.objects.filter(status="succeeded").exists())
    run = await ExecutionRun.objects.aget()
    assert run.event_id == ids[-1]
    step = await StepRun.objects.aget(run_id=run.pk)
    message = step.input["message"]  # type: ignore[index]
    assert (
        message.endswith(f"as of event {ids[-1]}")
        if section == "Debounce"
        else "3 products: k0, k1, k2" in message
    )
