"""Webhook sources, workflows and schedules as files (YAML or JSON), for version control.

``automate load FILE`` upserts everything in the file by name (sources by ``slug``, workflows and
schedules by ``name``); a workflow's steps are replaced by the file's, and a workflow whose
definition changed gets a new version (``rules.versions``). The whole file loads in one
transaction: if anything in it is invalid, nothing changes and the error names the place in the
file. The format is documented with examples in docs/workflows.md; a source's ``scheme`` is one
of hmac_sha256, standard_webhooks, stripe, github, slack, shopify, hmac, token, none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from automate_core.exceptions import AutomateError, PluginError, TemplateError
from automate_core.execution import templating
from automate_core.models import Schedule, WebhookSource, Workflow
from automate_core.models.workflow import NAME_VALIDATOR
from automate_core.plugins import registry
from automate_core.rules import versions


class DefinitionError(AutomateError):
    """The definitions file is invalid."""


_SOURCE_KEYS = {"slug", "name", "scheme", "secret_ref", "config", "enabled"}
_WORKFLOW_KEYS = {
    "name",
    "description",
    "enabled",
    "trigger",
    "max_attempts",
    "retry",
    "concurrency",
    "steps",
    "secrets",
}
_TRIGGER_KEYS = {"source", "event_type", "condition"}
_WORKFLOW_RETRY_KEYS = {"max_attempts", "base_seconds", "max_seconds"}
_CONCURRENCY_KEYS = {"limit", "key"}
_STEP_KEYS = {"name", "connector", "action", "params", "condition", "timeout", "retry", "continue_on_error"}
_STEP_RETRY_KEYS = {"max_attempts", "backoff_seconds"}
_SCHEDULE_KEYS = {"name", "cron", "timezone", "source", "event_type", "payload", "enabled"}


def read(path: str | Path) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise DefinitionError(
            f"{path}: not valid {'JSON' if str(path).endswith('.json') else 'YAML'}: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise DefinitionError(
            f"{path}: the top level must be a mapping with 'sources', 'workflows' and/or 'schedules'."
        )
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


def _number(where: str, value: Any, *, minimum: float, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        kind = "an integer" if integer else "a number"
        raise DefinitionError(f"{where}: expected {kind} of at least {minimum:g}, got {value!r}.")
    return value


def validate_condition(where: str, source: Any) -> str:
    if not isinstance(source, str):
        raise DefinitionError(
            f"{where}: a condition is an expression in a string, e.g. 'event.payload.x > 1'."
        )
    if source.strip():
        try:
            templating.validate_condition(source)
        except TemplateError as exc:
            raise DefinitionError(f"{where}: {exc}") from exc
    return source.strip()


def validate_step(where: str, step: dict[str, Any]) -> None:
    """Templates compile, the connector exists and has the action (for the admin and the loader)."""
    try:
        templating.validate(step.get("params", {}))
    except TemplateError as exc:
        raise DefinitionError(f"{where}.params: {exc}") from exc
    validate_condition(f"{where}.condition", step.get("condition") or "")
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


def validate_concurrency_key(where: str, key: str) -> None:
    try:
        templating.validate(key)
        if templating.collect_secret_names(key):
            raise TemplateError("A concurrency key cannot read secrets (it is stored in clear).")
    except TemplateError as exc:
        raise DefinitionError(f"{where}: {exc}") from exc


def normalize_step(where: str, spec: Any) -> dict[str, Any]:
    _check_keys(where, spec, _STEP_KEYS, {"name", "connector", "action"})
    name = spec["name"]
    try:
        NAME_VALIDATOR(name)
    except ValidationError as exc:
        raise DefinitionError(f"{where}.name: {name!r}: {' '.join(exc.messages)}") from exc
    retry = spec.get("retry") or {}
    _check_keys(f"{where}.retry", retry, _STEP_RETRY_KEYS, set())
    timeout = spec.get("timeout")
    step = {
        "name": name,
        "connector": spec["connector"],
        "action": spec["action"],
        "params": spec.get("params", {}),
        "condition": spec.get("condition") or "",
        "timeout": None if timeout is None else float(_number(f"{where}.timeout", timeout, minimum=0.001)),
        "retry": {
            "max_attempts": _number(
                f"{where}.retry.max_attempts", retry.get("max_attempts", 1), minimum=1, integer=True
            ),
            "backoff_seconds": float(
                _number(f"{where}.retry.backoff_seconds", retry.get("backoff_seconds", 1.0), minimum=0)
            ),
        },
        "continue_on_error": bool(spec.get("continue_on_error", False)),
    }
    validate_step(where, step)
    return step


def normalize_workflow(where: str, item: Any) -> dict[str, Any]:
    """A file's workflow item as a normalised definition (see ``rules.versions``), validated."""
    _check_keys(where, item, _WORKFLOW_KEYS, {"name", "steps"})
    trigger = item.get("trigger") or {}
    _check_keys(f"{where}.trigger", trigger, _TRIGGER_KEYS, set())
    retry = item.get("retry") or {}
    _check_keys(f"{where}.retry", retry, _WORKFLOW_RETRY_KEYS, set())
    if "max_attempts" in item and "max_attempts" in retry:
        raise DefinitionError(f"{where}: give max_attempts once (top level or under retry).")
    concurrency = item.get("concurrency") or {}
    _check_keys(f"{where}.concurrency", concurrency, _CONCURRENCY_KEYS, set())
    limit = concurrency.get("limit")
    key = concurrency.get("key") or ""
    if limit is not None:
        _number(f"{where}.concurrency.limit", limit, minimum=1, integer=True)
    elif key:
        raise DefinitionError(f"{where}.concurrency: a key needs a limit (e.g. limit: 1).")
    validate_concurrency_key(f"{where}.concurrency.key", key)
    steps = item["steps"]
    if not isinstance(steps, list) or not steps:
        raise DefinitionError(f"{where}.steps: a workflow needs a list of at least one step.")
    normalized, names = [], set()
    for j, spec in enumerate(steps):
        step = normalize_step(f"{where}.steps[{j}]", spec)
        if step["name"] in names:
            raise DefinitionError(f"{where}.steps[{j}].name: {step['name']!r} is used twice.")
        names.add(step["name"])
        normalized.append(step)
    declared = _secret_scope(where, item, normalized)

    def seconds(name: str) -> float | None:
        value = retry.get(name)
        return None if value is None else float(_number(f"{where}.retry.{name}", value, minimum=0))

    max_attempts = item.get("max_attempts", retry.get("max_attempts", 5))
    return {
        "name": item["name"],
        "description": item.get("description", ""),
        "trigger": {
            "source": trigger.get("source", "*"),
            "event_type": trigger.get("event_type", "*"),
            "condition": validate_condition(f"{where}.trigger.condition", trigger.get("condition") or ""),
        },
        "retry": {
            "max_attempts": _number(f"{where}.max_attempts", max_attempts, minimum=1, integer=True),
            "base_seconds": seconds("base_seconds"),
            "max_seconds": seconds("max_seconds"),
        },
        "concurrency": {"limit": limit, "key": key},
        "steps": normalized,
        **({"secrets": list(declared)} if declared else {}),
    }


def _secret_scope(where: str, item: dict[str, Any], steps: list[dict[str, Any]]) -> tuple[str, ...]:
    """The workflow's declared secrets (``automate_governance.secrets.scope``), checked."""
    from automate_governance.secrets import scope

    try:
        return scope.check_workflow(where, item, steps)
    except ValueError as exc:
        raise DefinitionError(str(exc)) from exc


def validate_schedule(where: str, cron: str, timezone: str) -> None:
    from croniter import croniter

    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise DefinitionError(
            f"{where}.cron: {cron!r} is not a cron expression (five fields: minute hour day month "
            f"weekday, e.g. '*/5 * * * *')."
        )
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DefinitionError(
            f"{where}.timezone: unknown time zone {timezone!r} (e.g. Europe/Paris)."
        ) from exc


def _load_sources(items: list[Any], counts: dict[str, int]) -> None:
    for i, item in enumerate(items):
        where = f"sources[{i}]"
        _check_keys(where, item, _SOURCE_KEYS, {"slug"})
        source = WebhookSource.objects.filter(slug=item["slug"]).first() or WebhookSource(slug=item["slug"])
        for key in _SOURCE_KEYS - {"slug"}:
            if key in item:
                setattr(source, key, item[key])
        if source.needs_secret_ref and not source.secret_ref:
            raise DefinitionError(f"{where}: scheme {source.scheme} needs a secret_ref.")
        _full_clean(where, source)
        source.save()
        counts["sources"] += 1


def _load_workflows(items: list[Any], counts: dict[str, int], author: str) -> None:
    for i, item in enumerate(items):
        where = f"workflows[{i}]"
        definition = normalize_workflow(where, item)
        workflow = Workflow.objects.filter(name=definition["name"]).first() or Workflow(
            name=definition["name"]
        )
        workflow.enabled = item.get("enabled", True)
        probe = Workflow(
            name=definition["name"],
            max_attempts=definition["retry"]["max_attempts"],
            concurrency_limit=definition["concurrency"]["limit"],
        )
        _full_clean(where, probe, exclude=["current_version"])
        versions.apply(workflow, definition)
        before = workflow.current_version_id
        version = versions.snapshot(workflow, author=author)
        counts["workflows"] += 1
        counts["steps"] += len(definition["steps"])
        counts["versions"] += int(version.pk != before)


def _load_schedules(items: list[Any], counts: dict[str, int]) -> None:
    for i, item in enumerate(items):
        where = f"schedules[{i}]"
        _check_keys(where, item, _SCHEDULE_KEYS, {"name", "cron"})
        timezone = item.get("timezone", "UTC")
        validate_schedule(where, item["cron"], timezone)
        schedule = Schedule.objects.filter(name=item["name"]).first() or Schedule(name=item["name"])
        changed = schedule.cron != item["cron"] or schedule.timezone != timezone
        schedule.cron, schedule.timezone = item["cron"], timezone
        schedule.source = item.get("source", "schedule")
        schedule.event_type = item.get("event_type", item["name"])
        schedule.payload = item.get("payload", {})
        schedule.enabled = item.get("enabled", True)
        if changed or not schedule.enabled:
            schedule.next_fire_at = None  # the scheduler computes the next tick from the new cron
        _full_clean(where, schedule)
        schedule.save()
        counts["schedules"] += 1


def load(data: dict[str, Any], *, author: str = "automate load") -> dict[str, int]:
    """Upsert the sources, workflows and schedules in ``data``; returns counts of what was written."""
    _check_keys("file", data, {"sources", "workflows", "schedules"}, set())
    counts = {"sources": 0, "workflows": 0, "steps": 0, "versions": 0, "schedules": 0}
    for section in ("sources", "workflows", "schedules"):
        if not isinstance(data.get(section) or [], list):
            raise DefinitionError(f"{section}: expected a list.")
    with transaction.atomic():
        _load_sources(data.get("sources") or [], counts)
        _load_workflows(data.get("workflows") or [], counts, author)
        _load_schedules(data.get("schedules") or [], counts)
    return counts


def load_file(path: str | Path) -> dict[str, int]:
    return load(read(path))
