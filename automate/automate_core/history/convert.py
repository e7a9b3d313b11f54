"""Partitioning history tables of a live database, without a long lock: the run records
(migration 0016), the events (0017).

The tables become partitioned parents; what they held becomes one partition of each
(``automate_run_legacy``, ``automate_step_run_legacy``, ``automate_event_legacy``) below the
first day, and new rows go to the day partitions. Nothing is copied. The phases and the locks
they take:

1. **Constraints that cannot cross partitions go** (the run's parent and bulk-replay foreign
   keys, the job's foreign key to its event; the code keeps them, like the other run references
   since migration 0008): an instant each.
2. **Proof that the old rows are below the first day** (the partition bound): a ``CHECK ...
   NOT VALID`` (an instant), then ``VALIDATE CONSTRAINT``, which reads the whole table under a
   SHARE UPDATE EXCLUSIVE lock: reads and writes go on. The step table's primary key must hold
   its partition key, so its ``(id, run_id)`` index is built ``CONCURRENTLY`` (writes go on).
3. **The switch**, one transaction on both tables under ACCESS EXCLUSIVE locks, taken with a
   ``lock_timeout`` (tried again when a long query holds them, so that writers never queue
   behind a waiting lock for long): run the caller's catch-up statements (the events' key table
   takes the keys written since its backfill), rename each table to ``*_legacy`` with its indexes, create
   the partitioned parent under the old name with the same indexes, attach the old table as
   the legacy partition (the validated CHECK spares the scan; its indexes match the parent's
   and are attached, not built; a unique index the parent cannot have stays the partition's own)
   and create the day partitions. Catalog work only: milliseconds
   whatever the size of the tables (``tests/history/test_convert.py`` measures what the
   concurrent writers see).

Run and event ids become history ids (``history.ids``) from the switch on; old ids stay as
they were.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from automate_core.exceptions import PartitioningBlocked
from automate_core.history import ids, partitions, tables

logger = logging.getLogger("automate.history")

#: Foreign keys of the run records that a partitioned table would have to check across partitions.
FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, c.conname FROM pg_constraint AS c
WHERE c.contype = 'f'
  AND (c.conrelid = ANY(%s::regclass[]) OR c.confrelid = ANY(%s::regclass[]))
"""

INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), i.indisprimary
FROM pg_index AS i WHERE i.indrelid = %s::regclass ORDER BY 1
"""

SEQUENCE_STATE = "SELECT last_value, is_called FROM {sequence}"


Group = Sequence[tables.HistoryTable]


def is_partitioned(cursor: Any, group: Group = tables.TABLES) -> bool:
    """Every table of ``group`` partitioned."""
    cursor.execute(tables.PARTITIONED.replace("%(tables)s", "%s"), [[t.name for t in group]])
    return len(cursor.fetchall()) == len(group)


def _check_name(table: tables.HistoryTable) -> str:
    return f"{table.name}_legacy_range"


def _steps_key_index() -> str:
    return f"{tables.STEPS.name}_legacy_pk"


def _locked(
    cursor: Any, names: str, work: Callable[[], None], lock_timeout_ms: int, attempts: int, what: str
) -> None:
    """``work`` in one transaction holding ACCESS EXCLUSIVE locks on ``names``, taken under a short
    ``lock_timeout`` and tried again while another session holds them. The timeout is below
    PostgreSQL's ``deadlock_timeout`` (1 s), so that when a writer holds one of the tables and
    waits for another (the ingest writes events, then jobs; a claim reads jobs, then events) the
    conversion is the one that gives way, before the deadlock detector would pick the writer."""
    import psycopg

    for attempt in range(1, attempts + 1):
        cursor.execute("BEGIN")
        try:
            cursor.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
            cursor.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
            work()
            cursor.execute("COMMIT")
            return
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            cursor.execute("ROLLBACK")
            logger.warning(
                "partitioning: %s are busy (attempt %d of %d); trying again", names, attempt, attempts
            )
            time.sleep(min(0.1 * attempt, 2.0))
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
    raise PartitioningBlocked(
        f"Could not lock {names} for {what} in {attempts} attempts: a long transaction holds them; "
        "nothing was changed. Run `automate migrate` again when it has ended (pg_stat_activity shows it)."
    )


def prepare(
    cursor: Any, first_day: dt.date, group: Group, lock_timeout_ms: int = 500, attempts: int = 30
) -> None:
    """Phases 1 and 2, in autocommit: each statement is its own short transaction."""
    names = [t.name for t in group]
    cursor.execute(FOREIGN_KEYS, [names, names])
    for relation, constraint in cursor.fetchall():
        # a foreign key's drop locks both of its tables: in one LOCK, given way to writers
        cursor.execute("SELECT confrelid::regclass::text FROM pg_constraint WHERE conname = %s", [constraint])
        referenced = cursor.fetchone()[0]
        drop = f'ALTER TABLE {relation} DROP CONSTRAINT IF EXISTS "{constraint}"'
        both = f"{referenced}, {relation}" if referenced != relation else relation
        _locked(
            cursor,
            both,
            functools.partial(cursor.execute, drop),
            lock_timeout_ms,
            attempts,
            f"dropping the foreign key {constraint}",
        )
    b0 = ids.bound(first_day)
    for table in group:
        check = _check_name(table)
        cursor.execute("SELECT 1 FROM pg_constraint WHERE conname = %s", [check])
        if cursor.fetchone() is None:
            cursor.execute(
                f"ALTER TABLE {table.name} ADD CONSTRAINT {check} CHECK ({table.key} < {b0}) NOT VALID"
            )
        cursor.execute(f"ALTER TABLE {table.name} VALIDATE CONSTRAINT {check}")
    if tables.STEPS not in group:
        return
    # An interrupted CONCURRENTLY build leaves an invalid index: drop it and build again.
    cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [_steps_key_index()])
    row = cursor.fetchone()
    if row is not None and not row[0]:
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_steps_key_index()}")
        row = None
    if row is None:
        cursor.execute(
            f"CREATE UNIQUE INDEX CONCURRENTLY {_steps_key_index()} "
            f"ON {tables.STEPS.name} ({', '.join(tables.STEPS.primary_key)})"
        )


def _switch_table(cursor: Any, table: tables.HistoryTable, b0: int) -> None:
    legacy = table.legacy
    cursor.execute(INDEXES, [table.name])
    indexes = cursor.fetchall()
    cursor.execute(SEQUENCE_STATE.format(sequence=table.sequence))
    last_value, is_called = cursor.fetchone()
    cursor.execute(f"ALTER TABLE {table.name} RENAME TO {legacy}")
    # the identity's sequence goes with the identity; a new one (same name) continues it
    cursor.execute(f"ALTER TABLE {legacy} ALTER COLUMN id DROP IDENTITY IF EXISTS")
    recreated = []
    for index, definition, primary in indexes:
        if index == _steps_key_index():
            continue
        cursor.execute(f'ALTER INDEX "{index}" RENAME TO "{(index + "_legacy")[:63]}"')
        if not primary and index not in table.left_behind:
            recreated.append(definition)
    cursor.execute(
        f"CREATE TABLE {table.name} (LIKE {legacy} INCLUDING DEFAULTS INCLUDING STORAGE) "
        f"PARTITION BY RANGE ({table.key})"
    )
    start = int(last_value) + (1 if is_called else 0)
    cursor.execute(f"CREATE SEQUENCE {table.sequence} START WITH {start} OWNED BY {table.name}.id")
    default = (
        f"automate_history_id('{table.sequence}'::regclass)"
        if table.key == "id"
        else f"nextval('{table.sequence}'::regclass)"
    )
    cursor.execute(f"ALTER TABLE {table.name} ALTER COLUMN id SET DEFAULT {default}")
    key = ", ".join(table.primary_key)
    cursor.execute(f"ALTER TABLE {table.name} ADD CONSTRAINT {table.name}_pkey PRIMARY KEY ({key})")
    for definition in recreated:  # on the parent alone: it has no partition yet
        cursor.execute(definition)
    cursor.execute(f"ALTER TABLE {table.name} ATTACH PARTITION {legacy} FOR VALUES FROM (MINVALUE) TO ({b0})")


def switch(
    cursor: Any,
    first_day: dt.date,
    ahead: int,
    group: Group,
    catch_up: Sequence[str] = (),
    lock_timeout_ms: int = 500,
    attempts: int = 30,
) -> None:
    """Phase 3, one transaction, tried again while another session holds the tables.
    ``catch_up`` runs first under the locks (with no writer left that could miss it)."""
    b0 = ids.bound(first_day)

    def work() -> None:
        for statement in catch_up:
            cursor.execute(statement)
        if tables.STEPS in group:
            # the parent's primary key (id, run_id) attaches to the partition's primary key: the
            # index built in phase 2 becomes it (an instant: no index is built under the lock)
            cursor.execute(
                f"ALTER TABLE {tables.STEPS.name} DROP CONSTRAINT IF EXISTS {tables.STEPS.name}_pkey"
            )
            cursor.execute(
                f"ALTER TABLE {tables.STEPS.name} ADD CONSTRAINT {_steps_key_index()} "
                f"PRIMARY KEY USING INDEX {_steps_key_index()}"
            )
        for table in group:
            _switch_table(cursor, table, b0)
        cursor.execute("RESET lock_timeout")
        partitions.ensure_ahead_sync(cursor, ahead, today=first_day)

    names = ", ".join(t.name for t in group)
    _locked(cursor, names, work, lock_timeout_ms, attempts, "the partitioning switch")


def convert(
    cursor: Any,
    ahead: int,
    today: dt.date | None = None,
    group: Group = tables.RUN_RECORDS,
    catch_up: Sequence[str] = (),
) -> bool:
    """All three phases; False when the tables are partitioned already (nothing to do)."""
    if is_partitioned(cursor, group):
        return False
    first_day = today or dt.datetime.now(dt.UTC).date()
    prepare(cursor, first_day, group)
    switch(cursor, first_day, ahead, group, catch_up)
    return True
