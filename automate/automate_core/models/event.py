"""Events: what happened, as received. Immutable once written."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class Event(models.Model):
    """One received event. ``(source, idempotency_key)`` is unique: a redelivery is recognised.

    The key is held for the source's dedupe window (at least 3 days); after that it is released
    (set to NULL; the sender's id stays in ``headers``/``payload``) so the index stays small.
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
        constraints = [
            models.UniqueConstraint(
                fields=["source", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="automate_event_idempotency",
            )
        ]
        indexes = [
            models.Index(fields=["source", "event_type"], name="automate_event_src_type"),
            # Releasing idempotency keys older than their window (ingest/retention.py) reads the
            # oldest held keys only; appends at the right edge, so it costs inserts little.
            models.Index(
                fields=["received_at"],
                condition=models.Q(idempotency_key__isnull=False),
                name="automate_event_held_keys",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.event_type} #{self.pk}"
