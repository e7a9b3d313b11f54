"""Workflow runs in the admin: a timeline of each run's steps, replay and cancel.

Everything shown was masked before it was written (secret values read ``***``). The list is
over a big table: exact search (run id, event id, trace id), filters served by indexes, no
full count (``paging``).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from automate_core.admin import filters
from automate_core.admin.common import ConsoleMedia, ReadOnlyAdmin, form_page, pretty_json, status_badge
from automate_core.admin.paging import BigTableAdmin
from automate_core.exceptions import AutomateError
from automate_core.execution import replay
from automate_core.models import BulkReplay, ExecutionRun, RunMode, RunStatus, StepRun

CANCELLABLE = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING)


class ReplayForm(forms.Form):
    mode = forms.ChoiceField(
        choices=[(m.value, m.label) for m in replay.REPLAY_MODES], initial=RunMode.CURRENT
    )
    payload = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80}),
        required=False,
        help_text="Only for 'edited': the payload to run with (a new event; the original stays).",
    )

    def clean_payload(self) -> Any:
        text = self.cleaned_data.get("payload") or ""
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc


def timeline_rows(run: ExecutionRun, steps: list[StepRun]) -> list[dict[str, Any]]:
    """Each step record with its offset from the run's start and its bar on a common scale."""
    start = run.started_at
    ends = [s.finished_at for s in steps] + ([run.finished_at] if run.finished_at else [])
    span_ms = max([(end - start).total_seconds() * 1000.0 for end in ends] + [1.0])
    rows = []
    for s in steps:
        offset = max((s.started_at - start).total_seconds() * 1000.0, 0.0)
        rows.append(
            {
                "step": s,
                "offset_ms": offset,
                "left": min(offset / span_ms * 100.0, 100.0),
                "width": max(min(s.duration_ms / span_ms * 100.0, 100.0), 0.5),
                "input": json.dumps(s.input, indent=2, default=str) if s.input is not None else None,
                "output": json.dumps(s.output, indent=2, default=str) if s.output is not None else None,
            }
        )
    return rows


@admin.register(ExecutionRun)
class ExecutionRunAdmin(BigTableAdmin):
    list_display = [
        "id",
        "workflow_name",
        "version_label",
        "status_badge",
        "mode",
        "parent_link",
        "event_link",
        "attempt",
        "started_at",
        "duration",
    ]
    list_filter = ["status", "mode", filters.WorkflowFilter, filters.StartedFilter]
    time_field = "started_at"
    search_fields = ["trace_id"]  # shows the search box; the search itself is get_search_results
    search_help_text = "A run id, an event id or a trace id (exact)."
    list_select_related = ["event", "version"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("workflow_link", "version_label", "mode", "attempt"),
                    ("status_badge", "started_at", "finished_at", "duration"),
                    "error",
                    "actions_links",
                ]
            },
        ),
        ("Steps", {"fields": ["timeline"]}),
        (
            "Where it comes from",
            {
                "fields": [
                    ("event_link", "job_link"),
                    ("parent_link", "replays_links", "bulk_replay"),
                    "trace_links",
                ]
            },
        ),
    ]
    readonly_fields = [
        *("workflow_link", "version_label", "mode", "attempt", "status_badge", "started_at", "finished_at"),
        *("duration", "error", "actions_links", "timeline", "event_link", "job_link", "parent_link"),
        *("replays_links", "bulk_replay", "trace_links"),
    ]
    actions = ["replay_original", "replay_current", "resume", "cancel"]
    Media = ConsoleMedia

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ExecutionRun], search_term: str
    ) -> tuple[QuerySet[ExecutionRun], bool]:
        """Exact matches on indexed columns only (a substring search would read every run)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(trace_id=term)
        if term.isdigit() and int(term) < 2**63:
            match |= Q(pk=int(term)) | Q(event_id=int(term))
        return queryset.filter(match), False

    # -- columns and fields ----------------------------------------------------------------------

    @admin.display(description="Version")
    def version_label(self, obj: ExecutionRun) -> str:
        return f"v{obj.version.number}" if obj.version else "-"

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: ExecutionRun) -> str:
        return status_badge(obj.status)

    @admin.display(description="Replay of")
    def parent_link(self, obj: ExecutionRun) -> str:
        if not obj.parent_id:
            return "-"
        url = reverse("admin:automate_core_executionrun_change", args=[obj.parent_id])
        return format_html('<a href="{}">run #{}</a>', url, obj.parent_id)

    @admin.display(description="Event")
    def event_link(self, obj: ExecutionRun) -> str:
        url = reverse("admin:automate_core_event_change", args=[obj.event_id])
        return format_html(
            '<a href="{}">#{} {}/{}</a>', url, obj.event_id, obj.event.source, obj.event.event_type
        )

    @admin.display(description="Workflow")
    def workflow_link(self, obj: ExecutionRun) -> str:
        if not obj.workflow_id:
            return f"{obj.workflow_name} (deleted)"
        url = reverse("admin:automate_core_workflow_change", args=[obj.workflow_id])
        return format_html('<a href="{}">{}</a>', url, obj.workflow_name)

    @admin.display(description="Outbox job")
    def job_link(self, obj: ExecutionRun) -> str:
        if not obj.job_id:
            return "-"
        url = reverse("admin:automate_core_outboxjob_change", args=[obj.job_id])
        return format_html('<a href="{}">job #{}</a>', url, obj.job_id)

    @admin.display(description="Replays")
    def replays_links(self, obj: ExecutionRun) -> str:
        replays = list(obj.replays.order_by("id").values_list("pk", "mode", "status"))
        if not replays:
            return "-"
        items = format_html_join(
            "",
            '<li><a href="{}">run #{}</a> ({}) {}</li>',
            (
                (
                    reverse("admin:automate_core_executionrun_change", args=[pk]),
                    pk,
                    RunMode(mode).label,
                    status_badge(status),
                )
                for pk, mode, status in replays
            ),
        )
        return format_html("<ul class='automate-plain'>{}</ul>", items)

    @admin.display(description="Trace id")
    def trace_links(self, obj: ExecutionRun) -> str:
        runs = reverse("admin:automate_core_executionrun_changelist")
        events = reverse("admin:automate_core_event_changelist")
        return format_html(
            '<code>{}</code> · <a href="{}?q={}">its runs</a> · <a href="{}?q={}">its event</a> · '
            "in the logs: <code>grep {}</code>",
            obj.trace_id,
            runs,
            obj.trace_id,
            events,
            obj.trace_id,
            obj.trace_id,
        )

    @admin.display(description="Duration")
    def duration(self, obj: ExecutionRun) -> str:
        if not obj.finished_at:
            return "-"
        ms = (obj.finished_at - obj.started_at).total_seconds() * 1000.0
        return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"

    @admin.display(description="Timeline")
    def timeline(self, obj: ExecutionRun) -> str:
        steps = list(obj.steps.order_by("started_at", "position", "id"))
        return render_to_string(
            "automate_core/admin/run_timeline.html", {"run": obj, "rows": timeline_rows(obj, steps)}
        )

    @admin.display(description="Actions")
    def actions_links(self, obj: ExecutionRun) -> str:
        if not obj.pk:
            return "-"
        links = [
            format_html(
                '<a class="button" href="{}">Replay…</a>',
                reverse("admin:automate_core_executionrun_replay", args=[obj.pk]),
            )
        ]
        if obj.status in CANCELLABLE:
            links.append(
                format_html(
                    '<a class="button" href="{}">Cancel…</a>',
                    reverse("admin:automate_core_executionrun_cancel", args=[obj.pk]),
                )
            )
        return format_html(" ".join(["{}"] * len(links)), *links)

    # -- changelist actions ----------------------------------------------------------------------

    def _each(self, request: HttpRequest, queryset: QuerySet[ExecutionRun], action: Any, verb: str) -> None:
        done, refused = [], []
        for run in queryset.order_by("id"):
            try:
                result = action(run.pk)
            except AutomateError as exc:
                refused.append(str(exc))
            else:
                done.append(f"#{run.pk}" + (f" → #{result.pk}" if hasattr(result, "pk") else ""))
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}.", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)

    @admin.action(description="Replay from the start on the original version", permissions=["act"])
    def replay_original(self, request: HttpRequest, queryset: QuerySet[ExecutionRun]) -> None:
        self._each(request, queryset, lambda pk: replay.replay(pk, RunMode.ORIGINAL), "Replays queued")

    @admin.action(description="Replay from the start on the current version", permissions=["act"])
    def replay_current(self, request: HttpRequest, queryset: QuerySet[ExecutionRun]) -> None:
        self._each(request, queryset, lambda pk: replay.replay(pk, RunMode.CURRENT), "Replays queued")

    @admin.action(
        description="Resume from the failed step (current version, earlier outputs reused)",
        permissions=["act"],
    )
    def resume(self, request: HttpRequest, queryset: QuerySet[ExecutionRun]) -> None:
        self._each(request, queryset, lambda pk: replay.replay(pk, RunMode.RESUME), "Resumes queued")

    @admin.action(description="Cancel the selected queued or running runs", permissions=["act"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[ExecutionRun]) -> None:
        self._each(request, queryset, replay.cancel, "Cancelled")

    # -- pages -----------------------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        site = self.admin_site
        return [
            path(
                "<int:pk>/replay/",
                site.admin_view(self.replay_view),
                name="automate_core_executionrun_replay",
            ),
            path(
                "<int:pk>/cancel/",
                site.admin_view(self.cancel_view),
                name="automate_core_executionrun_cancel",
            ),
            *super().get_urls(),
        ]

    def replay_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_act_permission(request):
            raise PermissionDenied
        run = get_object_or_404(ExecutionRun.objects.select_related("event"), pk=pk)
        initial = {"payload": json.dumps(run.event.payload, indent=2)}
        form = ReplayForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            mode = form.cleaned_data["mode"]
            payload = form.cleaned_data["payload"] if mode == RunMode.EDITED else None
            try:
                new = replay.replay(run.pk, mode, payload=payload)
            except AutomateError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"Replay queued as run #{new.pk}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:automate_core_executionrun_change", args=[new.pk]))
        return form_page(
            self,
            request,
            form,
            title=f"Replay run #{run.pk} of {run.workflow_name}",
            intro="A new run is queued and linked to this one; this run is not changed.",
            submit="Queue the replay",
        )

    def cancel_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_act_permission(request):
            raise PermissionDenied
        run = get_object_or_404(ExecutionRun, pk=pk)
        form = forms.Form(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                replay.cancel(run.pk)
            except AutomateError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"Run #{run.pk} cancelled.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:automate_core_executionrun_change", args=[run.pk]))
        return form_page(
            self,
            request,
            form,
            title=f"Cancel run #{run.pk} of {run.workflow_name}?",
            intro="A queued run will not start; a running one stops before its next step "
            "(the step running now finishes).",
            submit="Cancel the run",
        )


@admin.register(BulkReplay)
class BulkReplayAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "mode", "total", "queued", "created_at", "finished_at", "author"]
    fields = readonly_fields = (
        "status",
        "mode",
        "filter",
        "total",
        "queued",
        "created_at",
        "finished_at",
        "author",
        "runs_by_status",
    )

    @admin.display(description="Replays by status")
    def runs_by_status(self, obj: BulkReplay) -> str:
        return pretty_json(replay.progress(obj)["runs"])
