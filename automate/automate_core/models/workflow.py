"""Workflows: which events they react to, the ordered steps they run, and their immutable versions.

``Workflow`` and ``Step`` rows are the editable definition (the admin edits them, ``automate load``
writes them). Every change saved through either creates a new :class:`WorkflowVersion`: an
immutable snapshot of the whole definition as JSON, numbered 1, 2, 3 … per workflow. The engine
runs ``current_version`` only, and every run records the version it ran.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Now

NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_]{0,99}$",
    "Use letters, digits and '_' (step outputs are referenced as steps.<name>.output).",
)


class Workflow(models.Model):
    """Runs its steps for every event whose source and type match its patterns (shell globs)
    and, when set, whose ``condition`` (a sandboxed expression on ``event``) is true."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    source_pattern = models.CharField(max_length=200, default="*")
    event_type_pattern = models.CharField(max_length=200, default="*")
    condition = models.TextField(
        blank=True, help_text="A Jinja2 expression on event, e.g. event.payload.amount > 100."
    )
    max_attempts = models.IntegerField(default=5, validators=[MinValueValidator(1)])
    retry_base_seconds = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)])
    retry_max_seconds = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)])
    concurrency_limit = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Runs at once (empty: no limit)."
    )
    concurrency_key = models.CharField(
        max_length=500,
        blank=True,
        help_text="Template of the key the limit applies to, e.g. {{ event.payload.customer_id }}.",
    )
    admission = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Throttle, rate_limit, singleton, queue, priority, fairness: the keys it sets, normalised.",
    )
    current_version = models.ForeignKey(
        "automate_core.WorkflowVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "automate_workflow"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Step(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=100, validators=[NAME_VALIDATOR])
    kind = models.CharField(
        max_length=16, default="action", help_text="action (a connector call) or a flow construct."
    )
    connector = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=100, blank=True)
    params = models.JSONField(
        default=dict, blank=True, help_text="Jinja2 templates in strings (a construct's settings)."
    )
    condition = models.TextField(blank=True, help_text="Skip the step when this expression is false.")
    timeout_seconds = models.FloatField(null=True, blank=True)
    retry_max_attempts = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    retry_backoff_seconds = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    continue_on_error = models.BooleanField(default=False)

    class Meta:
        db_table = "automate_step"
        ordering = ["workflow", "position"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "name"], name="automate_step_name"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name}.{self.name}"


class WorkflowVersion(models.Model):
    """One immutable snapshot of a workflow's definition (the ``automate load`` format, one item)."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    author = models.CharField(max_length=150, blank=True)
    comment = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "automate_workflow_version"
        ordering = ["workflow", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="automate_workflow_version_number"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name} v{self.number}"


class ConcurrencySlot(models.Model):
    """One taken slot of a workflow's concurrency limit, held by one claim of one outbox job.

    A slot is free when no row holds it, or when its holder's claim is over: the job is no longer
    ``running`` at that attempt, or its lease expired (the worker died). So a killed worker's slots
    come back by themselves when its lease runs out; no sweeper is needed.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    slot = models.IntegerField()
    job_id = models.BigIntegerField()
    job_attempt = models.IntegerField()
    acquired_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "automate_concurrency_slot"
        constraints = [
            models.UniqueConstraint(fields=["workflow", "key", "slot"], name="automate_slot_unique"),
        ]
        indexes = [models.Index(fields=["job_id"], name="automate_slot_job")]


class AdmissionState(models.Model):
    """The shared state of one admission control of a workflow for one key (``execution.controls``).

    ``throttle``: ``at`` is the key's theoretical arrival time (GCRA). ``rate_limit``: ``at`` is
    the start of the current window and ``count`` the runs counted in it. One row per (workflow,
    kind, key), updated by one upsert under its row lock, so every worker sees the same state.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16)
    key = models.CharField(max_length=200)
    at = models.DateTimeField()
    count = models.IntegerField(default=0)

    class Meta:
        db_table = "automate_admission_state"
        constraints = [
            models.UniqueConstraint(fields=["workflow", "kind", "key"], name="automate_admission_state_key"),
        ]


class Schedule(models.Model):
    """A cron schedule that emits an event through the outbox at every tick.

    Workers fire due schedules: the row is claimed with ``FOR UPDATE SKIP LOCKED`` and the event
    carries the idempotency key ``schedule:<name>:<tick>``, so a tick fires once however many
    workers run. Ticks missed while no worker ran fire once (the latest), not once each.
    """

    name = models.CharField(max_length=200, unique=True)
    cron = models.CharField(max_length=100, help_text="Cron expression, e.g. */5 * * * * (minute first).")
    timezone = models.CharField(max_length=64, default="UTC")
    source = models.CharField(max_length=100, default="schedule")
    event_type = models.CharField(max_length=200)
    payload = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    next_fire_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_event_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "automate_schedule"
        ordering = ["name"]
        indexes = [
            models.Index(
                fields=["next_fire_at"], condition=models.Q(enabled=True), name="automate_schedule_due"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.cron})"
