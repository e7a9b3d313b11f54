"""Workflow runs in the admin: a timeline of each run's steps, replay and cancel actions.

Everything shown was masked before it was written (secret values read ``***``).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from automate_core.admin.common import ReadOnlyAdmin, form_page, pretty_json
from automate_core.exceptions import AutomateError
from automate_core.execution import replay
from automate_core.models import BulkReplay, ExecutionRun, RunMode

_COLOURS = {"succeeded": "#2a7", "failed": "#c33", "skipped": "#999", "reused": "#58a", "running": "#c90"}


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


@admin.register(ExecutionRun)
class ExecutionRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "workflow_name",
        "version",
        "status",
        "mode",
        "parent",
        "event",
        "attempt",
        "started_at",
    ]
    list_filter = ["status", "mode", "workflow_name"]
    search_fields = ["trace_id", "workflow_name", "error"]
    list_select_related = ["version"]
    fields = (
        "workflow_name",
        "workflow",
        "version",
        "event",
        "job",
        "mode",
        "parent",
        "bulk_replay",
        "attempt",
        "status",
        "error",
        "trace_id",
        "started_at",
        "finished_at",
        "actions_links",
        "timeline",
    )
    readonly_fields = fields
    actions = ["replay_original", "replay_current", "resume", "cancel"]

    @admin.display(description="Timeline")
    def timeline(self, obj: ExecutionRun) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><b>{}</b><br>{}.{}</td><td style='color:{}'>{}{}</td><td>{} ms</td>"
            "<td>{}</td><td>{}</td><td style='color:#c33'>{}</td></tr>",
            (
                (
                    s.position,
                    s.name,
                    s.connector,
                    s.action,
                    _COLOURS.get(s.status, "#333"),
                    s.status,
                    f" (attempt {s.attempt})" if s.attempt > 1 else "",
                    f"{s.duration_ms:.1f}",
                    pretty_json(s.input) if s.input is not None else "",
                    pretty_json(s.output) if s.output is not None else "",
                    s.error,
                )
                for s in obj.steps.order_by("position", "id")
            ),
        )
        return format_html(
            "<table><thead><tr><th>#</th><th>step</th><th>status</th><th>duration</th><th>input</th>"
            "<th>output</th><th>error</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Actions")
    def actions_links(self, obj: ExecutionRun) -> str:
        if not obj.pk:
            return "-"
        return format_html(
            '<a class="button" href="{}">Replay…</a>',
            reverse("admin:automate_core_executionrun_replay", args=[obj.pk]),
        )

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

    @admin.action(description="Replay from the start on the original version")
    def replay_original(self, request: HttpRequest, queryset: QuerySet[ExecutionRun]) -> None:
        self._each(request, queryset, lambda pk: replay.replay(pk, RunMode.ORIGINAL), "Replays queued")

    @admin.action(description="Replay from the start on the current version")
    def replay_current(self, request: HttpRequest, queryset: QuerySet[ExecutionRun]) -> None:
        self._each(request, queryset, lambda pk: replay.replay(pk, RunMode.CURRENT), "Replays queued")

    @admin.action(description="Resume from the failed step (current version, earlier outputs reused)")
    def resume(self, request: HttpRequest, queryset: QuerySet[ExecutionRun]) -> None:
        self._each(request, queryset, lambda pk: replay.replay(pk, RunMode.RESUME), "Resumes queued")

    @admin.action(description="Cancel the selected queued or running runs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[ExecutionRun]) -> None:
        self._each(request, queryset, replay.cancel, "Cancelled")

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.replay_view)
        return [path("<int:pk>/replay/", view, name="automate_core_executionrun_replay"), *super().get_urls()]

    def replay_view(self, request: HttpRequest, pk: int) -> HttpResponse:
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
