"""``/api/v1/workflows``: list, read with versions, deploy a definitions file, roll back, enable.

``PUT /workflows`` takes a file in the ``automate load`` format (sources, workflows, schedules)
as JSON and loads it with :func:`automate_core.definitions.load`: one transaction, every error
naming its place in the file (``workflows[0].steps[1].connector: ...``), nothing written when
anything is invalid. ``?dry_run=true`` runs the very same load and rolls it back, answering the
counts and, per workflow, the diff of its file against the current version.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.http import HttpRequest
from ninja import Path, Query, Router

from automate_core import definitions
from automate_core.api.auth import Principal, TokenAuth, principal
from automate_core.api.common import answers, audited, not_found, record
from automate_core.api.schemas import (
    DefinitionsIn,
    LoadOut,
    RollbackIn,
    Toggled,
    VersionOut,
    WorkflowDetail,
    WorkflowOut,
)
from automate_core.models import Workflow, WorkflowVersion
from automate_core.rules import versions

router = Router(tags=["workflows"])

Name = Path(..., min_length=1, max_length=200)


def _summary(w: Workflow) -> dict[str, Any]:
    return {
        "name": w.name,
        "description": w.description,
        "enabled": w.enabled,
        "current_version": w.current_version.number if w.current_version else None,
        "trigger": {"source": w.source_pattern, "event_type": w.event_type_pattern, "condition": w.condition},
    }


@router.get(
    "",
    auth=TokenAuth("workflows:read"),
    response=answers({200: list[WorkflowOut]}),
    summary="Every workflow, by name",
)
async def list_workflows(request: HttpRequest) -> list[WorkflowOut]:
    rows = Workflow.objects.select_related("current_version").order_by("name")
    return [WorkflowOut(**_summary(w)) async for w in rows]


async def _workflow(name: str) -> Workflow:
    found = await Workflow.objects.select_related("current_version").filter(name=name).afirst()
    if found is None:
        raise not_found(f"workflow named {name!r}")
    return found


@router.get(
    "/{name}",
    auth=TokenAuth("workflows:read"),
    response=answers({200: WorkflowDetail}, not_found=True),
    summary="One workflow: its current definition and every version",
)
async def get_workflow(request: HttpRequest, name: str = Name) -> WorkflowDetail:
    w = await _workflow(name)
    history = [
        VersionOut(
            number=v.number,
            author=v.author,
            comment=v.comment,
            created_at=v.created_at,
            current=v.pk == w.current_version_id,
        )
        async for v in WorkflowVersion.objects.filter(workflow=w).order_by("-number")
    ]
    definition = w.current_version.definition if w.current_version else None
    return WorkflowDetail(**_summary(w), definition=definition, versions=history)


class _DryRun(Exception):
    def __init__(self, result: LoadOut) -> None:
        self.result = result


def _files(names: list[str]) -> dict[str, str]:
    found = {}
    for w in Workflow.objects.select_related("current_version").filter(name__in=names):
        found[w.name] = versions.to_yaml([w.current_version.definition]) if w.current_version else ""
    return found


def _load(data: dict[str, Any], dry_run: bool, who: Principal) -> LoadOut:
    import difflib

    names = [
        item["name"]
        for item in data.get("workflows") or []
        if isinstance(item, dict) and isinstance(item.get("name"), str)
    ]
    try:
        with transaction.atomic():
            before = _files(names)
            counts = definitions.load(data, author=who.actor)
            after = _files(names)
            diff = {
                name: "".join(
                    difflib.unified_diff(
                        before.get(name, "").splitlines(keepends=True),
                        after.get(name, "").splitlines(keepends=True),
                        fromfile=f"{name} (current)",
                        tofile=f"{name} (file)",
                    )
                )
                for name in names
            }
            result = LoadOut(dry_run=dry_run, counts=counts, diff=diff)
            if dry_run:
                raise _DryRun(result)
            record(who, "workflows.load", ",".join(names) or "definitions", {"counts": counts})
            return result
    except _DryRun as rolled_back:
        return rolled_back.result


@router.put(
    "",
    auth=TokenAuth("workflows:write"),
    response=answers({200: LoadOut}),
    summary="Deploy a definitions file (the automate load format); dry_run validates and diffs",
)
async def put_workflows(request: HttpRequest, body: DefinitionsIn, dry_run: bool = Query(False)) -> LoadOut:
    data = body.model_dump(exclude_none=True)
    return await sync_to_async(_load, thread_sensitive=True)(data, dry_run, principal(request))


@router.post(
    "/{name}/rollback",
    auth=TokenAuth("workflows:write"),
    response=answers({200: WorkflowOut}, not_found=True),
    summary="Make an earlier version current again (as a new version)",
)
async def rollback(request: HttpRequest, body: RollbackIn, name: str = Name) -> WorkflowOut:
    w = await _workflow(name)
    who = principal(request)
    version = await audited(
        who,
        "workflows.rollback",
        f"workflow:{name}",
        lambda: versions.rollback(w, body.to, author=who.actor),
        lambda v: {"to": body.to, "new_version": v.number},
    )
    w.current_version = version
    return WorkflowOut(**_summary(w))


async def _toggle(request: HttpRequest, name: str, enabled: bool) -> Toggled:
    await _workflow(name)
    await audited(
        principal(request),
        "workflows.enable" if enabled else "workflows.disable",
        f"workflow:{name}",
        lambda: Workflow.objects.filter(name=name).update(enabled=enabled),
        lambda n: {},
    )
    return Toggled(name=name, enabled=enabled)


@router.post(
    "/{name}/enable",
    auth=TokenAuth("workflows:write"),
    response=answers({200: Toggled}, not_found=True),
    summary="Enable a workflow",
)
async def enable(request: HttpRequest, name: str = Name) -> Toggled:
    return await _toggle(request, name, True)


@router.post(
    "/{name}/disable",
    auth=TokenAuth("workflows:write"),
    response=answers({200: Toggled}, not_found=True),
    summary="Disable a workflow (events no longer start it)",
)
async def disable(request: HttpRequest, name: str = Name) -> Toggled:
    return await _toggle(request, name, False)
