"""Durable waits: what a run that sleeps, waits for an event, an approval or a child run waits on.

A run that reaches a ``sleep``, ``wait_for_event``, ``approval`` or ``call`` step opens one
:class:`RunWait` and becomes ``waiting``: it holds no worker slot, connection or thread. Its
*wake job* (an ordinary outbox job, ``payload = {"wake": wait_id}``) is written in the same
transaction, available at the wait's deadline (``infinity`` without one). Whatever resolves the
wait first (the deadline, a matching event, an answer, the child run's end) wins a guarded
``UPDATE ... WHERE status = 'open'`` and makes the wake job available now; the losers change
nothing. The wake job then resumes the run exactly once (``docs/architecture.md``, the run's
state machine).

:class:`WaitPattern` lists the ``(source, event_type, path)`` triples that ``wait_for_event``
steps of any workflow version correlate on. It is written when a version is published and
never shrinks, so the engine knows, without a query, which incoming events can resolve a wait.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class WaitKind(models.TextChoices):
    SLEEP = "sleep", "Sleep"
    EVENT = "event", "Wait for an event"
    APPROVAL = "approval", "Approval"
    CALL = "call", "Sub-workflow"


class WaitStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    TIMED_OUT = "timed_out", "Timed out"
    CANCELLED = "cancelled", "Cancelled"


class RunWait(models.Model):
    run_id = models.BigIntegerField()
    step_name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=WaitKind.choices)
    status = models.CharField(max_length=16, choices=WaitStatus.choices, default=WaitStatus.OPEN)
    deadline = models.DateTimeField(null=True, blank=True)
    job_id = models.BigIntegerField(null=True, blank=True)  # the wake job
    # wait_for_event: the incoming event's (source, event_type) and payload path must equal value
    source = models.CharField(max_length=100, blank=True, default="")
    event_type = models.CharField(max_length=200, blank=True, default="")
    path = models.CharField(max_length=200, blank=True, default="")
    value = models.TextField(blank=True, default="")
    # approval: the link's token is stored only as its SHA-256
    token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True)
    prompt = models.TextField(blank=True, default="")
    on_timeout = models.CharField(max_length=16, blank=True, default="")
    # call: the child run
    child_run_id = models.BigIntegerField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    resolved_by = models.CharField(max_length=200, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "automate_run_wait"
        ordering = ["-id"]
        constraints = [
            # one wait per step of a run: opening it again (a retried claim) changes nothing
            models.UniqueConstraint(fields=["run_id", "step_name"], name="automate_wait_run_step"),
        ]
        indexes = [
            # an incoming event finds the open waits it resolves with one index lookup
            models.Index(
                fields=["source", "event_type", "path", "value"],
                condition=models.Q(status="open", kind="event"),
                name="automate_wait_open_event",
            ),
            models.Index(
                fields=["child_run_id"],
                condition=models.Q(status="open", kind="call"),
                name="automate_wait_open_call",
            ),
            models.Index(
                fields=["created_at"], condition=models.Q(status="open"), name="automate_wait_open_age"
            ),
        ]

    def __str__(self) -> str:
        return f"wait #{self.pk} run {self.run_id} {self.step_name} ({self.kind}, {self.status})"

    def describe(self) -> str:
        """What the run waits for, in words (``automate waits``, ``automate runs``, the API)."""
        if self.kind == "event":
            return f"event {self.source}/{self.event_type} with payload.{self.path} = {self.value!r}"
        if self.kind == "approval":
            return f"approval: {self.prompt}"
        if self.kind == "call":
            return f"called run #{self.child_run_id}"
        return "sleep"


class WaitPattern(models.Model):
    source = models.CharField(max_length=100)
    event_type = models.CharField(max_length=200)
    path = models.CharField(max_length=200)

    class Meta:
        db_table = "automate_wait_pattern"
        constraints = [
            models.UniqueConstraint(
                fields=["source", "event_type", "path"], name="automate_wait_pattern_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.event_type} by {self.path}"
