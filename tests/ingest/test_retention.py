"""The end of the dedupe window: keys older than their source's window are released."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone

from automate_core.ingest.ingestor import emit
from automate_core.ingest.retention import release_expired_keys
from automate_core.models import Event, EventKey
from tests.conftest import post_webhook

pytestmark = pytest.mark.usefixtures("demo_source")


def age(key: str, days: float) -> None:
    EventKey.objects.filter(idempotency_key=key).update(received_at=timezone.now() - timedelta(days=days))


async def test_keys_are_held_for_the_window_then_released(
    client: httpx.AsyncClient, load: Callable[[dict[str, Any]], Any]
) -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(load)(
        {
            "sources": [
                {"slug": "test", "secret_ref": "env:TEST_HOOK", "config": {"dedupe_window_seconds": 864000}}
            ]
        }
    )
    headers = {"idempotency-key": "k-old"}
    first = await post_webhook(client, "test", {"type": "t"}, headers=headers)
    await sync_to_async(emit)("app", "t", {}, idempotency_key="app-old")
    await sync_to_async(emit)("app", "t", {}, idempotency_key="app-new")
    await sync_to_async(age)("k-old", 8)  # inside this source's 10-day window
    await sync_to_async(age)("app-old", 8)  # past the default 7-day window of sources without a row
    await sync_to_async(age)("app-new", 1)

    assert await release_expired_keys() == 1
    held = {k.idempotency_key async for k in EventKey.objects.all()}
    assert held == {"k-old", "app-new"}
    again = await post_webhook(client, "test", {"type": "t"}, headers=headers)
    assert (again.status_code, again.json()["event_id"]) == (200, first.json()["event_id"])

    await sync_to_async(age)("k-old", 11)
    assert await release_expired_keys(limit=1) == 1
    later = await post_webhook(client, "test", {"type": "t"}, headers=headers)
    assert later.status_code == 202  # a new event: the window has ended
    assert later.json()["event_id"] != first.json()["event_id"]
    # the original stays as it was received, its key with it; only the dedupe forgot the key
    original = await Event.objects.aget(pk=first.json()["event_id"])
    assert original.idempotency_key == "k-old" and original.headers["idempotency-key"] == "k-old"
    assert await EventKey.objects.filter(idempotency_key="k-old").aget() == await EventKey.objects.aget(
        event_id=later.json()["event_id"]
    )
