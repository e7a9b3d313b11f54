"""Events: what happened, as received. Immutable once written."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class Event(models.Model):
    """One received event. A redelivery (the same ``(source, idempotency_key)``) is recognised
    while its key is held in :class:`EventKey`.

    The table is partitioned by day on its id (a history id, ``automate_core.history``): old days
    are dropped whole. The key stays on the event as it was received; the dedupe is the key table's.
    """

    source = models.CharField(max_length=100)
    event_type = models.CharField(max_length=200)
    payload = models.JSONField()
    headers = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    trace_id = models.CharField(max_length=32, db_index=True)
    received_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "automate_event"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["source", "event_type"], name="automate_event_src_type"),
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.event_type} #{self.pk}"


class EventKey(models.Model):
    """A held idempotency key: ``(source, idempotency_key)`` names one event while it is here.

    A unique index cannot span the partitions of the event table, so the dedupe is this small
    table, written in the same statement as the event (``ingest.queries``). A key is held for its
    source's dedupe window (at least 3 days); after that it is released (its row deleted,
    ``ingest.retention``): a delivery with a released key is a new event. Rows are narrow, and the
    table holds only the keys of the window, whatever the history's length.
    """

    pk = models.CompositePrimaryKey("source", "idempotency_key")
    source = models.CharField(max_length=100)
    idempotency_key = models.CharField(max_length=255)
    event_id = models.BigIntegerField()
    trace_id = models.CharField(max_length=32)
    received_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "automate_event_key"
        indexes = [
            # Releasing keys older than their window reads the oldest keys only; appends at the
            # right edge, so it costs inserts little.
            models.Index(fields=["received_at"], name="automate_event_key_received"),
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.idempotency_key} -> event #{self.event_id}"
