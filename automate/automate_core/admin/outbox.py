"""Outbox jobs in the admin, with replay of dead jobs."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from automate_core.admin.common import ReadOnlyAdmin
from automate_core.models import JobStatus, OutboxJob
from automate_core.outbox import replay


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
