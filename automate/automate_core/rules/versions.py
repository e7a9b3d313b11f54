"""Workflow versions: immutable snapshots of a workflow's definition, diff and roll back.

The definition of a version is one item of the ``automate load`` file format, normalised (every
key present, defaults filled in). :func:`snapshot` compares the workflow's rows with its current
version and publishes a new version only when something changed; the engine runs the current
version, and every run records the version it ran. Rolling back publishes a *new* version whose
definition equals the old one: history only grows.
"""

from __future__ import annotations

import difflib
from typing import Any

import yaml
from django.db import transaction

from automate_core.exceptions import WorkflowError
from automate_core.models import Step, Workflow, WorkflowVersion
from automate_core.rules.admission import ADMISSION_KEYS

STEP_DEFAULTS: dict[str, Any] = {
    "params": {},
    "condition": "",
    "timeout": None,
    "retry": {"max_attempts": 1, "backoff_seconds": 1.0},
    "continue_on_error": False,
}


def definition_of(workflow: Workflow) -> dict[str, Any]:
    """The normalised definition of the workflow's rows as they are now."""
    steps = list(workflow.steps.order_by("position", "id"))
    return {
        "name": workflow.name,
        "description": workflow.description,
        "trigger": {
            "source": workflow.source_pattern,
            "event_type": workflow.event_type_pattern,
            "condition": workflow.condition,
        },
        "retry": {
            "max_attempts": workflow.max_attempts,
            "base_seconds": workflow.retry_base_seconds,
            "max_seconds": workflow.retry_max_seconds,
        },
        "concurrency": {"limit": workflow.concurrency_limit, "key": workflow.concurrency_key},
        **_declared_secrets(workflow),
        **(workflow.admission or {}),  # only the admission keys it sets (rules.admission)
        **_grouping(workflow),
        "steps": [
            {
                "name": s.name,
                **({"kind": s.kind} if s.kind != "action" else {}),
                "connector": s.connector,
                "action": s.action,
                "params": s.params,
                "condition": s.condition,
                "timeout": s.timeout_seconds,
                "retry": {"max_attempts": s.retry_max_attempts, "backoff_seconds": s.retry_backoff_seconds},
                "continue_on_error": s.continue_on_error,
            }
            for s in steps
        ],
    }


def _declared_secrets(workflow: Workflow) -> dict[str, Any]:
    """The workflow's ``secrets`` list: the one being applied, else the current version's (the list
    lives in the versions' definitions, carried from one version to the next)."""
    declared = getattr(workflow, "_declared_secrets", None)
    if declared is None and workflow.current_version_id:
        current = WorkflowVersion.objects.filter(pk=workflow.current_version_id).first()
        declared = (current.definition or {}).get("secrets") if current else None
    return {"secrets": list(declared)} if declared else {}


GROUPING = ("debounce", "batch")


def _grouping(workflow: Workflow) -> dict[str, Any]:
    """The workflow's ``debounce`` or ``batch`` (like ``secrets``, kept in the versions only)."""
    carried = getattr(workflow, "_grouping", None)
    if carried is None and workflow.current_version_id:
        current = WorkflowVersion.objects.filter(pk=workflow.current_version_id).first()
        carried = {k: v for k in GROUPING if (v := ((current.definition or {}) if current else {}).get(k))}
    return dict(carried or {})


def snapshot(workflow: Workflow, *, author: str = "", comment: str = "") -> WorkflowVersion:
    """Publish the workflow's rows as a new version if they differ from the current one."""
    with transaction.atomic():
        Workflow.objects.select_for_update().filter(pk=workflow.pk).first()  # one publisher at a time
        definition = definition_of(workflow)
        current = WorkflowVersion.objects.filter(workflow=workflow).order_by("-number").first()
        if current is not None and current.definition == definition:
            if workflow.current_version_id != current.pk:
                Workflow.objects.filter(pk=workflow.pk).update(current_version=current)
                workflow.current_version = current
            return current
        version = WorkflowVersion.objects.create(
            workflow=workflow,
            number=(current.number + 1) if current else 1,
            definition=definition,
            author=author,
            comment=comment,
        )
        register_wait_patterns(definition)
        Workflow.objects.filter(pk=workflow.pk).update(current_version=version)
        workflow.current_version = version
        return version


def register_wait_patterns(definition: dict[str, Any]) -> None:
    """Remember what this version's ``wait_for_event`` steps correlate on (``models.flow``)."""
    from automate_core.models import WaitPattern
    from automate_core.rules.flow import iter_steps

    for step in iter_steps(definition["steps"]):
        if step.get("kind") == "wait_for_event":
            p = step["params"]
            WaitPattern.objects.get_or_create(source=p["source"], event_type=p["event_type"], path=p["path"])


def apply(workflow: Workflow, definition: dict[str, Any]) -> None:
    """Write a normalised definition into the workflow's rows (the steps are replaced)."""
    trigger, retry, concurrency = definition["trigger"], definition["retry"], definition["concurrency"]
    workflow.description = definition.get("description", "")
    workflow.source_pattern = trigger["source"]
    workflow.event_type_pattern = trigger["event_type"]
    workflow.condition = trigger["condition"]
    workflow.max_attempts = retry["max_attempts"]
    workflow.retry_base_seconds = retry["base_seconds"]
    workflow.retry_max_seconds = retry["max_seconds"]
    workflow.concurrency_limit = concurrency["limit"]
    workflow.concurrency_key = concurrency["key"]
    workflow._declared_secrets = definition.get("secrets") or []  # type: ignore[attr-defined]
    workflow.admission = {k: definition[k] for k in ADMISSION_KEYS if k in definition}
    workflow._grouping = {k: definition[k] for k in GROUPING if definition.get(k)}  # type: ignore[attr-defined]
    workflow.save()
    workflow.steps.all().delete()
    for position, spec in enumerate(definition["steps"]):
        Step.objects.create(
            workflow=workflow,
            position=position,
            name=spec["name"],
            kind=spec.get("kind", "action"),
            connector=spec["connector"],
            action=spec["action"],
            params=spec["params"],
            condition=spec["condition"],
            timeout_seconds=spec["timeout"],
            retry_max_attempts=spec["retry"]["max_attempts"],
            retry_backoff_seconds=spec["retry"]["backoff_seconds"],
            continue_on_error=spec["continue_on_error"],
        )


def get_version(workflow: Workflow, number: int | None = None) -> WorkflowVersion:
    versions = WorkflowVersion.objects.filter(workflow=workflow)
    version = (
        versions.order_by("-number").first() if number is None else versions.filter(number=number).first()
    )
    if version is None:
        known = ", ".join(str(n) for n in versions.order_by("number").values_list("number", flat=True))
        raise WorkflowError(f"{workflow.name} has no version {number}; it has: {known or 'none'}.")
    return version


def rollback(workflow: Workflow, number: int, *, author: str = "") -> WorkflowVersion:
    """Make version ``number``'s definition current again, as a new version."""
    with transaction.atomic():
        old = get_version(workflow, number)
        apply(workflow, old.definition)
        return snapshot(workflow, author=author, comment=f"rollback to v{number}")


def exported(definition: dict[str, Any]) -> dict[str, Any]:
    """A definition as a file item: defaults left out, so files stay short and readable."""
    out: dict[str, Any] = {"name": definition["name"]}
    if definition.get("description"):
        out["description"] = definition["description"]
    trigger = {k: v for k, v in definition["trigger"].items() if v not in ("", None)}
    out["trigger"] = trigger
    retry = {k: v for k, v in definition["retry"].items() if v is not None}
    if retry != {"max_attempts": 5}:
        out["retry"] = retry
    if definition["concurrency"]["limit"] is not None:
        out["concurrency"] = {k: v for k, v in definition["concurrency"].items() if v not in ("", None)}
    if definition.get("secrets"):
        out["secrets"] = list(definition["secrets"])
    out.update({k: definition[k] for k in ADMISSION_KEYS if k in definition})
    for key in GROUPING:  # debounce / batch, as normalised (durations in seconds)
        if definition.get(key):
            out[key] = {k: v for k, v in definition[key].items() if v not in ("", None)}
    out["steps"] = [exported_step(spec) for spec in definition["steps"]]
    return out


def exported_step(spec: dict[str, Any]) -> dict[str, Any]:
    """A normalised step as the file writes it (constructs in their own keys)."""
    kind = spec.get("kind", "action")
    if kind == "action":
        action = {"name": spec["name"], "connector": spec["connector"], "action": spec["action"]}
        for key, default in STEP_DEFAULTS.items():
            if spec.get(key, default) != default:
                action[key] = spec[key]
        return action
    p = spec["params"]
    inner = _exported_inner
    step: dict[str, Any] = {"name": spec["name"]}
    if kind == "for_each":
        step.update({"for_each": p["items"], "concurrency": p["concurrency"], "step": inner(p["step"])})
    elif kind == "parallel":
        step["parallel"] = [inner(b) for b in p["branches"]]
    elif kind == "switch":
        switch: dict[str, Any] = {
            "on": p["on"],
            "cases": {k: [exported_step(c) for c in v] for k, v in p["cases"].items()},
        }
        if p.get("default"):
            switch["default"] = [exported_step(c) for c in p["default"]]
        step["switch"] = switch
    elif kind == "wait_for_event":
        wait = {"source": p["source"], "event_type": p["event_type"],
                "match": {"path": f"payload.{p['path']}", "equals": p["equals"]}}  # fmt: skip
        wait.update({k: p[k] for k in ("timeout", "lookback") if p.get(k) is not None})
        if p["on_timeout"] != "continue":
            wait["on_timeout"] = p["on_timeout"]
        step["wait_for_event"] = wait
    elif kind == "approval":
        approval = {k: p[k] for k in ("prompt", "timeout", "on_timeout") if p.get(k) is not None}
        if p.get("notify"):
            approval["notify"] = inner(p["notify"])
        step["approval"] = approval
    else:  # sleep, call
        step[kind] = {k: v for k, v in p.items() if v is not None}
    for key in ("condition", "continue_on_error"):
        if spec.get(key):
            step[key] = spec[key]
    return step


def _exported_inner(spec: dict[str, Any]) -> dict[str, Any]:
    """A construct's inner step: its name is the construct's (``reserve[]``), not the file's."""
    out = exported_step(spec)
    out.pop("name", None)
    return out


def to_yaml(definitions: list[dict[str, Any]]) -> str:
    """A loadable file (``automate load``) holding these workflow definitions."""
    return yaml.safe_dump(
        {"workflows": [exported(d) for d in definitions]}, sort_keys=False, allow_unicode=True, width=100
    )


def diff(workflow: Workflow, a: int, b: int | None = None) -> str:
    """Unified diff of two versions' files (``b`` defaults to the latest)."""
    old, new = get_version(workflow, a), get_version(workflow, b)
    return "".join(
        difflib.unified_diff(
            to_yaml([old.definition]).splitlines(keepends=True),
            to_yaml([new.definition]).splitlines(keepends=True),
            fromfile=f"{workflow.name} v{old.number}",
            tofile=f"{workflow.name} v{new.number}",
        )
    )
