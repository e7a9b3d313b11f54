"""Run records: what a workflow did for an event, step by step. Secrets are masked before writing."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class ExecutionRun(models.Model):
    workflow = models.ForeignKey(
        "automate_core.Workflow", null=True, on_delete=models.SET_NULL, related_name="runs"
    )
    workflow_name = models.CharField(max_length=200)
    event = models.ForeignKey("automate_core.Event", on_delete=models.CASCADE, related_name="runs")
    job = models.ForeignKey("automate_core.OutboxJob", null=True, blank=True, on_delete=models.SET_NULL)
    attempt = models.IntegerField(default=1)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    error = models.TextField(blank=True, default="")
    trace_id = models.CharField(max_length=32, db_index=True)
    started_at = models.DateTimeField(db_default=Now())
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "automate_run"
        ordering = ["-id"]
        indexes = [models.Index(fields=["event", "workflow"], name="automate_run_event_wf")]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.workflow_name} ({self.status})"


class StepRun(models.Model):
    run = models.ForeignKey(ExecutionRun, on_delete=models.CASCADE, related_name="steps")
    position = models.IntegerField()
    name = models.CharField(max_length=100)
    connector = models.CharField(max_length=100)
    action = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=RunStatus.choices)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_ms = models.FloatField()

    class Meta:
        db_table = "automate_step_run"
        ordering = ["run", "position"]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"
