"""Group commit: concurrent webhooks share one multi-row statement and one commit.

Each request puts its row in the queue and awaits a future. A few flusher tasks (one per
connection in use, ``INGEST_FLUSHERS``) take whatever is queued, up to ``INGEST_BATCH_SIZE`` rows,
and write it with ``INSERT_EVENTS`` on an autocommit connection: when the statement returns, the
batch is committed, and only then is each request's future resolved. There is no timer: a batch
is whatever arrived while the previous statement ran, so one request alone is written at once and
a burst is written in a few statements (PostgreSQL takes ~47k webhooks/s at 50 per commit on
this 2-core machine, against ~10k/s one per commit).

Rows come back by ``trace_id`` (unique per request). A row that is not returned was a duplicate,
of an older event or of an earlier row of the same batch; ``FIND_DUPLICATES`` (a new statement,
so it sees whatever committed meanwhile) maps it to the original. A batch that PostgreSQL refuses
as data (a JSON text jsonb rejects) is retried row by row, so only the bad row is refused. When the
database is unreachable the whole batch, and everything queued behind it, gets
:class:`DatabaseUnavailable` at once. A request waits for its future at most for what is left of
its database budget (``dbwait.Budget``); past it, a row still queued is taken out (nothing was
recorded), a row already sent is answered "outcome unknown" (``dbwait.OutcomeUnknown``). The
flush itself is bounded the same way (``dbwait.bounded``), so a frozen server stalls no flusher.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import psycopg

from automate_core.exceptions import DatabaseUnavailable, IngestError
from automate_core.ingest import queries, tuning
from automate_core.ingest.dbwait import Budget, NotRecorded, OutcomeUnknown, bounded

logger = logging.getLogger("automate.ingest")

Row = dict[str, Any]  # NewEvent.params()
Pending = tuple[Row, "asyncio.Future[tuple[int, str, bool]]"]


class GroupCommitter:
    """Batches concurrent inserts of one event loop (one per process and loop, like the pool)."""

    def __init__(self, batch_size: int | None = None, flushers: int | None = None) -> None:
        self.batch_size = batch_size or tuning.current().batch_size
        self.flushers = flushers or tuning.current().flushers
        self._queue: list[Pending] = []
        self._ready = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def insert(self, row: Row, budget: Budget | None = None) -> tuple[int, str, bool]:
        """Write one event and its job; returns ``(event_id, trace_id, duplicate)`` after the commit."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, str, bool]] = loop.create_future()
        entry = (row, future)
        self._queue.append(entry)
        self._ready.set()
        if len(self._tasks) < self.flushers:
            task = loop.create_task(self._flusher())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if budget is None:
            return await future
        started = loop.time()
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(budget.left, 0.0))
        except TimeoutError:
            for i, queued in enumerate(self._queue):
                if queued is entry:  # never sent: take it out
                    del self._queue[i]
                    raise NotRecorded() from None
            future.cancel()  # in a statement already: whatever it did, nobody waits for it now
            raise OutcomeUnknown() from None
        finally:
            budget.left -= loop.time() - started

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail(self._take(len(self._queue)), NotRecorded("The server is shutting down."))

    def _take(self, n: int) -> list[Pending]:
        batch = self._queue[:n]
        del self._queue[:n]
        if not self._queue:
            self._ready.clear()
        return batch

    async def _flusher(self) -> None:
        while True:
            await self._ready.wait()
            batch = [p for p in self._take(self.batch_size) if not p[1].done()]
            if not batch:
                continue
            try:
                await self._flush(batch)
            except DatabaseUnavailable as exc:
                # whatever waits behind this batch would meet the same database: answer now
                self._fail(batch, exc)
                self._fail(self._take(len(self._queue)), NotRecorded())
            except BaseException as exc:
                self._fail(batch, exc)
                if not isinstance(exc, Exception):
                    raise

    @staticmethod
    def _fail(batch: list[Pending], exc: BaseException) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(exc if isinstance(exc, Exception) else DatabaseUnavailable())

    async def _flush(self, batch: list[Pending]) -> None:
        rows = [row for row, _ in batch]

        async def work(conn: psycopg.AsyncConnection[Any]) -> tuple[dict[str, int], dict[Any, Any]] | None:
            try:
                inserted = await self._insert(conn, rows)
            except (psycopg.errors.DataError, psycopg.errors.UntranslatableCharacter):
                if len(batch) == 1:
                    raise
                await self._one_by_one(conn, batch)
                return None
            missing = [r for r in rows if r["trace_id"] not in inserted]
            return inserted, (await self._originals(conn, missing) if missing else {})

        timeout = tuning.current().db_timeout
        try:
            found = await bounded(work, Budget(timeout * 2), pool_timeout=timeout, writes=True)
        except (psycopg.errors.DataError, psycopg.errors.UntranslatableCharacter) as exc:
            raise _unstorable(exc) from exc
        except DatabaseUnavailable as exc:
            cause = exc.__cause__
            detail = f"{type(cause).__name__}: {cause}" if cause else "no answer in time"
            logger.warning("ingest batch of %d not written (%s): %s", len(batch), exc.outcome, detail)
            raise
        if found is None:
            return
        inserted, originals = found
        for row, future in batch:
            if future.done():
                continue
            event_id = inserted.get(row["trace_id"])
            if event_id is not None:
                future.set_result((event_id, row["trace_id"], False))
                continue
            original = originals.get((row["source"], row["idempotency_key"]))
            if original is None:  # the conflicting row vanished (key released) in between: retry
                future.set_exception(
                    DatabaseUnavailable("The event conflicted with one that no longer exists.")
                )
            else:
                future.set_result((original[0], original[1], True))

    @staticmethod
    async def _insert(conn: psycopg.AsyncConnection[Any], rows: list[Row]) -> dict[str, int]:
        cur = await conn.execute(
            queries.INSERT_EVENTS, {"rows": rows_document(rows), "max_attempts": rows[0]["max_attempts"]}
        )
        return {trace_id: event_id for event_id, trace_id in await cur.fetchall()}

    @staticmethod
    async def _originals(
        conn: psycopg.AsyncConnection[Any], rows: list[Row]
    ) -> dict[tuple[str, str], tuple[int, str]]:
        cur = await conn.execute(
            queries.FIND_DUPLICATES,
            {"sources": [r["source"] for r in rows], "keys": [r["idempotency_key"] for r in rows]},
        )
        return {(s, k): (i, t) for s, k, i, t in await cur.fetchall()}

    async def _one_by_one(self, conn: psycopg.AsyncConnection[Any], batch: list[Pending]) -> None:
        """A batch with a row PostgreSQL refuses: write each row alone, refusing only the bad one."""
        for row, future in batch:
            try:
                result = await _insert_one(conn, row)
            except (psycopg.errors.DataError, psycopg.errors.UntranslatableCharacter) as exc:
                if not future.done():
                    future.set_exception(_unstorable(exc))
                continue
            if not future.done():
                future.set_result(result)


async def _insert_one(conn: psycopg.AsyncConnection[Any], row: Row) -> tuple[int, str, bool]:
    cur = await conn.execute(queries.INSERT_EVENT, row)
    found = await cur.fetchone()
    if found is not None:
        return found[0], found[1], False
    cur = await conn.execute(queries.FIND_DUPLICATE, row)
    found = await cur.fetchone()
    if found is None:
        raise DatabaseUnavailable("The event conflicted with one that no longer exists.")
    return found[0], found[1], True


def rows_document(rows: list[Row]) -> str:
    """The batch as one JSON array for ``json_to_recordset``.

    Payload and headers are JSON texts already (the payload was validated by ``json.loads`` as
    exactly one JSON value, so it cannot break out of its place) and are spliced in as they are:
    no escaping of the body into a string and no per-element array dumping in Python, which a
    profile showed as the largest cost of the batch insert.
    """
    dumps = json.dumps
    return (
        "["
        + ",".join(
            f'{{"source":{dumps(r["source"])},"event_type":{dumps(r["event_type"])},'
            f'"payload":{r["payload"]},"headers":{r["headers"]},'
            f'"idempotency_key":{dumps(r["idempotency_key"])},"trace_id":"{r["trace_id"]}"{_job_fields(r)}}}'
            for r in rows
        )
        + "]"
    )


def _job_fields(row: Row) -> str:
    """The job's queue, priority and fair key, only where they are not the defaults."""
    queue, priority, fair_key = row["queue"], row["priority"], row["fair_key"]
    if queue == "default" and not priority and not fair_key:
        return ""
    return f',"queue":{json.dumps(queue)},"priority":{int(priority)},"fair_key":{json.dumps(fair_key)}'


def _unstorable(exc: psycopg.Error) -> IngestError:
    message = exc.diag.message_primary or "rejected by the database"
    return IngestError(f"The JSON body cannot be stored: {message}", status=400, reason="invalid_json")
