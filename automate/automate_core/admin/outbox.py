"""Outbox jobs in the admin: the queue by state, the dead letters with their last error, replay.

The list's header shows the queue now (the statement ``/metrics`` reads, from partial indexes) and
the dead letters (``observability.dead_letters``: dead jobs not replayed and not run again
successfully, the count ``automate dead`` and the gauge show too; its link lists exactly them);
the list is over a big table (``paging``): exact search (job id, event id, trace id) and filters
an index serves. Replaying is ``automate_core.outbox.replay`` (the worker stage owns it): the
action works on the selection, including Django's "select all N matching" across pages, as one
statement on the server, never row by row; a dead job's page has its own *Replay…* button.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from automate_core.admin import dashboard, filters
from automate_core.admin.common import ConsoleMedia, form_page, pretty_json, status_badge
from automate_core.admin.paging import BigTableAdmin
from automate_core.models import Event, JobStatus, OutboxJob
from automate_core.observability import dead_letters
from automate_core.outbox import replay

BR = mark_safe("<br>")  # a constant


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


class DeadLetterFilter(admin.SimpleListFilter):
    """Dead jobs still to act on, or resolved since (``observability.dead_letters`` says which)."""

    title = "dead letters"
    parameter_name = "dead_letters"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[OutboxJob]
    ) -> list[tuple[str, str]]:
        return [("open", "Not resolved"), ("resolved", "Resolved (replayed or run again)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OutboxJob]) -> QuerySet[OutboxJob]:
        if self.value() == "open":
            return dead_letters.dead_letters(queryset)
        if self.value() == "resolved":
            letters = dead_letters.dead_letters().values("pk")
            return queryset.filter(status=JobStatus.DEAD).exclude(pk__in=letters)
        return queryset


@admin.register(OutboxJob)
class OutboxJobAdmin(BigTableAdmin):
    change_list_template = "automate_core/admin/outbox_change_list.html"
    list_display = [
        "id",
        "status_badge",
        "kind",
        "queue",
        "priority",
        "event_link",
        "spent",
        "updated_at",
        "error_cell",
    ]
    list_filter = ["status", DeadLetterFilter, "kind", ReplayedFilter, filters.JobSourceFilter]
    search_fields = ["last_error"]  # shows the search box; the search itself is get_search_results
    search_help_text = "A job id, an event id or a trace id (exact)."
    actions = ["replay_dead"]
    list_select_related = ["event"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("status_badge", "kind", "spent"),
                    ("queue", "priority", "fair_key"),
                    ("available_at", "claim_rank", "updated_at", "completed_at"),
                    ("lease_owner", "lease_expires_at"),
                    "error_full",
                    "replay_button",
                ]
            },
        ),
        ("What it carries", {"fields": [("event_link", "replay_links"), "runs_links", "payload_json"]}),
        ("Result (Django tasks)", {"fields": ["result_json"], "classes": ["collapse"]}),
    ]
    readonly_fields = [
        *("status_badge", "kind", "spent", "available_at", "updated_at", "completed_at"),
        *("queue", "priority", "fair_key", "claim_rank"),
        *("lease_owner", "lease_expires_at", "error_full", "replay_button", "event_link", "replay_links"),
        *("runs_links", "payload_json", "result_json"),
    ]
    Media = ConsoleMedia

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The list, under the queue as it is now (ready, retry, running, oldest due, dead)."""
        return super().changelist_view(request, {**(extra_context or {}), "queue": dashboard.outbox_depth()})

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[OutboxJob], search_term: str
    ) -> tuple[QuerySet[OutboxJob], bool]:
        """Exact matches on indexed columns only (a substring search would read every job)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(event_id__in=Event.objects.filter(trace_id=term).values("pk"))
        if term.isdigit() and int(term) < 2**63:
            match |= Q(pk=int(term)) | Q(event_id=int(term))
        return queryset.filter(match), False

    # -- columns and fields ----------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutboxJob]:
        """Each job with whether it is a dead letter (one hashed subquery over the dead jobs)."""
        jobs: QuerySet[OutboxJob] = super().get_queryset(request)
        return jobs.annotate(
            dead_letter=RawSQL(f"automate_outbox_job.id IN ({dead_letters.DEAD_LETTER_IDS})", ())
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: OutboxJob) -> str:
        if obj.status == JobStatus.DEAD and getattr(obj, "dead_letter", True) is False:
            return format_html(
                '{} <span class="automate-resolved" title="{}">resolved</span>',
                status_badge(obj.status),
                "Replayed, or its event was run again successfully: not a dead letter any more.",
            )
        return status_badge(obj.status)

    @admin.display(description="Attempts")
    def spent(self, obj: OutboxJob) -> str:
        spent = f"{obj.spent_attempts} of {obj.max_attempts}"
        return spent + (f" (+{obj.releases} handed back)" if obj.releases else "")

    @admin.display(description="Event")
    def event_link(self, obj: OutboxJob) -> str:
        event = obj.event
        if event is None:
            return "-"
        url = reverse("admin:automate_core_event_change", args=[event.pk])
        return format_html('<a href="{}">#{} {}/{}</a>', url, event.pk, event.source, event.event_type)

    @admin.display(description="Last error")
    def error_cell(self, obj: OutboxJob) -> str:
        if not obj.last_error:
            return "-"
        text = obj.last_error if len(obj.last_error) <= 300 else obj.last_error[:300] + "…"
        return format_html('<pre class="automate-error">{}</pre>', text)

    @admin.display(description="Last error")
    def error_full(self, obj: OutboxJob) -> str:
        return format_html('<pre class="automate-error">{}</pre>', obj.last_error) if obj.last_error else "-"

    @admin.display(description="Replay")
    def replay_button(self, obj: OutboxJob) -> str:
        if obj.status != JobStatus.DEAD:
            return "-"
        url = reverse("admin:automate_core_outboxjob_replay", args=[obj.pk])
        return format_html('<a class="button" href="{}">Replay…</a>', url)

    @admin.display(description="Replays")
    def replay_links(self, obj: OutboxJob) -> str:
        links = []
        if obj.replay_of_id:
            url = reverse("admin:automate_core_outboxjob_change", args=[obj.replay_of_id])
            links.append(format_html('replay of <a href="{}">job #{}</a>', url, obj.replay_of_id))
        for pk, status in obj.replays.order_by("id").values_list("pk", "status"):
            url = reverse("admin:automate_core_outboxjob_change", args=[pk])
            links.append(
                format_html('replayed as <a href="{}">job #{}</a> {}', url, pk, status_badge(status))
            )
        return format_html_join(BR, "{}", ((link,) for link in links)) if links else "-"

    @admin.display(description="Runs")
    def runs_links(self, obj: OutboxJob) -> str:
        runs = obj.executionrun_set.order_by("id").values_list("pk", "workflow_name", "status", "attempt")
        return (
            format_html_join(
                BR,
                '<a href="{}">run #{}</a> {} (attempt {}) {}',
                (
                    (
                        reverse("admin:automate_core_executionrun_change", args=[pk]),
                        pk,
                        name,
                        attempt,
                        status_badge(st),
                    )
                    for pk, name, st, attempt in runs
                ),
            )
            or "-"
        )

    @admin.display(description="Payload")
    def payload_json(self, obj: OutboxJob) -> str:
        return pretty_json(obj.payload) if obj.payload is not None else "- (the event)"

    @admin.display(description="Result")
    def result_json(self, obj: OutboxJob) -> str:
        return pretty_json(obj.result) if obj.result is not None else "-"

    # -- replay ----------------------------------------------------------------------------------

    @admin.action(description="Replay selected dead jobs (as new jobs)", permissions=["act"])
    def replay_dead(self, request: HttpRequest, queryset: QuerySet[OutboxJob]) -> None:
        selection = queryset.filter(status=JobStatus.DEAD)
        skipped = queryset.count() - selection.count()
        resolved = selection.filter(replays=None).count() - dead_letters.dead_letters(selection).count()
        created = replay.replay(selection)
        note = f" {skipped} selected jobs are not dead and were left alone." if skipped else ""
        if resolved:
            note += (
                f" {resolved} of them had been resolved already (their event was run again "
                "successfully): their workflows run once more."
            )
        self.message_user(
            request, f"{len(created)} dead jobs queued again as new jobs.{note}", messages.SUCCESS
        )

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.replay_view)
        return [path("<int:pk>/replay/", view, name="automate_core_outboxjob_replay"), *super().get_urls()]

    def replay_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_act_permission(request):
            raise PermissionDenied
        job = get_object_or_404(OutboxJob, pk=pk)
        form = forms.Form(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            created = replay.replay(replay.DeadFilter(ids=(job.pk,), replayed=False))
            if created:
                self.message_user(
                    request, f"Job #{job.pk} queued again as job #{created[0]}.", messages.SUCCESS
                )
                return HttpResponseRedirect(
                    reverse("admin:automate_core_outboxjob_change", args=[created[0]])
                )
            form.add_error(None, f"Job #{job.pk} is not dead, or was replayed already: nothing was queued.")
        return form_page(
            self,
            request,
            form,
            title=f"Replay dead job #{job.pk}?",
            intro="A new job is queued for its event (every matching workflow runs again) and linked to "
            "this one, which stays as the record of what failed. To re-run one workflow only, replay its "
            "failed run instead.",
            submit="Queue the replay",
        )
