"""``RunJournal``: writes ExecutionRun and StepRun rows. Values are masked before they are written.

Every write of the execution stage goes through these methods. The hot ones (a run starts, a step
is recorded, a run ends; or its last step is recorded and it ends, in one write) are
group-committed with those of concurrent jobs (``execution.grouped``); each returns once its
record is durable, and each is fenced by the job's claim.
``MemoryJournal`` keeps the records in memory instead: test mode (dry runs) writes nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from automate_core import db, masking
from automate_core.conf import settings
from automate_core.exceptions import LeaseExpired
from automate_core.execution import queries
from automate_core.execution.grouped import writer
from automate_core.execution.late_start import LateStart


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
    attempt: int = 1

    @property
    def duration_ms(self) -> float:
        return (self.finished_at - self.started_at).total_seconds() * 1000.0


@dataclass(frozen=True, slots=True)
class QueuedRun:
    workflow_id: int | None
    version_id: int | None
    mode: str
    parent_id: int | None
    status: str


@dataclass(frozen=True, slots=True)
class PreviousRun:
    id: int
    workflow_id: int
    version_id: int | None
    status: str
    mode: str
    parent_id: int | None
    job_id: int | None = None  # the job that carries it now


@dataclass(frozen=True, slots=True)
class RecordedStep:
    position: int
    name: str
    status: str
    output: Any


@dataclass(slots=True)
class RunStart:
    """What a run's first record says: who runs what, for which event, under which claim."""

    run_id: int | None  # drawn by the job's claim (a late start), else by the insert
    workflow_id: int
    workflow_name: str
    version_id: int | None
    event_id: int
    job_id: int | None
    claim: int | None
    attempt: int
    trace_id: str
    mode: str = ""
    parent_id: int | None = None
    started_at: datetime | None = None  # None: the insert's time

    def record(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "workflow_name": self.workflow_name,
            "version_id": self.version_id,
            "event_id": self.event_id,
            "job_id": self.job_id,
            "claim": self.claim if self.job_id is not None else None,
            "attempt": self.attempt,
            "trace_id": self.trace_id,
            "mode": self.mode,
            "parent_id": self.parent_id,
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
        }


def to_json(value: Any) -> str | None:
    if value is None:
        return None
    return masking.masker.mask(json.dumps(masking.masker.mask_data(value), default=str))


class RunJournal:
    def __init__(self) -> None:
        self.late: dict[int, LateStart] = {}  # runs whose start is not written yet, by id, oldest first
        self._sweep: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None

    def begin_late(self, start: RunStart, after: float) -> None:
        """Hold the start of a plain run (its id drawn by its claim) until a record needs it, or
        for ``after`` seconds at most (``execution.late_start``). One timer per journal sweeps
        the held starts that fell due, rather than one timer per run."""
        assert start.run_id is not None
        loop = asyncio.get_running_loop()
        self.late[start.run_id] = LateStart(self, start, loop.time() + after)
        if self._sweep is None or self._sweep[0] is not loop:
            self._sweep = (loop, loop.call_later(after, self._sweep_late))

    def _sweep_late(self) -> None:
        """Write the held starts that are due, each on its own; come back at the next one."""
        loop = asyncio.get_running_loop()
        self._sweep, now = None, loop.time()
        for late in list(self.late.values()):  # held in the order they began, all with one delay
            if late.task is not None:
                continue
            if late.due > now:
                self._sweep = (loop, loop.call_later(late.due - now, self._sweep_late))
                return
            late.fire()

    def end_late(self, run_id: int) -> None:
        """The run is over (or stopped): its start, if still held, will never be needed."""
        self.late.pop(run_id, None)

    async def _late(self, run_id: int) -> RunStart | None:
        """The run's start to write with the next record, or None when it is written (or going
        out on its own: then once it is durable)."""
        late = self.late.get(run_id)
        if late is None:
            return None
        if late.take():
            self.late.pop(run_id, None)
            return late.start
        await late.wait()
        self.late.pop(run_id, None)
        return None

    async def _execute(self, query: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        pool = await db.get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall() if cur.description else []

    async def start_run(
        self,
        *,
        workflow_id: int,
        workflow_name: str,
        event_id: int,
        job_id: int | None,
        attempt: int,
        trace_id: str,
        version_id: int | None = None,
        mode: str = "",
        parent_id: int | None = None,
        claim: int | None = None,
    ) -> int:
        """Insert a running run; ``claim`` (the job's ``attempts``) fences it: LeaseExpired when
        the job was taken over since."""
        record = RunStart(
            None, workflow_id, workflow_name, version_id, event_id, job_id, claim, attempt, trace_id,
            mode, parent_id,
        )  # fmt: skip
        return await self.write_start(record)

    async def write_start(self, start: RunStart) -> int:
        """Insert a running run; LeaseExpired when the job was taken over since."""
        run_id = await writer().write("start", start.record())
        if run_id is None:
            raise LeaseExpired(f"Job {start.job_id} was taken over by another worker before its run started.")
        return int(run_id)

    async def write_whole(self, start: RunStart, status: str, error: str, step: StepRecord | None) -> str:
        """Insert a run whose start was held, with a step record if any, in one write: ended
        (``status`` succeeded or failed), or ``running`` (the step record needed its run). Returns
        the status written: 'failed' when the job's claim was taken over meanwhile."""
        record = start.record()
        record.update(status=status, error=masking.masker.mask(error))
        steps = None if step is None else self._step_record(int(start.run_id or 0), step)
        return str(await writer().write("whole", record, steps))

    async def queued_run(self, run_id: int) -> QueuedRun | None:
        rows = await self._execute(queries.QUEUED_RUN, {"run_id": run_id})
        return QueuedRun(*rows[0]) if rows else None

    async def begin_queued_run(self, run_id: int, attempt: int) -> bool:
        """Start a queued run; False when it is no longer queued (it was cancelled meanwhile)."""
        rows = await self._execute(queries.BEGIN_QUEUED_RUN, {"run_id": run_id, "attempt": attempt})
        return bool(rows)

    async def record_step(self, run_id: int, step: StepRecord) -> str:
        """Write the step's record; returns the run's status: anything but 'running' means stop now
        ('cancelled'; 'failed' when a new claim of the job abandoned this run). A run whose start
        is held has it written with this record, in the same transaction."""
        if self.late and (start := await self._late(run_id)) is not None:
            return await self.write_whole(start, "running", "", step)
        status = await writer().write("step", self._step_record(run_id, step))
        return str(status) if status else "running"

    @staticmethod
    def _step_record(run_id: int, step: StepRecord) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "position": step.position,
            "name": step.name,
            "connector": step.connector,
            "action": step.action,
            "status": step.status,
            "attempt": step.attempt,
            "input": to_json(step.input),
            "output": to_json(step.output),
            "error": masking.masker.mask(step.error),
            "started_at": step.started_at.isoformat(),
            "finished_at": step.finished_at.isoformat(),
            "duration_ms": step.duration_ms,
        }

    async def finish_run(
        self,
        run_id: int,
        status: str,
        error: str = "",
        *,
        job_id: int | None = None,
        claim: int | None = None,
    ) -> str | None:
        """End a running run; returns the status written ('failed' when the job's claim was taken
        over: a superseded run never ends 'succeeded'), or None when it was no longer running.
        A run whose start is held is written whole instead, in one insert."""
        if self.late and (start := await self._late(run_id)) is not None:
            return await self.write_whole(start, status, error, None)
        written = await writer().write("finish", self._finish_record(run_id, status, error, job_id, claim))
        return str(written) if written is not None else None

    async def close_run(
        self,
        run_id: int,
        status: str,
        error: str,
        step: StepRecord,
        *,
        job_id: int | None = None,
        claim: int | None = None,
    ) -> tuple[str, str | None]:
        """Record the run's last step and end the run, in one write (one commit instead of two:
        nothing runs between them). Returns the run's status as the step was recorded (as
        ``record_step``) and the status written (as ``finish_run``). A run whose start is held is
        written whole instead, with the step, in one insert (it was never seen running: nothing
        could have cancelled it)."""
        if self.late and (start := await self._late(run_id)) is not None:
            return "running", await self.write_whole(start, status, error, step)
        record = self._finish_record(run_id, status, error, job_id, claim)
        step_status, written = await writer().write("close", record, self._step_record(run_id, step))
        return (str(step_status) if step_status else "running"), (None if written is None else str(written))

    @staticmethod
    def _finish_record(
        run_id: int, status: str, error: str, job_id: int | None, claim: int | None
    ) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "status": status,
            "error": masking.masker.mask(error),
            "job_id": job_id,
            "claim": claim if job_id is not None else None,
        }

    async def previous_runs(self, job_id: int, event_id: int | None = None) -> dict[int, PreviousRun]:
        """The latest run of each workflow the job ran in earlier attempts, by workflow id; with
        ``event_id`` (an event job), also the event's runs another job carries now (woken ones)."""
        if event_id is None:
            rows = await self._execute(queries.PREVIOUS_RUNS, {"job_id": job_id})
        else:
            rows = await self._execute(queries.PREVIOUS_EVENT_RUNS, {"job_id": job_id, "event_id": event_id})
        return {row[1]: PreviousRun(*row) for row in rows}

    async def run_input(self, run_id: int) -> Any:
        rows = await self._execute(queries.QUEUED_RUN_INPUT, {"run_id": run_id})
        return rows[0][0] if rows else None

    async def run_steps(self, run_id: int) -> list[RecordedStep]:
        rows = await self._execute(queries.RUN_STEPS, {"run_id": run_id})
        return [RecordedStep(*row) for row in rows]

    async def abandon_run(self, run_id: int) -> str | None:
        """Close a run an earlier claim left running; None when done, else the status it reached
        meanwhile (its worker ended it first: the abandon waited for that write, then re-read)."""
        # bounded: a lock held by a stuck session raises LockNotAvailable (the job tries later)
        lock_timeout = float(settings.DB_TAKEOVER_LOCK_TIMEOUT)
        if await db.execute_bounded(queries.ABANDON_RUN, {"run_id": run_id}, lock_timeout):
            return None
        rows = await self._execute(queries.RUN_STATUS, {"run_id": run_id})
        return str(rows[0][0]) if rows else "deleted"


@dataclass
class MemoryRun:
    id: int
    workflow_name: str
    status: str = "running"
    error: str = ""
    steps: list[StepRecord] = field(default_factory=list)


class MemoryJournal(RunJournal):
    """Records in memory (test mode): the database is not written. Values are masked all the same."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[int, MemoryRun] = {}

    async def write_start(self, start: RunStart) -> int:
        run_id = next(self._ids)
        self.runs[run_id] = MemoryRun(run_id, start.workflow_name)
        return run_id

    async def record_step(self, run_id: int, step: StepRecord) -> str:
        step.input = masking.masker.mask_data(step.input)
        step.output = masking.masker.mask_data(step.output)
        step.error = masking.masker.mask(step.error)
        self.runs[run_id].steps.append(step)
        return "running"

    async def finish_run(self, run_id: int, status: str, error: str = "", **_: Any) -> str | None:
        run = self.runs[run_id]
        run.status, run.error = status, masking.masker.mask(error)
        return status

    async def close_run(
        self, run_id: int, status: str, error: str, step: StepRecord, **_: Any
    ) -> tuple[str, str | None]:
        return await self.record_step(run_id, step), await self.finish_run(run_id, status, error)
