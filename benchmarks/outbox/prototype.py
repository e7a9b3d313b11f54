"""A prototype, for measurement only: run records written with the job's settlement, in batches.

Not used by the platform. ``automate bench outbox --modes batched`` runs it to show what the
engine/journal follow-up would buy (docs/benchmarks/outbox.md). Today the engine writes each
ExecutionRun and StepRun as it goes: three autocommit statements (three commits) per one-step job.
Here instead:

* ``BatchJournal`` hands out run ids from a block reserved from the sequence (one round trip per
  500 runs), and keeps finished runs and their steps in memory;
* ``BatchSettler`` writes, in ONE transaction per flush, every buffered run (already in its final
  state), every buffered step, and the jobs' settlements (COMPLETE / FAIL / RELEASE).

So a flush of 100 jobs is three statements and one commit instead of ~300 commits, and a job's run
records commit atomically with its completion (a crash loses both, and the job runs again: the
same at-least-once as today, minus the "running" record of an attempt that died).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, LiteralString

from automate_core import db, masking
from automate_core.execution.journal import RunJournal, StepRecord, to_json
from automate_core.outbox import queries
from automate_core.worker.settle import Settlement, Settler

RESERVE_IDS: LiteralString = "SELECT nextval('automate_run_id_seq') FROM generate_series(1, %(n)s)"

INSERT_RUNS: LiteralString = """
INSERT INTO automate_run
    (id, workflow_id, workflow_name, event_id, job_id, attempt, status, error, trace_id,
     started_at, finished_at)
SELECT * FROM unnest(%(id)s::bigint[], %(workflow_id)s::bigint[], %(workflow_name)s::text[],
                     %(event_id)s::bigint[], %(job_id)s::bigint[], %(attempt)s::int[],
                     %(status)s::text[], %(error)s::text[], %(trace_id)s::text[],
                     %(started_at)s::timestamptz[], %(finished_at)s::timestamptz[])
"""

INSERT_STEPS: LiteralString = """
INSERT INTO automate_step_run
    (run_id, position, name, connector, action, status, input, output, error,
     started_at, finished_at, duration_ms)
SELECT * FROM unnest(%(run_id)s::bigint[], %(position)s::int[], %(name)s::text[],
                     %(connector)s::text[], %(action)s::text[], %(status)s::text[],
                     %(input)s::jsonb[], %(output)s::jsonb[], %(error)s::text[],
                     %(started_at)s::timestamptz[], %(finished_at)s::timestamptz[],
                     %(duration_ms)s::float8[])
"""


class BatchJournal(RunJournal):
    def __init__(self) -> None:
        self.ids: list[int] = []
        self.runs: dict[int, dict[str, Any]] = {}
        self.finished: list[dict[str, Any]] = []
        self.steps: list[tuple[int, StepRecord]] = []

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
        if not self.ids:
            pool = await db.get_pool()
            async with pool.connection() as conn:
                cur = await conn.execute(RESERVE_IDS, {"n": 500})
                self.ids = [r[0] for r in await cur.fetchall()]
        run_id = self.ids.pop()
        self.runs[run_id] = {
            "id": run_id, "workflow_id": workflow_id, "workflow_name": workflow_name,
            "event_id": event_id, "job_id": job_id, "attempt": attempt, "trace_id": trace_id,
            "started_at": datetime.now().astimezone(),
        }  # fmt: skip
        return run_id

    async def record_step(self, run_id: int, step: StepRecord) -> None:
        self.steps.append((run_id, step))

    async def finish_run(self, run_id: int, status: str, error: str = "") -> None:
        run = self.runs.pop(run_id)
        run.update(status=status, error=masking.masker.mask(error), finished_at=datetime.now().astimezone())
        self.finished.append(run)

    def take(self) -> tuple[list[dict[str, Any]], list[tuple[int, StepRecord]]]:
        runs, steps = self.finished, self.steps
        self.finished, self.steps = [], [s for s in steps if s[0] in self.runs]  # steps of open runs wait
        return runs, [s for s in steps if s[0] not in self.runs]


def _columns(rows: list[dict[str, Any]], names: list[str]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in names}


class BatchSettler(Settler):
    journal: BatchJournal

    async def flush(self, batch: list[Settlement]) -> None:
        self.flushes += 1
        runs, steps = self.journal.take()
        pool = await db.get_pool()
        async with pool.connection() as conn, conn.transaction():
            if runs:
                await conn.execute(INSERT_RUNS, _columns(runs, [
                    "id", "workflow_id", "workflow_name", "event_id", "job_id", "attempt", "status",
                    "error", "trace_id", "started_at", "finished_at"]))  # fmt: skip
            if steps:
                await conn.execute(INSERT_STEPS, {
                    "run_id": [r for r, _ in steps], "position": [s.position for _, s in steps],
                    "name": [s.name for _, s in steps], "connector": [s.connector for _, s in steps],
                    "action": [s.action for _, s in steps], "status": [s.status for _, s in steps],
                    "input": [to_json(s.input) for _, s in steps],
                    "output": [to_json(s.output) for _, s in steps],
                    "error": [masking.masker.mask(s.error) for _, s in steps],
                    "started_at": [s.started_at for _, s in steps],
                    "finished_at": [s.finished_at for _, s in steps],
                    "duration_ms": [s.duration_ms for _, s in steps],
                })  # fmt: skip
            completes = [s for s in batch if s.action == "complete"]
            if completes:
                await conn.execute(queries.COMPLETE, {
                    "ids": [s.job.id for s in completes], "attempts": [s.job.attempts for s in completes],
                    "results": [None if s.result is None else json.dumps(s.result) for s in completes],
                    "owner": self.owner,
                })  # fmt: skip
            others = [s for s in batch if s.action != "complete"]
        if others:  # failures and releases are rare here: the ordinary path
            await super().flush(others)
