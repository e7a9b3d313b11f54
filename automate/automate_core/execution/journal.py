"""``RunJournal``: writes ExecutionRun and StepRun rows. Values are masked before they are written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from automate_core import db, masking
from automate_core.execution import queries


@dataclass(slots=True)
class StepRecord:
    position: int
    name: str
    connector: str
    action: str
    status: str
    input: Any
    output: Any
    error: str
    started_at: datetime
    finished_at: datetime

    @property
    def duration_ms(self) -> float:
        return (self.finished_at - self.started_at).total_seconds() * 1000.0


def to_json(value: Any) -> str | None:
    if value is None:
        return None
    return masking.masker.mask(json.dumps(masking.masker.mask_data(value), default=str))


class RunJournal:
    async def start_run(
        self,
        *,
        workflow_id: int,
        workflow_name: str,
        event_id: int,
        job_id: int | None,
        attempt: int,
        trace_id: str,
    ) -> int:
        pool = await db.get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                queries.START_RUN,
                {
                    "workflow_id": workflow_id,
                    "workflow_name": workflow_name,
                    "event_id": event_id,
                    "job_id": job_id,
                    "attempt": attempt,
                    "trace_id": trace_id,
                },
            )
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def record_step(self, run_id: int, step: StepRecord) -> None:
        pool = await db.get_pool()
        async with pool.connection() as conn:
            await conn.execute(
                queries.RECORD_STEP,
                {
                    "run_id": run_id,
                    "position": step.position,
                    "name": step.name,
                    "connector": step.connector,
                    "action": step.action,
                    "status": step.status,
                    "input": to_json(step.input),
                    "output": to_json(step.output),
                    "error": masking.masker.mask(step.error),
                    "started_at": step.started_at,
                    "finished_at": step.finished_at,
                    "duration_ms": step.duration_ms,
                },
            )

    async def finish_run(self, run_id: int, status: str, error: str = "") -> None:
        pool = await db.get_pool()
        async with pool.connection() as conn:
            await conn.execute(
                queries.FINISH_RUN,
                {"run_id": run_id, "status": status, "error": masking.masker.mask(error)},
            )

    async def succeeded_workflows(self, event_id: int) -> set[int]:
        pool = await db.get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(queries.SUCCEEDED_WORKFLOWS, {"event_id": event_id})
            return {r[0] for r in await cur.fetchall()}
