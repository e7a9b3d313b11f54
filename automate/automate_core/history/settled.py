"""Settled jobs: the outbox's completed jobs leave the queue for day partitions of their own.

``automate_outbox_job`` is partitioned by ``LIST (settled)`` (migration 0018)::

    automate_outbox_job                      every job, as the console, the API and the tasks
    │                                        backend read them (one table, one model)
    ├── automate_outbox_job_live   false     the queue: ready, running, retry and dead jobs; the
    │                                        claim's partial indexes, the rank and NOTIFY triggers
    └── automate_outbox_job_done   true      completed jobs, PARTITION BY RANGE (completed_at)
        ├── automate_outbox_job_done_p20261207
        └── ...                              one per day (UTC) of completion

A job's completion moves it (``outbox.queries.COMPLETE``: one statement deletes it from the queue
and inserts it into the day of its completion, with the same id), so the queue holds only the jobs
that are not done and the claim stays one lookup in a small partial index, whatever the history.
Retention of completed jobs drops a day's partition whole (``DETACH ... CONCURRENTLY``, ``DROP``)
once the day is older than ``RETENTION_COMPLETED_JOBS``: no row is deleted, no WAL is written per
row. The done partitions carry ``CHECK (status = 'completed')``, so a query of the whole table for
another status (``status = 'ready'``, the console's dead letters) is planned on the queue alone.

Jobs that were completed before the conversion, or by a worker of the previous release during a
rollout, stay in the queue's partition as they were (``settled`` false) and leave it row by row
through ``PRUNE_JOBS``, as before, within a day.

The SQL here names only these fixed tables and partitions made from dates: nothing from a user.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any

import psycopg

from automate_core.history import convert, tables

logger = logging.getLogger("automate.history")

PARENT = "automate_outbox_job"
LIVE = "automate_outbox_job_live"
DONE = "automate_outbox_job_done"
SEQUENCE = "automate_outbox_job_id_seq"
#: the old table's indexes that become the parent's (the done days have them too); its others are
#: the queue's own (claim order, leases, dead letters, the replay's uniqueness, the primary key)
SHARED_INDEXES = ("automate_outbox_job_event_id",)


def partition(day: dt.date) -> str:
    return f"{DONE}_p{day:%Y%m%d}"


def _bound(day: dt.date) -> str:
    return f"'{day.isoformat()} 00:00:00+00'"


def create_partition(day: dt.date) -> list[str]:
    """A day of completed jobs, made as a table and attached (a SHARE UPDATE EXCLUSIVE lock on the
    parent, not the ACCESS EXCLUSIVE of CREATE TABLE ... PARTITION OF); empty, so nothing is checked."""
    name = partition(day)
    return [
        f"CREATE TABLE IF NOT EXISTS {name} "
        f"(LIKE {DONE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)",
        f"ALTER TABLE {DONE} ATTACH PARTITION {name} "
        f"FOR VALUES FROM ({_bound(day)}) TO ({_bound(day + dt.timedelta(days=1))})",
    ]


#: The done days and whether the table is partitioned are read by the history's own statements
#: (``tables.LIST_PARTITIONS``, ``tables.PARTITIONED``, ``tables.PENDING_DETACH``) on ``[DONE]``;
#: a day's name is read by ``tables.parse_partition``.
_DONE = {"tables": [DONE]}


async def _is_partitioned(conn: psycopg.AsyncConnection[Any]) -> bool:
    return await (await conn.execute(tables.PARTITIONED, _DONE)).fetchone() is not None


async def _days(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    return [child for _parent, child in await (await conn.execute(tables.LIST_PARTITIONS, _DONE)).fetchall()]


def _is_partitioned_sync(cursor: Any) -> bool:
    cursor.execute(tables.PARTITIONED.replace("%(tables)s", "%s"), [[DONE]])
    return cursor.fetchone() is not None


def plan_ahead(existing: set[str], today: dt.date, ahead: int) -> list[str]:
    statements: list[str] = []
    for n in range(ahead + 1):
        day = today + dt.timedelta(days=n)
        if partition(day) not in existing:
            statements += create_partition(day)
    return statements


async def ensure_ahead(conn: psycopg.AsyncConnection[Any], ahead: int, today: dt.date) -> int:
    """Inside the caller's transaction (which holds the history's advisory lock): the missing done
    days of today and ``ahead`` days after it."""
    if not await _is_partitioned(conn):
        return 0
    existing = set(await _days(conn))
    statements = plan_ahead(existing, today, ahead)
    for statement in statements:
        await conn.execute(statement.encode())
    return len(statements) // 2


def ensure_ahead_sync(cursor: Any, ahead: int, today: dt.date) -> int:
    if not _is_partitioned_sync(cursor):
        return 0
    cursor.execute(tables.LIST_PARTITIONS.replace("%(tables)s", "%s"), [[DONE]])
    statements = plan_ahead({child for _parent, child in cursor.fetchall()}, today, ahead)
    for statement in statements:
        cursor.execute(statement)
    return len(statements) // 2


async def drop_expired(
    conn: psycopg.AsyncConnection[Any], age: float, now: dt.datetime | None = None
) -> tuple[str, ...]:
    """Drops every day of completed jobs that ended more than ``age`` seconds ago. ``conn`` in
    autocommit mode detaches ``CONCURRENTLY`` (it waits for the queries reading the day and blocks
    none); in a transaction (behind a transaction pooler) the plain detach, an instant's lock."""
    if not await _is_partitioned(conn):
        return ()
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=age)
    for _parent, child in await (await conn.execute(tables.PENDING_DETACH, _DONE)).fetchall():
        await conn.execute(f"ALTER TABLE {DONE} DETACH PARTITION {child} FINALIZE".encode())
        await conn.execute(f"DROP TABLE IF EXISTS {child}".encode())
    mode = " CONCURRENTLY" if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE else ""
    dropped: list[str] = []
    for child in await _days(conn):
        parsed = tables.parse_partition(child)
        if parsed is None:
            continue
        day = parsed[1]
        if dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC) > cutoff:
            continue
        await conn.execute(f"ALTER TABLE {DONE} DETACH PARTITION {child}{mode}".encode())
        await conn.execute(f"DROP TABLE {child}".encode())
        dropped.append(child)
    if dropped:
        logger.info("outbox: dropped %d days of completed jobs older than %s", len(dropped), cutoff.date())
    return tuple(dropped)


# --- the conversion of a live job table (migration 0018) ------------------------------------

_CHECK = f"{LIVE}_unsettled"
#: the rank trigger's function reads the queue's own rows (migration 0013 named the whole table)
_RANK_FUNCTION = "SELECT pg_get_functiondef('automate_outbox_rank()'::regprocedure)"


def is_converted(cursor: Any) -> bool:
    return _is_partitioned_sync(cursor)


def prepare(cursor: Any, lock_timeout_ms: int = 500, attempts: int = 30) -> None:
    """In autocommit, each step its own short transaction: the column ``settled`` (false), then the
    self-referencing foreign key of a replay goes (a partition cannot be referenced by one; the
    code keeps the link, as it keeps the run's), then the proof that every row of the old table is
    unsettled: ``CHECK ... NOT VALID`` (an instant) and ``VALIDATE`` (reads the table under SHARE
    UPDATE EXCLUSIVE: writes go on)."""
    add = f"ALTER TABLE {PARENT} ADD COLUMN IF NOT EXISTS settled boolean NOT NULL DEFAULT false"
    convert._locked(  # a constant default: catalog only, no rewrite
        cursor, PARENT, functools.partial(cursor.execute, add), lock_timeout_ms, attempts, "adding its column"
    )
    cursor.execute(convert.FOREIGN_KEYS, [[PARENT], [PARENT]])
    for relation, constraint in cursor.fetchall():
        drop = f'ALTER TABLE {relation} DROP CONSTRAINT IF EXISTS "{constraint}"'
        convert._locked(
            cursor, PARENT, functools.partial(cursor.execute, drop), lock_timeout_ms, attempts,
            f"dropping the foreign key {constraint}",
        )  # fmt: skip
    cursor.execute("SELECT 1 FROM pg_constraint WHERE conname = %s", [_CHECK])
    if cursor.fetchone() is None:
        cursor.execute(f"ALTER TABLE {PARENT} ADD CONSTRAINT {_CHECK} CHECK (NOT settled) NOT VALID")
    cursor.execute(f"ALTER TABLE {PARENT} VALIDATE CONSTRAINT {_CHECK}")


def _switch(cursor: Any, today: dt.date, ahead: int) -> None:
    cursor.execute(convert.INDEXES, [PARENT])
    indexes = cursor.fetchall()
    cursor.execute(convert.SEQUENCE_STATE.format(sequence=SEQUENCE))
    last_value, is_called = cursor.fetchone()
    cursor.execute(f"ALTER TABLE {PARENT} RENAME TO {LIVE}")
    cursor.execute(f"ALTER TABLE {LIVE} ALTER COLUMN id DROP IDENTITY IF EXISTS")
    shared = []
    for index, definition, _primary in indexes:
        if index.startswith(SHARED_INDEXES):
            cursor.execute(f'ALTER INDEX "{index}" RENAME TO "{(index + "_live")[:63]}"')
            shared.append(definition)
    cursor.execute(
        f"CREATE TABLE {PARENT} (LIKE {LIVE} INCLUDING DEFAULTS INCLUDING STORAGE) "
        "PARTITION BY LIST (settled)"
    )
    start = int(last_value) + (1 if is_called else 0)
    cursor.execute(f"CREATE SEQUENCE {SEQUENCE} START WITH {start} OWNED BY {PARENT}.id")
    for table in (PARENT, LIVE):  # a statement may name the queue itself (the hot path does)
        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{SEQUENCE}'::regclass)")
    for definition in shared:  # on the parent alone, so far: the attach adopts the queue's
        cursor.execute(definition)
    # the validated CHECK spares the scan; the queue's matching index is attached, not built
    cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {LIVE} FOR VALUES IN (false)")
    cursor.execute(
        f"CREATE TABLE {DONE} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING STORAGE) "
        "PARTITION BY RANGE (completed_at)"
    )
    cursor.execute(f"ALTER TABLE {DONE} ADD CONSTRAINT {DONE}_pkey PRIMARY KEY (id, completed_at)")
    cursor.execute(f"ALTER TABLE {DONE} ADD CONSTRAINT {DONE}_completed CHECK (status = 'completed')")
    # a replay's link, read when its dead job is replayed again or listed as a dead letter
    cursor.execute(f"CREATE INDEX {DONE}_replay_of ON {DONE} (replay_of_id) WHERE replay_of_id IS NOT NULL")
    cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {DONE} FOR VALUES IN (true)")
    # inserts through the parent (the ORM, a previous release) wake the workers too
    cursor.execute(
        f"CREATE TRIGGER automate_outbox_inserted AFTER INSERT ON {PARENT} "
        "FOR EACH STATEMENT EXECUTE FUNCTION automate_notify_outbox()"
    )
    cursor.execute(_RANK_FUNCTION)
    function = cursor.fetchone()[0]
    assert f"FROM {PARENT} AS j" in function, "the rank trigger's function is not migration 0013's"
    cursor.execute(function.replace(f"FROM {PARENT} AS j", f"FROM {LIVE} AS j"))
    for statement in plan_ahead(set(), today, ahead):
        cursor.execute(statement)


def convert_jobs(cursor: Any, ahead: int, today: dt.date | None = None) -> bool:
    """The job table partitioned, on a live database; False when it is already."""
    if is_converted(cursor):
        return False
    prepare(cursor)
    day = today or dt.datetime.now(dt.UTC).date()
    convert._locked(
        cursor, PARENT, functools.partial(_switch, cursor, day, ahead), 500, 30, "the job table's switch"
    )
    return True
