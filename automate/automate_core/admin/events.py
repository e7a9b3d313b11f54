"""Events in the admin: read-only, searched by what an operator has in hand, payload formatted.

The events table is the biggest one, so the list never reads it whole (see ``paging`` and
``filters``): search is exact (an event id, a trace id, an idempotency key), filters are by
source, event type and time received, each served by an index.
"""

from __future__ import annotations

import hashlib

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from automate_core.admin import filters, matching, queries
from automate_core.admin.common import ConsoleMedia, pretty_json, status_badge
from automate_core.admin.paging import BigTableAdmin
from automate_core.models import Event, EventKey


def exact_key(term: str) -> str:
    """The idempotency key as stored: keys over 255 characters are kept as their SHA-256."""
    if len(term) > 255:
        return "sha256:" + hashlib.sha256(term.encode("utf-8", "surrogatepass")).hexdigest()
    return term


def search(term: str) -> Q:
    """The events a console search names, each found through an index: by trace id, by id, or by
    a held idempotency key. A key names its event in the key table, whose primary key
    ``(source, idempotency_key)`` answers with every known source spelled out; a released key is
    not searched (the events table has no index on keys, and matching it would read them all)."""
    held = EventKey.objects.filter(source__in=queries.distinct_sources(), idempotency_key=exact_key(term))
    match = Q(trace_id=term) | Q(pk__in=list(held.values_list("event_id", flat=True)))
    if term.isdigit() and int(term) < 2**63:
        match |= Q(pk=int(term))
    return match


@admin.register(Event)
class EventAdmin(BigTableAdmin):
    list_display = ["id", "source", "event_type", "idempotency_key", "trace_link", "received_at"]
    list_filter = [filters.EventSourceFilter, filters.EventTypeFilter, filters.ReceivedFilter]
    time_field = "received_at"
    search_fields = ["trace_id"]  # shows the search box; the search itself is get_search_results
    search_help_text = "An event id, a trace id or an idempotency key (exact)."
    fieldsets = [
        (None, {"fields": [("source", "event_type", "received_at"), ("idempotency_key", "trace_link")]}),
        (None, {"fields": ["payload_pretty", "runs_and_jobs", "matching"]}),
        ("Headers", {"fields": ["headers_pretty"], "classes": ["collapse"]}),
    ]
    readonly_fields = [
        *("source", "event_type", "received_at", "idempotency_key", "trace_link"),
        *("payload_pretty", "runs_and_jobs", "matching", "headers_pretty"),
    ]
    Media = ConsoleMedia

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Event], search_term: str
    ) -> tuple[QuerySet[Event], bool]:
        """Exact matches only, each on an index: a substring search would read every event."""
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(search(term)), False

    @admin.display(description="Trace id", ordering="trace_id")
    def trace_link(self, obj: Event) -> str:
        """Everything that carries the trace id: its event(s) and runs (and the logs: grep it)."""
        runs = reverse("admin:automate_core_executionrun_changelist")
        return format_html(
            '<a href="{}?q={}" title="Runs with this trace id">{}</a>', runs, obj.trace_id, obj.trace_id
        )

    @admin.display(description="Payload")
    def payload_pretty(self, obj: Event) -> str:
        return pretty_json(obj.payload)

    @admin.display(description="Headers")
    def headers_pretty(self, obj: Event) -> str:
        return pretty_json(obj.headers)

    @admin.display(description="Runs and jobs")
    def runs_and_jobs(self, obj: Event) -> str:
        runs = format_html_join(
            "",
            '<li><a href="{}">run #{}</a> {} <span class="automate-status automate-status-{}">{}</span></li>',
            (
                (
                    reverse("admin:automate_core_executionrun_change", args=[r.pk]),
                    r.pk,
                    r.workflow_name,
                    r.status,
                    r.status,
                )
                for r in obj.runs.order_by("id")
            ),
        )
        jobs = format_html_join(
            "",
            '<li><a href="{}">job #{}</a> <span class="automate-status automate-status-{}">{}</span> {}</li>',
            (
                (
                    reverse("admin:automate_core_outboxjob_change", args=[j.pk]),
                    j.pk,
                    j.status,
                    j.status,
                    j.last_error[:200],
                )
                for j in obj.jobs.order_by("id")
            ),
        )
        groups = self._groups(obj)  # a debounced or batched event: the window or batch it joined
        if jobs and not runs and not groups and not obj.jobs.exclude(status="completed").exists():
            jobs = format_html("{}<li>{}</li>", jobs, status_badge("skipped", "no workflow matched"))
        if not (runs or jobs or groups):
            return "-"
        return format_html("<ul class='automate-plain'>{}{}{}</ul>", runs, groups, jobs)

    def _groups(self, obj: Event) -> str:
        from automate_core.execution.grouping import groups_of_event

        return format_html_join(
            "",
            '<li>joined {} #{} ({} events, {}{}): carried by <a href="{}">run #{}</a></li>',
            (
                (g["kind"], g["id"], g["size"], g["status"], f", key {g['key']!r}" if g["key"] else "",
                 reverse("admin:automate_core_executionrun_change", args=[g["run_id"]]), g["run_id"])
                for g in groups_of_event(obj.pk)
            ),
        )  # fmt: skip

    @admin.display(description="Workflows")
    def matching(self, obj: Event) -> str:
        """Which workflows ran; or, when its job completed without a run, that none matched and
        which came close (``admin.matching``)."""
        if not obj.pk:
            return "-"
        if self._groups(obj):  # its own run, if any, is a window's or a batch's
            return "Joined the debounce window or batch above: that run carries it."
        verdict = matching.verdict(obj)
        if verdict.state == "ran":
            return "Ran the workflows above."
        if verdict.state == "unsettled":
            return "No run yet: see the job above."
        return render_to_string("automate_core/admin/no_match.html", {"verdict": verdict, "event": obj})
