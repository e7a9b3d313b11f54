"""Stage 1, ingest: a signed webhook (or a call to ``emit()``) becomes an Event and an OutboxJob.

``WebhookView`` (a Django async view) and the lean ASGI lane in ``automate_core.asgi`` both hand
the raw request to ``WebhookService``, which verifies the sender, parses the body and calls
``EventIngestor.ingest()``. Nothing is acknowledged before the insert has committed.
"""

from __future__ import annotations
