"""``RuleEngine``: matches an event to the active workflows whose patterns fit it.

The engine keeps an in-memory index of enabled workflows and reloads it when the configuration
generation changes (a PostgreSQL sequence bumped by triggers on the workflow tables; every claim
reports it, so a saved workflow takes effect with the next batch). Matches are memoised per
``(source, event_type)`` until the next reload.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from automate_core import db
from automate_core.rules import queries


@dataclass(frozen=True, slots=True)
class StepSpec:
    position: int
    name: str
    connector: str
    action: str
    params: Any
    timeout: float | None


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    id: int
    name: str
    source_pattern: str
    event_type_pattern: str
    max_attempts: int
    steps: tuple[StepSpec, ...]

    def matches(self, source: str, event_type: str) -> bool:
        return fnmatchcase(source, self.source_pattern) and fnmatchcase(event_type, self.event_type_pattern)


def workflow_from_row(row: tuple[Any, ...]) -> WorkflowSpec:
    wf_id, name, source_pattern, type_pattern, max_attempts, steps = row
    if isinstance(steps, str):
        steps = json.loads(steps)
    return WorkflowSpec(
        wf_id,
        name,
        source_pattern,
        type_pattern,
        max_attempts,
        tuple(
            StepSpec(s["position"], s["name"], s["connector"], s["action"], s["params"], s["timeout"])
            for s in steps
        ),
    )


class RuleEngine:
    def __init__(self) -> None:
        self.generation: int | None = None
        self.workflows: tuple[WorkflowSpec, ...] = ()
        self._matches: dict[tuple[str, str], tuple[WorkflowSpec, ...]] = {}
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
            self.workflows = tuple(workflow_from_row(r) for r in rows)
            self._matches = {}
            self.generation = generation

    def match(self, source: str, event_type: str) -> tuple[WorkflowSpec, ...]:
        key = (source, event_type)
        found = self._matches.get(key)
        if found is None:
            found = tuple(w for w in self.workflows if w.matches(source, event_type))
            if len(self._matches) < 10_000:
                self._matches[key] = found
        return found
