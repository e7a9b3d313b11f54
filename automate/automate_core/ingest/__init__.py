"""Stage 1, ingest: a signed webhook (or a call to ``emit()``) becomes an Event and an OutboxJob.

``WebhookView`` (a Django async view) and the lean ASGI lane in ``automate_core.asgi`` both hand
the raw request to ``WebhookService``, which admits it, verifies the sender with the source's
scheme (``schemes/``), parses the body and calls ``EventIngestor.ingest()``. Nothing is
acknowledged before the insert has committed.

Public API for a project's own code::

    from automate_core.ingest import emit, aemit

    with transaction.atomic():
        order.save()
        emit("shop", "order.created", {"id": order.pk}, idempotency_key=f"order-{order.pk}")
"""

from __future__ import annotations

from automate_core.ingest.ingestor import IngestResult, aemit, emit

__all__ = ["IngestResult", "aemit", "emit"]
