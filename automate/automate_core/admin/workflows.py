"""Workflows and their steps in the admin."""

from __future__ import annotations

from django.contrib import admin

from automate_core.models import Step, Workflow


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    fields = ["position", "name", "connector", "action", "params", "timeout_seconds"]


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "enabled",
        "source_pattern",
        "event_type_pattern",
        "max_attempts",
        "updated_at",
    ]
    list_filter = ["enabled"]
    search_fields = ["name", "description"]
    inlines = [StepInline]
