"""``RuleEngine``: matches an event to the active workflows whose patterns fit it.

The engine keeps an in-memory index of enabled workflows (their current versions) and reloads it
when the configuration generation changes (a PostgreSQL sequence bumped by triggers on the
workflow tables; every claim reports it, so a published version takes effect with the next batch).
Glob matches are memoised per ``(source, event_type)`` until the next reload; a trigger's
``condition`` is a compiled expression evaluated per event by the execution engine.
Versions are immutable, so specs loaded by version id are cached for good.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from automate_core import db
from automate_core.exceptions import AutomateError
from automate_core.rules import queries
from automate_core.rules.admission import Admission, admission_of


@dataclass(frozen=True, slots=True)
class StepSpec:
    position: int
    name: str
    connector: str
    action: str
    params: Any
    timeout: float | None
    condition: str = ""
    max_attempts: int = 1
    backoff_seconds: float = 1.0
    continue_on_error: bool = False
    #: ``action`` (a connector call) or a flow construct (``execution.constructs``): sleep,
    #: wait_for_event, approval, for_each, parallel, switch, call. ``config`` is the construct's
    #: normalised settings, with its nested steps as specs (``children``: for_each's step,
    #: parallel's branches; ``cases``: switch's lists, the default under ``""``).
    kind: str = "action"
    config: Any = None
    children: tuple[StepSpec, ...] = ()
    cases: tuple[tuple[str, tuple[StepSpec, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    id: int
    name: str
    source_pattern: str
    event_type_pattern: str
    max_attempts: int
    steps: tuple[StepSpec, ...]
    version_id: int | None = None
    version: int = 0
    condition: str = ""
    retry_base_seconds: float | None = None
    retry_max_seconds: float | None = None
    concurrency_limit: int | None = None
    concurrency_key: str = ""
    secrets: tuple[str, ...] | None = None  # declared secrets; None: a version from before declarations
    admission: Admission | None = None  # throttle, rate_limit, singleton, queue, priority, fairness
    debounce: dict[str, Any] | None = None  # {period, max_wait, key} (execution.grouping)
    batch: dict[str, Any] | None = None  # {max_size, timeout, key}

    def matches(self, source: str, event_type: str) -> bool:
        return fnmatchcase(source, self.source_pattern) and fnmatchcase(event_type, self.event_type_pattern)

    def find(self, name: str) -> StepSpec | None:
        """The step of that name, at any depth."""
        return next((s for s in walk_specs(self.steps) if s.name == name), None)

    @property
    def is_flow(self) -> bool:
        """Whether any step is a flow construct (a plain list of actions is the hot path)."""
        return any(s.kind != "action" for s in self.steps)


def walk_specs(steps: tuple[StepSpec, ...]) -> Any:
    """Every step spec, nested ones included, in pre-order."""
    for step in steps:
        yield step
        yield from walk_specs(step.children)
        for _, case in step.cases:
            yield from walk_specs(case)


class _Positions:
    """Numbers steps in pre-order, so that the timeline lists a construct's steps under it."""

    def __init__(self) -> None:
        self.next = 0

    def take(self) -> int:
        self.next += 1
        return self.next - 1


def step_spec(s: dict[str, Any], positions: _Positions) -> StepSpec:
    """A runnable step from a normalised step definition (a construct's nested steps too)."""
    kind = s.get("kind", "action")
    position = positions.take()
    retry = s.get("retry") or {"max_attempts": 1, "backoff_seconds": 1.0}
    children: tuple[StepSpec, ...] = ()
    cases: tuple[tuple[str, tuple[StepSpec, ...]], ...] = ()
    params = s.get("params", {})
    if kind == "for_each":
        children = (step_spec(params["step"], positions),)
    elif kind == "parallel":
        children = tuple(step_spec(b, positions) for b in params["branches"])
    elif kind == "approval" and params.get("notify"):
        children = (step_spec(params["notify"], positions),)
    elif kind == "switch":
        named = [(str(k), v) for k, v in params["cases"].items()] + [("", params.get("default") or [])]
        cases = tuple((k, tuple(step_spec(c, positions) for c in v)) for k, v in named)
    return StepSpec(
        position=position,
        name=s["name"],
        connector=s.get("connector") or kind,
        action=s.get("action", ""),
        params=params,
        timeout=s.get("timeout"),
        condition=s.get("condition", ""),
        max_attempts=retry["max_attempts"],
        backoff_seconds=retry["backoff_seconds"],
        continue_on_error=s.get("continue_on_error", False),
        kind=kind,
        config=params if kind != "action" else None,
        children=children,
        cases=cases,
    )


def spec_from_definition(
    workflow_id: int, name: str, version_id: int | None, number: int, definition: Any
) -> WorkflowSpec:
    """A runnable spec from a normalised definition (``rules.versions``)."""
    if isinstance(definition, str):
        definition = json.loads(definition)
    trigger, retry, concurrency = definition["trigger"], definition["retry"], definition["concurrency"]
    positions = _Positions()
    return WorkflowSpec(
        id=workflow_id,
        name=name,
        source_pattern=trigger["source"],
        event_type_pattern=trigger["event_type"],
        max_attempts=retry["max_attempts"],
        steps=tuple(step_spec(s, positions) for s in definition["steps"]),
        version_id=version_id,
        version=number,
        condition=trigger["condition"],
        retry_base_seconds=retry["base_seconds"],
        retry_max_seconds=retry["max_seconds"],
        concurrency_limit=concurrency["limit"],
        concurrency_key=concurrency["key"],
        secrets=tuple(definition["secrets"]) if "secrets" in definition else None,
        admission=admission_of(definition),
        debounce=definition.get("debounce"),
        batch=definition.get("batch"),
    )


def _spec(row: tuple[Any, ...]) -> WorkflowSpec:
    return spec_from_definition(*row)


class RuleEngine:
    def __init__(self) -> None:
        self.generation: int | None = None
        self.workflows: tuple[WorkflowSpec, ...] = ()
        self._matches: dict[tuple[str, str], tuple[WorkflowSpec, ...]] = {}
        self._versions: OrderedDict[int, WorkflowSpec] = OrderedDict()
        self._wait_patterns: dict[tuple[str, str], tuple[str, ...]] = {}
        self._lock = asyncio.Lock()

    async def refresh(self, generation: int) -> None:
        """Reload the index if ``generation`` differs from the loaded one."""
        if generation == self.generation:
            return
        async with self._lock:
            if generation == self.generation:
                return
            pool = await db.get_pool()
            async with pool.connection() as conn:
                cur = await conn.execute(queries.ACTIVE_WORKFLOWS)
                rows = await cur.fetchall()
                cur = await conn.execute(queries.WAIT_PATTERNS)
                patterns: dict[tuple[str, str], tuple[str, ...]] = {}
                for source, event_type, path in await cur.fetchall():
                    patterns[(source, event_type)] = (*patterns.get((source, event_type), ()), path)
            self.workflows = tuple(_spec(r) for r in rows)
            self._matches = {}
            self._wait_patterns = patterns
            for spec in self.workflows:
                if spec.version_id is not None:
                    self._remember(spec)
            self.generation = generation

    def match(self, source: str, event_type: str) -> tuple[WorkflowSpec, ...]:
        """Enabled workflows whose globs match (their conditions are the caller's to evaluate)."""
        key = (source, event_type)
        found = self._matches.get(key)
        if found is None:
            found = tuple(w for w in self.workflows if w.matches(source, event_type))
            if len(self._matches) < 10_000:
                self._matches[key] = found
        return found

    def wait_paths(self, source: str, event_type: str) -> tuple[str, ...]:
        """The payload paths open ``wait_for_event`` steps may correlate this event on (usually none)."""
        return self._wait_patterns.get((source, event_type), ())

    def _remember(self, spec: WorkflowSpec) -> None:
        assert spec.version_id is not None
        self._versions[spec.version_id] = spec
        self._versions.move_to_end(spec.version_id)
        while len(self._versions) > 2_000:
            self._versions.popitem(last=False)

    async def version(self, version_id: int) -> WorkflowSpec:
        """The spec of one version, enabled or not (versions never change, so this is cached)."""
        spec = self._versions.get(version_id)
        if spec is not None:
            return spec
        pool = await db.get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(queries.VERSION, {"version_id": version_id})
            row = await cur.fetchone()
        if row is None:
            raise AutomateError(f"Workflow version {version_id} no longer exists (its workflow was deleted).")
        spec = _spec(row)
        self._remember(spec)
        return spec
