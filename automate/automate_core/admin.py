"""The admin: sources, workflows with their steps, events (read-only), outbox jobs, runs."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from automate_core.models import (
    Event,
    ExecutionRun,
    JobStatus,
    OutboxJob,
    Step,
    StepRun,
    WebhookSource,
    Workflow,
)
from automate_core.outbox import replay


def pretty_json(value: Any) -> str:
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(value, indent=2, default=str))


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookSource)
class WebhookSourceAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "scheme", "verification", "enabled"]
    list_filter = ["scheme", "enabled"]
    search_fields = ["slug", "name"]

    @admin.display(description="Verification")
    def verification(self, obj: WebhookSource) -> str:
        if obj.verified:
            return "verified"
        return format_html("<strong style='color:#b00'>{}</strong>", "UNVERIFIED")


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


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "source", "event_type", "idempotency_key", "trace_id", "received_at"]
    list_filter = ["source", "event_type"]
    search_fields = ["trace_id", "idempotency_key", "event_type"]
    fields = (
        "source",
        "event_type",
        "idempotency_key",
        "trace_id",
        "received_at",
        "payload_pretty",
        "headers_pretty",
    )
    readonly_fields = fields

    @admin.display(description="Payload")
    def payload_pretty(self, obj: Event) -> str:
        return pretty_json(obj.payload)

    @admin.display(description="Headers")
    def headers_pretty(self, obj: Event) -> str:
        return pretty_json(obj.headers)


@admin.register(OutboxJob)
class OutboxJobAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "attempts",
        "max_attempts",
        "event",
        "available_at",
        "lease_owner",
        "short_error",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["id", "event__trace_id", "last_error"]
    actions = ["replay_dead"]
    list_select_related = ["event"]

    @admin.display(description="Last error")
    def short_error(self, obj: OutboxJob) -> str:
        return obj.last_error[:120]

    @admin.action(description="Replay selected dead jobs")
    def replay_dead(self, request: HttpRequest, queryset: QuerySet[OutboxJob]) -> None:
        ids = list(queryset.filter(status=JobStatus.DEAD).values_list("id", flat=True))
        created = replay.replay_dead(ids=ids) if ids else []
        self.message_user(request, f"{len(created)} dead jobs queued again.", messages.SUCCESS)


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
