"""The outbox: one durable job per event (or task), claimed by workers.

States and transitions (drawn in docs/architecture.md)::

    ready ──claim──▶ running ──complete──▶ completed
      ▲                │  │
      │                │  └──fail, attempts left──▶ retry ──(available_at passes)──▶ claim
      │                │
      │                ├──fail, no attempts left / not retryable──▶ dead ──replay──▶ (new job, ready)
      │                └──lease expired (worker gone)──▶ retry, or dead when attempts are used up
      └──release (graceful shutdown)── running

Every transition out of ``running`` names the claim it expects (``id`` and ``attempts``), so a
worker whose lease expired cannot overwrite the outcome of the worker that took the job over.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class JobStatus(models.TextChoices):
    READY = "ready", "Ready"
    RUNNING = "running", "Running"
    RETRY = "retry", "Retry scheduled"
    COMPLETED = "completed", "Completed"
    DEAD = "dead", "Dead"


CLAIMABLE = [JobStatus.READY, JobStatus.RETRY]


class OutboxJob(models.Model):
    class Kind(models.TextChoices):
        EVENT = "event", "Event"
        TASK = "task", "Django task"

    event = models.ForeignKey(
        "automate_core.Event", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.EVENT)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.READY)
    attempts = models.IntegerField(default=0)
    max_attempts = models.IntegerField(default=5)
    available_at = models.DateTimeField(db_default=Now())
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    payload = models.JSONField(null=True, blank=True)
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays"
    )
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "automate_outbox_job"
        ordering = ["-id"]
        indexes = [
            # The claim reads this index only: claimable rows in the order they became available.
            models.Index(
                fields=["available_at", "id"],
                condition=models.Q(status__in=CLAIMABLE),
                name="automate_outbox_claimable",
            ),
            # The rescuer reads this one: running jobs by lease expiry.
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(status=JobStatus.RUNNING),
                name="automate_outbox_leased",
            ),
            models.Index(
                fields=["id"],
                condition=models.Q(status=JobStatus.DEAD),
                name="automate_outbox_dead",
            ),
        ]

    def __str__(self) -> str:
        return f"job #{self.pk} ({self.status})"
