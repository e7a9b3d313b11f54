"""``emit()``/``aemit()``: the public API for a project's own code (the transactional outbox)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from automate_core.exceptions import IngestError
from automate_core.ingest import aemit, emit
from automate_core.models import Event, OutboxJob

pytestmark = pytest.mark.usefixtures("live_db")


class Rollback(Exception):
    pass


def test_emit_stands_or_falls_with_the_callers_transaction() -> None:
    with pytest.raises(Rollback), transaction.atomic():
        emit("app", "order.saved", {"id": 1})
        raise Rollback
    assert Event.objects.count() == 0
    with transaction.atomic():
        result = emit("app", "order.saved", {"id": 2}, idempotency_key="order-2")
        assert not result.duplicate
    job = OutboxJob.objects.select_related("event").get(event_id=result.event_id)
    assert job.event is not None
    assert (job.status, job.event.payload, job.event.event_type) == ("ready", {"id": 2}, "order.saved")
    again = emit("app", "order.saved", {"id": 2}, idempotency_key="order-2")
    assert again.duplicate and (again.event_id, again.trace_id) == (result.event_id, result.trace_id)
    assert OutboxJob.objects.count() == 1


def test_emit_refuses_what_cannot_be_stored_with_a_clear_error() -> None:
    cases = [
        (("app", "t", {"when": object()}), "JSON-serialisable"),
        (("app", "t", {"n": float("nan")}), "JSON-serialisable"),
        (("app", "t", {"s": "a\x00b"}), "NUL"),
        (("app", "t", {"k\x00": [1]}), "NUL"),
        (("", "t", {}), "source"),
        (("app", "t" * 201, {}), "event_type"),
    ]
    for args, message in cases:
        with pytest.raises(IngestError, match=message):
            emit(*args)
    with pytest.raises(IngestError, match="idempotency_key"):
        emit("app", "t", {}, idempotency_key="k" * 256)
    assert Event.objects.count() == 0


def test_emit_stores_a_backslash_before_u0000_as_text() -> None:
    result = emit("app", "t", {"s": "\\u0000", "\\u0000": 1})
    assert Event.objects.get(pk=result.event_id).payload == {"s": "\\u0000", "\\u0000": 1}


async def test_aemit_from_async_code() -> None:
    result = await aemit("app", "thing.happened", {"x": 1}, idempotency_key="thing-1")
    assert await sync_to_async(Event.objects.filter(pk=result.event_id, idempotency_key="thing-1").exists)()
    again = await aemit("app", "thing.happened", {"x": 1}, idempotency_key="thing-1")
    assert again.duplicate and again.event_id == result.event_id
