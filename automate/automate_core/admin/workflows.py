"""Workflows, their steps, versions and schedules in the admin.

Saving validates what the engine would refuse: every template compiles (a bad one is refused
with its line and reason), conditions compile, the connector exists and has the action. A saved
change publishes a new version (``rules.versions.snapshot``). A workflow's page links to a form
that runs it on a given payload (a manual trigger).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, JSONField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import JSONObject
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from automate_core import definitions
from automate_core.admin import editor, queries
from automate_core.admin.common import ConsoleMedia, form_page, pretty_json, status_badge
from automate_core.exceptions import AutomateError
from automate_core.execution import replay
from automate_core.models import ExecutionRun, RunStatus, Schedule, Step, Workflow, WorkflowVersion
from automate_core.rules import versions

_CODE = {"class": "vLargeTextField automate-code", "spellcheck": "false"}


def _field_of(message: str, fields: tuple[str, ...]) -> str | None:
    """The form field a definitions error is about: ``step x.params: ...`` is about params."""
    where = message.split(":", 1)[0]
    about = (f for f in fields if where.endswith(f".{f}") or f".{f}." in where or f".{f}[" in where)
    return next(about, None)


class PrettyJSONField(forms.JSONField):
    """Step params as indented JSON, one key a line, instead of a one-line blob."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


class ConnectorInput(forms.TextInput):
    """A text input offering the installed connectors (a ``<datalist>``)."""

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> Any:
        listing = f"{(attrs or {}).get('id', name)}-choices"
        field = super().render(name, value, {**(attrs or {}), "list": listing}, renderer)
        options = format_html_join("", '<option value="{}">{}</option>', editor.connector_reference())
        return format_html('{}<datalist id="{}">{}</datalist>', field, listing, options)


class StepForm(forms.ModelForm):
    class Meta:
        model = Step
        fields = "__all__"
        field_classes = {"params": PrettyJSONField}
        widgets = {
            "connector": ConnectorInput(),
            "params": forms.Textarea(attrs={**_CODE, "rows": 8}),
            "condition": forms.Textarea(attrs={**_CODE, "rows": 1}),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors or data.get("DELETE"):
            return data
        spec = {
            "connector": data.get("connector", ""),
            "action": data.get("action", ""),
            "params": data.get("params") or {},
            "condition": data.get("condition") or "",
        }
        try:
            definitions.validate_step(f"step {data.get('name', '')}", spec)
        except definitions.DefinitionError as exc:
            # shown at the field it is about, with the template's line and the reason
            self.add_error(_field_of(str(exc), ("params", "condition", "connector", "action")), str(exc))
        return data


class WorkflowForm(forms.ModelForm):
    class Meta:
        model = Workflow
        fields = "__all__"
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2, "class": "vLargeTextField"}),
            "condition": forms.Textarea(attrs={**_CODE, "rows": 2}),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            definitions.validate_condition("condition", data.get("condition") or "")
        except definitions.DefinitionError as exc:
            self.add_error("condition", str(exc))
        try:
            definitions.validate_concurrency_key("concurrency key", data.get("concurrency_key") or "")
        except definitions.DefinitionError as exc:
            self.add_error("concurrency_key", str(exc))
        if data.get("concurrency_key") and not data.get("concurrency_limit"):
            self.add_error("concurrency_limit", "A concurrency key needs a concurrency limit.")
        return data


class StepInline(admin.StackedInline):
    model = Step
    form = StepForm
    extra = 0
    fields = [
        ("position", "name"),
        ("connector", "action"),
        "params",
        "condition",
        ("timeout_seconds", "retry_max_attempts", "retry_backoff_seconds", "continue_on_error"),
    ]


class VersionInline(admin.TabularInline):
    model = WorkflowVersion
    extra = 0
    can_delete = False
    fields = readonly_fields = ("number", "created_at", "author", "comment")
    ordering = ["-number"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TriggerForm(forms.Form):
    payload = forms.CharField(widget=forms.Textarea(attrs={"rows": 12, "cols": 80}), initial="{}")
    source = forms.CharField(initial="manual")
    event_type = forms.CharField(initial="manual")

    def clean_payload(self) -> Any:
        try:
            return json.loads(self.cleaned_data["payload"])
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc


def _runs_of(since: datetime | None = None) -> QuerySet[ExecutionRun]:
    """Runs of the outer workflow, read through ``automate_run_workflow_started``."""
    runs = ExecutionRun.objects.filter(workflow=OuterRef("pk"))
    return runs.filter(started_at__gte=since) if since is not None else runs


def _outcomes(runs: QuerySet[ExecutionRun]) -> Subquery:
    """``{"succeeded": n, "failed": m}`` of the runs, counted in one pass over them."""
    counts = JSONObject(
        succeeded=Count("pk", filter=Q(status=RunStatus.SUCCEEDED)),
        failed=Count("pk", filter=Q(status=RunStatus.FAILED)),
    )
    return Subquery(
        runs.order_by().values("workflow").annotate(c=counts).values("c"), output_field=JSONField()
    )


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    form = WorkflowForm
    list_display = [
        "name",
        "enabled",
        "source_pattern",
        "event_type_pattern",
        "version_number",
        "last_run",
        "runs_24h",
        "updated_at",
        "yaml_link",
    ]
    list_select_related = ["current_version"]
    change_list_template = "automate_core/admin/workflow_change_list.html"
    list_filter = ["enabled"]
    search_fields = ["name", "description"]
    readonly_fields = ["version_number", "run_link"]
    fieldsets = [
        (None, {"fields": [("name", "enabled"), "description", ("version_number", "run_link")]}),
        ("Trigger", {"fields": [("source_pattern", "event_type_pattern"), "condition"]}),
        (
            "Retries and concurrency",
            {
                "fields": [
                    ("max_attempts", "retry_base_seconds", "retry_max_seconds"),
                    ("concurrency_limit", "concurrency_key"),
                ]
            },
        ),
    ]
    inlines = [StepInline, VersionInline]
    actions = ["publish"]

    Media = ConsoleMedia

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        with queries.without_jit():  # rendered inside: the list's query runs while the template renders
            response = super().changelist_view(request, extra_context)
            if isinstance(response, TemplateResponse):
                response.render()
        return response

    def get_queryset(self, request: HttpRequest) -> QuerySet[Workflow]:
        """Each workflow with its last run and its last day's outcomes, in the list's one query."""
        since = timezone.now() - timedelta(hours=24)
        last = _runs_of().order_by("-started_at")
        workflows: QuerySet[Workflow] = super().get_queryset(request)
        return workflows.annotate(
            last_run_id=Subquery(last.values("pk")[:1]),
            last_run_status=Subquery(last.values("status")[:1]),
            last_run_at=Subquery(last.values("started_at")[:1]),
            outcomes_24h=_outcomes(_runs_of(since)),
        )

    @admin.display(description="Last run", ordering="last_run_at")
    def last_run(self, obj: Workflow) -> str:
        run_id, status, at = (getattr(obj, f"last_run_{name}", None) for name in ("id", "status", "at"))
        if not run_id or at is None:
            return "never"
        url = reverse("admin:automate_core_executionrun_change", args=[run_id])
        return format_html(
            '<a href="{}">{} ago</a> {}', url, timesince(at, depth=1), status_badge(str(status))
        )

    @admin.display(description="Runs, last 24 h")
    def runs_24h(self, obj: Workflow) -> str:
        base = f"{reverse('admin:automate_core_executionrun_changelist')}?workflow={obj.pk}&since=24h"
        outcomes = getattr(obj, "outcomes_24h", None) or {}
        succeeded, failed = outcomes.get("succeeded", 0), outcomes.get("failed", 0)
        return format_html(
            '<a href="{0}&status__exact=succeeded">{1} succeeded</a> · '
            '<a href="{0}&status__exact=failed">{2}</a>',
            base,
            succeeded,
            status_badge("failed", f"{failed} failed") if failed else "0 failed",
        )

    @admin.display(description="Version")
    def version_number(self, obj: Workflow) -> str:
        return f"v{obj.current_version.number}" if obj.current_version else "-"

    @admin.display(description="Run it")
    def run_link(self, obj: Workflow) -> str:
        if not obj.pk:
            return "-"
        url = reverse("admin:automate_core_workflow_trigger", args=[obj.pk])
        yaml_url = reverse("admin:automate_core_workflow_yaml", args=[obj.pk])
        return format_html(
            '<a class="button" href="{}">Run on a payload…</a> '
            '<a class="button" href="{}">Edit as YAML, diff, dry run…</a>',
            url,
            yaml_url,
        )

    @admin.display(description="Edit")
    def yaml_link(self, obj: Workflow) -> str:
        return format_html(
            '<a href="{}">YAML</a>', reverse("admin:automate_core_workflow_yaml", args=[obj.pk])
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        before = form.instance.current_version_id
        version = versions.snapshot(form.instance, author=request.user.get_username())
        if version.pk != before:
            self.message_user(request, f"Published {form.instance.name} v{version.number}.", messages.SUCCESS)

    @admin.action(description="Publish the selected workflows' rows as new versions (if changed)")
    def publish(self, request: HttpRequest, queryset: QuerySet[Workflow]) -> None:
        for workflow in queryset:
            versions.snapshot(workflow, author=request.user.get_username())
        self.message_user(request, "Published.", messages.SUCCESS)

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.trigger_view)
        yaml_view = self.admin_site.admin_view(self.yaml_view)
        return [
            path("<int:pk>/trigger/", view, name="automate_core_workflow_trigger"),
            path("<int:pk>/yaml/", yaml_view, name="automate_core_workflow_yaml"),
            path("yaml/", yaml_view, name="automate_core_workflow_yaml_add"),
            *super().get_urls(),
        ]

    def yaml_view(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        """The workflow as the YAML of the file format: checked, diffed, dry-run, saved (``editor``)."""
        workflow = None
        if pk is not None:
            workflow = get_object_or_404(Workflow.objects.select_related("current_version"), pk=pk)
            if not self.has_change_permission(request, workflow):
                raise PermissionDenied
        elif not self.has_add_permission(request):
            raise PermissionDenied
        return editor.editor_view(self, request, workflow)

    def trigger_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        workflow = get_object_or_404(Workflow, pk=pk)
        if not self.has_change_permission(request, workflow):
            return HttpResponseRedirect(reverse("admin:index"))
        form = TriggerForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                run = replay.trigger(
                    workflow.name,
                    form.cleaned_data["payload"],
                    source=form.cleaned_data["source"],
                    event_type=form.cleaned_data["event_type"],
                )
            except AutomateError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"Run #{run.pk} queued.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:automate_core_executionrun_change", args=[run.pk]))
        return form_page(
            self,
            request,
            form,
            title=f"Run {workflow.name} on a payload",
            intro="The run is queued for the workers, on the current version, whatever the trigger says.",
            submit="Queue the run",
        )


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(admin.ModelAdmin):
    list_display = ["workflow", "number", "created_at", "author", "comment"]
    list_filter = ["workflow"]
    fields = readonly_fields = ("workflow", "number", "created_at", "author", "comment", "definition_pretty")
    actions = ["rollback"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Definition")
    def definition_pretty(self, obj: WorkflowVersion) -> str:
        return pretty_json(obj.definition)

    @admin.action(description="Roll back to the selected version (published as a new version)")
    def rollback(self, request: HttpRequest, queryset: QuerySet[WorkflowVersion]) -> None:
        for version in queryset.select_related("workflow"):
            new = versions.rollback(version.workflow, version.number, author=request.user.get_username())
            self.message_user(request, f"{version.workflow.name}: v{new.number} = v{version.number}.")


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = ["name", "cron", "timezone", "source", "event_type", "payload", "enabled"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            definitions.validate_schedule("schedule", data.get("cron", ""), data.get("timezone") or "UTC")
        except definitions.DefinitionError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ["name", "cron", "timezone", "event_type", "enabled", "next_fire_at", "last_fired_at"]
    list_filter = ["enabled"]
    readonly_fields = ["next_fire_at", "last_fired_at", "last_event_id"]

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        if {"cron", "timezone", "enabled"} & set(form.changed_data):
            obj.next_fire_at = None  # the scheduler computes the next tick from the new cron
        super().save_model(request, obj, form, change)
