"""Workflows: which events they react to, and the ordered steps they run."""

from __future__ import annotations

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_]{0,99}$",
    "Use letters, digits and '_' (step outputs are referenced as steps.<name>.output).",
)


class Workflow(models.Model):
    """Runs its steps for every event whose source and type match its patterns (shell globs)."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    source_pattern = models.CharField(max_length=200, default="*")
    event_type_pattern = models.CharField(max_length=200, default="*")
    max_attempts = models.IntegerField(default=5, validators=[MinValueValidator(1)])
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
    connector = models.CharField(max_length=100)
    action = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True, help_text="Jinja2 templates in strings.")
    timeout_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        db_table = "automate_step"
        ordering = ["workflow", "position"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "name"], name="automate_step_name"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name}.{self.name}"
