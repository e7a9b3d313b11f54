"""Outbox jobs in the admin: what is queued, running, retrying and dead, and replaying dead jobs.

The replay action works on the selection, including Django's "select all N matching" across
pages: it runs server-side as one statement (``automate_core.outbox.replay``), never row by row.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from automate_core.admin.common import ReadOnlyAdmin, pretty_json
from automate_core.models import JobStatus, OutboxJob
from automate_core.outbox import replay


class ReplayedFilter(admin.SimpleListFilter):
    title = "replayed"
    parameter_name = "replayed"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[OutboxJob]
    ) -> list[tuple[str, str]]:
        return [("no", "Not replayed"), ("yes", "Replayed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OutboxJob]) -> QuerySet[OutboxJob]:
        if self.value() == "no":
            return queryset.filter(replays=None)
        if self.value() == "yes":
            return queryset.exclude(replays=None)
        return queryset


@admin.register(OutboxJob)
class OutboxJobAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "spent",
        "max_attempts",
        "event",
        "available_at",
        "lease_owner",
        "short_error",
    ]
    list_filter = ["status", "kind", ReplayedFilter, "event__source"]
    search_fields = ["=id", "event__trace_id", "last_error"]
    actions = ["replay_dead"]
    list_select_related = ["event"]
    readonly_fields = ["result_json"]
    exclude = ["result"]

    @admin.display(description="Attempts")
    def spent(self, obj: OutboxJob) -> str:
        return f"{obj.spent_attempts}" + (f" (+{obj.releases} handed back)" if obj.releases else "")

    @admin.display(description="Last error")
    def short_error(self, obj: OutboxJob) -> str:
        return obj.last_error[:120]

    @admin.display(description="Result (Django tasks)")
    def result_json(self, obj: OutboxJob) -> str:
        return pretty_json(obj.result) if obj.result is not None else "-"

    @admin.action(description="Replay selected dead jobs (as new jobs)")
    def replay_dead(self, request: HttpRequest, queryset: QuerySet[OutboxJob]) -> None:
        selection = queryset.filter(status=JobStatus.DEAD)
        skipped = queryset.count() - selection.count()
        created = replay.replay(selection)
        note = f" {skipped} selected jobs are not dead and were left alone." if skipped else ""
        self.message_user(
            request, f"{len(created)} dead jobs queued again as new jobs.{note}", messages.SUCCESS
        )
