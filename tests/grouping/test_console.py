"""The console's event page says which debounce window or batch an event joined, and its run."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob
from tests.grouping.conftest import RECORD
from tests.workflows.conftest import Probe, aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")


async def test_the_event_page_names_the_batch_and_its_run(probe: type[Probe], admin_client: Client) -> None:
    await aload(
        workflow("wf", RECORD, batch={"max_size": 10, "timeout": "1h", "key": "{{ event.payload.t }}"})
    )
    ids = [(await sync_to_async(emit)("shop", "order.created", {"t": "x"})).event_id for _ in range(2)]
    await drain(lambda: OutboxJob.objects.filter(status="completed").count() == 2)
    run = await ExecutionRun.objects.aget()
    page = (
        await sync_to_async(admin_client.get)(f"/admin/automate_core/event/{ids[0]}/change/")
    ).content.decode()
    assert "joined batch #" in page and "(2 events, open, key &#x27;x&#x27;)" in page
    assert f"/executionrun/{run.pk}/change/" in page and "no workflow matched" not in page
    assert "Joined the debounce window or batch above" in page
