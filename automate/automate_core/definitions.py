"""Webhook sources, workflows and schedules as files (YAML or JSON), for version control.

``automate load FILE`` upserts everything in the file by name (sources by ``slug``, workflows and
schedules by ``name``); a workflow's steps are replaced by the file's, and a workflow whose
definition changed gets a new version (``rules.versions``). The whole file loads in one
transaction: if anything in it is invalid, nothing changes and the error names the place in the
file. The format is documented with examples in docs/workflows.md; a source's ``scheme`` is one
of hmac_sha256, standard_webhooks, stripe, github, slack, shopify, hmac, token, none.
"""

from __future__ import annotations

import difflib
import json
import re
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
from automate_core.rules.admission import ADMISSION_KEYS
from automate_core.rules.flow import CallGraphError, check_calls, iter_steps


class DefinitionError(AutomateError):
    """The definitions file is invalid. ``errors`` lists every problem found, each with its place."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors if errors is not None else [message]


class _Collector:
    """Gathers the errors of a whole file, so that one load reports them all."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def check(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DefinitionError as exc:
            self.errors.extend(exc.errors)
            return None

    def raise_any(self) -> None:
        if len(self.errors) == 1:
            raise DefinitionError(self.errors[0])
        if self.errors:
            summary = f"\n({len(self.errors)} errors; nothing was loaded.)"
            raise DefinitionError("\n".join(self.errors) + summary, list(self.errors))


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
    *ADMISSION_KEYS,  # throttle, rate_limit, singleton, queue, priority, fairness (execution/controls/)
    "debounce",
    "batch",
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


def validate_templates(where: str, value: Any) -> None:
    """Every template in ``value`` compiles; the error names the parameter (``.params.body.title``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            validate_templates(f"{where}.{key}", item)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            validate_templates(f"{where}[{i}]", item)
    else:
        try:
            templating.validate(value)
        except TemplateError as exc:
            raise DefinitionError(f"{where}: {exc}") from exc


_STEP_REF = re.compile(r"\bsteps\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*['\"]([A-Za-z_]\w*)['\"]\s*\])")


def _strings(value: Any) -> Any:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def check_step_references(where: str, steps: list[dict[str, Any]]) -> None:
    """Every ``steps.<name>`` in a template or condition names a step of this workflow."""
    names = [s["name"] for s in iter_steps(steps) if "[" not in s["name"] and "." not in s["name"]]
    errors = []
    for j, top in enumerate(steps):
        for step in iter_steps([top]):
            texts = [*_strings(step.get("params")), step.get("condition") or ""]
            for text in texts:
                for match in _STEP_REF.finditer(text):
                    name = match.group(1) or match.group(2)
                    if name in names:
                        continue
                    close = difflib.get_close_matches(name, names, n=1)
                    hint = f"; did you mean steps.{close[0]}?" if close else ""
                    errors.append(
                        f"{where}.steps[{j}] ({step['name']}): refers to steps.{name}, which is not a "
                        f"step of this workflow (its steps: {', '.join(names)}){hint}"
                    )
    if errors:
        raise DefinitionError(errors[0], sorted(set(errors), key=errors.index))


def validate_step(where: str, step: dict[str, Any]) -> None:
    """Templates compile, the connector exists and has the action (for the admin and the loader)."""
    validate_templates(f"{where}.params", step.get("params", {}))
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


def _kind(where: str, spec: Any) -> str:
    """``action`` for a connector call, else the one construct key the step has."""
    from automate_core.execution import constructs

    if not isinstance(spec, dict):
        raise DefinitionError(f"{where}: expected a mapping, got {type(spec).__name__}.")
    kinds = [k for k in constructs.CONSTRUCTS if k in spec]
    if len(kinds) > 1 or (kinds and "connector" in spec):
        both = kinds + (["connector"] if "connector" in spec else [])
        raise DefinitionError(f"{where}: a step is one thing; it has {', '.join(both)}.")
    if kinds:
        return kinds[0]
    if "connector" not in spec:
        raise DefinitionError(
            f"{where}: a step needs a connector (with an action), or one of: "
            f"{', '.join(constructs.CONSTRUCTS)}."
        )
    return "action"


def normalize_step(
    where: str, spec: Any, *, depth: int = 0, name: str | None = None, durable: bool = True,
    load: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """A file's step as a normalised definition, validated. ``name`` names a construct's inner
    step (``reserve[]``); ``durable`` is False where a run cannot park (inside for_each/parallel)."""
    from automate_core.conf import settings
    from automate_core.execution import constructs
    from automate_core.execution.constructs.base import DefinitionProblem, LoadContext

    kind = _kind(where, spec)
    if depth > int(settings.FLOW_MAX_DEPTH):
        raise DefinitionError(
            f"{where}: steps nest {depth} deep; the most is {settings.FLOW_MAX_DEPTH} "
            f"(AUTOMATE_FLOW_MAX_DEPTH)."
        )
    if name is not None:
        spec = {**spec, "name": name}
    if kind == "action":
        return _normalize_action(where, spec, named=name is None)
    construct = constructs.get(kind)
    if not durable and construct.durable:
        raise DefinitionError(
            f"{where}: a {kind} step cannot stand inside for_each or parallel (a run parks only "
            f"at the top level or in a switch case)."
        )
    allowed = {"name", "condition", "continue_on_error", kind} | set(construct.extra_keys)
    _check_keys(where, spec, allowed, {"name", kind})
    if name is None:
        _check_name(where, spec["name"])
    context = load if load is not None else LoadContext(depth=depth)

    def child(child_where: str, child_spec: Any, *, name: str | None = None, durable: bool = True) -> Any:
        return normalize_step(
            child_where, child_spec, depth=depth + 1, name=name, durable=durable, load=context
        )

    context.step = child
    try:
        params = construct.normalize(where, spec, context)
    except DefinitionProblem as exc:
        raise DefinitionError(str(exc)) from exc
    return {
        "name": spec["name"],
        "kind": kind,
        "connector": "",
        "action": "",
        "params": params,
        "condition": validate_condition(f"{where}.condition", spec.get("condition") or ""),
        "timeout": None,
        "retry": {"max_attempts": 1, "backoff_seconds": 1.0},
        "continue_on_error": bool(spec.get("continue_on_error", False)),
    }


def _check_name(where: str, name: Any) -> None:
    try:
        NAME_VALIDATOR(name)
    except ValidationError as exc:
        raise DefinitionError(f"{where}.name: {name!r}: {' '.join(exc.messages)}") from exc


def _normalize_action(where: str, spec: Any, *, named: bool = True) -> dict[str, Any]:
    _check_keys(where, spec, _STEP_KEYS, {"name", "connector", "action"})
    name = spec["name"]
    if named:
        _check_name(where, name)
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
    admission = _admission(where, item)
    steps = item["steps"]
    if not isinstance(steps, list) or not steps:
        raise DefinitionError(f"{where}.steps: a workflow needs a list of at least one step.")
    normalized, names, collector = [], set(), _Collector()
    for j, spec in enumerate(steps):
        step = collector.check(normalize_step, f"{where}.steps[{j}]", spec)
        if step is None:
            continue
        for inner in iter_steps([step]):  # names are unique at every depth: steps.<name> finds one
            if inner["name"] in names:
                collector.errors.append(f"{where}.steps[{j}]: the step name {inner['name']!r} is used twice.")
            names.add(inner["name"])
        normalized.append(step)
    collector.raise_any()
    check_step_references(where, normalized)
    declared = _secret_scope(where, item, normalized)
    grouping = _grouping(where, item, normalized)

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
        **admission,
        **grouping,
    }


def _admission(where: str, item: dict[str, Any]) -> dict[str, Any]:
    """The workflow's admission controls (``execution.controls.load``), validated."""
    from automate_core.execution.controls import load

    try:
        return load.normalize(where, item)
    except load.AdmissionError as exc:
        raise DefinitionError(str(exc)) from exc


def _grouping(where: str, item: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The workflow's ``debounce`` or ``batch`` (``execution.grouping``), checked."""
    from automate_core.execution import grouping
    from automate_core.execution.constructs.base import DefinitionProblem

    try:
        return grouping.normalize(where, item, steps)
    except DefinitionProblem as exc:
        raise DefinitionError(str(exc)) from exc


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


def _load_sources(items: list[Any], counts: dict[str, int], collector: _Collector) -> None:
    for i, item in enumerate(items):
        collector.check(_load_source, f"sources[{i}]", item, counts)


def _load_source(where: str, item: Any, counts: dict[str, int]) -> None:
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


def _load_workflows(items: list[Any], counts: dict[str, int], author: str, collector: _Collector) -> None:
    definitions = [
        collector.check(normalize_workflow, f"workflows[{i}]", item) for i, item in enumerate(items)
    ]
    if collector.errors:  # the other sections are still checked, then everything is reported
        return
    try:
        check_calls({d["name"]: (f"workflows[{i}]", d) for i, d in enumerate(definitions)})
    except CallGraphError as exc:
        raise DefinitionError(str(exc)) from exc
    for i, (item, definition) in enumerate(zip(items, definitions, strict=True)):
        where = f"workflows[{i}]"
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


def _load_schedules(items: list[Any], counts: dict[str, int], collector: _Collector) -> None:
    for i, item in enumerate(items):
        collector.check(_load_schedule, f"schedules[{i}]", item, counts)


def _load_schedule(where: str, item: Any, counts: dict[str, int]) -> None:
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


def load(data: dict[str, Any], *, author: str = "automate load", check: bool = False) -> dict[str, int]:
    """Upsert the sources, workflows and schedules in ``data``; returns counts of what was written.

    Every error of the file is reported at once (``DefinitionError.errors``), and nothing is
    written unless there is none. With ``check`` nothing is written either way (``automate load
    --check``): the counts say what a load would write."""
    _check_keys("file", data, {"sources", "workflows", "schedules"}, set())
    counts = {"sources": 0, "workflows": 0, "steps": 0, "versions": 0, "schedules": 0}
    for section in ("sources", "workflows", "schedules"):
        if not isinstance(data.get(section) or [], list):
            raise DefinitionError(f"{section}: expected a list.")
    collector = _Collector()
    with transaction.atomic():
        _load_sources(data.get("sources") or [], counts, collector)
        _load_workflows(data.get("workflows") or [], counts, author, collector)
        _load_schedules(data.get("schedules") or [], counts, collector)
        collector.raise_any()
        if check:
            transaction.set_rollback(True)
    return counts


def load_file(path: str | Path) -> dict[str, int]:
    return load(read(path))
