"""Run records: what a workflow did for an event, step by step. Secrets are masked before writing.

A run is pinned to the workflow version it ran. Replays and manual runs are new runs linked to the
run they came from (``parent``) with their ``mode``; the original is never changed.

Run records are the hottest writes of the platform (a run and its steps for every job), written
only by the platform's own code. Their references carry no foreign-key constraint in the database
(``db_constraint=False``): each constraint cost a lookup in the referenced table for every row, in
plans cached while that table was small (a sequential scan that stayed one as the table grew, so a
drain slowed down as it went: docs/benchmarks/outbox.md). Integrity is kept by the code that
writes them: a run is inserted for an event and job the worker holds, a step for the run it
returned; retention deletes steps, runs, jobs and events in that order; the ORM cascades and
nulls references when the admin deletes an event or a workflow.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting (a sleep, an event, an approval or a child run)"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"
    REUSED = "reused", "Reused (output of an earlier run)"


class RunMode(models.TextChoices):
    EVENT = "", "Event"
    MANUAL = "manual", "Manual trigger"
    ORIGINAL = "original", "Replay on the original version"
    CURRENT = "current", "Replay on the current version"
    RESUME = "resume", "Resume from the failed step"
    EDITED = "edited", "Replay with an edited payload"
    CALL = "call", "Called by another workflow"
    DEBOUNCE = "debounce", "Debounced: the last of its window's events"
    BATCH = "batch", "A batch of events"


class ExecutionRun(models.Model):
    workflow = models.ForeignKey(
        "automate_core.Workflow",
        null=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        db_constraint=False,
    )
    workflow_name = models.CharField(max_length=200)
    version = models.ForeignKey(
        "automate_core.WorkflowVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        db_constraint=False,
    )
    # indexed by automate_run_event_wf (event first), not by a second index of its own
    event = models.ForeignKey(
        "automate_core.Event",
        on_delete=models.CASCADE,
        related_name="runs",
        db_constraint=False,
        db_index=False,
    )
    job = models.ForeignKey(
        "automate_core.OutboxJob", null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False
    )
    attempt = models.IntegerField(default=1)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    error = models.TextField(blank=True, default="")
    trace_id = models.CharField(max_length=32)  # indexed by automate_run_trace (exact match only)
    mode = models.CharField(max_length=16, choices=RunMode.choices, default=RunMode.EVENT, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays", db_constraint=False
    )
    input = models.JSONField(null=True, blank=True, help_text="A called run's input (call steps).")
    bulk_replay = models.ForeignKey(
        "automate_core.BulkReplay",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        db_constraint=False,
    )
    started_at = models.DateTimeField(db_default=Now())
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "automate_run"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["event", "workflow"], name="automate_run_event_wf"),
            models.Index(fields=["trace_id"], name="automate_run_trace"),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.workflow_name} ({self.status})"


class StepRun(models.Model):
    run = models.ForeignKey(ExecutionRun, on_delete=models.CASCADE, related_name="steps", db_constraint=False)
    position = models.IntegerField()
    name = models.CharField(max_length=100)
    connector = models.CharField(max_length=100)
    action = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=RunStatus.choices)
    attempt = models.IntegerField(default=1)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_ms = models.FloatField()

    class Meta:
        db_table = "automate_step_run"
        ordering = ["run", "position", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class BulkReplay(models.Model):
    """A replay of every run matching a filter, carried out by the workers in chunks.

    The filter is frozen at creation (``max_run_id``): runs created later, including the replays
    themselves, never match. ``total`` is the preview count; ``queued`` grows as chunks are done.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    filter = models.JSONField()
    mode = models.CharField(max_length=16, choices=RunMode.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    total = models.IntegerField(default=0)
    queued = models.IntegerField(default=0)
    max_run_id = models.BigIntegerField(default=0)
    cursor = models.BigIntegerField(default=0)
    author = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "automate_bulk_replay"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"bulk replay #{self.pk} ({self.status}, {self.queued}/{self.total})"
