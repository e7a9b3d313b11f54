"""The workflow editor: a workflow as the YAML of the ``automate load`` file, checked, diffed, tried.

The page holds one workflow as an item of the file format (``workflows: [ ... ]``, what
``automate export`` writes). *Check* validates it exactly as ``automate load`` would, by loading
it in a transaction that is then rolled back (``definitions.load``: the same checks, the same
messages, nothing written), and shows the unified diff against the current version (the diff
``automate diff`` shows between versions). *Save* publishes it, only after a check of the very
same text on the very same current version: a text edited since, or a version published by
someone else meanwhile, is checked and diffed again first. *Dry run* runs the draft, up to one
of its steps, on a stored event in test mode (``execution.testmode``'s machinery: connectors in
dry run, secrets not read, nothing written or sent) and shows each step's input and output.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml
from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from automate_core import definitions
from automate_core.exceptions import AutomateError, PluginError, WorkflowError
from automate_core.execution.journal import MemoryJournal, MemoryRun
from automate_core.execution.runner import Plan, WorkflowRunner
from automate_core.models import Event, ExecutionRun, StepRun, Workflow, WorkflowVersion
from automate_core.outbox.store import ClaimedEvent
from automate_core.plugins import registry
from automate_core.rules import versions
from automate_core.rules.engine import spec_from_definition

NEW_WORKFLOW = """\
workflows:
- name: my_workflow
  trigger:
    source: shop
    event_type: order.*
  steps:
  - name: say
    connector: log
    action: info
    params:
      message: "order {{ event.payload.id }} received"
"""


class EditorError(definitions.DefinitionError):
    """The text is not one workflow of this page (said as ``automate load`` says its errors)."""


@dataclass(frozen=True, slots=True)
class Draft:
    """A checked text: its normalised definition, and what the file would hold after saving."""

    name: str
    definition: dict[str, Any]
    enabled: bool
    text: str  # the file as it will read back (defaults left out), to diff against


def file_text(definition: dict[str, Any], *, enabled: bool = True) -> str:
    """The workflow as a file item (``versions.exported``), with ``enabled: false`` when off."""
    item = versions.exported(definition)
    if not enabled:
        item = {"name": item.pop("name"), "enabled": False, **item}
    return yaml.safe_dump({"workflows": [item]}, sort_keys=False, allow_unicode=True, width=100)


def current_text(workflow: Workflow) -> str:
    version = workflow.current_version
    definition = version.definition if version else versions.definition_of(workflow)
    return file_text(definition, enabled=workflow.enabled)


def parse(text: str, workflow: Workflow | None) -> dict[str, Any]:
    """The text as a file holding exactly this one workflow (or one new workflow)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EditorError(f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise EditorError("the top level must be a mapping with 'workflows' (the automate load format).")
    others = sorted(set(data) - {"workflows"})
    if others:
        raise EditorError(
            f"this page edits one workflow: {', '.join(others)} are loaded with `automate load` "
            "(keep only 'workflows:' here)."
        )
    items = data.get("workflows")
    if not isinstance(items, list) or len(items) != 1:
        raise EditorError("workflows: this page edits one workflow; give a list of exactly one.")
    item = items[0]
    name = item.get("name") if isinstance(item, dict) else None
    if workflow is not None and isinstance(item, dict) and name != workflow.name:
        raise EditorError(
            f"workflows[0].name: this page edits {workflow.name!r}; to rename it, or to make another "
            f"workflow from it, load a file with `automate load` (got {name!r})."
        )
    if workflow is None and isinstance(name, str) and Workflow.objects.filter(name=name).exists():
        raise EditorError(
            f"workflows[0].name: a workflow named {name!r} exists already: edit it on its page."
        )
    return data


def check(text: str, workflow: Workflow | None, *, author: str) -> Draft:
    """Validate the text as ``automate load`` does (loaded, then rolled back) or raise its error."""
    data = parse(text, workflow)
    with transaction.atomic():  # a savepoint inside the request's transaction, if there is one
        definitions.load(data, author=author)
        name = data["workflows"][0]["name"]
        loaded = Workflow.objects.get(name=name)
        definition = versions.definition_of(loaded)
        # nothing of the load stays; only the configuration-generation sequence moves on (sequences
        # are not transactional), so workers reload the same rules once: harmless
        transaction.set_rollback(True)
    return Draft(name, definition, loaded.enabled, file_text(definition, enabled=loaded.enabled))


def save(text: str, workflow: Workflow | None, *, author: str) -> WorkflowVersion:
    """Load the text for real (one transaction, as ``automate load``); returns the current version."""
    data = parse(text, workflow)
    with transaction.atomic():
        if workflow is not None:  # the version the text was checked against is still the current one
            now = (
                Workflow.objects.select_for_update().filter(pk=workflow.pk).values_list("current_version_id")
            )
            if list(now) != [(workflow.current_version_id,)]:
                raise EditorError(
                    f"{workflow.name} was changed meanwhile (a new version was published): check again."
                )
        definitions.load(data, author=author)
        loaded = Workflow.objects.select_related("current_version").get(name=data["workflows"][0]["name"])
        assert loaded.current_version is not None
        return loaded.current_version


def diff(workflow: Workflow | None, draft: Draft) -> str:
    """The unified diff from the current version's file to the draft's ("" when they are equal)."""
    before = current_text(workflow) if workflow is not None else ""
    label = (
        f"{draft.name} v{workflow.current_version.number}"
        if workflow and workflow.current_version
        else "(new)"
    )
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            draft.text.splitlines(keepends=True),
            fromfile=label,
            tofile=f"{draft.name} (this text)",
        )
    )


def token(text: str, workflow: Workflow | None) -> str:
    """What a check vouches for: this text on this current version (Save needs it to match)."""
    version = workflow.current_version_id if workflow is not None else None
    return hashlib.sha256(f"{version}\0{text}".encode()).hexdigest()


# -- dry run ---------------------------------------------------------------------------------------


def dry_run(
    draft: Draft,
    workflow: Workflow | None,
    *,
    step: str,
    event_id: int | None = None,
    run_id: int | None = None,
) -> MemoryRun:
    """Run the draft up to ``step`` in test mode (nothing sent, nothing written), on stored event
    ``event_id``, or on the event of past run ``run_id`` with the outputs that run recorded for the
    steps before ``step`` reused (the step gets exactly the input it had then)."""
    names = [s["name"] for s in draft.definition["steps"]]
    if step not in names:
        raise WorkflowError(f"{draft.name} has no step {step!r}; its steps: {', '.join(names)}.")
    reuse: dict[str, tuple[str, Any]] = {}
    if run_id is not None:
        past = ExecutionRun.objects.select_related("event").filter(pk=run_id).first()
        if past is None:
            raise WorkflowError(f"No run #{run_id}.")
        event = past.event
        before = names[: names.index(step)]
        for record in StepRun.objects.filter(run=past, name__in=before).order_by("position", "id"):
            if record.status in ("succeeded", "skipped", "reused"):
                reuse[record.name] = ("skipped" if record.status == "skipped" else "succeeded", record.output)
    else:
        found = Event.objects.filter(pk=event_id).first() if event_id is not None else None
        if found is None:
            raise WorkflowError(
                f"No event #{event_id}." if event_id else "Name a stored event or a past run."
            )
        event = found
    number = workflow.current_version.number if workflow and workflow.current_version else 0
    spec = spec_from_definition(workflow.pk if workflow else 0, draft.name, None, number, draft.definition)
    claimed = ClaimedEvent(
        event.pk,
        event.source,
        event.event_type,
        event.payload,
        event.headers or {},
        event.trace_id,
        event.received_at,
    )

    async def go() -> MemoryRun:
        journal = MemoryJournal()
        plan = Plan(spec, reuse=reuse)
        outcome = await WorkflowRunner(journal, dry_run=True).run(plan, claimed, None, until=step)
        return journal.runs[outcome.run_id]

    return async_to_sync(go)()


def recent_events(workflow: Workflow | None, limit: int = 8) -> list[tuple[int, int, str]]:
    """Its latest runs (run id, event id, "source/type"), one per event, to pick one for a dry run."""
    if workflow is None:
        return []
    runs = ExecutionRun.objects.filter(workflow=workflow).order_by("-started_at").select_related("event")
    seen: dict[int, tuple[int, int, str]] = {}
    for r in runs[: limit * 3]:
        seen.setdefault(r.event_id, (r.pk, r.event_id, f"{r.event.source}/{r.event.event_type}"))
        if len(seen) == limit:
            break
    return list(seen.values())


def connector_reference() -> list[tuple[str, str]]:
    """(connector, its actions) for every installed connector, for the page's side panel."""
    out = []
    for code in sorted(registry.connectors().codes()):
        try:
            actions = getattr(registry.connectors().get_class(code), "actions", ()) or ()
        except PluginError as exc:
            out.append((code, f"(cannot be loaded: {exc})"))
            continue
        out.append((code, ", ".join(actions) or "(any action)"))
    return out


# -- the forms --------------------------------------------------------------------------------------


class EditorForm(forms.Form):
    text = forms.CharField(
        label="Workflow (YAML)",
        widget=forms.Textarea(
            attrs={"rows": 30, "class": "vLargeTextField automate-code automate-yaml", "spellcheck": "false"}
        ),
        strip=False,
    )
    checked = forms.CharField(widget=forms.HiddenInput, required=False)
    step = forms.CharField(required=False, label="Step")
    event = forms.IntegerField(required=False, min_value=1, label="Stored event id")
    run = forms.IntegerField(required=False, min_value=1, label="or a past run id")


def step_names(text: str) -> list[str]:
    """The step names of a text, as far as it parses (for the dry run's choice)."""
    try:
        data = yaml.safe_load(text)
        steps = data["workflows"][0]["steps"]
        return [s["name"] for s in steps if isinstance(s, dict) and isinstance(s.get("name"), str)]
    except (yaml.YAMLError, TypeError, KeyError, IndexError):
        return []


ERRORS = (AutomateError,)  # DefinitionError, EditorError, WorkflowError: each said on the page


def diff_lines(text: str) -> list[tuple[str, str]]:
    """(css class, line) of a unified diff, for the page."""
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    return [
        ("head" if line.startswith(("+++", "---")) else kinds.get(line[:1], "same"), line.rstrip("\n"))
        for line in text.splitlines(keepends=True)
    ]


def editor_view(
    model_admin: admin.ModelAdmin[Workflow], request: HttpRequest, workflow: Workflow | None
) -> HttpResponse:
    """The editor's page: GET shows the current text; POST checks, saves or dry-runs the text."""
    author = request.user.get_username()
    posted = request.method == "POST"
    text = request.POST.get("text", "") if posted else (current_text(workflow) if workflow else NEW_WORKFLOW)
    form = EditorForm(request.POST if posted else None, initial={"text": text})
    draft: Draft | None = None
    changes = ""
    result: MemoryRun | None = None
    dry_step = ""
    if posted and form.is_valid():
        action = request.POST.get("_action", "check")
        text = form.cleaned_data["text"]
        try:
            draft = check(text, workflow, author=author)
        except ERRORS as exc:
            form.add_error("text", str(exc))
        else:
            changes = diff(workflow, draft)
            if action == "save":
                if form.cleaned_data["checked"] != token(text, workflow):
                    model_admin.message_user(
                        request,
                        "The text, or the current version, changed since the last check: review the "
                        "diff below, then save.",
                        messages.WARNING,
                    )
                elif not changes:
                    model_admin.message_user(request, "No changes: nothing was published.", messages.INFO)
                else:
                    try:
                        version = save(text, workflow, author=author)
                    except ERRORS as exc:
                        form.add_error("text", str(exc))
                    else:
                        model_admin.message_user(
                            request, f"Published {draft.name} v{version.number}.", messages.SUCCESS
                        )
                        return HttpResponseRedirect(
                            reverse("admin:automate_core_workflow_yaml", args=[version.workflow_id])
                        )
            elif action == "dry_run":
                dry_step = form.cleaned_data.get("step") or draft.definition["steps"][-1]["name"]
                event_id, run_id = form.cleaned_data.get("event"), form.cleaned_data.get("run")
                if not event_id and not run_id:
                    form.add_error(
                        "event", "Give the id of a stored event (or of a past run) to run the step on."
                    )
                else:
                    try:
                        result = dry_run(draft, workflow, step=dry_step, event_id=event_id, run_id=run_id)
                    except ERRORS as exc:
                        form.add_error(None, str(exc))
    name = workflow.name if workflow else "a new workflow"
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Edit {name} as YAML" if workflow else "Add a workflow as YAML",
        "opts": model_admin.model._meta,
        "workflow": workflow,
        "form": form,
        "draft": draft,
        "diff": diff_lines(changes),
        "unchanged": draft is not None and not changes,
        "checked_token": token(text, workflow) if draft is not None else "",
        "result": result,
        "result_rows": [
            {
                "step": r,
                "input": json.dumps(r.input, indent=2, default=str),
                "output": None if r.output is None else json.dumps(r.output, indent=2, default=str),
            }
            for r in (result.steps if result else [])
        ],
        "dry_step": dry_step or request.POST.get("step", ""),
        "steps": [s["name"] for s in draft.definition["steps"]] if draft else step_names(text),
        "recent_events": recent_events(workflow),
        "reference": connector_reference(),
        "media": model_admin.media,
    }
    return TemplateResponse(request, "automate_core/admin/workflow_editor.html", context)
