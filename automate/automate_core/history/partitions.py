"""Keeping the history's partitions: made ahead of time, dropped whole once their day has aged out.

* **Ahead.** Every worker's maintenance (and ``automate migrate``) makes the partitions of today
  and the next ``HISTORY_PARTITIONS_AHEAD`` days that do not exist yet (the completed jobs' days,
  ``history.settled``, too), one transaction at a time
  under an advisory lock (two workers never race to make the same one). A row for a day with no
  partition cannot be written (``HistoryPartitionMissing``), so the days ahead are the time the
  workers may all be stopped before the console's manual runs and replays fail.
* **Retention.** A day's partitions go when the whole day is older than ``RETENTION_EVENTS``.
  Its runs' and steps' first, unless one of its runs is pending (queued, running, waiting) or
  ended after that horizon: the steps' partition, then the runs', each ``DETACH PARTITION ...
  CONCURRENTLY`` (it waits for the queries that use it, and blocks none) and then ``DROP TABLE``.
  Then its events', once nothing names one of them any more: no job (the caller's ``release``
  deletes the settled ones first), no run (a replay of an old event keeps its day as long as the
  replay's own day), no debounce window. No history row is deleted, no WAL is written per row,
  and the drain goes on beside it. A partition kept past its age is logged and tried again at the
  next pass. The legacy partitions (rows written before migrations 0016 and 0017) are one more
  day each: they go once everything in them is older than the horizon.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from automate_core.history import ids, settled, tables

logger = logging.getLogger("automate.history")

#: pg_advisory_xact_lock key of partition maintenance (b"history" read as a number).
LOCK_KEY = 0x686973746F7279


@dataclass(frozen=True, slots=True)
class DropReport:
    dropped: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # expired by age, kept for a pending or recently ended run


def _names(rows: list[tuple[Any, ...]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {t.name: set() for t in tables.TABLES}
    for parent, child in rows:
        found.setdefault(parent, set()).add(child)
    return found


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _today() -> dt.date:
    return _now().date()


def plan_ahead(
    existing: dict[str, set[str]], today: dt.date, ahead: int, kept: tuple[tables.HistoryTable, ...]
) -> list[str]:
    statements: list[str] = []
    for table in kept:
        for day in tables.days_to_create(today, ahead, existing.get(table.name, set()), table):
            statements += tables.create_partition(table, day)
    return statements


#: Releases what names a day's events before they go: ``release(conn, lower, upper)``.
Release = Callable[[psycopg.AsyncConnection[Any], int, int], Awaitable[None]]


async def partitioned(conn: psycopg.AsyncConnection[Any]) -> tuple[tables.HistoryTable, ...]:
    """The history tables that are partitioned, in drop order."""
    cur = await conn.execute(tables.PARTITIONED, {"tables": [t.name for t in tables.TABLES]})
    names = {row[0] for row in await cur.fetchall()}
    return tuple(t for t in tables.TABLES if t.name in names)


async def ensure_ahead(conn: psycopg.AsyncConnection[Any], ahead: int, today: dt.date | None = None) -> int:
    """Makes the missing partitions of today and ``ahead`` days after it; returns how many."""
    today = today or _today()
    kept = await partitioned(conn)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%(key)s)", {"key": LOCK_KEY})
        cur = await conn.execute(tables.LIST_PARTITIONS, {"tables": [t.name for t in kept]})
        statements = plan_ahead(_names(await cur.fetchall()), today, ahead, kept) if kept else []
        for statement in statements:
            await conn.execute(statement.encode())
        made = len(statements) // 2 + await settled.ensure_ahead(conn, ahead, today)
    if made:
        logger.info("history: made %d partitions ahead (through %s)", made, today + dt.timedelta(days=ahead))
    return made


def ensure_ahead_sync(cursor: Any, ahead: int, today: dt.date | None = None) -> int:
    """The same on a synchronous DB-API cursor (migrations, the management command), inside the
    caller's transaction."""
    today = today or _today()
    cursor.execute(tables.PARTITIONED.replace("%(tables)s", "%s"), [[t.name for t in tables.TABLES]])
    names = {row[0] for row in cursor.fetchall()}
    kept = tuple(t for t in tables.TABLES if t.name in names)
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
    cursor.execute(tables.LIST_PARTITIONS.replace("%(tables)s", "%s"), [[t.name for t in kept]])
    statements = plan_ahead(_names(cursor.fetchall()), today, ahead, kept) if kept else []
    for statement in statements:
        cursor.execute(statement)
    return len(statements) // 2 + settled.ensure_ahead_sync(cursor, ahead, today)


def expired_days(existing: dict[str, set[str]], cutoff: dt.datetime) -> list[dt.date]:
    """Days whose partitions hold only rows written before ``cutoff`` (the day ended before it)."""
    days = set()
    for names in existing.values():
        for name in names:
            parsed = tables.parse_partition(name)
            if parsed and dt.datetime.combine(parsed[1] + dt.timedelta(days=1), dt.time(), dt.UTC) <= cutoff:
                days.add(parsed[1])
    return sorted(days)


async def drop_expired(
    conn: psycopg.AsyncConnection[Any],
    age: float,
    now: dt.datetime | None = None,
    release: Release | None = None,
) -> DropReport:
    """Drops the partitions of every day older than ``age`` seconds that nothing needs any more.

    ``conn`` must be in autocommit mode (DETACH ... CONCURRENTLY runs outside a transaction);
    on a connection in a transaction (behind a transaction pooler) the detach is the plain one,
    which takes its lock for an instant. ``release`` is awaited for each expired day of events
    before it is checked (the retention pass deletes the day's settled jobs there)."""
    kept_tables = await partitioned(conn)
    if not kept_tables:
        return DropReport()
    now = now or _now()
    cutoff = now - dt.timedelta(seconds=age)
    names = [t.name for t in kept_tables]
    concurrently = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    for parent, child in await (await conn.execute(tables.PENDING_DETACH, {"tables": names})).fetchall():
        await conn.execute(f"ALTER TABLE {parent} DETACH PARTITION {child} FINALIZE".encode())
        await conn.execute(f"DROP TABLE IF EXISTS {child}".encode())
    existing = _names(await (await conn.execute(tables.LIST_PARTITIONS, {"tables": names})).fetchall())
    dropped: list[str] = []
    kept: list[str] = []

    async def drop(table: tables.HistoryTable, child: str) -> None:
        mode = " CONCURRENTLY" if concurrently else ""
        await conn.execute(f"ALTER TABLE {table.name} DETACH PARTITION {child}{mode}".encode())
        await conn.execute(f"DROP TABLE {child}".encode())
        dropped.append(child)

    run_records = [t for t in tables.RUN_RECORDS if t in kept_tables]
    for _day, members in await _expired(conn, existing, cutoff, run_records):
        run_partition = members[tables.RUNS.name]
        if run_partition in existing.get(tables.RUNS.name, set()):
            cur = await conn.execute(
                tables.RUN_PARTITION_IN_USE.format(partition=run_partition).encode(), {"cutoff": cutoff}
            )
            row = await cur.fetchone()
            if row and row[0]:
                kept.append(run_partition)
                continue
        for table in run_records:  # steps first: they belong to the runs
            if members[table.name] in existing.get(table.name, set()):
                await drop(table, members[table.name])
    if tables.EVENTS in kept_tables:
        legacy_upper = await _legacy_upper(conn, tables.EVENTS)
        for day, members in await _expired(conn, existing, cutoff, [tables.EVENTS]):
            child = members[tables.EVENTS.name]
            lower, upper = _bounds(day, legacy_upper)
            if release is not None:
                await release(conn, lower, upper)
            cur = await conn.execute(tables.EVENT_PARTITION_IN_USE, {"lower": lower, "upper": upper})
            row = await cur.fetchone()
            if row and row[0]:
                kept.append(child)
                continue
            await drop(tables.EVENTS, child)
    if kept:
        logger.warning(
            "history: kept %d partitions past their age, for runs still pending or ended after %s, "
            "or events something still names: %s",
            len(kept), cutoff.isoformat(timespec="seconds"), ", ".join(kept),
        )  # fmt: skip
    if dropped:
        logger.info("history: dropped %d partitions older than %s", len(dropped), cutoff.date())
    return DropReport(tuple(dropped), tuple(kept))


#: The legacy partition, in the lists of expired days.
LEGACY = None


async def _expired(
    conn: psycopg.AsyncConnection[Any],
    existing: dict[str, set[str]],
    cutoff: dt.datetime,
    group: list[tables.HistoryTable],
) -> list[tuple[dt.date | None, dict[str, str]]]:
    """The expired days of a group of tables (a day of None is their legacy partitions), oldest
    first, each with its partition of every table of the group."""
    if not group:
        return []
    found: list[tuple[dt.date | None, dict[str, str]]] = []
    lead = group[-1]  # runs for the run records: they say whether the legacy partitions are there
    if lead.legacy in existing.get(lead.name, set()):
        # rows went on arriving in the legacy table on the day of the partitioning, until the switch
        legacy_upper = await _legacy_upper(conn, lead)
        if legacy_upper is not None and legacy_upper + dt.timedelta(days=1) <= cutoff:
            found.append((LEGACY, {t.name: t.legacy for t in group}))
    in_group = {t.name: existing.get(t.name, set()) for t in group}
    for day in expired_days(in_group, cutoff):
        found.append((day, {t.name: t.partition(day) for t in group}))
    return found


def _bounds(day: dt.date | None, legacy_upper: dt.datetime | None) -> tuple[int, int]:
    if day is None:
        upper = ids.bound(legacy_upper.date()) if legacy_upper is not None else 0
        return -(2**63), upper
    return ids.bound(day), ids.bound(day + dt.timedelta(days=1))


async def _legacy_upper(conn: psycopg.AsyncConnection[Any], table: tables.HistoryTable) -> dt.datetime | None:
    """The time of the legacy partition's upper bound: the first day after the partitioning."""
    cur = await conn.execute(
        "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class AS c WHERE c.relname = %(name)s",
        {"name": table.legacy},
    )
    row = await cur.fetchone()
    if not row or not row[0]:
        return None
    upper = int(str(row[0]).rsplit("TO ('", 1)[1].rstrip("')"))
    return ids.written_at(upper)
