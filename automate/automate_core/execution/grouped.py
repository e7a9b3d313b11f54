"""``GroupedJournalWrites``: group commit for the run journal's hot writes.

A worker runs many jobs at once (``AUTOMATE_WORKER_CONCURRENCY``), and each job writes run
records: its run starts, its steps are recorded, its run ends (a short plain run: once, whole, at
its end, ``execution.late_start``). Written one statement and one commit each, the commits, not
Python, would bound the worker. Here every write is handed to a flusher instead and awaited: the
flusher takes whatever is pending (of every job, of every kind), writes it with one array
statement per kind (``queries.START_RUNS``, ``WHOLE_RUNS``, ``RECORD_STEPS``, ``FINISH_RUNS``;
the records go as one JSON document,
dumped in C, rather than as a dozen arrays dumped element by element) in one transaction, sent
as one message (see ``_write``), and answers each waiting write once that transaction has
committed. So a write returns only when it is durable, exactly as before, but a hundred jobs share
a commit. While one flush is in flight the next
writes gather for the next; ``AUTOMATE_JOURNAL_FLUSHERS`` flushes may be in flight at once.

A batch the database refuses for a reason of its own (not an outage) is written again record by
record, so one bad record fails only its own job. An outage fails every write of the batch with
the psycopg error, as a single write would: the dispatcher hands such a job back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, LiteralString

import psycopg

from automate_core import db
from automate_core.conf import settings
from automate_core.execution import queries

logger = logging.getLogger("automate.execution")

Kind = Literal["start", "whole", "step", "finish", "close"]

STATEMENTS: dict[Kind, LiteralString] = {
    "start": queries.START_RUNS,
    "whole": queries.WHOLE_RUNS,
    "step": queries.RECORD_STEPS,
    "finish": queries.FINISH_RUNS,
}

#: The order of the statements in a flush. A ``close`` (a run's last step record and its end, in
#: one write) is a ``step`` record and a ``finish`` record: its step is inserted before any run
#: ends, so the step reads its run's status from before the end (cancelled, abandoned, running).
#: A ``whole`` run (a late start, written with the step record that made it due, or with its end)
#: may hold a step record: the run is inserted first, so the step reads it as it was written.
ORDER: tuple[Kind, ...] = ("start", "whole", "step", "finish")

#: A write: its kind, its record, the step record it carries (close, whole), its answer.
Pending = tuple[Kind, dict[str, Any], dict[str, Any] | None, "asyncio.Future[Any]"]


class GroupedJournalWrites:
    """The flushers of one event loop (one per process and loop, like the connection pool)."""

    def __init__(self, flushers: int | None = None, max_batch: int = 500) -> None:
        self.flushers = flushers or int(settings.JOURNAL_FLUSHERS)
        self.max_batch = max_batch
        self.pending: list[Pending] = []
        self.active = 0
        self.flushes = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def write(self, kind: Kind, record: dict[str, Any], step: dict[str, Any] | None = None) -> Any:
        """Write one record; returns, once committed, what its statement gives back for it:
        start: the run id (None when the claim was taken over); step: the run's status;
        finish: the status written (None when the run was no longer running); whole: the status
        written (its ``step`` record, if any, goes in the same transaction); close (a ``finish``
        record with its last ``step`` record): the pair of the step's answer and the finish's,
        written in the same transaction. A record holds exactly what its statement reads (its
        JSON document is the list of records as they are)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.pending.append((kind, record, step, future))
        if self.active < self.flushers:
            self.active += 1
            task = loop.create_task(self._drain(), name="automate-journal-flush")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch = self.pending[: self.max_batch]
                del self.pending[: self.max_batch]
                await self._flush(batch)
        finally:
            self.active -= 1

    async def _flush(self, batch: list[Pending]) -> None:
        self.flushes += 1
        try:
            answers = await self._write(batch)
        except psycopg.OperationalError as exc:  # an outage: every write of the batch meets it
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except Exception as exc:
            if len(batch) > 1:
                logger.warning("run records refused as a batch (%s); writing them one by one", exc)
                for pending in batch:
                    await self._flush([pending])
                return
            if not batch[0][3].done():
                batch[0][3].set_exception(exc)
            return
        for (*_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)

    async def _write(self, batch: list[Pending]) -> list[Any]:
        """Write ``batch`` in one transaction; the answer for each record, in order."""
        records: dict[Kind, list[dict[str, Any]]] = {kind: [] for kind in ORDER}
        for kind, record, step, _ in batch:
            records["finish" if kind == "close" else kind].append(record)
            if step is not None:
                records["step"].append(step)
        kinds = [kind for kind in ORDER if records[kind]]
        answers: dict[Kind, list[Any]] = {}
        pool = await db.get_pool()
        async with pool.connection() as conn:
            # One message: the statements of every kind go out as a single simple-protocol query
            # (values bound client-side), which PostgreSQL reads whole before it runs any of it and
            # runs as one transaction. So a worker that freezes or is cut off mid-flush leaves
            # nothing half done: not a run-finishing UPDATE holding its row lock while the COMMIT
            # never comes (a pipeline sends its statements one by one, and a backend waiting for
            # the rest of one is "active": no idle-in-transaction timeout would end it).
            # Planned afresh each time (never prepared): a flush is one statement per hundred
            # jobs, and a plan cached while the run table was small would stay a sequential scan.
            cur = psycopg.AsyncClientCursor(conn)
            text = ";\n".join(cur.mogrify(STATEMENTS[kind], _params(kind, records[kind])) for kind in kinds)
            await cur.execute(text.encode(conn.info.encoding))
            for number, kind in enumerate(kinds):
                if number:
                    cur.nextset()
                rows = await cur.fetchall()
                if kind == "start":  # (n, id): n counts the input from 1
                    ids = {int(n): int(run_id) for n, run_id in rows}
                    answers[kind] = [ids.get(n) for n in range(1, len(records[kind]) + 1)]
                else:  # (run_id, status): one pending record per run at a time
                    statuses = {int(run_id): status for run_id, status in rows}
                    answers[kind] = [statuses.get(int(record["run_id"])) for record in records[kind]]
        given = {kind: iter(values) for kind, values in answers.items()}
        out: list[Any] = []
        for kind, _, step, _ in batch:
            if kind == "close":
                out.append((next(given["step"]), next(given["finish"])))
            else:
                out.append(next(given[kind]))
                if step is not None:
                    next(given["step"])  # a whole run: its own status answers for it
        return out


def _params(kind: Kind, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A statement's parameters: the records' document, and for the statements that read runs
    (the steps' statuses, the runs' UPDATE) their ids as a constant array, from which the planner
    knows the day partitions to read (pruning): a join with the document alone would plan and
    probe every day's partition for every run."""
    params: dict[str, Any] = {"rows": _document(kind, records)}
    if kind in ("step", "finish"):
        params["ids"] = sorted({int(record["run_id"]) for record in records})
    return params


def _document(kind: Kind, records: Sequence[dict[str, Any]]) -> str:
    """The records as the statement's JSON document, as they are (``jsonb_to_recordset`` reads
    the fields its statement names); the start of a run numbers them from 1 (``n``: it answers
    with it). Times come as ISO strings already (``RunJournal``); ``_plain`` is the safety net."""
    if kind == "start":
        records = [{"n": n, **record} for n, record in enumerate(records, start=1)]
    return json.dumps(records, default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a run-record value")


_writers: dict[asyncio.AbstractEventLoop, GroupedJournalWrites] = {}


def writer() -> GroupedJournalWrites:
    """The running loop's writer."""
    loop = asyncio.get_running_loop()
    found = _writers.get(loop)
    if found is None:
        for old in [other for other in _writers if other.is_closed()]:
            del _writers[old]
        found = _writers[loop] = GroupedJournalWrites()
    return found
