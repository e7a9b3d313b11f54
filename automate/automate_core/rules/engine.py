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

    def matches(self, source: str, event_type: str) -> bool:
        return fnmatchcase(source, self.source_pattern) and fnmatchcase(event_type, self.event_type_pattern)


def spec_from_definition(
    workflow_id: int, name: str, version_id: int | None, number: int, definition: Any
) -> WorkflowSpec:
    """A runnable spec from a normalised definition (``rules.versions``)."""
    if isinstance(definition, str):
        definition = json.loads(definition)
    trigger, retry, concurrency = definition["trigger"], definition["retry"], definition["concurrency"]
    return WorkflowSpec(
        id=workflow_id,
        name=name,
        source_pattern=trigger["source"],
        event_type_pattern=trigger["event_type"],
        max_attempts=retry["max_attempts"],
        steps=tuple(
            StepSpec(
                position=i,
                name=s["name"],
                connector=s["connector"],
                action=s["action"],
                params=s["params"],
                timeout=s["timeout"],
                condition=s["condition"],
                max_attempts=s["retry"]["max_attempts"],
                backoff_seconds=s["retry"]["backoff_seconds"],
                continue_on_error=s["continue_on_error"],
            )
            for i, s in enumerate(definition["steps"])
        ),
        version_id=version_id,
        version=number,
        condition=trigger["condition"],
        retry_base_seconds=retry["base_seconds"],
        retry_max_seconds=retry["max_seconds"],
        concurrency_limit=concurrency["limit"],
        concurrency_key=concurrency["key"],
        secrets=tuple(definition["secrets"]) if "secrets" in definition else None,
    )


def _spec(row: tuple[Any, ...]) -> WorkflowSpec:
    return spec_from_definition(*row)


class RuleEngine:
    def __init__(self) -> None:
        self.generation: int | None = None
        self.workflows: tuple[WorkflowSpec, ...] = ()
        self._matches: dict[tuple[str, str], tuple[WorkflowSpec, ...]] = {}
        self._versions: OrderedDict[int, WorkflowSpec] = OrderedDict()
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
            self.workflows = tuple(_spec(r) for r in rows)
            self._matches = {}
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
