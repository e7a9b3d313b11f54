"""``WaitStore``: durable waits on async psycopg (``wait_queries`` holds the SQL and its guards).

A run that waits holds nothing in a worker: it is a ``waiting`` run row, one ``open`` wait row
and one parked wake job. Everything here is one statement, one commit, whatever worker, web
process or command calls it; the guards make every race end in one outcome (see the module
docstring of ``wait_queries`` and the run's state machine in docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets as _secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

from automate_core import db
from automate_core.execution import wait_queries as q
from automate_core.execution.journal import to_json
from automate_core.outbox.store import ClaimedJob


@dataclass(frozen=True, slots=True)
class Wait:
    id: int
    run_id: int
    step_name: str
    kind: str
    status: str
    deadline: datetime | None
    job_id: int | None
    source: str
    event_type: str
    path: str
    value: str
    prompt: str
    on_timeout: str
    child_run_id: int | None
    result: Any
    resolved_by: str
    resolved_at: datetime | None
    created_at: datetime

    @property
    def final(self) -> bool:
        return self.status != "open"


@dataclass(frozen=True, slots=True)
class Opening:
    """What a construct asks for when its step parks the run."""

    kind: str
    deadline: datetime | None = None
    source: str = ""
    event_type: str = ""
    path: str = ""
    value: str = ""
    token_hash: str | None = None
    prompt: str = ""
    on_timeout: str = ""
    child_run_id: int | None = None
    call: tuple[str, Any] | None = None  # call: (workflow name, rendered input)


class _NotParked(Exception):
    """The caller no longer runs under its claim: undo the child run."""


def new_token() -> tuple[str, str]:
    """An approval link's token (shown once, in the link) and its SHA-256 (stored)."""
    token = _secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same_token(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class WaitStore:
    async def _rows(self, query: LiteralString, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        pool = await db.get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall() if cur.description else []

    async def open(
        self, run_id: int, step_name: str, job: ClaimedJob | None, opening: Opening, *, max_attempts: int
    ) -> int | None:
        """Park the run on a new wait; None when the run is no longer ``running`` under this claim
        (cancelled, or the job was taken over), or the step had opened its wait already."""
        rows = await self._rows(q.OPEN_WAIT, self._open_params(run_id, step_name, job, opening, max_attempts))
        return int(rows[0][0]) if rows else None

    @staticmethod
    def _open_params(
        run_id: int, step_name: str, job: ClaimedJob | None, opening: Opening, max_attempts: int
    ) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "step_name": step_name,
            "job_id": job.id if job else None,
            "claim": job.attempts if job else None,
            "max_attempts": max_attempts,
            "kind": opening.kind,
            "deadline": opening.deadline,
            "source": opening.source,
            "event_type": opening.event_type,
            "path": opening.path,
            "value": opening.value,
            "token_hash": opening.token_hash,
            "prompt": opening.prompt,
            "on_timeout": opening.on_timeout,
            "child_run_id": opening.child_run_id,
        }

    async def open_call(
        self,
        run_id: int,
        step_name: str,
        job: ClaimedJob | None,
        opening: Opening,
        *,
        max_attempts: int,
        workflow: str,
        event_id: int,
        trace_id: str,
        input: Any,
    ) -> int | None:
        """Queue the called run and park the caller on it, in one transaction; None when the
        caller no longer runs under this claim (nothing is queued then)."""
        pool = await db.get_pool()
        try:
            return await self._open_call(pool, run_id, step_name, job, opening, max_attempts, workflow,
                                         event_id, trace_id, input)  # fmt: skip
        except _NotParked:  # the transaction rolled back: nothing was queued
            return None

    async def _open_call(
        self, pool: Any, run_id: int, step_name: str, job: ClaimedJob | None, opening: Opening,
        max_attempts: int, workflow: str, event_id: int, trace_id: str, input: Any,
    ) -> int:  # fmt: skip
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                q.QUEUE_CHILD_RUN,
                {
                    "event_id": event_id,
                    "trace_id": trace_id,
                    "parent_id": run_id,
                    "input": json.dumps(input, default=str),
                    "workflow": workflow,
                    "parent_job_id": job.id if job is not None else None,
                },
            )
            row = await cur.fetchone()
            if row is None:
                raise LookupError(workflow)
            child = int(row[0])
            params = self._open_params(run_id, step_name, job, opening, max_attempts)
            params["child_run_id"] = child
            cur = await conn.execute(q.OPEN_WAIT, params)
            if await cur.fetchone() is None:
                raise _NotParked
            return child

    async def get(self, wait_id: int) -> Wait | None:
        rows = await self._rows(q.GET_WAIT, {"wait_id": wait_id})
        return Wait(*rows[0]) if rows else None

    async def time_out(self, wait_id: int) -> Wait | None:
        """open -> timed_out once the deadline has passed; the wait as it is then, or None when
        another outcome came first."""
        rows = await self._rows(q.TIME_OUT, {"wait_id": wait_id})
        return Wait(*rows[0]) if rows else None

    async def resolve(
        self,
        kind: str,
        result: Any,
        by: str,
        *,
        wait_id: int | None = None,
        token_hash: str | None = None,
    ) -> bool:
        """open -> resolved with ``result``; False when another outcome came first (or expired)."""
        rows = await self._rows(
            q.RESOLVE,
            {
                "kind": kind,
                "result": json.dumps(result, default=str),
                "by": by,
                "wait_id": wait_id,
                "token_hash": token_hash,
            },
        )
        return bool(rows)

    async def match_event(
        self, paths: tuple[str, ...], event_id: int, source: str, event_type: str, payload: Any
    ) -> int:
        """Resolve every open wait this event matches; returns how many."""
        rows = await self._rows(
            q.MATCH_EVENT,
            {
                "paths": list(paths),
                "event_id": event_id,
                "source": source,
                "event_type": event_type,
                "payload": json.dumps(payload, default=str),
            },
        )
        return len(rows)

    async def look_back(
        self, source: str, event_type: str, path: str, value: str, seconds: float
    ) -> tuple[int, Any] | None:
        rows = await self._rows(
            q.LOOK_BACK,
            {"source": source, "event_type": event_type, "path": path, "value": value, "seconds": seconds},
        )
        return (int(rows[0][0]), rows[0][1]) if rows else None

    async def child_finished(self, parent_id: int, child_run_id: int, result: Any) -> bool:
        rows = await self._rows(
            q.CHILD_FINISHED,
            {"parent_id": parent_id, "child_run_id": child_run_id, "result": json.dumps(result, default=str)},
        )
        return bool(rows)

    async def resume(
        self,
        wait: Wait,
        job: ClaimedJob,
        *,
        position: int,
        connector: str,
        status: str,
        output: Any,
        error: str,
    ) -> bool:
        """waiting -> running under the wake job's claim, recording the wait step's outcome."""
        rows = await self._rows(
            q.RESUME_RUN,
            {
                "wait_id": wait.id,
                "job_id": job.id,
                "claim": job.attempts,
                "attempt": job.spent,
                "position": position,
                "connector": connector,
                "status": status,
                "output": to_json(output),
                "error": error,
            },
        )
        return bool(rows)


def cancel_waits_sync(run_id: int, by: str) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(q.CANCEL_WAITS, {"run_id": run_id, "by": by})


waits = WaitStore()
