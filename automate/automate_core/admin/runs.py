"""Workflow runs and their step runs in the admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from automate_core.admin.common import ReadOnlyAdmin
from automate_core.models import ExecutionRun, StepRun


class StepRunInline(admin.TabularInline):
    model = StepRun
    extra = 0
    can_delete = False
    fields = (
        "position",
        "name",
        "connector",
        "action",
        "status",
        "duration_ms",
        "input",
        "output",
        "error",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ExecutionRun)
class ExecutionRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "workflow_name",
        "status",
        "event",
        "attempt",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "workflow_name"]
    search_fields = ["trace_id", "workflow_name", "error"]
    fields = (
        "workflow_name",
        "workflow",
        "event",
        "job",
        "attempt",
        "status",
        "error",
        "trace_id",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields
    inlines = [StepRunInline]
