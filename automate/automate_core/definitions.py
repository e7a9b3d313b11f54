"""Webhook sources and workflows as files (YAML or JSON), for version control.

``automate load FILE`` upserts everything in the file by name (sources by ``slug``, workflows by
``name``); a workflow's steps are replaced by the file's. The whole file loads in one transaction:
if anything in it is invalid, nothing changes and the error names the place in the file.

Format::

    sources:
      - slug: github            # POST /hooks/github/
        name: GitHub
        scheme: github          # hmac_sha256, standard_webhooks, stripe, slack, shopify, hmac, token, none
        secret_ref: env:GITHUB_HOOK
    workflows:
      - name: notify
        trigger: {source: github, event_type: "push"}   # shell-style globs
        max_attempts: 5
        steps:
          - name: post
            connector: http
            action: post
            params: {url: "https://example.com/hook", json: {ref: "{{ event.payload.ref }}"}}
            timeout: 10
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from automate_core.exceptions import AutomateError, PluginError, TemplateError
from automate_core.execution import templating
from automate_core.models import Step, WebhookSource, Workflow
from automate_core.plugins import registry


class DefinitionError(AutomateError):
    """The definitions file is invalid."""


_SOURCE_KEYS = {"slug", "name", "scheme", "secret_ref", "config", "enabled"}
_WORKFLOW_KEYS = {"name", "description", "enabled", "trigger", "max_attempts", "steps"}
_TRIGGER_KEYS = {"source", "event_type"}
_STEP_KEYS = {"name", "connector", "action", "params", "timeout"}


def read(path: str | Path) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise DefinitionError(
            f"{path}: not valid {'JSON' if str(path).endswith('.json') else 'YAML'}: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise DefinitionError(f"{path}: the top level must be a mapping with 'sources' and/or 'workflows'.")
    return data


def _check_keys(where: str, item: Any, allowed: set[str], required: set[str]) -> None:
    if not isinstance(item, dict):
        raise DefinitionError(f"{where}: expected a mapping, got {type(item).__name__}.")
    unknown = set(item) - allowed
    if unknown:
        raise DefinitionError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}.")
    missing = required - set(item)
    if missing:
        raise DefinitionError(f"{where}: missing {sorted(missing)}.")


def _full_clean(where: str, obj: Any, exclude: list[str] | None = None) -> None:
    try:
        obj.full_clean(exclude=exclude, validate_unique=False)
    except ValidationError as exc:
        details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        raise DefinitionError(f"{where}: {details}") from exc


def validate_step(where: str, step: dict[str, Any]) -> None:
    try:
        templating.validate(step.get("params", {}))
    except TemplateError as exc:
        raise DefinitionError(f"{where}.params: {exc}") from exc
    try:
        cls = registry.connectors().get_class(step["connector"])
    except PluginError as exc:
        raise DefinitionError(f"{where}.connector: {exc}") from exc
    actions = getattr(cls, "actions", ())
    if actions and step["action"] not in actions:
        raise DefinitionError(
            f"{where}.action: connector {step['connector']!r} has no action {step['action']!r} "
            f"(it has: {', '.join(actions)})."
        )


def load(data: dict[str, Any]) -> dict[str, int]:
    """Upsert the sources and workflows in ``data``; returns counts of what was written."""
    _check_keys("file", data, {"sources", "workflows"}, set())
    counts = {"sources": 0, "workflows": 0, "steps": 0}
    with transaction.atomic():
        for i, item in enumerate(data.get("sources") or []):
            where = f"sources[{i}]"
            _check_keys(where, item, _SOURCE_KEYS, {"slug"})
            source = WebhookSource.objects.filter(slug=item["slug"]).first() or WebhookSource(
                slug=item["slug"]
            )
            for key in _SOURCE_KEYS - {"slug"}:
                if key in item:
                    setattr(source, key, item[key])
            if source.needs_secret_ref and not source.secret_ref:
                raise DefinitionError(f"{where}: scheme {source.scheme} needs a secret_ref.")
            _full_clean(where, source)
            source.save()
            counts["sources"] += 1
        for i, item in enumerate(data.get("workflows") or []):
            where = f"workflows[{i}]"
            _check_keys(where, item, _WORKFLOW_KEYS, {"name", "steps"})
            trigger = item.get("trigger") or {}
            _check_keys(f"{where}.trigger", trigger, _TRIGGER_KEYS, set())
            workflow = Workflow.objects.filter(name=item["name"]).first() or Workflow(name=item["name"])
            workflow.description = item.get("description", workflow.description)
            workflow.enabled = item.get("enabled", True)
            workflow.source_pattern = trigger.get("source", "*")
            workflow.event_type_pattern = trigger.get("event_type", "*")
            workflow.max_attempts = item.get("max_attempts", workflow.max_attempts)
            _full_clean(where, workflow)
            workflow.save()
            steps = item["steps"]
            if not isinstance(steps, list) or not steps:
                raise DefinitionError(f"{where}.steps: a workflow needs a list of at least one step.")
            workflow.steps.all().delete()
            names: set[str] = set()
            for j, spec in enumerate(steps):
                swhere = f"{where}.steps[{j}]"
                _check_keys(swhere, spec, _STEP_KEYS, {"name", "connector", "action"})
                if spec["name"] in names:
                    raise DefinitionError(f"{swhere}.name: {spec['name']!r} is used twice.")
                names.add(spec["name"])
                validate_step(swhere, spec)
                step = Step(
                    workflow=workflow,
                    position=j,
                    name=spec["name"],
                    connector=spec["connector"],
                    action=spec["action"],
                    params=spec.get("params", {}),
                    timeout_seconds=spec.get("timeout"),
                )
                _full_clean(swhere, step, exclude=["workflow"])
                step.save()
                counts["steps"] += 1
            counts["workflows"] += 1
    return counts


def load_file(path: str | Path) -> dict[str, int]:
    return load(read(path))
